"""Real-ESRNet / Real-ESRGAN models and their building blocks, in-process on CPU."""

from __future__ import annotations

import copy
import random
from pathlib import Path

import realesrgan_plugin.basicsr  # noqa: F401  (compat + BasicSR registration before basicsr)
from realesrgan_plugin.basicsr.data.seeded_sampler import SeededDataset, SeededSampler
from realesrgan_plugin.core.atomic import atomic_torch_save, remove_stale_temp_files
from realesrgan_plugin.core.checkpoint import capture_rng_state, restore_rng_state, training_states_newest_first
from realesrgan_plugin.core.training_steps import ema_update
from realesrgan_plugin.losses import PerceptualLoss, VGGWeightsMissingError

import numpy as np
import pytest
import torch
import torchvision
import yaml
from torch.utils.data import DataLoader, Dataset

REPO = Path(__file__).resolve().parents[1]


def test_missing_vgg_weights_offline_names_the_expected_file(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    monkeypatch.setenv('REALESRGAN_PLUGIN_OFFLINE', '1')
    monkeypatch.delenv('REALESRGAN_PLUGIN_VGG_WEIGHTS', raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(VGGWeightsMissingError) as err:
        PerceptualLoss({'conv5_4': 1.0})
    assert str(tmp_path / 'torch' / 'hub' / 'checkpoints' / 'vgg19-dcbb9e9d.pth') in str(err.value)
    with pytest.raises(VGGWeightsMissingError, match='nope.pth'):
        PerceptualLoss({'conv5_4': 1.0}, vgg_weights_path=str(tmp_path / 'nope.pth'))


def test_vgg_weights_from_the_torch_hub_cache_match_torchvision(vgg_file, tmp_path, monkeypatch):
    cache = tmp_path / 'torch' / 'hub' / 'checkpoints'
    cache.mkdir(parents=True)
    (cache / vgg_file.name).symlink_to(vgg_file)
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    monkeypatch.setenv('REALESRGAN_PLUGIN_OFFLINE', '1')
    loss = PerceptualLoss({'conv1_2': 0.1, 'conv5_4': 1.0})
    assert not any(p.requires_grad for p in loss.parameters())
    reference = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs['E'])
    reference.load_state_dict({k[9:]: v for k, v in torch.load(vgg_file).items()})
    x = torch.rand(1, 3, 32, 32)
    normed = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(
        1, 3, 1, 1
    )
    with torch.no_grad():
        feats = loss.vgg(x)
        expected = reference[:3](normed)  # conv1_1, relu1_1, conv1_2
    assert torch.equal(feats['conv1_2'], expected)
    percep, style = loss(x, torch.rand(1, 3, 32, 32))
    assert percep.item() > 0 and style is None


def test_ema_update_is_bit_identical_to_the_official_formula():
    torch.manual_seed(0)
    net, ema = torch.nn.Conv2d(3, 4, 3), torch.nn.Conv2d(3, 4, 3)
    reference = copy.deepcopy(ema)
    ema_update(ema, net, 0.999)
    for p_ref, p in zip(reference.parameters(), net.parameters()):
        p_ref.data.mul_(0.999).add_(p.data, alpha=1 - 0.999)
    for a, b in zip(reference.parameters(), ema.parameters()):
        assert torch.equal(a, b)


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    target = tmp_path / 'net_g_5.pth'
    atomic_torch_save({'params': {'w': torch.ones(3)}}, target)

    def broken_save(obj, f, *args, **kwargs):
        f.write(b'half a checkpoint')
        raise OSError('disk full')

    monkeypatch.setattr(torch, 'save', broken_save)
    with pytest.raises(OSError, match='disk full'):
        atomic_torch_save({'params': {'w': torch.zeros(3)}}, target)
    monkeypatch.undo()
    assert torch.equal(torch.load(target)['params']['w'], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ['net_g_5.pth']


def test_latest_training_state_ignores_partial_writes(tmp_path):
    for name in ('5.state', '10.state', '.15.state.abc.tmp', '20.state.tmp', 'ranks'):
        (tmp_path / name).touch()
    assert [p.name for p in training_states_newest_first(tmp_path)] == ['10.state', '5.state']
    assert training_states_newest_first(tmp_path / 'missing') == []
    assert [p.name for p in remove_stale_temp_files(tmp_path)] == ['.15.state.abc.tmp']
    assert sorted(p.name for p in tmp_path.iterdir()) == ['10.state', '20.state.tmp', '5.state', 'ranks']


def test_rng_state_round_trips_through_a_safe_checkpoint(tmp_path):
    from realesrgan_plugin.core.checkpoint import safe_torch_load

    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    atomic_torch_save(capture_rng_state(), tmp_path / 'rng.pth')
    expected = (random.random(), np.random.rand(), torch.rand(1))
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    restore_rng_state(safe_torch_load(tmp_path / 'rng.pth'))
    assert (random.random(), np.random.rand(), torch.rand(1)) == expected


class RandomDraws(Dataset):
    """Each item draws from python, numpy and torch global RNGs, as augmentation code does."""

    def __len__(self) -> int:
        return 12

    def __getitem__(self, index: int):
        return torch.tensor([index, random.random(), np.random.rand(), torch.rand(()).item()], dtype=torch.float64)


def _batches(num_workers: int, skip: int = 0) -> list[torch.Tensor]:
    dataset = RandomDraws()
    sampler = SeededSampler(dataset, num_replicas=1, rank=0, seed=7)
    sampler.set_epoch(3)
    sampler.skip(skip)
    loader = DataLoader(SeededDataset(dataset), batch_size=4, sampler=sampler, num_workers=num_workers)
    return list(loader)


def test_seeded_samples_do_not_depend_on_workers_or_on_where_the_epoch_resumed():
    serial = _batches(0)
    assert len(serial) == 3
    for a, b in zip(serial, _batches(2)):
        assert torch.equal(a, b)
    for a, b in zip(serial[1:], _batches(0, skip=4)):
        assert torch.equal(a, b)
    state = torch.get_rng_state()
    SeededDataset(RandomDraws())[(0, 123)]
    assert torch.equal(state, torch.get_rng_state())  # loading a sample leaves the caller's RNG alone


def _model_options(stage: str, tmp_path: Path, vgg_file: Path, **train_changes) -> dict:
    opt = yaml.safe_load((REPO / 'options' / 'demo' / f'train_{stage}_x4_demo.yml').read_text())
    opt.update(dist=False, rank=0, world_size=1, is_train=True, num_gpu=0, gt_size=32, queue_size=4)
    opt['network_g'].update(num_feat=8, num_conv=2)
    opt['path'] = {'pretrain_network_g': None, 'models': str(tmp_path), 'training_states': str(tmp_path)}
    if 'network_d' in opt:
        opt['network_d']['num_feat'] = 4
        opt['train']['perceptual_opt']['vgg_weights_path'] = str(vgg_file)
    opt['train'].update(train_changes)
    return opt


def _train_steps(opt: dict, steps: int = 2):
    from basicsr.models import build_model

    torch.manual_seed(0)
    model = build_model(opt)
    before = [p.detach().clone() for p in model.net_g.parameters()]
    for it in range(1, steps + 1):
        model.feed_data({'gt': torch.rand(2, 3, 96, 96), 'gt_path': ['a', 'b']})
        model.optimize_parameters(it)
    changed = any(not torch.equal(a, b) for a, b in zip(before, model.net_g.parameters()))
    return model, changed


@pytest.mark.parametrize('amp', [None, 'bf16', 'fp16'])
def test_realesrgan_step_on_cpu_with_amp_and_channels_last(amp, tmp_path, vgg_file):
    opt = _model_options('realesrgan', tmp_path, vgg_file, amp=amp, channels_last=amp == 'bf16')
    model, changed = _train_steps(opt, steps=1)
    log = model.get_current_log()
    assert set(log) == {'l_g_pix', 'l_g_percep', 'l_g_gan', 'l_d_real', 'out_d_real', 'l_d_fake', 'out_d_fake'}
    assert all(np.isfinite(v) for v in log.values()) and changed
    assert model.lq.shape == (2, 3, 8, 8) and model.gt.shape == model.gt_usm.shape == (2, 3, 32, 32)


def test_net_d_init_iters_trains_only_the_discriminator_first(tmp_path, vgg_file):
    opt = _model_options('realesrgan', tmp_path, vgg_file, net_d_init_iters=5)
    model, changed = _train_steps(opt)
    assert not changed and 'l_g_gan' not in model.get_current_log() and 'l_d_real' in model.get_current_log()


def test_paired_training_without_lq_is_a_clear_error(tmp_path, vgg_file):
    from basicsr.models import build_model

    opt = _model_options('realesrnet', tmp_path, vgg_file)
    opt['high_order_degradation'] = False
    model = build_model(opt)
    model.feed_data({'lq': torch.rand(2, 3, 8, 8), 'gt': torch.rand(2, 3, 32, 32)})
    model.optimize_parameters(1)
    assert set(model.get_current_log()) == {'l_pix'}
    with pytest.raises(KeyError, match='high_order_degradation: true'):
        model.feed_data({'gt': torch.rand(2, 3, 32, 32)})
