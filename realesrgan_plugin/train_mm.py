"""``realesrgan-train-mm``: the MMEngine training entry, glue only.

The flags are declared here, where nothing heavy is imported, so ``--help`` answers before torch
and MMEngine load; training itself is ``realesrgan_plugin.mmengine.train``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from realesrgan_plugin.core.cli_errors import CliArgumentParser, help_or_entry

EXAMPLES = (
    'realesrgan-train-mm options/mmengine/realesrnet_x4_demo.py',
    'realesrgan-train-mm options/mmengine/realesrgan_x4plus.py --resume --amp',
    'realesrgan-train-mm options/mmengine/realesrnet_x4_demo.py --cfg-options train_cfg.max_iters=10',
)


def build_parser(cfg_options_action: type[argparse.Action] | None = None) -> argparse.ArgumentParser:
    """The flags of realesrgan-train-mm; ``cfg_options_action`` is MMEngine's ``DictAction`` when
    parsing for real (None for ``--help``, which must not import MMEngine)."""
    parser = CliArgumentParser(
        prog='realesrgan-train-mm',
        description='Train Real-ESRNet / Real-ESRGAN with MMEngine from a Python config.',
        examples=EXAMPLES,
    )
    parser.add_argument('config', help='MMEngine Python config, e.g. options/mmengine/realesrgan_x4plus.py')
    parser.add_argument(
        '--work-dir', help='where logs and checkpoints go (unset: config work_dir or ./work_dirs/<config>)'
    )
    parser.add_argument(
        '--resume',
        nargs='?',
        const='auto',
        default=None,
        help='resume from CKPT, or (no value) from the newest intact checkpoint in the work dir; '
        "'fresh-if-none': the same, but start from scratch when every checkpoint there is damaged",
    )
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision (AmpOptimWrapper)')
    extra = {'action': cfg_options_action} if cfg_options_action is not None else {}
    parser.add_argument('--cfg-options', nargs='+', help='override config keys: key=value ...', **extra)
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none', help='distributed launcher'
    )
    parser.add_argument('--local_rank', type=int, default=0, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return help_or_entry(argv, build_parser, 'realesrgan_plugin.mmengine.train:main')


if __name__ == '__main__':
    sys.exit(main())
