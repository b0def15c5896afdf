"""JPEG compression simulated in torch, batched, with one quality per sample.

The codec model is baseline JPEG as in DiffJPEG (used by the official Real-ESRGAN): RGB ->
YCbCr, 4:2:0 chroma subsampling by 2x2 averaging, 8x8 orthonormal DCT-II, quantisation by the
IJG tables scaled by the quality factor, then the inverse. The DCT is two 8x8 matrix products
on all blocks at once; quantisation tables are broadcast per sample, so there is no loop over
the batch. The tables are laid out exactly as in the official DiffJPEG (which indexes the IJG
tables transposed), so the artefacts match the pipeline the released models were trained on.

``differentiable=True`` replaces rounding by ``round(x) + (x - round(x))^3`` so gradients flow.
Images are padded to a multiple of 16 with zeros (as the official) and cropped back.
"""

from __future__ import annotations

import functools
import math
import numbers

import torch
from torch.nn import functional as F

# IJG standard tables (row = vertical frequency), transposed as in the official DiffJPEG.
_LUMA = [
    [16, 11, 10, 16, 24, 40, 51, 61],
    [12, 12, 14, 19, 26, 58, 60, 55],
    [14, 13, 16, 24, 40, 57, 69, 56],
    [14, 17, 22, 29, 51, 87, 80, 62],
    [18, 22, 37, 56, 68, 109, 103, 77],
    [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101],
    [72, 92, 95, 98, 112, 100, 103, 99],
]
_CHROMA_TOP = [[17, 18, 24, 47], [18, 21, 26, 66], [24, 26, 56, 99], [47, 66, 99, 99]]

_RGB_TO_YCBCR = [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]]
_YCBCR_TO_RGB = [[1.0, 0.0, 1.402], [1.0, -0.344136, -0.714136], [1.0, 1.772, 0.0]]


def luma_table(device=None) -> torch.Tensor:
    return torch.tensor(_LUMA, dtype=torch.float32, device=device).t()


def chroma_table(device=None) -> torch.Tensor:
    table = torch.full((8, 8), 99.0, device=device)
    table[:4, :4] = torch.tensor(_CHROMA_TOP, dtype=torch.float32, device=device).t()
    return table


def dct_matrix(device=None) -> torch.Tensor:
    """Orthonormal 8-point DCT-II matrix M (coefficients = M @ block @ M.T)."""
    n = torch.arange(8, dtype=torch.float64)
    m = torch.cos((2 * n.view(1, -1) + 1) * n.view(-1, 1) * math.pi / 16) * 0.5
    m[0] /= math.sqrt(2)
    return m.to(device=device, dtype=torch.float32)


def quality_to_factor(quality):
    """IJG quality (1..100) -> multiplier of the base tables: 50/q below 50, 2 - q/50 above.
    A Python number gives a Python number; a tensor gives a float32 tensor."""
    if isinstance(quality, numbers.Real):
        return 50.0 / quality if quality < 50 else 2.0 - quality / 50.0
    quality = quality.to(torch.float32)
    return torch.where(quality < 50, 50.0 / quality, 2.0 - quality / 50.0)


@functools.lru_cache(maxsize=8)
def _codec_constants(device: torch.device) -> tuple[torch.Tensor, ...]:
    """Luma and chroma tables, the 64 x 64 2-D DCT and the colour matrices on ``device``, made once
    per device: building them per call would be five host->device copies per JPEG pass."""
    dct = dct_matrix()
    tables = (luma_table(), chroma_table(), torch.kron(dct, dct))
    colours = (torch.tensor(_RGB_TO_YCBCR), torch.tensor(_YCBCR_TO_RGB))
    return tuple(t.to(device) for t in (*tables, *colours))


def _check_quality(quality) -> None:
    """Range check where it costs nothing: Python numbers and host tensors (reading a device
    tensor would wait for the device; the synthesis checks its draws on the host)."""
    values = [quality] if isinstance(quality, numbers.Real) else None
    if values is None and quality.device.type == 'cpu':
        values = quality.reshape(-1).tolist()
    if values and any(not 1 <= q <= 100 for q in values):
        raise ValueError(f'JPEG quality must be in [1, 100], got {values}')


def _diff_round(x: torch.Tensor) -> torch.Tensor:
    return torch.round(x) + (x - torch.round(x)) ** 3


