"""Winograd F(6,3) CPU convolutions: equal to direct conv up to rounding for every shape and
epilogue the generators use, strips, batching, RRDBNet and SRVGGNetCompact, and the build /
fallback paths."""

from __future__ import annotations

import ctypes
import subprocess

import realesrgan_plugin.basicsr  # noqa: F401  (compat + BasicSR registration before basicsr)
from realesrgan_plugin.archs.srvgg_arch import SRVGGNetCompact
from realesrgan_plugin.inference import Upsampler
from realesrgan_plugin.inference import winograd as wg
from realesrgan_plugin.inference.fast_rrdb import FastRRDBNet
from realesrgan_plugin.inference.winograd_rrdb import WinogradRRDBNet
from realesrgan_plugin.inference.winograd_srvgg import WinogradSRVGGNet

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from basicsr.archs.rrdbnet_arch import RRDBNet
from torch import nn


@pytest.fixture
def kernels() -> None:
    """Checked when a test runs (not at collection, which would build into the user's cache before
    the session's temporary cache is set); the reason is given, and the fallback tests in
    test_faults.py run either way."""
    if not wg.available():
        pytest.skip('Winograd kernels unavailable here (no C compiler or a failed build; see the log)')


pytestmark = pytest.mark.usefixtures('kernels')


def nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1).contiguous()


def nchw(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 3, 1, 2)


def random_conv(cin: int, cout: int, seed: int = 0) -> nn.Conv2d:
    torch.manual_seed(seed)
    conv = nn.Conv2d(cin, cout, 3, 1, 1)
    nn.init.normal_(conv.bias, std=0.1)
    return conv.requires_grad_(False)


def close(a: torch.Tensor, b: torch.Tensor) -> None:
    scale = b.abs().max().item()
    assert (a - b).abs().max().item() <= 2e-5 * max(scale, 1.0), (a - b).abs().max().item()


@pytest.mark.parametrize('n, h, w', [(1, 8, 8), (2, 7, 10), (1, 1, 1), (3, 5, 3), (1, 13, 4)])
@pytest.mark.parametrize('cin, cout', [(5, 6), (3, 64), (70, 3)])
def test_conv_matches_direct_for_odd_shapes_and_channels(n, h, w, cin, cout):
    conv = random_conv(cin, cout)
    x = torch.randn(n, cin, h, w)
    out = wg.WinogradConv(conv)(nhwc(x), wg.Workspace())
    close(nchw(out), conv(x))


def test_leaky_and_prelu_epilogues():
    conv = random_conv(8, 6)
    x = torch.randn(2, 8, 9, 11)
    close(nchw(wg.WinogradConv(conv, slope=0.2)(nhwc(x), wg.Workspace())), F.leaky_relu(conv(x), 0.2))
    prelu = torch.linspace(-0.5, 0.5, 6)
    out = wg.WinogradConv(conv, slope=prelu)(nhwc(x), wg.Workspace())
    close(nchw(out), F.prelu(conv(x), prelu))


def test_scaled_residual_epilogue():
    conv = random_conv(8, 8)
    x, res = torch.randn(1, 8, 12, 9), torch.randn(1, 8, 12, 9)
    out = wg.WinogradConv(conv)(nhwc(x), wg.Workspace(), residual=nhwc(res), alpha=0.2)
    close(nchw(out), conv(x) * 0.2 + res)


def test_nearest_upsampling_folded_into_the_input(monkeypatch):
    """x2 nearest + conv in strips (tiny strip budget: one tile row per strip) = interpolate + conv."""
    monkeypatch.setattr(wg, 'STRIP_BYTES', 1)
    conv = random_conv(6, 5)
    x = torch.randn(2, 6, 7, 9)
    out = wg.WinogradConv(conv, slope=0.2)(nhwc(x), wg.Workspace(), up=2)
    close(nchw(out), F.leaky_relu(conv(F.interpolate(x, scale_factor=2, mode='nearest')), 0.2))


def test_transform_buffers_are_checked():
    x = torch.randn(1, 8, 8, 4)
    with pytest.raises(ValueError, match=r'V buffer of shape \(64, 3, 4\)'):
        wg.input_transform(x, torch.empty(64, 3, 4))
    with pytest.raises(ValueError, match='no room for 4 channels at 2'):
        wg.input_transform(x, torch.empty(1, 64, 6, 5), c_off=2)
    with pytest.raises(ValueError, match='contiguous float32'):
        wg.input_transform(x.double(), torch.empty(1, 64, 6, 4))
    with pytest.raises(ValueError, match='does not fit'):
        wg.output_transform(torch.empty(64, 5, 4), torch.empty(1, 8, 8, 4))
    with pytest.raises(ValueError, match='3x3 / stride 1 / pad 1'):
        wg.WinogradConv(nn.Conv2d(3, 3, 5, 1, 2))
    with pytest.raises(ValueError, match='3x3 kernels'):
        wg.transform_weight(torch.empty(4, 3, 5, 5))


