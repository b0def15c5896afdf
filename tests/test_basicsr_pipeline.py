"""BasicSR's own ``basicsr.train.train_pipeline`` with the plugin imported: the entry the design names
for other BasicSR projects (``import realesrgan_plugin.basicsr`` + BasicSR's runner, unchanged)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import test_train
import torch
from test_train import _env, demo_options, load_weights, write_options

data_root = test_train.data_root  # the same fixture: HR tiles, validation pairs, a random VGG19

DRIVER = """
import os
import realesrgan_plugin.basicsr  # registers the plugin's archs, datasets and models in BasicSR
from basicsr.train import train_pipeline
train_pipeline(os.getcwd())
"""


def run_basicsr_pipeline(opt_file: Path, root: Path, *extra: str) -> str:
    driver = root / 'basicsr_train.py'
    driver.write_text(DRIVER)
    cmd = [sys.executable, str(driver), '-opt', str(opt_file), *extra]
    proc = subprocess.run(cmd, env=_env(), cwd=root, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc.stdout + proc.stderr


def both_stage_options(data: Path, root: Path, num_gpu: int, iters: int) -> tuple[Path, Path]:
    changes = {'train:total_iter': iters, 'logger:print_freq': 2, 'logger:save_checkpoint_freq': 2, 'val:val_freq': 4}
    net = demo_options('realesrnet', data, 'pipeline_net', num_gpu=num_gpu, **changes)
    gan = demo_options('realesrgan', data, 'pipeline_gan', num_gpu=num_gpu, **changes)
    gan['path']['pretrain_network_g'] = str(root / 'experiments' / 'pipeline_net' / 'models' / f'net_g_{iters}.pth')
    return write_options(net, root), write_options(gan, root)


def test_basicsr_train_pipeline_trains_both_stages_on_cpu(data_root, tmp_path):
    net_file, gan_file = both_stage_options(data_root, tmp_path, num_gpu=0, iters=4)
    run_basicsr_pipeline(net_file, tmp_path)
    log = run_basicsr_pipeline(gan_file, tmp_path)
    assert 'l_g_gan' in log and 'l_d_real' in log
    models = tmp_path / 'experiments' / 'pipeline_gan' / 'models'
    assert set(load_weights(models / 'net_g_4.pth')) == {'params', 'params_ema'}
    assert (models / 'net_d_4.pth').is_file()
    assert (tmp_path / 'experiments' / 'pipeline_gan' / 'training_states' / '4.state').is_file()


@pytest.mark.gpu
def test_basicsr_train_pipeline_on_cuda_resumes_our_states(data_root, tmp_path):
    """Both stages on CUDA through BasicSR's runner, then its own --auto_resume reads our .state
    files (torch 2.14 loads them with weights_only=True) and continues to a longer run."""
    net_file, gan_file = both_stage_options(data_root, tmp_path, num_gpu=1, iters=4)
    run_basicsr_pipeline(net_file, tmp_path)
    run_basicsr_pipeline(gan_file, tmp_path)
    state = tmp_path / 'experiments' / 'pipeline_gan' / 'training_states' / '4.state'
    assert torch.load(state, map_location='cpu', weights_only=True)['iter'] == 4
    longer = demo_options('realesrgan', data_root, 'pipeline_gan', num_gpu=1, **{'train:total_iter': 6})
    longer['path']['pretrain_network_g'] = None
    log = run_basicsr_pipeline(write_options(longer, tmp_path), tmp_path, '--auto_resume')
    assert 'Resuming training from epoch: ' in log and 'iter: 4.' in log
    assert (tmp_path / 'experiments' / 'pipeline_gan' / 'models' / 'net_g_6.pth').is_file()
