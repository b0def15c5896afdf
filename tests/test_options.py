"""Option files: the official Real-ESRGAN files' structure runs unchanged, ours carry the paper's numbers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import realesrgan_plugin.basicsr  # noqa: F401  (compat + BasicSR registration before basicsr)
from realesrgan_plugin.core.img_io import write_image

import numpy as np
import pytest
import torch
import yaml
from conftest import write_random_vgg19

REPO = Path(__file__).resolve().parents[1]

# The structure of xinntao/Real-ESRGAN options/train_realesrgan_x4plus.yml, every key and value as
# published, except: data/weights paths (<DATA>), network width/depth, gt_size, batch, iterations.
OFFICIAL_X4PLUS = """\
name: train_RealESRGANx4plus_400k_B12G4_fromRealESRNet
model_type: RealESRGANModel
scale: 4
num_gpu: 4
manual_seed: 0
l1_gt_usm: True
percep_gt_usm: True
gan_gt_usm: False
resize_prob: [0.2, 0.7, 0.1]
resize_range: [0.15, 1.5]
gaussian_noise_prob: 0.5
noise_range: [1, 30]
poisson_scale_range: [0.05, 3]
gray_noise_prob: 0.4
jpeg_range: [30, 95]
second_blur_prob: 0.8
resize_prob2: [0.3, 0.4, 0.3]
resize_range2: [0.3, 1.2]
gaussian_noise_prob2: 0.5
noise_range2: [1, 25]
poisson_scale_range2: [0.05, 2.5]
gray_noise_prob2: 0.4
jpeg_range2: [30, 95]
gt_size: 32
queue_size: 180
datasets:
  train:
    name: DF2K+OST
    type: RealESRGANDataset
    dataroot_gt: <DATA>/DF2K
    meta_info: <DATA>/DF2K/meta_info/meta_info_DF2Kmultiscale+OST_sub.txt
    io_backend:
      type: disk
    blur_kernel_size: 21
    kernel_list: ['iso', 'aniso', 'generalized_iso', 'generalized_aniso', 'plateau_iso', 'plateau_aniso']
    kernel_prob: [0.45, 0.25, 0.12, 0.03, 0.12, 0.03]
    sinc_prob: 0.1
    blur_sigma: [0.2, 3]
    betag_range: [0.5, 4]
    betap_range: [1, 2]
    blur_kernel_size2: 21
    kernel_list2: ['iso', 'aniso', 'generalized_iso', 'generalized_aniso', 'plateau_iso', 'plateau_aniso']
    kernel_prob2: [0.45, 0.25, 0.12, 0.03, 0.12, 0.03]
    sinc_prob2: 0.1
    blur_sigma2: [0.2, 1.5]
    betag_range2: [0.5, 4]
    betap_range2: [1, 2]
    final_sinc_prob: 0.8
    gt_size: 32
    use_hflip: True
    use_rot: False
    use_shuffle: true
    num_worker_per_gpu: 0
    batch_size_per_gpu: 2
    dataset_enlarge_ratio: 1
    prefetch_mode: ~
network_g:
  type: RRDBNet
  num_in_ch: 3
  num_out_ch: 3
  num_feat: 8
  num_block: 1
  num_grow_ch: 4
network_d:
  type: UNetDiscriminatorSN
  num_in_ch: 3
  num_feat: 4
  skip_connection: True
path:
  pretrain_network_g: <DATA>/RealESRNet_x4plus.pth
  param_key_g: params_ema
  strict_load_g: true
  resume_state: ~
train:
  ema_decay: 0.999
  optim_g:
    type: Adam
    lr: !!float 1e-4
    weight_decay: 0
    betas: [0.9, 0.99]
  optim_d:
    type: Adam
    lr: !!float 1e-4
    weight_decay: 0
    betas: [0.9, 0.99]
  scheduler:
    type: MultiStepLR
    milestones: [400000]
    gamma: 0.5
  total_iter: 2
  warmup_iter: -1
  pixel_opt:
    type: L1Loss
    loss_weight: 1.0
    reduction: mean
  perceptual_opt:
    type: PerceptualLoss
    layer_weights:
      'conv1_2': 0.1
      'conv2_2': 0.1
      'conv3_4': 1
      'conv4_4': 1
      'conv5_4': 1
    vgg_type: vgg19
    use_input_norm: true
    perceptual_weight: !!float 1.0
    style_weight: 0
    range_norm: false
    criterion: l1
  gan_opt:
    type: GANLoss
    gan_type: vanilla
    real_label_val: 1.0
    fake_label_val: 0.0
    loss_weight: !!float 1e-1
  net_d_iters: 1
  net_d_init_iters: 0
logger:
  print_freq: 1
  save_checkpoint_freq: !!float 5e3
  use_tb_logger: true
  wandb:
    project: ~
    resume_id: ~
dist_params:
  backend: nccl
  port: 29500
"""


def official_pairdata(text: str) -> str:
    """options/finetune_realesrgan_x4plus_pairdata.yml: paired data, no high-order degradation."""
    head, rest = text.split('resize_prob:', 1)
    rest = rest[rest.index('datasets:') :]
    train_start, train_end = rest.index('    name: DF2K+OST'), rest.index('network_g:')
    paired = """\
    name: DIV2K
    type: RealESRGANPairedDataset
    dataroot_gt: <DATA>/DF2K
    dataroot_lq: <DATA>/DF2K
    meta_info: <DATA>/DF2K/meta_info/meta_info_DIV2K_sub_pair.txt
    io_backend:
      type: disk
    gt_size: 32
    use_hflip: True
    use_rot: False
    use_shuffle: true
    num_worker_per_gpu: 0
    batch_size_per_gpu: 2
    dataset_enlarge_ratio: 1
    prefetch_mode: ~