def points_major(v: torch.Tensor, tiles: int, k: int) -> torch.Tensor:
    """``[64, tiles, k]`` view of a transformed input in its blocked layout (wg.v_shape)."""
    return v.permute(1, 0, 2, 3).reshape(wg.POINTS, -1, v.shape[3])[:, :tiles, :k]


@pytest.mark.parametrize('tiles', [1, 5, 6, 7, 13, 64])
@pytest.mark.parametrize('k, n_out', [(1, 16), (17, 32), (200, 48), (64, 3), (8, 21)])
def test_gemm_matches_bmm_on_a_leading_channel_slice(tiles, k, n_out):
    """The C GEMM reads the first k channels of a wider V; short blocks (fewer than 6 tiles) and
    widths that are not a multiple of 16 included."""
    torch.manual_seed(tiles * k)
    v, u = torch.randn(wg.v_shape(tiles, k + 11)), torch.randn(wg.POINTS, k, n_out)
    out = torch.full((tiles, wg.POINTS, n_out), float('nan'))
    wg.gemm(v, k, u, out)
    close(out, torch.bmm(points_major(v, tiles, k), u).transpose(0, 1))


def test_the_16_float_vector_build_computes_the_same(tmp_path, monkeypatch):
    """AVX-512 machines build the GEMM with 16-float vectors; GCC lowers them on any x86, so the
    same code is checked here whatever this CPU has."""
    lib_path = tmp_path / 'winograd16.so'
    cmd = [wg._compiler(), *wg.CFLAGS, '-DWINO_VW=16', str(wg.SOURCE), '-o', str(lib_path)]
    subprocess.run(cmd, check=True, capture_output=True)
    monkeypatch.setattr(wg, 'load_kernels', lambda: wg._declare(ctypes.CDLL(str(lib_path))))
    torch.manual_seed(0)
    for n_out in (3, 16, 32, 48, 64):
        v, u = torch.randn(wg.v_shape(13, 80)), torch.randn(wg.POINTS, 70, n_out)
        out = wg.gemm(v, 70, u, torch.empty(13, wg.POINTS, n_out))
        close(out, torch.bmm(points_major(v, 13, 70), u).transpose(0, 1))
    conv, x = random_conv(20, 48), torch.randn(2, 20, 13, 11)
    close(nchw(wg.WinogradConv(conv)(nhwc(x), wg.Workspace())), conv(x))


def test_streaming_input_transform_writes_what_the_cached_one_writes():
    x = torch.randn(2, 9, 7, 40)
    shape = wg.v_shape(wg.tile_count(2, wg.tile_rows(9), 7), 48)
    v_cached, v_streamed = torch.zeros(shape), torch.zeros(shape)
    wg.input_transform(x, v_cached, c_off=8)
    wg.input_transform(x, v_streamed, c_off=8, stream=True)
    assert torch.equal(v_cached, v_streamed)
    assert torch.count_nonzero(v_streamed[..., :8]) == 0  # channels outside the slice are untouched


@pytest.mark.parametrize('scale, size', [(4, (9, 13)), (2, (10, 6)), (1, (8, 12)), (4, (1, 1))])
@pytest.mark.parametrize('feat, grow', [(16, 8), (32, 16)])  # 16: every GEMM in the C kernel
def test_rrdbnet_matches_basicsr(scale, size, feat, grow):
    torch.manual_seed(scale)
    net = RRDBNet(3, 3, scale=scale, num_feat=feat, num_block=2, num_grow_ch=grow).eval()
    x = torch.rand(2, 3, *size)
    with torch.inference_mode():
        ref = net(x)
        fast = WinogradRRDBNet(net)
        close(fast(x), ref)
        close(fast(x[:1]), ref[:1])  # the workspace follows a new batch size


@pytest.mark.filterwarnings('ignore:.*emulated')
def test_upsampler_picks_winograd_on_cpu_fp32_only():
    net = RRDBNet(3, 3, scale=4, num_feat=8, num_block=1, num_grow_ch=4).eval()
    assert isinstance(Upsampler(net, 4).model, WinogradRRDBNet)
    assert isinstance(Upsampler(net, 4, winograd=False).model, FastRRDBNet)
    with pytest.raises(ValueError, match='float32 on the CPU'):
        Upsampler(net, 4, dtype='bf16', winograd=True)
    img = np.random.default_rng(0).integers(0, 255, (11, 7, 3), dtype=np.uint8)
    a, b = Upsampler(net, 4).enhance(img), Upsampler(net, 4, winograd=False).enhance(img)
    assert np.abs(a.astype(int) - b).max() <= 1


