"""``realesrgan-infer``: upscale a file or a folder with the official inference flags.

Every flag is checked before the model loads (range, encoder for --ext, a test write in the
output folder). Bad or unreadable files are skipped and listed at the end (exit status 1), each
output is written atomically, and an output path that is one of the inputs is refused. Errors
follow the one style of the plugin's tools (``realesrgan_plugin.core.cli_errors``). A full disk
stops the run with one error naming the file (exit status 2); ``--skip-existing`` then does only
the images whose outputs are missing (an output that exists is complete: writes are atomic).

The model flags (``add_model_arguments``, ``check_model_arguments``, ``load_upsampler``) are shared
with ``realesrgan-video``, so both tools take the same spellings and defaults.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from realesrgan_plugin.core.cli_errors import CliArgumentParser, FailedError, UsageError, quiet_opencv, run_cli
from realesrgan_plugin.inference import zoo

EXIT_FAILED_ITEMS = 1
DEFAULT_DENOISE = 0.5

EXAMPLES = (
    'realesrgan-infer -i inputs -o results -n RealESRGAN_x4plus',
    'realesrgan-infer -i photo.jpg -o photo_x2.png -s 2 -t 256',
    'realesrgan-infer -i inputs -n realesr-general-x4v3 -dn 0.3 --ext png',
)


def add_model_arguments(p: argparse.ArgumentParser, default_model: str, default_outscale: float | None) -> None:
    """The flags that choose and run the network, shared by realesrgan-infer and realesrgan-video."""
    p.add_argument('-n', '--model_name', default=default_model, help=f'official model: {", ".join(zoo.ZOO)}')
    p.add_argument('--model_path', default=None, help='.pth / .safetensors / ncnn .param instead of -n')
    p.add_argument(
        '-dn', '--denoise_strength', type=float, default=DEFAULT_DENOISE, help='realesr-general-x4v3 only: 0..1'
    )
    scale_help = 'final upsampling scale' if default_outscale else 'final upsampling scale (default: the model scale)'
    p.add_argument('-s', '--outscale', type=float, default=default_outscale, help=scale_help)
    p.add_argument('-t', '--tile', type=int, default=0, help='tile size, 0 = no tiling')
    p.add_argument('--tile_pad', type=int, default=10, help='tile context / blend width')
    p.add_argument('--pre_pad', type=int, default=0, help='reflect padding at the bottom/right')
    prec = p.add_mutually_exclusive_group()
    prec.add_argument('--fp32', action='store_true', help='fp32 (the default; kept for the official flag)')
    prec.add_argument('--half', '--fp16', dest='half', action='store_true', help='fp16 (GPU)')
    prec.add_argument('--bf16', action='store_true', help='bfloat16 (GPU, or CPUs with AVX-512 bf16 / AMX)')
    p.add_argument('-g', '--gpu-id', dest='gpu_id', type=int, default=None, help='GPU index (unset: the first)')
    p.add_argument('--device', default=None, help='torch device (cpu, cuda:1, mps); overrides -g')
    p.add_argument(
        '--no-winograd',
        dest='winograd',
        action='store_false',
        help='CPU: direct convs (bit-identical to BasicSR) instead of the faster Winograd ones',
    )
    p.add_argument('--batch-tiles', dest='batch_tiles', type=int, default=4, help='tiles per forward pass')
    p.add_argument(
        '--cache-dir',
        dest='cache_dir',
        default=None,
        help=f'weights cache (unset: ${zoo.CACHE_ENV} or ~/.cache/realesrgan_plugin)',
    )
    p.add_argument('--offline', action='store_true', help='never download weights')


def build_parser() -> argparse.ArgumentParser:
    description = 'Upscale an image or a folder of images with Real-ESRGAN (official flags; both spellings).'
    p = CliArgumentParser(prog='realesrgan-infer', description=description, examples=EXAMPLES)
    p.add_argument('-i', '--input', default='inputs', help='input image or folder')
    p.add_argument(
        '-o', '--output', default='results', help='output folder, or an image file name when the input is one image'
    )
    add_model_arguments(p, 'RealESRGAN_x4plus', 4.0)
    p.add_argument('--suffix', default='out', help='output name suffix (name_<suffix>.ext)')
    p.add_argument('--face_enhance', action='store_true', help='restore faces with GFPGAN')
    p.add_argument(
        '--alpha_upsampler',
        default='realesrgan',
        help='alpha channel upscaled by: realesrgan (the model) or an OpenCV resize (bicubic, bilinear, nearest)',
    )
    p.add_argument(
        '--alpha_colour',
        default='auto',
        help='colour fed for fully transparent pixels: auto (stored if it continues the edge, else the '
        'mean output over three fills from the visible pixels), fills (always the three fills), '
        'bleed (the nearest visible colour, one run), raw (as stored, like the official)',
    )
    p.add_argument('--ext', default='auto', help='auto (as the input) | png | jpg | ...')
    p.add_argument(
        '--skip_existing',
        action='store_true',
        help='skip inputs whose output exists (complete: writes are atomic), e.g. to finish after a full disk',
    )
    return p


def check_model_arguments(args: argparse.Namespace) -> None:
    """Every model flag in range and the weights named by a known name or an existing file."""
    if args.model_path:
        if not os.path.isfile(args.model_path):
            raise UsageError(
                'weights file not found', f'--model_path {args.model_path}', 'give a .pth, .safetensors or .param file'
            )
    elif args.model_name not in zoo.ZOO:
        close = difflib.get_close_matches(args.model_name, list(zoo.ZOO), n=1)
        fix = f'did you mean {close[0]}?' if close else f'choose one of {", ".join(zoo.ZOO)}'
        raise UsageError('unknown model', f'-n {args.model_name}', fix)
    if args.outscale is not None and not 0 < args.outscale <= 16:
        raise UsageError('outscale must be in (0, 16]', f'-s {args.outscale:g}', 'e.g. -s 2 or -s 4')
    if args.tile < 0:
        raise UsageError('tile size must be >= 0', f'-t {args.tile}', '0 turns tiling off; e.g. -t 256')
    if args.tile_pad < 0:
        raise UsageError('tile padding must be >= 0', f'--tile_pad {args.tile_pad}', 'the default is 10')
    if args.pre_pad < 0:
        raise UsageError('pre-padding must be >= 0', f'--pre_pad {args.pre_pad}', 'the default is 0')
    if args.batch_tiles < 1:
        raise UsageError('tiles per pass must be >= 1', f'--batch-tiles {args.batch_tiles}', 'the default is 4')
    if args.denoise_strength is not None and not 0 <= args.denoise_strength <= 1:
        raise UsageError('denoise strength must be in [0, 1]', f'-dn {args.denoise_strength:g}', '0 weak .. 1 strong')


def load_upsampler(args: argparse.Namespace, alpha_upsampler: str = 'realesrgan', alpha_colour: str = 'auto'):
    """The Upsampler for the checked flags; a weights problem becomes one line (exit 1)."""
    from realesrgan_plugin.inference.loader import ModelNotAvailableError, load_model
    from realesrgan_plugin.inference.upsampler import Upsampler
    from realesrgan_plugin.inference.weights import WeightsError

    source = args.model_path or args.model_name
    where = f'--model_path {source}' if args.model_path else f'-n {source}'
    dn = args.denoise_strength if Path(source).stem == 'realesr-general-x4v3' else None
    try:
        model, scale = load_model(
            source, cache_dir=args.cache_dir, allow_download=not args.offline, denoise_strength=dn
        )
    except ModelNotAvailableError as err:
        fix = _after_source(err, source)  # names the cache file and the URL to fetch it from
        raise FailedError('weights not available', where, f'{fix}; or pass a weights file with --model_path') from err
    except WeightsError as err:
        raise FailedError(_after_source(err, source), where, 'give a Real-ESRGAN generator file') from err
    except (RuntimeError, OSError, EOFError) as err:  # torch's safe loader: pickled objects, truncated files
        raise FailedError(
            'not a weights file: it cannot be read as plain tensors (damaged, or holds Python objects)',
            where,
            'give a .pth/.safetensors of Real-ESRGAN generator weights',
        ) from err
    dtype = 'fp16' if args.half else 'bf16' if args.bf16 else 'fp32'
    return Upsampler(
        model,
        scale,
        tile=args.tile,
        tile_pad=args.tile_pad,
        pre_pad=args.pre_pad,
        dtype=dtype,
        device=_device(args),
        batch_tiles=args.batch_tiles,
        alpha_upsampler=alpha_upsampler,
        alpha_colour=alpha_colour,
        winograd=None if args.winograd else False,
    )


def _first_sentence(err: BaseException) -> str:
    return str(err).split('\n')[0]


def _after_source(err: BaseException, source: str) -> str:
    """A WeightsError message without the file name it starts with (the CLI prints that itself)."""
    text = _first_sentence(err)
    return text.removeprefix(f'{source}: ').removeprefix(f'{source!r}: ')


def list_inputs(path: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The images to process and what was left out (with why): non-images and subfolders."""
    from realesrgan_plugin.core.img_io import is_image_file

    if path.is_dir():
        images, skipped = [], []
        for entry in sorted(path.iterdir()):
            if entry.is_dir():
                skipped.append((entry, 'subfolder (not searched)'))
            elif is_image_file(entry):
                images.append(entry)
            else:
                skipped.append((entry, 'not an image file'))
        return images, skipped
    if path.is_file():
        return [path], []
    raise UsageError('input not found', f'-i {path}', 'give an image file or a folder of images')


