"""One schema of every training option the plugin reads, checked before anything is built.

Built from the keys of the official option files (``options/*.yml``) plus the plugin's own, with
pydantic v2: types, ranges (probabilities in [0, 1], probability lists that sum to 1, ``[lo, hi]``
ranges with lo <= hi) and paths that must exist. Unknown keys are refused with a "did you mean"
from the known names (a typo such as ``gausian_noise_prob`` no longer trains silently with the
default). BasicSR's own keys that the plugin does not read are declared as pass-through (any
value) so that they are known but untouched: validation never rewrites the option dict.

All problems are reported together in ONE :class:`OptionsError`, each with its option path
(``datasets.train.blur_sigma``). The defaults are those of ``DegradationSettings`` /
``KernelSettings`` (``core/degradations``), the one place the synthesis defaults live.

Used by ``realesrgan-train`` (after parsing the option file), by BasicSR's own ``train_pipeline``
through ``RealESRNetModel.__init__``, and by ``realesrgan-train-mm`` for the data preprocessor's
``degradations`` / ``kernels`` dicts.
"""

from __future__ import annotations

import difflib
import os
import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from realesrgan_plugin.core.degradations.synthesis import DegradationSettings

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict, ValidationError, ValidationInfo

_DEG = DegradationSettings()
_K1, _K2 = _DEG.kernel1, _DEG.kernel2
KERNEL_TYPES = ('iso', 'aniso', 'generalized_iso', 'generalized_aniso', 'plateau_iso', 'plateau_aniso')


class OptionsError(ValueError):
    """Every problem of an option set, each as ``(option.path, message)``."""

    def __init__(self, problems: list[tuple[str, str]], source: str = 'options') -> None:
        self.problems, self.source = problems, source
        lines = '\n'.join(f'  {path}: {msg}' for path, msg in problems)
        super().__init__(f'{len(problems)} problem(s) in {source}:\n{lines}')

    def one_line(self) -> str:
        return '; '.join(f'{path}: {msg}' for path, msg in self.problems)


# ---------------------------------------------------------------- value types
def _ordered(v: tuple[float, float]) -> tuple[float, float]:
    if v[0] > v[1]:
        raise ValueError(f'[lo, hi] needs lo <= hi, got [{v[0]:g}, {v[1]:g}]')
    return v


def _sums_to_one(v: tuple[float, ...]) -> tuple[float, ...]:
    if abs(sum(v) - 1) > 1e-6:
        raise ValueError(f'the probabilities must sum to 1, they sum to {sum(v):g}')
    return v


def _odd(v: int) -> int:
    if v % 2 == 0:
        raise ValueError(f'a kernel size must be odd, got {v}')
    return v


def _existing_path(v: str | None, info: ValidationInfo) -> str | None:
    if not (info.context or {}).get('check_paths', True):
        return v
    if v is not None and not os.path.exists(os.path.expanduser(v)):
        raise ValueError(f'path does not exist: {v!r} (relative paths start at the current folder)')
    return v


Number = Annotated[float, Strict()]  # an int or a float, never a string or a bool
Prob = Annotated[float, Strict(), Field(ge=0, le=1)]
Positive = Annotated[float, Strict(), Field(gt=0)]
NonNegative = Annotated[float, Strict(), Field(ge=0)]
Bool = Annotated[bool, Strict()]
Int = Annotated[int, Strict()]
PositiveRange = Annotated[tuple[Positive, Positive], AfterValidator(_ordered)]
NonNegativeRange = Annotated[tuple[NonNegative, NonNegative], AfterValidator(_ordered)]
QualityRange = Annotated[
    tuple[Annotated[Number, Field(ge=1, le=100)], Annotated[Number, Field(ge=1, le=100)]], AfterValidator(_ordered)
]
ResizeProb = Annotated[tuple[Prob, Prob, Prob], AfterValidator(_sums_to_one)]
KernelProb = Annotated[list[Prob], AfterValidator(_sums_to_one)]
KernelSize = Annotated[int, Strict(), Field(ge=3, le=41), AfterValidator(_odd)]
ExistingPath = Annotated[str | None, AfterValidator(_existing_path)]
PassThrough = Any  # a BasicSR key the plugin does not read: known, any value, untouched


