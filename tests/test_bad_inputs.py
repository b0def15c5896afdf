"""The bad-input corpus: every everyday mistake gets one line in the common style, the right exit
code, no traceback, and leaves the files on disk as they were (inputs unchanged, no partial
outputs). docs/errors.md lists these cases with the message each one gives.

The CLIs are called through their ``main`` (what the console scripts run); the interrupt cases run
a real process and send it a real signal.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from realesrgan_plugin.archs.srvgg_arch import SRVGGNetCompact
from realesrgan_plugin.archs.unet_discriminator_arch import UNetDiscriminatorSN
from realesrgan_plugin.core.img_io import read_image, write_image
from realesrgan_plugin.inference import cli, zoo

import numpy as np
import pytest
import torch
from conftest import ctrl_c_reaches_child

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


class ReleaseServer(http.server.BaseHTTPRequestHandler):
    """A loopback stand-in for the release host that fails the way the real one can: ``/404/``
    answers 404, ``/close/`` drops the connection without a response, ``/wrong/`` serves bytes
    that are not the release file (their sha256 differs)."""

    def do_GET(self):  # noqa: N802 (the stdlib's name)
        if self.path.startswith('/404/'):
            self.send_error(404)
        elif self.path.startswith('/wrong/'):
            body = b'not the release file ' * 4096
            self.send_response(200)
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        # '/close/': no response at all; the server closes the connection

    def log_message(self, *args):  # keep the test output quiet
        pass


@pytest.fixture()
def release_server():
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), ReleaseServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{server.server_address[1]}'
    server.shutdown()
    server.server_close()


DOWNLOAD_FAILURES = [('404', 'HTTP Error 404'), ('close', 'Remote end closed connection'), ('wrong', 'hash')]


@pytest.mark.parametrize(('how', 'why'), DOWNLOAD_FAILURES, ids=[c[0] for c in DOWNLOAD_FAILURES])
def test_failed_download_is_one_line_and_leaves_no_partial_file(work, capsys, monkeypatch, release_server, how, why):
    """Weights not cached and the download fails (the release URL points at a loopback server):
    one line naming the URL, the cache file and the fixes; nothing is left in the cache."""
    name = 'RealESRNet_x4plus'  # no packaged ncnn copy to fall back on
    url = f'{release_server}/{how}/{zoo.ZOO[name].filename}'
    monkeypatch.setitem(zoo.ZOO, name, dataclasses.replace(zoo.ZOO[name], url=url))
    cache = Path(os.environ['REALESRGAN_PLUGIN_CACHE'])
    cached_before = {p for p in cache.rglob('*') if 'kernels' not in p.parts}
    got, _, err = run_infer(capsys, '-i', 'in', '-n', name)
    assert got == 1
    line = one_error_line(_without_progress_bars(err))
    assert line.startswith(f'error: weights not available (-n {name}): Cannot download {url} into {cache}'), line
    assert why in line and f'save it by hand as {cache / zoo.ZOO[name].filename}' in line
    assert '--offline' in line and '--model_path' in line
    assert {p for p in cache.rglob('*') if 'kernels' not in p.parts} == cached_before  # no partial file
    assert not (work / 'results').exists()


def _without_progress_bars(err: str) -> str:
    """stderr less the download's progress bar (torch.hub's tqdm lines)."""
    return '\n'.join(ln for ln in err.replace('\r', '\n').splitlines() if '%|' not in ln)


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
    got, _, err = run_infer(capsys, '-i', 'in/rgba.png', '-o', 'alpha.jpg', '--model_path', 'tiny.pth', '-s', '2')
    assert got == 0 and read_image(work / 'alpha.png').shape == (64, 64, 4) and not (work / 'alpha.jpg').exists()
    assert 'note: .jpg cannot hold alpha' in err


def _start_slow_infer(work: Path) -> subprocess.Popen:
    """A real realesrgan-infer process busy on a big image (tiny tiles), to interrupt."""
    big = np.random.default_rng(0).integers(0, 255, (512, 512, 3), np.uint8)
    write_image(work / 'big' / 'x.png', big)
    argv = ['-m', 'realesrgan_plugin.inference.cli', '-i', 'big', '-o', 'out']
    argv += ['--model_path', 'tiny.pth', '-t', '16', '--batch-tiles', '1', '--no-winograd']
    return start_to_interrupt(argv, work)


def start_to_interrupt(python_args: list[str], cwd: Path) -> subprocess.Popen:
    """``python <python_args>`` on this checkout, one thread, output captured, Ctrl-C deliverable."""
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join([str(REPO), os.environ.get('PYTHONPATH', '')])}
    env['OMP_NUM_THREADS'] = '1'
    return subprocess.Popen(
        [sys.executable, *python_args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_reaches_child,
    )


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


# ---------------------------------------------------------------- realesrgan-train


def train_options(data: Path, stage: str = 'realesrnet', **top) -> dict:
    """The demo option file of ``stage`` pointed at ``data``, tiny, with top-level ``top`` changes."""
    import yaml

    opt = yaml.safe_load((REPO / 'options' / 'demo' / f'train_{stage}_x4_demo.yml').read_text())
    opt['datasets']['train']['dataroot_gt'] = str(data)
    opt['datasets'].pop('val', None)
    opt.pop('val', None)
    opt['path']['pretrain_network_g'] = None
    opt['gt_size'], opt['queue_size'] = 32, 4
    opt['datasets']['train'].update(gt_size=32, crop_pad_size=64, batch_size_per_gpu=2)
    opt['network_g'].update(num_feat=4, num_conv=1)
    if 'network_d' in opt:
        opt['network_d']['num_feat'] = 4
    opt.update(top)
    return opt


@pytest.fixture()
def train_dir(tmp_path, astronaut_bgr, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))  # no VGG weights here
    monkeypatch.setenv('REALESRGAN_PLUGIN_OFFLINE', '1')
    monkeypatch.delenv('REALESRGAN_PLUGIN_VGG_WEIGHTS', raising=False)
    (tmp_path / 'gt').mkdir()
    for i in range(2):
        write_image(tmp_path / 'gt' / f'{i}.png', np.ascontiguousarray(astronaut_bgr[i * 8 : i * 8 + 96, :96]))
    return tmp_path


def write_yaml(path: Path, opt: dict) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(opt, sort_keys=False))
    return path


def run_train_cli(capsys, *argv: str) -> tuple[int, str]:
    from realesrgan_plugin.basicsr.train import main as train_main

    code = train_main(list(argv))
    return code, capsys.readouterr().err


def _typo(opt: dict) -> None:
    opt['gausian_noise_prob'] = 0.1


def _wrong_type(opt: dict) -> None:
    opt['noise_range'] = 'abc'


def _lo_above_hi(opt: dict) -> None:
    opt['datasets']['train']['blur_sigma'] = [3, 0.2]


def _kernel_prob(opt: dict) -> None:
    opt['datasets']['train']['kernel_prob'] = [0.5, 0.5, 0.5, 0, 0, 0]


def _missing_dataroot(opt: dict) -> None:
    opt['datasets']['train']['dataroot_gt'] = 'no/such/folder'


TRAIN_OPTION_CASES = [
    ('typo', _typo, ['gausian_noise_prob: unknown option', "did you mean 'gaussian_noise_prob'"]),
    ('wrong-type', _wrong_type, ['noise_range', "'abc'"]),
    ('lo-above-hi', _lo_above_hi, ['datasets.train.blur_sigma', 'lo <= hi']),
    ('kernel-prob', _kernel_prob, ['datasets.train.kernel_prob', 'sum to 1']),
    ('missing-dataroot', _missing_dataroot, ['datasets.train.dataroot_gt', 'no/such/folder']),
]


@pytest.mark.parametrize(('name', 'spoil', 'words'), TRAIN_OPTION_CASES, ids=[c[0] for c in TRAIN_OPTION_CASES])
def test_bad_training_option_is_one_line_before_anything_is_built(train_dir, capsys, name, spoil, words):
    opt = train_options(train_dir / 'gt')
    spoil(opt)
    opt_file = write_yaml(train_dir / 'bad.yml', opt)
    before = snapshot(train_dir)
    code, err = run_train_cli(capsys, '-opt', str(opt_file), '--root_path', str(train_dir))
    assert code == 2
    line = one_error_line(err)
    assert 'bad.yml' in line
    for word in words:
        assert word in line, line
    assert snapshot(train_dir) == before and not (train_dir / 'experiments').exists()


def test_every_option_problem_in_one_error(train_dir, capsys):
    opt = train_options(train_dir / 'gt')
    for spoil in (_typo, _wrong_type, _lo_above_hi, _kernel_prob):
        spoil(opt)
    code, err = run_train_cli(capsys, '-opt', str(write_yaml(train_dir / 'bad.yml', opt)))
    line = one_error_line(err)
    assert code == 2 and line.startswith('error: 4 invalid options (')
    assert all(k in line for k in ('gausian_noise_prob', 'noise_range', 'blur_sigma', 'kernel_prob'))


def test_missing_option_file_and_bad_yaml(train_dir, capsys):
    code, err = run_train_cli(capsys, '-opt', 'nope.yml')
    assert code == 2 and 'option file not found (-opt nope.yml)' in one_error_line(err)
    (train_dir / 'broken.yml').write_text('name: x\ndatasets: [unclosed\n')
    code, err = run_train_cli(capsys, '-opt', 'broken.yml')
    line = one_error_line(err)
    assert code == 2 and 'invalid YAML' in line and 'broken.yml line' in line
    assert not (train_dir / 'experiments').exists()


def test_stage2_without_vgg_weights_stops_at_start_up(train_dir, capsys):
    opt = train_options(train_dir / 'gt', stage='realesrgan', name='stage2')
    opt_file = write_yaml(train_dir / 'stage2.yml', opt)
    code, err = run_train_cli(capsys, '-opt', str(opt_file), '--root_path', str(train_dir))
    assert code == 2
    line = one_error_line(err)
    assert 'VGG19 weights' in line and 'train.perceptual_opt' in line
    assert 'vgg19-dcbb9e9d.pth' in line and 'REALESRGAN_PLUGIN_VGG_WEIGHTS' in line and '--no-perceptual' in line
    assert not (train_dir / 'experiments').exists() and not (train_dir / 'tb_logger').exists()


def test_stage2_with_no_perceptual_trains_and_logs_the_choice(train_dir, capsys):
    opt = train_options(train_dir / 'gt', stage='realesrgan', name='stage2np')
    opt['train']['total_iter'] = 1
    opt['logger'].update(print_freq=1, save_checkpoint_freq=1, use_tb_logger=False)
    opt_file = write_yaml(train_dir / 'stage2np.yml', opt)
    from realesrgan_plugin.basicsr.train import main as train_main

    assert train_main(['-opt', str(opt_file), '--root_path', str(train_dir), '--no-perceptual']) == 0
    logs = list((train_dir / 'experiments' / 'stage2np').glob('train_*.log'))
    assert logs and 'training without the perceptual (VGG19) loss' in logs[0].read_text()
    assert (train_dir / 'experiments' / 'stage2np' / 'models' / 'net_g_latest.pth').is_file()


def test_training_interrupt_names_the_last_checkpoint_and_the_resume_command(train_dir):
    opt = train_options(train_dir / 'gt', name='longrun')
    opt['train']['total_iter'] = 100000
    opt['logger'].update(print_freq=1, save_checkpoint_freq=2, use_tb_logger=False)
    opt_file = write_yaml(train_dir / 'longrun.yml', opt)
    argv = ['-m', 'realesrgan_plugin.train', '-opt', str(opt_file), '--root_path', str(train_dir)]
    proc = start_to_interrupt(argv, train_dir)
    states = train_dir / 'experiments' / 'longrun' / 'training_states'
    deadline = time.monotonic() + 240
    while not list(states.glob('*.state')) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    assert 'Traceback' not in err
    errors = [ln for ln in err.splitlines() if ln.startswith('error: ')]
    assert len(errors) == 1 and 'last checkpoint: iter' in errors[0], err[-3000:]
    assert f'realesrgan-train -opt {opt_file} --root_path {train_dir} --auto_resume' in errors[0]


def test_mmengine_training_interrupt_names_the_last_checkpoint_and_the_resume_command(train_dir):
    """realesrgan-train-mm, as the BasicSR entry: Ctrl-C -> exit 130, one line with the newest
    checkpoint and a resume command repeating the run's own arguments (its --work-dir included)."""
    from test_mmengine import tiny_options

    for name, size in (('gt', 32), ('lq', 8)):
        write_image(train_dir / 'val' / name / 'v.png', np.ascontiguousarray(cv2_area_resize(train_dir, size)))
    work_dir = train_dir / 'mm work'  # a space: the resume command must quote it
    options = [*tiny_options(train_dir, 100000, 'longrun'), 'model.perceptual_loss=None']
    config = str(REPO / 'options' / 'mmengine' / 'realesrnet_x4_demo.py')
    argv = [config, '--work-dir', str(work_dir), '--cfg-options', *options]
    proc = start_to_interrupt(['-m', 'realesrgan_plugin.train_mm', *argv], train_dir)
    deadline = time.monotonic() + 300
    while not (work_dir / 'iter_2.pth').is_file() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    time.sleep(0.5)  # the checkpoint hook names it in last_checkpoint just after writing it
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    assert 'Traceback' not in err
    errors = [ln for ln in err.splitlines() if ln.startswith('error: ')]
    assert len(errors) == 1, err[-3000:]
    latest = (work_dir / 'last_checkpoint').read_text().strip()
    assert errors[0].startswith(f'error: interrupted (Ctrl-C): last checkpoint: {latest}; resume with: ')
    resume = shlex.split(errors[0].split('; resume with: ', 1)[1])
    assert resume == ['realesrgan-train-mm', *argv, '--resume']


