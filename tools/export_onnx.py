"""Export a Real-ESRGAN generator (.pth / .safetensors / a model zoo name) to ONNX.

Batch, height and width are dynamic. ``--params-key auto`` (default) takes the EMA weights
when the file has them, as inference does; unlike the official script's inverted ``--params``
flag, the key you name is the key you get.
"""

from __future__ import annotations

import argparse
import json
import sys

from realesrgan_plugin.core.cli_errors import CliArgumentParser, run_cli
from realesrgan_plugin.inference.onnx_export import DEFAULT_OPSET, PARAMS_KEYS, export_pth_to_onnx

EXAMPLES = (
    'python tools/export_onnx.py -i RealESRGAN_x4plus.pth -o RealESRGAN_x4plus.onnx',
    'python tools/export_onnx.py -i RealESRGAN_x4plus -o x4plus.onnx --opset 17 --static-batch  # a model zoo name',
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = CliArgumentParser(description=__doc__, examples=EXAMPLES)
    parser.add_argument(
        '-i',
        '--input',
        required=True,
        help='generator weights (.pth checkpoint, .safetensors, ncnn .param) or a model zoo name',
    )
    parser.add_argument('-o', '--output', required=True, help='ONNX file to write')
    parser.add_argument(
        '--params-key',
        choices=PARAMS_KEYS,
        default='auto',
        help='which weights of a BasicSR checkpoint to export: params_ema (EMA), params (raw), '
        'auto = params_ema if present (default)',
    )
    parser.add_argument('--fp16', action='store_true', help='export float16 weights, input and output')
    parser.add_argument('--opset', type=int, default=DEFAULT_OPSET, help=f'ONNX opset (default {DEFAULT_OPSET})')
    parser.add_argument('--static-batch', action='store_true', help='fix the batch size to 1 (H and W stay dynamic)')
    parser.add_argument(
        '--act-type',
        choices=('relu', 'leakyrelu', 'prelu'),
        help='SRVGGNetCompact activation when the weights have no PReLU (default: detect / relu)',
    )
    parser.add_argument('--no-verify', action='store_true', help='skip the onnxruntime vs PyTorch check')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        summary = export_pth_to_onnx(
            args.input,
            args.output,
            params_key=args.params_key,
            fp16=args.fp16,
            opset=args.opset,
            dynamic_batch=not args.static_batch,
            act_type=args.act_type,
            verify=not args.no_verify,
        )
    except (FileNotFoundError, KeyError, ValueError, RuntimeError) as err:
        print(f'error: {err.args[0] if isinstance(err, KeyError) else err}', file=sys.stderr)
        return 1
    print(json.dumps(summary))
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
