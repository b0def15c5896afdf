"""Tiled inference at realistic sizes: ours vs the official RealESRGANer, side by side in one run.

RealESRGAN_x4plus, fp32, tile_pad 10, on the scikit-image astronaut resized to each case's size:
512x512 with tile 256, 1024x768 with tile 256 and 512, and 128x128 with tile 64 (the worst case:
the context is a large share of each tile). Per case: the official tiled time (its own process,
one warm-up on a 32x32 corner as ours gets), our tiled time, and the seam measure PSNR(our tiled,
our untiled). Wall and CPU time are both recorded; on a shared machine the CPU-time ratio is the
steadier one. Writes ``docs/bench/tiles-<cpu>.json`` (bench/common.py); the last line printed is
that JSON.

    python bench/bench_tiles.py [--cases 512x512:256 768x1024:256 768x1024:512 128x128:64] [--threads 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from realesrgan_plugin.inference import Upsampler

import cv2
import numpy as np
import torch
from bench_inference import official, ours, psnr, weights_file
from common import load_average, write_result

DEFAULT_CASES = ('128x128:64', '512x512:256', '768x1024:256', '768x1024:512')  # cheapest first
TILE_PAD = 10


def parse_case(text: str) -> tuple[int, int, int]:
    """'HxW:TILE' -> (h, w, tile)."""
    size, tile = text.split(':')
    h, w = size.split('x')
    return int(h), int(w), int(tile)


def photo(h: int, w: int) -> np.ndarray:
    from skimage import data

    return cv2.resize(
        data.astronaut()[:, :, ::-1], (w, h), interpolation=cv2.INTER_AREA if h <= 512 else cv2.INTER_CUBIC
    )


def our_windows(up: Upsampler, h: int, w: int) -> tuple[int, int]:
    """(windows, input pixels) our tiled run feeds the network."""
    plan = up._plan(h, w, up.tile)
    count = len(plan.ys) * len(plan.xs)
    return count, plan.window_h * plan.window_w * count


def official_window_pixels(h: int, w: int, tile: int, pad: int) -> int:
    def along(length: int) -> int:
        count = -(-length // tile)
        return sum(min(length, (i + 1) * tile + pad) - max(0, i * tile - pad) for i in range(count))

    return along(h) * along(w)


def run_case(model, scale: int, weights: Path, work: Path, case: str, args) -> dict:
    h, w, tile = parse_case(case)
    img = photo(h, w)
    path = work / f'in_{h}x{w}.png'
    cv2.imwrite(str(path), img)
    tiled = Upsampler(model, scale, tile=tile, tile_pad=TILE_PAD)
    untiled = Upsampler(model, scale)
    for up in (tiled, untiled):
        up.enhance(img[:32, :32])  # warm-up, as the official process gets
    off_wall, off_cpu, our_wall, our_cpu = [], [], [], []
    for r in range(args.rounds):
        _, t, c, _ = official(weights, path, work, 'cpu', 1, tile=tile)
        off_wall, off_cpu = off_wall + t, off_cpu + c
        ours_tiled, t, c, _ = ours(tiled, img, 1, 'cpu')
        our_wall, our_cpu = our_wall + t, our_cpu + c
        print(f'{case} round {r}: official {off_wall[-1]:.1f}s ({off_cpu[-1]:.1f}s cpu), ours {our_wall[-1]:.1f}s '
              f'({our_cpu[-1]:.1f}s cpu)', flush=True)  # fmt: skip
    start = time.perf_counter()
    ours_full = untiled.enhance(img)
    print(f'{case}: ours untiled {time.perf_counter() - start:.1f}s (seam reference)', flush=True)
    return {
        'case': case,
        'input_hw': [h, w],
        'tile': tile,
        'tile_pad': TILE_PAD,
        'official_tiled_s': round(min(off_wall), 3),
        'ours_tiled_s': round(min(our_wall), 3),
        'speedup_vs_official': round(min(off_wall) / min(our_wall), 3),
        'official_tiled_cpu_s': round(min(off_cpu), 3),
        'ours_tiled_cpu_s': round(min(our_cpu), 3),
        'speedup_vs_official_cpu_time': round(min(off_cpu) / min(our_cpu), 3),
        'seam_psnr_ours_db': round(psnr(ours_tiled, ours_full), 2),
        'seam_max_diff_ours': int(np.abs(ours_tiled.astype(int) - ours_full).max()),
        'windows_ours': our_windows(tiled, h, w)[0],
        'windows_official': -(-h // tile) * -(-w // tile),
        'network_pixels_ours': our_windows(tiled, h, w)[1],
        'network_pixels_official': official_window_pixels(h, w, tile, TILE_PAD),
    }


def seams(case: dict) -> str:
    if case['windows_ours'] == 1:
        return 'none: ours runs it as one window'
    return f'{case["seam_psnr_ours_db"]:.1f} dB'


def table_rows(result: dict) -> list[dict]:
    rows = []
    for c in result['cases']:
        h, w = c['input_hw']
        rows.append({
            'what': f'inference RealESRGAN_x4plus fp32, {w}×{h} input, tile {c["tile"]} / pad {c["tile_pad"]}, '
            f'{result["threads"]} thread(s), windows official {c["windows_official"]} / ours {c["windows_ours"]} '
            f'(CPU-time ratio {c["speedup_vs_official_cpu_time"]:.2f}×; seams PSNR(tiled, untiled) '
            f'{seams(c)}; network pixels '
            f'{c["network_pixels_ours"] / c["network_pixels_official"]:.2f}× the official\'s)',
            'official': f'{c["official_tiled_s"]:.1f} s',
            'ours': f'{c["ours_tiled_s"]:.1f} s',
            'ratio': f'{c["speedup_vs_official"]:.2f}×',
        })  # fmt: skip
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--cases', nargs='+', default=list(DEFAULT_CASES), help='HxW:TILE, each run side by side')
    p.add_argument('--rounds', type=int, default=1, help='alternating official/ours rounds; the best time counts')
    p.add_argument('--threads', type=int, default=2, help='torch threads for both')
    args = p.parse_args()
    started = load_average()
    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix='bench_tiles_'))
    model, scale, weights, source = weights_file('RealESRGAN_x4plus', work)
    print(f'weights: {source}; torch threads {torch.get_num_threads()}', flush=True)
    cases = []
    for case in args.cases:  # the JSON is rewritten after each case: a long run stopped early keeps its figures
        cases.append(run_case(model, scale, weights, work, case, args))
        write_result('tiles', summary(cases, source), started)


def summary(cases: list[dict], source: str) -> dict:
    realistic = [c for c in cases if min(c['input_hw']) >= 512]
    result = {
        'model': 'RealESRGAN_x4plus',
        'weights': source,
        'threads': torch.get_num_threads(),
        'cases': cases,
        'speedup_vs_official': min(c['speedup_vs_official'] for c in realistic or cases),
        'min_seam_psnr_db': min(c['seam_psnr_ours_db'] for c in cases),
    }
    result['rows'] = table_rows(result)
    return result


if __name__ == '__main__':
    main()
