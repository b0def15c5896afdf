"""The CUDA path: collected everywhere, run where CUDA is (``bench/gpu_check.py`` runs them all).

Each test keeps its data tiny; the training ones go through the real entries in subprocesses.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from realesrgan_plugin.archs.srvgg_arch import SRVGGNetCompact
from realesrgan_plugin.core.degradations import RealESRGANSynthesis, random_kernels, synthesis_generators
from realesrgan_plugin.inference import Upsampler

import numpy as np
import pytest
import test_train
import torch
from conftest import free_port
from test_basicsr_pipeline import DRIVER as BASICSR_PIPELINE_DRIVER
from test_mmengine import CONFIGS, tiny_options
from test_train import _env, demo_options, load_weights, run_train, write_options
from test_video import make_clip

data_root = test_train.data_root  # the training tests' fixture: HR tiles, validation pairs, a random VGG19
REPO = Path(__file__).resolve().parents[1]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    peak = 65535.0 if a.dtype == np.uint16 else 255.0
    return float('inf') if mse == 0 else 10 * np.log10(peak**2 / mse)


def x4_net() -> SRVGGNetCompact:
    torch.manual_seed(0)
    return SRVGGNetCompact(num_in_ch=3, num_out_ch=3, num_feat=16, num_conv=4, upscale=4, act_type='prelu').eval()


# ----------------------------------------------------------------------------- synthesis


@pytest.mark.gpu
def test_synthesis_on_cuda_matches_the_cpu_with_the_same_kernels(astronaut_bgr):
    """Same HR, same kernels, deterministic settings (no noise/JPEG randomness left to the device):
    the CUDA pipeline gives the CPU's LQ to within float rounding and 8-bit quantisation."""
    opt = {
        'scale': 4, 'gt_size': 64, 'resize_prob': [0, 0, 1], 'resize_prob2': [0, 0, 1], 'gaussian_noise_prob': 1,
        'noise_range': [0, 0], 'gaussian_noise_prob2': 1, 'noise_range2': [0, 0], 'gray_noise_prob': 0,
        'gray_noise_prob2': 0, 'jpeg_range': [95, 95], 'jpeg_range2': [95, 95], 'second_blur_prob': 1,
    }  # fmt: skip
    synth = RealESRGANSynthesis.from_options(opt)
    hr = torch.from_numpy(astronaut_bgr[:64, :64, ::-1].copy()).permute(2, 0, 1)[None].float().div(255)
    hr = hr.repeat(2, 1, 1, 1)
    kernels = random_kernels(2, synth.settings, torch.device('cpu'), torch.Generator().manual_seed(1))
    lq_cpu, _ = synth(hr, kernels=kernels, generator=torch.Generator().manual_seed(2))
    lq_gpu, _ = synth(
        hr.cuda(), kernels=kernels, generator=torch.Generator('cuda'), host_generator=torch.Generator().manual_seed(2)
    )  # the same host generator: the same choices on both devices
    assert (lq_gpu.cpu() - lq_cpu).abs().max() <= 2 / 255


@pytest.mark.gpu
def test_synthesis_on_cuda_is_reproducible_from_its_two_generators():
    """Noise on the device generator, choices on the host one: the same seeds give the same pairs."""
    synth = RealESRGANSynthesis.from_options({'gt_size': 64})
    hr = torch.rand(4, 3, 96, 96, generator=torch.Generator().manual_seed(0)).cuda()
    runs = []
    for _ in range(2):
        device_gen, host_gen = synthesis_generators('cuda', 7)
        assert device_gen.device.type == 'cuda' and host_gen.device.type == 'cpu'
        runs.append(synth(hr, generator=device_gen, host_generator=host_gen)[0])
    assert torch.equal(runs[0], runs[1])


# ----------------------------------------------------------------------------- inference


@pytest.mark.gpu
@pytest.mark.parametrize('dtype', ['fp16', 'bf16'])
@pytest.mark.parametrize('tile', [0, 32])
def test_upsampler_half_precision_on_cuda_against_fp32(astronaut_bgr, dtype, tile):
    img = np.ascontiguousarray(astronaut_bgr[100:164, 200:264])
    net = x4_net()
    ref = Upsampler(net, 4, device='cuda', tile=tile).enhance(img)
    out = Upsampler(net, 4, device='cuda', dtype=dtype, tile=tile).enhance(img)
    assert out.shape == ref.shape == (256, 256, 3)
    assert psnr(out, ref) >= (45 if dtype == 'fp16' else 38)


@pytest.mark.gpu
def test_video_on_cuda(tmp_path):
    from realesrgan_plugin.inference.video import upscale_video

    clip = make_clip(tmp_path / 'in.mp4')
    up = Upsampler(x4_net(), 4, device='cuda', dtype='fp16')
    summary = upscale_video(clip, tmp_path / 'out.mp4', up, progress=False)
    assert summary['frames'] > 0 and (tmp_path / 'out.mp4').is_file()


# ----------------------------------------------------------------------------- training (BasicSR host)


