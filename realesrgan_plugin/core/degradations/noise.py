"""Gaussian and Poisson (shot) noise with per-sample strength and colour/gray choice.

Gray noise is one noise field shared by the three channels (luminance-only noise); colour
noise is independent per channel. Poisson noise follows the official model: the image is
quantised to 8 bit, its number of distinct levels ``n`` (per sample) is rounded up to a power
of two ``v``, and ``Poisson(img * v) / v - img`` is the noise, scaled by ``scale``. The distinct
levels are counted with one batched histogram, not a Python loop.
"""

from __future__ import annotations

import numbers

import torch

_GRAY_WEIGHTS = (0.2989, 0.587, 0.114)  # ITU-R 601 weights, as torchvision's rgb_to_grayscale


def to_gray(img: torch.Tensor) -> torch.Tensor:
    """B x 3 x H x W RGB -> B x 1 x H x W luminance (weights as kernel arguments: no host->device copy)."""
    r, g, b = _GRAY_WEIGHTS
    return img[:, 0:1] * r + img[:, 1:2] * g + img[:, 2:3] * b


def _per_sample(value, batch: int, ref: torch.Tensor) -> float | torch.Tensor:
    """A Python number stays one (a kernel argument); a tensor becomes B x 1 x 1 x 1 on ``ref``'s device."""
    if isinstance(value, numbers.Real):
        return float(value)
    return torch.as_tensor(value, dtype=ref.dtype).to(ref.device).expand(batch).reshape(batch, 1, 1, 1)


def _gray_choice(gray, batch: int, device: torch.device) -> tuple[bool, torch.Tensor | None]:
    """(whether a gray field is needed, the per-sample mask or None when all samples agree).

    A Python bool decides on the host. A tensor on the host is inspected there; a tensor on an
    accelerator is not (that would wait for the device): both fields are made and mixed.
    """
    if isinstance(gray, bool):
        return gray, None
    gray = torch.as_tensor(gray).expand(batch)
    if gray.device.type == 'cpu' and bool(gray.all()) == bool(gray.any()):
        return bool(gray.any()), None
    return True, gray.to(device=device, dtype=torch.bool)


def _mix_gray(color: torch.Tensor, gray: torch.Tensor, use_gray: torch.Tensor | None) -> torch.Tensor:
    if use_gray is None:
        return gray.expand_as(color)
    return torch.where(use_gray.view(-1, 1, 1, 1), gray.expand_as(color), color)


def gaussian_noise(img: torch.Tensor, sigma, gray=False, generator: torch.Generator | None = None) -> torch.Tensor:
    """Noise field N(0, (sigma/255)^2); ``sigma`` and ``gray`` are Python scalars or per-sample (B,)."""
    b, c, h, w = img.shape
    sigma = _per_sample(sigma, b, img) / 255.0
    need_gray, mask = _gray_choice(gray, b, img.device)
    if need_gray and mask is None:  # gray only: one field per sample, shared by the channels
        noise = torch.randn((b, 1, h, w), generator=generator, device=img.device, dtype=img.dtype).expand(b, c, h, w)
        return noise * sigma
    noise = torch.randn(img.shape, generator=generator, device=img.device, dtype=img.dtype)
    if need_gray:
        gray_noise = torch.randn((b, 1, h, w), generator=generator, device=img.device, dtype=img.dtype)
        noise = _mix_gray(noise, gray_noise, mask)
    return noise * sigma


def count_levels(img: torch.Tensor) -> torch.Tensor:
    """Number of distinct 8-bit levels in each sample of ``img`` (values in [0, 1]); shape (B,).

    A scatter into a B x 256 table, not ``torch.bincount``: on CUDA bincount reads the input's
    maximum back to the host to size its output (a device sync), and it has no meta kernel.
    """
    b = img.shape[0]
    levels = torch.clamp((img * 255.0).round(), 0, 255).to(torch.int64).reshape(b, -1)
    seen = torch.zeros(b, 256, device=img.device, dtype=torch.float32)
    seen.scatter_(1, levels, 1.0)
    return seen.sum(dim=1).to(torch.int64)


def _shot_noise(img: torch.Tensor, generator) -> torch.Tensor:
    img = torch.clamp((img * 255.0).round(), 0, 255) / 255.0
    vals = torch.exp2(torch.ceil(torch.log2(count_levels(img).to(torch.float32)))).to(img.dtype)
    vals = vals.view(-1, 1, 1, 1)
    return torch.poisson(img * vals, generator=generator) / vals - img


def poisson_noise(img: torch.Tensor, scale, gray=False, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shot noise field; ``scale`` and ``gray`` are Python scalars or per-sample (B,). Computed in float32."""
    b = img.shape[0]
    x = img.to(torch.float32)
    need_gray, mask = _gray_choice(gray, b, img.device)
    if need_gray and mask is None:
        noise = _shot_noise(to_gray(x), generator).expand_as(x)
    else:
        noise = _shot_noise(x, generator)
        if need_gray:
            noise = _mix_gray(noise, _shot_noise(to_gray(x), generator), mask)
    return (noise * _per_sample(scale, b, x)).to(img.dtype)


def add_noise(
    img: torch.Tensor,
    use_gaussian: bool | torch.Tensor,
    sigma,
    poisson_scale,
    gray,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Per sample either Gaussian (``sigma``) or Poisson (``poisson_scale``) noise, colour or
    ``gray``. Returns the noisy image clipped to [0, 1].

    ``use_gaussian`` as a Python bool applies one noise type to the whole batch and keeps every
    decision on the host (what the synthesis does); as a (B,) tensor the batch is split by it,
    which reads the tensor (a device sync when it lives on an accelerator). ``sigma``,
    ``poisson_scale`` and ``gray`` are Python scalars or (B,) tensors.
    """
    if isinstance(use_gaussian, bool):
        make, strength = (gaussian_noise, sigma) if use_gaussian else (poisson_noise, poisson_scale)
        return torch.clamp(img + make(img, strength, gray, generator), 0, 1)
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
