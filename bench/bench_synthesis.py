"""Benchmark: Real-ESRGAN training-pair synthesis, the plugin against the official realesrgan 0.3.0.

Both sides do what one training iteration of RealESRGANModel does before the network runs:
read a batch of GT images through their dataset (crop/pad to 400, flips, and the official
dataset's per-sample numpy kernels), sharpen GT with USM, second-order degradation, random
crop, training-pair pool (size 180), USM of the pooled GT. Official x4plus options, gt_size 256.

Each side runs in its own subprocess (the official package registers the same BasicSR names
as the plugin); the two processes are driven in turns, one batch each, so that both see the
same machine load. The official code hard-codes ``.cuda()`` and breaks on ``.view`` of a
non-contiguous JPEG output on CPU; the official worker patches both at run time, here only.

LQ statistics: PSNR(bicubic-upsampled LQ, GT crop) per sample, mean and std over all batches.

    python bench/bench_synthesis.py [--batches 20] [--batch-size 12] [--device cpu]

Prints per-side figures and, as its last line, one JSON object with ``speedup_vs_official``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from x4plus_settings import degradation_settings, kernel_settings

PHOTOS = (  # colour photos bundled with scikit-image (offline)
    'astronaut.png',
    'coffee.png',
    'chelsea.png',
    'rocket.jpg',
    'motorcycle_left.png',
    'motorcycle_right.png',
    'retina.jpg',
    'hubble_deep_field.jpg',
)

DATASET_OPT = {**kernel_settings(), 'gt_size': 256, 'use_hflip': True, 'use_rot': False}
TOP_OPT = {'scale': 4, **degradation_settings(), 'gt_size': 256, 'queue_size': 180}


def prepare_photos(folder: Path) -> None:
    """Copy the photos into ``folder`` with a meta_info file listing them."""
    import shutil

    import skimage.data

    source = Path(skimage.data.__file__).parent
    for name in PHOTOS:
        shutil.copyfile(source / name, folder / name)
    (folder / 'meta_info.txt').write_text(''.join(f'{n}\n' for n in PHOTOS))


def prepare_gt_batches(folder: Path, starts: list[int], batch_size: int, seed: int) -> None:
    """Fixed GT batches (random 400x400 crops, reflect-padded when smaller, random h-flips), one
    ``<start>.npy`` per batch: both pipelines degrade the very same GT, so their LQ statistics
    differ only by the degradations."""
    import cv2

    rng = np.random.default_rng(seed)
    images = [cv2.imread(str(folder / name), cv2.IMREAD_COLOR)[:, :, ::-1] for name in PHOTOS]
    for start in starts:
        crops = []
        for j in range(batch_size):
            img = images[(start + j) % len(images)]
            h, w = img.shape[:2]
            img = cv2.copyMakeBorder(img, 0, max(0, 400 - h), 0, max(0, 400 - w), cv2.BORDER_REFLECT_101)
            top, left = rng.integers(0, img.shape[0] - 400 + 1), rng.integers(0, img.shape[1] - 400 + 1)
            crop = img[top : top + 400, left : left + 400]
            crops.append(crop[:, ::-1] if rng.random() < 0.5 else crop)
        batch = np.stack(crops).astype(np.float32).transpose(0, 3, 1, 2) / 255
        np.save(folder / f'gt_{start}.npy', np.ascontiguousarray(batch))


def shared_gt(args, start: int):
    import torch

    return torch.from_numpy(np.load(os.path.join(args.data, f'gt_{start}.npy')))


def psnr_of_batch(lq, gt, scale: int) -> list[float]:
    import torch
    from torch.nn import functional as F

    up = F.interpolate(lq.float(), scale_factor=scale, mode='bicubic').clamp(0, 1)
    mse = ((up - gt.float()) ** 2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
    return (10 * torch.log10(1 / mse)).tolist()


# ---------------------------------------------------------------------------- workers
def official_worker(args) -> None:
    import importlib
    import random
    import types

    import torch

    sys.modules['torchvision.transforms.functional_tensor'] = importlib.import_module(
        'torchvision.transforms._functional_tensor'
    )
    if args.device == 'cpu':  # the official code hard-codes .cuda()
        torch.Tensor.cuda = lambda self, *a, **k: self
        torch.nn.Module.cuda = lambda self, *a, **k: self
    from basicsr.utils import DiffJPEG, USMSharp
    from realesrgan.data.realesrgan_dataset import RealESRGANDataset
    from realesrgan.models import realesrgan_model
    from realesrgan.models.realesrgan_model import RealESRGANModel

    original_filter2d = realesrgan_model.filter2D
    realesrgan_model.filter2D = lambda img, kernel: original_filter2d(img.contiguous(), kernel)  # .view bug

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    opt = dict(DATASET_OPT, dataroot_gt=args.data, meta_info=os.path.join(args.data, 'meta_info.txt'))
    opt['io_backend'] = {'type': 'disk'}
    dataset = RealESRGANDataset(opt)
    host = types.SimpleNamespace(is_train=True, opt=dict(TOP_OPT), device=device, queue_size=TOP_OPT['queue_size'])
    host.jpeger = DiffJPEG(differentiable=False).to(device)
    host.usm_sharpener = USMSharp().to(device)
    host._dequeue_and_enqueue = types.MethodType(RealESRGANModel._dequeue_and_enqueue, host)

    def run_batch(start: int):
        items = [dataset[(start + j) % len(dataset)] for j in range(args.batch_size)]
        batch = {k: torch.stack([it[k] for it in items]) for k in ('gt', 'kernel1', 'kernel2', 'sinc_kernel')}
        if args.shared_gt:  # the dataset still ran (reads + kernels); its GT is swapped for the shared one
            batch['gt'] = shared_gt(args, start)
        RealESRGANModel.feed_data(host, batch)
        return host.lq, host.gt

    _serve(args, run_batch)


def ours_worker(args) -> None:
    import random

    from realesrgan_plugin.basicsr.data.realesrgan_dataset import RealESRGANDataset
    from realesrgan_plugin.core.degradations import RealESRGANSynthesis, TrainingPairPool, USMSharp

    import torch

    random.seed(args.seed)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    opt = dict(DATASET_OPT, dataroot_gt=args.data, meta_info=os.path.join(args.data, 'meta_info.txt'))
    opt['io_backend'] = {'type': 'disk'}
    dataset = RealESRGANDataset(opt)
    full_opt = dict(TOP_OPT, datasets={'train': DATASET_OPT})
    if args.degrade_margin:
        full_opt['degrade_margin'] = args.degrade_margin
    synthesis = RealESRGANSynthesis.from_options(full_opt)
    usm = USMSharp().to(device)
    pool = TrainingPairPool(TOP_OPT['queue_size'], seed=args.seed)
    generator = torch.Generator(device).manual_seed(args.seed)

    def run_batch(start: int):
        items = [dataset[(start + j) % len(dataset)] for j in range(args.batch_size)]
        gt = torch.stack([it['gt'] for it in items])
        gt = (shared_gt(args, start) if args.shared_gt else gt).to(device)
        gt_usm = usm(gt)
        lq, (gt, gt_usm) = synthesis(gt_usm, gt, gt_usm, generator=generator)
        lq, gt = pool(lq, gt)
        usm(gt)
        return lq, gt

    _serve(args, run_batch)


def _serve(args, run_batch) -> None:
    """Answer 'batch <start>' lines on stdin with one JSON line: seconds and per-sample PSNR."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd or cmd[0] == 'quit':
            break
        start = int(cmd[1])
        if args.device != 'cpu':
            torch.cuda.synchronize()
        tic, cpu_tic = time.perf_counter(), time.process_time()
        lq, gt = run_batch(start)
        if args.device != 'cpu':
            torch.cuda.synchronize()
        seconds, cpu_seconds = time.perf_counter() - tic, time.process_time() - cpu_tic
        result = {'seconds': seconds, 'cpu_seconds': cpu_seconds, 'psnr': psnr_of_batch(lq, gt, TOP_OPT['scale'])}
        print(json.dumps(result), flush=True)


