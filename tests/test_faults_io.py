"""More faults proven by injection (docs/faults.md): MMEngine's own writers and tensorboard on a
full disk, and a real I/O error (EIO) under every writer class (tests/test_faults_dist.py: the
distributed resume).

EIO comes two ways, both real: the kernel's own (an ext2 filesystem on a loop device, shut down
with the ``EXT4_IOC_SHUTDOWN`` ioctl: every later call on it fails with EIO, as when a disk goes
away; needs root), and a failing write after part of a file is out (``tests/eio_preload.c``,
compiled with the system's C compiler and loaded with ``LD_PRELOAD`` into a child process: the C
library's write calls on one folder fail with EIO after N bytes).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import realesrgan_plugin.basicsr  # noqa: F401  (compat + BasicSR registration before basicsr)
from realesrgan_plugin.core.atomic import DiskWriteError, atomic_torch_save

import pytest
import torch
from conftest import mounted_tmpfs
from test_faults import BASICSR_CHANGES, fill_leaving, mm_uninterrupted, noise_image, small_fs, truncate  # noqa: F401
from test_train import _env, assert_same_weights, data_root, demo_options, write_options  # noqa: F401

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / 'options' / 'mmengine'


def one_error_line(stderr: str) -> str:
    """The run's only ``error:`` line; no traceback of ours nor of a library's thread."""
    assert 'Traceback' not in stderr and 'Exception in thread' not in stderr, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith('error:')]
    assert len(errors) == 1, stderr[-3000:]
    return errors[0]


# ============================================================ MMEngine's own writers, full disk


@pytest.mark.filterwarnings('error::pytest.PytestUnhandledThreadExceptionWarning')
def test_full_disk_mmengine_writers_name_their_files(small_fs):  # noqa: F811
    """MMEngine's LocalVisBackend (scalars.json, the config copy), TensorboardVisBackend and the
    runner's log file, on a full tmpfs: each raises a DiskWriteError naming its own file, and
    tensorboard's writer thread prints no traceback of its own."""
    from realesrgan_plugin.core.atomic import quiet_writer_thread_disk_errors
    from realesrgan_plugin.mmengine.writers import name_disk_errors_of_log_files, name_disk_errors_of_visualizer

    from mmengine.config import Config
    from mmengine.logging import MMLogger
    from mmengine.visualization import Visualizer

    backends = [dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]
    visualizer = Visualizer(name='full_disk_writers', vis_backends=backends, save_dir=str(small_fs / 'vis'))
    name_disk_errors_of_visualizer(visualizer)
    quiet_writer_thread_disk_errors()  # as the training entries do (over pytest's own hook, for this test)
    visualizer.add_scalars({'loss': 1.0}, step=0)  # the backends create their files
    logger = MMLogger(name='full_disk_log', log_file=str(small_fs / 'run.log'))
    name_disk_errors_of_log_files(logger)
    logger.info('started')
    fill_leaving(small_fs, 0)

    local = visualizer.get_backend('LocalVisBackend')
    with pytest.raises(DiskWriteError, match=r'cannot write \S*vis/vis_data/scalars\.json: No space left on device'):
        for step in range(1, 10000):  # the file's last page fills first
            local.add_scalars({'loss': 1.0, 'psnr': 20.0}, step=step)
    with pytest.raises(DiskWriteError, match=r'cannot write \S*vis/vis_data/config\.py: No space left'):
        local.add_config(Config(dict(note='x' * 20000)))
    tensorboard = visualizer.get_backend('TensorboardVisBackend')
    with pytest.raises(DiskWriteError, match=r'cannot write \S*vis/vis_data/events\.out\.tfevents\.\S+: No space left'):
        for step in range(10000):
            tensorboard.add_scalars({f'v{i}': float(i) for i in range(64)}, step=step)
    with contextlib.suppress(DiskWriteError):
        tensorboard.close()  # joins the writer thread: its death has been reported (or silenced) by now
    with pytest.raises(DiskWriteError, match=r'cannot write \S*run\.log: No space left'):
        for _ in range(1000):
            logger.info('x' * 1000)
    for handler in logger.handlers:
        with contextlib.suppress(OSError):  # what it holds cannot reach the full disk
            handler.close()


