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
import sys
from collections.abc import Sequence

from realesrgan_plugin.core.atomic import DiskWriteError, as_disk_write_error, is_disk_error
from realesrgan_plugin.core.checkpoint import ResumeError, verify_checkpoint
from realesrgan_plugin.core.dist import normalize_local_rank_args, shutdown_distributed
from realesrgan_plugin.mmengine.checkpoint import load_checkpoint_file
from realesrgan_plugin.mmengine.runner import FRESH_IF_NONE, RealESRGANRunner, newest_intact_work_dir_checkpoint

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train Real-ESRNet / Real-ESRGAN with MMEngine')
    parser.add_argument('config', help='MMEngine Python config, e.g. options/mmengine/realesrgan_x4plus.py')
    parser.add_argument(
        '--work-dir', help='where logs and checkpoints go (default: config work_dir or ./work_dirs/<config>)'
    )
    parser.add_argument(
        '--resume',
        nargs='?',
        const='auto',
        default=None,
        help='resume from CKPT, or (no value) from the newest intact checkpoint in the work dir; '
        f'{FRESH_IF_NONE!r}: the same, but start from scratch when every checkpoint there is damaged',
    )
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision (AmpOptimWrapper)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys: key=value ...')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', type=int, default=0, help=argparse.SUPPRESS)
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
        raise FileNotFoundError(f'config file {args.config!r} does not exist')
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
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


def build_runner(cfg: Config):
    if cfg.get('runner_type') in (None, 'RealESRGANRunner'):
        return RealESRGANRunner.from_cfg(cfg)
    return RUNNERS.build(cfg)


def main(argv: Sequence[str] | None = None) -> None:
    try:
        runner = build_runner(build_config(parse_args(argv)))
        runner.train()
    except (ResumeError, DiskWriteError) as err:  # one line: the file at fault and what to do
        print(f'error: {err}', file=sys.stderr)
        raise SystemExit(2) from None
    except Exception as err:
        if not is_disk_error(err):
            raise
        # a writer of the host's own (loggers, visualisation backends) met a full disk
        target = getattr(err, 'filename', None) or 'the work dir'
        print(f'error: {as_disk_write_error(target, err)}', file=sys.stderr)
        raise SystemExit(2) from None
    shutdown_distributed()


if __name__ == '__main__':
    main()
