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
import warnings
from pathlib import Path
from typing import Any

from realesrgan_plugin.archs.srvgg_arch import SRVGGNetCompact
from realesrgan_plugin.core.atomic import write_bytes_atomic

import numpy as np
import torch
import torch.nn.functional as F
from basicsr.archs.rrdbnet_arch import RRDBNet
from torch import nn

PARAMS_KEYS = ('auto', 'params_ema', 'params')
DEFAULT_OPSET = 17


def param_key_for(params_key: str) -> str | None:
    """``auto`` -> None (the loader takes params_ema, then params, then a bare state dict)."""
    if params_key not in PARAMS_KEYS:
        raise ValueError(f'params_key must be one of {PARAMS_KEYS}, got {params_key!r}')
    return None if params_key == 'auto' else params_key


def load_generator(
    source: str | os.PathLike, params_key: str = 'auto', act_type: str | None = None
) -> tuple[nn.Module, int]:
    """The generator of a ``.pth`` (BasicSR checkpoint or bare state dict), ``.safetensors``, ncnn
    ``.param`` or official model name (offline through the ncnn package where it has it), with the
    architecture read from the weights by :func:`realesrgan_plugin.inference.load_model`."""
    from realesrgan_plugin.inference import load_model

    model, scale = load_model(source, param_key=param_key_for(params_key), act_type=act_type)
    return model.eval(), scale


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
    if verify:  # a fixed batch of 1 (--static-batch) is checked with one image, not two
        summary['max_abs_diff'] = verify_onnx(path, net, batch=2 if dynamic_batch else 1)
    return summary
