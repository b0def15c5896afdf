"""The bad-input corpus: every everyday mistake gets one line in the common style, the right exit
code, no traceback, and leaves the files on disk as they were (inputs unchanged, no partial
outputs). docs/errors.md lists these cases with the message each one gives.

The CLIs are called through their ``main`` (what the console scripts run); the interrupt cases run
a real process and send it a real signal.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from realesrgan_plugin.archs.srvgg_arch import SRVGGNetCompact
from realesrgan_plugin.archs.unet_discriminator_arch import UNetDiscriminatorSN
from realesrgan_plugin.core.img_io import read_image, write_image
from realesrgan_plugin.inference import cli

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` with its digest: what 'the files on disk' means in these tests."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob('*'))
        if p.is_file()
    }


def one_error_line(err: str) -> str:
    """The stderr of a failed command: exactly one line, in the common style, no traceback."""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert 'Traceback' not in err, err
    assert len(lines) == 1, err
    assert lines[0].startswith('error: '), err
    return lines[0]


@pytest.fixture(scope='module')
def cache(tmp_path_factory) -> Path:
    """A cache with no weights in it, shared by the cases (the CPU kernels compile once)."""
    return tmp_path_factory.mktemp('cache')


@pytest.fixture()
def work(tmp_path, astronaut_bgr, monkeypatch, cache):
    """A folder of inputs and a tiny random x2 SRVGGNetCompact; the weights cache is empty."""
    monkeypatch.setenv('REALESRGAN_PLUGIN_CACHE', str(cache))
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    torch.save({'params_ema': SRVGGNetCompact(3, 3, num_feat=8, num_conv=2, upscale=2).state_dict()}, 'tiny.pth')
    src = tmp_path / 'in'
    src.mkdir()
    small = np.ascontiguousarray(astronaut_bgr[::16, ::16])
    write_image(src / 'a.png', small)
    write_image(src / 'rgba.png', np.dstack([small, np.full(small.shape[:2], 200, np.uint8)]))
    write_image(src / 'deep.png', small.astype(np.uint16) * 257)
    return tmp_path


def run_infer(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# (flags, exit code, words the one line must contain): every flag checked before the model loads.
USAGE_CASES = [
    (['-n', 'RealESRGAN_x4plsu'], 2, ['unknown model', '-n RealESRGAN_x4plsu', 'did you mean RealESRGAN_x4plus']),
    (['-t', '-5'], 2, ['tile size', '-t -5']),
    (['--tile_pad', '-3'], 2, ['tile padding', '--tile_pad -3']),
    (['--tile-pad', '-3'], 2, ['tile padding', '--tile_pad -3']),
    (['-dn', '2'], 2, ['denoise strength', '-dn 2']),
    (['-s', '0'], 2, ['outscale', '-s 0']),
    (['-s', '-1'], 2, ['outscale', '-s -1']),
    (['--ext', 'xyz'], 2, ['no image encoder', '--ext xyz']),
    (['--model_path', 'missing.pth'], 2, ['weights file not found', '--model_path missing.pth']),
    (['-i', 'nope'], 2, ['input not found', '-i nope']),
    (['-o', 'in/a.png/sub'], 2, ['not writable', '-o in/a.png/sub']),
    (['-o', 'folder_as_file.png'], 2, ['image file but the input is a folder', '-o folder_as_file.png']),
    (['--alpha_upsampler', 'lanczos'], 2, ['unknown alpha upsampler', '--alpha_upsampler lanczos']),
    (['--bogus'], 2, ['unrecognized arguments: --bogus', 'realesrgan-infer']),
]


@pytest.mark.parametrize(('flags', 'code', 'words'), USAGE_CASES, ids=[' '.join(c[0]) for c in USAGE_CASES])
def test_bad_flag_is_one_line_before_the_model_loads(work, capsys, flags, code, words):
    before = snapshot(work)
    weights = [] if {'-n', '--model_path'} & set(flags) else ['--model_path', 'tiny.pth']
    argv = ['-i', 'in', '-o', 'out', *weights, *flags]
    got, _, err = run_infer(capsys, *argv)
    assert got == code
    line = one_error_line(err)
    for word in words:
        assert word in line, line
    assert snapshot(work) == before  # inputs unchanged, no output folder, no temp files


def _random_pth(path: Path) -> None:
    torch.save({'step': 3, 'names': ['a', 'b'], 'obj': Path('x')}, path)  # a Path: not allowed by weights_only


def _not_weights_safetensors(path: Path) -> None:
    from safetensors.torch import save_file

    save_file({'embedding': torch.zeros(4, 4)}, str(path))


def _discriminator(path: Path) -> None:
    torch.save({'params': UNetDiscriminatorSN(3, num_feat=4).state_dict()}, path)


WEIGHT_CASES = [
    ('random.pth', _random_pth, ['not a weights file', '--model_path random.pth']),
    ('text.safetensors', _not_weights_safetensors, ['not a Real-ESRGAN generator', 'text.safetensors']),
    ('net_d_5.pth', _discriminator, ['discriminator checkpoint', 'net_g_', 'net_d_5.pth']),
    ('garbage.pth', lambda p: p.write_bytes(b'not a zip file at all'), ['not a weights file', 'garbage.pth']),
]


@pytest.mark.parametrize(('name', 'make', 'words'), WEIGHT_CASES, ids=[c[0] for c in WEIGHT_CASES])
def test_bad_weights_file_is_one_line(work, capsys, name, make, words):
    make(work / name)
    before = snapshot(work)
    got, _, err = run_infer(capsys, '-i', 'in', '-o', 'out', '--model_path', name)
    assert got == 1
    line = one_error_line(err)
    for word in words:
        assert word in line, line
    assert 'weights_only=False' not in line
    assert snapshot(work) == before and not (work / 'out').exists()


def test_missing_official_weights_offline_is_one_line(work, capsys):
    got, _, err = run_infer(capsys, '-i', 'in', '-n', 'RealESRNet_x4plus', '--offline')
    assert got == 1
    line = one_error_line(err)
    assert 'weights not available' in line and '-n RealESRNet_x4plus' in line and 'RealESRNet_x4plus.pth' in line
    assert not (work / 'results').exists()


def test_missing_face_weights_is_one_line(work, capsys):
    before = snapshot(work)
    got, _, err = run_infer(capsys, '-i', 'in', '--model_path', 'tiny.pth', '--face_enhance', '--offline')
    assert got == 1
    line = one_error_line(err)
    assert 'face weights not available' in line and '--face_enhance' in line
    assert snapshot(work) == before


def test_empty_folder_exits_1_and_names_it(work, capsys):
    (work / 'empty').mkdir()
    (work / 'empty' / 'notes.txt').write_text('x')
    got, _, err = run_infer(capsys, '-i', 'empty', '--model_path', 'tiny.pth')
    assert got == 1
    line = one_error_line(err)
    assert 'no images' in line and '-i empty' in line and 'notes.txt' in line
    assert not (work / 'results').exists()


def test_skipped_items_are_named_in_the_summary(work, capsys):
    (work / 'in' / 'notes.txt').write_text('x')
    (work / 'in' / 'sub').mkdir()
    (work / 'in' / 'broken.png').write_bytes(b'\x89PNG\r\n\x1a\n garbage')
    before = snapshot(work / 'in')
    got, out, err = run_infer(capsys, '-i', 'in', '-o', 'out', '--model_path', 'tiny.pth', '-s', '2')
    assert got == 1  # one item failed
    summary = out.strip().splitlines()[-1]
    assert summary.startswith('3 of 4 images written to out')
    assert '1 failed (broken.png)' in summary
    assert '1 not an image file (notes.txt)' in summary and '1 subfolder (not searched) (sub)' in summary
    assert 'broken.png' in err and 'Traceback' not in err
    assert snapshot(work / 'in') == before
    assert sorted(os.listdir(work / 'out')) == ['a_out.png', 'deep_out.png', 'rgba_out.png']


def test_ext_jpg_for_alpha_and_16bit_says_once_what_it_writes(work, capsys):
    got, _, err = run_infer(capsys, '-i', 'in', '-o', 'out', '--model_path', 'tiny.pth', '--ext', 'jpg')
    assert got == 0
    notes = [ln for ln in err.splitlines() if ln.startswith('note:')]
    assert len(notes) == 1 and '.jpg' in notes[0] and 'PNG' in notes[0]
    assert sorted(os.listdir(work / 'out')) == ['a_out.jpg', 'deep_out.png', 'rgba_out.png']


def test_output_with_image_extension_is_one_file(work, capsys):
    got, _, _ = run_infer(capsys, '-i', 'in/a.png', '-o', 'big.jpg', '--model_path', 'tiny.pth', '-s', '2')
    assert got == 0
    assert read_image(work / 'big.jpg').shape == (64, 64, 3)
    assert not (work / 'big').exists()


def _start_slow_infer(work: Path) -> subprocess.Popen:
    """A real realesrgan-infer process busy on a big image (tiny tiles), to interrupt."""
    big = np.random.default_rng(0).integers(0, 255, (512, 512, 3), np.uint8)
    write_image(work / 'big' / 'x.png', big)
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join([str(REPO), os.environ.get('PYTHONPATH', '')])}
    env['OMP_NUM_THREADS'] = '1'
    argv = [sys.executable, '-m', 'realesrgan_plugin.inference.cli', '-i', 'big', '-o', 'out']
    argv += ['--model_path', 'tiny.pth', '-t', '16', '--batch-tiles', '1', '--no-winograd']
    return subprocess.Popen(argv, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize(('sig', 'code'), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_exits_130_143_and_leaves_no_partial_file(work, sig, code):
    proc = _start_slow_infer(work)
    deadline = time.monotonic() + 120
    while not (work / 'out').exists() and time.monotonic() < deadline:  # created once the model loaded
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert 'Traceback' not in err
    errors = [ln for ln in err.replace('\r', '\n').splitlines() if ln.startswith('error: ')]
    assert len(errors) == 1 and ('interrupted' in errors[0] or 'terminated' in errors[0]), err
    assert os.listdir(work / 'out') == []
