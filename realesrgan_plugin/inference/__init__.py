"""Inference: load official or custom Real-ESRGAN weights and upscale numpy images.

``model, scale = load_model('RealESRGAN_x4plus')``; ``Upsampler(model, scale).enhance(img)``;
or the official API: ``RealESRGANer(scale, model_path, model=net).enhance(img)``.
"""

from realesrgan_plugin import compat  # noqa: F401  (before anything imports basicsr)

# isort: split
from realesrgan_plugin.inference.loader import ModelNotAvailableError, load_model
from realesrgan_plugin.inference.realesrganer import IOConsumer, PrefetchReader, RealESRGANer
from realesrgan_plugin.inference.upsampler import InputImageError, Upsampler
from realesrgan_plugin.inference.weights import WeightsError, detect_arch

__all__ = [
    'IOConsumer',
    'InputImageError',
    'ModelNotAvailableError',
    'PrefetchReader',
    'RealESRGANer',
    'Upsampler',
    'WeightsError',
    'detect_arch',
    'load_model',
]
