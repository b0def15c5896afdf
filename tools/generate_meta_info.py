"""Write a meta-info file: one image path per line, relative to a root folder."""

from __future__ import annotations

import argparse
import sys

from realesrgan_plugin.core.cli_errors import CliArgumentParser
from realesrgan_plugin.prep.batch import default_workers, run_job
from realesrgan_plugin.prep.meta_info import generate_meta_info

EXAMPLES = (  # DF2K + multiscale, as in the official training recipe
    'python tools/generate_meta_info.py --input datasets/DF2K/DF2K_HR datasets/DF2K/DF2K_multiscale '
    '--root datasets/DF2K datasets/DF2K --meta_info datasets/DF2K/meta_info/meta_info_DF2Kmultiscale.txt --check',
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = CliArgumentParser(description=__doc__, examples=EXAMPLES)
    parser.add_argument('--input', nargs='+', required=True, help='image folder(s)')
    parser.add_argument(
        '--root', nargs='+', help='root of each input folder for the relative paths (default: its parent)'
    )
    parser.add_argument('--meta_info', required=True, help='output text file')
    parser.add_argument('--check', action='store_true', help='decode every image; leave out and report bad ones')
    parser.add_argument('--recursive', action='store_true', help='include sub-folders')
    parser.add_argument('--n_thread', type=int, default=default_workers(), help='worker processes for --check')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_job(
        lambda: generate_meta_info(
            args.input,
            args.meta_info,
            roots=args.root,
            check=args.check,
            recursive=args.recursive,
            n_thread=args.n_thread,
        )
    )


if __name__ == '__main__':
    sys.exit(main())
