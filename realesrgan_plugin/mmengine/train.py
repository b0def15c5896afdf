"""``realesrgan-train-mm CONFIG [--launcher none|pytorch|slurm] [--resume [CKPT]] [--cfg-options K=V ...]``

Trains a Real-ESRNet / Real-ESRGAN config under MMEngine's Runner (``RealESRGANRunner`` unless
the config names another ``runner_type``). Distributed: start one process per device with
``torchrun --nproc-per-node N -m realesrgan_plugin.mmengine.train CONFIG --launcher pytorch``
(or srun with ``--launcher slurm``); without CUDA the processes talk over gloo.
``--resume`` alone continues from the newest intact checkpoint in the work dir (a fresh start when
there is none), so a killed run is resumed by running the same command with ``--resume``. A
damaged newest checkpoint is moved aside as ``*.corrupt`` with one warning; when every one is
damaged, the run stops unless ``--resume fresh-if-none`` allows a fresh start.
"""

from __future__ import annotations

import argparse
import os
import os.path as osp
import shlex
import sys
from collections.abc import Sequence

from realesrgan_plugin.core.checkpoint import verify_checkpoint
from realesrgan_plugin.core.cli_errors import (
    EXIT_SIGINT,
    EXIT_SIGTERM,
    Terminated,
    UsageError,
    run_cli,
    training_errors_as_one_line,
)
from realesrgan_plugin.core.dist import normalize_local_rank_args, shutdown_distributed
from realesrgan_plugin.core.options_schema import OptionsError, check_synthesis_options
from realesrgan_plugin.mmengine.checkpoint import load_checkpoint_file
from realesrgan_plugin.mmengine.runner import FRESH_IF_NONE, RealESRGANRunner, newest_intact_work_dir_checkpoint
from realesrgan_plugin.train_mm import build_parser

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import find_latest_checkpoint


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = build_parser(DictAction)
    args = parser.parse_args(normalize_local_rank_args(argv if argv is not None else sys.argv[1:]))
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def _use_amp(cfg: Config) -> None:
    wrapper = cfg.optim_wrapper
    if wrapper.get('constructor') == 'MultiOptimWrapperConstructor':
        for sub in wrapper.values():
            if isinstance(sub, dict) and 'optimizer' in sub:
                sub['type'] = 'AmpOptimWrapper'
    else:
        wrapper['type'] = 'AmpOptimWrapper'


def build_config(args: argparse.Namespace) -> Config:
    if not osp.isfile(args.config):
        raise UsageError('config file not found', args.config, 'give an MMEngine .py config, e.g. options/mmengine/')
    try:
        cfg = Config.fromfile(args.config)
    except (SyntaxError, ImportError, KeyError, NameError, ValueError, TypeError) as err:
        raise UsageError(f'cannot read the config: {type(err).__name__}: {err}', args.config, 'fix the file') from err
    cfg.launcher = args.launcher
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    check_preprocessor_options(cfg, args.config)
    if args.amp:
        _use_amp(cfg)
    if args.resume in ('auto', FRESH_IF_NONE):
        latest = newest_intact_work_dir_checkpoint(cfg.work_dir, fresh_if_none=args.resume == FRESH_IF_NONE)
        if latest is not None:  # else: a fresh start (with the config's load_from, if any)
            cfg.resume, cfg.load_from = True, latest
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise FileNotFoundError(f'--resume checkpoint {args.resume!r} does not exist')
        verify_checkpoint(args.resume, load=load_checkpoint_file)  # named and damaged: an error, no fallback
        cfg.resume, cfg.load_from = True, args.resume
    return cfg


def check_preprocessor_options(cfg: Config, source: str) -> None:
    """The synthesis options of the data preprocessor, by the schema of realesrgan-train's options."""
    pre = (cfg.get('model') or {}).get('data_preprocessor') or {}
    if pre.get('type') != 'RealESRGANDataPreprocessor':
        return
    try:
        check_synthesis_options(pre.get('degradations'), pre.get('kernels'), source)
    except OptionsError as err:
        count = len(err.problems)
        prefixed = '; '.join(f'model.data_preprocessor.{path}: {msg}' for path, msg in err.problems)
        raise UsageError(f'{count} invalid option{"s" if count > 1 else ""}', source, prefixed) from err


def build_runner(cfg: Config):
    if cfg.get('runner_type') in (None, 'RealESRGANRunner'):
        return RealESRGANRunner.from_cfg(cfg)
    return RUNNERS.build(cfg)


def main(argv: Sequence[str] | None = None) -> int:
    """``realesrgan-train-mm``: one-line errors (traceback with ``--debug``); Ctrl-C / SIGTERM name
    the last checkpoint and the resume command (exit 130 / 143); a damaged checkpoint or a full
    disk is one line naming the file (exit 2)."""
    return run_cli(_train_command, argv)


def _train_command(argv: list[str]) -> int:
    debug = '--debug' in argv
    args = parse_args(argv)
    with training_errors_as_one_line('the work dir'):
        cfg = build_config(args)
        try:
            try:
                build_runner(cfg).train()
            except Exception as err:
                stop = interrupt_behind(err)
                if stop is None:
                    raise
                raise stop from err
        except KeyboardInterrupt as stop:
            terminated = isinstance(stop, Terminated)
            print(_interrupted_message(cfg.work_dir, argv, args.config, terminated), file=sys.stderr, flush=True)
            shutdown_distributed()
            if debug:
                raise
            return EXIT_SIGTERM if terminated else EXIT_SIGINT
    shutdown_distributed()
    return 0


def interrupt_behind(err: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C / SIGTERM an exception was raised while handling, if any. MMEngine 0.10.7's
    ``Config.pretty_text`` (run for every checkpoint's meta) turns any exception in its bare
    ``except:``, a Ctrl-C included, into ``SyntaxError: Failed to format the config file``: an
    interrupt landing there must still exit 130/143 with the resume line."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, KeyboardInterrupt):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def _interrupted_message(work_dir: str, argv: Sequence[str], config: str, terminated: bool) -> str:
    """One line: the last checkpoint and the command that continues from it (the same arguments,
    ``--work-dir`` and ``--cfg-options`` included, so the resumed run finds that checkpoint)."""
    how = 'terminated (SIGTERM)' if terminated else 'interrupted (Ctrl-C)'
    latest = find_latest_checkpoint(work_dir) if osp.isdir(work_dir) else None
    if latest is None:
        return f'error: {how}: no checkpoint was saved yet; rerun the same command to start again'
    resume = shlex.join(['realesrgan-train-mm', *_without_resume(argv, config), '--resume'])
    return f'error: {how}: last checkpoint: {latest}; resume with: {resume}'


def _without_resume(argv: Sequence[str], config: str) -> list[str]:
    """``argv`` less any ``--resume [VALUE]`` (and ``--debug``): the resume command adds its own."""
    out, args = [], list(argv)
    while args:
        arg = args.pop(0)
        if arg in ('--resume', '--debug'):
            if arg == '--resume' and args and not args[0].startswith('-') and args[0] != config:
                args.pop(0)
            continue
        if not arg.startswith('--resume='):
            out.append(arg)
    return out


if __name__ == '__main__':
    sys.exit(main())