def _to_blocks(plane: torch.Tensor) -> torch.Tensor:
    """B x H x W -> B x (H/8 * W/8) x 64, each row one 8x8 block in row-major order."""
    b, h, w = plane.shape
    return plane.reshape(b, h // 8, 8, w // 8, 8).transpose(2, 3).reshape(b, -1, 64)


def _from_blocks(blocks: torch.Tensor, h: int, w: int) -> torch.Tensor:
    b = blocks.shape[0]
    return blocks.reshape(b, h // 8, w // 8, 8, 8).transpose(2, 3).reshape(b, h, w)


def _quantise_roundtrip(plane: torch.Tensor, steps: torch.Tensor, rounding, dct2: torch.Tensor) -> torch.Tensor:
    """DCT, quantise with per-sample steps (B x 8 x 8), dequantise, inverse DCT; plane is 0-centred.

    ``dct2`` is the 64 x 64 2-D DCT (Kronecker product of the 1-D one), so each transform is a
    single large matrix product over all blocks instead of many tiny 8x8 ones.
    """
    h, w = plane.shape[-2:]
    steps = steps.reshape(-1, 1, 64)
    coeffs = _to_blocks(plane) @ dct2.t()
    coeffs = rounding(coeffs / steps) * steps
    return _from_blocks(coeffs @ dct2, h, w)


def jpeg_compress(img: torch.Tensor, quality, differentiable: bool = False) -> torch.Tensor:
    """Compress and decompress ``img`` (B x 3 x H x W RGB in [0, 1]) at ``quality`` (scalar or (B,)).

    Computed in float32 whatever the input dtype (8-bit levels and DCT coefficients up to ~2000
    need more precision than half); returns the input's dtype, values in [0, 1].
    """
    if img.ndim != 4 or img.shape[1] != 3:
        raise ValueError(f'jpeg_compress expects B x 3 x H x W RGB images, got {tuple(img.shape)}')
    b, _, h, w = img.shape
    device = img.device
    _check_quality(quality)
    if isinstance(quality, numbers.Real):
        factor = quality_to_factor(float(quality))
    else:
        factor = quality_to_factor(torch.as_tensor(quality).to(device)).expand(b).view(-1, 1, 1)
    luma, chroma_table_, dct2, to_ycc, to_rgb = _codec_constants(device)
    # A step below 1 cannot matter for 8-bit data; the clamp keeps quality 100 (factor 0) finite.
    luma_steps = torch.clamp(luma * factor, min=1.0).expand(b, 8, 8)
    chroma_steps = torch.clamp(chroma_table_ * factor, min=1.0).expand(b, 8, 8)
    rounding = _diff_round if differentiable else torch.round

    x = img.to(torch.float32) * 255.0
    pad_h, pad_w = (-h) % 16, (-w) % 16
    x = F.pad(x, (0, pad_w, 0, pad_h))
    ycc = torch.einsum('ij,bjhw->bihw', to_ycc, x)
    y = ycc[:, 0] - 128.0  # DCT works on 0-centred samples; chroma is already centred at 0
    chroma = F.avg_pool2d(ycc[:, 1:], kernel_size=2)
    y = _quantise_roundtrip(y, luma_steps, rounding, dct2) + 128.0
    cb = _quantise_roundtrip(chroma[:, 0], chroma_steps, rounding, dct2)
    cr = _quantise_roundtrip(chroma[:, 1], chroma_steps, rounding, dct2)
    chroma_up = torch.stack((cb, cr), dim=1).repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    ycc = torch.cat((y.unsqueeze(1), chroma_up), dim=1)
    rgb = torch.einsum('ij,bjhw->bihw', to_rgb, ycc)
    rgb = torch.clamp(rgb, 0, 255) / 255.0
    return rgb[:, :, :h, :w].to(img.dtype)


class DiffJPEG(torch.nn.Module):
    """Module form of :func:`jpeg_compress`: ``DiffJPEG(differentiable)(img, quality)``."""

    def __init__(self, differentiable: bool = True) -> None:
        super().__init__()
        self.differentiable = differentiable

    def forward(self, img: torch.Tensor, quality) -> torch.Tensor:
        return jpeg_compress(img, quality, self.differentiable)