class _Section(BaseModel):
    model_config = ConfigDict(extra='forbid', arbitrary_types_allowed=True)


# ---------------------------------------------------------------- synthesis
class SynthesisExtras(_Section):
    """Plugin-only synthesis options (``synthesis:`` sub-dict or top level)."""

    per_sample: Bool = _DEG.per_sample
    degrade_margin: Annotated[int, Strict(), Field(ge=0)] | None = _DEG.degrade_margin
    filter_tolerance: Annotated[float, Strict(), Field(ge=0, lt=1)] = _DEG.filter_tolerance
    debug_dump_dir: str | None = _DEG.debug_dump_dir
    debug_dump_max: Annotated[int, Strict(), Field(ge=0)] = _DEG.debug_dump_max


class DegradationOptions(SynthesisExtras):
    """The top-level degradation keys of the official option files (both stages); the plugin's
    synthesis options (inherited) are accepted at the top level too, or under ``synthesis:``."""

    scale: Annotated[int, Strict(), Field(ge=1, le=8)] = _DEG.scale
    gt_size: Annotated[int, Strict(), Field(ge=8)] = _DEG.gt_size
    resize_prob: ResizeProb = _DEG.resize_prob
    resize_range: PositiveRange = _DEG.resize_range
    gaussian_noise_prob: Prob = _DEG.gaussian_noise_prob
    noise_range: NonNegativeRange = _DEG.noise_range
    poisson_scale_range: NonNegativeRange = _DEG.poisson_scale_range
    gray_noise_prob: Prob = _DEG.gray_noise_prob
    jpeg_range: QualityRange = _DEG.jpeg_range
    second_blur_prob: Prob = _DEG.second_blur_prob
    resize_prob2: ResizeProb = _DEG.resize_prob2
    resize_range2: PositiveRange = _DEG.resize_range2
    gaussian_noise_prob2: Prob = _DEG.gaussian_noise_prob2
    noise_range2: NonNegativeRange = _DEG.noise_range2
    poisson_scale_range2: NonNegativeRange = _DEG.poisson_scale_range2
    gray_noise_prob2: Prob = _DEG.gray_noise_prob2
    jpeg_range2: QualityRange = _DEG.jpeg_range2
    final_sinc_prob: Prob = _DEG.final_sinc_prob
    synthesis: SynthesisExtras | None = None


class KernelOptions(_Section):
    """The kernel keys of the official dataset options (``*2``: the second stage)."""

    blur_kernel_size: KernelSize = _K1.kernel_size
    kernel_list: list[Literal[KERNEL_TYPES]] = list(_K1.kernel_list)
    kernel_prob: KernelProb = list(_K1.kernel_prob)
    sinc_prob: Prob = _K1.sinc_prob
    blur_sigma: PositiveRange = _K1.blur_sigma
    betag_range: PositiveRange = _K1.betag_range
    betap_range: PositiveRange = _K1.betap_range
    blur_kernel_size2: KernelSize = _K2.kernel_size
    kernel_list2: list[Literal[KERNEL_TYPES]] = list(_K2.kernel_list)
    kernel_prob2: KernelProb = list(_K2.kernel_prob)
    sinc_prob2: Prob = _K2.sinc_prob
    blur_sigma2: PositiveRange = _K2.blur_sigma
    betag_range2: PositiveRange = _K2.betag_range
    betap_range2: PositiveRange = _K2.betap_range
    final_sinc_prob: Prob = _DEG.final_sinc_prob


