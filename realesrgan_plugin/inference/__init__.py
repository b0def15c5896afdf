"""Inference: load official or custom Real-ESRGAN weights and upscale numpy images.

``model, scale = load_model('RealESRGAN_x4plus')``; ``Upsampler(model, scale).enhance(img)``;
or the official API: ``RealESRGANer(scale, model_path, model=net).enhance(img)``.
The names below load on first use (PEP 562), so ``realesrgan_plugin.inference.cli`` can parse its
flags and answer ``--help`` before torch is imported.
"""

import importlib

from realesrgan_plugin import compat  # noqa: F401  (before anything imports basicsr; costs nothing)

_LAZY = {
    'ModelNotAvailableError': 'realesrgan_plugin.inference.loader',
    'load_model': 'realesrgan_plugin.inference.loader',
    'IOConsumer': 'realesrgan_plugin.inference.realesrganer',
    'PrefetchReader': 'realesrgan_plugin.inference.realesrganer',
    'RealESRGANer': 'realesrgan_plugin.inference.realesrganer',
    'InputImageError': 'realesrgan_plugin.inference.upsampler',
    'Upsampler': 'realesrgan_plugin.inference.upsampler',
    'WeightsError': 'realesrgan_plugin.inference.weights',
    'detect_arch': 'realesrgan_plugin.inference.weights',
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
