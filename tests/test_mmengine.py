"""MMEngine host: real Runner training of both stages (checkpoint, exact resume, validation PSNR),
2-process gloo DDP, weights across hosts (BasicSR <-> MMEngine, mmagic), safe checkpoint loading."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
from collections import OrderedDict
from pathlib import Path

import realesrgan_plugin.basicsr  # noqa: F401  (compat + BasicSR registration before basicsr)
from realesrgan_plugin.core.atomic import atomic_torch_save
from realesrgan_plugin.core.img_io import write_image
from realesrgan_plugin.mmengine.checkpoint import (
    _history_buffer_statistic,
    convert,
    detect_layout,
    load_checkpoint_file,
    mmengine_safe_globals,
    normalize_checkpoint,
    to_basicsr,
)
from realesrgan_plugin.mmengine.registry import DATASETS, MODELS
from realesrgan_plugin.mmengine.runner import RealESRGANRunner
from realesrgan_plugin.mmengine.train import main as train_main

import cv2
import numpy as np
import pytest
import torch
import yaml
from basicsr.models import build_model
from basicsr.utils.registry import ARCH_REGISTRY
from conftest import free_port
from mmengine.config import Config
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmengine.registry import DefaultScope

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / 'options' / 'mmengine'
SRVGG = dict(type='SRVGGNetCompact', num_in_ch=3, num_out_ch=3, num_feat=16, num_conv=4, upscale=4)


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    """Tiny networks run several times faster on one thread than on two contended ones."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope='module')
def data_root(tmp_path_factory, astronaut_bgr) -> Path:
    """Four 64x64 HR tiles for synthesis, three real 32/8 LQ/GT validation pairs."""
    root = tmp_path_factory.mktemp('mm_data')
    for i in range(2):
        for j in range(2):
            write_image(root / 'gt' / f'tile{i}{j}.png', astronaut_bgr[i * 200 : i * 200 + 64, j * 200 : j * 200 + 64])
    for k in range(3):
        gt = np.ascontiguousarray(astronaut_bgr[100 + 40 * k : 132 + 40 * k, 150:182])
        write_image(root / 'val' / 'gt' / f'v{k}.png', gt)
        write_image(root / 'val' / 'lq' / f'v{k}.png', cv2.resize(gt, (8, 8), interpolation=cv2.INTER_AREA))
    return root


def tiny_options(data_root: Path, max_iters: int, name: str) -> list[str]:
    """--cfg-options making the demo configs tiny: 32px crops, batch 2, checkpoint+val every 2 iterations."""
    return [
        f'experiment_name={name}',
        f'train_dataloader.dataset.dataroot_gt={data_root}/gt',
        'train_dataloader.dataset.crop_pad_size=64',
        'train_dataloader.dataset.gt_size=32',
        'train_dataloader.batch_size=2',
        f'val_dataloader.dataset.dataroot_gt={data_root}/val/gt',
        f'val_dataloader.dataset.dataroot_lq={data_root}/val/lq',
        'model.data_preprocessor.degradations.gt_size=32',
        'model.data_preprocessor.queue_size=4',
        f'train_cfg.max_iters={max_iters}',
        'train_cfg.val_interval=2',
        'default_hooks.checkpoint.interval=2',
        'default_hooks.logger.interval=1',
    ]


def train(config: Path | str, work_dir: Path, options: list[str], *flags: str) -> None:
    assert train_main([str(config), '--work-dir', str(work_dir), *flags, '--cfg-options', *options]) == 0


def logged_psnr(work_dir: Path) -> list[float]:
    """PSNR values the Runner logged (its LocalVisBackend scalars.json files)."""
    values = []
    for path in sorted(work_dir.glob('*/vis_data/scalars.json')):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if 'PSNR' in record:
                values.append(record['PSNR'])
    return values


def generator_weights(ckpt_path: Path, prefix: str = 'generator.') -> OrderedDict:
    return OrderedDict((k, v) for k, v in load_checkpoint_file(ckpt_path)['state_dict'].items() if k.startswith(prefix))


def build_model_from_config(config: Path, **model_overrides):
    cfg = Config.fromfile(str(config))
    cfg.model.update(model_overrides)
    with DefaultScope.overwrite_default_scope('realesrgan_plugin'):
        return MODELS.build(cfg.model)