# ---------------------------------------------------------------- BasicSR sections
class DatasetOptions(KernelOptions):
    """A BasicSR dataset entry: the plugin datasets' keys, the kernel keys, BasicSR's loader keys."""

    name: str | None = None
    type: str | None = None
    phase: PassThrough = None
    scale: PassThrough = None
    dataroot_gt: ExistingPath = None
    dataroot_lq: ExistingPath = None
    meta_info: ExistingPath = None
    meta_info_file: ExistingPath = None
    io_backend: dict[str, Any] | None = None
    filename_tmpl: str = '{}'
    gt_size: Annotated[int, Strict(), Field(ge=8)] | None = None
    crop_pad_size: Annotated[int, Strict(), Field(ge=8)] = 400
    use_hflip: Bool = True
    use_rot: Bool = False
    mean: PassThrough = None
    std: PassThrough = None
    kernels_on_cpu: Bool = False
    io_retries: Annotated[int, Strict(), Field(ge=0)] = 3
    io_retry_sleep: NonNegative = 1.0
    skip_bad_images: Bool = False
    use_shuffle: PassThrough = None
    num_worker_per_gpu: Annotated[int, Strict(), Field(ge=0)] | None = None
    batch_size_per_gpu: Annotated[int, Strict(), Field(ge=1)] | None = None
    dataset_enlarge_ratio: Annotated[int, Strict(), Field(ge=1)] = 1
    prefetch_mode: Literal['cpu', 'cuda'] | None = None
    num_prefetch_queue: PassThrough = None
    pin_memory: PassThrough = None
    persistent_workers: PassThrough = None


class PathOptions(_Section):
    pretrain_network_g: ExistingPath = None
    pretrain_network_d: ExistingPath = None
    param_key_g: str | None = None
    param_key_d: str | None = None
    strict_load_g: Bool = True
    strict_load_d: Bool = True
    resume_state: ExistingPath = None
    ignore_resume_networks: PassThrough = None
    # filled in by BasicSR's parse_options
    experiments_root: PassThrough = None
    models: PassThrough = None
    training_states: PassThrough = None
    log: PassThrough = None
    visualization: PassThrough = None
    results_root: PassThrough = None


class TrainOptions(_Section):
    ema_decay: Annotated[float, Strict(), Field(ge=0, lt=1)] = 0
    optim_g: dict[str, Any] | None = None
    optim_d: dict[str, Any] | None = None
    scheduler: dict[str, Any] | None = None
    total_iter: Annotated[int, Field(ge=1)] | None = None
    warmup_iter: Int = -1
    pixel_opt: dict[str, Any] | None = None
    perceptual_opt: dict[str, Any] | None = None
    gan_opt: dict[str, Any] | None = None
    net_d_iters: Annotated[int, Strict(), Field(ge=1)] = 1
    net_d_init_iters: Annotated[int, Strict(), Field(ge=0)] = 0
    amp: Literal['bf16', 'fp16', 'bfloat16', 'float16'] | Bool | None = None
    channels_last: Bool = False


class TrainingOptions(DegradationOptions):
    """A whole BasicSR training option file for the Real-ESRNet / Real-ESRGAN models."""

    name: str | None = None
    model_type: str | None = None
    num_gpu: Annotated[int, Strict(), Field(ge=0)] | Literal['auto'] = 'auto'
    manual_seed: Int | None = None
    l1_gt_usm: Bool = True
    percep_gt_usm: Bool = True
    gan_gt_usm: Bool = False
    gt_usm: Bool = False
    high_order_degradation: Bool = True
    queue_size: Annotated[int, Strict(), Field(ge=0)] = 180
    channels_last: Bool = False
    amp: PassThrough = None
    find_unused_parameters: Bool = False
    deterministic: Bool = False
    datasets: dict[str, DatasetOptions] | None = None
    network_g: dict[str, Any] | None = None
    network_d: dict[str, Any] | None = None
    path: PathOptions | None = None
    train: TrainOptions | None = None
    val: PassThrough = None
    logger: PassThrough = None
    dist_params: PassThrough = None
    # filled in by BasicSR's parse_options / the runner
    is_train: PassThrough = None
    dist: PassThrough = None
    rank: PassThrough = None
    world_size: PassThrough = None
    auto_resume: PassThrough = None
    auto_resume_fresh: PassThrough = None  # realesrgan-train --auto_resume=fresh-if-none
    root_path: PassThrough = None


# ---------------------------------------------------------------- checking
def check_training_options(opt: Mapping[str, Any], source: str = 'options', check_paths: bool = True) -> None:
    """Raise one :class:`OptionsError` listing every problem of a BasicSR training option dict.

    ``check_paths=False`` skips the existence of data and weight paths (a model built on its own,
    where the datasets are someone else's business)."""
    _check(TrainingOptions, opt, source, check_paths=check_paths)


