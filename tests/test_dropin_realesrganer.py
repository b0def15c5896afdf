"""``RealESRGANer``: the official class's API over the plugin's Upsampler (tiny random nets, tiny images)."""

from __future__ import annotations

import importlib.util
import queue
from pathlib import Path

import realesrgan_plugin
import realesrgan_plugin.basicsr  # noqa: F401  (compat + BasicSR registration before basicsr)
from realesrgan_plugin.archs.srvgg_arch import SRVGGNetCompact
from realesrgan_plugin.core.img_io import read_image
from realesrgan_plugin.inference import IOConsumer, PrefetchReader, RealESRGANer, zoo

import cv2
import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def tiny_net(scale: int = 2, seed: int = 0) -> SRVGGNetCompact:
    torch.manual_seed(seed)
    net = SRVGGNetCompact(3, 3, num_feat=8, num_conv=2, upscale=scale, act_type='prelu')
    with torch.no_grad():  # a small residual on top of the nearest upscale: outputs look like the photo
        for p in net.parameters():
            p.mul_(0.3)
    return net


@pytest.fixture
def weights(tmp_path) -> Path:
    """Tiny random SRVGGNetCompact in the official key layout (``params`` as the releases)."""
    path = tmp_path / 'tiny_x2.pth'
    torch.save({'params': tiny_net().state_dict()}, path)
    return path


@pytest.fixture
def photo(astronaut_bgr) -> np.ndarray:
    return np.ascontiguousarray(astronaut_bgr[100:148:2, 180:236:2])  # 24 x 28


def test_importable_from_the_top_level_and_official_attributes(weights):
    assert realesrgan_plugin.RealESRGANer is RealESRGANer
    up = RealESRGANer(scale=2, model_path=str(weights), model=tiny_net(), tile=0, tile_pad=10, pre_pad=10)
    for name in ('scale', 'tile_size', 'tile_pad', 'pre_pad', 'mod_scale', 'half', 'model', 'device', 'img', 'output'):
        assert hasattr(up, name), name
    assert (up.scale, up.tile_size, up.tile_pad, up.pre_pad, up.mod_scale, up.half) == (2, 0, 10, 10, None, False)
    assert up.device == torch.device('cpu') and not up.model.training
    assert torch.equal(up.model.state_dict()['body.0.weight'], torch.load(weights)['params']['body.0.weight'])


def test_model_none_is_built_from_the_weights(weights, photo):
    built = RealESRGANer(2, str(weights), model=None, pre_pad=0)
    given = RealESRGANer(2, str(weights), model=tiny_net(seed=5), pre_pad=0)
    assert np.array_equal(built.enhance(photo)[0], given.enhance(photo)[0])


