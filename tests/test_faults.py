"""Faults survived, each proven by injecting it (docs/faults.md lists them with what the user sees).

* damaged newest training state / network file -> resume from the newest intact one (both hosts);
* a full disk under every writer -> one error naming the target, no partial file, old file intact,
  batch jobs redo only what is missing;
* one Upsampler shared by threads; two processes building the kernel cache; inference in a forked
  DataLoader worker;
* a kernel cache that cannot hurt: corrupt/truncated library, read-only cache, missing source, no
  compiler (failure remembered), the CPU key.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import realesrgan_plugin.basicsr  # noqa: F401  (compat + BasicSR registration before basicsr)
from realesrgan_plugin.core.checkpoint import (
    ResumeError,
    atomic_torch_save,
    newest_intact_checkpoint,
    training_states_newest_first,
    verify_checkpoint,
)

import pytest
import torch
from test_train import _env, assert_same_weights, data_root, demo_options, write_options  # noqa: F401

REPO = Path(__file__).resolve().parents[1]


def truncate(path: Path, keep: float = 0.5) -> None:
    """A disk fault / interrupted copy: the file loses its tail."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


# ============================================================================ damaged checkpoints


def test_newest_intact_checkpoint_skips_and_sets_aside_damaged_files(tmp_path):
    for step in (2, 4, 6):
        atomic_torch_save({'iter': step}, tmp_path / f'{step}.state')
        atomic_torch_save({'w': torch.ones(3) * step}, tmp_path / f'net_{step}.pth')
    truncate(tmp_path / '6.state')
    truncate(tmp_path / 'net_4.pth')
    warnings: list[str] = []
    found = newest_intact_checkpoint(
        training_states_newest_first(tmp_path),
        companions=lambda p: [p.with_name(f'net_{p.stem}.pth')],
        warn=warnings.append,
    )
    assert found is not None and found[0].name == '2.state' and found[1]['iter'] == 2
    assert len(warnings) == 2 and '6.state' in warnings[0] and 'net_4.pth' in warnings[1]
    assert (tmp_path / '6.state.corrupt').is_file() and (tmp_path / 'net_4.pth.corrupt').is_file()
    assert [p.name for p in training_states_newest_first(tmp_path)] == ['4.state', '2.state']
    with pytest.raises(ResumeError, match='net_4.pth'):  # named explicitly: an error, no fallback
        verify_checkpoint(tmp_path / '4.state', [tmp_path / 'net_4.pth'])


BASICSR_CHANGES = {'train:total_iter': 8, 'logger:print_freq': 4, 'logger:save_checkpoint_freq': 4}


@pytest.fixture(scope='module')
def esrnet_uninterrupted(data_root, tmp_path_factory) -> Path:  # noqa: F811
    """Real-ESRNet, 8 iterations, checkpoints at 4 and 8 (the reference and the states to damage)."""
    root = tmp_path_factory.mktemp('basicsr_runs')
    opt = demo_options('realesrnet', data_root, 'straight', **BASICSR_CHANGES)
    opt['val']['val_freq'] = 100
    opt['logger']['use_tb_logger'] = False
    proc = run(write_options(opt, root), root)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return root


def run(opt_file: Path, root: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, '-m', 'realesrgan_plugin.train', '-opt', str(opt_file), '--root_path', str(root), *extra]
    return subprocess.run(cmd, env=_env(), cwd=root, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize('damage', ['training_states/8.state', 'models/net_g_8.pth'])
def test_basicsr_auto_resume_skips_a_damaged_newest_state(esrnet_uninterrupted, data_root, damage):  # noqa: F811
    """Truncate the newest state (or the network file it names): --auto_resume warns once, naming
    it, sets it aside as *.corrupt, resumes from iteration 4 and ends with the uninterrupted
    run's weights."""
    root = esrnet_uninterrupted
    name = 'dmg_' + Path(damage).stem
    exp = root / 'experiments' / name
    shutil.copytree(root / 'experiments' / 'straight', exp)
    (exp / 'models' / 'net_g_latest.pth').unlink()
    truncate(exp / damage)
    opt = demo_options('realesrnet', data_root, name, **BASICSR_CHANGES)
    opt['val']['val_freq'] = 100
    opt['logger']['use_tb_logger'] = False
    proc = run(write_options(opt, root), root, '--auto_resume')
    assert proc.returncode == 0, proc.stderr[-4000:]
    log = proc.stdout + proc.stderr
    warnings = [line for line in log.splitlines() if line.startswith('WARNING: --auto_resume')]
    assert len(warnings) == 1 and Path(damage).name in warnings[0], warnings
    assert (exp / (damage + '.corrupt')).is_file()
    assert re.search(r'Resuming training from epoch: \d+, iter: 4\b', log)
    assert_same_weights(
        root / 'experiments' / 'straight' / 'models' / 'net_g_latest.pth', exp / 'models' / 'net_g_latest.pth'
    )


def test_basicsr_no_intact_state_left_is_one_error_unless_fresh_if_none(esrnet_uninterrupted, data_root):  # noqa: F811
    root = esrnet_uninterrupted
    exp = root / 'experiments' / 'allbad'
    shutil.copytree(root / 'experiments' / 'straight', exp)
    for state in (exp / 'training_states').glob('*.state'):
        truncate(state)
    opt = demo_options('realesrnet', data_root, 'allbad', **dict(BASICSR_CHANGES, **{'train:total_iter': 1}))
    opt['val']['val_freq'] = 100
    opt['logger']['use_tb_logger'] = False
    opt_file = write_options(opt, root)
    proc = run(opt_file, root, '--auto_resume')
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    assert re.search(r'^error: --auto_resume: no intact training state left in .*fresh-if-none', proc.stderr, re.M)
    assert sorted(p.name for p in (exp / 'training_states').iterdir()) == ['4.state.corrupt', '8.state.corrupt']
    proc = run(opt_file, root, '--auto_resume=fresh-if-none')
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert 'Resuming training' not in proc.stdout + proc.stderr and (exp / 'models' / 'net_g_latest.pth').is_file()


def test_basicsr_explicit_damaged_resume_state_is_an_error(esrnet_uninterrupted, data_root, tmp_path):  # noqa: F811
    state = tmp_path / '8.state'
    shutil.copy(esrnet_uninterrupted / 'experiments' / 'straight' / 'training_states' / '8.state', state)
    truncate(state)
    opt = demo_options('realesrnet', data_root, 'explicit', **BASICSR_CHANGES)
    opt['path']['resume_state'] = str(state)
    proc = run(write_options(opt, tmp_path), tmp_path)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    assert re.search(rf'^error: .*{re.escape(str(state))}.*damaged', proc.stderr, re.M)
    assert state.is_file()  # named by the user: left where it is
