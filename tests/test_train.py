"""End-to-end training through the runner (``python -m realesrgan_plugin.train``), on CPU.

Real BasicSR runner, real datasets on disk (scikit-image photos), real checkpoints and
tensorboard files; tiny networks so the whole file stays within a few minutes on 2 cores.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import realesrgan_plugin.basicsr  # noqa: F401  (compat + BasicSR registration before basicsr)
from realesrgan_plugin.core.img_io import write_image

import cv2
import numpy as np
import pytest
import torch
import yaml
from conftest import free_port, write_random_vgg19

REPO = Path(__file__).resolve().parents[1]
DEMO_OPTIONS = REPO / 'options' / 'demo'
PHOTOS = ('astronaut', 'coffee', 'chelsea', 'rocket')


def _env() -> dict:
    # One intra-op thread per process: on a shared 2-core machine more threads only spin.
    return dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS='1', REALESRGAN_PLUGIN_OFFLINE='1')


@pytest.fixture(scope='module')
def data_root(tmp_path_factory) -> Path:
    """HR tiles for synthesis, LQ/GT pairs for paired training and validation, a random VGG19."""
    from skimage import data

    root = tmp_path_factory.mktemp('train_data')
    for name in PHOTOS:
        bgr = np.ascontiguousarray(getattr(data, name)()[:, :, ::-1])
        h, w = bgr.shape[:2]
        for i in range(2):
            tile = bgr[i * 64 : (i + 1) * 64, 64:128]
            write_image(root / 'gt' / f'{name}_{i}.png', tile)
            write_image(root / 'lq' / f'{name}_{i}.png', cv2.resize(tile, (16, 16), interpolation=cv2.INTER_AREA))
        crop = bgr[h // 2 - 32 : h // 2 + 32, w // 2 - 32 : w // 2 + 32]
        write_image(root / 'val' / 'gt' / f'{name}.png', crop)
        write_image(root / 'val' / 'lq' / f'{name}.png', cv2.resize(crop, (16, 16), interpolation=cv2.INTER_AREA))
    write_random_vgg19(root / 'vgg19_random.pth')
    return root


def demo_options(stage: str, data: Path, name: str, **changes) -> dict:
    """A demo option file pointed at the test data, shrunk further; ``changes`` as 'a:b' keys."""
    opt = yaml.safe_load((DEMO_OPTIONS / f'train_{stage}_x4_demo.yml').read_text())
    opt['name'] = name
    opt['gt_size'] = 32
    train = opt['datasets']['train']
    train.update(dataroot_gt=str(data / 'gt'), crop_pad_size=96, gt_size=32, batch_size_per_gpu=4)
    opt['queue_size'] = 8
    val = opt['datasets']['val']
    val.update(dataroot_gt=str(data / 'val' / 'gt'), dataroot_lq=str(data / 'val' / 'lq'))
    opt['network_g'].update(num_feat=8, num_conv=2)
    if 'network_d' in opt:
        opt['network_d']['num_feat'] = 4
        opt['train']['perceptual_opt']['vgg_weights_path'] = str(data / 'vgg19_random.pth')
    opt['path']['pretrain_network_g'] = None
    for key, value in changes.items():
        *parents, leaf = key.split(':')
        node = opt
        for p in parents:
            node = node[p]
        node[leaf] = value
    return opt


def write_options(opt: dict, folder: Path) -> Path:
    path = folder / f'{opt["name"]}.yml'
    path.write_text(yaml.safe_dump(opt, sort_keys=False))
    return path


def run_train(opt_file: Path, root: Path, *extra: str, timeout: float = 300) -> str:
    cmd = [sys.executable, '-m', 'realesrgan_plugin.train', '-opt', str(opt_file), '--root_path', str(root), *extra]
    proc = subprocess.run(cmd, env=_env(), cwd=root, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc.stdout + proc.stderr


def logged(log: str, key: str) -> list[float]:
    return [float(v) for v in re.findall(rf'{key}: ([-+.0-9eE]+)', log)]


def load_weights(path: Path) -> dict:
    return torch.load(path, map_location='cpu', weights_only=True)


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = load_weights(a), load_weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        for name, tensor in wa[key].items():
            assert torch.equal(tensor, wb[key][name]), f'{a.name} [{key}] {name} differs'


def test_both_stages_train_from_option_files(data_root, tmp_path):
    """Real-ESRNet then Real-ESRGAN from the demo option files: checkpoints, tensorboard logs,
    validation PSNR lines, official log keys; the L1 loss falls over a few hundred iterations."""
    net_opt = demo_options(
        'realesrnet', data_root, 'esrnet', **{'train:total_iter': 240, 'logger:print_freq': 1, 'val:val_freq': 120}
    )
    net_opt['logger']['save_checkpoint_freq'] = 120
    log = run_train(write_options(net_opt, tmp_path), tmp_path)
    exp = tmp_path / 'experiments' / 'esrnet'
    for name in (
        'models/net_g_120.pth',
        'models/net_g_240.pth',
        'models/net_g_latest.pth',
        'training_states/240.state',
    ):
        assert (exp / name).is_file(), name
    assert list((tmp_path / 'tb_logger' / 'esrnet').glob('events.out.tfevents.*'))
    psnr = [float(v) for v in re.findall(r'# psnr: ([0-9.]+)', log)]
    assert len(psnr) >= 2 and all(10 < p < 60 for p in psnr)
    l_pix = logged(log, 'l_pix')
    assert len(l_pix) == 240
    first, last = np.mean(l_pix[:20]), np.mean(l_pix[-60:])
    assert last < 0.8 * first, f'L1 did not fall: first 20 iters {first:.4f}, last 60 {last:.4f}'

    gan_opt = demo_options('realesrgan', data_root, 'esrgan', **{'train:total_iter': 6, 'logger:print_freq': 3})
    gan_opt['path']['pretrain_network_g'] = str(exp / 'models' / 'net_g_latest.pth')
    gan_opt['logger']['save_checkpoint_freq'] = 6
    gan_opt['val']['val_freq'] = 6
    log = run_train(write_options(gan_opt, tmp_path), tmp_path)
    for key in ('l_g_pix', 'l_g_percep', 'l_g_gan', 'l_d_real', 'l_d_fake', 'out_d_real', 'out_d_fake'):
        assert logged(log, key), f'{key} missing from the log'
    gan_exp = tmp_path / 'experiments' / 'esrgan'
    assert (gan_exp / 'models' / 'net_d_6.pth').is_file() and (gan_exp / 'training_states' / '6.state').is_file()
    assert 'Loading SRVGGNetCompact model from' in log and re.search(r'# psnr: [0-9.]+', log)


# Runs the training entry, but pauses for good right after the checkpoint of iteration argv[1]
# and says so on stdout: the test kills it at exactly that point, with no timing race.
PAUSE_AFTER_CHECKPOINT = """
import sys, time
import realesrgan_plugin.basicsr
from realesrgan_plugin.basicsr.models.training_runtime import TrainingRuntimeMixin
from realesrgan_plugin.basicsr.train import main
stop, save = int(sys.argv[1]), TrainingRuntimeMixin.save_training_state
def save_then_pause(self, epoch, current_iter):
    save(self, epoch, current_iter)
    if current_iter == stop:
        print('CHECKPOINT WRITTEN', flush=True)
        time.sleep(3600)
