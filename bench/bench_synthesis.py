"""Benchmark: Real-ESRGAN training-pair synthesis, the plugin against the official realesrgan 0.3.0.

Both sides do what one training iteration of RealESRGANModel does before the network runs, in
the steady state of real training:

* the dataset runs in DataLoader workers (``--workers``, prefetching as in training): reading,
  flips, crop/pad to 400 and, on the official side, its per-sample numpy kernels;
* USM-sharpen GT, second-order degradation, random crop, training-pair pool, USM of the pooled GT;
* the pool (queue_size 180, as in options/train_realesrgan_x4plus.yml) is full before timing, so
  every timed batch pays the full pool's cost (the official shuffles its whole queue each batch):
  the same untimed warm-up on both sides, one batch that the pool stores, the pool filled up
  with copies of those degraded pairs (the cost of a full pool does not depend on what it
  holds; running 15 batches of the official pipeline to fill it would take minutes), one more
  batch in the steady state.

Official x4plus options, batch 12, gt_size 256. Each side runs in its own subprocess (the
official package registers the same BasicSR names as the plugin); the processes are driven in
turns, one batch each (ABAB...), so both see the same machine load. The official code
hard-codes ``.cuda()`` and breaks on ``.view`` of a non-contiguous JPEG output on CPU; the
official worker patches both at run time, here only. A timed batch is: the next batch from the
DataLoader (waiting only if the workers have not prefetched it) + all of the above.

LQ statistics: PSNR(bicubic-upsampled LQ, GT crop) of each pair as degraded (before the pool,
which only reorders pairs), mean and std over the timed batches.
With ``--shared-gt`` (default) both sides degrade the same fixed GT crops (their datasets still
run and are timed; only the GT tensor is swapped), so the LQ statistics differ only by the
degradations.

    python bench/bench_synthesis.py [--batches 4] [--batch-size 12] [--workers 2] [--threads 1] [--device cpu]

Writes ``docs/bench/synthesis-<cpu>.json`` (bench/common.py) and prints it as the last line,
with ``speedup_vs_official``.
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
from common import load_average, memory_text, peak_memory_mib, reset_peak_memory, write_result
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


def prepare_gt_batches(folder: Path, count: int, batch_size: int, seed: int) -> None:
    """Fixed GT batches (random 400x400 crops, reflect-padded when smaller, random h-flips), one
    ``gt_<k>.npy`` (uint8) per batch number k: both pipelines degrade the very same GT."""
    import cv2

    rng = np.random.default_rng(seed)
    images = [cv2.imread(str(folder / name), cv2.IMREAD_COLOR)[:, :, ::-1] for name in PHOTOS]
    for k in range(count):
        crops = []
        for j in range(batch_size):
            img = images[(k * batch_size + j) % len(images)]
            h, w = img.shape[:2]
            img = cv2.copyMakeBorder(img, 0, max(0, 400 - h), 0, max(0, 400 - w), cv2.BORDER_REFLECT_101)
            top, left = rng.integers(0, img.shape[0] - 400 + 1), rng.integers(0, img.shape[1] - 400 + 1)
            crop = img[top : top + 400, left : left + 400]
            crops.append(crop[:, ::-1] if rng.random() < 0.5 else crop)
        np.save(folder / f'gt_{k}.npy', np.ascontiguousarray(np.stack(crops).transpose(0, 3, 1, 2)))


def shared_gt(args, k: int):
    import torch

    return torch.from_numpy(np.load(os.path.join(args.data, f'gt_{k}.npy'))).float() / 255


def warmup_batches(args) -> int:
    """Untimed batches: one that the pool stores (then filled up with copies of it), one in the steady state."""
    return 2


def data_loader(dataset, args):
    """The dataset in DataLoader workers, as training runs it: batch k holds samples k*B .. k*B+B-1
    (mod the dataset length), for the warm-up and the timed batches."""
    import torch

    total = warmup_batches(args) + args.batches
    order = [[(k * args.batch_size + j) % len(dataset) for j in range(args.batch_size)] for k in range(total)]
    return torch.utils.data.DataLoader(dataset, batch_sampler=order, num_workers=args.workers)


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
    top_opt = dict(TOP_OPT, queue_size=args.queue_size)
    host = types.SimpleNamespace(is_train=True, opt=top_opt, device=device, queue_size=args.queue_size)
    host.jpeger = DiffJPEG(differentiable=False).to(device)
    host.usm_sharpener = USMSharp().to(device)
    before_pool = {}

    def dequeue_and_enqueue(self):
        before_pool.update(lq=self.lq, gt=self.gt)  # the pair as degraded, for the LQ statistics
        RealESRGANModel._dequeue_and_enqueue(self)

    host._dequeue_and_enqueue = types.MethodType(dequeue_and_enqueue, host)

    def run_batch(batch: dict, gt):
        if gt is not None:  # the dataset still ran (reads + kernels); its GT is swapped for the shared one
            batch['gt'] = gt
        RealESRGANModel.feed_data(host, batch)
        return before_pool['lq'], before_pool['gt']

    def fill_pool() -> None:
        """Fill the official queue with copies of the pairs it holds (its own layout: full = queue_ptr at the end)."""
        held = host.queue_ptr
        host.queue_lr = host.queue_lr[:held].repeat(args.queue_size // held, 1, 1, 1)
        host.queue_gt = host.queue_gt[:held].repeat(args.queue_size // held, 1, 1, 1)
        host.queue_ptr = args.queue_size

    _serve(args, data_loader(dataset, args), run_batch, fill_pool)


def ours_worker(args) -> None:
    import random

    from realesrgan_plugin.basicsr.data.realesrgan_dataset import RealESRGANDataset
    from realesrgan_plugin.core.degradations import (
        RealESRGANSynthesis,
        TrainingPairPool,
        USMSharp,
        synthesis_generators,
    )

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
    pool = TrainingPairPool(args.queue_size, seed=args.seed)
    generator, host_generator = synthesis_generators(device, args.seed)  # noise on the device, choices on the host

    def run_batch(batch: dict, gt):
        gt = (batch['gt'] if gt is None else gt).to(device)
        gt_usm = usm(gt)
        lq, (gt, gt_usm) = synthesis(gt_usm, gt, gt_usm, generator=generator, host_generator=host_generator)
        pooled_lq, pooled_gt = pool(lq, gt)
        usm(pooled_gt)
        return lq, gt

    def fill_pool() -> None:
        """Fill the pool with copies of the pairs it holds, through its public state API."""
        state = pool.state_dict()
        copies = math.ceil(args.queue_size / state['filled'])
        state['lq'] = state['lq'].repeat(copies, 1, 1, 1)[: args.queue_size]
        state['gt'] = state['gt'].repeat(copies, 1, 1, 1)[: args.queue_size]
        state['filled'] = args.queue_size
        pool.load_state_dict(state, device=device)

    _serve(args, data_loader(dataset, args), run_batch, fill_pool)


def _serve(args, loader, run_batch, fill_pool) -> None:
    """Answer 'batch <k>' lines on stdin with one JSON line: seconds and per-sample PSNR of the
    degraded pairs (before the pool). Batch k is the loader's k-th batch (the lines come in order).
    'fill' fills the pool (answered with '{}')."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    batches = iter(loader)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd or cmd[0] == 'quit':
            break
        if cmd[0] == 'fill':
            fill_pool()
            print('{}', flush=True)
            continue
        k = int(cmd[1])
        gt = shared_gt(args, k) if args.shared_gt else None  # the bench's own input, not timed
        reset_peak_memory(args.device)  # synchronises on CUDA
        tic, cpu_tic = time.perf_counter(), time.process_time()
        lq, gt = run_batch(next(batches), gt)
        if args.device != 'cpu':
            torch.cuda.synchronize()
        seconds, cpu_seconds = time.perf_counter() - tic, time.process_time() - cpu_tic
        result = {'seconds': seconds, 'cpu_seconds': cpu_seconds, 'psnr': psnr_of_batch(lq, gt, TOP_OPT['scale'])}
        result['peak_mem_mib'] = peak_memory_mib(args.device)
        print(json.dumps(result), flush=True)