def output_path(src: Path, out_dir: Path, suffix: str, ext: str, has_alpha: bool, is_16bit: bool) -> Path:
    """Official naming (``name_suffix.ext``); alpha forces png, 16-bit into jpg falls back to png."""
    extension = src.suffix[1:] if ext == 'auto' else ext.lstrip('.')
    if has_alpha or (is_16bit and extension.lower() in ('jpg', 'jpeg', 'webp', 'bmp')):
        extension = 'png'
    stem = f'{src.stem}_{suffix}' if suffix else src.stem
    return out_dir / f'{stem}.{extension}'


def check_extension(ext: str, where: str) -> None:
    """The output extension must have an OpenCV encoder (asked of OpenCV, not a fixed list)."""
    import cv2

    if not cv2.haveImageWriter(f'x.{ext.lstrip(".")}'):
        raise UsageError(f'no image encoder for ".{ext.lstrip(".")}"', where, 'use png, jpg, webp, tif or bmp')


def check_writable(folder: Path, where: str) -> None:
    """Prove ``folder`` (or, when it does not exist yet, its nearest existing parent) takes a file,
    by a test write, before any compute; nothing is created that a failed run would leave behind."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        if not existing.is_dir():
            raise NotADirectoryError(20, f'{existing} is a file')
        with tempfile.NamedTemporaryFile(dir=existing, prefix='.write-test-'):
            pass
    except OSError as err:
        raise UsageError(f'output folder is not writable ({err.strerror or err})', where, 'choose another -o') from err


def _device(args: argparse.Namespace) -> str | None:
    if args.device:
        return args.device
    if args.gpu_id is not None:
        return f'cuda:{args.gpu_id}'
    return None


class _OutputPlan:
    """Where each result goes: a folder (official naming) or one named file for one input image."""

    def __init__(self, args: argparse.Namespace, inputs: list[Path], single_input: bool) -> None:
        from realesrgan_plugin.core.img_io import IMAGE_EXTENSIONS

        out = Path(args.output)
        self.single_file = None
        if out.suffix.lower() in IMAGE_EXTENSIONS and not out.is_dir():
            if not single_input:
                raise UsageError(
                    'output names an image file but the input is a folder', f'-o {out}', 'give an output folder'
                )
            check_extension(out.suffix, f'-o {out}')
            self.single_file, self.folder = out, out.parent
        else:
            self.folder = out
        if args.ext != 'auto':
            check_extension(args.ext, f'--ext {args.ext}')
        check_writable(self.folder, f'-o {out}')
        self.args = args
        self.png_note_given = False

    def destination(self, src: Path, has_alpha: bool, is_16bit: bool) -> Path:
        if self.single_file is not None:
            ext = self.single_file.suffix[1:]
            dst = output_path(src, self.folder, '', ext, has_alpha, is_16bit)
            return self.single_file if dst.suffix == self.single_file.suffix else self.single_file.with_suffix('.png')
        return output_path(src, self.folder, self.args.suffix, self.args.ext, has_alpha, is_16bit)

    def note_png_fallback(self, src: Path, dst: Path, wanted: str, write: Callable[[str], None]) -> None:
        """Say once that an alpha / 16-bit image went to PNG instead of the requested format."""
        if self.png_note_given or dst.suffix.lower() == f'.{wanted.lower()}' or wanted == 'auto':
            return
        self.png_note_given = True
        write(
            f'note: .{wanted} cannot hold alpha or 16-bit samples: such images are written as PNG (first: {src.name})'
        )


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(_main, argv)


def _main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    quiet_opencv()
    check_model_arguments(args)
    _check_alpha_upsampler(args.alpha_upsampler)
    _check_alpha_colour(args.alpha_colour)
    source = Path(args.input)
    inputs, skipped = list_inputs(source)
    plan = _OutputPlan(args, inputs, single_input=source.is_file())
    if not inputs:
        raise FailedError(
            'no images to upscale', f'-i {source}', f'put .png/.jpg/.webp/.tif files in it{_skip_note(skipped)}'
        )
    upsampler = load_upsampler(args, args.alpha_upsampler, args.alpha_colour)
    enhance = lambda img: upsampler.enhance(img, outscale=args.outscale)  # noqa: E731
    if args.face_enhance:
        enhance = _face_enhancer(args, upsampler).enhance
    plan.folder.mkdir(parents=True, exist_ok=True)
    failures, existed = _upscale_all(inputs, plan, enhance, args)
    skipped += [(path, 'output exists (--skip_existing)') for path in existed]
    done = len(inputs) - len(failures) - len(existed)
    print(f'{done} of {len(inputs)} images written to {plan.single_file or plan.folder}{_skip_note(skipped, failures)}')
    if failures:
        print(f'{len(failures)} failed:', file=sys.stderr)
        for src, reason in failures:
            print(f'  {src}: {reason}', file=sys.stderr)
        return EXIT_FAILED_ITEMS
    return 0


def _check_alpha_upsampler(name: str) -> None:
    from realesrgan_plugin.inference.upsampler import ALPHA_UPSAMPLERS

    if name not in ALPHA_UPSAMPLERS:
        raise UsageError(
            'unknown alpha upsampler', f'--alpha_upsampler {name}', f'choose {", ".join(ALPHA_UPSAMPLERS)}'
        )


def _check_alpha_colour(name: str) -> None:
    from realesrgan_plugin.inference.alpha import ALPHA_COLOURS

    if name not in ALPHA_COLOURS:
        raise UsageError('unknown alpha colour mode', f'--alpha_colour {name}', f'choose {", ".join(ALPHA_COLOURS)}')


def _face_enhancer(args: argparse.Namespace, upsampler):
    from realesrgan_plugin.inference.face import FaceEnhancer, FaceWeightsMissingError

    try:
        return FaceEnhancer(upsampler, args.outscale, cache_dir=args.cache_dir, allow_download=not args.offline)
    except FaceWeightsMissingError as err:
        raise FailedError('face weights not available', '--face_enhance', _first_sentence(err)) from err
    except ImportError as err:
        raise UsageError(str(err), '--face_enhance', 'pip install realesrgan-plugin[face]') from err


def _upscale_all(
    inputs: list[Path], plan: _OutputPlan, enhance, args: argparse.Namespace
) -> tuple[list[tuple[Path, str]], list[Path]]:
    """Upscale and write each input: (failed items with their reason, inputs skipped because their
    output exists). A full disk stops the whole run: the next image would fail the same way."""
    from realesrgan_plugin.core.atomic import DiskWriteError
    from realesrgan_plugin.core.img_io import ImageReadError, read_image, write_image

    from tqdm import tqdm

    protected = {os.path.realpath(p) for p in inputs}
    failures: list[tuple[Path, str]] = []
    existed: list[Path] = []
    for src in tqdm(inputs, desc='realesrgan-infer', unit='img'):
        try:
            img = read_image(src)
            has_alpha = img.ndim == 3 and img.shape[2] == 4
            dst = plan.destination(src, has_alpha, img.dtype != 'uint8')
            if os.path.realpath(dst) in protected:
                raise ValueError(f'output {dst} would overwrite an input; choose another -o or --suffix')
            if args.skip_existing and dst.is_file():
                existed.append(src)
                continue
            wanted = plan.single_file.suffix[1:] if plan.single_file is not None else args.ext
            plan.note_png_fallback(src, dst, wanted, lambda m: tqdm.write(m, file=sys.stderr))
            write_image(dst, enhance(img))
        except DiskWriteError as err:
            raise UsageError(str(err), None, 'then rerun with --skip_existing to do only the rest') from err
        except ImageReadError as err:
            failures.append((src, err.reason))
            tqdm.write(f'skipped {src}: {err.reason}', file=sys.stderr)
        except (ValueError, RuntimeError, OSError) as err:
            failures.append((src, str(err)))
            tqdm.write(f'skipped {src}: {err}', file=sys.stderr)
    return failures, existed


def _skip_note(skipped: list[tuple[Path, str]], failures: Sequence[tuple[Path, str]] = ()) -> str:
    """'; skipped: 2 unreadable (a.png, b.jpg), 1 not an image file (notes.txt)' or ''."""
    groups: dict[str, list[str]] = {}
    for path, _ in failures:
        groups.setdefault('failed', []).append(path.name)
    for path, why in skipped:
        groups.setdefault(why, []).append(path.name)
    if not groups:
        return ''
    parts = [
        f'{len(names)} {why} ({", ".join(names[:5])}{", ..." if len(names) > 5 else ""})'
        for why, names in groups.items()
    ]
    return '; skipped: ' + ', '.join(parts)


if __name__ == '__main__':
    sys.exit(main())
