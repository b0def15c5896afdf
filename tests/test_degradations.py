"""Degradation ops against the math (and BasicSR's numpy reference code), and the pipeline's options."""

from __future__ import annotations

import math

import realesrgan_plugin.core.degradations.synthesis as synthesis_module
from realesrgan_plugin.core.degradations import (
    KERNEL_TYPES,
    KernelSettings,
    RealESRGANSynthesis,
    USMSharp,
    add_noise,
    count_levels,
    filter2d,
    gaussian_kernels,
    gaussian_noise,
    jpeg_compress,
    plateau_kernels,
    poisson_noise,
    random_blur_kernels,
    random_final_sinc_kernels,
    random_kernels,
    resize,
    settings_from_options,
    sinc_kernels,
)
from realesrgan_plugin.core.degradations.filters import kernel_radii
from realesrgan_plugin.core.degradations.noise import to_gray
from realesrgan_plugin.core.img_io import read_image, write_image

import cv2
import numpy as np
import pytest
import torch
from basicsr.data import degradations as reference
from basicsr.utils import img_process_util as reference_usm
from basicsr.utils.diffjpeg import DiffJPEG as ReferenceDiffJPEG


@pytest.fixture(scope='module')
def photo(astronaut_bgr) -> torch.Tensor:
    """1 x 3 x 96 x 96 RGB float crop of a real photo."""
    rgb = astronaut_bgr[60:156, 200:296, ::-1].astype(np.float32) / 255
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).unsqueeze(0)


def _t(*values):
    return torch.tensor(values, dtype=torch.float32)


def _moments(kernel: torch.Tensor):
    k = kernel.shape[-1]
    ax = torch.arange(k, dtype=torch.float64) - k // 2
    y, x = torch.meshgrid(ax, ax, indexing='ij')
    w = kernel.double()
    return (w * x * x).sum().item(), (w * y * y).sum().item(), (w * x * y).sum().item()


# ------------------------------------------------------------------------------------- kernels
def test_isotropic_gaussian_has_the_requested_variance_and_sums_to_one():
    kernel = gaussian_kernels(_t(1.5), _t(1.5), _t(0.0), 21)[0]
    assert kernel.sum().item() == pytest.approx(1.0, abs=1e-6)
    vx, vy, cxy = _moments(kernel)
    assert vx == pytest.approx(1.5**2, rel=1e-3) and vy == pytest.approx(1.5**2, rel=1e-3)
    assert cxy == pytest.approx(0.0, abs=1e-6)