# ---------------------------------------------------------------------------- driver
def _start(kind: str, args, data: str) -> subprocess.Popen:
    worker = 'ours' if kind.startswith('ours') else kind
    cmd = [sys.executable, __file__, '--worker', worker, '--data', data, '--device', args.device]
    cmd += ['--batch-size', str(args.batch_size), '--seed', str(args.seed), '--threads', str(args.threads)]
    cmd += ['--workers', str(args.workers), '--batches', str(args.batches), '--queue-size', str(args.queue_size)]
    cmd += ['--degrade-margin', str(args.degrade_margin if kind == 'ours_margin' else 0)]
    if args.shared_gt:
        cmd.append('--shared-gt')
    env = dict(os.environ)
    if kind == 'official':  # keep the plugin off the official worker's path
        root = str(Path(__file__).resolve().parents[1])
        env['PYTHONPATH'] = os.pathsep.join(p for p in env.get('PYTHONPATH', '').split(os.pathsep) if p and p != root)
    return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)


def _ask(proc: subprocess.Popen, k: int | str) -> dict:
    proc.stdin.write(f'batch {k}\n' if isinstance(k, int) else f'{k}\n')
    proc.stdin.flush()
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f'worker {proc.args[3]} died (exit code {proc.wait()})')
    return json.loads(line)