TrainingRuntimeMixin.save_training_state = save_then_pause
main(sys.argv[2:])
"""


def _kill_after_checkpoint(args: list[str], root: Path, stop_iter: int, timeout: float = 240) -> None:
    """Start a run, wait for the line saying iteration ``stop_iter``'s checkpoint is on disk, SIGKILL it."""
    cmd = [sys.executable, '-c', PAUSE_AFTER_CHECKPOINT, str(stop_iter), *args]
    proc = subprocess.Popen(cmd, env=_env(), cwd=root, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        for line in proc.stdout:
            if line.strip() == 'CHECKPOINT WRITTEN':
                break
        else:
            pytest.fail(f'training ended (status {proc.wait()}) before the checkpoint of iteration {stop_iter}')
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout)
        proc.stdout.close()


def test_sigkill_then_auto_resume_is_bit_identical(data_root, tmp_path):
    """A Real-ESRGAN run killed between checkpoints and resumed with --auto_resume ends with exactly
    the weights (G, EMA, D) of an uninterrupted run: data, synthesis, pool and RNGs all restored."""
    changes = {'train:total_iter': 16, 'logger:print_freq': 4, 'logger:save_checkpoint_freq': 4, 'val:val_freq': 8}
    full = demo_options('realesrgan', data_root, 'full', **changes)
    full['datasets']['train']['num_worker_per_gpu'] = 1  # samples must not depend on workers
    run_train(write_options(full, tmp_path), tmp_path)

    killed = dict(full, name='killed')
    opt_file = write_options(killed, tmp_path)
    args = ['-opt', str(opt_file), '--root_path', str(tmp_path)]
    cmd = [sys.executable, '-m', 'realesrgan_plugin.train', *args]
    states = tmp_path / 'experiments' / 'killed' / 'training_states'
    _kill_after_checkpoint(args, tmp_path, 8)
    assert not (tmp_path / 'experiments' / 'killed' / 'models' / 'net_g_latest.pth').exists()
    assert not [p for p in states.iterdir() if p.name.endswith('.tmp')]

    other_cwd = tmp_path / 'elsewhere'  # auto_resume looks in the experiment folder, not the cwd
    other_cwd.mkdir()
    proc = subprocess.run(
        [*cmd, '--auto_resume'], env=_env(), cwd=other_cwd, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-5000:]
    resumed_from = int(re.search(r'Resuming training from epoch: \d+, iter: (\d+)', proc.stderr + proc.stdout)[1])
    assert resumed_from == 8
    for net in ('net_g', 'net_d'):
        assert_same_weights(
            tmp_path / 'experiments' / 'full' / 'models' / f'{net}_latest.pth',
            tmp_path / 'experiments' / 'killed' / 'models' / f'{net}_latest.pth',
        )