def test_anisotropic_gaussian_covariance_is_rotated_diagonal():
    sx, sy, theta = 2.0, 1.0, math.pi / 6
    kernel = gaussian_kernels(_t(sx), _t(sy), _t(theta), 21)[0]
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    cov = rot @ np.diag([sx**2, sy**2]) @ rot.T
    vx, vy, cxy = _moments(kernel)
    assert np.allclose([vx, vy, cxy], [cov[0, 0], cov[1, 1], cov[0, 1]], rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize(('sx', 'sy', 'theta', 'beta'), [(1.2, 2.5, 0.7, 0.6), (2.0, 0.8, -2.0, 3.0)])
def test_kernels_match_basicsr_reference_formulas(sx, sy, theta, beta):
    args = (_t(sx), _t(sy), _t(theta))
    ours = gaussian_kernels(*args, 21)[0].numpy()
    assert np.allclose(ours, reference.bivariate_Gaussian(21, sx, sy, theta, isotropic=False), atol=1e-7)
    ours = gaussian_kernels(*args, 21, beta=_t(beta))[0].numpy()
    ref = reference.bivariate_generalized_Gaussian(21, sx, sy, theta, beta, isotropic=False)
    assert np.allclose(ours, ref, atol=1e-7)
    ours = plateau_kernels(*args, _t(beta), 21)[0].numpy()
    assert np.allclose(ours, reference.bivariate_plateau(21, sx, sy, theta, beta, isotropic=False), atol=1e-7)


@pytest.mark.parametrize(('cutoff', 'size'), [(math.pi / 3, 9), (2.0, 21), (math.pi, 13)])
def test_sinc_matches_circular_lowpass_reference_and_is_zero_outside_its_size(cutoff, size):
    ours = sinc_kernels(_t(cutoff), torch.tensor([size]), 21)[0].numpy()
    ref = reference.circular_lowpass_kernel(cutoff, size, pad_to=21)
    assert np.allclose(ours, ref, atol=1e-6)
    assert ours.sum() == pytest.approx(1.0, abs=1e-5)
    pad = (21 - size) // 2
    if pad:
        assert np.all(ours[:pad] == 0) and np.all(ours[:, -pad:] == 0)


@pytest.mark.parametrize('kind', KERNEL_TYPES)
def test_each_kernel_type_alone(kind):
    settings = KernelSettings(kernel_list=[kind], kernel_prob=[1.0], sinc_prob=0.0)
    kernels = random_blur_kernels(64, settings, generator=torch.Generator().manual_seed(0))
    assert kernels.shape == (64, 21, 21)
    assert torch.allclose(kernels.sum(dim=(1, 2)), torch.ones(64), atol=1e-5)
    assert (kernels >= 0).all()  # Gaussian-family and plateau kernels are non-negative
    radii = kernel_radii(kernels)
    assert (radii <= 10).all() and (radii > 0).any()  # sizes up to 21 (tails may underflow to 0)
    if not kind.endswith('aniso'):
        assert torch.allclose(kernels, kernels.transpose(1, 2), atol=1e-6)
        assert torch.allclose(kernels, kernels.flip(1), atol=1e-6)
    else:
        assert not torch.allclose(kernels, kernels.transpose(1, 2), atol=1e-4)


def test_sinc_prob_one_gives_sinc_kernels_and_zero_gives_none():
    g = torch.Generator().manual_seed(1)
    sinc = random_blur_kernels(32, KernelSettings(sinc_prob=1.0), generator=g)
    gauss = random_blur_kernels(32, KernelSettings(sinc_prob=0.0), generator=g)
    assert (sinc.amin(dim=(1, 2)) < 0).float().mean() > 0.9  # sinc kernels ring below zero
    assert (gauss >= 0).all()


def test_final_sinc_prob_zero_is_a_pulse_and_one_is_a_sinc():
    pulses = random_final_sinc_kernels(16, 0.0, generator=torch.Generator().manual_seed(0))
    assert (pulses[:, 10, 10] == 1).all() and pulses.sum().item() == 16
    sincs = random_final_sinc_kernels(16, 1.0, generator=torch.Generator().manual_seed(0))
    assert (sincs[:, 10, 10] < 1).all()
    assert torch.allclose(sincs.sum(dim=(1, 2)), torch.ones(16), atol=1e-5)


def test_kernel_settings_reject_bad_values():
    with pytest.raises(ValueError, match='unknown kernel type'):
        KernelSettings(kernel_list=['iso', 'bogus'], kernel_prob=[0.5, 0.5])
    with pytest.raises(ValueError, match='differ in length'):
        KernelSettings(kernel_list=['iso'], kernel_prob=[0.5, 0.5])


# ------------------------------------------------------------------------------------- filters
def test_filter2d_matches_cv2_reflect101_per_sample(photo):
    kernels = random_blur_kernels(3, KernelSettings(), generator=torch.Generator().manual_seed(3))
    batch = torch.cat([photo, photo.flip(-1), photo.flip(-2)])
    out = filter2d(batch, kernels)
    for i in range(3):
        img = batch[i].permute(1, 2, 0).numpy()
        ref = cv2.filter2D(img, -1, kernels[i].numpy(), borderType=cv2.BORDER_REFLECT_101)
        assert np.allclose(out[i].permute(1, 2, 0).numpy(), ref, atol=1e-5)
    # a non-contiguous input (the official filter2D's .view fails on this) works the same
    transposed = filter2d(batch.transpose(2, 3), kernels.transpose(1, 2)).transpose(2, 3)
    assert torch.allclose(transposed, out, atol=1e-5)


@pytest.mark.parametrize('size', [(5, 7), (2, 9), (1, 4)])
def test_filter2d_on_images_smaller_than_the_kernel_matches_cv2(size):
    """Deep second-order downscales of small crops leave images under a 21x21 kernel."""
    img = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(0))
    kernel = random_blur_kernels(1, KernelSettings(), generator=torch.Generator().manual_seed(1))
    out = filter2d(img, kernel)[0].permute(1, 2, 0).numpy()
    border = cv2.BORDER_REPLICATE if min(size) == 1 else cv2.BORDER_REFLECT_101
    ref = cv2.filter2D(img[0].permute(1, 2, 0).numpy(), -1, kernel[0].numpy(), borderType=border)
    assert np.allclose(out, ref.reshape(out.shape), atol=1e-5)


