"""``realesrgan-infer``: upscale a file or a folder with the official inference flags.

Bad or unreadable files are skipped and listed at the end (exit status 1), each output is
written atomically, and an output path that is one of the inputs is refused.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from realesrgan_plugin.core.img_io import ImageReadError, is_image_file, read_image, write_image
from realesrgan_plugin.inference import zoo
from realesrgan_plugin.inference.alpha import ALPHA_COLOURS
from realesrgan_plugin.inference.upsampler import ALPHA_UPSAMPLERS

EXIT_FAILED_ITEMS = 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='realesrgan-infer', description=__doc__.splitlines()[0])
    p.add_argument('-i', '--input', default='inputs', help='input image or folder')
    p.add_argument('-n', '--model_name', default='RealESRGAN_x4plus', help=f'official model: {", ".join(zoo.ZOO)}')
    p.add_argument('-o', '--output', default='results', help='output folder')
    p.add_argument('-dn', '--denoise_strength', type=float, default=0.5, help='realesr-general-x4v3 only: 0..1')
    p.add_argument('-s', '--outscale', type=float, default=4, help='final upsampling scale')
    p.add_argument('--model_path', default=None, help='.pth / .safetensors / ncnn .param instead of -n')
    p.add_argument('--suffix', default='out', help='output name suffix (name_<suffix>.ext)')
    p.add_argument('-t', '--tile', type=int, default=0, help='tile size, 0 = no tiling')
    p.add_argument('--tile_pad', type=int, default=10, help='tile context / blend width')
    p.add_argument('--pre_pad', type=int, default=0, help='reflect padding at the bottom/right')
    p.add_argument('--face_enhance', action='store_true', help='restore faces with GFPGAN')
    prec = p.add_mutually_exclusive_group()
    prec.add_argument('--fp32', action='store_true', help='fp32 (the default; kept for the official flag)')
    prec.add_argument('--half', action='store_true', help='fp16 (GPU)')
    prec.add_argument('--bf16', action='store_true', help='bfloat16 (GPU, or CPUs with AVX-512 bf16 / AMX)')
    p.add_argument('--alpha_upsampler', default='realesrgan', choices=ALPHA_UPSAMPLERS)
    p.add_argument(
        '--alpha_colour',
        default='auto',
        choices=ALPHA_COLOURS,
        help='colour fed for fully transparent pixels: auto (stored if it continues the edge, else the '
        'nearest visible colour), bleed (always nearest), raw (as stored, like the official)',
    )
    p.add_argument('--ext', default='auto', help='auto (as the input) | png | jpg | ...')
    p.add_argument('-g', '--gpu-id', dest='gpu_id', type=int, default=None, help='GPU index (default: first)')
    p.add_argument('--device', default=None, help='torch device (cpu, cuda:1, mps); overrides -g')
    p.add_argument(
        '--no-winograd',
        dest='winograd',
        action='store_false',
        help='CPU: direct convs (bit-identical to BasicSR) instead of the faster Winograd ones',
    )
    p.add_argument('--batch-tiles', dest='batch_tiles', type=int, default=4, help='tiles per forward pass')
    p.add_argument('--cache-dir', dest='cache_dir', default=None, help=f'weights cache (default ${zoo.CACHE_ENV})')
    p.add_argument('--offline', action='store_true', help='never download weights')
    return p


def list_inputs(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_file() and is_image_file(p))
    if path.is_file():
        return [path]
    raise FileNotFoundError(f'input not found: {path}')


def output_path(src: Path, out_dir: Path, suffix: str, ext: str, has_alpha: bool, is_16bit: bool) -> Path:
    """Official naming (``name_suffix.ext``); alpha forces png, 16-bit into jpg falls back to png."""
    extension = src.suffix[1:] if ext == 'auto' else ext.lstrip('.')
    if has_alpha or (is_16bit and extension.lower() in ('jpg', 'jpeg', 'webp', 'bmp')):
        extension = 'png'
    stem = f'{src.stem}_{suffix}' if suffix else src.stem
    return out_dir / f'{stem}.{extension}'


def _device(args: argparse.Namespace) -> str | None:
    if args.device:
        return args.device
    if args.gpu_id is not None:
        return f'cuda:{args.gpu_id}'
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from realesrgan_plugin.inference import Upsampler, load_model

    from tqdm import tqdm

    try:
        inputs = list_inputs(Path(args.input))
    except FileNotFoundError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    dtype = 'fp16' if args.half else 'bf16' if args.bf16 else 'fp32'
    source = args.model_path or args.model_name
    dn = args.denoise_strength if Path(source).stem == 'realesr-general-x4v3' else None
    model, scale = load_model(source, cache_dir=args.cache_dir, allow_download=not args.offline, denoise_strength=dn)
    upsampler = Upsampler(
        model,
        scale,
        tile=args.tile,
        tile_pad=args.tile_pad,
        pre_pad=args.pre_pad,
        dtype=dtype,
        device=_device(args),
        batch_tiles=args.batch_tiles,
        alpha_upsampler=args.alpha_upsampler,
        alpha_colour=args.alpha_colour,
        winograd=None if args.winograd else False,
    )
    enhance = lambda img: upsampler.enhance(img, outscale=args.outscale)  # noqa: E731
    if args.face_enhance:
        from realesrgan_plugin.inference.face import FaceEnhancer

        faces = FaceEnhancer(upsampler, args.outscale, cache_dir=args.cache_dir, allow_download=not args.offline)
        enhance = faces.enhance

    out_dir = Path(args.output)
    protected = {os.path.realpath(p) for p in inputs}
    failures: list[tuple[Path, str]] = []
    for src in tqdm(inputs, desc='realesrgan-infer', unit='img'):
        try:
            img = read_image(src)
            has_alpha = img.ndim == 3 and img.shape[2] == 4
            dst = output_path(src, out_dir, args.suffix, args.ext, has_alpha, img.dtype != 'uint8')
            if os.path.realpath(dst) in protected:
                raise ValueError(f'output {dst} would overwrite an input; choose another -o or --suffix')
            write_image(dst, enhance(img))
        except (ImageReadError, ValueError, RuntimeError, OSError) as err:
            failures.append((src, str(err)))
            tqdm.write(f'skipped {src}: {err}', file=sys.stderr)
    done = len(inputs) - len(failures)
    print(f'{done} of {len(inputs)} images written to {out_dir}')
    if failures:
        print(f'{len(failures)} failed:', file=sys.stderr)
        for src, reason in failures:
            print(f'  {src}: {reason}', file=sys.stderr)
        return EXIT_FAILED_ITEMS
    return 0


if __name__ == '__main__':
    sys.exit(main())
