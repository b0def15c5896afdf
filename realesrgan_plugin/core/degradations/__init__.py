"""THE degradation ops and Real-ESRGAN's second-order synthesis pipeline (host-agnostic).

Used by the BasicSR models, the MMEngine adapter and the tools alike; pure torch, batched,
any device. See ``docs/synthesis.md`` for the options and the differences from the official code.
"""

from realesrgan_plugin.core.degradations.filters import USMSharp, filter2d, gaussian_taps, resize, separable_filter
from realesrgan_plugin.core.degradations.jpeg import DiffJPEG, jpeg_compress, quality_to_factor
from realesrgan_plugin.core.degradations.kernels import (
    KERNEL_TYPES,
    KernelSettings,
    gaussian_kernels,
    plateau_kernels,
    pulse_kernels,
    random_blur_kernels,
    random_final_sinc_kernels,
    sinc_kernels,
)
from realesrgan_plugin.core.degradations.noise import add_noise, count_levels, gaussian_noise, poisson_noise
from realesrgan_plugin.core.degradations.pool import TrainingPairPool
from realesrgan_plugin.core.degradations.synthesis import (
    DegradationSettings,
    RealESRGANSynthesis,
    dump_pairs,
    host_generator_for,
    kernel_settings_from_options,
    random_kernels,
    settings_from_options,
    synthesis_generators,
)

__all__ = [
    'KERNEL_TYPES',
    'DegradationSettings',
    'DiffJPEG',
    'KernelSettings',
    'RealESRGANSynthesis',
    'TrainingPairPool',
    'USMSharp',
    'add_noise',
    'count_levels',
    'dump_pairs',
    'host_generator_for',
    'filter2d',
    'gaussian_kernels',
    'gaussian_noise',
    'gaussian_taps',
    'jpeg_compress',
    'kernel_settings_from_options',
    'plateau_kernels',
    'poisson_noise',
    'pulse_kernels',
    'quality_to_factor',
    'random_blur_kernels',
    'random_final_sinc_kernels',
    'random_kernels',
    'resize',
    'separable_filter',
    'sinc_kernels',
    'settings_from_options',
    'synthesis_generators',
]
