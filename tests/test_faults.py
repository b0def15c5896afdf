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

import os
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


# ============================================================================ full disk, real filesystem


@pytest.fixture
def small_fs(tmp_path):
    """A real 2 MiB tmpfs (we are root in CI and here); skipped, saying why, where mounting is refused."""
    mount_point = tmp_path / 'small_fs'
    mount_point.mkdir()
    proc = subprocess.run(
        ['mount', '-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', str(mount_point)], capture_output=True, text=True
    )
    if proc.returncode:
        pytest.skip(f'cannot mount a size-limited tmpfs here ({proc.stderr.strip() or proc.returncode}): needs root')
    try:
        yield mount_point
    finally:
        subprocess.run(['umount', '-l', str(mount_point)], check=False)


def fill_leaving(folder: Path, free_bytes: int) -> Path:
    """Fill the filesystem of ``folder`` with a ballast file, then give back ``free_bytes``."""
    ballast = folder / 'ballast'
    with open(ballast, 'wb', buffering=0) as f:
        try:
            while True:
                f.write(b'\0' * 65536)
        except OSError:
            pass
    size = ballast.stat().st_size
    os.truncate(ballast, max(0, size - free_bytes))
    return ballast


def noise_image(size: int, seed: int = 0):
    import numpy as np

    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def test_full_disk_image_write_names_the_target_and_keeps_the_old_file(small_fs):
    from realesrgan_plugin.core.atomic import DiskWriteError
    from realesrgan_plugin.core.img_io import write_image

    target = small_fs / 'out.png'
    write_image(target, noise_image(16))
    before = target.read_bytes()
    fill_leaving(small_fs, 8192)
    with pytest.raises(DiskWriteError, match=r'cannot write .*out\.png: No space left on device') as info:
        write_image(target, noise_image(256))
    assert info.value.filename == str(target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in small_fs.iterdir()) == ['ballast', 'out.png']  # no temporary file left


def test_full_disk_checkpoint_save_names_the_file(small_fs):
    from realesrgan_plugin.core.atomic import DiskWriteError

    target = small_fs / 'net_g_4.pth'
    atomic_torch_save({'w': torch.zeros(4)}, target)
    fill_leaving(small_fs, 4096)
    with pytest.raises(DiskWriteError, match='net_g_4.pth'):
        atomic_torch_save({'w': torch.zeros(1 << 18)}, target)
    assert torch.load(target, weights_only=True)['w'].shape == (4,)
    assert sorted(p.name for p in small_fs.iterdir()) == ['ballast', 'net_g_4.pth']


def tiny_srvgg_weights(path: Path) -> Path:
    from realesrgan_plugin.archs.srvgg_arch import SRVGGNetCompact

    torch.manual_seed(0)
    net = SRVGGNetCompact(3, 3, num_feat=4, num_conv=1, upscale=4)
    torch.save({'params': net.state_dict()}, path)
    return path


