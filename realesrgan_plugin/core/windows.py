"""Where overlapping windows start along one axis: crops of the data preparation, tiles of inference.

Both place ``ceil((length - window) / step) + 1`` windows over ``[0, length)`` (one when the
window covers the whole side); they differ only in where the windows sit.
"""

from __future__ import annotations

import math


def window_starts(
    length: int, window: int, step: int, thresh_size: int = 0, *, spread: bool = False, align: int = 1
) -> list[int]:
    """Start offsets of ``window``-long windows along a side of ``length``.

    Default (the official crop rule of ``extract_subimages``): every ``step`` from 0, plus one
    window flush with the far border when more than ``thresh_size`` pixels would be left over.
    ``spread=True`` (inference tiles): the same number of windows spaced evenly from 0 to the far
    border, so no tile is a thin sliver, each start rounded to a multiple of ``align``.
    A side no longer than the window gets one window at 0."""
    if window >= length:
        return [0]
    span = length - window
    if not spread:
        starts = list(range(0, span + 1, step))
        if span - starts[-1] > thresh_size:
            starts.append(span)
        return starts
    count = math.ceil(span / step) + 1
    return sorted({round(i * span / (count - 1) / align) * align for i in range(count)})
