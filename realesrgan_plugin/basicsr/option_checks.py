"""Start-up checks of ``realesrgan-train``, run before BasicSR parses the file or anything is built.

* the option file exists and is valid YAML (one line naming the file and the line at fault);
* every option the plugin reads passes the schema (``core/options_schema.py``), all problems in
  one message;
* the stage-2 perceptual loss has its ImageNet VGG19 weights, or the run stops in one paragraph
  saying how to get them; ``--no-perceptual`` trains without that loss instead (as ``make demo``
  does offline), and the choice is logged.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from typing import Any

from realesrgan_plugin.core.cli_errors import UsageError
from realesrgan_plugin.core.options_schema import OptionsError, check_training_options

import yaml

NO_PERCEPTUAL_FLAGS = ('--no-perceptual', '--no_perceptual')


def split_plugin_flags(argv: Sequence[str]) -> tuple[list[str], bool]:
    """``argv`` without the plugin's own ``--no-perceptual`` (BasicSR's parser would refuse it)."""
    rest = [a for a in argv if a not in NO_PERCEPTUAL_FLAGS]
    return rest, len(rest) != len(argv)


def option_file_argument(argv: Sequence[str]) -> str | None:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument('-opt', default=None)
    known, _ = pre.parse_known_args(list(argv))
    return known.opt


def read_option_file(path: str) -> dict[str, Any]:
    """The YAML of ``path`` as a dict; a missing file or a syntax error is one usage error."""
    if not os.path.isfile(path):
        raise UsageError('option file not found', f'-opt {path}', 'give the path of a .yml option file')
    try:
        with open(path, encoding='utf-8') as f:
            opt = yaml.safe_load(f)
    except yaml.YAMLError as err:
        mark = getattr(err, 'problem_mark', None)
        where = f'{path} line {mark.line + 1}' if mark is not None else path
        problem = getattr(err, 'problem', None) or str(err)
        raise UsageError(f'invalid YAML: {problem}', where, 'fix the syntax at that line') from err
    if not isinstance(opt, Mapping):
        raise UsageError('the option file holds no mapping of options', path, 'see options/*.yml for the layout')
    return dict(opt)


def check_option_file(path: str) -> dict[str, Any]:
    """Read and validate ``path`` against the schema; every problem in one usage error."""
    opt = read_option_file(path)
    try:
        check_training_options(opt, source=path)
    except OptionsError as err:
        count = len(err.problems)
        raise UsageError(f'{count} invalid option{"s" if count > 1 else ""}', path, err.one_line()) from err
    return opt


def perceptual_weights_problem(opt: Mapping[str, Any], download: bool = True) -> str | None:
    """Why the perceptual loss of ``opt`` cannot run here (its VGG weights are missing and, with
    ``download``, could not be fetched now), or None. Run at start-up, so an offline machine learns
    it before any experiment folder exists rather than after the first checkpoint."""
    from realesrgan_plugin.losses.vgg_weights import VGGWeightsMissingError, resolve_vgg_weights

    percep = (opt.get('train') or {}).get('perceptual_opt')
    if not percep:
        return None
    try:
        resolve_vgg_weights(percep.get('vgg_type', 'vgg19'), percep.get('vgg_weights_path'), allow_download=download)
        return None
    except VGGWeightsMissingError as err:
        return str(err)


def choose_perceptual_loss(opt: dict, no_perceptual: bool, source: str) -> str | None:
    """Drop ``train.perceptual_opt`` when asked, or stop before any folder is made when its weights
    are neither on disk nor downloadable. Returns the line to log about the choice (None: no such loss)."""
    train = opt.get('train') or {}
    if not train.get('perceptual_opt'):
        return None
    if no_perceptual:
        train['perceptual_opt'] = None
        note = '--no-perceptual: training without the perceptual (VGG19) loss, as asked.'
        print(note, flush=True)
        return note
    problem = perceptual_weights_problem(opt)
    if problem is not None:
        raise UsageError(
            'the perceptual loss needs the ImageNet VGG19 weights, which are not on this machine',
            f'{source}: train.perceptual_opt',
            f'{problem} Or run with --no-perceptual to train without that loss (as make demo does offline).',
        )
    return 'Perceptual loss: the VGG19 ImageNet weights are on this machine.'