def test_filter2d_tolerance_trims_tails_but_stays_within_it(photo):
    kernels = gaussian_kernels(_t(0.5, 1.0), _t(0.5, 1.0), _t(0.0, 0.0), 21)
    exact, trimmed = kernel_radii(kernels), kernel_radii(kernels, 1e-6)
    assert exact.tolist()[1] == 10 and (trimmed < exact).all() and trimmed.tolist()[0] <= 3
    batch = photo.expand(2, -1, -1, -1)
    assert (filter2d(batch, kernels, 1e-6) - filter2d(batch, kernels)).abs().max() < 1e-5


def test_usm_matches_basicsr_reference(photo):
    ours = USMSharp()(photo)[0].permute(1, 2, 0).numpy()
    ref = reference_usm.usm_sharp(photo[0].permute(1, 2, 0).numpy())
    assert np.allclose(ours, ref, atol=1e-4)
    assert USMSharp().kernel.shape == (1, 51, 51)
    half = USMSharp()(photo.to(torch.bfloat16))
    assert half.dtype == torch.bfloat16


@pytest.mark.parametrize('mode', ['area', 'bilinear', 'bicubic'])
def test_resize_modes_and_sizes(photo, mode):
    assert resize(photo, mode, scale=0.5).shape[-2:] == (48, 48)
    assert resize(photo, mode, size=(30, 70)).shape[-2:] == (30, 70)
    assert resize(photo, mode, scale=1) is photo
    with pytest.raises(ValueError, match='resize mode'):
        resize(photo, 'nearest', scale=2)


# ------------------------------------------------------------------------------------- noise
def test_gaussian_noise_has_the_requested_sigma_and_gray_noise_is_shared():
    flat = torch.full((2, 3, 128, 128), 0.5)
    g = torch.Generator().manual_seed(0)
    noise = gaussian_noise(flat, torch.tensor([10.0, 20.0]), torch.tensor([False, True]), g)
    assert noise[0].std().item() == pytest.approx(10 / 255, rel=0.03)
    assert noise[1].std().item() == pytest.approx(20 / 255, rel=0.03)
    assert not torch.equal(noise[0, 0], noise[0, 1])
    assert torch.equal(noise[1, 0], noise[1, 2])


def test_poisson_noise_variance_follows_intensity_over_levels():
    img = torch.rand(1, 3, 256, 256)  # ~256 distinct levels -> v = 256
    assert count_levels(img).item() == 256
    img = torch.clamp((img * 255).round(), 0, 255) / 255
    noise = poisson_noise(img.expand(8, -1, -1, -1), 1.0, False, torch.Generator().manual_seed(0))
    assert noise.mean().abs().item() < 1e-3
    # Var[Poisson(v*x)/v] = x / v
    assert noise.var().item() == pytest.approx(img.mean().item() / 256, rel=0.05)
    half_scaled = poisson_noise(img, 0.5, True, torch.Generator().manual_seed(0))
    assert torch.equal(half_scaled[0, 0], half_scaled[0, 1])


def test_add_noise_picks_the_noise_type_per_sample_and_clips():
    img = torch.full((2, 3, 64, 64), 0.99)
    out = add_noise(img, torch.tensor([True, False]), _t(30, 30), _t(0, 0), torch.tensor([False, False]))
    assert out.max() <= 1 and out.min() >= 0
    assert (out[0] != img[0]).any()
    assert torch.equal(out[1], img[1])  # Poisson with scale 0 adds nothing


# ------------------------------------------------------------------------------------- JPEG
def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(1 / ((a - b) ** 2).mean().item())


def _blockiness(img: torch.Tensor) -> float:
    """Mean jump across 8-pixel block borders relative to the mean jump inside blocks."""
    d = (img[..., :, 1:] - img[..., :, :-1]).abs().mean(dim=(0, 1, 2))
    border = d[7::8].mean()
    inside = torch.cat([d[i::8] for i in range(7)]).mean()
    return (border / inside).item()


def test_jpeg_quality_100_is_near_lossless_and_10_is_blocky(photo):
    hi = jpeg_compress(photo, 100)
    lo = jpeg_compress(photo, 10)
    # near-lossless luma at 100 (RGB is bounded by the 4:2:0 chroma subsampling)
    assert _psnr(to_gray(hi), to_gray(photo)) > 50 and _psnr(hi, photo) > 38
    assert _psnr(lo, photo) < 30
    assert _blockiness(lo) > 1.3 > _blockiness(hi)


