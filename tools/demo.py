"""The end-to-end demo (``make demo``): CPU, offline, a few minutes.

Builds a small training set from scikit-image's bundled photos with the plugin's prep tools,
trains Real-ESRNet then Real-ESRGAN briefly through the BasicSR entry, imports the official
RealESRGAN_x4plus weights offline, degrades held-out photos with the plugin's synthesis and
restores them. Writes comparison.png, loss_curves.png and metrics.md to the output folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

from realesrgan_plugin.core.cli_errors import CliArgumentParser, run_cli
from realesrgan_plugin.demo.pipeline import DEMO_OPTIONS, DemoConfig, print_summary, run_demo


def parse_args(argv: list[str] | None = None) -> DemoConfig:
    parser = CliArgumentParser(description=__doc__)
    parser.add_argument('-o', '--out-dir', type=Path, default=Path('demo_out'), help='output folder (%(default)s)')
    parser.add_argument('--esrnet-iters', type=int, default=200, help='Real-ESRNet iterations (%(default)s)')
    parser.add_argument('--esrgan-iters', type=int, default=100, help='Real-ESRGAN iterations (%(default)s)')
    parser.add_argument('--options-dir', type=Path, default=DEMO_OPTIONS, help='tiny CPU option files')
    parser.add_argument('--skip-training', action='store_true', help='only the restoration of held-out photos')
    parser.add_argument('--threads', type=int, help='OMP threads of the training processes')
    args = parser.parse_args(argv)
    return DemoConfig(
        out_dir=args.out_dir,
        esrnet_iters=args.esrnet_iters,
        esrgan_iters=args.esrgan_iters,
        threads=args.threads,
        skip_training=args.skip_training,
        options_dir=args.options_dir,
    )


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    result = run_demo(cfg)
    print_summary(result)
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
