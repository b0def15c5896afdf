"""Throughput of ``tools/create_lmdb.py`` against BasicSR's LMDB writer
(``basicsr.utils.lmdb_util.make_lmdb_from_imgs``, what BasicSR's ``scripts/data_preparation/create_lmdb.py``
calls; Real-ESRGAN ships no LMDB maker) on the same folder of sub-images, same thread count.

The folder holds 480x480 PNG crops of scikit-image's bundled photos upscaled to 2040 px (the
shape of ``extract_subimages`` output). Each maker runs as a command in its own process,
alternating, ``--repeats`` times; the best run of each counts (wall time, start-up included).
BasicSR re-encodes every image with ``cv2.imencode`` as PNG (level 1 by default, multiprocess
reading on); so the headline (``speedup_vs_official``) times ours re-encoding at the same level:
like with like. Ours is also timed in its default mode, storing the files' bytes as they are
(``speedup_store_bytes_vs_official``), shown as a separate, labelled row. The databases are
decoded and compared pixel by pixel. Writes ``docs/bench/create_lmdb-<cpu>.json``
(bench/common.py) and prints it as the last line.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import lmdb
import numpy as np
from common import load_average, write_result

REPO = Path(__file__).resolve().parents[1]
PHOTOS = ['astronaut', 'chelsea', 'coffee', 'hubble_deep_field', 'immunohistochemistry', 'retina', 'rocket']

# BasicSR's writer, unchanged; only the torchvision alias basicsr 1.4.2 needs on torchvision >= 0.17.
BASICSR_MAKER = """
import importlib, os, sys
try:
    importlib.import_module('torchvision.transforms.functional_tensor')
except ImportError:
    sys.modules['torchvision.transforms.functional_tensor'] = importlib.import_module(
        'torchvision.transforms._functional_tensor')
from basicsr.utils import scandir
from basicsr.utils.lmdb_util import make_lmdb_from_imgs
if sys.argv[1] == '--startup-only':
    sys.exit(0)