TENSORBOARD_CONFIG = """
_base_ = [{base!r}]
visualizer = dict(
    type='Visualizer',
    vis_backends=[dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend', save_dir={tb!r})],
)
"""


def test_full_disk_under_mmengine_tensorboard_is_one_line_and_the_run_resumes(
    mm_uninterrupted,  # noqa: F811
    data_root,  # noqa: F811
    small_fs,  # noqa: F811
    tmp_path,
):
    """realesrgan-train-mm --resume with MMEngine's tensorboard backend on a full disk: exit 2 and
    one line naming the event file (tensorboard's writer thread prints nothing); the checkpoint is
    intact, and after freeing space the same command resumes from iter_2 and reaches the
    uninterrupted run's weights."""
    from realesrgan_plugin.mmengine.checkpoint import load_checkpoint_file

    from test_mmengine import tiny_options

    config = tmp_path / 'with_tensorboard.py'
    config.write_text(TENSORBOARD_CONFIG.format(base=str(CONFIGS / 'realesrnet_x4_demo.py'), tb=str(small_fs / 'tb')))
    work = tmp_path / 'work'
    work.mkdir()
    shutil.copy(mm_uninterrupted / 'iter_2.pth', work / 'iter_2.pth')
    (work / 'last_checkpoint').write_text(str(work / 'iter_2.pth'))
    cmd = [sys.executable, '-m', 'realesrgan_plugin.mmengine.train', str(config), '--work-dir', str(work), '--resume']
    cmd += ['--cfg-options', *tiny_options(data_root, 4, 'mm_tb')]
    ballast = fill_leaving(small_fs, 0)

    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    line = one_error_line(proc.stderr)
    assert re.fullmatch(rf'error: cannot write {re.escape(str(small_fs))}/tb/events\.out\.tfevents\.\S+: No space '
                        r'left on device \(free space and run again\)', line), line  # fmt: skip
    assert sorted(p.name for p in work.glob('*.pth')) == ['iter_2.pth']

    ballast.unlink()
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    straight, again = load_checkpoint_file(mm_uninterrupted / 'iter_4.pth'), load_checkpoint_file(work / 'iter_4.pth')
    for key, value in straight['state_dict'].items():
        assert torch.equal(value, again['state_dict'][key]), key


@pytest.fixture
def tb_logger_fs(tmp_path):
    """A 2 MiB tmpfs mounted where realesrgan-train keeps its tensorboard logs (<root>/tb_logger)."""
    with mounted_tmpfs(tmp_path / 'tb_logger') as mount_point:
        yield mount_point


