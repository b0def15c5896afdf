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
from realesrgan_plugin.core.atomic import atomic_torch_save
from realesrgan_plugin.core.checkpoint import (
    ResumeError,
    newest_intact_checkpoint,
    training_states_newest_first,
    verify_checkpoint,
)

import pytest
import torch
from conftest import mounted_tmpfs
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


@pytest.fixture(scope='module')
def mm_uninterrupted(data_root, tmp_path_factory) -> Path:  # noqa: F811
    """MMEngine Real-ESRNet, 4 iterations, checkpoints at 2 and 4."""
    from test_mmengine import CONFIGS, tiny_options
    from test_mmengine import train as mm_train

    work = tmp_path_factory.mktemp('mm_straight')
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        mm_train(CONFIGS / 'realesrnet_x4_demo.py', work, tiny_options(data_root, 4, 'mm_a'))
    finally:
        torch.set_num_threads(threads)
    return work


def test_mmengine_resume_skips_a_damaged_newest_checkpoint(mm_uninterrupted, data_root, tmp_path, capsys):  # noqa: F811
    """Truncate the checkpoint ``last_checkpoint`` names: --resume warns once naming it, sets it
    aside, resumes from iter_2 and ends with the uninterrupted run's weights. No intact one left:
    one error line; a damaged file named by --resume: an error naming it."""
    from realesrgan_plugin.mmengine.checkpoint import load_checkpoint_file

    from test_mmengine import CONFIGS, tiny_options, train_main
    from test_mmengine import train as mm_train

    work = tmp_path / 'work'
    work.mkdir()
    for step in (2, 4):
        shutil.copy(mm_uninterrupted / f'iter_{step}.pth', work / f'iter_{step}.pth')
    (work / 'last_checkpoint').write_text(str(work / 'iter_4.pth'))
    truncate(work / 'iter_4.pth')
    config = CONFIGS / 'realesrnet_x4_demo.py'
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        capsys.readouterr()
        mm_train(config, work, tiny_options(data_root, 4, 'mm_b'), '--resume')
        warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith('WARNING: --resume')]
        assert len(warnings) == 1 and 'iter_4.pth' in warnings[0], warnings
        assert (work / 'iter_4.pth.corrupt').is_file()
        straight, again = (
            load_checkpoint_file(mm_uninterrupted / 'iter_4.pth'),
            load_checkpoint_file(work / 'iter_4.pth'),
        )
        assert again['message_hub']['runtime_info']['iter'] == 3
        for key, value in straight['state_dict'].items():
            assert torch.equal(value, again['state_dict'][key]), key

        for step in (2, 4):
            truncate(work / f'iter_{step}.pth')

        def train_exit_code(*flags: str) -> int:
            return train_main(
                [str(config), '--work-dir', str(work), *flags, '--cfg-options', *tiny_options(data_root, 4, 'mm_c')]
            )

        assert train_exit_code('--resume') == 2
        err = capsys.readouterr().err
        assert re.search(r'^error: --resume: no intact checkpoint left in .*fresh-if-none', err, re.M), err
        assert train_exit_code('--resume', str(work / 'iter_4.pth.corrupt')) == 2
        assert re.search(r"^error: Cannot load checkpoint '.*iter_4\.pth\.corrupt'", capsys.readouterr().err, re.M)
    finally:
        torch.set_num_threads(threads)


# ============================================================================ full disk, real filesystem


@pytest.fixture
def small_fs(tmp_path):
    """A real 2 MiB tmpfs."""
    with mounted_tmpfs(tmp_path / 'small_fs') as mount_point:
        yield mount_point


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


FILE_SIZE_LIMIT = """
import resource, signal, sys
import numpy as np
from realesrgan_plugin.core.atomic import DiskWriteError
from realesrgan_plugin.core.img_io import write_image
target = sys.argv[1]
write_image(target, np.zeros((8, 8, 3), np.uint8))
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write then fails with EFBIG instead of killing us
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
try:
    write_image(target, np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8))
except DiskWriteError as err:
    print(err)
"""


