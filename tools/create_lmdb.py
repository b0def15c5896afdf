"""Pack a folder of images (or the images a meta-info file lists) into a BasicSR-compatible LMDB.

Keys are the relative paths without their last extension; meta_info.txt lines read
"relpath (h,w,c) level". Resumable; --verify decodes every entry and compares it with its source.
"""

from __future__ import annotations

import argparse
import sys

from realesrgan_plugin.core.cli_errors import CliArgumentParser
from realesrgan_plugin.prep.batch import default_workers, run_job
from realesrgan_plugin.prep.lmdb_writer import create_lmdb

EXAMPLES = (  # GT and LQ of a paired set, one LMDB each
    'python tools/create_lmdb.py --input datasets/DIV2K/HR_sub --output datasets/DIV2K/HR_sub.lmdb --verify',
    'python tools/create_lmdb.py --input datasets/DIV2K/LR_X4_sub --output datasets/DIV2K/LR_X4_sub.lmdb --verify',
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = CliArgumentParser(description=__doc__, examples=EXAMPLES)
    parser.add_argument('--input', required=True, help='image folder (root of the meta-info paths)')
    parser.add_argument('--output', required=True, help='LMDB folder to create, ending in .lmdb')
    parser.add_argument('--meta_info', help='take the image list from this meta-info file (paths relative to --input)')
    parser.add_argument(
        '--compress_level',
        type=int,
        help='re-encode every image as PNG at this level 0-9 (as BasicSR does); default: store the files as they are',
    )
    parser.add_argument('--recursive', action='store_true', help='include sub-folders (keys keep the sub-path)')
    parser.add_argument('--verify', action='store_true', help='decode every entry and compare it with its source')
    parser.add_argument('--overwrite', action='store_true', help='rebuild an LMDB that is complete already')
    parser.add_argument('--n_thread', type=int, default=default_workers(), help='worker processes reading images')
    parser.add_argument('--batch', type=int, default=1000, help='images per write transaction (default 1000)')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_job(
        lambda: create_lmdb(
            args.input,
            args.output,
            meta_info=args.meta_info,
            compress_level=args.compress_level,
            n_thread=args.n_thread,
            recursive=args.recursive,
            verify=args.verify,
            overwrite=args.overwrite,
            batch=args.batch,
        )
    )


if __name__ == '__main__':
    sys.exit(main())