def test_full_disk_under_basicsr_tensorboard_is_one_line(tb_logger_fs, data_root, tmp_path):  # noqa: F811
    """realesrgan-train with use_tb_logger on a full disk: exit 2 and one line naming the event
    file (tensorboard's writer thread prints nothing)."""
    opt = demo_options('realesrnet', data_root, 'tb_full', **{'train:total_iter': 2, 'logger:print_freq': 1})
    opt['logger']['use_tb_logger'] = True
    fill_leaving(tb_logger_fs, 0)
    cmd = [sys.executable, '-m', 'realesrgan_plugin.train', '-opt', str(write_options(opt, tmp_path))]
    proc = subprocess.run(
        [*cmd, '--root_path', str(tmp_path)], env=_env(), cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    line = one_error_line(proc.stderr)
    assert re.fullmatch(rf'error: cannot write {re.escape(str(tb_logger_fs))}/tb_full/events\.out\.tfevents\.\S+: '
                        r'No space left on device \(free space and run again\)', line), line  # fmt: skip


# ============================================================ a real I/O error (EIO)

EXT4_IOC_SHUTDOWN = 0x8004587D  # _IOR('X', 125, __u32)
EXT4_GOING_FLAGS_NOLOGFLUSH = 2


@pytest.fixture
def failing_disk(tmp_path):
    """(mount point, shut_down, remount): an ext2 filesystem on a loop device. ``shut_down()``
    makes every later call on it fail with EIO (the kernel's ext4 shutdown, used to test
    filesystems for a disk that goes away); ``remount()`` brings it back to check what is on it."""
    image, mount_point = tmp_path / 'disk.img', tmp_path / 'disk'
    mount_point.mkdir()
    with open(image, 'wb') as f:
        f.truncate(32 << 20)
    steps = [['mkfs.ext2', '-q', '-F', str(image)]]
    for step in steps:
        if shutil.which(step[0]) is None or subprocess.run(step, capture_output=True).returncode:
            pytest.skip(f'{step[0]} is not available here')
    loop = subprocess.run(['losetup', '-f', '--show', str(image)], capture_output=True, text=True)
    if loop.returncode:
        pytest.skip(f'no loop device here ({loop.stderr.strip()}): needs root')
    device = loop.stdout.strip()
    try:
        if subprocess.run(['mount', '-o', 'errors=continue', device, str(mount_point)], capture_output=True).returncode:
            pytest.skip('cannot mount an ext2 filesystem here (needs root)')

        def shut_down() -> None:
            subprocess.run(['sync', '-f', str(mount_point)], check=True)
            fd = os.open(mount_point, os.O_RDONLY)
            try:
                fcntl.ioctl(fd, EXT4_IOC_SHUTDOWN, struct.pack('I', EXT4_GOING_FLAGS_NOLOGFLUSH))
            finally:
                os.close(fd)

        def remount() -> None:
            subprocess.run(['umount', str(mount_point)], check=True)
            subprocess.run(['mount', device, str(mount_point)], check=True)

        yield mount_point, shut_down, remount
    finally:
        subprocess.run(['umount', '-l', str(mount_point)], capture_output=True)
        subprocess.run(['losetup', '-d', device], capture_output=True)


def test_disk_gone_eio_names_the_target_and_keeps_the_old_files(failing_disk):
    """The kernel's EIO (a filesystem shut down) under an image write and a checkpoint save: one
    DiskWriteError naming the target each; on the disk afterwards, the previous files as they
    were and no temporary file."""
    from realesrgan_plugin.core.img_io import write_image

    disk, shut_down, remount = failing_disk
    image, checkpoint = disk / 'out.png', disk / 'net_g_4.pth'
    write_image(image, noise_image(16))
    atomic_torch_save({'w': torch.zeros(4)}, checkpoint)
    before = {p.name: p.read_bytes() for p in (image, checkpoint)}
    shut_down()
    with pytest.raises(DiskWriteError, match=rf'^cannot write {re.escape(str(image))}: Input/output error'):
        write_image(image, noise_image(64))
    with pytest.raises(DiskWriteError, match=rf'^cannot write {re.escape(str(checkpoint))}: Input/output error'):
        atomic_torch_save({'w': torch.ones(1 << 16)}, checkpoint)
    remount()
    assert {p.name: p.read_bytes() for p in disk.iterdir() if p.is_file()} == before


EIO_CHILD = r"""
import json, os, sys
from pathlib import Path
import realesrgan_plugin.basicsr  # noqa: F401
import numpy as np, torch
from realesrgan_plugin.core.atomic import DiskWriteError, atomic_torch_save
from realesrgan_plugin.core.img_io import write_image
from realesrgan_plugin.inference.video import upscale_video
from realesrgan_plugin.prep import create_lmdb, extract_subimages

root = Path(sys.argv[1])
sys.path.insert(0, sys.argv[2])
from test_video import upscale_x2

noise = np.random.default_rng(0).integers(0, 256, (256, 256, 3), np.uint8)
crops, lmdb_path = root / 'subimages' / 'crops', root / 'lmdb' / 'train.lmdb'
writers = {  # name: (write into root/name/, bytes that reach the disk before the I/O error)
    'image': (lambda: write_image(root / 'image' / 'out.png', noise), 90000),
    'checkpoint': (lambda: atomic_torch_save({'w': torch.ones(1 << 16)}, root / 'checkpoint' / 'net_g_4.pth'), 90000),
    'lmdb': (lambda: create_lmdb(root / 'src', lmdb_path, n_thread=1, batch=2, initial_map_size=8 << 20), 90000),
    'subimages': (lambda: extract_subimages(root / 'src', crops, crop_size=48, step=48, n_thread=1), 90000),
    'video': (lambda: upscale_video(root / 'in.mp4', root / 'video' / 'out.mp4', upscale_x2, progress=False), 2000),
}
for name, (write, budget) in writers.items():
    os.environ['EIO_AFTER_BYTES'] = str(budget)
    os.environ['EIO_PATH'] = str(root / name) + '/'  # the shim starts a new byte budget for this folder
    try:
        write()
        print(json.dumps({name: None}))
    except DiskWriteError as err:
        print(json.dumps({name: [str(err), err.filename]}))
"""


@pytest.fixture(scope='module')
def eio_preload(tmp_path_factory) -> Path:
    """tests/eio_preload.c built with the system's C compiler (skipped, saying why, without one)."""
    cc = shutil.which('cc') or shutil.which('gcc')
    if cc is None or not sys.platform.startswith('linux'):
        pytest.skip('the EIO shim needs Linux and a C compiler (cc/gcc)')
    library = tmp_path_factory.mktemp('eio') / 'eio_preload.so'
    proc = subprocess.run(
        [cc, '-shared', '-fPIC', '-O2', '-o', str(library), str(REPO / 'tests' / 'eio_preload.c'), '-ldl'],
        capture_output=True,
        text=True,
    )
    if proc.returncode:
        pytest.skip(f'cannot build the EIO shim: {proc.stderr.strip()[:300]}')
    return library


def test_eio_mid_write_under_every_writer_names_the_target_and_keeps_the_old_file(eio_preload, tmp_path):
    """EIO after part of the file is out, under an atomic image write, a checkpoint save, the LMDB
    writer, the sub-image cropper (crops and journal) and the video writer: one DiskWriteError
    naming the target each, no temporary file, the previous file intact; the batch tools keep
    what they finished and a rerun does only the rest."""
    from realesrgan_plugin.core.img_io import write_image
    from realesrgan_plugin.prep import create_lmdb, extract_subimages
    from realesrgan_plugin.prep.lmdb_writer import read_lmdb_images

    from test_video import make_clip

    for i in range(12):
        write_image(tmp_path / 'src' / f'n{i:02d}.png', noise_image(96, seed=i))
    image, checkpoint = tmp_path / 'image' / 'out.png', tmp_path / 'checkpoint' / 'net_g_4.pth'
    video, lmdb_path = tmp_path / 'video' / 'out.mp4', tmp_path / 'lmdb' / 'train.lmdb'
    crops = tmp_path / 'subimages' / 'crops'
    write_image(image, noise_image(16))
    atomic_torch_save({'w': torch.zeros(4)}, checkpoint)
    make_clip(tmp_path / 'in.mp4')
    video.parent.mkdir()
    video.write_bytes(b'previous result')
    for folder in (lmdb_path.parent, crops.parent):
        folder.mkdir()
    before = {p: p.read_bytes() for p in (image, checkpoint, video)}

    env = dict(_env(), LD_PRELOAD=str(eio_preload))
    proc = subprocess.run(
        [sys.executable, '-c', EIO_CHILD, str(tmp_path), str(REPO / 'tests')],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = {k: v for line in proc.stdout.splitlines() if line.startswith('{') for k, v in json.loads(line).items()}
    assert all(results[name] is not None for name in ('image', 'checkpoint', 'lmdb', 'subimages', 'video')), results
    advice = r' \(the storage reported an I/O error: check the disk, or write elsewhere, and run again\)'
    for target in (image, checkpoint, video):
        message, filename = results[target.parent.name]
        assert filename == str(target), results
        assert re.fullmatch(rf'cannot write {re.escape(str(target))}: Input/output error{advice}', message), message
    for name, folder in (('lmdb', lmdb_path), ('subimages', crops)):
        assert results[name][1].startswith(str(folder)) and 'Input/output error' in results[name][0], results
    assert {p: p.read_bytes() for p in before} == before
    for folder in (image.parent, checkpoint.parent, video.parent, crops):  # no temporary file anywhere
        assert not [p.name for p in folder.iterdir() if p.name.startswith('.')], list(folder.iterdir())
    assert not (lmdb_path / 'meta_info.txt').exists()

    report = create_lmdb(tmp_path / 'src', lmdb_path, n_thread=1, batch=2, initial_map_size=8 << 20, verify=True)
    assert report.skipped >= 2 and report.done == 12 - report.skipped and not report.failed
    assert sorted(dict(read_lmdb_images(lmdb_path))) == [f'n{i:02d}' for i in range(12)]
    report = extract_subimages(tmp_path / 'src', crops, crop_size=48, step=48, n_thread=1)
    assert report.skipped >= 1 and report.done == 12 - report.skipped and not report.failed
    assert len(list(crops.glob('*.png'))) == 12 * 4
