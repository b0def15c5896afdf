"""Filtering, resizing and USM sharpening on batches of images (B x C x H x W, any device).

``filter2d`` applies one kernel per sample with reflect padding (like ``cv2.filter2D`` with
``BORDER_REFLECT_101``). It trims kernel borders that are zero for the whole batch first (the
official pads every kernel to 21x21, which costs up to 9x the work for a 7x7 kernel) and works
on any memory layout (``reshape``, never ``view``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from realesrgan_plugin.core.degradations.batching import take_rows

import torch
from torch.nn import functional as F

RESIZE_MODES = ('area', 'bilinear', 'bicubic')


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    """Half precision convolutions are slow or missing on CPU: compute in float32 there."""
    if x.device.type == 'cpu' and x.dtype in (torch.float16, torch.bfloat16):
        return torch.float32
    return x.dtype


def reflect_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Pad the last two dims by ``pad`` like ``cv2.BORDER_REFLECT_101``, also when ``pad`` is not
    smaller than the image (torch's reflect refuses that; cv2 reflects repeatedly, and the
    second-order downscales can leave a few pixels under a 21x21 kernel). 1-pixel sides repeat."""
    if min(x.shape[-2:]) == 1:
        return F.pad(x, (pad,) * 4, mode='replicate')
    for dim in (-1, -2):  # each side by steps of (its current length - 1): repeated reflection
        left = pad
        while left > 0:
            step = min(left, x.shape[dim] - 1)
            x = F.pad(x, (step, step, 0, 0) if dim == -1 else (0, 0, step, step), mode='reflect')
            left -= step
    return x


def kernel_radii(kernel: torch.Tensor, tolerance: float = 0.0) -> torch.Tensor:
    """Per kernel (B x K x K) the smallest radius r whose centred (2r+1)^2 window leaves out
    at most ``tolerance`` of the absolute kernel mass (0: only exact zeros are left out)."""
    k = kernel.shape[-1]
    centre = k // 2
    ax = torch.arange(k, device=kernel.device) - centre
    ring = torch.maximum(ax.abs().view(-1, 1), ax.abs().view(1, -1))  # Chebyshev distance
    one_hot = torch.nn.functional.one_hot(ring.flatten(), centre + 1).to(kernel.dtype)
    mass = kernel.abs().reshape(kernel.shape[0], -1) @ one_hot  # B x (centre+1) mass per ring
    outside = mass.flip(-1).cumsum(-1).flip(-1)  # outside[r] = mass at distance >= r
    outside = torch.cat([outside[:, 1:], torch.zeros_like(outside[:, :1])], dim=1)  # distance > r
    return (outside > tolerance).sum(dim=1)


