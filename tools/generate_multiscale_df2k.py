"""Multiscale GT for DF2K (official recipe): every image at 0.75, 0.5 and 1/3 of its size and
with its shortest edge at 400 px (Lanczos), saved as {stem}T0.png .. {stem}T3.png. Resumable.
"""

from __future__ import annotations

import argparse
import sys

from realesrgan_plugin.core.cli_errors import CliArgumentParser
from realesrgan_plugin.prep.batch import default_workers, run_job
from realesrgan_plugin.prep.multiscale import generate_multiscale

EXAMPLES = (
    'python tools/generate_multiscale_df2k.py --input datasets/DF2K/DF2K_HR --output datasets/DF2K/DF2K_multiscale',
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = CliArgumentParser(description=__doc__, examples=EXAMPLES)
    parser.add_argument('--input', required=True, help='folder of HR images (not recursive)')
    parser.add_argument('--output', required=True, help='output folder; an existing one is resumed')
    parser.add_argument('--n_thread', '--num_threads', type=int, default=default_workers(), help='worker processes')
    parser.add_argument('--compression_level', type=int, default=3, help='PNG compression 0-9 (default 3)')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_job(
        lambda: generate_multiscale(
            args.input, args.output, n_thread=args.n_thread, compression_level=args.compression_level
        )
    )


if __name__ == '__main__':
    sys.exit(main())
