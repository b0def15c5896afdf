"""A distributed resume past a damaged newest checkpoint (docs/faults.md): two processes under
``torchrun`` (gloo, CPU), tiny networks, a few iterations, on both hosts. Every rank must resume
from the same intact checkpoint, with one warning (rank 0's) and the damaged file moved aside
once, not by two ranks racing.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import realesrgan_plugin.basicsr  # noqa: F401  (compat + BasicSR registration before basicsr)

import torch
from conftest import free_port
from test_faults import BASICSR_CHANGES, truncate
from test_train import _env, assert_same_weights, data_root, demo_options, write_options  # noqa: F401

REPO = Path(__file__).resolve().parents[1]


def torchrun(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2', f'--master_port={free_port()}']
    return subprocess.run([*cmd, *args], env=_env(), cwd=cwd, capture_output=True, text=True, timeout=600)


def aborted_after_finishing(proc: subprocess.CompletedProcess, last_checkpoint: Path) -> bool:
    """A 2-rank MMEngine run that wrote its last checkpoint, then had a rank abort in C++ at exit
    ("terminate called without an active exception", seen once in three CI runs): a teardown fault
    we have not fixed yet, not a resume fault; the weights the test compares are on disk."""
    return 'terminate called without an active exception' in proc.stderr and last_checkpoint.is_file()


def torchrun_train(opt_file: Path, root: Path, *extra: str) -> subprocess.CompletedProcess:
    args = ['-m', 'realesrgan_plugin.train', '-opt', str(opt_file), '--root_path', str(root), '--launcher', 'pytorch']
    return torchrun(*args, *extra, cwd=root)


def test_torchrun_auto_resume_skips_a_damaged_newest_state_on_every_rank(data_root, tmp_path):  # noqa: F811
    """Two ranks (gloo, CPU) train 8 iterations; the newest state (8) is truncated. Rerun with
    --auto_resume: one warning (rank 0's), the file moved aside once, both ranks resume from
    iteration 4 with identical weights and end with the uninterrupted run's weights."""
    opt = demo_options('realesrnet', data_root, 'ddp_straight', **BASICSR_CHANGES)
    opt['datasets']['train']['batch_size_per_gpu'] = 2
    opt['val']['val_freq'] = 100
    opt['logger']['use_tb_logger'] = False
    proc = torchrun_train(write_options(opt, tmp_path), tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]

    straight, damaged = tmp_path / 'experiments' / 'ddp_straight', tmp_path / 'experiments' / 'ddp_damaged'
    shutil.copytree(straight, damaged)
    (damaged / 'models' / 'net_g_latest.pth').unlink()
    truncate(damaged / 'training_states' / '8.state')
    opt['name'] = 'ddp_damaged'
    proc = torchrun_train(write_options(opt, tmp_path), tmp_path, '--auto_resume')
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    warnings = [line for line in log.splitlines() if 'WARNING: --auto_resume' in line]
    assert len(warnings) == 1 and '8.state' in warnings[0], warnings
    states = sorted(p.name for p in (damaged / 'training_states').iterdir() if p.is_file())
    assert states == ['4.state', '8.state', '8.state.corrupt'], states  # moved aside once; 8 saved again
    assert re.search(r'Resuming training from epoch: \d+, iter: 4\b', log)
    assert 'Weights identical on all 2 ranks' in log  # checked after loading the state, before training
    assert_same_weights(straight / 'models' / 'net_g_latest.pth', damaged / 'models' / 'net_g_latest.pth')


def test_torchrun_mmengine_resume_skips_a_damaged_newest_checkpoint_on_every_rank(data_root, tmp_path):  # noqa: F811
    """realesrgan-train-mm under torchrun x2, 2 iterations (iter_2.pth). A damaged newer iter_4.pth
    (the one last_checkpoint names) and --resume to 4 iterations: one warning, iter_4.pth.corrupt
    once, and the run ends with the weights of a resume from the intact iter_2.pth alone (MMEngine's
    DDP resume re-seeds the synthesis per rank, so that, not an uninterrupted run, is the reference)."""
    from realesrgan_plugin.mmengine.checkpoint import load_checkpoint_file

    from test_mmengine import CONFIGS, tiny_options

    def train_mm(work: Path, iters: int, *flags: str) -> subprocess.CompletedProcess:
        args = ['-m', 'realesrgan_plugin.mmengine.train', str(CONFIGS / 'realesrnet_x4_demo.py')]
        args += ['--launcher', 'pytorch', '--work-dir', str(work), *flags]
        proc = torchrun(*args, '--cfg-options', *tiny_options(data_root, iters, work.name), cwd=tmp_path)
        if proc.returncode and aborted_after_finishing(proc, work / f'iter_{iters}.pth'):
            warnings.warn('a rank aborted in C++ teardown after its run had finished (known, open: DEVELOPERS.md)')
        else:
            assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
        return proc

    first, intact, damaged = tmp_path / 'first', tmp_path / 'intact', tmp_path / 'damaged'
    train_mm(first, 2)
    for work in (intact, damaged):
        work.mkdir()
        shutil.copy(first / 'iter_2.pth', work / 'iter_2.pth')
    (intact / 'last_checkpoint').write_text(str(intact / 'iter_2.pth'))
    shutil.copy(first / 'iter_2.pth', damaged / 'iter_4.pth')
    truncate(damaged / 'iter_4.pth')
    (damaged / 'last_checkpoint').write_text(str(damaged / 'iter_4.pth'))

    train_mm(intact, 4, '--resume')
    log = train_mm(damaged, 4, '--resume')
    log = log.stdout + log.stderr
    warnings = [line for line in log.splitlines() if 'WARNING: --resume' in line]
    assert len(warnings) == 1 and 'iter_4.pth' in warnings[0], warnings
    assert sorted(p.name for p in damaged.glob('iter_*')) == ['iter_2.pth', 'iter_4.pth', 'iter_4.pth.corrupt']
    assert re.search(r'resumed epoch: \d+, iter: 2\b', log), log[-3000:]
    reference, again = load_checkpoint_file(intact / 'iter_4.pth'), load_checkpoint_file(damaged / 'iter_4.pth')
    for key, value in reference['state_dict'].items():
        assert torch.equal(value, again['state_dict'][key]), key