folder, lmdb_path, n_thread, level = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
paths = sorted(scandir(folder, suffix='png', recursive=False))
keys = [p.split('.png')[0] for p in paths]
make_lmdb_from_imgs(folder, lmdb_path, paths, keys, compress_level=level, multiprocessing_read=True, n_thread=n_thread)
"""


def make_crops(folder: Path, count: int, size: int = 480) -> None:
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    bigs = []
    for name in PHOTOS:
        img = np.ascontiguousarray(getattr(data, name)()[:, :, ::-1])
        factor = 2040 / max(img.shape[:2])
        bigs.append(cv2.resize(img, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC))
    for i in range(count):
        big = bigs[i % len(bigs)]
        y, x = rng.integers(0, big.shape[0] - size), rng.integers(0, big.shape[1] - size)
        cv2.imwrite(str(folder / f'{i:05d}_s{i % 40 + 1:03d}.png'), big[y : y + size, x : x + size])


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f'{cmd[:3]}... failed ({done.returncode}):\n{done.stderr[-3000:]}')
    return time.perf_counter() - start


def decoded(db: Path) -> dict[str, np.ndarray]:
    with lmdb.open(str(db), readonly=True, lock=False) as env, env.begin() as txn:
        return {k.decode(): cv2.imdecode(np.frombuffer(v, np.uint8), cv2.IMREAD_UNCHANGED) for k, v in txn.cursor()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--images', type=int, default=400)
    parser.add_argument('--n_thread', type=int, default=2)
    parser.add_argument('--compress_level', type=int, default=1, help="BasicSR's default")
    parser.add_argument('--repeats', type=int, default=2)
    args = parser.parse_args()
    started = load_average()

    work = Path(tempfile.mkdtemp(prefix='bench_lmdb_'))
    try:
        src = work / 'sub'
        make_crops(src, args.images)
        env = dict(os.environ, PYTHONPATH=str(REPO))
        level, threads = str(args.compress_level), str(args.n_thread)
        ours = [sys.executable, str(REPO / 'tools/create_lmdb.py'), '--input', str(src), '--n_thread', threads]
        runs = {
            'official': lambda out: [sys.executable, '-c', BASICSR_MAKER, str(src), str(out), threads, level],
            'ours_reencoding': lambda out: [*ours, '--output', str(out), '--compress_level', level],
            'ours_store_bytes': lambda out: [*ours, '--output', str(out)],
        }
        startup = {  # interpreter start and imports, to tell them from the work (best of two)
            'official': min(timed([sys.executable, '-c', BASICSR_MAKER, '--startup-only'], env) for _ in range(2)),
            'ours': min(timed([*ours, '--help'], env) for _ in range(2)),
        }
        walls: dict[str, list[float]] = {side: [] for side in runs}
        for rep in range(args.repeats):
            for side, make_cmd in runs.items():
                out = work / f'{side}{rep}.lmdb'
                walls[side].append(timed(make_cmd(out), env))
                print(f'{side} run {rep + 1}: {walls[side][-1]:.2f} s', file=sys.stderr)
        reference = decoded(work / 'official0.lmdb')
        same = all(
            decoded(work / f'{side}0.lmdb').keys() == reference.keys()
            and all(np.array_equal(a, reference[k]) for k, a in decoded(work / f'{side}0.lmdb').items())
            for side in ('ours_reencoding', 'ours_store_bytes')
        )
        sizes = {side: (work / f'{side}0.lmdb' / 'data.mdb').stat().st_size for side in runs}
        best = {side: min(times) for side, times in walls.items()}
        result = {
            'images': args.images,
            'image_size': '480x480 PNG',
            'n_thread': args.n_thread,
            'compress_level': args.compress_level,
            'repeats': args.repeats,
            'wall_runs_s': {side: [round(t, 3) for t in times] for side, times in walls.items()},
            'images_per_s': {side: round(args.images / t, 2) for side, t in best.items()},
            'data_mdb_bytes': sizes,
            'identical_pixels': same,
            'startup_s': {side: round(t, 3) for side, t in startup.items()},
            'speedup_vs_official_without_startup': round(
                (best['official'] - startup['official']) / (best['ours_reencoding'] - startup['ours']), 3
            ),
            'speedup_vs_official': round(best['official'] / best['ours_reencoding'], 3),
            'speedup_store_bytes_vs_official': round(best['official'] / best['ours_store_bytes'], 3),
        }
        result['rows'] = table_rows(result)
        write_result('create_lmdb', result, started)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def table_rows(result: dict) -> list[dict]:
    """The README rows of a run: like with like (both re-encode) first, our store-bytes mode apart."""
    rate, startup = result['images_per_s'], result['startup_s']
    what = f'LMDB creation, {result["images"]} PNG crops 480², --n_thread {result["n_thread"]}, vs BasicSR writer'
    what += f', whole command (start-up: official {startup["official"]:.1f} s, ours {startup["ours"]:.1f} s)'
    level, same = result['compress_level'], result['identical_pixels']
    return [
        {
            'what': f'{what}; both re-encode PNG level {level} (pixels identical: {same})',
            'official': f'{rate["official"]:.1f} img/s',
            'ours': f'{rate["ours_reencoding"]:.1f} img/s',
            'ratio': f'{result["speedup_vs_official"]:.2f}× (without start-up '
            f'{result["speedup_vs_official_without_startup"]:.2f}×)',
        },
        {
            'what': f'{what}; ours in its default mode, storing the file bytes (not like with like)',
            'official': f'{rate["official"]:.1f} img/s (re-encoding)',
            'ours': f'{rate["ours_store_bytes"]:.1f} img/s',
            'ratio': f'{result["speedup_store_bytes_vs_official"]:.2f}×',
        },
    ]


if __name__ == '__main__':
    main()
