"""Colour and alpha treatment of transparent images around the network.

A generator trained on opaque photos sharpens every edge it sees, including an edge that only
exists in the hidden colour of transparent pixels. The official code feeds the colour as stored:
right when the transparent pixels kept the photo's background, but black, white or noise there
(what many exporters write) comes back as a dark, light or garish fringe. Premultiplying by alpha
(what this plugin did first) turns every cut-out into a colour-to-black edge, which the network
sharpens into a dark ring. Filling ("bleeding") the transparent pixels with the colour of the
nearest visible pixels, as texture pipelines do, leaves no edge to sharpen and makes the result
independent of the hidden colour. ``'auto'`` (the default) tells the two cases apart by the colour
step from the visible edge into the transparent pixels. ``bench/bench_alpha.py`` measures the
choices (premultiplied and pull-push filling were measured too and lost everywhere).

Alpha, upscaled by the network or by a cv2 interpolation, is clamped to the range of its input
neighbourhood: no halo beyond the cut-out, and fully opaque / fully transparent areas stay exact.
"""

from __future__ import annotations

import cv2
import numpy as np

ALPHA_COLOURS = ('auto', 'bleed', 'raw')
# Median colour step from the visible edge into the transparent pixels: photo cut-outs whose
# transparent pixels hold the true background measure 0.03-0.06 (bench/bench_alpha.py), black,
# white or noise 0.44-0.93. Between these two values 'auto' blends the stored and the bled colour.
TRUE_BACKGROUND_STEP = 0.15
GARBAGE_STEP = 0.3


def visible_mask(alpha: np.ndarray) -> np.ndarray:
    """Pixels whose stored colour counts: any alpha above zero (anti-aliased edges hold real colour)."""
    return alpha > 0


def nearest_visible_colour(colour: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """Each pixel's colour replaced by that of its nearest visible pixel (visible pixels keep theirs).

    One Euclidean distance transform with pixel labels gives every pixel the label of its nearest
    visible pixel; a label -> colour table then fills the image in one gather."""
    if visible.all() or not visible.any():
        return colour
    hidden = np.ascontiguousarray(~visible, dtype=np.uint8)  # distances are measured to the zeros
    _, labels = cv2.distanceTransformWithLabels(hidden, cv2.DIST_L2, cv2.DIST_MASK_5, labelType=cv2.DIST_LABEL_PIXEL)
    table = np.zeros((int(labels.max()) + 1, colour.shape[2]), colour.dtype)
    table[labels[visible]] = colour[visible]
    return table[labels]


def bleed_transparent(colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """HxWx3 float colour with every fully transparent pixel given its nearest visible colour.

    The hidden colour of transparent pixels then never reaches the network, and the cut-out's
    colour continues past its edge instead of meeting black, white or noise there."""
    return nearest_visible_colour(colour, visible_mask(alpha))


def edge_mismatch(colour: np.ndarray, bled: np.ndarray, alpha: np.ndarray) -> float:
    """Median colour step (max over channels) from the visible edge into the transparent pixels
    touching it. Small when they hold the true background (a photo cut-out), large for black,
    white or noise."""
    hidden = ~visible_mask(alpha)
    ring = hidden & cv2.dilate((~hidden).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    if not ring.any():
        return 0.0
    return float(np.median(np.abs(colour[ring] - bled[ring]).max(axis=1)))


def keep_weight(step: float) -> float:
    """How much of the stored hidden colour 'auto' keeps for a given :func:`edge_mismatch`."""
    return float(np.clip((GARBAGE_STEP - step) / (GARBAGE_STEP - TRUE_BACKGROUND_STEP), 0.0, 1.0))


def auto_colour(colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The stored colour where the transparent pixels continue the visible edge (a cut-out that
    kept its true background: the network then sees the photo it was trained on, exactly as the
    official code feeds it), the bled colour where they hold black, white or noise."""
    bled = bleed_transparent(colour, alpha)
    if bled is colour:
        return colour
    keep = keep_weight(edge_mismatch(colour, bled, alpha))
    if keep == 1.0:
        return colour
    if keep == 0.0:
        return bled
    return (keep * colour + (1 - keep) * bled).astype(colour.dtype)


def prepare_colour(colour: np.ndarray, alpha: np.ndarray, mode: str) -> np.ndarray:
    """The colour the network sees for one of :data:`ALPHA_COLOURS`."""
    if mode == 'auto':
        return auto_colour(colour, alpha)
    if mode == 'bleed':
        return bleed_transparent(colour, alpha)
    if mode == 'raw':
        return colour
    raise ValueError(f'alpha_colour must be one of {ALPHA_COLOURS}, got {mode!r}')


def local_alpha_range(alpha: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """Per output pixel, the min and max of the input alpha over the 3x3 input pixels around it.

    An interpolation at scale ``s`` only mixes an input pixel with its direct neighbours, so a
    value outside this range is overshoot (ringing), not detail."""
    kernel = np.ones((3, 3), np.uint8)
    low = cv2.erode(alpha, kernel, borderType=cv2.BORDER_REPLICATE)
    high = cv2.dilate(alpha, kernel, borderType=cv2.BORDER_REPLICATE)
    return tuple(np.repeat(np.repeat(a, scale, axis=0), scale, axis=1) for a in (low, high))


def clamp_upscaled_alpha(alpha_out: np.ndarray, alpha: np.ndarray, scale: int) -> np.ndarray:
    """Upscaled alpha clipped to the local input range (see :func:`local_alpha_range`).

    Removes the halo the generator (or bicubic) draws around a cut-out and keeps fully opaque
    areas exactly 1 and fully transparent areas exactly 0."""
    low, high = local_alpha_range(alpha, scale)
    return np.clip(alpha_out, low, high)


def is_gray(colour: np.ndarray) -> bool:
    """True when the three colour channels are equal (a gray + alpha file read as BGRA)."""
    return bool(np.array_equal(colour[:, :, 0], colour[:, :, 1]) and np.array_equal(colour[:, :, 0], colour[:, :, 2]))
