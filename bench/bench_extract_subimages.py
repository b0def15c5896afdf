"""Throughput of ``tools/extract_subimages.py`` against the official ``scripts/extract_subimages.py``
on the same folder, side by side, with the same thread count and settings.

The folder is made of scikit-image's bundled photos upscaled (bicubic) to DIV2K width (2040 px on
the long edge). Each side runs as a command in its own process on its own copy of the folder,
alternating, ``--repeats`` times; the best run of each counts. Wall time includes interpreter
start-up and imports (both sides import torch: the official script through basicsr), so a
start-up-free figure is derived from a ``--help`` run of each. CPU time (of each command and
its worker processes) is reported too: on a shared machine it varies far less than wall time.
The crops of both are compared byte for byte (the photo names hold no "x2/x3/x4/x8", which the
official script would delete).

The official script is not shipped in any package: pass its path with ``--official-script``
(Real-ESRGAN ``scripts/extract_subimages.py``). It imports basicsr, which needs one alias on
today's torchvision; the bench adds that alias in the official process (nothing else changes).
``git clone https://github.com/xinntao/Real-ESRGAN`` gives it. Writes
``docs/bench/extract_subimages-<cpu>.json`` (bench/common.py) and prints it as the last line,
including ``speedup_vs_official`` (best wall times, start-up included).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from common import load_average, write_result

REPO = Path(__file__).resolve().parents[1]
COLOR = ['astronaut', 'chelsea', 'coffee', 'hubble_deep_field', 'immunohistochemistry', 'retina', 'rocket']
GRAY = ['camera', 'moon']

# Run the official script unchanged: only the torchvision alias basicsr 1.4.2 needs on torchvision >= 0.17.
OFFICIAL_SHIM = """
import importlib, runpy, sys
try:
    importlib.import_module('torchvision.transforms.functional_tensor')
except ImportError:
    sys.modules['torchvision.transforms.functional_tensor'] = importlib.import_module(
        'torchvision.transforms._functional_tensor')
script = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(script, run_name='__main__')
"""


def make_bench_folder(folder: Path, count: int, long_edge: int) -> list[str]:
    """``count`` DIV2K-sized PNGs from skimage's bundled photos (flipped copies after the first round)."""
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    photos = [(n, getattr(data, n)()[:, :, ::-1]) for n in COLOR] + [(n, getattr(data, n)()) for n in GRAY]
    names = []
    for i in range(count):
        name, img = photos[i % len(photos)]
        if i >= len(photos):
            name, img = f'{name}_flip{i // len(photos)}', np.flip(img, axis=(i // len(photos)) % 2)
        h, w = img.shape[:2]
        factor = long_edge / max(h, w)
        big = cv2.resize(
            np.ascontiguousarray(img), (round(w * factor), round(h * factor)), interpolation=cv2.INTER_CUBIC
        )
        cv2.imwrite(str(folder / f'{name}.png'), big)
        names.append(name)
    return names


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command and every process it started and reaped).
    CPU time hardly depends on what else the machine runs; wall time does."""
    cpu, start = _children_cpu(), time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
    elapsed, cpu = time.perf_counter() - start, _children_cpu() - cpu
    if done.returncode != 0:
        raise RuntimeError(f'{cmd[:3]}... failed ({done.returncode}):\n{done.stderr[-3000:]}')
    return elapsed, cpu


def table_rows(result: dict) -> list[dict]:
    """The README row of a run: whole commands (start-up included), with the start-up-free ratio."""
    r = result
    return [
        {
            'what': f'sub-image extraction, {r["images"]} images of {r["image_size"]} → {r["crops"]} crops '
            f'{r["crop_size"]}², PNG level {r["compression_level"]}, --n_thread {r["n_thread"]}, whole command '
            f'(start-up: official {r["official_startup_s"]:.1f} s, ours {r["ours_startup_s"]:.1f} s; '
            f'crops byte-identical: {r["identical_outputs"]})',
            'official': f'{r["official_images_per_s"]:.2f} img/s',
            'ours': f'{r["ours_images_per_s"]:.2f} img/s',
            'ratio': f'{r["speedup_vs_official"]:.2f}× (without start-up '
            f'{r["speedup_vs_official_without_startup"]:.2f}×)',
        }
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--official-script', required=True, help='path to the official scripts/extract_subimages.py')
    parser.add_argument('--images', type=int, default=12)
    parser.add_argument('--long_edge', type=int, default=2040)
    parser.add_argument('--n_thread', type=int, default=2)
    parser.add_argument('--crop_size', type=int, default=480)
    parser.add_argument('--step', type=int, default=240)
    parser.add_argument('--compression_level', type=int, default=3)
    parser.add_argument('--repeats', type=int, default=2)
    parser.add_argument('--workdir', help='scratch folder (default: a temporary one, removed afterwards)')
    args = parser.parse_args()
    started = load_average()
    official = Path(args.official_script).resolve()
    if not official.is_file():
        parser.error(f'--official-script {official} does not exist')

    work = Path(args.workdir or tempfile.mkdtemp(prefix='bench_extract_'))
    try:
        source = work / 'source'
        make_bench_folder(source, args.images, args.long_edge)
        env = dict(os.environ, PYTHONPATH=str(REPO))
        common = ['--crop_size', str(args.crop_size), '--step', str(args.step), '--thresh_size', '0']
        common += ['--n_thread', str(args.n_thread), '--compression_level', str(args.compression_level)]

        def ours_cmd(inp: Path, out: Path) -> list[str]:
            return [sys.executable, str(REPO / 'tools/extract_subimages.py'), '--input', str(inp), '--output', str(out)]

        def official_cmd(inp: Path, out: Path) -> list[str]:
            return [sys.executable, '-c', OFFICIAL_SHIM, str(official), '--input', str(inp), '--output', str(out)]

        startup = {
            'ours': min(timed([*ours_cmd(source, work / 'x'), '--help'], env) for _ in range(2)),
            'official': min(timed([*official_cmd(source, work / 'x'), '--help'], env) for _ in range(2)),
        }
        walls: dict[str, list[float]] = {'ours': [], 'official': []}
        cpus: dict[str, list[float]] = {'ours': [], 'official': []}
        for rep in range(args.repeats):
            for side, make_cmd in (('official', official_cmd), ('ours', ours_cmd)):
                inp, out = work / f'{side}_in', work / f'{side}_out{rep}'
                shutil.rmtree(inp, ignore_errors=True)
                shutil.copytree(source, inp)  # each side gets its own copy of the same folder
                wall, cpu = timed([*make_cmd(inp, out), *common], env)
                walls[side].append(wall)
                cpus[side].append(cpu)
                print(f'{side} run {rep + 1}: {wall:.2f} s wall, {cpu:.2f} s CPU', file=sys.stderr)

        ours_files = {p.name: p.read_bytes() for p in (work / 'ours_out0').iterdir() if not p.name.startswith('.')}
        official_files = {p.name: p.read_bytes() for p in (work / 'official_out0').iterdir()}
        best = {side: min(times) for side, times in walls.items()}
        net = {side: max(best[side] - startup[side][0], 1e-6) for side in best}
        cpu = {side: min(times) for side, times in cpus.items()}
        net_cpu = {side: max(cpu[side] - startup[side][1], 1e-6) for side in cpu}
        result = {
            'images': args.images,
            'image_size': f'{args.long_edge} px long edge',
            'crops': len(official_files),
            'n_thread': args.n_thread,
            'crop_size': args.crop_size,
            'step': args.step,
            'compression_level': args.compression_level,
            'repeats': args.repeats,
            'ours_wall_s': round(best['ours'], 3),
            'official_wall_s': round(best['official'], 3),
            'ours_wall_runs_s': [round(t, 3) for t in walls['ours']],
            'official_wall_runs_s': [round(t, 3) for t in walls['official']],
            'ours_startup_s': round(startup['ours'][0], 3),
            'official_startup_s': round(startup['official'][0], 3),
            'ours_cpu_s': round(cpu['ours'], 3),
            'official_cpu_s': round(cpu['official'], 3),
            'ours_startup_cpu_s': round(startup['ours'][1], 3),
            'official_startup_cpu_s': round(startup['official'][1], 3),
            'cpu_speedup_vs_official': round(cpu['official'] / cpu['ours'], 3),
            'cpu_speedup_vs_official_without_startup': round(net_cpu['official'] / net_cpu['ours'], 3),
            'ours_images_per_s': round(args.images / best['ours'], 3),
            'official_images_per_s': round(args.images / best['official'], 3),
            'ours_images_per_s_without_startup': round(args.images / net['ours'], 3),
            'official_images_per_s_without_startup': round(args.images / net['official'], 3),
            'speedup_vs_official_without_startup': round(net['official'] / net['ours'], 3),
            'median_speedup_vs_official': round(
                statistics.median(walls['official']) / statistics.median(walls['ours']), 3
            ),
            'identical_outputs': ours_files == official_files,
            'speedup_vs_official': round(best['official'] / best['ours'], 3),
        }
        result['rows'] = table_rows(result)
        write_result('extract_subimages', result, started)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    main()
