"""Write sample Real-ESRGAN training pairs (LQ/GT PNGs + a contact sheet) for an option file or a folder."""

from __future__ import annotations

import sys

from realesrgan_plugin.basicsr.preview import preview_pairs
from realesrgan_plugin.core.cli_errors import CliArgumentParser, run_cli

EXAMPLES = (
    'python tools/synthesize_pairs.py --gt datasets/demo/gt --out pairs_preview --gt-size 128 --count 4',
    'python tools/synthesize_pairs.py --opt options/demo/train_realesrgan_x4_demo.yml --out pairs_preview',
)


def main(argv=None) -> None:
    parser = CliArgumentParser(description=__doc__, examples=EXAMPLES)
    parser.add_argument('--opt', help='BasicSR training option file (its datasets.train and degradation keys)')
    parser.add_argument('--gt', help='folder of HR images (instead of --opt; official x4plus settings)')
    parser.add_argument('--out', required=True, help='output folder for NNNNNN_lq.png / NNNNNN_gt.png')
    parser.add_argument('--count', type=int, default=16)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--scale', type=int, default=4, help='with --gt')
    parser.add_argument('--gt-size', type=int, default=256, help='with --gt')
    args = parser.parse_args(argv)
    if bool(args.opt) == bool(args.gt):
        parser.error('give exactly one of --opt and --gt')
    if args.opt:
        import yaml

        with open(args.opt, encoding='utf-8') as f:
            opt = yaml.safe_load(f)
    else:
        opt = {'scale': args.scale, 'gt_size': args.gt_size, 'datasets': {'train': {'dataroot_gt': args.gt}}}
    sheet = preview_pairs(opt, args.out, count=args.count, seed=args.seed, device=args.device)
    print(f'wrote {args.count} pairs and {sheet}')


if __name__ == '__main__':
    sys.exit(run_cli(lambda argv: main(argv) or 0))
