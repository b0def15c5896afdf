"""Blur kernels for the degradation model, generated in batches on any device.

Every kernel of a batch lives on one ``K x K`` grid (``K`` = the largest size, 21 by default)
and a per-sample size ``k`` in 7..K is obtained by masking the grid to its centred ``k x k``
window before normalising. Zero-padding a ``k x k`` kernel to ``K x K`` is exactly what the
official code does, so filtering gives the same result, and the whole batch needs no Python
loop. Grid convention (as in BasicSR's ``mesh_grid``): ``x`` runs along columns, ``y`` along rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

KERNEL_TYPES = ('iso', 'aniso', 'generalized_iso', 'generalized_aniso', 'plateau_iso', 'plateau_aniso')
_ISOTROPIC = {'iso', 'generalized_iso', 'plateau_iso'}


def centred_grid(size: int, device=None, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) coordinate grids of shape ``size x size`` with 0 at the centre."""
    ax = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    y, x = torch.meshgrid(ax, ax, indexing='ij')
    return x, y


def size_mask(sizes: torch.Tensor, grid_size: int) -> torch.Tensor:
    """B x K x K mask that is 1 inside each sample's centred ``sizes[b] x sizes[b]`` window."""
    x, y = centred_grid(grid_size, device=sizes.device)
    radius = (sizes.to(x.dtype) - 1).div(2).view(-1, 1, 1)
    return ((x.abs() <= radius) & (y.abs() <= radius)).to(torch.float32)


def _normalise(kernel: torch.Tensor) -> torch.Tensor:
    return kernel / kernel.sum(dim=(-2, -1), keepdim=True)


def quadratic_form(sigma_x: torch.Tensor, sigma_y: torch.Tensor, theta: torch.Tensor, grid_size: int) -> torch.Tensor:
    """``[x y] Sigma^-1 [x y]^T`` on the grid, Sigma = R(theta) diag(sx^2, sy^2) R(theta)^T; B x K x K."""
    x, y = centred_grid(grid_size, device=sigma_x.device, dtype=torch.float32)
    sx, sy, th = (t.to(torch.float32).view(-1, 1, 1) for t in (sigma_x, sigma_y, theta))
    cos, sin = torch.cos(th), torch.sin(th)
    # Rotate the grid into the kernel's principal axes; then the form is diagonal.
    u = cos * x + sin * y
    v = -sin * x + cos * y
    return (u / sx) ** 2 + (v / sy) ** 2


def gaussian_kernels(sigma_x, sigma_y, theta, grid_size: int, beta=None) -> torch.Tensor:
    """(Generalised) bivariate Gaussian ``exp(-0.5 * Q^beta)``, normalised; beta=None means 1."""
    q = quadratic_form(sigma_x, sigma_y, theta, grid_size)
    if beta is not None:
        q = q.pow(beta.to(torch.float32).view(-1, 1, 1))
    return _normalise(torch.exp(-0.5 * q))


def plateau_kernels(sigma_x, sigma_y, theta, beta, grid_size: int) -> torch.Tensor:
    """Plateau-shaped kernel ``1 / (1 + Q^beta)``, normalised."""
    q = quadratic_form(sigma_x, sigma_y, theta, grid_size)
    return _normalise(1.0 / (q.pow(beta.to(torch.float32).view(-1, 1, 1)) + 1.0))


def sinc_kernels(cutoff: torch.Tensor, sizes: torch.Tensor, grid_size: int) -> torch.Tensor:
    """Circularly symmetric ideal low-pass (2-D sinc / jinc) with cutoff ``omega_c`` in radians,
    truncated to each sample's size and normalised; ``cutoff*J1(cutoff*r) / (2*pi*r)``."""
    x, y = centred_grid(grid_size, device=cutoff.device, dtype=torch.float32)
    r = torch.sqrt(x**2 + y**2)
    wc = cutoff.to(torch.float32).view(-1, 1, 1)
    safe_r = torch.where(r == 0, torch.ones_like(r), r)
    kernel = wc * torch.special.bessel_j1(wc * safe_r) / (2 * math.pi * safe_r)
    kernel = torch.where(r == 0, wc**2 / (4 * math.pi), kernel)
    return _normalise(kernel * size_mask(sizes, grid_size))


