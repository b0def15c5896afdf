"""Export RRDBNet / SRVGGNetCompact generators to ONNX with dynamic batch, height and width.

The official ``scripts/pytorch2onnx.py`` has a ``--params`` flag whose meaning is inverted
(the default picks ``params``, passing the flag picks ``params_ema``) and exports a fixed
64x64 input. Here the weights key is named explicitly (``auto`` = ``params_ema`` when the
file has it, as the official inference does), every spatial size and batch is dynamic, and
RRDBNet x2/x1 (which pixel-unshuffle their input) pad odd sizes inside the graph the way the
official upsampler does, so the exported model accepts any image size.
"""

from __future__ import annotations

import copy
import io
import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from realesrgan_plugin.archs.srvgg_arch import SRVGGNetCompact
from realesrgan_plugin.compat import safe_torch_load
from realesrgan_plugin.utils.img_io import write_bytes_atomic

import numpy as np
import torch
import torch.nn.functional as F
from basicsr.archs.rrdbnet_arch import RRDBNet
from torch import nn

PARAMS_KEYS = ('auto', 'params_ema', 'params')
DEFAULT_OPSET = 17


def _load_checkpoint(path: str | os.PathLike) -> Mapping[str, Any]:
    path = os.fspath(path)
    if path.endswith('.safetensors'):
        from safetensors.torch import load_file

        return load_file(path, device='cpu')
    return safe_torch_load(path, map_location='cpu')


def select_state_dict(checkpoint: Mapping[str, Any], params_key: str = 'auto', name: str = '<checkpoint>') -> dict:
    """Pick the generator weights from a BasicSR checkpoint.

    ``params_key``: 'params_ema' (EMA weights, what the official releases are used with),
    'params' (the raw weights), or 'auto' (params_ema if present, else params, else the file
    is taken to be a bare state dict). ``name`` (the file) is used in errors."""
    if params_key not in PARAMS_KEYS:
        raise ValueError(f'params_key must be one of {PARAMS_KEYS}, got {params_key!r}')
    wrapped = [k for k in ('params_ema', 'params') if k in checkpoint]
    if params_key == 'auto':
        if wrapped:
            return dict(checkpoint[wrapped[0]])
        if all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
            return dict(checkpoint)
        raise KeyError(f'{name}: no params_ema/params key and not a bare state dict (keys: {sorted(checkpoint)})')
    if params_key not in checkpoint:
        raise KeyError(f'{name}: has no {params_key!r} weights (available keys: {sorted(checkpoint)})')
    return dict(checkpoint[params_key])


def _block_indices(state_dict: Mapping[str, Any], pattern: str) -> list[int]:
    regex = re.compile(pattern)
    return sorted({int(m.group(1)) for k in state_dict if (m := regex.match(k))})


