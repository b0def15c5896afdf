"""Loading generator weights safely and recognising the architecture from the state dict alone.

A release file is enough to rebuild its network: RRDBNet's block count, widths and scale (x2/x1
use a pixel-unshuffle in front, visible as a wider ``conv_first``) and SRVGGNetCompact's conv
count, width, activation and upscale are all readable from tensor shapes. Files are read with
``weights_only`` (``.pth``) or as plain tensors (``.safetensors``): no code runs from a file.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from realesrgan_plugin.core.checkpoint import safe_torch_load

import torch
from torch import nn

PARAM_KEYS = ('params_ema', 'params', 'state_dict', 'model')


class WeightsError(ValueError):
    """A weights file or state dict cannot be used; the message names the file or key."""


@dataclass(frozen=True)
class ArchSpec:
    """What to build: the arch type name, its constructor kwargs, and the net's scale factor."""

    arch: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    scale: int = 4


def read_state_dict(path: str | os.PathLike, key: str | None = None) -> dict[str, torch.Tensor]:
    """Read a ``.pth`` / ``.pt`` (weights_only) or ``.safetensors`` file and return the generator's
    state dict: ``params_ema`` when present, else ``params`` (or the plain dict), without any
    ``module.`` prefix left by DataParallel."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'Weights file not found: {path!r}')
    if path.lower().endswith('.safetensors'):
        try:
            from safetensors.torch import load_file
        except ImportError as err:  # pragma: no cover - safetensors ships with the stack
            raise WeightsError(f'Reading {path!r} needs the "safetensors" package') from err
        try:
            raw: Any = load_file(path, device='cpu')
        except Exception as err:
            raise WeightsError(f'Cannot read safetensors file {path!r}: {err}') from err
    else:
        raw = safe_torch_load(path)
    return select_params(raw, key=key, source=path)


def select_params(raw: Any, key: str | None = None, source: str = '<state dict>') -> dict[str, torch.Tensor]:
    """Pick the generator weights out of a checkpoint dict (``key`` forces one entry)."""
    if not isinstance(raw, Mapping):
        raise WeightsError(f'{source}: expected a dict of tensors, got {type(raw).__name__}')
    if key is not None:
        if key not in raw:
            raise WeightsError(f'{source}: no key {key!r} (keys: {sorted(raw)[:10]})')
        raw = raw[key]
    else:
        for candidate in PARAM_KEYS:
            if candidate in raw and isinstance(raw[candidate], Mapping):
                raw = raw[candidate]
                break
    state = {}
    for name, value in raw.items():
        if not isinstance(value, torch.Tensor):
            raise WeightsError(f'{source}: entry {name!r} is {type(value).__name__}, not a tensor')
        state[name.removeprefix('module.')] = value
    if not state:
        raise WeightsError(f'{source}: the state dict is empty')
    return state


def _shape(state: Mapping[str, torch.Tensor], key: str, source: str) -> torch.Size:
    if key not in state:
        raise WeightsError(f'{source}: missing key {key!r} needed to recognise the architecture')
    return state[key].shape


def _detect_rrdbnet(state: Mapping[str, torch.Tensor], source: str) -> ArchSpec:
    num_feat, first_in = _shape(state, 'conv_first.weight', source)[:2]
    num_out_ch = _shape(state, 'conv_last.weight', source)[0]
    num_grow_ch = _shape(state, 'body.0.rdb1.conv1.weight', source)[0]
    num_block = 1 + max(int(m.group(1)) for k in state if (m := re.match(r'body\.(\d+)\.', k)))
    # x4 feeds the image straight in; x2 / x1 pixel-unshuffle it by 2 / 4 first (4x / 16x channels).
    unshuffle = first_in // num_out_ch
    scale = {1: 4, 4: 2, 16: 1}.get(unshuffle)
    if scale is None or first_in % num_out_ch:
        raise WeightsError(
            f'{source}: conv_first takes {first_in} channels for {num_out_ch} output channels; '
            'expected 1x (x4), 4x (x2) or 16x (x1)'
        )
    kwargs = dict(
        num_in_ch=num_out_ch,
        num_out_ch=num_out_ch,
        scale=scale,
        num_feat=num_feat,
        num_block=num_block,
        num_grow_ch=num_grow_ch,
    )
    return ArchSpec('RRDBNet', kwargs, scale)


def _detect_srvgg(state: Mapping[str, torch.Tensor], source: str, act_type: str | None) -> ArchSpec:
    matches = ((k, re.fullmatch(r'body\.(\d+)\.weight', k)) for k in state)
    conv_ids = sorted(int(m.group(1)) for k, m in matches if m and state[k].dim() == 4)
    num_feat, num_in_ch = state[f'body.{conv_ids[0]}.weight'].shape[:2]
    last_out = state[f'body.{conv_ids[-1]}.weight'].shape[0]
    has_prelu = 'body.1.weight' in state and state['body.1.weight'].dim() == 1
    act = act_type or ('prelu' if has_prelu else 'leakyrelu')
    if has_prelu and act != 'prelu':
        raise WeightsError(f'{source}: the file has PReLU slopes but act_type={act!r} was asked for')
    upscale = math.isqrt(last_out // num_in_ch)
    if upscale * upscale * num_in_ch != last_out:
        raise WeightsError(f'{source}: last conv has {last_out} outputs, not {num_in_ch} x a square scale')
    kwargs = dict(
        num_in_ch=num_in_ch,
        num_out_ch=num_in_ch,
        num_feat=num_feat,
        num_conv=len(conv_ids) - 2,
        upscale=upscale,
        act_type=act,
    )
    return ArchSpec('SRVGGNetCompact', kwargs, upscale)


def detect_arch(
    state: Mapping[str, torch.Tensor], source: str = '<state dict>', act_type: str | None = None
) -> ArchSpec:
    """Recognise RRDBNet (any block count / width / scale 1, 2, 4) or SRVGGNetCompact from shapes.

    ``act_type`` only matters for SRVGG files without PReLU slopes (relu and leakyrelu carry no
    weights and so cannot be told apart)."""
    if 'conv_first.weight' in state and 'body.0.rdb1.conv1.weight' in state:
        return _detect_rrdbnet(state, source)
    if 'body.0.weight' in state:
        return _detect_srvgg(state, source, act_type)
    if any(k.endswith('.weight_orig') for k in state) or {'conv0.weight', 'conv9.weight'} <= state.keys():
        raise WeightsError(
            f'{source}: a discriminator checkpoint (spectral-norm convs, net_d), not a generator; '
            'inference needs the generator file (net_g_*.pth)'
        )
    raise WeightsError(
        f'{source}: not a Real-ESRGAN generator (neither RRDBNet nor SRVGGNetCompact keys); '
        f'first keys: {list(state)[:6]}'
    )


def build_arch(spec: ArchSpec) -> nn.Module:
    """Instantiate the network of ``spec`` (BasicSR's RRDBNet, the plugin's SRVGGNetCompact)."""
    if spec.arch == 'RRDBNet':
        from basicsr.archs.rrdbnet_arch import RRDBNet

        return RRDBNet(**spec.kwargs)
    if spec.arch == 'SRVGGNetCompact':
        from realesrgan_plugin.archs.srvgg_arch import SRVGGNetCompact

        return SRVGGNetCompact(**spec.kwargs)
    raise WeightsError(f'unknown arch {spec.arch!r}')


def model_from_state_dict(
    state: Mapping[str, torch.Tensor], source: str = '<state dict>', act_type: str | None = None
) -> tuple[nn.Module, int]:
    """Build the detected network, load ``state`` strictly, and return ``(model.eval(), scale)``."""
    spec = detect_arch(state, source, act_type)
    model = build_arch(spec)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise WeightsError(f'{source}: weights do not fit the detected {spec.arch}{spec.kwargs}: {err}') from err
    return model.eval(), spec.scale


def interpolate_state_dicts(
    a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor], weight_a: float, weight_b: float | None = None
) -> dict[str, torch.Tensor]:
    """Deep network interpolation (DNI): ``weight_a * a + weight_b * b`` key by key
    (``weight_b`` defaults to ``1 - weight_a``; the official ``RealESRGANer.dni`` takes both)."""
    if weight_b is None:
        weight_b = 1.0 - weight_a
    if a.keys() != b.keys():
        missing = sorted(set(a) ^ set(b))[:5]
        raise WeightsError(f'DNI needs two state dicts of the same network; keys differ: {missing}')
    out = {}
    for k, va in a.items():
        vb = b[k]
        if va.shape != vb.shape:
            raise WeightsError(f'DNI: {k!r} has shape {tuple(va.shape)} vs {tuple(vb.shape)}')
        out[k] = weight_a * va.float() + weight_b * vb.float()
    return out