def pulse_kernels(batch: int, grid_size: int, device=None) -> torch.Tensor:
    """Identity kernels (a 1 in the centre): filtering with them changes nothing."""
    kernel = torch.zeros(batch, grid_size, grid_size, device=device)
    kernel[:, grid_size // 2, grid_size // 2] = 1
    return kernel


@dataclass(frozen=True)
class KernelSettings:
    """Parameters of one stage's random blur kernel (the official dataset option names)."""

    kernel_size: int = 21
    kernel_list: Sequence[str] = KERNEL_TYPES
    kernel_prob: Sequence[float] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
    sinc_prob: float = 0.1
    blur_sigma: Sequence[float] = (0.2, 3.0)
    betag_range: Sequence[float] = (0.5, 4.0)
    betap_range: Sequence[float] = (1.0, 2.0)

    def __post_init__(self) -> None:
        if self.kernel_size % 2 != 1 or self.kernel_size < 7:
            raise ValueError(f'blur_kernel_size must be odd and >= 7, got {self.kernel_size}')
        if len(self.kernel_list) != len(self.kernel_prob):
            raise ValueError(
                f'kernel_list {list(self.kernel_list)} and kernel_prob {list(self.kernel_prob)} differ in length'
            )
        unknown = set(self.kernel_list) - set(KERNEL_TYPES)
        if unknown:
            raise ValueError(f'unknown kernel type(s) {sorted(unknown)} in kernel_list; known: {list(KERNEL_TYPES)}')


def _uniform(n: int, low: float, high: float, device, generator) -> torch.Tensor:
    return torch.rand(n, device=device, generator=generator) * (high - low) + low


def _random_sizes(n: int, max_size: int, device, generator) -> torch.Tensor:
    """Odd sizes 7, 9, ..., max_size, uniformly (the official range is 7..21)."""
    choices = (max_size - 7) // 2 + 1
    return torch.randint(0, choices, (n,), device=device, generator=generator) * 2 + 7


def _random_beta(n: int, beta_range: Sequence[float], device, generator) -> torch.Tensor:
    """Half the time below 1, half above, as the official sampler (which assumes low < 1 < high)."""
    below = _uniform(n, beta_range[0], 1.0, device, generator)
    above = _uniform(n, 1.0, beta_range[1], device, generator)
    return torch.where(torch.rand(n, device=device, generator=generator) < 0.5, below, above)


def random_blur_kernels(
    batch: int, settings: KernelSettings, device=None, generator: torch.Generator | None = None
) -> torch.Tensor:
    """One random blur kernel per sample (B x K x K): with ``sinc_prob`` a sinc, else a kernel of
    ``kernel_list`` drawn by ``kernel_prob`` with sigma, rotation and beta from the settings."""
    n, big = batch, settings.kernel_size
    sizes = _random_sizes(n, big, device, generator)
    is_sinc = torch.rand(n, device=device, generator=generator) < settings.sinc_prob
    # Small sinc kernels get a higher minimum cutoff (their ringing would otherwise be truncated).
    low = torch.where(sizes < 13, torch.full_like(sizes, 3), torch.full_like(sizes, 5)).to(torch.float32)
    cutoff = math.pi / low + torch.rand(n, device=device, generator=generator) * (math.pi - math.pi / low)

    probs = torch.as_tensor(list(settings.kernel_prob), dtype=torch.float32, device=device)
    kind = torch.multinomial(probs, n, replacement=True, generator=generator)
    names = list(settings.kernel_list)
    iso = torch.tensor([name in _ISOTROPIC for name in names], device=device)[kind]
    sigma_x = _uniform(n, *settings.blur_sigma, device, generator)
    sigma_y = torch.where(iso, sigma_x, _uniform(n, *settings.blur_sigma, device, generator))
    theta = torch.where(iso, torch.zeros_like(sigma_x), _uniform(n, -math.pi, math.pi, device, generator))
    beta_g = _random_beta(n, settings.betag_range, device, generator)
    beta_p = _random_beta(n, settings.betap_range, device, generator)

    family = torch.tensor([0 if name in ('iso', 'aniso') else 1 if 'generalized' in name else 2 for name in names])
    family = family.to(device)[kind]
    beta = torch.where(family == 0, torch.ones_like(beta_g), torch.where(family == 1, beta_g, beta_p))
    mask = size_mask(sizes, big)
    gauss = gaussian_kernels(sigma_x, sigma_y, theta, big, beta) * mask
    plateau = plateau_kernels(sigma_x, sigma_y, theta, beta, big) * mask
    kernel = _normalise(torch.where((family == 2).view(-1, 1, 1), plateau, gauss))
    sinc = sinc_kernels(cutoff, sizes, big)
    return torch.where(is_sinc.view(-1, 1, 1), sinc, kernel)


def random_final_sinc_kernels(
    batch: int, prob: float, grid_size: int = 21, device=None, generator: torch.Generator | None = None
) -> torch.Tensor:
    """The last-stage filter: with ``prob`` a sinc (size 7..K, cutoff in [pi/3, pi]), else a pulse."""
    sizes = _random_sizes(batch, grid_size, device, generator)
    cutoff = _uniform(batch, math.pi / 3, math.pi, device, generator)
    use = torch.rand(batch, device=device, generator=generator) < prob
    sinc = sinc_kernels(cutoff, sizes, grid_size)
    return torch.where(use.view(-1, 1, 1), sinc, pulse_kernels(batch, grid_size, device))