def test_jpeg_matches_official_diffjpeg_and_is_per_sample(photo):
    batch = torch.cat([photo, photo.flip(-1)])
    quality = torch.tensor([30.0, 80.0])
    ours = jpeg_compress(batch, quality)
    ref = ReferenceDiffJPEG(differentiable=False)(batch, quality=quality.clone())
    assert (ours - ref).abs().mean() < 1e-4
    assert torch.allclose(ours[1:], jpeg_compress(batch[1:], 80.0), atol=1e-6)


def test_jpeg_is_close_to_a_real_codec(photo):
    bgr = np.ascontiguousarray((photo[0].permute(1, 2, 0).numpy()[:, :, ::-1] * 255).round().astype(np.uint8))
    ok, buf = cv2.imencode('.jpg', bgr, [cv2.IMWRITE_JPEG_QUALITY, 50])
    real = torch.from_numpy(cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1].astype(np.float32) / 255)
    ours = jpeg_compress(photo, 50)[0].permute(1, 2, 0)
    assert abs(_psnr(ours, photo[0].permute(1, 2, 0)) - _psnr(real, photo[0].permute(1, 2, 0))) < 1.5


def test_jpeg_gradients_flow_when_differentiable(photo):
    x = photo[..., :40, :44].clone().requires_grad_(True)  # not a multiple of 16
    out = jpeg_compress(x, torch.tensor([60.0]), differentiable=True)
    assert out.shape == x.shape
    out.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_jpeg_rejects_bad_quality_and_keeps_dtype(photo):
    with pytest.raises(ValueError, match='quality'):
        jpeg_compress(photo, 0)
    assert jpeg_compress(photo.half(), 50).dtype == torch.float16


# ------------------------------------------------------------------------------------- pipeline
OFFICIAL_DEFAULTS = {
    'resize_prob': (0.2, 0.7, 0.1),
    'resize_range': (0.15, 1.5),
    'noise_range': (1, 30),
    'poisson_scale_range': (0.05, 3),
    'gray_noise_prob': 0.4,
    'jpeg_range': (30, 95),
    'second_blur_prob': 0.8,
    'resize_prob2': (0.3, 0.4, 0.3),
    'resize_range2': (0.3, 1.2),
    'noise_range2': (1, 25),
    'poisson_scale_range2': (0.05, 2.5),
    'final_sinc_prob': 0.8,
    'gt_size': 256,
    'scale': 4,
}


def test_from_options_defaults_are_the_official_x4plus_values():
    s = settings_from_options({})
    for key, value in OFFICIAL_DEFAULTS.items():
        assert tuple(getattr(s, key)) == value if isinstance(value, tuple) else getattr(s, key) == value
    assert tuple(s.kernel1.blur_sigma) == (0.2, 3.0) and tuple(s.kernel2.blur_sigma) == (0.2, 1.5)
    assert tuple(s.kernel1.kernel_prob) == (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)


def test_from_options_reads_top_level_and_dataset_keys():
    opt = {
        'scale': 2,
        'noise_range2': [2, 3],
        'datasets': {'train': {'gt_size': 128, 'blur_sigma2': [0.1, 0.5], 'sinc_prob': 0.3, 'final_sinc_prob': 0.1}},
    }
    s = settings_from_options(opt)
    assert (s.scale, s.gt_size, list(s.noise_range2)) == (2, 128, [2, 3])
    assert list(s.kernel2.blur_sigma) == [0.1, 0.5] and s.kernel1.sinc_prob == 0.3 and s.final_sinc_prob == 0.1


def _source(batch=2, size=160):
    """Smooth RGB gradients (row, column, constant) so crops and LQ positions can be checked."""
    ax = torch.linspace(0, 1, size)
    rows = ax.view(-1, 1).expand(size, size)
    cols = ax.view(1, -1).expand(size, size)
    img = torch.stack([rows, cols, torch.full_like(rows, 0.5)])
    return img.unsqueeze(0).repeat(batch, 1, 1, 1)


QUIET = {  # degradations that keep the image recognisable: no noise, mild blur, high JPEG quality
    'noise_range': [0, 0],
    'poisson_scale_range': [0, 0],
    'noise_range2': [0, 0],
    'poisson_scale_range2': [0, 0],
    'jpeg_range': [95, 95],
    'jpeg_range2': [95, 95],
    'resize_range': [0.5, 1.5],
    'resize_range2': [0.8, 1.2],
}


