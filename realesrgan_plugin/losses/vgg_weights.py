"""Where the ImageNet VGG weights of the perceptual loss come from, and a clear error when they can't.

Order: an explicit path (option ``vgg_weights_path`` or ``REALESRGAN_PLUGIN_VGG_WEIGHTS``); the file
torchvision itself caches (``<torch hub dir>/checkpoints/<name>``, honours ``TORCH_HOME``); BasicSR's
legacy ``experiments/pretrained_models/<name>``; else a download into that cache (``core.download``,
checked against the sha256 prefix in the file name), unless ``REALESRGAN_PLUGIN_OFFLINE=1``. Never a
silent random initialisation.
"""

from __future__ import annotations

import os
from pathlib import Path

from realesrgan_plugin.core import env
from realesrgan_plugin.core.download import DownloadError, download_file

import torch

# torchvision's ImageNet weights (``VGG*_Weights.IMAGENET1K_V1``): file names carry the sha256 prefix
# that torch.hub checks after a download.
VGG_WEIGHT_URLS = {
    'vgg11': 'https://download.pytorch.org/models/vgg11-8a719046.pth',
    'vgg13': 'https://download.pytorch.org/models/vgg13-19584684.pth',
    'vgg16': 'https://download.pytorch.org/models/vgg16-397923af.pth',
    'vgg19': 'https://download.pytorch.org/models/vgg19-dcbb9e9d.pth',
    'vgg11_bn': 'https://download.pytorch.org/models/vgg11_bn-6002323d.pth',
    'vgg13_bn': 'https://download.pytorch.org/models/vgg13_bn-abd245e5.pth',
    'vgg16_bn': 'https://download.pytorch.org/models/vgg16_bn-6c64b313.pth',
    'vgg19_bn': 'https://download.pytorch.org/models/vgg19_bn-c79401a0.pth',
}


class VGGWeightsMissingError(FileNotFoundError):
    """The perceptual loss needs ImageNet VGG weights that are neither on disk nor downloadable."""


def hub_cache_path(vgg_type: str) -> Path:
    """Where torchvision keeps the downloaded weights of ``vgg_type``."""
    return Path(torch.hub.get_dir()) / 'checkpoints' / os.path.basename(_url(vgg_type))


def _url(vgg_type: str) -> str:
    try:
        return VGG_WEIGHT_URLS[vgg_type]
    except KeyError:
        raise ValueError(f'Unknown vgg_type {vgg_type!r}; expected one of {sorted(VGG_WEIGHT_URLS)}') from None


def resolve_vgg_weights(
    vgg_type: str = 'vgg19', path: str | os.PathLike | None = None, allow_download: bool = True
) -> Path:
    """Return a local file holding ``vgg_type``'s ImageNet weights, downloading it when allowed
    (``allow_download`` and not offline)."""
    explicit = path or env.vgg_weights_path()
    if explicit:
        explicit = Path(explicit).expanduser()
        if not explicit.is_file():
            raise VGGWeightsMissingError(f'VGG weights file {str(explicit)!r} (vgg_weights_path) does not exist')
        return explicit
    cached = hub_cache_path(vgg_type)
    legacy = Path('experiments/pretrained_models') / cached.name
    for candidate in (cached, legacy):
        if candidate.is_file():
            return candidate
    if env.offline() or not allow_download:
        why = f'offline mode ({env.OFFLINE}=1)' if env.offline() else 'not downloaded here'
        raise VGGWeightsMissingError(_missing_message(vgg_type, cached, why))
    try:
        return download_file(_url(vgg_type), cached, sha256=_hash_prefix(cached))
    except DownloadError as err:
        raise VGGWeightsMissingError(_missing_message(vgg_type, cached, f'download failed: {err}')) from err


def _hash_prefix(path: Path) -> str:
    return path.stem.rsplit('-', 1)[-1]


def _missing_message(vgg_type: str, cached: Path, reason: str) -> str:
    return (
        f'The perceptual loss needs ImageNet {vgg_type} weights, not found ({reason}). Expected at {str(cached)!r} '
        f'(torchvision cache, TORCH_HOME), or give a file with the perceptual_opt key vgg_weights_path or the '
        f'environment variable {env.VGG_WEIGHTS}. Download: {_url(vgg_type)}'
    )