def test_torchrun_two_cpu_processes_train_identical_weights(data_root, tmp_path):
    """torchrun --nproc_per_node=2 ... --launcher pytorch on CPU (gloo): both ranks train, validate
    (sharded, no hang) and end with bit-identical weights; each rank keeps its own random state."""
    changes = {'train:total_iter': 6, 'logger:print_freq': 3, 'logger:save_checkpoint_freq': 3, 'val:val_freq': 3}
    opt = demo_options('realesrnet', data_root, 'ddp', **changes)
    opt['datasets']['train']['batch_size_per_gpu'] = 2
    opt_file = write_options(opt, tmp_path)
    cmd = [
        sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2', f'--master_port={free_port()}',
        '-m', 'realesrgan_plugin.train', '-opt', str(opt_file), '--root_path', str(tmp_path), '--launcher', 'pytorch',
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=_env(), cwd=tmp_path, capture_output=True, text=True, timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    assert 'World size (gpu number): 2' in log
    digests = re.search(r"Weights identical on all 2 ranks: \{'net_g': '([0-9a-f]+)'", log)
    assert digests, log[-3000:]
    saved = load_weights(tmp_path / 'experiments' / 'ddp' / 'models' / 'net_g_latest.pth')['params']
    digest = hashlib.sha256()
    for t in saved.values():
        digest.update(t.contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    assert digest.hexdigest() == digests[1]
    assert (tmp_path / 'experiments' / 'ddp' / 'training_states' / 'ranks' / '6_rank1.pth').is_file()
    assert re.search(r'# psnr: [0-9.]+', log)
