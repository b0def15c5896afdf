"""Colour and alpha treatment of transparent images around the network.

A generator trained on opaque photos sharpens every edge it sees, including an edge that only
exists in the hidden colour of transparent pixels. The official code feeds the colour as stored:
right when the transparent pixels kept the photo's background, but black, white or noise there
(what many exporters write) comes back as a dark, light or garish fringe. Premultiplying by alpha
(what this plugin did first) turns every cut-out into a colour-to-black edge, which the network
sharpens into a dark ring. Filling the transparent pixels from the visible ones leaves no edge to
sharpen and makes the result independent of the hidden colour.

No single fill is the hidden background, and x4plus lets what lies beyond the edge change colours
well inside the cut-out. The output wanted is the one the true background would give; not knowing
it, the least-squares guess is the mean output over plausible backgrounds. ``'auto'`` (the
default) therefore averages the network's outputs for three fills that extrapolate differently:
the nearest visible colour (flat streaks, as texture pipelines "bleed"), the visible pixels
mirrored across the edge (texture continues) and a multi-scale normalized convolution (smooth
shading continues). ``bench/bench_alpha.py`` measures each fill alone and the average: no fill
wins everywhere, and the average gains 0.3-1.0 dB in the edge band over the best of them (1.1-1.6
dB over the nearest colour alone), at three network runs. ``'auto'``
first tells a kept background (fed as stored, one run, exactly the official input) from black,
white or noise by the colour step from the visible edge into the transparent pixels.

Alpha, upscaled by the network or by a cv2 interpolation, is clamped to the range of its input
neighbourhood: no halo beyond the cut-out, and fully opaque / fully transparent areas stay exact.
"""

from __future__ import annotations

import cv2
import numpy as np

ALPHA_COLOURS = ('auto', 'fills', 'bleed', 'raw')
# Median colour step from the visible edge into the transparent pixels: photo cut-outs whose
# transparent pixels hold the true background measure 0.03-0.06 (bench/bench_alpha.py), black,
# white or noise 0.44-0.93. Between these two values 'auto' blends the stored and the filled colour.
TRUE_BACKGROUND_STEP = 0.15
GARBAGE_STEP = 0.3
# Normalized convolution: Gaussian scales (input px), coarse ones fill what fine ones cannot reach,
# and the visible weight at which a scale's estimate is fully trusted.
SMOOTH_FILL_SIGMAS = (32, 16, 8, 4, 2, 1)
SMOOTH_FILL_TRUST = 0.5


def visible_mask(alpha: np.ndarray) -> np.ndarray:
    """Pixels whose stored colour counts: any alpha above zero (anti-aliased edges hold real colour)."""
    return alpha > 0


def nearest_visible_pixel(visible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) of each pixel's nearest visible pixel (a visible pixel is its own).

    One Euclidean distance transform with pixel labels; a label -> coordinates table then maps
    every pixel in one gather."""
    hidden = np.ascontiguousarray(~visible, dtype=np.uint8)  # distances are measured to the zeros
    _, labels = cv2.distanceTransformWithLabels(hidden, cv2.DIST_L2, cv2.DIST_MASK_5, labelType=cv2.DIST_LABEL_PIXEL)
    rows = np.zeros(int(labels.max()) + 1, np.intp)
    cols = np.zeros_like(rows)
    rows[labels[visible]], cols[labels[visible]] = np.nonzero(visible)
    return rows[labels], cols[labels]


def nearest_visible_colour(colour: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """Each pixel's colour replaced by that of its nearest visible pixel (visible pixels keep theirs)."""
    if visible.all() or not visible.any():
        return colour
    rows, cols = nearest_visible_pixel(visible)
    return colour[rows, cols]


def mirrored_colour(colour: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """Each hidden pixel given the colour of its mirror image through its nearest visible pixel,
    so the texture beside the edge continues past it; the nearest colour where that mirror image
    is itself hidden or off the image."""
    if visible.all() or not visible.any():
        return colour
    rows, cols = nearest_visible_pixel(visible)
    h, w = visible.shape
    yy, xx = np.indices((h, w))
    my, mx = 2 * rows - yy, 2 * cols - xx
    inside = (my >= 0) & (my < h) & (mx >= 0) & (mx < w)
    my, mx = np.where(inside, my, rows), np.where(inside, mx, cols)
    usable = visible[my, mx]
    return np.where(usable[:, :, None], colour[my, mx], colour[rows, cols])


def smooth_colour(colour: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """Hidden pixels filled by normalized convolution over several scales, coarse to fine: at each
    scale the visible-weighted Gaussian mean replaces the coarser estimate as far as enough visible
    pixels lie within reach. Continues shading smoothly, with no streaks and no edges."""
    if visible.all() or not visible.any():
        return colour
    weight = visible.astype(np.float32)
    weighted = colour.astype(np.float32) * weight[:, :, None]
    filled = np.broadcast_to(weighted.sum((0, 1)) / weight.sum(), colour.shape).astype(np.float32)
    for sigma in SMOOTH_FILL_SIGMAS:
        w = cv2.GaussianBlur(weight, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
        estimate = (
            cv2.GaussianBlur(weighted, (0, 0), sigma, borderType=cv2.BORDER_REFLECT) / np.maximum(w, 1e-6)[:, :, None]
        )
        trust = np.clip(w / SMOOTH_FILL_TRUST, 0, 1)[:, :, None]
        filled = trust * estimate + (1 - trust) * filled
    return np.where(visible[:, :, None], colour, filled).astype(colour.dtype)


def bleed_transparent(colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """HxWx3 float colour with every fully transparent pixel given its nearest visible colour.

    The hidden colour of transparent pixels then never reaches the network, and the cut-out's
    colour continues past its edge instead of meeting black, white or noise there."""
    return nearest_visible_colour(colour, visible_mask(alpha))


def fill_transparent(colour: np.ndarray, alpha: np.ndarray) -> list[np.ndarray]:
    """The three fills of the fully transparent pixels whose network outputs are averaged:
    nearest, mirrored and smooth (see the module docstring). One array when nothing is hidden."""
    visible = visible_mask(alpha)
    if visible.all() or not visible.any():
        return [colour]
    return [nearest_visible_colour(colour, visible), mirrored_colour(colour, visible), smooth_colour(colour, visible)]


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


def auto_colours(colour: np.ndarray, alpha: np.ndarray) -> list[np.ndarray]:
    """The stored colour where the transparent pixels continue the visible edge (a cut-out that
    kept its true background: the network then sees the photo it was trained on, exactly as the
    official code feeds it), the three fills where they hold black, white or noise."""
    fills = fill_transparent(colour, alpha)
    if len(fills) == 1:
        return fills
    keep = keep_weight(edge_mismatch(colour, fills[0], alpha))
    if keep == 1.0:
        return [colour]
    if keep == 0.0:
        return fills
    return [(keep * colour + (1 - keep) * f).astype(colour.dtype) for f in fills]


def network_colours(colour: np.ndarray, alpha: np.ndarray, mode: str) -> list[np.ndarray]:
    """The colour images the network sees for one of :data:`ALPHA_COLOURS`; their outputs are
    averaged. 'auto': see :func:`auto_colours`; 'fills': always the three fills; 'bleed': the
    nearest visible colour alone (one network run: the fast choice, about 1 dB less in the edge
    band); 'raw': as stored (the official)."""
    if mode == 'auto':
        return auto_colours(colour, alpha)
    if mode == 'fills':
        return fill_transparent(colour, alpha)
    if mode == 'bleed':
        return [bleed_transparent(colour, alpha)]
    if mode == 'raw':
        return [colour]
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