def check_synthesis_options(degradations: Mapping | None, kernels: Mapping | None, source: str) -> None:
    """The MMEngine data preprocessor's two dicts (``degradations``, ``kernels``), same rules."""
    problems = []
    for model, value, prefix in (
        (DegradationOptions, degradations, 'degradations'),
        (KernelOptions, kernels, 'kernels'),
    ):
        try:
            _check(model, value or {}, source, prefix)
        except OptionsError as err:
            problems += err.problems
    if problems:
        raise OptionsError(problems, source)


def _check(
    model: type[BaseModel], opt: Mapping[str, Any], source: str, prefix: str = '', check_paths: bool = True
) -> None:
    if not isinstance(opt, Mapping):
        raise OptionsError([(prefix or '<top>', f'expected a mapping of options, got {type(opt).__name__}')], source)
    found: dict[str, list[str]] = {}
    try:
        model.model_validate(dict(opt), context={'check_paths': check_paths})
    except ValidationError as err:
        for e in err.errors(include_url=False):
            path, msg = _describe(model, e, prefix)
            found.setdefault(path, []).append(msg)  # a union gives one message per member
    problems = [(path, ' or '.join(msgs)) for path, msgs in found.items()]
    problems += _kernel_list_lengths(model, opt, prefix)
    if problems:
        raise OptionsError(problems, source)


def _describe(model: type[BaseModel], error: Mapping[str, Any], prefix: str) -> tuple[str, str]:
    loc = [str(p) for p in error['loc'] if not _is_union_tag(p)]
    path = '.'.join([prefix, *loc] if prefix else loc)
    if error['type'] == 'extra_forbidden':
        known = _known_names(model, loc[:-1])
        close = difflib.get_close_matches(loc[-1], known, n=1, cutoff=0.7)
        hint = f'; did you mean {close[0]!r}?' if close else ''
        return path, f'unknown option{hint}'
    if error['type'] == 'value_error':  # our own checks: the message shows the value
        return path, error['msg'].removeprefix('Value error, ')
    return path, f'{error["msg"]} (got {error.get("input")!r})'


def _is_union_tag(part: Any) -> bool:
    """pydantic names union members in ``loc`` (``int``, ``literal['auto']``, ``function-after[...]``)."""
    text = str(part)
    return (
        text in ('int', 'float', 'str', 'bool', 'none', 'list', 'tuple')
        or '[' in text
        or text.startswith('constrained')
    )


def _known_names(model: type[BaseModel], loc: list[str]) -> list[str]:
    """Field names of the section at ``loc`` (dict keys such as ``datasets.train`` are walked over)."""
    annotation: Any = model
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(part)
            if field is None:
                return []
            annotation = field.annotation
        elif typing.get_origin(annotation) is dict:
            annotation = typing.get_args(annotation)[1]
        else:
            return []
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    if typing.get_origin(annotation) is dict:
        value = _unwrap(typing.get_args(annotation)[1])
        return list(value.model_fields) if isinstance(value, type) and issubclass(value, BaseModel) else []
    return []


def _unwrap(annotation: Any) -> Any:
    """``X | None`` -> ``X``; ``Annotated[X, ...]`` -> ``X``."""
    while True:
        if typing.get_origin(annotation) is Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
            annotation = args[0]
            continue
        return annotation


def _kernel_list_lengths(model: type[BaseModel], opt: Mapping[str, Any], prefix: str) -> list[tuple[str, str]]:
    """kernel_prob must give one probability per kernel_list entry (each stage, each dataset)."""
    sections: list[tuple[str, Mapping]] = []
    if issubclass(model, KernelOptions):
        sections.append((prefix, opt))
    elif issubclass(model, TrainingOptions):
        for name, ds in (opt.get('datasets') or {}).items():
            if isinstance(ds, Mapping):
                sections.append((f'datasets.{name}', ds))
    problems = []
    for where, section in sections:
        for suffix in ('', '2'):
            kinds, probs = section.get(f'kernel_list{suffix}'), section.get(f'kernel_prob{suffix}')
            if isinstance(kinds, list) and isinstance(probs, list) and len(kinds) != len(probs):
                path = f'{where}.kernel_prob{suffix}'.lstrip('.')
                problems.append((path, f'{len(probs)} probabilities for {len(kinds)} kernels in kernel_list{suffix}'))
    return problems
