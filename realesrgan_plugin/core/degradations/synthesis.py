"""Real-ESRGAN's second-order degradation: HR batch in, (LQ, aligned HR crops) out.

One module for both hosts and the tools. Differences from the official ``feed_data`` (same
per-sample distribution, more diversity per batch, less work):

* every random choice (resize direction/scale/mode, noise type/strength/colour, JPEG quality,
  second blur, final order, crop position) is drawn per sample, not once per batch
  (``per_sample: false`` restores one draw per batch);
* kernels are generated on the input's device from a ``torch.Generator`` (no numpy), so a seed
  gives the same pairs on the same device;
* with ``degrade_margin`` set, only the crop window plus that margin (in HR pixels) is degraded
  instead of the whole source; the blur radius of the first stage and the resize geometry are
  unchanged, so the LQ distribution stays the same while far less area is processed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from realesrgan_plugin.core.degradations.filters import RESIZE_MODES, filter2d, resize
from realesrgan_plugin.core.degradations.jpeg import jpeg_compress
from realesrgan_plugin.core.degradations.kernels import KernelSettings, random_blur_kernels, random_final_sinc_kernels
from realesrgan_plugin.core.degradations.noise import add_noise

import numpy as np
import torch

_KERNEL_KEYS = ('kernel1', 'kernel2', 'sinc_kernel')


@dataclass
class DegradationSettings:
    """The official option names and the defaults of ``options/train_realesrgan_x4plus.yml``."""

    scale: int = 4
    gt_size: int = 256
    # first degradation
    resize_prob: Sequence[float] = (0.2, 0.7, 0.1)  # up, down, keep
    resize_range: Sequence[float] = (0.15, 1.5)
    gaussian_noise_prob: float = 0.5
    noise_range: Sequence[float] = (1, 30)
    poisson_scale_range: Sequence[float] = (0.05, 3)
    gray_noise_prob: float = 0.4
    jpeg_range: Sequence[float] = (30, 95)
    # second degradation
    second_blur_prob: float = 0.8
    resize_prob2: Sequence[float] = (0.3, 0.4, 0.3)
    resize_range2: Sequence[float] = (0.3, 1.2)
    gaussian_noise_prob2: float = 0.5
    noise_range2: Sequence[float] = (1, 25)
    poisson_scale_range2: Sequence[float] = (0.05, 2.5)
    gray_noise_prob2: float = 0.4
    jpeg_range2: Sequence[float] = (30, 95)
    # kernels (dataset options in the official layout)
    kernel1: KernelSettings = field(default_factory=KernelSettings)
    kernel2: KernelSettings = field(default_factory=lambda: KernelSettings(blur_sigma=(0.2, 1.5)))
    final_sinc_prob: float = 0.8
    # plugin extensions
    per_sample: bool = True
    degrade_margin: int | None = None
    filter_tolerance: float = 1e-6  # kernel mass that filtering may drop from the tails (speed)
    debug_dump_dir: str | None = None
    debug_dump_max: int = 16


_KERNEL_FIELDS = {
    'blur_kernel_size': 'kernel_size',
    'kernel_list': 'kernel_list',
    'kernel_prob': 'kernel_prob',
    'sinc_prob': 'sinc_prob',
    'blur_sigma': 'blur_sigma',
    'betag_range': 'betag_range',
    'betap_range': 'betap_range',
}


def kernel_settings_from_options(opt: Mapping, stage: int) -> KernelSettings:
    """Kernel settings of stage 1 or 2 from a dataset option dict (``*2`` keys for stage 2)."""
    defaults = DegradationSettings().kernel1 if stage == 1 else DegradationSettings().kernel2
    suffix = '' if stage == 1 else '2'
    values = {attr: opt.get(key + suffix, getattr(defaults, attr)) for key, attr in _KERNEL_FIELDS.items()}
    return KernelSettings(**values)


def settings_from_options(opt: Mapping) -> DegradationSettings:
    """Top-level degradation keys + ``opt['datasets']['train']`` kernel keys, official defaults."""
    train = dict((opt.get('datasets') or {}).get('train') or {})
    names = {f.name for f in fields(DegradationSettings)} - {'kernel1', 'kernel2', 'final_sinc_prob'}
    values = {name: opt[name] for name in names if name in opt and opt[name] is not None}
    if 'gt_size' not in values and 'gt_size' in train:
        values['gt_size'] = train['gt_size']
    synthesis = opt.get('synthesis') or {}  # plugin-only options may also live in a sub-dict
    values.update({k: v for k, v in synthesis.items() if k in names})
    return DegradationSettings(
        **values,
        kernel1=kernel_settings_from_options(train, 1),
        kernel2=kernel_settings_from_options(train, 2),
        final_sinc_prob=train.get('final_sinc_prob', opt.get('final_sinc_prob', 0.8)),
    )


def random_kernels(
    batch: int, settings: DegradationSettings, device=None, generator: torch.Generator | None = None
) -> dict[str, torch.Tensor]:
    """The three per-sample kernels of one batch, as the official dataset returns them (B x K x K)."""
    size = max(settings.kernel1.kernel_size, settings.kernel2.kernel_size)
    return {
        'kernel1': random_blur_kernels(batch, settings.kernel1, device, generator),
        'kernel2': random_blur_kernels(batch, settings.kernel2, device, generator),
        'sinc_kernel': random_final_sinc_kernels(batch, settings.final_sinc_prob, size, device, generator),
    }


@dataclass
class _StageDraw:
    """Random choices of one stage for one sample."""

    scale: float
    mode: str
    gaussian: bool
    sigma: float
    poisson_scale: float
    gray: bool
    quality: float


@dataclass
class _SampleDraw:
    stage1: _StageDraw
    stage2: _StageDraw
    second_blur: bool
    jpeg_last: bool  # True: [resize back + sinc] then JPEG; False: JPEG then [resize back + sinc]
    final_mode: str
    top: int  # LQ crop position
    left: int


class RealESRGANSynthesis(torch.nn.Module):
    """Second-order degradation of a GT batch into LQ training inputs (see the module docstring)."""

    def __init__(self, settings: DegradationSettings | None = None, **overrides) -> None:
        super().__init__()
        unknown = set(overrides) - {f.name for f in fields(DegradationSettings)}
        if unknown:
            raise TypeError(f'unknown degradation setting(s) {sorted(unknown)}')
        settings = replace(settings or DegradationSettings(), **overrides)
        if settings.gt_size % settings.scale != 0:
            raise ValueError(f'gt_size {settings.gt_size} must be a multiple of scale {settings.scale}')
        self.settings = settings
        self._dumped = 0

    @classmethod
    def from_options(cls, opt: Mapping) -> RealESRGANSynthesis:
        return cls(settings_from_options(opt))

    # ------------------------------------------------------------------ random draws
    def _draw_stage(self, n: int, second: bool, device, generator) -> list[_StageDraw]:
        s = self.settings
        resize_prob = s.resize_prob2 if second else s.resize_prob
        lo, hi = s.resize_range2 if second else s.resize_range
        direction = torch.multinomial(
            torch.as_tensor(resize_prob, dtype=torch.float32, device=device), n, True, generator=generator
        )
        u = torch.rand(n, device=device, generator=generator)
        scale = torch.where(
            direction == 0, 1 + u * (hi - 1), torch.where(direction == 1, lo + u * (1 - lo), torch.ones_like(u))
        )
        mode = torch.randint(0, len(RESIZE_MODES), (n,), device=device, generator=generator)
        gaussian = torch.rand(n, device=device, generator=generator) < (
            s.gaussian_noise_prob2 if second else s.gaussian_noise_prob
        )
        nlo, nhi = s.noise_range2 if second else s.noise_range
        sigma = nlo + torch.rand(n, device=device, generator=generator) * (nhi - nlo)
        plo, phi = s.poisson_scale_range2 if second else s.poisson_scale_range
        pscale = plo + torch.rand(n, device=device, generator=generator) * (phi - plo)
        gray = torch.rand(n, device=device, generator=generator) < (s.gray_noise_prob2 if second else s.gray_noise_prob)
        qlo, qhi = s.jpeg_range2 if second else s.jpeg_range
        quality = qlo + torch.rand(n, device=device, generator=generator) * (qhi - qlo)
        columns = [t.tolist() for t in (scale, mode, gaussian, sigma, pscale, gray, quality)]
        return [_StageDraw(sc, RESIZE_MODES[m], g, sg, ps, gr, q) for sc, m, g, sg, ps, gr, q in zip(*columns)]

    def _draw(self, batch: int, lq_h: int, lq_w: int, device, generator) -> list[_SampleDraw]:
        s = self.settings
        n = batch if s.per_sample else 1
        crop = s.gt_size // s.scale
        stage1 = self._draw_stage(n, False, device, generator)
        stage2 = self._draw_stage(n, True, device, generator)
        second_blur = (torch.rand(n, device=device, generator=generator) < s.second_blur_prob).tolist()
        jpeg_last = (torch.rand(n, device=device, generator=generator) < 0.5).tolist()
        final_mode = torch.randint(0, len(RESIZE_MODES), (n,), device=device, generator=generator).tolist()
        top = torch.randint(0, lq_h - crop + 1, (n,), device=device, generator=generator).tolist()
        left = torch.randint(0, lq_w - crop + 1, (n,), device=device, generator=generator).tolist()
        draws = [
            _SampleDraw(a, b, c, d, RESIZE_MODES[e], f, g)
            for a, b, c, d, e, f, g in zip(stage1, stage2, second_blur, jpeg_last, final_mode, top, left)
        ]
        return draws if s.per_sample else draws * batch

    # ------------------------------------------------------------------ geometry
    def _region(self, lq_size: int, top: int) -> tuple[int, int]:
        """(start, length) in LQ pixels of the window to degrade around a crop at ``top``."""
        s = self.settings
        crop = s.gt_size // s.scale
        if s.degrade_margin is None:
            return 0, lq_size
        margin = math.ceil(s.degrade_margin / s.scale)
        length = min(lq_size, crop + 2 * margin)
        start = min(max(top - margin, 0), lq_size - length)
        return start, length

    # ------------------------------------------------------------------ the degradation
    def _degrade_group_sharing_draw(self, x: torch.Tensor, d: _SampleDraw, kernel2, sinc, generator) -> torch.Tensor:
        """Everything after the first blur for a group of samples sharing ``d``'s geometry."""
        s = self.settings
        n = x.shape[0]
        h, w = x.shape[-2:]

        def noise(img, st: _StageDraw):
            full = lambda v: torch.full((n,), v, device=img.device)  # noqa: E731
            return add_noise(
                img, full(st.gaussian), full(float(st.sigma)), full(float(st.poisson_scale)), full(st.gray), generator
            )

        def jpeg(img, st: _StageDraw):
            return jpeg_compress(torch.clamp(img, 0, 1), st.quality)

        out = resize(x, d.stage1.mode, scale=d.stage1.scale)
        out = jpeg(noise(out, d.stage1), d.stage1)
        if d.second_blur:
            out = filter2d(out, kernel2, s.filter_tolerance)
        size2 = (int(h / s.scale * d.stage2.scale), int(w / s.scale * d.stage2.scale))
        out = noise(resize(out, d.stage2.mode, size=size2), d.stage2)
        final = (h // s.scale, w // s.scale)
        if d.jpeg_last:
            out = filter2d(resize(out, d.final_mode, size=final), sinc, s.filter_tolerance)
            out = jpeg(out, d.stage2)
        else:
            out = jpeg(out, d.stage2)
            out = filter2d(resize(out, d.final_mode, size=final), sinc, s.filter_tolerance)
        return out

    @torch.no_grad()
    def forward(self, source: torch.Tensor, *crop_with: torch.Tensor, kernels=None, generator=None):
        """Degrade ``source`` (B x 3 x H x W in [0, 1]) into LQ crops; crop ``crop_with`` alike.

        Returns ``(lq, [cropped...])``: LQ is B x 3 x gt_size/scale, rounded to 8-bit levels;
        each tensor of ``crop_with`` (same H x W as source) is cut to gt_size at the matching spot.
        ``kernels``: dict with 'kernel1', 'kernel2', 'sinc_kernel' (B x k x k) from a dataset with
        CPU-side kernels; None draws them here. ``generator``: on ``source``'s device.
        """
        s = self.settings
        if source.ndim != 4 or source.shape[1] != 3:
            raise ValueError(f'source must be B x 3 x H x W, got {tuple(source.shape)}')
        b, _, h, w = source.shape
        for t in crop_with:
            if t.shape[0] != b or t.shape[-2:] != source.shape[-2:]:
                raise ValueError(f'crop_with tensor {tuple(t.shape)} does not match source {tuple(source.shape)}')
        lq_h, lq_w, crop = h // s.scale, w // s.scale, s.gt_size // s.scale
        if lq_h < crop or lq_w < crop:
            raise ValueError(f'source {h}x{w} is smaller than gt_size {s.gt_size}')
        device = source.device
        if kernels is None:
            kernels = random_kernels(b, s, device, generator)
        else:
            missing = [k for k in _KERNEL_KEYS if k not in kernels]
            if missing:
                raise KeyError(f'kernels dict lacks {missing}; expected keys {list(_KERNEL_KEYS)}')
            kernels = {k: kernels[k].to(device=device, dtype=torch.float32) for k in _KERNEL_KEYS}
        draws = self._draw(b, lq_h, lq_w, device, generator)

        # Cut each sample's window (all windows have the same size), then blur them together.
        windows, offsets = [], []
        for i, d in enumerate(draws):
            r0, rh = self._region(lq_h, d.top)
            c0, rw = self._region(lq_w, d.left)
            windows.append(source[i, :, r0 * s.scale : (r0 + rh) * s.scale, c0 * s.scale : (c0 + rw) * s.scale])
            offsets.append((d.top - r0, d.left - c0))
        x = filter2d(torch.stack(windows).to(torch.float32), kernels['kernel1'], s.filter_tolerance)

        # After the first blur the sizes depend on each sample's draws: process geometry groups.
        # (With per_sample off every sample shares one draw object, hence one group.)
        groups: dict[int, list[int]] = {}
        for i, d in enumerate(draws):
            groups.setdefault(id(d), []).append(i)
        lq = torch.empty(b, 3, crop, crop, device=device, dtype=torch.float32)
        for idx in groups.values():
            d = draws[idx[0]]
            sel = torch.as_tensor(idx, device=device)
            out = self._degrade_group_sharing_draw(
                x[sel], d, kernels['kernel2'][sel], kernels['sinc_kernel'][sel], generator
            )
            out = torch.clamp((out * 255.0).round(), 0, 255) / 255.0
            for j, i in enumerate(idx):
                top, left = offsets[i]
                lq[i] = out[j, :, top : top + crop, left : left + crop]

        cropped = []
        for t in crop_with:
            parts = [
                t[i, :, d.top * s.scale : d.top * s.scale + s.gt_size, d.left * s.scale : d.left * s.scale + s.gt_size]
                for i, d in enumerate(draws)
            ]
            cropped.append(torch.stack(parts))
        lq = lq.to(source.dtype)
        if s.debug_dump_dir and self._dumped < s.debug_dump_max:
            hr = (
                cropped[0]
                if cropped
                else torch.stack(
                    [
                        source[
                            i,
                            :,
                            d.top * s.scale : d.top * s.scale + s.gt_size,
                            d.left * s.scale : d.left * s.scale + s.gt_size,
                        ]
                        for i, d in enumerate(draws)
                    ]
                )
            )
            self._dumped += dump_pairs(
                lq, hr, s.debug_dump_dir, start=self._dumped, limit=s.debug_dump_max - self._dumped
            )
        return lq, cropped


def _to_bgr_uint8(img: torch.Tensor) -> np.ndarray:
    arr = img.detach().to('cpu', torch.float32).clamp(0, 1).permute(1, 2, 0).numpy()
    return np.ascontiguousarray(np.rint(arr[:, :, ::-1] * 255).astype(np.uint8))


def dump_pairs(lq: torch.Tensor, gt: torch.Tensor, folder: str | Path, start: int = 0, limit: int | None = None) -> int:
    """Write ``NNNNNN_lq.png`` / ``NNNNNN_gt.png`` for up to ``limit`` pairs; returns how many were written."""
    from realesrgan_plugin.core.img_io import write_image

    folder = Path(folder)
    count = lq.shape[0] if limit is None else min(limit, lq.shape[0])
    for j in range(count):
        write_image(folder / f'{start + j:06d}_lq.png', _to_bgr_uint8(lq[j]))
        write_image(folder / f'{start + j:06d}_gt.png', _to_bgr_uint8(gt[j]))
    return count