@pytest.fixture(scope='module')
def esrnet_run(tmp_path_factory, data_root) -> Path:
    """Stage 1 under the Runner: 4 iterations, checkpoints at 2 and 4, validation at 2 and 4."""
    work_dir = tmp_path_factory.mktemp('esrnet')
    train(CONFIGS / 'realesrnet_x4_demo.py', work_dir, tiny_options(data_root, 4, 'esrnet_a'))
    return work_dir


# ----------------------------------------------------------------------------- registries


def test_scope_holds_the_basicsr_classes_and_falls_back_to_mmengine():
    with DefaultScope.overwrite_default_scope('realesrgan_plugin'):
        for name in ('RRDBNet', 'SRVGGNetCompact', 'UNetDiscriminatorSN'):
            assert MODELS.get(name) is ARCH_REGISTRY.get(name)  # the same class, not a copy
        assert MODELS.get('RealESRGANModel').__name__ == 'RealESRGANModel'
        assert MODELS.get('RealESRGANDataPreprocessor') is not None
        assert DATASETS.get('RealESRGANDataset') is not None
        from mmengine.optim import OptimWrapper
        from mmengine.registry import OPTIM_WRAPPERS

        assert OPTIM_WRAPPERS.get('OptimWrapper') is OptimWrapper


def test_default_scope_alone_finds_the_plugin(tmp_path):
    """A config with only default_scope='realesrgan_plugin' works without importing the plugin first."""
    code = textwrap.dedent(
        f"""
        from mmengine.registry import MODELS, DefaultScope
        DefaultScope.get_instance('t', scope_name='realesrgan_plugin')
        model = MODELS.build(dict(type='RealESRNetModel', generator={SRVGG!r}))
        print(type(model).__module__, type(model.generator).__name__)
        """
    )
    env = {**os.environ, 'PYTHONPATH': str(REPO)}
    out = subprocess.run(
        [sys.executable, '-c', code], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert 'realesrgan_plugin.mmengine.realesrnet_model SRVGGNetCompact' in out.stdout


# ----------------------------------------------------------------------------- configs


@pytest.mark.parametrize('stage', ['realesrnet', 'realesrgan'])
def test_x4plus_configs_equal_the_basicsr_option_files(stage):
    """Degradations, kernels, networks, losses, optimisers and schedule match options/train_<stage>_x4plus.yml."""
    from realesrgan_plugin.core.degradations import settings_from_options

    yml = yaml.safe_load((REPO / 'options' / f'train_{stage}_x4plus.yml').read_text())
    cfg = Config.fromfile(str(CONFIGS / f'{stage}_x4plus.py'))
    pre = cfg.model.data_preprocessor
    ours = settings_from_options({**pre.degradations, 'datasets': {'train': pre.kernels}})
    assert ours == settings_from_options(yml)
    assert pre.queue_size == yml['queue_size'] and cfg.model.ema_decay == yml['train']['ema_decay']
    assert {**cfg.model.generator, 'type': 'RRDBNet'} == {**yml['network_g'], 'type': 'RRDBNet'}
    assert cfg.model.init_generator.path.endswith(os.path.basename(yml['path']['pretrain_network_g']))
    assert cfg.model.pixel_loss == yml['train']['pixel_opt']
    (scheduler,) = cfg.param_scheduler
    assert scheduler.milestones == yml['train']['scheduler']['milestones']
    assert scheduler.gamma == yml['train']['scheduler']['gamma']
    assert cfg.train_cfg.max_iters == yml['train']['total_iter']
    assert cfg.train_dataloader.batch_size == yml['datasets']['train']['batch_size_per_gpu']
    if stage == 'realesrnet':
        assert pre.gt_usm == yml['gt_usm']
        optimizers = {'optim_g': cfg.optim_wrapper.optimizer}
    else:
        assert cfg.model.discriminator == yml['network_d']
        assert cfg.model.gan_loss == yml['train']['gan_opt']
        assert cfg.model.perceptual_loss == yml['train']['perceptual_opt']
        for key in ('l1_gt_usm', 'percep_gt_usm', 'gan_gt_usm', 'net_d_iters', 'net_d_init_iters'):
            assert cfg.model[key] == yml.get(key, yml['train'].get(key)), key
        optimizers = {'optim_g': cfg.optim_wrapper.generator.optimizer}
        optimizers['optim_d'] = cfg.optim_wrapper.discriminator.optimizer
    for key, optimizer in optimizers.items():
        assert {**optimizer, 'betas': list(optimizer.betas)} == yml['train'][key], key


# ----------------------------------------------------------------------------- stage 1


def test_realesrnet_trains_checkpoints_and_validates(esrnet_run):
    assert (esrnet_run / 'iter_2.pth').is_file() and (esrnet_run / 'iter_4.pth').is_file()
    psnr = logged_psnr(esrnet_run)
    assert len(psnr) == 2 and all(10 < p < 60 for p in psnr), psnr
    ckpt = load_checkpoint_file(esrnet_run / 'iter_4.pth')
    keys = set(ckpt['state_dict'])
    assert any(k.startswith('generator.') for k in keys) and any(k.startswith('generator_ema.') for k in keys)
    assert not any(k.startswith(('perceptual', 'data_preprocessor')) for k in keys)  # no loss/VGG weights
    assert 'synthesis_state' in ckpt and ckpt['synthesis_state']['pool']['filled'] > 0


def test_checkpoints_need_safe_globals_and_resume_is_exact(esrnet_run, tmp_path, data_root):
    """MMEngine's own load fails under torch's safe default; ours loads. Resuming from iter_2 (RNG,
    pool, optimiser, scheduler restored) ends at the same weights as the uninterrupted run."""
    with pytest.raises(pickle.UnpicklingError, match='HistoryBuffer'):
        torch.load(esrnet_run / 'iter_2.pth')
    with mmengine_safe_globals():
        assert torch.load(esrnet_run / 'iter_2.pth')['message_hub']['runtime_info']['iter'] == 1

    resumed = tmp_path / 'resumed'
    resumed.mkdir()
    (resumed / 'iter_2.pth').write_bytes((esrnet_run / 'iter_2.pth').read_bytes())
    (resumed / 'last_checkpoint').write_text(str(resumed / 'iter_2.pth'))
    train(CONFIGS / 'realesrnet_x4_demo.py', resumed, tiny_options(data_root, 4, 'esrnet_b'), '--resume')
    straight, again = load_checkpoint_file(esrnet_run / 'iter_4.pth'), load_checkpoint_file(resumed / 'iter_4.pth')
    for key, value in straight['state_dict'].items():
        assert torch.equal(value, again['state_dict'][key]), key
    assert again['message_hub']['runtime_info']['iter'] == 3


# ----------------------------------------------------------------------------- stage 2


def write_test_vgg(path: Path) -> Path:
    """Random-valued VGG19 conv1_1..conv2_2 (the perceptual loss only needs these for the test layers)."""
    from torchvision.models import vgg19

    features = vgg19(weights=None).features[:9]
    atomic_torch_save({f'features.{k}': v for k, v in features.state_dict().items()}, path)
    return path


def test_realesrgan_trains_from_stage1_with_checkpoint_resume_and_psnr(esrnet_run, tmp_path, data_root):
    vgg = write_test_vgg(tmp_path / 'vgg19_head.pth')
    config = tmp_path / 'gan.py'
    config.write_text(
        textwrap.dedent(
            f"""
            _base_ = ['{CONFIGS / 'realesrgan_x4_demo.py'}']
            model = dict(
                init_generator=dict(path='{esrnet_run / 'iter_4.pth'}', key='params_ema'),
                perceptual_loss=dict(
                    layer_weights=dict(_delete_=True, conv1_2=0.1, conv2_2=0.1), vgg_weights_path='{vgg}'
                ),
            )
            """
        )
    )
    work_dir = tmp_path / 'work'
    train(config, work_dir, tiny_options(data_root, 2, 'esrgan_a'))
    ckpt = load_checkpoint_file(work_dir / 'iter_2.pth')
    assert {'generator', 'discriminator'} <= set(ckpt['optimizer'])
    assert any(k.startswith('discriminator.conv9') for k in ckpt['state_dict'])
    assert len(logged_psnr(work_dir)) == 1

    train(config, work_dir, tiny_options(data_root, 3, 'esrgan_b'), '--resume')
    resumed = load_checkpoint_file(work_dir / 'iter_3.pth')
    assert resumed['message_hub']['runtime_info']['iter'] == 2
    scalars = (sorted(work_dir.glob('*/vis_data/scalars.json'))[-1]).read_text()
    for key in ('l_g_pix', 'l_g_percep', 'l_g_gan', 'l_d_real', 'l_d_fake'):
        assert key in scalars


# ----------------------------------------------------------------------------- distributed

DIST_DRIVER = """
import sys, json, os
import torch, torch.distributed as dist
from realesrgan_plugin.mmengine.train import build_config, build_runner, parse_args
from realesrgan_plugin.core.dist import shutdown_distributed
runner = build_runner(build_config(parse_args(sys.argv[1:])))
runner.train()
model = runner.model.module
sums = torch.stack([torch.cat([p.detach().flatten() for p in m.parameters()]).double().sum()
                    for m in (model.generator.module, model.discriminator.module, model.generator_ema)])
gathered = [torch.zeros_like(sums) for _ in range(dist.get_world_size())]
dist.all_gather(gathered, sums)
if dist.get_rank() == 0:
    out = dict(world_size=dist.get_world_size(), backend=dist.get_backend(), sums=[g.tolist() for g in gathered])
    open(os.path.join(runner.work_dir, 'ranks.json'), 'w').write(json.dumps(out))
shutdown_distributed()
"""


def test_two_process_gloo_training(tmp_path, data_root):
    """Two ranks through the runner's default DDP wrapper (no model_wrapper_cfg in the config)."""
    driver = tmp_path / 'driver.py'
    driver.write_text(DIST_DRIVER)
    work_dir = tmp_path / 'work'
    options = [*tiny_options(data_root, 2, 'dist'), 'model.perceptual_loss=None', 'model.init_generator=None']
    options.append('model_wrapper_cfg=None')
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc-per-node', '2', '--master-port', str(free_port())]
    cmd += [str(driver), str(CONFIGS / 'realesrgan_x4_demo.py'), '--launcher', 'pytorch', '--work-dir', str(work_dir)]
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': str(REPO)}
    out = subprocess.run([*cmd, '--cfg-options', *options], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    ranks = json.loads((work_dir / 'ranks.json').read_text())
    assert ranks['world_size'] == 2 and ranks['backend'] == 'gloo'
    assert ranks['sums'][0] == ranks['sums'][1]  # DDP kept G, D and EMA identical on both ranks
    assert (work_dir / 'iter_2.pth').is_file() and len(logged_psnr(work_dir)) == 1


# ----------------------------------------------------------------------------- across hosts


def basicsr_test_output(net_g_path: Path, lq: torch.Tensor) -> torch.Tensor:
    """Run the BasicSR host's model (from its registry) on ``lq`` with the weights in ``net_g_path``."""
    opt = {
        'model_type': 'RealESRNetModel',
        'is_train': False,
        'dist': False,
        'num_gpu': 0,
        'scale': 4,
        'network_g': {k: v for k, v in SRVGG.items()},
        'path': {'pretrain_network_g': str(net_g_path), 'param_key_g': 'params_ema', 'strict_load_g': True},
    }
    model = build_model(opt)
    model.feed_data({'lq': lq})
    model.test()
    return model.output


def test_generator_trained_under_mmengine_runs_identically_in_basicsr(esrnet_run, tmp_path):
    written = convert(str(esrnet_run / 'iter_4.pth'), str(tmp_path / 'net_g.pth'), to='basicsr')
    net_g = load_checkpoint_file(written[0])
    ema = generator_weights(esrnet_run / 'iter_4.pth', 'generator_ema.')
    assert list(net_g['params_ema']) == [k[len('generator_ema.') :] for k in ema]  # the same keys, same order

    mm_model = build_model_from_config(CONFIGS / 'realesrnet_x4_demo.py')
    mm_model.load_state_dict(load_checkpoint_file(esrnet_run / 'iter_4.pth')['state_dict'])
    lq = torch.rand(1, 3, 12, 16, generator=torch.Generator().manual_seed(0))
    assert torch.equal(basicsr_test_output(tmp_path / 'net_g.pth', lq), mm_model(lq, mode='tensor'))


def test_generator_trained_under_basicsr_runs_identically_in_mmengine(tmp_path, data_root):
    opt = yaml.safe_load((REPO / 'options' / 'demo' / 'train_realesrnet_x4_demo.yml').read_text())
    train_set = opt['datasets']['train']
    train_set.update(dataroot_gt=str(data_root / 'gt'), crop_pad_size=64, gt_size=32, batch_size_per_gpu=2)
    del opt['datasets']['val'], opt['val']
    opt.update(gt_size=32, queue_size=4)
    opt['train'].update(total_iter=2)
    opt['logger'].update(save_checkpoint_freq=2, use_tb_logger=False)
    (tmp_path / 'opt.yml').write_text(yaml.safe_dump(opt))
    env = {**os.environ, 'PYTHONPATH': str(REPO), 'OMP_NUM_THREADS': '1'}
    out = subprocess.run(
        [sys.executable, '-m', 'realesrgan_plugin.train', '-opt', 'opt.yml'],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    net_g_path = next(tmp_path.glob('experiments/*/models/net_g_2.pth'))
    assert detect_layout(load_checkpoint_file(net_g_path)) == 'basicsr'

    mm_model = build_model_from_config(CONFIGS / 'realesrnet_x4_demo.py', init_generator=str(net_g_path))
    lq = torch.rand(2, 3, 10, 14, generator=torch.Generator().manual_seed(1))
    assert torch.equal(mm_model(lq, mode='tensor'), basicsr_test_output(net_g_path, lq))
    # the whole file also loads as an MMEngine state dict (what load_from + CheckpointLayoutHook do)
    ckpt = normalize_checkpoint(load_checkpoint_file(net_g_path))
    fresh = build_model_from_config(CONFIGS / 'realesrnet_x4_demo.py')
    fresh.load_state_dict(ckpt['state_dict'], strict=True)
    trained = load_checkpoint_file(net_g_path)['params']
    assert all(torch.equal(v, trained[k]) for k, v in fresh.generator.state_dict().items())


def test_one_gan_iteration_matches_the_basicsr_host():
    """Same weights, same batch: one MMEngine Real-ESRGAN iteration and one BasicSR iteration end at
    identical generator, discriminator (spectral-norm buffers included) and EMA weights."""
    torch.manual_seed(0)
    net_g = dict(type='SRVGGNetCompact', num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=4)
    net_d = dict(type='UNetDiscriminatorSN', num_in_ch=3, num_feat=8)
    adam = dict(type='Adam', lr=1e-3, weight_decay=0, betas=[0.9, 0.99])
    pixel, gan = dict(type='L1Loss', loss_weight=1.0), dict(type='GANLoss', gan_type='vanilla', loss_weight=0.1)
    opt = {
        'model_type': 'RealESRGANModel',
        'is_train': True,
        'dist': False,
        'num_gpu': 0,
        'scale': 4,
        'rank': 0,
        'world_size': 1,
        'high_order_degradation': False,
        'l1_gt_usm': True,
        'percep_gt_usm': True,
        'gan_gt_usm': False,
        'network_g': net_g,
        'network_d': net_d,
        'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
        'train': {
            'ema_decay': 0.999,
            'optim_g': adam,
            'optim_d': adam,
            'scheduler': {'type': 'MultiStepLR', 'milestones': [100], 'gamma': 0.5},
            'total_iter': 100,
            'warmup_iter': -1,
            'pixel_opt': pixel,
            'gan_opt': gan,
        },
    }
    basicsr = build_model(opt)
    with DefaultScope.overwrite_default_scope('realesrgan_plugin'):
        mm = MODELS.build(
            dict(
                type='RealESRGANModel',
                generator=net_g,
                discriminator=net_d,
                pixel_loss=pixel,
                gan_loss=gan,
                data_preprocessor=dict(type='RealESRGANDataPreprocessor', queue_size=0),
            )
        )
    mm.generator.load_state_dict(basicsr.net_g.state_dict())
    mm.generator_ema.load_state_dict(basicsr.net_g_ema.state_dict())
    mm.discriminator.load_state_dict(basicsr.net_d.state_dict())
    optim = OptimWrapperDict(
        generator=OptimWrapper(torch.optim.Adam(mm.generator.parameters(), lr=1e-3, betas=(0.9, 0.99))),
        discriminator=OptimWrapper(torch.optim.Adam(mm.discriminator.parameters(), lr=1e-3, betas=(0.9, 0.99))),
    )
    batch = {'lq': torch.rand(2, 3, 8, 8), 'gt': torch.rand(2, 3, 32, 32)}

    basicsr.feed_data(batch)
    basicsr.optimize_parameters(1)
    MessageHub.get_current_instance().update_info('iter', 0)  # BasicSR's current_iter 1
    logs = mm.train_step(batch, optim)

    for ours, theirs in ((mm.generator, basicsr.net_g), (mm.generator_ema, basicsr.net_g_ema)):
        for key, value in theirs.state_dict().items():
            assert torch.equal(ours.state_dict()[key], value), key
    for key, value in basicsr.net_d.state_dict().items():
        assert torch.equal(mm.discriminator.state_dict()[key], value), key
    assert set(logs) == set(basicsr.log_dict)


# ----------------------------------------------------------------------------- mmagic


def mmagic_checkpoint(generator: torch.nn.Module, discriminator: torch.nn.Module) -> dict:
    """A checkpoint laid out as mmagic's RealESRGAN saves it: generator/generator_ema/discriminator
    prefixes, ``conv_N`` discriminator names, the perceptual loss's VGG and preprocessor buffers too."""
    state = OrderedDict()
    for k, v in generator.state_dict().items():
        state[f'generator.{k}'] = v
        state[f'generator_ema.{k}'] = v + 1  # distinguishable from the generator
    for k, v in discriminator.state_dict().items():
        conv, _, rest = k.partition('.')
        state[f'discriminator.conv_{conv[4:]}.{rest}'] = v
    state['perceptual_loss.vgg.vgg_layers.0.weight'] = torch.zeros(64, 3, 3, 3)
    state['data_preprocessor.mean'] = torch.zeros(1, 3, 1, 1)
    return {'meta': {'mmagic_version': '1.2.0'}, 'state_dict': state}


def test_mmagic_checkpoint_loads_into_both_hosts(tmp_path):
    torch.manual_seed(0)
    gen = ARCH_REGISTRY.get('SRVGGNetCompact')(**{k: v for k, v in SRVGG.items() if k != 'type'})
    disc = ARCH_REGISTRY.get('UNetDiscriminatorSN')(num_in_ch=3, num_feat=16)
    disc(torch.rand(1, 3, 16, 16))  # one power iteration: non-trivial u/v buffers
    path = tmp_path / 'realesrgan_mmagic.pth'
    atomic_torch_save(mmagic_checkpoint(gen, disc), path)
    assert detect_layout(load_checkpoint_file(path)) == 'mmagic'

    # MMEngine host: `load_from` an mmagic file into the Real-ESRGAN model (the demo config's networks)
    cfg = Config.fromfile(str(CONFIGS / 'realesrgan_x4_demo.py'))
    cfg.merge_from_dict({'model.init_generator': None, 'model.perceptual_loss': None, 'work_dir': str(tmp_path / 'w')})
    cfg.experiment_name = 'mmagic_load'
    runner = RealESRGANRunner.from_cfg(cfg)
    runner.load_checkpoint(str(path), strict=True)
    model = runner.model
    x = torch.rand(1, 3, 16, 16)
    disc.eval(), model.discriminator.eval()
    assert torch.equal(model.discriminator(x), disc(x))
    assert torch.equal(model.generator(x), gen(x))
    assert torch.equal(model.generator_ema.body[0].weight, gen.body[0].weight + 1)

    # BasicSR host: converted files load strictly into the registry's networks
    written = convert(str(path), str(tmp_path / 'net_g.pth'), to='basicsr', dst_d=str(tmp_path / 'net_d.pth'))
    assert len(written) == 2
    net_g, net_d = load_checkpoint_file(written[0]), load_checkpoint_file(written[1])
    ARCH_REGISTRY.get('UNetDiscriminatorSN')(num_in_ch=3, num_feat=16).load_state_dict(net_d['params'])
    ema = ARCH_REGISTRY.get('SRVGGNetCompact')(**{k: v for k, v in SRVGG.items() if k != 'type'})
    ema.load_state_dict(net_g['params_ema'])
    assert torch.equal(ema.body[0].weight, gen.body[0].weight + 1)


# ----------------------------------------------------------------------------- errors


class _SneakyGetattr:
    def __reduce__(self):
        return getattr, (OrderedDict, 'fromkeys')


def test_safe_loading_refuses_other_getattr_calls(tmp_path):
    with pytest.raises(pickle.UnpicklingError):
        _history_buffer_statistic(HistoryBuffer, '__init__')
    torch.save({'x': _SneakyGetattr()}, tmp_path / 'bad.pth')
    with pytest.raises(RuntimeError, match='bad.pth'):
        load_checkpoint_file(tmp_path / 'bad.pth')


def test_bad_inputs_name_what_is_wrong(tmp_path):
    assert train_main([str(tmp_path / 'nope.py')]) == 2
    atomic_torch_save({'weights': {'a': torch.zeros(1)}}, tmp_path / 'odd.pth')
    with pytest.raises(ValueError, match=r"odd.pth.*top-level keys are \['weights'\]"):
        to_basicsr(load_checkpoint_file(tmp_path / 'odd.pth'), name=str(tmp_path / 'odd.pth'))
    with pytest.raises(ValueError, match='refusing to overwrite'):
        convert(str(tmp_path / 'odd.pth'), str(tmp_path / 'odd.pth'), to='basicsr')
