"""Upsampler: the plugin's RealESRGANer. numpy image in, numpy image out, any size, any device.

Differences from the official ``RealESRGANer`` that users see:
- Tiles overlap by ``8 * tile_pad`` and are blended with linear ramps centred in the overlap (a
  window's output counts from ``3 * tile_pad`` pixels of real context, fully from ``5 * tile_pad``),
  so tiled output matches untiled output to 55-65 dB instead of showing seams. Windows are as few
  and as small as that allows: the network sees 1.24x the official's pixels at 512x512 with tile 256,
  1.34x at 1024x768 (bench/bench_tiles.py).
- All tiles have one size, so they are run in batches (``batch_tiles``).
- An out-of-memory error halves the batch, then the window (tile_pad too once the overlap would
  fill half of it), and tries again.
- fp32 unless asked otherwise (``dtype``); bit depth follows the array dtype (uint8 / uint16),
  never pixel values; gray in, gray out (gray + alpha too).
- Transparent images (BGRA): the colour of fully transparent pixels is kept where it continues
  the visible edge; otherwise the network's outputs for three fills from the visible pixels are
  averaged, so black, white or noise behind a cut-out gives no dark halo or colour fringe (the
  official feeds it to the network);
  the upscaled alpha is clipped to its local input range: no halo, exact 0 and full scale.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

from realesrgan_plugin.core.img_io import max_value
from realesrgan_plugin.core.windows import window_starts
from realesrgan_plugin.inference import winograd as winograd_kernels
from realesrgan_plugin.inference.alpha import (
    ALPHA_COLOURS,
    clamp_upscaled_alpha,
    is_gray,
    network_colours,
)
from realesrgan_plugin.inference.fast_rrdb import FastRRDBNet, is_rrdbnet
from realesrgan_plugin.inference.winograd_rrdb import WinogradRRDBNet
from realesrgan_plugin.inference.winograd_srvgg import WinogradSRVGGNet, is_srvgg

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ALPHA_UPSAMPLERS = ('realesrgan', 'bicubic', 'bilinear', 'nearest')
MIN_TILE = 8


class InputImageError(ValueError):
    """The array given to :meth:`Upsampler.enhance` is not an image the upsampler can take."""


def cpu_has_native_bf16() -> bool:
    """True where oneDNN runs bf16 convs in hardware (AVX-512 bf16 or AMX)."""
    cpu = torch.cpu
    checks = ('_is_avx512_bf16_supported', '_is_amx_tile_supported')
    return any(getattr(cpu, name, lambda: False)() for name in checks)


def _resolve_device(device: str | torch.device | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device('cuda')
    if getattr(torch.backends, 'mps', None) is not None and torch.backends.mps.is_available():
        return torch.device('mps')
    return torch.device('cpu')


def _resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    names = {'fp32': torch.float32, 'float32': torch.float32, 'fp16': torch.float16, 'half': torch.float16}
    names |= {'float16': torch.float16, 'bf16': torch.bfloat16, 'bfloat16': torch.bfloat16}
    if dtype not in names:
        raise ValueError(f'dtype must be one of {sorted(names)} or a torch.dtype, got {dtype!r}')
    return names[dtype]


def _pad_bottom_right(x: torch.Tensor, pad_h: int, pad_w: int) -> torch.Tensor:
    """Reflect-pad bottom/right like the official code; replicate where the image is too small to reflect."""
    if pad_h == 0 and pad_w == 0:
        return x
    mode = 'reflect' if pad_h < x.shape[2] and pad_w < x.shape[3] else 'replicate'
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


# Tile blending, in units of tile_pad (input pixels): neighbouring windows overlap by OVERLAP; a
# window's output counts from RAMP_START from an inner border, fully from RAMP_END. Measured with
# x4plus, tile 64 / pad 10 on 200x200 astronaut | chelsea, PSNR(tiled, untiled): overlap 4, ramp
# 1.5-2.5: 46.8 | 42.9 dB; overlap 6, ramp 2.5-3.5: 52.3 | 47.8; overlap 8, ramp 1.5-3.5 (the
# old ramp): 56.8 | 52.5; overlap 8, ramp 3-5: 60.3 | 55.8 (context is best spent at the crossing).
OVERLAP, RAMP_START, RAMP_END = 8, 3.0, 5.0


def blend_ramp(
    size_out: int,
    scale: int,
    tile_pad: int,
    at_start: bool,
    at_end: bool,
    ramp: tuple[float, float] = (RAMP_START, RAMP_END),
) -> torch.Tensor:
    """1-D weights of one window's output along one axis.

    Zero up to ``ramp[0] * tile_pad`` input pixels from an inner window border (too little context
    there), rising linearly to one at ``ramp[1] * tile_pad``; sides on the image border keep weight
    one (the untiled network sees the same border there). Windows overlap by ``OVERLAP * tile_pad``,
    more than ``ramp[0] + ramp[1]``, so every pixel has a window with weight one or two with
    well over a quarter."""
    if tile_pad <= 0:
        return torch.ones(size_out)
    lo, hi = ramp
    dist = (torch.arange(size_out, dtype=torch.float32) + 0.5) / scale  # in input pixels
    w = torch.ones(size_out)
    if not at_start:
        w = w * ((dist - lo * tile_pad) / ((hi - lo) * tile_pad)).clamp(0, 1)
    if not at_end:
        w = w * ((dist.flip(0) - lo * tile_pad) / ((hi - lo) * tile_pad)).clamp(0, 1)
    return w


def halved_window(window: int, tile_pad: int) -> tuple[int, int]:
    """``(tile, tile_pad)`` whose windows are at most half of ``window`` (the out-of-memory
    fallback). The overlap may take at most half of a window, so with small windows tile_pad
    shrinks too: faint seams rather than no result."""
    target = window // 2
    tile_pad = min(tile_pad, target // (2 * OVERLAP))
    return target - OVERLAP * tile_pad, tile_pad


def is_out_of_memory(err: BaseException) -> bool:
    """CUDA raises ``torch.OutOfMemoryError``; the CPU and MPS allocators raise a plain RuntimeError."""
    if isinstance(err, torch.OutOfMemoryError):
        return True
    text = str(err)
    return isinstance(err, RuntimeError) and ("can't allocate memory" in text or 'out of memory' in text.lower())


@dataclass
class _Plan:
    window_h: int
    window_w: int
    ys: list[int]
    xs: list[int]


class Upsampler:
    """Run a Real-ESRGAN generator over numpy images.

    Args:
        model: the generator (``RRDBNet``, ``SRVGGNetCompact`` or any ``nn.Module`` mapping
            Bx3xHxW in [0,1] to Bx3x(sH)x(sW)).
        scale: the network's integer scale factor.
        tile: tile size in input pixels (0: whole image). Each window holds at most
            ``tile + 8 * tile_pad`` pixels a side (that bounds its memory); neighbours overlap by
            ``8 * tile_pad`` and are blended over ``2 * tile_pad`` pixels in the middle of it.
        tile_pad: see ``tile``. pre_pad: reflect padding added bottom/right before the network.
        dtype: ``None``/'fp32' (default, any device), 'fp16', 'bf16' or a ``torch.dtype``.
        device: ``None`` picks cuda, then mps, then cpu.
        batch_tiles: how many tiles run together (lowered automatically on out-of-memory).
        channels_last: run convs in NHWC. Default: on CUDA, and on the CPU in bf16/fp16 (oneDNN's
            bf16 convs want NHWC: the issue-15 figures from an AMX Xeon had BasicSR's RRDBNet under
            autocast + channels_last at 0.61-0.65 s against 1.06 s for our NCHW bf16 path); CPU fp32
            runs the Winograd nets, which are NHWC inside.
        winograd: run RRDBNet / SRVGGNetCompact on the CPU in float32 through Winograd F(6,3)
            convolutions (2-3x faster; equal to direct conv up to float rounding). ``None``
            (default): whenever the compiled kernels are available; ``False``: direct convs,
            bit-identical to BasicSR.
        alpha_upsampler: 'realesrgan' (run alpha through the model) or a cv2 resize mode; either
            way clipped to the 3x3 input range (see :mod:`realesrgan_plugin.inference.alpha`).
        alpha_colour: what the network sees as the colour of fully transparent pixels: 'auto'
            (default: as stored when it continues the visible edge, a cut-out that kept its
            background; else the mean output over three fills from the visible pixels, three
            network runs), 'fills' (always the three fills), 'bleed' (the nearest visible colour
            alone, one run) or 'raw' (as stored: the official behaviour).
    """

    def __init__(
        self,
        model: nn.Module,
        scale: int,
        tile: int = 0,
        tile_pad: int = 10,
        pre_pad: int = 0,
        dtype: str | torch.dtype | None = None,
        device: str | torch.device | None = None,
        batch_tiles: int = 4,
        channels_last: bool | None = None,
        alpha_upsampler: str = 'realesrgan',
        alpha_colour: str = 'auto',
        winograd: bool | None = None,
    ) -> None:
        if int(scale) != scale or scale < 1:
            raise ValueError(f'scale must be a positive integer, got {scale!r}')
        for name, value in (('tile', tile), ('tile_pad', tile_pad), ('pre_pad', pre_pad)):
            if int(value) != value or value < 0:
                raise ValueError(f'{name} must be a non-negative integer, got {value!r}')
        if batch_tiles < 1:
            raise ValueError(f'batch_tiles must be >= 1, got {batch_tiles!r}')
        if alpha_upsampler not in ALPHA_UPSAMPLERS:
            raise ValueError(f'alpha_upsampler must be one of {ALPHA_UPSAMPLERS}, got {alpha_upsampler!r}')
        if alpha_colour not in ALPHA_COLOURS:
            raise ValueError(f'alpha_colour must be one of {ALPHA_COLOURS}, got {alpha_colour!r}')
        self.scale, self.tile, self.tile_pad, self.pre_pad = int(scale), int(tile), int(tile_pad), int(pre_pad)
        self.device = _resolve_device(device)
        self.dtype = _resolve_dtype(dtype)
        if self.device.type == 'cpu' and self.dtype != torch.float32 and not cpu_has_native_bf16():
            warnings.warn(
                f'{self.dtype} on a CPU without AVX-512 bf16 / AMX is emulated and much slower than fp32 '
                '(measured 8x slower per conv on an AVX2 CPU); use fp32 here',
                stacklevel=2,
            )
        self.batch_tiles = int(batch_tiles)
        if channels_last is None:
            channels_last = self.device.type == 'cuda' or (self.device.type == 'cpu' and self.dtype != torch.float32)
        self.channels_last = bool(channels_last)
        self.alpha_upsampler = alpha_upsampler
        self.alpha_colour = alpha_colour
        # x2 / x1 RRDBNet pixel-unshuffle their input: sizes must divide by 2 / 4.
        self.mod = {2: 2, 1: 4}.get(self.scale, 1)
        self.winograd = self._want_winograd(winograd)
        self.model = self._prepare(model)

    def _want_winograd(self, requested: bool | None) -> bool:
        if requested is False:
            return False
        suitable = self.device.type == 'cpu' and self.dtype == torch.float32
        if requested and not suitable:
            raise ValueError(f'winograd=True needs float32 on the CPU, got {self.dtype} on {self.device}')
        if requested and not winograd_kernels.available():
            raise RuntimeError('winograd=True but the Winograd kernels could not be built (see the log for why)')
        return suitable and winograd_kernels.available()

    def _prepare(self, model: nn.Module) -> nn.Module:
        model = copy.deepcopy(model).eval().requires_grad_(False)
        model = model.to(device=self.device, dtype=self.dtype)
        if is_rrdbnet(model) and self.winograd:
            return WinogradRRDBNet(model)
        if is_srvgg(model) and self.winograd:
            return WinogradSRVGGNet(model)
        self.winograd = False  # other architectures run as they are
        if is_rrdbnet(model) and not self.channels_last:
            model = FastRRDBNet(model)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        return model

    def __call__(self, img: np.ndarray) -> np.ndarray:
        """``Callable[[np.ndarray], np.ndarray]`` for video and other frame loops."""
        return self.enhance(img)

    # ----------------------------------------------------------------- numpy <-> tensors
    @staticmethod
    def check_image(img: object) -> np.ndarray:
        """Validate an input image; raise :class:`InputImageError` saying what is wrong."""
        if not isinstance(img, np.ndarray):
            raise InputImageError(f'expected a numpy image, got {type(img).__name__}')
        if img.dtype not in (np.uint8, np.uint16):
            raise InputImageError(f'expected a uint8 or uint16 image, got dtype {img.dtype}')
        if img.ndim == 3 and img.shape[2] == 1:
            img = img[:, :, 0]
        if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (3, 4)):
            raise InputImageError(f'expected HxW, HxWx3 (BGR) or HxWx4 (BGRA), got shape {img.shape}')
        if img.shape[0] == 0 or img.shape[1] == 0:
            raise InputImageError(f'empty image of shape {img.shape}')
        return img

    def _to_tensor(self, rgb: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None]

    # ----------------------------------------------------------------- the network on a tensor
    @torch.inference_mode()
    def upscale_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """1x3xHxW float in [0,1] (CPU) -> 1x3x(sH)x(sW) float32 clamped to [0,1] (CPU)."""
        _, _, h, w = x.shape
        x = _pad_bottom_right(x, self.pre_pad, self.pre_pad)
        ph, pw = x.shape[2], x.shape[3]
        x = _pad_bottom_right(x, (-ph) % self.mod, (-pw) % self.mod)
        out = self._run_with_fallback(x)
        return out[:, :, : h * self.scale, : w * self.scale]

    def _run_with_fallback(self, x: torch.Tensor) -> torch.Tensor:
        """Halve the batch, then the window, on out-of-memory. The reduced sizes are this call's own
        (the official RealESRGANer changes its settings): threads sharing one upsampler never see
        each other's fallback, and the next image tries the configured sizes again."""
        tile, pad, batch = self.tile, self.tile_pad, self.batch_tiles
        while True:
            try:
                return self._run_tiled(x, tile, pad, batch)
            except RuntimeError as err:  # torch.OutOfMemoryError is one too
                if not is_out_of_memory(err):
                    raise
                self._release_scratch()
                if batch > 1:
                    batch //= 2
                    continue
                plan = self._plan(x.shape[2], x.shape[3], tile, pad)
                window = max(plan.window_h, plan.window_w)
                if window // 2 < MIN_TILE:
                    raise RuntimeError(
                        f'Out of memory even with tile size {window} and one tile at a time on {self.device}; '
                        'use a smaller --tile, another device, or a smaller image'
                    ) from err
                tile, pad = halved_window(window, pad)

    def _release_scratch(self) -> None:
        if hasattr(self.model, 'release_scratch'):
            self.model.release_scratch()  # the Winograd nets' kept scratch tensors, under their lock
        if self.device.type == 'cuda':
            torch.cuda.empty_cache()

    def _plan(self, h: int, w: int, tile: int, pad: int | None = None) -> _Plan:
        pad = self.tile_pad if pad is None else pad
        if tile <= 0 or (h <= tile and w <= tile):
            return _Plan(h, w, [0], [0])
        win_h, ys = self._windows_along(h, tile, pad)
        win_w, xs = self._windows_along(w, tile, pad)
        return _Plan(win_h, win_w, ys, xs)

    def _windows_along(self, length: int, tile: int, pad: int) -> tuple[int, list[int]]:
        """As few windows as cover one side with at most ``tile + OVERLAP * pad`` pixels each,
        each only as long as the overlap needs: the official pads every tile on inner sides only,
        and so do we in effect (a window at the image border needs no context there). At 512 px with
        tile 256 / pad 10 that is 2 windows of 296 px (official: 266 px each, with seams)."""
        overlap = OVERLAP * pad
        align = self.mod
        if length <= tile + overlap:
            return length, [0]
        count = math.ceil((length - overlap) / tile)
        window = -(-(length + (count - 1) * overlap) // count)
        window = min(length, -(-window // align) * align)
        return window, window_starts(length, window, max(window - overlap, align), spread=True, align=align)

    def _run_tiled(self, x: torch.Tensor, tile: int, pad: int, batch: int) -> torch.Tensor:
        _, c, h, w = x.shape
        plan = self._plan(h, w, tile, pad)
        if len(plan.ys) == 1 and len(plan.xs) == 1:
            return self._forward(x)
        s = self.scale
        acc = torch.zeros(1, c, h * s, w * s)
        weight = torch.zeros(1, 1, h * s, w * s)
        wy = {y: blend_ramp(plan.window_h * s, s, pad, y == 0, y + plan.window_h == h) for y in plan.ys}
        wx = {x0: blend_ramp(plan.window_w * s, s, pad, x0 == 0, x0 + plan.window_w == w) for x0 in plan.xs}
        positions = [(y, x0) for y in plan.ys for x0 in plan.xs]
        for group in _chunks(positions, batch):
            tiles = torch.cat([x[:, :, y : y + plan.window_h, x0 : x0 + plan.window_w] for y, x0 in group])
            outs = self._forward(tiles)
            for (y, x0), out in zip(group, outs, strict=True):
                wmap = wy[y][:, None] * wx[x0][None, :]
                ys, xs = slice(y * s, (y + plan.window_h) * s), slice(x0 * s, (x0 + plan.window_w) * s)
                acc[0, :, ys, xs] += out * wmap
                weight[0, :, ys, xs] += wmap
        return acc / weight.clamp_min_(1e-8)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(device=self.device, dtype=self.dtype)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            return self.model(x).float().clamp_(0, 1).cpu()

    # ----------------------------------------------------------------- the public call
    def enhance(self, img: np.ndarray, outscale: float | None = None, alpha_upsampler: str | None = None) -> np.ndarray:
        """Upscale a HxW / HxWx3 (BGR) / HxWx4 (BGRA) uint8 or uint16 image by ``outscale``
        (default: the network's scale); returns the same layout and dtype."""
        img = self.check_image(img)
        if outscale is not None and not (outscale > 0 and math.isfinite(outscale)):
            raise ValueError(f'outscale must be a positive number, got {outscale!r}')
        alpha_mode = alpha_upsampler or self.alpha_upsampler
        if alpha_mode not in ALPHA_UPSAMPLERS:
            raise ValueError(f'alpha_upsampler must be one of {ALPHA_UPSAMPLERS}, got {alpha_mode!r}')
        peak = max_value(img)
        h, w = img.shape[:2]
        f = img.astype(np.float32) / peak
        if f.ndim == 2:
            out = self._upscale_rgb(np.repeat(f[:, :, None], 3, axis=2))
            out = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)
        elif f.shape[2] == 3:
            out = self._upscale_rgb(f[:, :, ::-1])[:, :, ::-1]
        else:
            out = self._upscale_bgra(f, alpha_mode)
        result = np.clip(np.rint(out * peak), 0, peak).astype(img.dtype)
        if outscale is not None and outscale != self.scale:
            size = (max(1, int(w * outscale)), max(1, int(h * outscale)))
            result = cv2.resize(result, size, interpolation=cv2.INTER_LANCZOS4)
        return result

    def _upscale_rgb(self, rgb: np.ndarray) -> np.ndarray:
        out = self.upscale_tensor(self._to_tensor(rgb))
        return np.ascontiguousarray(out[0].numpy().transpose(1, 2, 0))

    def _upscale_bgra(self, bgra: np.ndarray, alpha_mode: str) -> np.ndarray:
        """Colour and alpha upscaled separately. The hidden colour of transparent pixels is kept or
        bled by ``alpha_colour`` (the official always feeds it to the network); see
        :mod:`realesrgan_plugin.inference.alpha` for why."""
        alpha = np.ascontiguousarray(bgra[:, :, 3])
        color = bgra[:, :, 2::-1]  # RGB
        color_out = self._upscale_mean(network_colours(color, alpha, self.alpha_colour))
        alpha_out = self._upscale_alpha(alpha, alpha_mode)
        if is_gray(bgra[:, :, :3]):  # gray + alpha (an LA file) stays gray
            color_out = np.repeat(cv2.cvtColor(color_out, cv2.COLOR_RGB2GRAY)[:, :, None], 3, axis=2)
        return np.dstack([color_out[:, :, ::-1], alpha_out]).astype(np.float32)

    def _upscale_mean(self, colours: list[np.ndarray]) -> np.ndarray:
        """The mean of the network's outputs for several fills of the same cut-out (one run for one)."""
        out = self._upscale_rgb(colours[0])
        for colour in colours[1:]:
            out += self._upscale_rgb(colour)
        return out / len(colours) if len(colours) > 1 else out

    def _upscale_alpha(self, alpha: np.ndarray, alpha_mode: str) -> np.ndarray:
        """HxW alpha in [0,1] -> (sH)x(sW), clamped to its local input range (no halo, exact 0 and 1)."""
        size = (alpha.shape[1] * self.scale, alpha.shape[0] * self.scale)
        if alpha.min() == alpha.max():  # all opaque / all transparent: nothing to run
            return np.full(size[::-1], alpha.flat[0], np.float32)
        if alpha_mode == 'realesrgan':
            alpha_out = cv2.cvtColor(self._upscale_rgb(np.repeat(alpha[:, :, None], 3, axis=2)), cv2.COLOR_RGB2GRAY)
        else:
            flag = {'bicubic': cv2.INTER_CUBIC, 'bilinear': cv2.INTER_LINEAR, 'nearest': cv2.INTER_NEAREST}[alpha_mode]
            alpha_out = cv2.resize(alpha, size, interpolation=flag)
        return clamp_upscaled_alpha(alpha_out, alpha, self.scale)


def _chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
