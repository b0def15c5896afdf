"""``realesrgan-convert-mm``: convert weights between BasicSR, MMEngine and mmagic layouts, glue only.

The flags are declared here, where nothing heavy is imported, so ``--help`` answers before torch
and MMEngine load; the conversion itself is ``realesrgan_plugin.mmengine.checkpoint``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from realesrgan_plugin.core.cli_errors import CliArgumentParser, help_or_entry

EXAMPLES = (
    'realesrgan-convert-mm work_dirs/x4/iter_1000.pth net_g_1000.pth --to basicsr --dst-d net_d_1000.pth',
    'realesrgan-convert-mm net_g_latest.pth mm_init.pth --to mmengine --net-d net_d_latest.pth',
)


def build_parser() -> argparse.ArgumentParser:
    """The flags of realesrgan-convert-mm (``--help`` and the real parse share them)."""
    parser = CliArgumentParser(
        prog='realesrgan-convert-mm',
        description='Convert Real-ESRGAN/Real-ESRNet weights between BasicSR, MMEngine (this plugin) and '
        'mmagic layouts. The source layout is detected.',
        examples=EXAMPLES,
    )
    parser.add_argument('src', help='checkpoint to read (BasicSR net_g/net_d, MMEngine or mmagic)')
    parser.add_argument('dst', help='file to write (generator file for --to basicsr)')
    parser.add_argument('--to', required=True, choices=('basicsr', 'mmengine'))
    parser.add_argument('--net-d', help='--to mmengine: a BasicSR net_d_*.pth to include as the discriminator')
    parser.add_argument('--dst-d', help='--to basicsr: where to write the discriminator ({"params": D})')
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return help_or_entry(argv, build_parser, 'realesrgan_plugin.mmengine.checkpoint:main')


if __name__ == '__main__':
    sys.exit(main())