@pytest.mark.gpu
@pytest.mark.parametrize('amp', ['bf16', 'fp16'])
@pytest.mark.parametrize('stage', ['realesrnet', 'realesrgan'])
def test_both_stages_train_on_cuda_with_amp_and_channels_last(data_root, tmp_path, stage, amp):
    changes = {'train:total_iter': 4, 'logger:print_freq': 2, 'logger:save_checkpoint_freq': 4, 'val:val_freq': 4}
    opt = demo_options(stage, data_root, f'{stage}_{amp}', num_gpu=1, **changes)
    opt['train']['amp'] = amp
    opt['channels_last'] = True
    log = run_train(write_options(opt, tmp_path), tmp_path)
    assert re.search(r'# psnr: [0-9.]+', log)
    weights = load_weights(tmp_path / 'experiments' / f'{stage}_{amp}' / 'models' / 'net_g_4.pth')
    assert all(torch.isfinite(t).all() for t in weights['params'].values())


@pytest.mark.gpu
def test_exact_resume_on_cuda_with_deterministic(data_root, tmp_path):
    """A run stopped after its iteration-4 checkpoint and resumed ends bit-identical to a straight run."""
    changes = {'train:total_iter': 8, 'logger:print_freq': 4, 'logger:save_checkpoint_freq': 4, 'val:val_freq': 8}
    full = demo_options('realesrgan', data_root, 'full', num_gpu=1, deterministic=True, **changes)
    full['datasets']['train']['num_worker_per_gpu'] = 1
    run_train(write_options(full, tmp_path), tmp_path)
    half = dict(full, name='half', train=dict(full['train'], total_iter=4))
    run_train(write_options(half, tmp_path), tmp_path)
    resumed = dict(full, name='half')
    log = run_train(write_options(resumed, tmp_path), tmp_path, '--auto_resume')
    assert 'Resuming training from epoch' in log
    test_train.assert_same_weights(
        tmp_path / 'experiments' / 'full' / 'models' / 'net_g_latest.pth',
        tmp_path / 'experiments' / 'half' / 'models' / 'net_g_latest.pth',
    )


def _torchrun(*args: str) -> list[str]:
    return [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=1', f'--master_port={free_port()}', *args]


@pytest.mark.gpu
def test_torchrun_nccl_through_validation_and_a_checkpoint_basicsr_host(data_root, tmp_path):
    changes = {'train:total_iter': 4, 'logger:print_freq': 2, 'logger:save_checkpoint_freq': 4, 'val:val_freq': 2}
    opt = demo_options('realesrnet', data_root, 'nccl', num_gpu=1, **changes)
    cmd = _torchrun('-m', 'realesrgan_plugin.train', '-opt', str(write_options(opt, tmp_path)))
    cmd += ['--root_path', str(tmp_path), '--launcher', 'pytorch']
    proc = subprocess.run(cmd, env=_env(), cwd=tmp_path, capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    assert re.search(r'# psnr: [0-9.]+', log)
    assert (tmp_path / 'experiments' / 'nccl' / 'training_states' / '4.state').is_file()


@pytest.mark.gpu
def test_torchrun_nccl_through_basicsr_train_pipeline(data_root, tmp_path):
    changes = {'train:total_iter': 4, 'logger:print_freq': 2, 'logger:save_checkpoint_freq': 4, 'val:val_freq': 2}
    opt = demo_options('realesrnet', data_root, 'nccl_pipeline', num_gpu=1, **changes)
    driver = tmp_path / 'driver.py'
    driver.write_text(BASICSR_PIPELINE_DRIVER)
    cmd = _torchrun(str(driver), '-opt', str(write_options(opt, tmp_path)), '--launcher', 'pytorch')
    proc = subprocess.run(cmd, env=_env(), cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    assert (tmp_path / 'experiments' / 'nccl_pipeline' / 'models' / 'net_g_4.pth').is_file()


@pytest.mark.gpu
def test_torchrun_nccl_through_validation_and_a_checkpoint_mmengine_host(data_root, tmp_path):
    work_dir = tmp_path / 'work'
    options = [*tiny_options(data_root, 2, 'nccl_mm'), 'model.perceptual_loss=None', 'model.init_generator=None']
    options.append('model_wrapper_cfg=None')  # the runner's default wrapper, as a user's config would get it
    cmd = _torchrun('-m', 'realesrgan_plugin.mmengine.train', str(CONFIGS / 'realesrgan_x4_demo.py'))
    cmd += ['--launcher', 'pytorch', '--work-dir', str(work_dir), '--cfg-options', *options]
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': str(REPO)}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    assert (work_dir / 'iter_2.pth').is_file()


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks what a CPU-only machine gets')
def test_gpu_check_without_cuda_says_so_and_counts_the_gpu_tests():
    proc = subprocess.run(
        [sys.executable, str(REPO / 'bench' / 'gpu_check.py')], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    assert report['cuda'] is False and 'no CUDA device' in report['message']
    assert report['gpu_tests_that_would_run'] >= 15