# ---------------------------------------------------------------------------- driver
def _start(kind: str, args, data: str) -> subprocess.Popen:
    worker = 'ours' if kind.startswith('ours') else kind
    cmd = [sys.executable, __file__, '--worker', worker, '--data', data, '--device', args.device]
    cmd += ['--batch-size', str(args.batch_size), '--seed', str(args.seed), '--threads', str(args.threads)]
    cmd += ['--degrade-margin', str(args.degrade_margin if kind == 'ours_margin' else 0)]
    if args.shared_gt:
        cmd.append('--shared-gt')
    env = dict(os.environ)
    if kind == 'official':  # keep the plugin off the official worker's path
        root = str(Path(__file__).resolve().parents[1])
        env['PYTHONPATH'] = os.pathsep.join(p for p in env.get('PYTHONPATH', '').split(os.pathsep) if p and p != root)
    return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)


def _ask(proc: subprocess.Popen, start: int) -> dict:
    proc.stdin.write(f'batch {start}\n')
    proc.stdin.flush()
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f'worker {proc.args[3]} died (exit code {proc.wait()})')
    return json.loads(line)


def _summary(results: list[dict], batch_size: int) -> dict:
    seconds = sum(r['seconds'] for r in results)
    cpu_seconds = sum(r['cpu_seconds'] for r in results)
    psnr = np.array([p for r in results for p in r['psnr']])
    return {
        'samples_per_s': len(results) * batch_size / seconds,
        'samples_per_cpu_s': len(results) * batch_size / cpu_seconds,
        'seconds_per_batch': seconds / len(results),
        'psnr_mean': float(psnr.mean()),
        'psnr_std': float(psnr.std()),
        'psnr_sem': float(psnr.std() / math.sqrt(len(psnr))),
        'samples': len(psnr),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--batches', type=int, default=20, help='measured batches per side (after 1 warm-up)')
    parser.add_argument('--batch-size', type=int, default=12)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--degrade-margin', type=int, default=32, help='also measure ours degrading only crop + this margin (0: skip)'
    )
    parser.add_argument('--threads', type=int, default=0, help='torch threads in each worker (0: torch default)')
    parser.add_argument(
        '--shared-gt',
        action=argparse.BooleanOptionalAction,
        default=True,
        help='both sides degrade the same fixed GT crops (datasets still run and are timed)',
    )
    parser.add_argument('--worker', choices=('official', 'ours'), help=argparse.SUPPRESS)
    parser.add_argument('--data', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == 'official':
        return official_worker(args)
    if args.worker == 'ours':
        return ours_worker(args)

    from tqdm import tqdm

    with tempfile.TemporaryDirectory(prefix='bench_synthesis_') as tmp:
        prepare_photos(Path(tmp))
        if args.shared_gt:
            starts = [(b + 1) * args.batch_size for b in range(-1, args.batches)]
            prepare_gt_batches(Path(tmp), starts, args.batch_size, args.seed)
        kinds = ('official', 'ours', 'ours_margin') if args.degrade_margin else ('official', 'ours')
        workers = {kind: _start(kind, args, tmp) for kind in kinds}
        results = {kind: [] for kind in workers}
        try:
            for proc in workers.values():  # warm-up, not counted
                _ask(proc, 0)
            for b in tqdm(range(args.batches), desc='batches (both sides)'):
                for kind, proc in workers.items():
                    results[kind].append(_ask(proc, (b + 1) * args.batch_size))
        finally:
            for proc in workers.values():
                if proc.poll() is None:
                    proc.stdin.write('quit\n')
                    proc.stdin.close()
                    proc.wait()
    summaries = {kind: _summary(r, args.batch_size) for kind, r in results.items()}
    for kind, s in summaries.items():
        print(
            f'{kind:>11}: {s["samples_per_s"]:.2f} samples/s ({s["seconds_per_batch"]:.3f} s/batch), '
            f'{s["samples_per_cpu_s"]:.2f} samples per CPU-second, LQ PSNR {s["psnr_mean"]:.2f} +- '
            f'{s["psnr_std"]:.2f} dB (sem {s["psnr_sem"]:.2f}, n={s["samples"]})'
        )
    import torch

    official = summaries['official']
    summary = {
        'bench': 'synthesis',
        'device': args.device,
        'torch_threads': args.threads or torch.get_num_threads(),
        'batch_size': args.batch_size,
        'gt_size': TOP_OPT['gt_size'],
        'batches': args.batches,
        'shared_gt': args.shared_gt,
        'official_samples_per_s': round(official['samples_per_s'], 3),
        'official_lq_psnr_mean': round(official['psnr_mean'], 3),
        'official_lq_psnr_std': round(official['psnr_std'], 3),
    }
    for kind, s in summaries.items():
        if kind == 'official':
            continue
        summary[f'{kind}_samples_per_s'] = round(s['samples_per_s'], 3)
        summary[f'{kind}_speedup_vs_official'] = round(s['samples_per_s'] / official['samples_per_s'], 2)
        cpu_ratio = s['samples_per_cpu_s'] / official['samples_per_cpu_s']
        summary[f'{kind}_cpu_time_speedup_vs_official'] = round(cpu_ratio, 2)
        summary[f'{kind}_lq_psnr_mean'] = round(s['psnr_mean'], 3)
        summary[f'{kind}_lq_psnr_std'] = round(s['psnr_std'], 3)
        summary[f'{kind}_lq_psnr_mean_diff_db'] = round(s['psnr_mean'] - official['psnr_mean'], 3)
    if args.degrade_margin:
        summary['ours_margin_degrade_margin'] = args.degrade_margin
    summary['speedup_vs_official'] = summary['ours_speedup_vs_official']
    print(json.dumps(summary))


if __name__ == '__main__':
    main()
