"""Face enhancement with randomly initialised GFPGAN and detector weights saved by the test."""

from __future__ import annotations

import importlib.util

import realesrgan_plugin.basicsr  # noqa: F401  (compat + BasicSR registration before basicsr)
from realesrgan_plugin.archs.srvgg_arch import SRVGGNetCompact
from realesrgan_plugin.inference import Upsampler
from realesrgan_plugin.inference.face import (
    DETECTOR_WEIGHTS,
    GFPGAN_OFFICIAL_KWARGS,
    GFPGAN_WEIGHTS,
    PARSING_WEIGHTS,
    FaceEnhancer,
    FaceWeightsMissingError,
    face_cache_dir,
)

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec('gfpgan') is None or importlib.util.find_spec('facexlib') is None,
    reason='face extra not installed',
)
SMALL_GFPGAN = dict(narrow=0.125, channel_multiplier=1)
DET = 'retinaface_mobile0.25'


@pytest.fixture(scope='module')
def face_cache(tmp_path_factory):
    """A cache folder holding random GFPGAN and detector weights under the official file names."""
    from facexlib.detection.retinaface import RetinaFace
    from facexlib.parsing.parsenet import ParseNet
    from gfpgan.archs.gfpganv1_clean_arch import GFPGANv1Clean

    cache = tmp_path_factory.mktemp('cache')
    folder = face_cache_dir(cache)
    folder.mkdir(parents=True)
    torch.manual_seed(0)
    gfpgan = GFPGANv1Clean(**{**GFPGAN_OFFICIAL_KWARGS, **SMALL_GFPGAN})
    torch.save({'params_ema': gfpgan.state_dict()}, folder / GFPGAN_WEIGHTS.filename)
    det = RetinaFace(network_name='mobile0.25', device='cpu')
    torch.save(det.state_dict(), folder / DETECTOR_WEIGHTS[DET].filename)
    parse = ParseNet(in_size=512, out_size=512, parsing_ch=19)  # fp16 on disk (half the size), loads into fp32
    torch.save({k: v.half() for k, v in parse.state_dict().items()}, folder / PARSING_WEIGHTS.filename)
    return cache


@pytest.fixture(scope='module')
def enhancer(face_cache):
    torch.manual_seed(0)
    up = Upsampler(SRVGGNetCompact(3, 3, num_feat=8, num_conv=1, upscale=2), 2)
    return FaceEnhancer(
        up, cache_dir=face_cache, gfpgan_kwargs=SMALL_GFPGAN, det_model=DET, use_parse=True, allow_download=False
    )


def test_weights_come_from_the_cache_never_the_cwd(enhancer, face_cache, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    restored = enhancer.restore_face(np.full((512, 512, 3), 128, np.uint8))
    assert restored.shape == (512, 512, 3) and restored.dtype == np.uint8
    assert list(tmp_path.iterdir()) == []  # nothing written into the working directory


@pytest.mark.parametrize('kind', ['bgr', 'gray', 'bgra', 'bgr16'])
def test_every_image_kind(enhancer, astronaut_bgr, kind):
    img = np.ascontiguousarray(astronaut_bgr[::8, ::8])
    if kind == 'gray':
        img = img[:, :, 1].copy()
    elif kind == 'bgra':
        img = np.dstack([img, np.full(img.shape[:2], 255, np.uint8)])
    elif kind == 'bgr16':
        img = img.astype(np.uint16) * 257
    out = enhancer.enhance(img)
    assert out.shape == (img.shape[0] * 2, img.shape[1] * 2) + img.shape[2:]
    assert out.dtype == img.dtype


def make_eager_detector(det, level: int = 2) -> None:
    """Set the detector heads so that it reports faces (confident, eyes 0.6 x box apart) on the
    anchors of pyramid ``level`` only (mobile0.25: 16/32, 64/128, 256/512 pixels): the rest of the
    pipeline (alignment, GFPGAN, paste-back) then really runs."""
    with torch.no_grad():
        for head in range(3):
            cls = det.ClassHead[head].conv1x1
            cls.weight.zero_()
            cls.bias.copy_(torch.tensor([10.0, -10.0] * 2) * (-1 if head == level else 1))
        landm = det.LandmarkHead[level].conv1x1
        landm.weight.zero_()
        landm.bias.copy_(torch.tensor([-3.0, -2, 3, -2, 0, 0, -2, 2, 2, 2] * 2))
        box = det.BboxHead[level].conv1x1
        box.weight.zero_()
        box.bias.copy_(torch.tensor([0.0, 0, -5, -5] * 2))  # boxes about a third of the anchor


@pytest.mark.parametrize('kind', ['gray', 'bgra', 'bgr16', 'bgra16'])
def test_faces_found_restored_and_pasted(face_cache, tmp_path, astronaut_bgr, kind):
    import shutil

    from facexlib.detection.retinaface import RetinaFace

    cache = tmp_path / 'cache'
    shutil.copytree(face_cache, cache)
    det = RetinaFace(network_name='mobile0.25', device='cpu')
    make_eager_detector(det, level=1)  # faces of 64-128 px: the picture keeps a background around them
    torch.save(det.state_dict(), face_cache_dir(cache) / DETECTOR_WEIGHTS[DET].filename)
    torch.manual_seed(0)
    up = Upsampler(SRVGGNetCompact(3, 3, num_feat=8, num_conv=1, upscale=2), 2)
    faces = FaceEnhancer(
        up,
        cache_dir=cache,
        gfpgan_kwargs=SMALL_GFPGAN,
        det_model=DET,
        use_parse=False,  # a random parsing net masks nothing; the plain blended square mask is used
        allow_download=False,
        only_center_face=True,
    )
    img = np.ascontiguousarray(astronaut_bgr[::2, ::2])
    if kind == 'gray':
        img = img[:, :, 1].copy()
    elif kind.startswith('bgra'):
        img = np.dstack([img, np.linspace(0, 255, img.size // 3).reshape(img.shape[:2]).astype(np.uint8)])
    if kind.endswith('16'):
        img = img.astype(np.uint16) * 257 + np.arange(img.size).reshape(img.shape).astype(np.uint16) % 200
    out = faces.enhance(img)
    assert len(faces.helper.restored_faces) == 1
    assert out.shape == (512, 512) + img.shape[2:] and out.dtype == img.dtype
    background = up.enhance(img, outscale=2)
    peak = 65535 if kind.endswith('16') else 255
    assert np.abs(out.astype(int) - background).max() > 20 * peak // 255  # a restored face was pasted in
    if img.ndim == 3 and img.shape[2] == 4:
        assert np.array_equal(out[:, :, 3], background[:, :, 3])
    # Outside the face mask the background is kept bit for bit, at its own precision.
    same = (out == background) if out.ndim == 2 else (out == background).all(axis=2)
    assert same.mean() > 0.1
    if peak == 65535:
        assert (out[same] % 257 != 0).mean() > 0.5  # not 8-bit levels


def test_missing_weights_offline_is_a_clear_error(tmp_path):
    up = Upsampler(SRVGGNetCompact(3, 3, num_feat=8, num_conv=1, upscale=2), 2)
    with pytest.raises(FaceWeightsMissingError, match='GFPGANv1.3.pth.*downloads disabled.*GFPGAN/releases'):
        FaceEnhancer(up, cache_dir=tmp_path, allow_download=False)