@pytest.mark.parametrize(('scale', 'margin'), [(4, None), (2, None), (4, 16)])
def test_lq_shape_range_levels_and_alignment_with_the_gt_crop(scale, margin):
    gt_size = 64
    synth = RealESRGANSynthesis.from_options({**QUIET, 'scale': scale, 'gt_size': gt_size, 'degrade_margin': margin})
    src = _source(4)
    lq, (gt,) = synth(src, src, generator=torch.Generator().manual_seed(0))
    assert lq.shape == (4, 3, gt_size // scale, gt_size // scale) and gt.shape == (4, 3, gt_size, gt_size)
    assert lq.min() >= 0 and lq.max() <= 1
    assert torch.equal(lq, (lq * 255).round() / 255)  # 8-bit levels
    # GT crops are pieces of the source, and the LQ shows the same spot as its GT crop
    assert not torch.equal(gt[0], gt[1]) or not torch.equal(gt[1], gt[2])  # per-sample crop positions
    lq_pos = lq[:, :2].mean(dim=(2, 3))
    gt_pos = gt[:, :2].mean(dim=(2, 3))
    assert (lq_pos - gt_pos).abs().max() < 0.03


def test_seeded_generator_gives_identical_pairs_and_another_seed_differs():
    synth = RealESRGANSynthesis.from_options({'gt_size': 64})
    src = torch.rand(3, 3, 96, 96)
    a = synth(src, src, generator=torch.Generator().manual_seed(5))
    b = synth(src, src, generator=torch.Generator().manual_seed(5))
    c = synth(src, src, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1][0], b[1][0])
    assert not torch.equal(a[0], c[0])


def test_half_precision_source_gives_half_lq():
    synth = RealESRGANSynthesis.from_options({'gt_size': 64})
    src = torch.rand(2, 3, 80, 80)
    lq, _ = synth(src.to(torch.bfloat16), generator=torch.Generator().manual_seed(0))
    assert lq.dtype == torch.bfloat16 and lq.shape == (2, 3, 16, 16)


def test_bad_inputs_are_named():
    synth = RealESRGANSynthesis.from_options({'gt_size': 64})
    with pytest.raises(ValueError, match='smaller than gt_size'):
        synth(torch.rand(1, 3, 32, 32))
    with pytest.raises(ValueError, match='does not match source'):
        synth(torch.rand(1, 3, 80, 80), torch.rand(1, 3, 64, 64))
    with pytest.raises(KeyError, match='sinc_kernel'):
        synth(torch.rand(1, 3, 80, 80), kernels={'kernel1': torch.ones(1, 1, 1), 'kernel2': torch.ones(1, 1, 1)})
    with pytest.raises(ValueError, match='multiple of scale'):
        RealESRGANSynthesis.from_options({'gt_size': 66})


class _Recorder:
    """Wraps a real op of the pipeline module and records its arguments (the op still runs)."""

    def __init__(self, monkeypatch, name):
        self.calls = []
        real = getattr(synthesis_module, name)

        def record(*args, **kwargs):
            self.calls.append((args, kwargs))
            return real(*args, **kwargs)

        monkeypatch.setattr(synthesis_module, name, record)


def _run(opt, monkeypatch, batch=6, seed=0):
    rec = {n: _Recorder(monkeypatch, n) for n in ('filter2d', 'resize', 'add_noise', 'jpeg_compress')}
    synth = RealESRGANSynthesis.from_options({'gt_size': 32, **opt})
    synth(torch.rand(batch, 3, 48, 48), generator=torch.Generator().manual_seed(seed))
    return rec


@pytest.mark.parametrize('prob', [0.0, 1.0])
def test_second_blur_prob(prob, monkeypatch):
    rec = _run({'second_blur_prob': prob}, monkeypatch)
    filtered = sum(args[0].shape[0] for args, _ in rec['filter2d'].calls)
    assert filtered == 6 + 6 * prob + 6  # first blur, second blur, final sinc: 6 samples each


@pytest.mark.parametrize(
    ('probs', 'check'), [([1, 0, 0], lambda s: s >= 1), ([0, 1, 0], lambda s: s <= 1), ([0, 0, 1], lambda s: s == 1)]
)
def test_first_resize_direction(probs, check, monkeypatch):
    rec = _run({'resize_prob': probs}, monkeypatch)
    scales = [kw['scale'] for args, kw in rec['resize'].calls if kw.get('scale') is not None for _ in args[0]]
    assert len(scales) == 6 and all(check(s) for s in scales)