def test_file_size_limit_without_root_names_the_target_and_keeps_the_old_file(tmp_path):
    """The same fault where no filesystem can be mounted: RLIMIT_FSIZE in a child process."""
    target = tmp_path / 'out.png'
    proc = subprocess.run(
        [sys.executable, '-c', FILE_SIZE_LIMIT, str(target)], env=_env(), capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert re.search(r'cannot write .*out\.png: File too large', proc.stdout), proc.stdout
    import cv2

    assert cv2.imread(str(target)).shape == (8, 8, 3)  # the previous image
    assert sorted(p.name for p in tmp_path.iterdir()) == ['out.png']


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
    assert '--skip_existing' in err and 'Traceback' not in err
    assert sorted(p.name for p in out.iterdir()) == ['img0_out.png', 'img1_out.png']  # nothing partial
    ballast.unlink()  # space freed
    assert infer(args + ['--skip-existing']) == 0
    summary = capsys.readouterr().out
    assert '2 of 4 images written' in summary and '2 output exists (--skip_existing)' in summary, summary
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


@pytest.mark.filterwarnings('error::pytest.PytestUnhandledThreadExceptionWarning')
def test_full_disk_tensorboard_log_names_the_event_file(small_fs):
    """The BasicSR host's tensorboard logger: the error names the event file, and tensorboard's
    writer thread, which dies of the same error, prints no traceback of its own."""
    from realesrgan_plugin.core.atomic import (
        DiskWriteError,
        NamingDiskErrors,
        quiet_writer_thread_disk_errors,
        tensorboard_event_file,
    )

    import numpy as np
    from torch.utils.tensorboard import SummaryWriter

    quiet_writer_thread_disk_errors()  # as the training entries do (here over pytest's own hook)
    writer = SummaryWriter(str(small_fs / 'tb'))
    logger = NamingDiskErrors(writer, tensorboard_event_file(writer))
    fill_leaving(small_fs, 16384)
    with pytest.raises(DiskWriteError, match=r'cannot write .*events\.out\.tfevents'):
        for step in range(10000):
            logger.add_histogram('values', np.random.rand(2000), step)
        logger.flush()
    try:
        writer.close()  # joins the dead writer thread: its excepthook has run by now
    except OSError:
        pass


# ============================================================================ the Winograd kernel cache


@pytest.fixture
def fresh_kernel_cache(tmp_path, monkeypatch):
    """An empty plugin cache for this test; afterwards the session's cache (and kernels) again."""
    from realesrgan_plugin.inference import winograd as wg
    from realesrgan_plugin.inference import zoo

    cache = tmp_path / 'cache'
    monkeypatch.setenv(zoo.CACHE_ENV, str(cache))
    wg.load_kernels.cache_clear()
    yield cache
    monkeypatch.undo()
    wg.load_kernels.cache_clear()


def kernel_files(cache: Path) -> list[str]:
    folder = cache / 'kernels'
    return (
        sorted(p.name.split('-')[0] + p.name[p.name.index('.') :] for p in folder.iterdir()) if folder.is_dir() else []
    )


def session_library() -> tuple[Path, Path]:
    from realesrgan_plugin.inference import winograd as wg

    wg.load_kernels.cache_clear()  # load (or build) from the cache the environment names now
    if not wg.available():
        pytest.skip('Winograd kernels unavailable here (no C compiler or a failed build)')
    library = wg._library_path(wg._compiler())
    return library, wg._stamp_path(library)


def test_truncated_cached_library_is_rebuilt_not_loaded(tmp_path, monkeypatch, caplog):
    from realesrgan_plugin.inference import winograd as wg
    from realesrgan_plugin.inference import zoo

    library, stamp = session_library()  # built and stamped in the session's cache
    cache = tmp_path / 'cache'
    (cache / 'kernels').mkdir(parents=True)
    shutil.copy(library, cache / 'kernels' / library.name)
    shutil.copy(stamp, cache / 'kernels' / stamp.name)
    truncate(cache / 'kernels' / library.name, 0.3)
    monkeypatch.setenv(zoo.CACHE_ENV, str(cache))
    wg.load_kernels.cache_clear()
    try:
        assert wg.available()
        assert 'does not match its stamp: rebuilding' in caplog.text
        assert wg._stamp_matches(cache / 'kernels' / library.name)
    finally:
        monkeypatch.undo()
        wg.load_kernels.cache_clear()


def fake_compiler(folder: Path, body: str) -> Path:
    """A ``$CC`` that logs each call to ``calls.log`` and then runs ``body`` (sh)."""
    script = folder / 'fake-cc'
    script.write_text(f'#!/bin/sh\necho called >> {folder}/calls.log\n{body}\n')
    script.chmod(0o755)
    return script


def test_failed_build_is_remembered_and_not_retried_for_a_day(fresh_kernel_cache, tmp_path, monkeypatch, caplog):
    from realesrgan_plugin.inference import winograd as wg

    monkeypatch.setenv('CC', str(fake_compiler(tmp_path, 'echo "fatal: no such target" >&2; exit 1')))
    assert not wg.available()
    assert 'fatal: no such target' in caplog.text
    wg.load_kernels.cache_clear()  # the next process
    caplog.clear()
    assert not wg.available()
    assert (tmp_path / 'calls.log').read_text().count('called') == 1
    assert 'not retried' in caplog.text and 'direct convolutions' in caplog.text
    assert kernel_files(fresh_kernel_cache) == ['winograd.so.failed', 'winograd.so.lock']


def test_library_that_crashes_fails_its_self_test_and_is_not_kept(fresh_kernel_cache, tmp_path, monkeypatch, caplog):
    """A library built for another CPU dies with SIGILL: here it dies in the self-test child, never in us."""
    from realesrgan_plugin.inference import winograd as wg

    trap = tmp_path / 'trap.c'
    trap.write_text('void wino_input(void) { __builtin_trap(); }\nvoid wino_output(void) {}\n')
    real_cc = shutil.which('cc') or shutil.which('gcc')
    if real_cc is None:
        pytest.skip('needs a C compiler to build the crashing library')
    body = f'for out; do :; done\nexec {real_cc} -shared -fPIC {trap} -o "$out"'
    monkeypatch.setenv('CC', str(fake_compiler(tmp_path, body)))
    assert not wg.available()
    assert 'self-test' in caplog.text and 'signal' in caplog.text
    assert kernel_files(fresh_kernel_cache) == ['winograd.so.failed', 'winograd.so.lock']


def test_missing_source_falls_back_with_a_warning(fresh_kernel_cache, tmp_path, monkeypatch, caplog):
    from realesrgan_plugin.inference import Upsampler
    from realesrgan_plugin.inference import winograd as wg
    from realesrgan_plugin.inference.fast_rrdb import FastRRDBNet

    from basicsr.archs.rrdbnet_arch import RRDBNet

    monkeypatch.setattr(wg, 'SOURCE', tmp_path / 'gone' / 'winograd.c')
    assert not wg.available()
    assert 'winograd.c' in caplog.text and 'direct convolutions' in caplog.text
    net = RRDBNet(3, 3, scale=4, num_feat=8, num_block=1, num_grow_ch=4).eval()
    assert isinstance(Upsampler(net, 4).model, FastRRDBNet)


def test_no_compiler_falls_back_with_a_warning(fresh_kernel_cache, monkeypatch, caplog):
    from realesrgan_plugin.inference import winograd as wg

    monkeypatch.delenv('CC', raising=False)
    monkeypatch.setenv('PATH', str(fresh_kernel_cache))  # no cc, no gcc
    assert not wg.available()
    assert 'no C compiler' in caplog.text


@pytest.fixture
def read_only_cache(tmp_path):
    """A cache folder on a read-only filesystem (a tmpfs remounted ro)."""
    with mounted_tmpfs(tmp_path / 'ro_cache', size='1m', read_only=True) as folder:
        yield folder


def test_read_only_cache_falls_back_with_a_warning(read_only_cache, monkeypatch, caplog):
    from realesrgan_plugin.inference import winograd as wg
    from realesrgan_plugin.inference import zoo

    monkeypatch.setenv(zoo.CACHE_ENV, str(read_only_cache))
    wg.load_kernels.cache_clear()
    try:
        assert not wg.available()  # never an exception
        assert 'Read-only file system' in caplog.text and 'direct convolutions' in caplog.text
    finally:
        monkeypatch.undo()
        wg.load_kernels.cache_clear()


def test_cache_key_is_the_cpu_capability_and_flags_never_empty(monkeypatch):
    from realesrgan_plugin.inference import winograd as wg

    monkeypatch.setattr(wg, '_cpu_flags', lambda: '')  # a platform that lists no flags
    signature = wg._cpu_signature()
    assert torch.backends.cpu.get_cpu_capability() in signature and signature.strip()
    here = wg._library_path('cc')
    monkeypatch.setattr(torch.backends.cpu, 'get_cpu_capability', lambda: 'AVX512')
    assert wg._library_path('cc') != here  # another CPU never loads this one's -march=native build


CONCURRENT_BUILD = """
import logging, sys
logging.basicConfig(level=logging.INFO)
from realesrgan_plugin.inference import winograd
print('AVAILABLE', winograd.available(), flush=True)
"""


def test_two_processes_building_the_cache_at_once_end_with_one_valid_library(tmp_path):
    from realesrgan_plugin.inference import winograd as wg

    if wg._compiler() is None:
        pytest.skip('no C compiler: nothing to build')
    env = dict(_env(), REALESRGAN_PLUGIN_CACHE=str(tmp_path / 'cache'))
    procs = [
        subprocess.Popen(
            [sys.executable, '-c', CONCURRENT_BUILD], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0 and 'AVAILABLE True' in out, err[-3000:]
    assert sum('building the Winograd kernels' in err for _, err in outputs) == 1  # the lock: built once
    assert kernel_files(tmp_path / 'cache') == ['winograd.so', 'winograd.so.lock', 'winograd.so.stamp']


# ============================================================================ threads and fork


def test_one_upsampler_shared_by_four_threads_gives_the_serial_results():
    """4 threads x 8 calls on one Upsampler (tiled, Winograd where available, an out-of-memory
    fallback on the big images): every result equals the serial call's, settings unchanged."""
    from concurrent.futures import ThreadPoolExecutor

    from realesrgan_plugin.archs.srvgg_arch import SRVGGNetCompact
    from realesrgan_plugin.inference import Upsampler

    import numpy as np

    class OOMOnBigBatches(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net, self.refused = net, 0

        def forward(self, x):
            if x.shape[0] * x.shape[2] * x.shape[3] > 1200:
                self.refused += 1
                raise RuntimeError("DefaultCPUAllocator: can't allocate memory")
            return self.net(x)

    torch.manual_seed(0)
    net = SRVGGNetCompact(3, 3, num_feat=8, num_conv=2, upscale=4).eval()
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (20 + 7 * (i % 5), 24 + 5 * (i % 3), 3), dtype=np.uint8) for i in range(32)]
    shared = Upsampler(net, 4, tile=8, tile_pad=2, batch_tiles=4)
    plain = Upsampler(OOMOnBigBatches(net), 4, tile=8, tile_pad=2, batch_tiles=4)
    serial = [shared.enhance(img) for img in images]
    serial_plain = [plain.enhance(img) for img in images]

    def run(up, indices):
        return [(i, up.enhance(images[i])) for i in indices]

    for up, expected in ((shared, serial), (plain, serial_plain)):
        with ThreadPoolExecutor(4) as pool:
            chunks = pool.map(run, [up] * 4, [range(k, 32, 4) for k in range(4)])
            results = [r for chunk in chunks for r in chunk]
        assert len(results) == 32
        for i, out in results:
            assert np.array_equal(out, expected[i]), f'image {i} differs from the serial call'
        assert (up.tile, up.batch_tiles) == (8, 4)
    assert plain.model.refused > 0  # the fallback really ran, in threads too


FORKED_WORKER = """
import sys
import numpy as np
import torch
from realesrgan_plugin.archs.srvgg_arch import SRVGGNetCompact
from realesrgan_plugin.inference import Upsampler

torch.set_num_threads(2)
torch.manual_seed(0)
up = Upsampler(SRVGGNetCompact(3, 3, num_feat=8, num_conv=2, upscale=4).eval(), 4)
images = [np.random.default_rng(i).integers(0, 256, (40, 40, 3), dtype=np.uint8) for i in range(4)]
expected = [up.enhance(img) for img in images]  # the parent's OpenMP pool is up before the fork

class Frames(torch.utils.data.Dataset):
    def __len__(self):
        return len(images)
    def __getitem__(self, i):
        return torch.from_numpy(up.enhance(images[i]))

loader = torch.utils.data.DataLoader(Frames(), num_workers=2, multiprocessing_context='fork', batch_size=None)
for i, out in enumerate(loader):
    assert np.array_equal(out.numpy(), expected[i]), i
print('WINOGRAD', up.winograd, 'OK', flush=True)
"""


def test_forked_dataloader_worker_runs_inference_without_hanging():
    proc = subprocess.run(
        [sys.executable, '-c', FORKED_WORKER],
        env=dict(_env(), OMP_NUM_THREADS='2'),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0 and 'OK' in proc.stdout, proc.stderr[-3000:]
