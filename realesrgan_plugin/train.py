"""``realesrgan-train`` / ``python -m realesrgan_plugin.train -opt FILE.yml``: the BasicSR training entry.

Glue only: ``--help`` is answered here, before torch and BasicSR are imported (a second instead of
several); everything else goes to ``realesrgan_plugin.basicsr.train``, which BasicSR's own parser
and the plugin's start-up checks read.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from realesrgan_plugin.core.cli_errors import CliArgumentParser, help_or_entry

EXAMPLES = (
    'realesrgan-train -opt options/demo/train_realesrnet_x4_demo.yml',
    'realesrgan-train -opt options/demo/train_realesrgan_x4_demo.yml --no-perceptual',
    'realesrgan-train -opt options/train_realesrgan_x4plus.yml --auto_resume',
    'torchrun --nproc-per-node 2 -m realesrgan_plugin.train '
    '-opt options/train_realesrgan_x4plus.yml --launcher pytorch',
)


def help_parser() -> CliArgumentParser:
    """The flags BasicSR's ``parse_options`` and the plugin read, for ``--help`` only."""
    p = CliArgumentParser(
        prog='realesrgan-train',
        description='Train Real-ESRNet / Real-ESRGAN with BasicSR from an option file (options/*.yml).',
        examples=EXAMPLES,
    )
    p.add_argument('-opt', required=True, help='BasicSR option file (YAML); checked before anything is built')
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none', help='distributed launcher')
    p.add_argument('--auto_resume', action='store_true', help="continue from the experiment's newest checkpoint")
    p.add_argument('--force_yml', nargs='+', default=None, help='override options: key:subkey=value ...')
    p.add_argument('--local_rank', type=int, default=0, help='set by torch.distributed.launch')
    p.add_argument('--root_path', default='.', help='where experiments/ and tb_logger/ go')
    p.add_argument('--no-perceptual', action='store_true', help='train stage 2 without the VGG19 perceptual loss')
    return p


def main(argv: Sequence[str] | None = None) -> int:
    return help_or_entry(argv, help_parser, 'realesrgan_plugin.basicsr.train:main')


if __name__ == '__main__':
    sys.exit(main())
