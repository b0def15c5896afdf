"""Gaussian and Poisson (shot) noise with per-sample strength and colour/gray choice.

Gray noise is one noise field shared by the three channels (luminance-only noise); colour
noise is independent per channel. Poisson noise follows the official model: the image is
quantised to 8 bit, its number of distinct levels ``n`` (per sample) is rounded up to a power
of two ``v``, and ``Poisson(img * v) / v - img`` is the noise, scaled by ``scale``. The distinct
levels are counted with one batched histogram, not a Python loop.
"""

from __future__ import annotations

import torch

_GRAY_WEIGHTS = (0.2989, 0.587, 0.114)  # ITU-R 601 weights, as torchvision's rgb_to_grayscale


def to_gray(img: torch.Tensor) -> torch.Tensor:
    """B x 3 x H x W RGB -> B x 1 x H x W luminance."""
    w = torch.tensor(_GRAY_WEIGHTS, dtype=img.dtype, device=img.device).view(1, 3, 1, 1)
    return (img * w).sum(dim=1, keepdim=True)


def _per_sample(value, batch: int, ref: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(value, dtype=ref.dtype, device=ref.device).expand(batch).reshape(batch, 1, 1, 1)


def _mix_gray(color: torch.Tensor, gray: torch.Tensor, use_gray: torch.Tensor) -> torch.Tensor:
    return torch.where(use_gray.view(-1, 1, 1, 1).to(color.device), gray.expand_as(color), color)


def gaussian_noise(img: torch.Tensor, sigma, gray=False, generator: torch.Generator | None = None) -> torch.Tensor:
    """Noise field N(0, (sigma/255)^2); ``sigma`` and ``gray`` are scalars or per-sample (B,)."""
    b, c, h, w = img.shape
    sigma = _per_sample(sigma, b, img) / 255.0
    use_gray = torch.as_tensor(gray, device=img.device).expand(b)
    noise = torch.randn(img.shape, generator=generator, device=img.device, dtype=img.dtype)
    if bool(use_gray.any()):
        gray_noise = torch.randn((b, 1, h, w), generator=generator, device=img.device, dtype=img.dtype)
        noise = _mix_gray(noise, gray_noise, use_gray)
    return noise * sigma


def count_levels(img: torch.Tensor) -> torch.Tensor:
    """Number of distinct 8-bit levels in each sample of ``img`` (values in [0, 1]); shape (B,)."""
    b = img.shape[0]
    levels = torch.clamp((img * 255.0).round(), 0, 255).to(torch.int64).reshape(b, -1)
    offsets = torch.arange(b, device=img.device).view(-1, 1) * 256
    hist = torch.bincount((levels + offsets).flatten(), minlength=256 * b).view(b, 256)
    return (hist > 0).sum(dim=1)


def _shot_noise(img: torch.Tensor, generator) -> torch.Tensor:
    img = torch.clamp((img * 255.0).round(), 0, 255) / 255.0
    vals = torch.exp2(torch.ceil(torch.log2(count_levels(img).to(torch.float32)))).to(img.dtype)
    vals = vals.view(-1, 1, 1, 1)
    return torch.poisson(img * vals, generator=generator) / vals - img


def poisson_noise(img: torch.Tensor, scale, gray=False, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shot noise field; ``scale`` and ``gray`` are scalars or per-sample (B,). Computed in float32."""
    b = img.shape[0]
    x = img.to(torch.float32)
    use_gray = torch.as_tensor(gray, device=img.device).expand(b)
    noise = _shot_noise(x, generator)
    if bool(use_gray.any()):
        noise = _mix_gray(noise, _shot_noise(to_gray(x), generator), use_gray)
    return (noise * _per_sample(scale, b, x)).to(img.dtype)


def add_noise(
    img: torch.Tensor,
    use_gaussian: torch.Tensor,
    sigma: torch.Tensor,
    poisson_scale: torch.Tensor,
    gray: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Per sample either Gaussian (``sigma``) or Poisson (``poisson_scale``) noise, colour or
    ``gray``; all arguments are (B,) tensors. Returns the noisy image clipped to [0, 1]."""
    use_gaussian = use_gaussian.to(img.device)
    out = img.clone()
    for pick, make in ((use_gaussian, gaussian_noise), (~use_gaussian, poisson_noise)):
        idx = pick.nonzero().flatten()
        if idx.numel() == 0:
            continue
        strength = (sigma if make is gaussian_noise else poisson_scale).to(img.device)[idx]
        part = img.index_select(0, idx)
        out[idx] = part + make(part, strength, gray.to(img.device)[idx], generator)
    return torch.clamp(out, 0, 1)
