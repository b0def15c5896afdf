"""realesrgan-infer on a folder: good images written atomically, bad ones skipped and listed."""

from __future__ import annotations

import os

import realesrgan_plugin.basicsr  # noqa: F401  (compat + BasicSR registration before basicsr)
from realesrgan_plugin.archs.srvgg_arch import SRVGGNetCompact
from realesrgan_plugin.core.img_io import read_image, write_image
from realesrgan_plugin.inference.cli import main, output_path

import numpy as np
import pytest
import torch


@pytest.fixture()
def weights(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / 'tiny.pth'
    torch.save({'params_ema': SRVGGNetCompact(3, 3, num_feat=8, num_conv=2, upscale=2).state_dict()}, path)
    return path


@pytest.fixture()
def folder(tmp_path, astronaut_bgr):
    d = tmp_path / 'in'
    d.mkdir()
    small = astronaut_bgr[::16, ::16]
    write_image(d / 'a.png', small)
    write_image(d / 'b.jpg', small)
    write_image(d / 'gray16.png', (small[:, :, 0].astype(np.uint16) * 257))
    write_image(d / 'rgba.png', np.dstack([small, np.full(small.shape[:2], 200, np.uint8)]))
    (d / 'corrupt.png').write_bytes(b'\x89PNG\r\n\x1a\n garbage')
    (d / 'empty.jpg').write_bytes(b'')
    (d / 'notes.txt').write_text('not an image')
    return d


def test_folder_with_corrupt_files(tmp_path, folder, weights, capsys):
    out = tmp_path / 'out'
    code = main(['-i', str(folder), '-o', str(out), '--model_path', str(weights), '-s', '2'])
    assert code == 1
    err = capsys.readouterr().err
    assert 'corrupt.png' in err and 'empty.jpg' in err and '2 failed' in err
    names = sorted(os.listdir(out))
    assert names == ['a_out.png', 'b_out.jpg', 'gray16_out.png', 'rgba_out.png']  # no temp files left
    assert read_image(out / 'a_out.png').shape == (64, 64, 3)
    g = read_image(out / 'gray16_out.png')
    assert g.shape == (64, 64) and g.dtype == np.uint16
    assert read_image(out / 'rgba_out.png').shape == (64, 64, 4)


def test_never_overwrites_inputs(folder, weights, capsys):
    before = (folder / 'a.png').read_bytes()
    code = main(['-i', str(folder / 'a.png'), '-o', str(folder), '--suffix', '', '--model_path', str(weights)])
    assert code == 1
    assert 'would overwrite an input' in capsys.readouterr().err
    assert (folder / 'a.png').read_bytes() == before


def test_single_file_outscale_and_ext(tmp_path, folder, weights):
    out = tmp_path / 'o'
    code = main(['-i', str(folder / 'b.jpg'), '-o', str(out), '--model_path', str(weights), '-s', '3', '--ext', 'png'])
    assert code == 0
    assert read_image(out / 'b_out.png').shape == (96, 96, 3)


def test_missing_input_and_alpha_forces_png(tmp_path, weights):
    assert main(['-i', str(tmp_path / 'nope'), '--model_path', str(weights)]) == 2
    p = output_path(tmp_path / 'x.jpg', tmp_path, 'out', 'auto', has_alpha=True, is_16bit=False)
    assert p.name == 'x_out.png'
    assert output_path(tmp_path / 'x.jpg', tmp_path, 'out', 'auto', False, True).suffix == '.png'


def test_help_lists_official_and_new_flags(capsys):
    assert main(['--help']) == 0
    text = capsys.readouterr().out
    for flag in ('--model_path', '--suffix', '--tile_pad', '--pre_pad', '--face_enhance', '--fp32', '--half'):
        assert flag in text
    for flag in ('--alpha_upsampler', '--alpha_colour', '--ext', '-dn', '--bf16', '--batch-tiles', '-g'):
        assert flag in text
    assert '--tile-pad' in text and '--model-name' in text  # hyphen aliases of the official names
    assert '(default: 10)' in text and 'examples:' in text


def test_infer_and_video_share_model_flags_and_defaults():
    from realesrgan_plugin.inference.cli import build_parser
    from realesrgan_plugin.inference.video import build_parser as video_parser

    infer, video = build_parser(), video_parser()
    for flag in ('-n', '--model_name', '--model-name', '--model_path', '-dn', '--denoise_strength', '-t', '--tile_pad'):
        assert flag in infer._option_string_actions and flag in video._option_string_actions
    for dest in ('denoise_strength', 'tile', 'tile_pad', 'pre_pad', 'half', 'bf16', 'offline'):
        assert infer.get_default(dest) == video.get_default(dest), dest
    assert infer.get_default('denoise_strength') == 0.5


HELP_ENTRIES = (
    'realesrgan_plugin.inference.cli',
    'realesrgan_plugin.inference.video',
    'realesrgan_plugin.train',
    'realesrgan_plugin.train_mm',
    'realesrgan_plugin.convert_mm',
)
HELP_PROBE = """
import runpy, sys
sys.argv = ['x', '--help']
try:
    runpy.run_module({module!r}, run_name='__main__')
except SystemExit:
    pass
print('loaded:', [m for m in ('torch', 'torchvision', 'basicsr', 'mmengine', 'av', 'cv2') if m in sys.modules])
"""


@pytest.mark.parametrize('module', HELP_ENTRIES)
def test_help_has_defaults_and_examples_and_loads_no_framework(module):
    """`--help` answers before torch, BasicSR, MMEngine, PyAV or OpenCV are imported (how fast that
    is lives in bench/bench_cli_startup.py) and shows defaults and examples."""
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, 'PYTHONPATH': str(Path(__file__).resolve().parents[1])}
    out = subprocess.run(
        [sys.executable, '-c', HELP_PROBE.format(module=module)], capture_output=True, text=True, env=env, check=True
    ).stdout
    assert out.strip().splitlines()[-1] == 'loaded: []'
    assert 'examples:' in out and '--debug' in out
    if module != 'realesrgan_plugin.convert_mm':  # its flags are required or unset: no default to show
        assert '(default: ' in out


def test_alpha_colour_flag(tmp_path, astronaut_bgr, weights):
    """--alpha_colour raw feeds the hidden colour as the official does; the default ignores garbage there."""
    small = np.ascontiguousarray(astronaut_bgr[::16, ::16])
    alpha = np.zeros(small.shape[:2], np.uint8)
    alpha[8:24, 8:24] = 255
    outs = {}
    for hidden in (0, 255):
        img = np.dstack([np.where((alpha == 0)[:, :, None], hidden, small).astype(np.uint8), alpha])
        write_image(tmp_path / f'h{hidden}.png', img)
    for colour in ('auto', 'raw'):
        out = tmp_path / colour
        assert main(['-i', str(tmp_path), '-o', str(out), '--model_path', str(weights), '--alpha_colour', colour]) == 0
        outs[colour] = [read_image(out / f'h{hidden}_out.png') for hidden in (0, 255)]
    assert np.array_equal(*outs['auto'])
    assert not np.array_equal(*outs['raw'])
