"""Code written against the official datasets, models, losses and archs works on the plugin's.

Data is made here: small scikit-image crops on disk, in an LMDB (written with ``lmdb``) and
listed by meta_info files; the option files are the repository's official-layout ones.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import realesrgan_plugin.basicsr  # noqa: F401  (compat + BasicSR registration before basicsr)
from realesrgan_plugin.archs.srvgg_arch import SRVGGNetCompact
from realesrgan_plugin.archs.unet_discriminator_arch import UNetDiscriminatorSN
from realesrgan_plugin.basicsr.data.realesrgan_dataset import RealESRGANDataset
from realesrgan_plugin.basicsr.data.realesrgan_paired_dataset import RealESRGANPairedDataset
from realesrgan_plugin.core.img_io import encode_image, write_image
from realesrgan_plugin.core.meta_info import lmdb_key

import lmdb
import numpy as np
import pytest
import torch
import yaml
from basicsr.data import build_dataset
from basicsr.losses.basic_loss import PerceptualLoss as BasicSRPerceptualLoss
from torch.utils.data import DataLoader

REPO = Path(__file__).resolve().parents[1]
KERNEL_KEYS = ('kernel1', 'kernel2', 'sinc_kernel')


def official_train_options() -> dict:
    return yaml.safe_load((REPO / 'options' / 'train_realesrgan_x4plus.yml').read_text())


@pytest.fixture
def gt_folder(tmp_path, astronaut_bgr) -> Path:
    root = tmp_path / 'gt'
    write_image(root / 'a.png', astronaut_bgr[:96, :80])
    write_image(root / 'sub' / 'b.v2.png', astronaut_bgr[200:260, 100:190])
    (tmp_path / 'meta_info.txt').write_text('a.png\nsub/b.v2.png\n')
    return root


def train_dataset_options(root: Path, meta_info: Path | None, **changes) -> dict:
    """``datasets.train`` of the official x4plus option file, on our folder."""
    opt = official_train_options()['datasets']['train']
    opt.update(dataroot_gt=str(root), meta_info=str(meta_info) if meta_info else None, phase='train', **changes)
    return opt


# ------------------------------------------------------------------------------------ datasets
def test_dataset_official_attributes_and_item(gt_folder, tmp_path):
    opt = train_dataset_options(gt_folder, tmp_path / 'meta_info.txt')
    ds = build_dataset(copy.deepcopy(opt))
    assert type(ds) is RealESRGANDataset
    assert ds.opt['dataroot_gt'] == str(gt_folder) and ds.io_backend_opt == {'type': 'disk'}
    assert ds.gt_folder == str(gt_folder)
    assert ds.paths == [os.path.join(str(gt_folder), 'a.png'), os.path.join(str(gt_folder), 'sub/b.v2.png')]
    for name in ('kernel_list', 'kernel_prob', 'blur_sigma', 'betag_range', 'betap_range', 'sinc_prob'):
        assert getattr(ds, name) == opt[name] and getattr(ds, name + '2') == opt[name + '2'], name
    assert ds.blur_kernel_size == ds.blur_kernel_size2 == 21 and ds.final_sinc_prob == 0.8
    assert ds.kernel_range == [7, 9, 11, 13, 15, 17, 19, 21]
    assert ds.pulse_tensor.shape == (21, 21) and ds.pulse_tensor.sum() == 1 and ds.pulse_tensor[10, 10] == 1
    assert ds.file_client.get(ds.paths[0], 'gt') == (gt_folder / 'a.png').read_bytes()

    item = ds[1]
    assert list(item) == ['gt', 'kernel1', 'kernel2', 'sinc_kernel', 'gt_path']
    assert item['gt'].shape == (3, 400, 400) and item['gt'].dtype == torch.float32  # official crop_pad_size
    for key in KERNEL_KEYS:
        assert item[key].shape == (21, 21) and item[key].dtype == torch.float32, key
        assert item[key].sum().item() == pytest.approx(1.0, abs=1e-4)
    assert item['gt_path'] == ds.paths[1]
    assert set(build_dataset({**opt, 'kernels_on_cpu': False})[0]) == {'gt', 'gt_path'}


def test_dataset_kernel_attributes_are_read_per_item(gt_folder, tmp_path):
    ds = RealESRGANDataset(train_dataset_options(gt_folder, tmp_path / 'meta_info.txt', crop_pad_size=96, gt_size=64))
    ds.kernel_list, ds.kernel_prob, ds.sinc_prob = ['iso'], [1.0], 0.0
    ds.blur_sigma = [3.0, 3.0]
    ds.final_sinc_prob = 0.0
    item = ds[0]
    k = item['kernel1']
    assert torch.allclose(k, k.t(), atol=1e-6) and torch.allclose(k, k.flip(0), atol=1e-6)  # isotropic
    assert torch.equal(item['sinc_kernel'], ds.pulse_tensor)


def test_dataset_lmdb_and_official_errors(tmp_path, astronaut_bgr, gt_folder):
    images = {'a.png': astronaut_bgr[:64, :64], 'sub/b.v2.png': astronaut_bgr[64:128, :64]}
    db = tmp_path / 'gt.lmdb'
    env = lmdb.open(str(db), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for name, img in images.items():
            txn.put(lmdb_key(name).encode(), encode_image(img, '.png'))
    env.close()
    (db / 'meta_info.txt').write_text(''.join(f'{n} (64,64,3) 1\n' for n in images))
    opt = train_dataset_options(db, None, io_backend={'type': 'lmdb'}, crop_pad_size=64, gt_size=64)
    ds = RealESRGANDataset(opt)
    assert ds.paths == ['a', 'sub/b.v2']  # LMDB keys (the official cut 'b.v2' to 'b')
    assert ds.io_backend_opt == {'type': 'lmdb', 'db_paths': [str(db)], 'client_keys': ['gt']}
    item = ds[1]
    assert item['gt_path'] == 'sub/b.v2' and item['gt'].shape == (3, 64, 64)

    not_lmdb = tmp_path / 'gt_db'
    db.rename(not_lmdb)
    with pytest.raises(ValueError, match="'dataroot_gt' should end with '.lmdb'"):
        RealESRGANDataset({**opt, 'dataroot_gt': str(not_lmdb), 'io_backend': {'type': 'lmdb'}})
    with pytest.raises(ValueError, match='should both in lmdb formats'):
        RealESRGANPairedDataset(
            {'dataroot_gt': str(not_lmdb), 'dataroot_lq': str(tmp_path / 'lq.lmdb'), 'io_backend': {'type': 'lmdb'}}
        )
    with pytest.raises(FileNotFoundError):
        RealESRGANDataset(train_dataset_options(gt_folder, tmp_path / 'missing_meta_info.txt'))
    with pytest.raises(KeyError):
        RealESRGANDataset({'io_backend': {'type': 'disk'}})


def test_paired_dataset_official_attributes_and_item(tmp_path, astronaut_bgr):
    gt = astronaut_bgr[:64, :64]
    write_image(tmp_path / 'gt' / 'x.png', gt)
    write_image(tmp_path / 'lq' / 'x.png', gt[::4, ::4])
    (tmp_path / 'pairs.txt').write_text('x.png, x.png\n')
    opt = {
        'name': 'pairs',
        'type': 'RealESRGANPairedDataset',
        'dataroot_gt': str(tmp_path / 'gt'),
        'dataroot_lq': str(tmp_path / 'lq'),
        'meta_info': str(tmp_path / 'pairs.txt'),
        'io_backend': {'type': 'disk'},
        'gt_size': 32,
        'use_hflip': True,
        'use_rot': True,
        'phase': 'train',
        'scale': 4,
    }
    ds = build_dataset(opt)
    assert (ds.gt_folder, ds.lq_folder, ds.filename_tmpl, ds.mean, ds.std) == (
        str(tmp_path / 'gt'),
        str(tmp_path / 'lq'),
        '{}',
        None,
        None,
    )
    assert ds.paths == [{'gt_path': str(tmp_path / 'gt' / 'x.png'), 'lq_path': str(tmp_path / 'lq' / 'x.png')}]
    assert ds.file_client.get(ds.paths[0]['lq_path'], 'lq') == (tmp_path / 'lq' / 'x.png').read_bytes()
    item = ds[0]
    assert set(item) == {'lq', 'gt', 'lq_path', 'gt_path'}
    assert item['gt'].shape == (3, 32, 32) and item['lq'].shape == (3, 8, 8)


# -------------------------------------------------------------------------------------- models
def model_options(stage: str, tmp_path: Path, vgg_file: Path, gt_root: Path) -> dict:
    opt = yaml.safe_load((REPO / 'options' / 'demo' / f'train_{stage}_x4_demo.yml').read_text())
    opt.update(dist=False, rank=0, world_size=1, is_train=True, num_gpu=0, gt_size=32, queue_size=4)
    opt['network_g'].update(num_feat=8, num_conv=2)
    opt['path'] = {
        'pretrain_network_g': None,
        'models': str(tmp_path),
        'training_states': str(tmp_path),
        'visualization': str(tmp_path / 'vis'),
    }
    opt['train']['ema_decay'] = 0.999
    if 'network_d' in opt:
        opt['network_d']['num_feat'] = 4
        opt['train']['perceptual_opt']['vgg_weights_path'] = str(vgg_file)
    opt['datasets']['train'].update(dataroot_gt=str(gt_root), crop_pad_size=48, gt_size=32, phase='train')
    return opt


def official_batch(opt: dict, batch: int = 2) -> dict:
    """A batch from the dataset as the official training loop makes it (kernels included)."""
    dataset = build_dataset(copy.deepcopy(opt['datasets']['train']))
    return next(iter(DataLoader(dataset, batch_size=batch, shuffle=False)))


def test_realesrgan_model_official_attributes_and_feed_data_with_kernels(tmp_path, vgg_file, gt_folder):
    from basicsr.models import build_model

    opt = model_options('realesrgan', tmp_path, vgg_file, gt_folder)
    torch.manual_seed(0)
    model = build_model(opt)
    for name in ('usm_sharpener', 'jpeger', 'net_g_ema', 'cri_pix', 'cri_perceptual', 'cri_gan', 'net_d'):
        assert getattr(model, name) is not None, name
    assert model.queue_size == 4
    assert isinstance(model.cri_perceptual, BasicSRPerceptualLoss)
    jpeg = model.jpeger(torch.rand(2, 3, 16, 16), quality=torch.tensor([50.0, 90.0]))
    assert jpeg.shape == (2, 3, 16, 16)

    data = official_batch(opt)
    assert data['kernel1'].shape == (2, 21, 21)
    model.feed_data(data)
    assert model.lq.shape == (2, 3, 8, 8) and model.gt.shape == model.gt_usm.shape == (2, 3, 32, 32)
    model.optimize_parameters(1)
    assert np.isfinite(list(model.get_current_log().values())).all()

    # The kernels the dataset sent are the ones used: same generator state, other kernels -> other LQ.
    state = model.synthesis_generator.get_state()
    model.opt['second_blur_prob'] = 1.0
    model.opt['queue_size'] = 4
    pulse = torch.zeros(2, 21, 21)
    pulse[:, 10, 10] = 1
    lqs = []
    for kernels in ({k: data[k] for k in KERNEL_KEYS}, dict.fromkeys(KERNEL_KEYS, pulse)):
        model.synthesis_generator.set_state(state)
        model.pair_pool.size = 0  # look at the synthesis alone
        model.feed_data({'gt': data['gt'], **kernels, 'gt_path': data['gt_path']})
        lqs.append(model.lq.clone())
    assert not torch.equal(lqs[0], lqs[1])


def test_degradation_options_are_reread_on_each_feed_data(tmp_path, vgg_file, gt_folder):
    from basicsr.models import build_model

    opt = model_options('realesrnet', tmp_path, vgg_file, gt_folder)
    model = build_model(opt)
    data = official_batch(opt)
    model.feed_data(data)
    assert model.pair_maker.synthesis.settings.second_blur_prob == opt['second_blur_prob']
    model.opt['second_blur_prob'] = 0.0
    model.opt['jpeg_range2'] = [95, 95]
    model.opt['gt_usm'] = False
    model.feed_data(data)
    settings = model.pair_maker.synthesis.settings
    assert settings.second_blur_prob == 0.0 and tuple(settings.jpeg_range2) == (95, 95)
    assert model.pair_maker.sharpen_gt is False


def test_dequeue_and_enqueue_as_the_official(tmp_path, vgg_file, gt_folder):
    from basicsr.models import build_model

    opt = model_options('realesrnet', tmp_path, vgg_file, gt_folder)
    model = build_model(opt)
    torch.manual_seed(0)
    batches = [(torch.full((2, 3, 8, 8), float(i)), torch.full((2, 3, 32, 32), float(i))) for i in range(3)]
    for lq, gt in batches[:2]:  # filling the pool of 4: batches pass through
        model.lq, model.gt = lq, gt
        model._dequeue_and_enqueue()
        assert torch.equal(model.lq, lq)
    model.lq, model.gt = batches[2]
    model._dequeue_and_enqueue()
    assert set(model.lq[:, 0, 0, 0].tolist()) <= {0.0, 1.0}  # stored pairs came out
    assert torch.equal(model.lq[:, 0, 0, 0], model.gt[:, 0, 0, 0])  # still pairs
    assert 'pair_pool' in model.rank_training_state()  # saved for an exact resume


def test_nondist_validation_with_basicsr_paired_image_dataset(tmp_path, vgg_file, gt_folder, astronaut_bgr):
    from basicsr.models import build_model

    for i in range(2):
        img = astronaut_bgr[i * 64 : i * 64 + 32, :32]
        write_image(tmp_path / 'val' / 'gt' / f'{i}.png', img)
        write_image(tmp_path / 'val' / 'lq' / f'{i}.png', img[::4, ::4])
    opt = model_options('realesrgan', tmp_path, vgg_file, gt_folder)
    opt['val'] = {'save_img': True, 'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 4}}}
    val_opt = {
        'name': 'val',
        'type': 'PairedImageDataset',
        'dataroot_gt': str(tmp_path / 'val' / 'gt'),
        'dataroot_lq': str(tmp_path / 'val' / 'lq'),
        'io_backend': {'type': 'disk'},
        'phase': 'val',
        'scale': 4,
    }
    model = build_model(opt)
    loader = DataLoader(build_dataset(val_opt), batch_size=1)
    model.nondist_validation(loader, 1, None, True)
    assert model.is_train and 0 < model.metric_results['psnr'] < 100
    assert (tmp_path / 'vis' / '0' / '0_1.png').is_file()
    model.validation(loader, 2, None, False)
    assert model.is_train


# ---------------------------------------------------------------------------------------- archs
def test_archs_keep_the_official_constructors_and_outputs():
    net = SRVGGNetCompact(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=2, act_type='prelu')
    assert (net.num_in_ch, net.num_out_ch, net.num_feat, net.num_conv, net.upscale, net.act_type) == (
        3,
        3,
        8,
        2,
        2,
        'prelu',
    )
    assert net(torch.rand(1, 3, 8, 10)).shape == (1, 3, 16, 20)
    assert isinstance(net.upsampler, torch.nn.PixelShuffle)
    disc = UNetDiscriminatorSN(3, num_feat=4, skip_connection=True)
    assert disc.skip_connection and disc(torch.rand(1, 3, 32, 32)).shape == (1, 1, 32, 32)