"""
    text = head + 'high_order_degradation: False\n' + rest[:train_start] + paired + rest[train_end:]
    text = text.replace('name: train_RealESRGANx4plus_400k_B12G4_fromRealESRNet', 'name: finetune_pairdata')
    return text.replace(
        '  resume_state: ~\n',
        '  pretrain_network_d: <DATA>/RealESRGAN_x4plus_netD.pth\n  param_key_d: params\n  strict_load_d: true\n'
        '  resume_state: ~\n',
    )


@pytest.fixture(scope='module')
def official_data(tmp_path_factory) -> Path:
    """DF2K-like folder (HR images, LR x4 pairs, both meta_info files) and tiny pretrained weights."""
    from basicsr.archs.rrdbnet_arch import RRDBNet
    from skimage import data

    root = tmp_path_factory.mktemp('official')
    df2k = root / 'DF2K'
    names = []
    for name in ('astronaut', 'coffee'):
        bgr = np.ascontiguousarray(getattr(data, name)()[:128, :128, ::-1])
        write_image(df2k / 'DF2K_HR_sub' / f'{name}.png', bgr)
        write_image(df2k / 'DIV2K_train_LR_bicubic_X4_sub' / f'{name}.png', bgr[::4, ::4])
        names.append(name)
    meta = df2k / 'meta_info'
    meta.mkdir()
    (meta / 'meta_info_DF2Kmultiscale+OST_sub.txt').write_text(''.join(f'DF2K_HR_sub/{n}.png\n' for n in names))
    (meta / 'meta_info_DIV2K_sub_pair.txt').write_text(
        ''.join(f'DF2K_HR_sub/{n}.png, DIV2K_train_LR_bicubic_X4_sub/{n}.png\n' for n in names)
    )
    torch.manual_seed(0)
    net = RRDBNet(3, 3, num_feat=8, num_block=1, num_grow_ch=4)
    torch.save({'params_ema': net.state_dict()}, root / 'RealESRNet_x4plus.pth')
    from realesrgan_plugin.archs.unet_discriminator_arch import UNetDiscriminatorSN

    torch.save({'params': UNetDiscriminatorSN(3, num_feat=4).state_dict()}, root / 'RealESRGAN_x4plus_netD.pth')
    write_random_vgg19(root / 'vgg19.pth', seed=None)
    return root


def run_official(text: str, data: Path, tmp_path: Path) -> str:
    opt_file = tmp_path / 'official.yml'
    opt_file.write_text(text.replace('<DATA>', str(data)))
    env = dict(
        os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS='1', REALESRGAN_PLUGIN_VGG_WEIGHTS=str(data / 'vgg19.pth')
    )
    cmd = [sys.executable, '-m', 'realesrgan_plugin.train', '-opt', str(opt_file)]
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    return log


@pytest.mark.parametrize('variant', ['train_realesrgan_x4plus', 'finetune_realesrgan_x4plus_pairdata'])
def test_official_option_file_structure_runs_unchanged(variant, official_data, tmp_path):
    """num_gpu: 4 and dist_params nccl on a CPU machine, RealESRGANDataset with crop 400 and the
    official kernel keys, paired data with high_order_degradation: False (no KeyError 'kernel1')."""
    text = OFFICIAL_X4PLUS if variant == 'train_realesrgan_x4plus' else official_pairdata(OFFICIAL_X4PLUS)
    log = run_official(text, official_data, tmp_path)
    assert 'l_g_gan' in log and 'l_d_fake' in log
    name = yaml.safe_load(text)['name']
    assert (tmp_path / 'experiments' / name / 'models' / 'net_g_latest.pth').is_file()
    assert 'Loading RRDBNet model from' in log


def _load(name: str) -> dict:
    return yaml.safe_load((REPO / 'options' / name).read_text())


PERCEPTUAL_LAYERS = {'conv1_2': 0.1, 'conv2_2': 0.1, 'conv3_4': 1, 'conv4_4': 1, 'conv5_4': 1}


@pytest.mark.parametrize('scale', [2, 4])
def test_shipped_options_carry_the_paper_hyper_parameters(scale):
    net, gan = _load(f'train_realesrnet_x{scale}plus.yml'), _load(f'train_realesrgan_x{scale}plus.yml')
    assert net['model_type'] == 'RealESRNetModel' and gan['model_type'] == 'RealESRGANModel'
    assert net['train']['total_iter'] == 1_000_000 and net['train']['optim_g']['lr'] == 2e-4
    assert (
        gan['train']['total_iter'] == 400_000 and gan['train']['optim_g']['lr'] == gan['train']['optim_d']['lr'] == 1e-4
    )
    for opt in (net, gan):
        assert opt['scale'] == scale and opt['gt_size'] == 256 and opt['queue_size'] == 180
        assert opt['datasets']['train']['batch_size_per_gpu'] == 12
        assert opt['train']['ema_decay'] == 0.999
    assert gan['train']['perceptual_opt']['layer_weights'] == PERCEPTUAL_LAYERS
    assert gan['train']['gan_opt']['gan_type'] == 'vanilla' and gan['train']['gan_opt']['loss_weight'] == 0.1
    pair = _load('finetune_realesrgan_x4plus_pairdata.yml')
    assert pair['high_order_degradation'] is False and pair['datasets']['train']['type'] == 'RealESRGANPairedDataset'