@pytest.mark.parametrize(('probs', 'check'), [([1, 0, 0], lambda a, b: a >= b), ([0, 1, 0], lambda a, b: a <= b)])
def test_second_resize_direction(probs, check, monkeypatch):
    rec = _run({'resize_prob2': probs, 'resize_range2': [0.5, 2.0]}, monkeypatch)
    sizes = [kw['size'] for _, kw in rec['resize'].calls if kw.get('size') is not None]
    second = [s for s in sizes if s != (48 // 4, 48 // 4)]  # the rest resize back to the LQ size
    assert second and all(check(s[0], 48 // 4) for s in second)


@pytest.mark.parametrize('prob', [0.0, 1.0])
def test_noise_type_and_gray_probabilities(prob, monkeypatch):
    opt = {'gaussian_noise_prob': prob, 'gaussian_noise_prob2': prob, 'gray_noise_prob': prob, 'gray_noise_prob2': prob}
    rec = _run(opt, monkeypatch)
    assert sum(args[0].shape[0] for args, _ in rec['add_noise'].calls) == 12  # 6 samples, 2 stages
    for args, _ in rec['add_noise'].calls:
        _, use_gaussian, _, _, gray = args[:5]  # decided on the host: Python bools per group
        assert use_gaussian is bool(prob) and gray is bool(prob)


def test_jpeg_quality_ranges_per_stage(monkeypatch):
    rec = _run({'jpeg_range': [40, 40], 'jpeg_range2': [70, 70]}, monkeypatch)
    qualities = [args[1] for args, _ in rec['jpeg_compress'].calls for _ in args[0]]
    assert sorted(qualities) == [40.0] * 6 + [70.0] * 6


def test_per_sample_off_shares_one_draw(monkeypatch):
    rec = _run({'per_sample': False}, monkeypatch)
    assert len(rec['add_noise'].calls) == 2  # one group: the whole batch at once
    assert rec['add_noise'].calls[0][0][0].shape[0] == 6


def test_final_sinc_prob_branches_through_the_pipeline():
    s = settings_from_options({'datasets': {'train': {'final_sinc_prob': 0.0}}})
    assert (random_kernels(8, s)['sinc_kernel'][:, 10, 10] == 1).all()
    s = settings_from_options({'datasets': {'train': {'final_sinc_prob': 1.0}}})
    assert (random_kernels(8, s)['sinc_kernel'][:, 10, 10] < 1).all()


def test_kernels_from_a_dataset_are_used(monkeypatch):
    rec = _Recorder(monkeypatch, 'filter2d')
    synth = RealESRGANSynthesis.from_options({'gt_size': 32, 'second_blur_prob': 1.0})
    given = random_kernels(2, synth.settings, generator=torch.Generator().manual_seed(9))
    synth(torch.rand(2, 3, 48, 48), kernels=given, generator=torch.Generator().manual_seed(0))
    assert torch.equal(rec.calls[0][0][1], given['kernel1'])
    assert torch.equal(rec.calls[1][0][1], given['kernel2'][:1])


def test_debug_dump_writes_png_pairs(tmp_path):
    synth = RealESRGANSynthesis.from_options({'gt_size': 32, 'debug_dump_dir': str(tmp_path), 'debug_dump_max': 3})
    src = torch.rand(2, 3, 48, 48)
    synth(src, src)
    synth(src, src)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [f'{i:06d}_{kind}.png' for i in range(3) for kind in ('gt', 'lq')]
    assert read_image(tmp_path / '000000_lq.png').shape == (8, 8, 3)
    assert read_image(tmp_path / '000000_gt.png').shape == (32, 32, 3)


def test_preview_tool_writes_pairs_and_a_contact_sheet(tmp_path, astronaut_bgr):
    from tools.synthesize_pairs import main

    write_image(tmp_path / 'hr' / 'a.png', astronaut_bgr[:128, :128])
    main(['--gt', str(tmp_path / 'hr'), '--out', str(tmp_path / 'out'), '--count', '3', '--gt-size', '64'])
    assert read_image(tmp_path / 'out' / '000002_lq.png').shape == (16, 16, 3)
    sheet = read_image(tmp_path / 'out' / 'contact_sheet.png')
    assert sheet.shape == (64 + 4, 4 * (64 + 4 + 64 + 4), 3)
