"""Write a paired meta-info file (``gt_path, lq_path`` per line), matching GT and LQ by name.

Files are matched by their path without extension; files without a partner are reported and
the exit code is non-zero.
"""

from __future__ import annotations

import argparse
import sys

from realesrgan_plugin.core.cli_errors import CliArgumentParser
from realesrgan_plugin.prep.batch import default_workers, run_job
from realesrgan_plugin.prep.meta_info import generate_meta_info_pairdata

EXAMPLES = (  # DIV2K sub-images with "0001x4_s001.png" LQ names
    'python tools/generate_meta_info_pairdata.py --input datasets/DIV2K/HR_sub datasets/DIV2K/LR_X4_sub '
    '--meta_info datasets/DIV2K/meta_info/pairs.txt --strip-scale-suffix --check --scale 4',
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = CliArgumentParser(description=__doc__, examples=EXAMPLES)
    parser.add_argument('--input', nargs=2, required=True, metavar=('GT_FOLDER', 'LQ_FOLDER'))
    parser.add_argument(
        '--root', nargs=2, metavar=('GT_ROOT', 'LQ_ROOT'), help='roots for the paths (default: parents)'
    )
    parser.add_argument('--meta_info', required=True, help='output text file')
    parser.add_argument(
        '--strip-scale-suffix',
        '--strip_scale_suffix',
        dest='strip_scale_suffix',
        action='store_true',
        help='match "0001x4" with "0001" and "0001x4_s001" with "0001_s001" (a DIV2K x2/x3/x4/x8 is ignored '
        'at the end of a name or before a sub-image index)',
    )
    parser.add_argument('--check', action='store_true', help='decode both images of every pair')
    parser.add_argument('--scale', type=int, help='with --check: require GT size == scale x LQ size')
    parser.add_argument('--recursive', action='store_true', help='include sub-folders')
    parser.add_argument('--n_thread', type=int, default=default_workers(), help='worker processes for --check')
    args = parser.parse_args(argv)
    if args.scale is not None and not args.check:
        parser.error('--scale needs --check (sizes are known only after decoding)')
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    gt_root, lq_root = args.root or (None, None)
    return run_job(
        lambda: generate_meta_info_pairdata(
            args.input[0],
            args.input[1],
            args.meta_info,
            gt_root=gt_root,
            lq_root=lq_root,
            strip_scale_suffix=args.strip_scale_suffix,
            check=args.check,
            scale=args.scale,
            recursive=args.recursive,
            n_thread=args.n_thread,
        )
    )


if __name__ == '__main__':
    sys.exit(main())