def _filter_same_size(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Depthwise correlation of B x C x H x W with B kernels of one odd size (reflect padding)."""
    b, c, h, w = x.shape
    k = kernel.shape[-1]
    if k > 1:
        x = reflect_pad(x, k // 2)
    # Depthwise convolution (one group per channel) is several times faster on CPU than a
    # batch of single-channel images, so even a shared kernel is repeated per channel.
    weight = kernel.repeat_interleave(c, dim=0).unsqueeze(1)
    return F.conv2d(x.reshape(1, b * c, *x.shape[-2:]), weight, groups=b * c).reshape(b, c, h, w)


def filter2d(
    img: torch.Tensor, kernel: torch.Tensor, tolerance: float = 0.0, radii: Sequence[int] | None = None
) -> torch.Tensor:
    """Correlate each image of ``img`` (B x C x H x W) with its kernel (B x k x k, or k x k / 1 x k x k
    for one kernel shared by all) with reflect padding; output has the input's size and dtype.

    Each kernel is cut to the support that holds all but ``tolerance`` of its mass (then
    renormalised) and samples are filtered in groups of equal support: a 7x7 kernel padded to
    21x21 costs 49 multiplies per pixel here, not 441. ``tolerance=0`` is exact. ``radii``: the
    supports as computed by :func:`kernel_radii` on the host copy of the kernels; without them
    they are computed here, which reads the kernels (a device sync on an accelerator).
    """
    if kernel.shape[-1] % 2 != 1 or kernel.shape[-1] != kernel.shape[-2]:
        raise ValueError(f'filter2d needs square kernels of odd size, got {tuple(kernel.shape)}')
    b = img.shape[0]
    dtype = _compute_dtype(img)
    kernel = kernel.to(device=img.device, dtype=dtype).reshape(-1, *kernel.shape[-2:])
    if kernel.shape[0] not in (1, b):
        raise ValueError(f'filter2d got {kernel.shape[0]} kernels for a batch of {b} images')
    kernel = kernel.expand(b, *kernel.shape[-2:])
    x = img.to(dtype)
    centre = kernel.shape[-1] // 2
    if radii is None:
        radii = kernel_radii(kernel, tolerance).tolist()
    elif len(radii) != b:
        raise ValueError(f'filter2d got {len(radii)} kernel radii for a batch of {b} images')
    groups: dict[int, list[int]] = {}
    for i, radius in enumerate(radii):
        groups.setdefault(int(radius), []).append(i)
    parts: list[torch.Tensor | None] = [None] * b
    for radius, rows in sorted(groups.items()):
        part = take_rows(kernel, rows)[:, centre - radius : centre + radius + 1, centre - radius : centre + radius + 1]
        if tolerance > 0:
            part = part / part.sum(dim=(-2, -1), keepdim=True)
        if len(rows) == b:
            return _filter_same_size(x, part).to(img.dtype)
        out = _filter_same_size(take_rows(x, rows), part)
        for j, i in enumerate(rows):
            parts[i] = out[j : j + 1]
    return torch.cat(parts).to(img.dtype)


def separable_filter(img: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Filter with the outer product ``taps x taps`` as two 1-D passes (reflect padding)."""
    b, c, h, w = img.shape
    dtype = _compute_dtype(img)
    k = taps.numel()
    taps = taps.to(device=img.device, dtype=dtype)
    n = b * c
    x = reflect_pad(img.to(dtype).reshape(1, n, h, w), k // 2)
    # Depthwise passes: much faster on CPU than n single-channel images.
    x = F.conv2d(x, taps.reshape(1, 1, 1, k).expand(n, 1, 1, k), groups=n)
    x = F.conv2d(x, taps.reshape(1, 1, k, 1).expand(n, 1, k, 1), groups=n)
    return x.reshape(b, c, h, w).to(img.dtype)


def gaussian_taps(size: int, sigma: float = 0.0) -> torch.Tensor:
    """1-D Gaussian as ``cv2.getGaussianKernel``: sigma <= 0 means ``0.3*((size-1)/2 - 1) + 0.8``."""
    if sigma <= 0:
        sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    taps = torch.exp(-(x**2) / (2 * sigma**2))
    return (taps / taps.sum()).to(torch.float32)


class USMSharp(torch.nn.Module):
    """Unsharp masking as used on Real-ESRGAN's ground truth.

    ``out = m * clip(I + weight*(I - G*I)) + (1 - m) * I`` where ``m`` is the Gaussian-blurred
    mask of pixels whose residual exceeds ``threshold``/255. The 51-tap Gaussian (sigma 8) is
    separable, so it runs as two 1-D passes: 102 multiplies per pixel instead of 2601.
    """

    def __init__(self, radius: int = 50, sigma: float = 0.0) -> None:
        super().__init__()
        if radius % 2 == 0:
            radius += 1
        self.radius = radius
        self.register_buffer('taps', gaussian_taps(radius, sigma), persistent=False)

    @property
    def kernel(self) -> torch.Tensor:
        """The equivalent 1 x k x k 2-D kernel (for comparison with non-separable filters)."""
        return torch.outer(self.taps, self.taps).unsqueeze(0)

    def forward(self, img: torch.Tensor, weight: float = 0.5, threshold: float = 10) -> torch.Tensor:
        blur = separable_filter(img, self.taps)
        residual = img - blur
        mask = (residual.abs() * 255 > threshold).to(img.dtype)
        soft_mask = separable_filter(mask, self.taps)
        sharp = torch.clamp(img + weight * residual, 0, 1)
        return soft_mask * sharp + (1 - soft_mask) * img


def resize(
    img: torch.Tensor, mode: str, size: tuple[int, int] | None = None, scale: float | None = None
) -> torch.Tensor:
    """``F.interpolate`` with one of the Real-ESRGAN modes, by output ``size`` or by ``scale``
    (by scale, pixel geometry follows the scale itself, as in the official first stage)."""
    if mode not in RESIZE_MODES:
        raise ValueError(f'resize mode must be one of {RESIZE_MODES}, got {mode!r}')
    dtype = _compute_dtype(img)
    x = img.to(dtype)
    if size is not None:
        size = (max(1, int(size[0])), max(1, int(size[1])))
        if size == tuple(x.shape[-2:]):
            return img
        out = F.interpolate(x, size=size, mode=mode)
    else:
        if scale == 1:
            return img
        if math.floor(x.shape[-2] * scale) < 1 or math.floor(x.shape[-1] * scale) < 1:
            raise ValueError(f'resizing {tuple(x.shape[-2:])} by {scale} leaves no pixels')
        out = F.interpolate(x, scale_factor=scale, mode=mode)
    return out.to(img.dtype)