def _rrdb_from_state_dict(sd: Mapping[str, torch.Tensor]) -> tuple[nn.Module, int]:
    num_feat, in_channels = sd['conv_first.weight'].shape[:2]
    num_out_ch = sd['conv_last.weight'].shape[0]
    # RRDBNet pixel-unshuffles its input for x2 (4x channels) and x1 (16x channels).
    scale = {1: 4, 4: 2, 16: 1}.get(in_channels // num_out_ch) if in_channels % num_out_ch == 0 else None
    if scale is None:
        raise ValueError(f'RRDBNet: cannot infer the scale from conv_first with {in_channels} input channels')
    num_block = len(_block_indices(sd, r'body\.(\d+)\.'))
    num_grow_ch = sd['body.0.rdb1.conv1.weight'].shape[0]
    num_in_ch = in_channels // {4: 1, 2: 4, 1: 16}[scale]
    net = RRDBNet(num_in_ch, num_out_ch, scale=scale, num_feat=num_feat, num_block=num_block, num_grow_ch=num_grow_ch)
    return net, scale


def _srvgg_from_state_dict(sd: Mapping[str, torch.Tensor], act_type: str | None) -> tuple[nn.Module, int]:
    convs = [i for i in _block_indices(sd, r'body\.(\d+)\.weight') if sd[f'body.{i}.weight'].ndim == 4]
    num_feat, num_in_ch = sd['body.0.weight'].shape[:2]
    last_out = sd[f'body.{convs[-1]}.weight'].shape[0]
    scale = round((last_out / num_in_ch) ** 0.5)
    if scale * scale * num_in_ch != last_out:
        raise ValueError(f'SRVGGNetCompact: last conv has {last_out} outputs, not {num_in_ch} x scale^2')
    has_prelu = 'body.1.weight' in sd
    if act_type is None:
        act_type = 'prelu' if has_prelu else 'relu'
    net = SRVGGNetCompact(num_in_ch, num_in_ch, num_feat, len(convs) - 2, scale, act_type)
    return net, scale


def build_generator(state_dict: Mapping[str, torch.Tensor], act_type: str | None = None) -> tuple[nn.Module, int]:
    """Recognise RRDBNet or SRVGGNetCompact (and their sizes) from a state dict, build it and load
    the weights strictly. Returns ``(model in eval mode, scale)``. ``act_type`` only matters for
    SRVGGNetCompact without PReLU weights (relu vs leakyrelu cannot be told from the weights)."""
    if 'conv_first.weight' in state_dict and 'conv_last.weight' in state_dict:
        net, scale = _rrdb_from_state_dict(state_dict)
    elif 'body.0.weight' in state_dict:
        net, scale = _srvgg_from_state_dict(state_dict, act_type)
    else:
        raise ValueError(f'unknown generator: keys start with {sorted(state_dict)[:5]} (expected RRDBNet or SRVGG)')
    net.load_state_dict(state_dict, strict=True)
    return net.eval(), scale


def load_generator(
    path: str | os.PathLike, params_key: str = 'auto', act_type: str | None = None
) -> tuple[nn.Module, int]:
    """Load a generator from a ``.pth`` (BasicSR checkpoint or bare state dict) or ``.safetensors``."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'model file not found: {path!r}')
    state_dict = select_state_dict(_load_checkpoint(path), params_key, name=path)
    try:
        return build_generator(state_dict, act_type)
    except (KeyError, ValueError, RuntimeError) as err:
        raise ValueError(f'{path}: {err}') from err


class PadToMultiple(nn.Module):
    """Reflect-pad H and W up to a multiple of ``multiple`` before the network and crop the
    output back to ``scale`` x the input size: RRDBNet x2/x1 need even / multiple-of-4 inputs."""

    def __init__(self, net: nn.Module, multiple: int, scale: int) -> None:
        super().__init__()
        self.net, self.multiple, self.scale = net, multiple, scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2], x.shape[3]
        pad_h = (self.multiple - h % self.multiple) % self.multiple
        pad_w = (self.multiple - w % self.multiple) % self.multiple
        out = self.net(F.pad(x, (0, pad_w, 0, pad_h), mode='reflect'))
        return out[:, :, : h * self.scale, : w * self.scale]


def _input_multiple(net: nn.Module) -> int:
    if isinstance(net, RRDBNet):
        return {2: 2, 1: 4}.get(net.scale, 1)
    return 1


def export_onnx(
    net: nn.Module,
    path: str | os.PathLike,
    *,
    fp16: bool = False,
    opset: int = DEFAULT_OPSET,
    dynamic_batch: bool = True,
    sample_size: int = 32,
) -> Path:
    """Export ``net`` (NCHW RGB in [0, 1] -> NCHW RGB) to ``path``; input ``input``, output ``output``.

    Height and width are always dynamic, the batch too unless ``dynamic_batch=False``. ``fp16``
    exports float16 weights, input and output. The file is written atomically and checked with
    ``onnx.checker``."""
    import onnx

    net = copy.deepcopy(net).eval().float()
    scale = getattr(net, 'scale', getattr(net, 'upscale', None))
    multiple = _input_multiple(net)
    if multiple > 1:
        net = PadToMultiple(net, multiple, scale)
    dtype = torch.float16 if fp16 else torch.float32
    net = net.to(dtype)
    sample = torch.rand(1, net_in_channels(net), sample_size, sample_size, dtype=dtype)
    axes = {2: 'height', 3: 'width'}
    out_axes = {2: 'out_height', 3: 'out_width'}
    if dynamic_batch:
        axes, out_axes = {0: 'batch', **axes}, {0: 'batch', **out_axes}
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        # The TorchScript exporter is deprecated but needs no onnxscript; the pad/crop shape
        # arithmetic is traced symbolically (the TracerWarning from basicsr's assert is moot).
        warnings.simplefilter('ignore', DeprecationWarning)
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        torch.onnx.export(
            net,
            (sample,),
            buffer,
            dynamo=False,  # the TorchScript exporter: no onnxscript dependency, dynamic_axes
            input_names=['input'],
            output_names=['output'],
            dynamic_axes={'input': axes, 'output': out_axes},
            opset_version=opset,
            do_constant_folding=True,
        )
    onnx.checker.check_model(onnx.load_from_string(buffer.getvalue()))
    write_bytes_atomic(path, buffer.getvalue())
    return Path(path)


def net_in_channels(net: nn.Module) -> int:
    inner = net.net if isinstance(net, PadToMultiple) else net
    if isinstance(inner, RRDBNet):
        return inner.conv_first.in_channels // {4: 1, 2: 4, 1: 16}[inner.scale]
    if isinstance(inner, SRVGGNetCompact):
        return inner.num_in_ch
    first_conv = next(m for m in inner.modules() if isinstance(m, nn.Conv2d))
    return first_conv.in_channels


def verify_onnx(
    onnx_path: str | os.PathLike, net: nn.Module, size: tuple[int, int] = (23, 31), batch: int = 2
) -> float:
    """Run the ONNX file in onnxruntime (CPU) and ``net`` in PyTorch (fp32) on the same random
    input of an odd size; return the largest absolute difference of the outputs."""
    import onnxruntime as ort

    session = ort.InferenceSession(os.fspath(onnx_path), providers=['CPUExecutionProvider'])
    model_input = session.get_inputs()[0]
    fp16 = model_input.type == 'tensor(float16)'
    x = torch.rand(batch, net_in_channels(net), *size, generator=torch.Generator().manual_seed(0))
    if fp16:
        x = x.half().float()  # the same values the fp16 model sees
    got = session.run(None, {model_input.name: x.numpy().astype(np.float16 if fp16 else np.float32)})[0]
    multiple = _input_multiple(net)
    ref_net = net.eval().float()
    if multiple > 1:
        ref_net = PadToMultiple(ref_net, multiple, net.scale)
    with torch.no_grad():
        want = ref_net(x).numpy()
    if got.shape != want.shape:
        raise AssertionError(f'{onnx_path}: ONNX output shape {got.shape} != PyTorch {want.shape}')
    return float(np.abs(got.astype(np.float32) - want).max())


def export_pth_to_onnx(
    pth_path: str | os.PathLike,
    onnx_path: str | os.PathLike,
    *,
    params_key: str = 'auto',
    fp16: bool = False,
    opset: int = DEFAULT_OPSET,
    dynamic_batch: bool = True,
    act_type: str | None = None,
    verify: bool = True,
) -> dict[str, Any]:
    """Load a generator from ``pth_path`` and export it; with ``verify`` compare onnxruntime with
    PyTorch on a random input. Returns a summary dict (arch, scale, path, max_abs_diff)."""
    net, scale = load_generator(pth_path, params_key, act_type)
    path = export_onnx(net, onnx_path, fp16=fp16, opset=opset, dynamic_batch=dynamic_batch)
    summary: dict[str, Any] = {
        'arch': type(net).__name__,
        'scale': scale,
        'fp16': fp16,
        'onnx': os.fspath(path),
        'size_bytes': path.stat().st_size,
    }
    if verify:
        summary['max_abs_diff'] = verify_onnx(path, net)
    return summary
