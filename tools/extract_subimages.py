"""Crop large images into overlapping sub-images for faster training IO (resumable)."""

from __future__ import annotations

import argparse
import sys

from realesrgan_plugin.core.cli_errors import CliArgumentParser
from realesrgan_plugin.prep.batch import default_workers, run_job
from realesrgan_plugin.prep.subimages import extract_subimages

EXAMPLES = (  # DF2K multiscale GT, as in the official recipe
    'python tools/extract_subimages.py --input datasets/DF2K/DF2K_multiscale '
    '--output datasets/DF2K/DF2K_multiscale_sub --crop_size 400 --step 200',
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = CliArgumentParser(description=__doc__, examples=EXAMPLES)
    parser.add_argument('--input', required=True, help='folder of source images (not recursive)')
    parser.add_argument('--output', required=True, help='folder for the crops; an existing one is resumed')
    parser.add_argument('--crop_size', type=int, default=480, help='crop size in pixels (default 480)')
    parser.add_argument('--step', type=int, default=240, help='sliding-window step (default 240)')
    parser.add_argument(
        '--thresh_size',
        type=int,
        default=0,
        help='add a last window flush with the border when more than this many pixels are left (default 0)',
    )
    parser.add_argument('--n_thread', type=int, default=default_workers(), help='worker processes (default: all CPUs)')
    parser.add_argument('--compression_level', type=int, default=3, help='PNG compression 0-9 (default 3)')
    parser.add_argument(
        '--strip-scale-suffix',
        '--strip_scale_suffix',
        dest='strip_scale_suffix',
        action='store_true',
        help='drop a DIV2K-style trailing "x2/x3/x4/x8" from names (0001x4.png -> 0001_s001.png)',
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_job(
        lambda: extract_subimages(
            args.input,
            args.output,
            crop_size=args.crop_size,
            step=args.step,
            thresh_size=args.thresh_size,
            n_thread=args.n_thread,
            compression_level=args.compression_level,
            strip_scale_suffix=args.strip_scale_suffix,
        )
    )


if __name__ == '__main__':
    sys.exit(main())