def test_an_interrupt_mmengine_turned_into_another_error_is_still_an_interrupt():
    """MMEngine's Config.pretty_text (run at every checkpoint) re-raises a Ctrl-C as a SyntaxError."""
    from realesrgan_plugin.core.cli_errors import Terminated
    from realesrgan_plugin.mmengine.train import interrupt_behind

    for stop in (KeyboardInterrupt(), Terminated('signal 15')):
        try:
            try:
                raise stop
            except BaseException:  # what mmengine.config.Config.pretty_text does
                raise SyntaxError('Failed to format the config file') from None
        except SyntaxError as err:
            assert interrupt_behind(err) is stop
    assert interrupt_behind(ValueError('plain')) is None


def cv2_area_resize(train_dir: Path, size: int) -> np.ndarray:
    """A validation image of ``size`` px from the first training photo (area-downscaled)."""
    import cv2

    return cv2.resize(read_image(train_dir / 'gt' / '0.png'), (size, size), interpolation=cv2.INTER_AREA)


# ---------------------------------------------------------------- realesrgan-video


def run_video(capsys, *argv: str) -> tuple[int, str]:
    from realesrgan_plugin.inference.video import main as video_main

    code = video_main(list(argv))
    return code, capsys.readouterr().err


VIDEO_CASES = [
    (['-i', 'nope.mp4', '-o', 'out.mp4'], 2, ['input video not found', '-i nope.mp4']),
    (['-i', 'junk.mp4', '-o', 'out.mp4', '--codec', 'h265000'], 2, ['not in this PyAV build', '--codec h265000']),
    (['-i', 'junk.mp4', '-o', 'out.mp4', '--crf', '99'], 2, ['crf', '--crf 99']),
    (['-i', 'junk.mp4', '-o', 'junk.mp4'], 2, ['the output is the input', '-o junk.mp4']),
    (['-i', 'junk.mp4', '-o', 'out.mp4', '-dn', '-1'], 2, ['denoise strength', '-dn -1']),
    (['-i', 'junk.mp4', '-o', 'out.mp4', '--tile-pad', '-1'], 2, ['tile padding', '--tile_pad -1']),
    (
        ['-i', 'junk.mp4', '-o', 'out.mp4', '-n', 'realesr-general-x4v3', '--offline'],
        1,
        ['cannot open video', '-i junk.mp4'],
    ),
]


@pytest.mark.parametrize(('argv', 'code', 'words'), VIDEO_CASES, ids=[' '.join(c[0][2:]) for c in VIDEO_CASES])
def test_video_mistakes_are_one_line(work, capsys, argv, code, words):
    (work / 'junk.mp4').write_bytes(b'not a video at all' * 10)
    before = snapshot(work)
    got, err = run_video(capsys, *argv, '--quiet')
    assert got == code
    line = one_error_line(err)
    for word in words:
        assert word in line, line
    assert snapshot(work) == before  # no output, no partial file