@pytest.mark.filterwarnings('ignore:.*emulated')
def test_cpu_bf16_runs_the_plain_net_channels_last():
    """oneDNN's bf16 convs want NHWC: no NCHW fast path, no Winograd, close to fp32."""
    torch.manual_seed(0)
    net = RRDBNet(3, 3, scale=4, num_feat=8, num_block=1, num_grow_ch=4).eval()
    up = Upsampler(net, 4, dtype='bf16', device='cpu')
    assert up.channels_last and not up.winograd and type(up.model).__name__ == 'RRDBNet'
    assert up.model.conv_first.weight.is_contiguous(memory_format=torch.channels_last)
    img = np.random.default_rng(0).integers(0, 255, (11, 7, 3), dtype=np.uint8)
    diff = up.enhance(img).astype(int) - Upsampler(net, 4, device='cpu').enhance(img)
    assert np.abs(diff).mean() < 2


def test_failed_build_names_the_command(tmp_path):
    with pytest.raises(RuntimeError, match='definitely-not-a-compiler|No such file'):
        wg._build('definitely-not-a-compiler', tmp_path / 'k.so')
    broken = tmp_path / 'cc'
    broken.write_text('#!/bin/sh\necho "cc: fatal error" >&2\nexit 1\n')
    broken.chmod(0o755)
    with pytest.raises(RuntimeError, match=r'cc: fatal error'):
        wg._build(str(broken), tmp_path / 'k.so')
    assert list(tmp_path.iterdir()) == [broken]  # no half-written library left behind


def test_switch_off_by_environment(monkeypatch):
    monkeypatch.setenv('REALESRGAN_PLUGIN_WINOGRAD', '0')
    wg.load_kernels.cache_clear()
    try:
        assert not wg.available()
        net = RRDBNet(3, 3, scale=4, num_feat=8, num_block=1, num_grow_ch=4).eval()
        assert isinstance(Upsampler(net, 4).model, FastRRDBNet)
    finally:
        monkeypatch.delenv('REALESRGAN_PLUGIN_WINOGRAD')
        wg.load_kernels.cache_clear()
    assert wg.available()


@pytest.mark.parametrize('act_type', ['prelu', 'relu', 'leakyrelu'])
@pytest.mark.parametrize('upscale, in_ch, out_ch', [(4, 3, 3), (2, 3, 3), (1, 3, 3), (3, 3, 1)])
def test_srvgg_matches_direct(act_type, upscale, in_ch, out_ch):
    torch.manual_seed(upscale)
    net = SRVGGNetCompact(in_ch, out_ch, num_feat=12, num_conv=3, upscale=upscale, act_type=act_type).eval()
    if act_type == 'prelu':
        for layer in net.body[1::2]:
            nn.init.uniform_(layer.weight, -0.5, 0.5)  # distinct slopes per channel
    x = torch.rand(2, in_ch, 9, 6)
    with torch.inference_mode():
        close(WinogradSRVGGNet(net)(x), net(x))


def test_upsampler_runs_srvgg_through_winograd():
    net = SRVGGNetCompact(3, 3, num_feat=8, num_conv=2, upscale=4).eval()
    assert isinstance(Upsampler(net, 4).model, WinogradSRVGGNet)
    img = np.random.default_rng(1).integers(0, 255, (10, 13, 3), dtype=np.uint8)
    a, b = Upsampler(net, 4).enhance(img), Upsampler(net, 4, winograd=False).enhance(img)
    assert np.abs(a.astype(int) - b).max() <= 1


def test_workspace_lets_go_of_big_buffers_after_a_call():
    net = RRDBNet(3, 3, scale=4, num_feat=8, num_block=1, num_grow_ch=4).eval()
    fast = WinogradRRDBNet(net)
    fast.work.keep_bytes = 1 << 20
    with torch.inference_mode():
        fast(torch.rand(1, 3, 40, 40))  # the 160x160 buffers alone are over 1 MB each
    assert 0 < fast.work.nbytes() <= 1 << 20


def test_workspace_reuses_its_buffers_for_smaller_requests():
    work = wg.Workspace()
    big = work.get('a', 4, 5, 6)
    small = work.get('a', 2, 3)
    assert small.data_ptr() == big.data_ptr() and small.shape == (2, 3) and small.is_contiguous()
    other = work.get('b', 2, 3)
    assert other.data_ptr() != big.data_ptr()
    grown = work.get('a', 10, 20)
    assert grown.shape == (10, 20) and work.nbytes() == (200 + 6) * 4