def test_full_disk_infer_stops_with_one_error_and_skip_existing_finishes(small_fs, tmp_path, capsys):
    from realesrgan_plugin.core.img_io import write_image
    from realesrgan_plugin.inference.cli import main as infer

    inputs = tmp_path / 'in'
    for i in range(4):
        write_image(inputs / f'img{i}.png', noise_image(48, seed=i))
    weights = tiny_srvgg_weights(tmp_path / 'tiny.pth')
    out = small_fs / 'results'
    args = ['-i', str(inputs), '-o', str(out), '--model_path', str(weights), '--no-winograd', '--offline']
    assert infer(args) == 0
    one_output = (out / 'img0_out.png').stat().st_size
    first_two = {n: (out / f'img{n}_out.png').read_bytes() for n in (0, 1)}
    for i in (2, 3):
        (out / f'img{i}_out.png').unlink()
    ballast = fill_leaving(small_fs, one_output // 2)
    capsys.readouterr()
    assert infer(args + ['--skip-existing']) == 2
    err = capsys.readouterr().err
    assert re.search(r'error: cannot write \S*img2_out\.png: No space left on device', err), err
    assert '--skip-existing' in err and 'Traceback' not in err
    assert sorted(p.name for p in out.iterdir()) == ['img0_out.png', 'img1_out.png']  # nothing partial
    ballast.unlink()  # space freed
    assert infer(args + ['--skip-existing']) == 0
    assert '2 of 4 images written' in capsys.readouterr().out and '(2 existed already)'
    assert all((out / f'img{n}_out.png').read_bytes() == first_two[n] for n in (0, 1))
    assert sorted(p.name for p in out.iterdir()) == [f'img{i}_out.png' for i in range(4)]


def test_full_disk_extract_subimages_stops_and_a_rerun_does_the_rest(small_fs, tmp_path, astronaut_bgr):
    from realesrgan_plugin.core.atomic import DiskWriteError
    from realesrgan_plugin.core.img_io import write_image
    from realesrgan_plugin.prep import extract_subimages

    src = tmp_path / 'src'
    for i in range(6):
        write_image(src / f'p{i}.png', astronaut_bgr[64 * i : 64 * i + 96, :96])
    reference = tmp_path / 'ref'
    extract_subimages(src, reference, crop_size=48, step=48, n_thread=1)
    one_image = sum(p.stat().st_size for p in reference.glob('p0_*'))
    out = small_fs / 'crops'
    ballast = fill_leaving(small_fs, int(one_image * 2.5))
    with pytest.raises(DiskWriteError, match=r'cannot write .*(crops|jsonl).*No space left on device'):
        extract_subimages(src, out, crop_size=48, step=48, n_thread=1)
    assert not [p for p in out.iterdir() if p.name.startswith('.')]  # no temporary files
    ballast.unlink()
    report = extract_subimages(src, out, crop_size=48, step=48, n_thread=1)
    assert report.skipped >= 1 and report.done == 6 - report.skipped and not report.failed
    assert {p.name: p.read_bytes() for p in out.iterdir()} == {p.name: p.read_bytes() for p in reference.iterdir()}


def test_full_disk_lmdb_stops_with_one_error_and_a_rerun_writes_the_rest(small_fs, tmp_path):
    from realesrgan_plugin.core.atomic import DiskWriteError
    from realesrgan_plugin.core.img_io import write_image
    from realesrgan_plugin.prep import create_lmdb
    from realesrgan_plugin.prep.lmdb_writer import read_lmdb_images

    src = tmp_path / 'src'
    for i in range(12):
        write_image(src / f'n{i:02d}.png', noise_image(96, seed=i))
    lmdb_path = small_fs / 'train.lmdb'
    ballast = fill_leaving(small_fs, 200_000)
    with pytest.raises(DiskWriteError, match=r'cannot write .*train\.lmdb.*(No space left|Input/output error)'):
        create_lmdb(src, lmdb_path, n_thread=1, batch=2, initial_map_size=8 << 20)
    assert not (lmdb_path / 'meta_info.txt').exists()  # not complete: no final meta_info
    ballast.unlink()
    report = create_lmdb(src, lmdb_path, n_thread=1, batch=2, initial_map_size=8 << 20, verify=True)
    assert report.skipped >= 2 and report.done == 12 - report.skipped and not report.failed
    stored = dict(read_lmdb_images(lmdb_path))
    assert sorted(stored) == [f'n{i:02d}' for i in range(12)]


def test_full_disk_video_names_the_output_and_keeps_the_old_one(small_fs, tmp_path):
    from realesrgan_plugin.core.atomic import DiskWriteError
    from realesrgan_plugin.inference.video import upscale_video

    from test_video import make_clip, upscale_x2

    clip = make_clip(tmp_path / 'in.mp4')
    out = small_fs / 'out.mp4'
    out.write_bytes(b'previous result')
    fill_leaving(small_fs, 1024)
    with pytest.raises(DiskWriteError, match=r'cannot write .*out\.mp4'):
        upscale_video(clip, out, upscale_x2, progress=False, codec='libx264', crf=0)
    assert out.read_bytes() == b'previous result'
    assert sorted(p.name for p in small_fs.iterdir()) == ['ballast', 'out.mp4']


@pytest.mark.filterwarnings('ignore::pytest.PytestUnhandledThreadExceptionWarning')
def test_full_disk_tensorboard_log_names_the_event_file(small_fs):
    from realesrgan_plugin.basicsr.train import tensorboard_event_file
    from realesrgan_plugin.core.atomic import DiskWriteError, NamingDiskErrors

    import numpy as np
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(small_fs / 'tb'))
    logger = NamingDiskErrors(writer, tensorboard_event_file(writer))
    fill_leaving(small_fs, 16384)
    with pytest.raises(DiskWriteError, match=r'cannot write .*events\.out\.tfevents'):
        for step in range(10000):
            logger.add_histogram('values', np.random.rand(2000), step)
        logger.flush()
    try:
        writer.close()
    except OSError:
        pass
