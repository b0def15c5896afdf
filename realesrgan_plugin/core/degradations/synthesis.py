"""Real-ESRGAN's second-order degradation: HR batch in, (LQ, aligned HR crops) out.

One module for both hosts and the tools. Differences from the official ``feed_data`` (same
per-sample distribution, more diversity per batch, less work):

* every random choice (resize direction/scale/mode, noise type/strength/colour, JPEG quality,
  second blur, final order, crop position) is drawn per sample, not once per batch
  (``per_sample: false`` restores one draw per batch);
* every choice, kernels included, is drawn on the host from a CPU ``torch.Generator`` (no numpy),
  once per batch; the per-sample numbers reach the device in one non-blocking copy and nothing
  is read back from it (the official ``feed_data`` waits for the GPU several times per batch);
  only the noise fields are drawn on the device. A seed gives the same pairs;
* with ``degrade_margin`` set, only the crop window plus that margin (in HR pixels) is degraded
  instead of the whole source; the blur radius of the first stage and the resize geometry are
  unchanged, so the LQ distribution stays the same while far less area is processed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from realesrgan_plugin.core.degradations.batching import host_values, take_rows, to_device_in_one_copy
from realesrgan_plugin.core.degradations.filters import RESIZE_MODES, filter2d, kernel_radii, resize
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


# The per-sample numbers that reach the device (in one copy per batch), by stage.
_VALUE_FIELDS = ('sigma', 'poisson_scale', 'quality')


def synthesis_generators(device: torch.device | str, seed: int) -> tuple[torch.Generator, torch.Generator]:
    """(device generator, host generator) for :class:`RealESRGANSynthesis`, both seeded with ``seed``.

    The device one draws the noise fields; the host (CPU) one draws every choice of a batch
    (resize, noise type and strength, JPEG quality, kernels, crop), so no choice is read back
    from the device. On the CPU they are one generator: the same stream as before the split.
    """
    device_generator = torch.Generator(device=device).manual_seed(seed)
    if device_generator.device.type == 'cpu':
        return device_generator, device_generator
    return device_generator, torch.Generator().manual_seed(seed)


def host_generator_for(generator: torch.Generator | None, host_generator: torch.Generator | None):
    """The CPU generator the choices are drawn from: ``host_generator``, else ``generator`` when it
    is a CPU one (None: torch's global CPU RNG). A caller that gives only a device generator gets
    a host generator seeded from it: reproducible, but one device sync per batch (the training
    hosts pass both generators, see :func:`synthesis_generators`)."""
    if host_generator is not None:
        if host_generator.device.type != 'cpu':
            raise ValueError(f'host_generator must be a CPU torch.Generator, got one on {host_generator.device}')
        return host_generator
    if generator is None or generator.device.type == 'cpu':
        return generator
    seed = torch.randint(0, 2**62, (1,), generator=generator, device=generator.device).item()
    return torch.Generator().manual_seed(int(seed))


class _SampleImages:
    """A batch whose samples may differ in size: each op runs on groups of equal-size samples.

    Samples are kept as rows of the output of the op that made them; a group that is exactly the
    rows of one output reuses it, any other group is gathered with slices and one ``torch.cat``
    (device-side work, no index tensor, so nothing is copied from the host).
    """

    def __init__(self, batch: torch.Tensor) -> None:
        self._rows = [(batch, i) for i in range(batch.shape[0])]

    def size(self, sample: int) -> tuple[int, ...]:
        return tuple(self._rows[sample][0].shape[-2:])

    def gather(self, samples: Sequence[int]) -> torch.Tensor:
        base = self._rows[samples[0]][0]
        if all(self._rows[i][0] is base for i in samples):
            return take_rows(base, [self._rows[i][1] for i in samples])
        return torch.cat([self._rows[i][0][self._rows[i][1] : self._rows[i][1] + 1] for i in samples])

    def apply(self, samples: Sequence[int], key: Callable[[int], Hashable], op) -> None:
        """``op(images, group)`` on each group of ``samples`` that share their size and ``key``."""
        groups: dict[Hashable, list[int]] = {}
        for i in samples:
            groups.setdefault((self.size(i), key(i)), []).append(i)
        for group in groups.values():
            out = op(self.gather(group), group)
            for j, i in enumerate(group):
                self._rows[i] = (out, j)


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

    # ------------------------------------------------------------------ random draws (host)
    def _draw_stage(self, n: int, second: bool, generator) -> list[_StageDraw]:
        s = self.settings
        resize_prob = s.resize_prob2 if second else s.resize_prob
        lo, hi = s.resize_range2 if second else s.resize_range
        direction = torch.multinomial(torch.as_tensor(resize_prob, dtype=torch.float32), n, True, generator=generator)
        u = torch.rand(n, generator=generator)
        scale = torch.where(
            direction == 0, 1 + u * (hi - 1), torch.where(direction == 1, lo + u * (1 - lo), torch.ones_like(u))
        )
        mode = torch.randint(0, len(RESIZE_MODES), (n,), generator=generator)
        gaussian = torch.rand(n, generator=generator) < (s.gaussian_noise_prob2 if second else s.gaussian_noise_prob)
        nlo, nhi = s.noise_range2 if second else s.noise_range
        sigma = nlo + torch.rand(n, generator=generator) * (nhi - nlo)
        plo, phi = s.poisson_scale_range2 if second else s.poisson_scale_range
        pscale = plo + torch.rand(n, generator=generator) * (phi - plo)
        gray = torch.rand(n, generator=generator) < (s.gray_noise_prob2 if second else s.gray_noise_prob)
        qlo, qhi = s.jpeg_range2 if second else s.jpeg_range
        quality = qlo + torch.rand(n, generator=generator) * (qhi - qlo)
        columns = [t.tolist() for t in (scale, mode, gaussian, sigma, pscale, gray, quality)]
        draws = [_StageDraw(sc, RESIZE_MODES[m], g, sg, ps, gr, q) for sc, m, g, sg, ps, gr, q in zip(*columns)]
        bad = [d.quality for d in draws if not 1 <= d.quality <= 100]
        if bad:
            raise ValueError(f'JPEG quality must be in [1, 100], got {bad} from jpeg_range{"2" if second else ""}')
        return draws

    def _draw(self, batch: int, lq_h: int, lq_w: int, generator) -> list[_SampleDraw]:
        """Every choice of the batch, on the host, in one go."""
        s = self.settings
        n = batch if s.per_sample else 1
        crop = s.gt_size // s.scale
        stage1 = self._draw_stage(n, False, generator)
        stage2 = self._draw_stage(n, True, generator)
        second_blur = (torch.rand(n, generator=generator) < s.second_blur_prob).tolist()
        jpeg_last = (torch.rand(n, generator=generator) < 0.5).tolist()
        final_mode = torch.randint(0, len(RESIZE_MODES), (n,), generator=generator).tolist()
        top = torch.randint(0, lq_h - crop + 1, (n,), generator=generator).tolist()
        left = torch.randint(0, lq_w - crop + 1, (n,), generator=generator).tolist()
        draws = [
            _SampleDraw(a, b, c, d, RESIZE_MODES[e], f, g)
            for a, b, c, d, e, f, g in zip(stage1, stage2, second_blur, jpeg_last, final_mode, top, left)
        ]
        return draws if s.per_sample else draws * batch

    def _host_kernels(self, kernels, batch: int, generator) -> dict[str, torch.Tensor]:
        """The batch's three kernels on the host (drawn here when not given): their supports are
        measured there, and they reach the device with the other per-sample numbers."""
        if kernels is None:
            return random_kernels(batch, self.settings, torch.device('cpu'), generator)
        missing = [k for k in _KERNEL_KEYS if k not in kernels]
        if missing:
            raise KeyError(f'kernels dict lacks {missing}; expected keys {list(_KERNEL_KEYS)}')
        # Kernels already on an accelerator are read back once here (a sync): pass host tensors.
        return {k: kernels[k].to('cpu', torch.float32) for k in _KERNEL_KEYS}

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
    def _add_noise(self, images: _SampleImages, samples, stage: int, draws, values, generator) -> None:
        def choice(i: int) -> _StageDraw:
            return draws[i].stage1 if stage == 1 else draws[i].stage2

        def op(x: torch.Tensor, group: list[int]) -> torch.Tensor:
            d = choice(group[0])
            name = 'sigma' if d.gaussian else 'poisson_scale'
            strength = host_values(values.host[name, stage], values.device[name, stage], group)
            return add_noise(x, d.gaussian, strength, strength, d.gray, generator)

        images.apply(samples, lambda i: (choice(i).gaussian, choice(i).gray), op)

    def _jpeg(self, images: _SampleImages, samples, stage: int, values) -> None:
        def op(x: torch.Tensor, group: list[int]) -> torch.Tensor:
            quality = host_values(values.host['quality', stage], values.device['quality', stage], group)
            return jpeg_compress(torch.clamp(x, 0, 1), quality)

        images.apply(samples, lambda i: None, op)

    def _filter(self, images: _SampleImages, samples, kernel: torch.Tensor, radii: list[int]) -> None:
        def op(x: torch.Tensor, group: list[int]) -> torch.Tensor:
            return filter2d(x, take_rows(kernel, group), self.settings.filter_tolerance, [radii[i] for i in group])

        images.apply(samples, lambda i: None, op)

    def _degrade(self, x: torch.Tensor, draws, kernels, radii, values, generator) -> torch.Tensor:
        """Everything after the first blur. Sizes depend on each sample's draws, so every op runs
        on the groups of samples that share their size (and resize parameters); after the resize
        back to the LQ size, the sinc filter and the last JPEG run on the whole batch at once."""
        s = self.settings
        b, _, h, w = x.shape
        everyone = list(range(b))
        images = _SampleImages(x)

        def first_resize(i: int) -> tuple[str, float]:
            return draws[i].stage1.mode, draws[i].stage1.scale

        images.apply(everyone, first_resize, lambda t, g: resize(t, first_resize(g[0])[0], scale=first_resize(g[0])[1]))
        self._add_noise(images, everyone, 1, draws, values, generator)
        self._jpeg(images, everyone, 1, values)
        self._filter(images, [i for i in everyone if draws[i].second_blur], kernels['kernel2'], radii['kernel2'])

        def second_size(i: int) -> tuple[int, int]:
            return int(h / s.scale * draws[i].stage2.scale), int(w / s.scale * draws[i].stage2.scale)

        images.apply(
            everyone,
            lambda i: (draws[i].stage2.mode, second_size(i)),
            lambda t, g: resize(t, draws[g[0]].stage2.mode, size=second_size(g[0])),
        )
        self._add_noise(images, everyone, 2, draws, values, generator)
        self._jpeg(images, [i for i in everyone if not draws[i].jpeg_last], 2, values)
        final = (h // s.scale, w // s.scale)
        images.apply(
            everyone, lambda i: draws[i].final_mode, lambda t, g: resize(t, draws[g[0]].final_mode, size=final)
        )
        self._filter(images, everyone, kernels['sinc_kernel'], radii['sinc_kernel'])
        self._jpeg(images, [i for i in everyone if draws[i].jpeg_last], 2, values)
        return images.gather(everyone)

    @torch.no_grad()
    def forward(
        self,
        source: torch.Tensor,
        *crop_with: torch.Tensor,
        kernels=None,
        generator: torch.Generator | None = None,
        host_generator: torch.Generator | None = None,
    ):
        """Degrade ``source`` (B x 3 x H x W in [0, 1]) into LQ crops; crop ``crop_with`` alike.

        Returns ``(lq, [cropped...])``: LQ is B x 3 x gt_size/scale, rounded to 8-bit levels;
        each tensor of ``crop_with`` (same H x W as source) is cut to gt_size at the matching spot.
        ``kernels``: dict with 'kernel1', 'kernel2', 'sinc_kernel' (B x k x k, best on the host)
        from a dataset with CPU-side kernels; None draws them here. ``generator``: on ``source``'s
        device, for the noise fields. ``host_generator``: a CPU generator for every random choice
        (see :func:`host_generator_for` for what happens without it).

        No value is read back from the device: the choices are drawn and the kernel supports
        measured on the host, and the per-sample numbers go to the device in one copy.
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
        host = host_generator_for(generator, host_generator)
        host_kernels = self._host_kernels(kernels, b, host)
        draws = self._draw(b, lq_h, lq_w, host)
        radii = {k: kernel_radii(v, s.filter_tolerance).tolist() for k, v in host_kernels.items()}
        values = _PerSampleValues.of(draws)
        moved = to_device_in_one_copy([*host_kernels.values(), values.table()], source.device)
        kernels = dict(zip(_KERNEL_KEYS, moved[:3]))
        values.on_device(moved[3])

        # Cut each sample's window (all windows have the same size), then blur them together.
        windows, offsets = [], []
        for i, d in enumerate(draws):
            r0, rh = self._region(lq_h, d.top)
            c0, rw = self._region(lq_w, d.left)
            windows.append(source[i, :, r0 * s.scale : (r0 + rh) * s.scale, c0 * s.scale : (c0 + rw) * s.scale])
            offsets.append((d.top - r0, d.left - c0))
        x = filter2d(torch.stack(windows).to(torch.float32), kernels['kernel1'], s.filter_tolerance, radii['kernel1'])
        out = self._degrade(x, draws, kernels, radii, values, generator)
        out = torch.clamp((out * 255.0).round(), 0, 255) / 255.0
        lq = torch.stack([out[i, :, top : top + crop, left : left + crop] for i, (top, left) in enumerate(offsets)])

        cropped = [self._crop_hr(t, draws) for t in crop_with]
        lq = lq.to(source.dtype)
        if s.debug_dump_dir and self._dumped < s.debug_dump_max:
            hr = cropped[0] if cropped else self._crop_hr(source, draws)
            self._dumped += dump_pairs(
                lq, hr, s.debug_dump_dir, start=self._dumped, limit=s.debug_dump_max - self._dumped
            )
        return lq, cropped

    def _crop_hr(self, t: torch.Tensor, draws: list[_SampleDraw]) -> torch.Tensor:
        s = self.settings
        return torch.stack(
            [
                t[i, :, d.top * s.scale : d.top * s.scale + s.gt_size, d.left * s.scale : d.left * s.scale + s.gt_size]
                for i, d in enumerate(draws)
            ]
        )


@dataclass
class _PerSampleValues:
    """Noise strengths and JPEG qualities of a batch: Python lists for the host's decisions, and
    their device copy (rows of one table) for the ops that need a per-sample vector."""

    host: dict[tuple[str, int], list[float]]
    device: dict[tuple[str, int], torch.Tensor] = field(default_factory=dict)

    @classmethod
    def of(cls, draws: list[_SampleDraw]) -> _PerSampleValues:
        host = {}
        for stage in (1, 2):
            for name in _VALUE_FIELDS:
                host[name, stage] = [getattr(d.stage1 if stage == 1 else d.stage2, name) for d in draws]
        return cls(host)

    def table(self) -> torch.Tensor:
        return torch.tensor(list(self.host.values()), dtype=torch.float32)

    def on_device(self, table: torch.Tensor) -> None:
        self.device = dict(zip(self.host, table))


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