def test_steps_pre_process_process_post_process_on_float32(weights, photo):
    up = RealESRGANer(2, str(weights), model=tiny_net(), pre_pad=10)
    rgb = cv2.cvtColor(photo, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
    up.pre_process(rgb)
    assert up.img.shape == (1, 3, 24 + 10, 28 + 10)  # pre-padded, already even for x2
    assert up.mod_scale == 2 and (up.mod_pad_h, up.mod_pad_w) == (0, 0)
    up.process()
    assert up.output.shape == (1, 3, 68, 76)
    out = up.post_process()
    assert out is up.output and out.shape == (1, 3, 48, 56) and out.dtype == torch.float32
    # the same image through enhance: post_process's tensor is its float version
    enhanced, mode = up.enhance(photo)
    as_uint8 = np.rint(out[0].numpy().transpose(1, 2, 0)[:, :, ::-1] * 255).astype(np.uint8)
    assert mode == 'RGB' and np.abs(as_uint8.astype(int) - enhanced).max() <= 1


def test_mod_padding_for_odd_sizes_and_x1(photo, tmp_path):
    path = tmp_path / 'x1.pth'
    torch.save({'params_ema': tiny_net(1).state_dict(), 'params': tiny_net(1, seed=3).state_dict()}, path)
    up = RealESRGANer(1, str(path), model=tiny_net(1, seed=9), pre_pad=1)
    assert torch.equal(up.model.state_dict()['body.0.weight'], tiny_net(1).state_dict()['body.0.weight'])  # ema
    up.pre_process(np.zeros((23, 26, 3), np.float32))
    assert up.mod_scale == 4 and (up.mod_pad_h, up.mod_pad_w) == (0, 1) and up.img.shape[2:] == (24, 28)
    up.process()
    assert up.post_process().shape == (1, 3, 23, 26)
    out, mode = up.enhance(photo[:23, :26])
    assert out.shape == (23, 26, 3) and mode == 'RGB'


def test_tile_process_has_no_seams(weights, photo):
    up = RealESRGANer(2, str(weights), model=tiny_net(), tile=4, tile_pad=2, pre_pad=0)
    rgb = cv2.cvtColor(photo, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
    up.pre_process(rgb)
    up.tile_process()
    tiled = up.post_process().clone()
    up.pre_process(rgb)
    up.process()
    whole = up.post_process()
    assert tiled.shape == whole.shape == (1, 3, 48, 56)
    assert (tiled - whole).abs().max() < 1e-4  # the official pasted tiles edge to edge: visible seams
    assert np.array_equal(
        up.enhance(photo)[0], RealESRGANer(2, str(weights), model=tiny_net(), pre_pad=0).enhance(photo)[0]
    )


@pytest.mark.parametrize(
    ('kind', 'mode', 'shape', 'dtype'),
    [
        ('bgr', 'RGB', (48, 56, 3), np.uint8),
        ('gray', 'L', (48, 56), np.uint8),
        ('bgra', 'RGBA', (48, 56, 4), np.uint8),
        ('bgr16', 'RGB', (48, 56, 3), np.uint16),
        ('dark16', 'RGB', (48, 56, 3), np.uint16),
        ('gray16', 'L', (48, 56), np.uint16),
        ('bgra16', 'RGBA', (48, 56, 4), np.uint16),
        ('float255', 'RGB', (48, 56, 3), np.uint8),
        ('float65535', 'RGB', (48, 56, 3), np.uint16),
        ('gray_float', 'L', (48, 56), np.uint8),
    ],
)
def test_enhance_every_kind_and_img_mode(weights, photo, kind, mode, shape, dtype):
    up = RealESRGANer(2, str(weights), model=tiny_net())
    img = {
        'bgr': photo,
        'gray': photo[:, :, 1],
        'bgra': np.dstack([photo, np.full(photo.shape[:2], 200, np.uint8)]),
        'bgr16': photo.astype(np.uint16) * 257,
        'dark16': photo.astype(np.uint16),  # max <= 255: the official turned it into 8 bit
        'gray16': photo[:, :, 1].astype(np.uint16) * 257,
        'bgra16': np.dstack([photo, np.full(photo.shape[:2], 200, np.uint8)]).astype(np.uint16) * 257,
        'float255': photo.astype(np.float32),
        'float65535': photo.astype(np.float32) * 257,
        'gray_float': photo[:, :, 1].astype(np.float32),
    }[kind]
    out, img_mode = up.enhance(img)
    assert img_mode == mode and out.shape == shape and out.dtype == dtype
    reference, _ = up.enhance(photo if img.ndim == 3 and img.shape[2] == 3 else img.astype(np.uint8))
    if kind in ('bgr16', 'float65535', 'bgra16', 'gray16'):
        assert np.abs(out / 257.0 - reference).max() <= 1  # same picture, 16-bit precision
    if kind in ('float255', 'gray_float'):
        assert np.abs(out.astype(int) - up.enhance(img.astype(np.uint8))[0]).max() <= 1


def test_outscale_and_alpha_upsampler(weights, photo):
    up = RealESRGANer(2, str(weights), model=tiny_net())
    out, _ = up.enhance(photo, outscale=3.5)
    assert out.shape == (int(24 * 3.5), int(28 * 3.5), 3)
    bgra = np.dstack([photo, np.linspace(0, 255, 24 * 28).reshape(24, 28).astype(np.uint8)])
    resized, mode = up.enhance(bgra, alpha_upsampler='bilinear')
    assert mode == 'RGBA' and resized.shape == (48, 56, 4)
    expected = cv2.resize(bgra[:, :, 3].astype(np.float32) / 255, (56, 48), interpolation=cv2.INTER_LINEAR)
    assert np.abs(resized[:, :, 3] / 255.0 - expected).max() <= 1 / 255 + 1e-6


def test_settings_changed_after_construction_are_used(weights, photo):
    up = RealESRGANer(2, str(weights), model=tiny_net(), pre_pad=0)
    whole, _ = up.enhance(photo)
    up.tile_size, up.tile_pad = 8, 4  # web UIs lower tile_size after an out-of-memory error
    assert up.upsampler.tile == 8
    assert np.abs(up.enhance(photo)[0].astype(int) - whole).max() <= 1


def test_half_on_cpu_runs_fp32(weights, photo):
    with pytest.warns(UserWarning, match='half=True ignored on the CPU'):
        up = RealESRGANer(2, str(weights), model=tiny_net(), half=True, device='cpu')
    assert up.half is False and next(up.model.parameters()).dtype == torch.float32
    assert up.enhance(photo)[0].shape == (48, 56, 3)


def test_dni_of_two_files(tmp_path, photo):
    a, b = tmp_path / 'a.pth', tmp_path / 'b.pth'
    torch.save({'params': tiny_net(seed=1).state_dict()}, a)
    torch.save({'params': tiny_net(seed=2).state_dict()}, b)
    up = RealESRGANer(2, [str(a), str(b)], dni_weight=[0.3, 0.7], model=tiny_net())
    expected = (
        0.3 * tiny_net(seed=1).state_dict()['body.0.weight'] + 0.7 * tiny_net(seed=2).state_dict()['body.0.weight']
    )
    assert torch.allclose(up.model.state_dict()['body.0.weight'], expected)
    mixed = up.dni(str(a), str(b), [0.5, 0.5])
    assert set(mixed) == {'params'} and 'body.0.weight' in mixed['params']
    with pytest.raises(ValueError, match='two model paths'):
        RealESRGANer(2, [str(a), str(b)], dni_weight=[1.0], model=tiny_net())


def test_url_model_path_goes_to_the_plugin_cache(weights, photo, tmp_path, monkeypatch):
    cache = tmp_path / 'cache'
    monkeypatch.setenv(zoo.CACHE_ENV, str(cache))
    monkeypatch.chdir(tmp_path)
    up = RealESRGANer(2, weights.as_uri(), model=tiny_net(seed=4))
    assert (cache / weights.name).read_bytes() == weights.read_bytes()
    assert np.array_equal(up.enhance(photo)[0], RealESRGANer(2, str(weights), model=tiny_net()).enhance(photo)[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ['cache', weights.name]  # nothing else written


def test_prefetch_reader_and_io_consumer(tmp_path, photo):
    paths = []
    for i in range(3):
        paths.append(tmp_path / f'{i}.png')
        cv2.imwrite(str(paths[-1]), photo + i)
    reader = PrefetchReader([str(p) for p in paths], num_prefetch_queue=2)
    reader.start()
    images = list(reader)
    assert [int(img[0, 0, 0]) for img in images] == [int(photo[0, 0, 0]) + i for i in range(3)]
    que: queue.Queue = queue.Queue()
    worker = IOConsumer({}, que, 0)
    worker.start()
    que.put({'output': images[1], 'save_path': str(tmp_path / 'out' / 'x.png')})
    que.put('quit')
    worker.join(timeout=30)
    assert np.array_equal(read_image(tmp_path / 'out' / 'x.png'), images[1])


# ------------------------------------------------------------------ as GFPGAN's background upsampler
@pytest.fixture(scope='module')
def gfpgan_root(tmp_path_factory) -> Path:
    """A working directory for ``GFPGANer`` with local random weights where it looks for them
    (``gfpgan/weights`` under the working directory; nothing is downloaded); its detector sees no face.
    (Faces pasted onto 16-bit backgrounds: tests/test_inference_face.py, with a small GFPGAN.)"""
    from facexlib.detection.retinaface import RetinaFace
    from facexlib.parsing.parsenet import ParseNet
    from gfpgan.archs.gfpganv1_clean_arch import GFPGANv1Clean

    base = tmp_path_factory.mktemp('gfpgan')
    torch.manual_seed(0)
    gfpgan = GFPGANv1Clean(
        out_size=512, num_style_feat=512, channel_multiplier=1, decoder_load_path=None, fix_decoder=False,
        num_mlp=8, input_is_latent=True, different_w=True, narrow=1, sft_half=True,
    )  # fmt: skip
    torch.save({'params_ema': {k: v.half() for k, v in gfpgan.state_dict().items()}}, base / 'GFPGANv1.3.pth')
    parse = {k: v.half() for k, v in ParseNet(in_size=512, out_size=512, parsing_ch=19).state_dict().items()}
    det = RetinaFace(network_name='resnet50', device='cpu')
    with torch.no_grad():  # no face anywhere: GFPGAN then only pastes the background
        for head in det.ClassHead:
            head.conv1x1.weight.zero_()
            head.conv1x1.bias.copy_(torch.tensor([10.0, -10.0] * 2))
    folder = base / 'quiet' / 'gfpgan' / 'weights'
    folder.mkdir(parents=True)
    torch.save({k: v.half() for k, v in det.state_dict().items()}, folder / 'detection_Resnet50_Final.pth')
    torch.save(parse, folder / 'parsing_parsenet.pth')
    return base / 'quiet'


@pytest.mark.skipif(importlib.util.find_spec('gfpgan') is None, reason='face extra not installed')
def test_as_gfpgan_bg_upsampler(weights, photo, gfpgan_root, monkeypatch):
    from gfpgan import GFPGANer

    monkeypatch.chdir(gfpgan_root)
    bg = RealESRGANer(scale=2, model_path=str(weights), model=tiny_net(), tile=16, tile_pad=4, pre_pad=0)
    gfpgan_file = gfpgan_root.parent / 'GFPGANv1.3.pth'
    restorer = GFPGANer(model_path=str(gfpgan_file), upscale=2, arch='clean', channel_multiplier=1, bg_upsampler=bg)
    for img in (photo, photo.astype(np.uint16) * 257 + 3):
        cropped, restored, restored_img = restorer.enhance(img, has_aligned=False, paste_back=True)
        assert cropped == [] and restored == []
        assert restored_img.dtype == img.dtype and restored_img.shape == (48, 56, 3)
        assert np.array_equal(restored_img, bg.enhance(img, outscale=2)[0])