def _summary(results: list[dict], batch_size: int) -> dict:
    seconds = sum(r['seconds'] for r in results)
    cpu_seconds = sum(r['cpu_seconds'] for r in results)
    psnr = np.array([p for r in results for p in r['psnr']])
    peaks = [r['peak_mem_mib'] for r in results if r.get('peak_mem_mib') is not None]
    return {
        'peak_mem_mib': max(peaks) if peaks else None,
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
    parser.add_argument(
        '--batches', type=int, default=4, help='timed batches per side (after the pool-filling warm-up)'
    )
    parser.add_argument('--batch-size', type=int, default=12)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--degrade-margin', type=int, default=32, help='also measure ours degrading only crop + this margin (0: skip)'
    )
    parser.add_argument('--threads', type=int, default=1, help='torch threads in each side (0: torch default)')
    parser.add_argument('--workers', type=int, default=2, help='DataLoader workers per side')
    parser.add_argument('--queue-size', type=int, default=TOP_OPT['queue_size'], help='pair pool size (x4plus: 180)')
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

    started = load_average()
    warmup = warmup_batches(args)
    with tempfile.TemporaryDirectory(prefix='bench_synthesis_') as tmp:
        prepare_photos(Path(tmp))
        if args.shared_gt:
            prepare_gt_batches(Path(tmp), warmup + args.batches, args.batch_size, args.seed)
        kinds = ('official', 'ours', 'ours_margin') if args.degrade_margin else ('official', 'ours')
        workers = {kind: _start(kind, args, tmp) for kind in kinds}
        results = {kind: [] for kind in workers}
        try:
            for step in (0, 'fill', 1):  # warm-up (untimed): the same for every side
                for proc in workers.values():
                    _ask(proc, step)
            for k in tqdm(range(warmup, warmup + args.batches), desc='timed batches (both sides)'):
                for kind, proc in workers.items():
                    results[kind].append(_ask(proc, k))
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
        'device': args.device,
        'torch_threads': args.threads or torch.get_num_threads(),
        'batch_size': args.batch_size,
        'gt_size': TOP_OPT['gt_size'],
        'batches': args.batches,
        'shared_gt': args.shared_gt,
        'dataloader_workers': args.workers,
        'queue_size': args.queue_size,
        'warmup_batches': warmup,
        'cpu_time_note': 'cpu_time ratios count the main process only, not the DataLoader workers',
        'official_samples_per_s': round(official['samples_per_s'], 3),
        'official_lq_psnr_mean': round(official['psnr_mean'], 3),
        'official_lq_psnr_std': round(official['psnr_std'], 3),
        'official_peak_mem_mib': official['peak_mem_mib'],
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
        summary[f'{kind}_peak_mem_mib'] = s['peak_mem_mib']
    if args.degrade_margin:
        summary['ours_margin_degrade_margin'] = args.degrade_margin
    summary['speedup_vs_official'] = summary['ours_speedup_vs_official']
    summary['rows'] = table_rows(summary, summaries)
    write_result('synthesis', summary, started)


def table_rows(summary: dict, summaries: dict) -> list[dict]:
    """The README rows of this run: throughput (pool full, datasets in DataLoader workers) and LQ PSNR."""
    off, ours = summaries['official'], summaries['ours']
    setting = (
        f'batch {summary["batch_size"]}, gt {summary["gt_size"]}, x4plus options, pool {summary["queue_size"]} '
        f'full, dataset in {summary["dataloader_workers"]} DataLoader worker(s), {summary["torch_threads"]} thread(s)'
    )
    rows = [
        {
            'what': f'pair synthesis ({setting})',
            'official': f'{off["samples_per_s"]:.2f} pairs/s',
            'ours': f'{ours["samples_per_s"]:.2f} pairs/s',
            'ratio': f'{summary["speedup_vs_official"]:.2f}×',
        }
    ]
    if 'ours_margin' in summaries:
        rows.append({
            'what': f'pair synthesis, ours with degrade_margin {summary["ours_margin_degrade_margin"]} (same setting)',
            'official': f'{off["samples_per_s"]:.2f} pairs/s',
            'ours': f'{summaries["ours_margin"]["samples_per_s"]:.2f} pairs/s',
            'ratio': f'{summary["ours_margin_speedup_vs_official"]:.2f}×',
        })  # fmt: skip
    same = 'same GT crops' if summary['shared_gt'] else 'own GT crops per side'
    rows.append({
        'what': f'LQ PSNR(bicubic-upsampled LQ, GT), mean ± std over {ours["samples"]} pairs ({same})',
        'official': f'{off["psnr_mean"]:.2f} ± {off["psnr_std"]:.2f} dB',
        'ours': f'{ours["psnr_mean"]:.2f} ± {ours["psnr_std"]:.2f} dB',
        'ratio': f'{ours["psnr_mean"] - off["psnr_mean"]:+.2f} dB',
    })  # fmt: skip
    if ours['peak_mem_mib'] is not None:
        rows.append({
            'what': f'pair synthesis, peak GPU memory (max_memory_allocated per batch; {setting})',
            'official': memory_text(off['peak_mem_mib']),
            'ours': memory_text(ours['peak_mem_mib']),
            'ratio': f'{off["peak_mem_mib"] / ours["peak_mem_mib"]:.2f}×',
        })  # fmt: skip
    return rows


if __name__ == '__main__':
    main()
