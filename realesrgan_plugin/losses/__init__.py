"""Losses the Real-ESRGAN models build themselves (BasicSR's own are used for the rest)."""

from realesrgan_plugin import compat  # noqa: F401  (before anything imports basicsr)

# isort: split
from realesrgan_plugin.losses.perceptual_loss import (
    PerceptualLoss,
    VGGFeatureExtractor,
    build_optional_loss,
    build_training_loss,
)
from realesrgan_plugin.losses.vgg_weights import VGGWeightsMissingError, resolve_vgg_weights

__all__ = [
    'PerceptualLoss',
    'VGGFeatureExtractor',
    'VGGWeightsMissingError',
    'build_optional_loss',
    'build_training_loss',
    'resolve_vgg_weights',
]
