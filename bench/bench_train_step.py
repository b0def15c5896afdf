"""Benchmark: one training step of Real-ESRNet / Real-ESRGAN, the plugin against the official realesrgan 0.3.0.

Runs each of ``--configs`` (model/net/batch/gt_size/crop; the default is the README's rows) and
reports two figures per side (each as wall-clock and as CPU time), median over ``--iters`` timed
steps after ``--warmup``:

* ``optimize``: ``model.optimize_parameters(it)`` alone (forward, losses, backward, Adam, EMA);
* ``iteration``: ``model.feed_data(batch)`` + ``optimize_parameters`` (synthesis, crop, pool, USM, step).

Each figure is taken twice: wall-clock time, and the CPU time of the side's process (user + system,
``time.process_time``). Both sides run one thread, so the CPU time is the work done, page faults
included, and it moves far less with the load of other programs (some: they share caches and
cores' siblings; same step, two loaded runs: 0.88x then 0.95x); the wall-clock time
of a shared machine also holds the time the process waited for a core (on a loaded 2-core machine
the wall-clock ratio of the same full-RRDBNet Real-ESRNet step was 1.15x in one run, 0.74x in the next).

The batch is what the dataset hands over: ``--batch`` photos (scikit-image, offline) cropped/padded to
``--crop-pad-size`` (the official dataset's 400), with the official per-sample CPU kernels for the
official model (made outside the timed region, as its dataset workers do); the plugin draws its
kernels on the device inside ``feed_data`` (timed). Networks: ``tiny`` RRDBNet (16 features, 1 block)
or ``full`` RRDBNet (64 features, 23 blocks) with the U-Net SN discriminator (16 / 64 features); BasicSR's
RRDBNet on both sides. VGG19 weights are random on both sides (timing only).

The pair pool (queue_size 180) is full before timing on both sides: after the first warm-up step
it is filled up with copies of the pairs it holds (the cost of a full pool does not depend on what
it holds; the official shuffles its whole queue every step), so timed steps are steady-state steps.

Each side runs in its own subprocess (the official package registers the same BasicSR names as the
plugin); the parent drives them in turns, one iteration each (ABAB, order swapped every step), so
both see the same machine load.
Workarounds in the official process only, at run time: ``.cuda()`` made a no-op on CPU,
the ``.view`` of a non-contiguous tensor in its ``filter2D`` made contiguous, torchvision's removed
``pretrained=True`` and module ``functional_tensor`` provided.

    python bench/bench_train_step.py [--configs realesrnet/tiny/4/256/400 ...] [--iters 4] [--device cpu]

Writes ``docs/bench/train_step-<cpu>.json`` (bench/common.py) and prints it as the last line: per
configuration the iteration-time ratio ``speedup_vs_official`` and ``optimize_speedup_vs_official``
(optimize_parameters alone), and the same in CPU time (``cpu_time_speedup_vs_official``,
``optimize_cpu_time_speedup_vs_official``); the top-level ``speedup_vs_official`` is the first
configuration's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import load_average, memory_text, peak_memory_mib, reset_peak_memory, write_result
from x4plus_settings import degradation_settings, kernel_settings

REPO = Path(__file__).resolve().parents[1]

DEGRADATION = degradation_settings()
KERNELS = kernel_settings()
NETS = {
    'tiny': ({'num_feat': 16, 'num_block': 1, 'num_grow_ch': 8}, 16),
    'full': ({'num_feat': 64, 'num_block': 23, 'num_grow_ch': 32}, 64),
}
PERCEPTUAL = {
    'type': 'PerceptualLoss',
    'layer_weights': {'conv1_2': 0.1, 'conv2_2': 0.1, 'conv3_4': 1, 'conv4_4': 1, 'conv5_4': 1},
    'vgg_type': 'vgg19',
    'use_input_norm': True,
    'perceptual_weight': 1.0,
    'style_weight': 0,
    'range_norm': False,
    'criterion': 'l1',
}


def training_options(args, workdir: str) -> dict:
    """The official x4plus options with the benchmark's sizes."""
    g_opt, d_feat = NETS[args.net]
    gan = args.model == 'realesrgan'
    opt = {
        'name': 'bench',
        'model_type': 'RealESRGANModel' if gan else 'RealESRNetModel',
        'scale': 4,
        'num_gpu': 1 if args.device == 'cuda' else 0,
        'manual_seed': 0,
        'is_train': True,
        'dist': False,
        'rank': 0,
        'world_size': 1,
        **DEGRADATION,
        'gt_size': args.gt_size,
        'queue_size': args.queue_size,
        'datasets': {'train': {**KERNELS, 'gt_size': args.gt_size, 'phase': 'train', 'scale': 4}},
        'network_g': {'type': 'RRDBNet', 'num_in_ch': 3, 'num_out_ch': 3, **g_opt},
        'path': {'pretrain_network_g': None, 'models': workdir, 'training_states': workdir},
        'train': {
            'ema_decay': 0.999,
            'optim_g': {'type': 'Adam', 'lr': 1e-4, 'weight_decay': 0, 'betas': [0.9, 0.99]},
            'scheduler': {'type': 'MultiStepLR', 'milestones': [400000], 'gamma': 0.5},
            'total_iter': 400000,
            'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'},
        },
    }
    if gan:
        opt.update(l1_gt_usm=True, percep_gt_usm=True, gan_gt_usm=False)
        opt['network_d'] = {'type': 'UNetDiscriminatorSN', 'num_in_ch': 3, 'num_feat': d_feat, 'skip_connection': True}
        opt['train'].update(
            optim_d={'type': 'Adam', 'lr': 1e-4, 'weight_decay': 0, 'betas': [0.9, 0.99]},
            perceptual_opt=dict(PERCEPTUAL),
            gan_opt={'type': 'GANLoss', 'gan_type': 'vanilla', 'real_label_val': 1.0, 'fake_label_val': 0.0,
                     'loss_weight': 0.1},
            net_d_iters=1,
            net_d_init_iters=0,
        )  # fmt: skip
    else:
        opt['gt_usm'] = True
    return opt


def photo_batches(count: int, batch: int, size: int, seed: int = 0):
    """``count`` batches of photo crops (float RGB, B x 3 x size x size), reflect-padded like the dataset."""
    import numpy as np
    import torch
    from skimage import data

    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        crops = []
        for _ in range(batch):
            img = photos[rng.integers(len(photos))].astype(np.float32) / 255
            if img.shape[0] < size or img.shape[1] < size:
                pad = ((0, max(0, size - img.shape[0])), (0, max(0, size - img.shape[1])), (0, 0))
                img = np.pad(img, pad, mode='reflect')
            top, left = rng.integers(img.shape[0] - size + 1), rng.integers(img.shape[1] - size + 1)
            crops.append(torch.from_numpy(np.ascontiguousarray(img[top : top + size, left : left + size])))
        out.append(torch.stack(crops).permute(0, 3, 1, 2).contiguous())
    return out


def official_kernels(batch: int) -> dict:
    """Per-sample kernels as the official RealESRGANDataset makes them (outside the timed region)."""
    import math
    import random

    import numpy as np
    import torch
    from basicsr.data.degradations import circular_lowpass_kernel, random_mixed_kernels

    def blur(suffix: str, sigma):
        size = random.choice(range(7, 22, 2))
        if np.random.uniform() < KERNELS['sinc_prob' + suffix]:
            omega = np.random.uniform(np.pi / 3, np.pi) if size < 13 else np.random.uniform(np.pi / 5, np.pi)
            k = circular_lowpass_kernel(omega, size, pad_to=False)
        else:
            k = random_mixed_kernels(
                KERNELS['kernel_list' + suffix], KERNELS['kernel_prob' + suffix], size, sigma, sigma,
                [-math.pi, math.pi], KERNELS['betag_range' + suffix], KERNELS['betap_range' + suffix],
                noise_range=None,
            )  # fmt: skip
        pad = (21 - size) // 2
        return torch.from_numpy(np.pad(k, ((pad, pad), (pad, pad))).astype(np.float32))

    def sinc():
        if np.random.uniform() < KERNELS['final_sinc_prob']:
            size = random.choice(range(7, 22, 2))
            omega = np.random.uniform(np.pi / 3, np.pi)
            return torch.from_numpy(circular_lowpass_kernel(omega, size, pad_to=21).astype(np.float32))
        pulse = torch.zeros(21, 21)
        pulse[10, 10] = 1
        return pulse

    return {
        'kernel1': torch.stack([blur('', KERNELS['blur_sigma']) for _ in range(batch)]),
        'kernel2': torch.stack([blur('2', KERNELS['blur_sigma2']) for _ in range(batch)]),
        'sinc_kernel': torch.stack([sinc() for _ in range(batch)]),
    }


def build_official(opt: dict, device: str):
    import importlib

    sys.modules['torchvision.transforms.functional_tensor'] = importlib.import_module(
        'torchvision.transforms._functional_tensor'
    )
    import torch
    import torchvision.models.vgg as tv_vgg

    original_vgg19 = tv_vgg.vgg19
    tv_vgg.vgg19 = lambda pretrained=False, **kw: original_vgg19(weights=None)  # random weights: timing only
    if device == 'cpu':
        torch.Tensor.cuda = lambda self, *a, **k: self
        torch.nn.Module.cuda = lambda self, *a, **k: self
    from basicsr.utils import img_process_util
    from realesrgan.models import realesrgan_model, realesrnet_model

    original_filter2d = img_process_util.filter2D
    for module in (realesrgan_model, realesrnet_model):
        module.filter2D = lambda img, kernel: original_filter2d(img.contiguous(), kernel)
    gan = opt['model_type'] == 'RealESRGANModel'
    return (realesrgan_model.RealESRGANModel if gan else realesrnet_model.RealESRNetModel)(opt)


def build_ours(opt: dict, workdir: str):
    sys.path.insert(0, str(REPO))
    import realesrgan_plugin.basicsr  # noqa: F401  (compat + BasicSR registration before basicsr)

    import torch
    import torchvision
    from basicsr.models import build_model

    if 'perceptual_opt' in opt['train']:
        path = Path(workdir) / 'vgg19_random.pth'
        features = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs['E'])
        torch.save({f'features.{k}': v for k, v in features.state_dict().items()}, path)
        opt['train']['perceptual_opt']['vgg_weights_path'] = str(path)
    return build_model(opt)


def fill_pool(model, impl: str) -> None:
    """Fill the model's pair pool up with copies of the pairs it holds (after one step)."""
    if impl == 'official':
        held = model.queue_ptr
        model.queue_lr = model.queue_lr[:held].repeat(model.queue_size // held, 1, 1, 1)
        model.queue_gt = model.queue_gt[:held].repeat(model.queue_size // held, 1, 1, 1)
        model.queue_ptr = model.queue_size
        return
    pool = model.pair_maker.pool
    state = pool.state_dict()
    copies = -(-pool.size // state['filled'])
    state['lq'] = state['lq'].repeat(copies, 1, 1, 1)[: pool.size]
    state['gt'] = state['gt'].repeat(copies, 1, 1, 1)[: pool.size]
    state['filled'] = pool.size
    pool.load_state_dict(state, device=model.device)


def worker(args) -> None:
    """Serve one side: build the model, then time one iteration per ``step`` line read on stdin and
    answer each with a JSON line (the parent alternates the two sides, so both see the same load)."""
    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as workdir:
        opt = training_options(args, workdir)
        torch.manual_seed(0)
        model = build_official(opt, args.device) if args.impl == 'official' else build_ours(opt, workdir)
        batches = photo_batches(args.warmup + args.iters, args.batch, args.crop_pad_size)
        sync = torch.cuda.synchronize if args.device == 'cuda' else (lambda: None)
        print('ready', flush=True)
        for it, gt in enumerate(batches, 1):
            if sys.stdin.readline().strip() != 'step':
                return
            data = {'gt': gt, 'gt_path': ['x'] * args.batch}
            if args.impl == 'official':
                data.update(official_kernels(args.batch))
            reset_peak_memory(args.device)  # synchronises on CUDA
            sync()
            t0, c0 = time.perf_counter(), time.process_time()
            model.feed_data(data)
            sync()
            t1, c1 = time.perf_counter(), time.process_time()
            model.optimize_parameters(it)
            sync()
            t2, c2 = time.perf_counter(), time.process_time()
            times = {
                'feed_data_s': t1 - t0,
                'optimize_s': t2 - t1,
                'feed_data_cpu_s': c1 - c0,
                'optimize_cpu_s': c2 - c1,
                'peak_mem_mib': peak_memory_mib(args.device),
            }
            print(json.dumps(times), flush=True)
            if it == 1:
                fill_pool(model, args.impl)


class Side:
    """A worker subprocess for one implementation."""

    def __init__(self, impl: str, argv: list[str]) -> None:
        env = dict(os.environ, OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS', '1'))
        env.pop('PYTHONPATH', None)  # the official side must not see the plugin
        cmd = [sys.executable, os.path.abspath(__file__), '--worker', impl, *argv]
        self.impl = impl
        self.proc = subprocess.Popen(
            cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=tempfile.gettempdir()
        )
        self.times: list[dict] = []
        self._expect('ready')

    def _expect(self, what: str) -> str:
        line = self.proc.stdout.readline()
        while line and not line.startswith(('ready', '{')):
            line = self.proc.stdout.readline()  # stray prints of the libraries
        if not line:
            raise RuntimeError(f'{self.impl} worker died (exit {self.proc.wait()}) waiting for {what}')
        return line

    def step(self) -> None:
        self.proc.stdin.write('step\n')
        self.proc.stdin.flush()
        self.times.append(json.loads(self._expect('a step')))

    def summary(self, warmup: int) -> dict:
        self.proc.stdin.close()
        self.proc.wait()
        timed = self.times[warmup:]
        peaks = [t['peak_mem_mib'] for t in timed if t.get('peak_mem_mib') is not None]
        summary = {'impl': self.impl, 'peak_mem_mib': max(peaks) if peaks else None}
        for suffix in ('_s', '_cpu_s'):
            feed = [t['feed_data' + suffix] for t in timed]
            optimize = [t['optimize' + suffix] for t in timed]
            summary['feed_data' + suffix] = statistics.median(feed)
            summary['optimize' + suffix] = statistics.median(optimize)
            summary['iteration' + suffix] = statistics.median(f + o for f, o in zip(feed, optimize))
        return summary


DEFAULT_CONFIGS = ['realesrnet/tiny/4/256/400', 'realesrnet/full/2/64/128', 'realesrgan/full/2/64/128']


def run_config(config: str, args) -> dict:
    """Both sides of one model/net/batch/gt_size/crop configuration, in alternating steps."""
    model, net, batch, gt_size, crop = config.split('/')
    argv = ['--model', model, '--net', net, '--batch', batch, '--gt-size', gt_size, '--crop-pad-size', crop]
    argv += ['--queue-size', str(args.queue_size), '--iters', str(args.iters), '--warmup', str(args.warmup)]
    argv += ['--threads', str(args.threads), '--device', args.device]
    sides = [Side('ours', argv), Side('official', argv)]
    for it in range(args.warmup + args.iters):
        for side in sides if it % 2 == 0 else sides[::-1]:
            side.step()
    ours, official = (side.summary(args.warmup) for side in sides)
    print(config, file=sys.stderr)
    for side in (official, ours):
        print(
            f'{side["impl"]:>8}: feed_data {side["feed_data_s"] * 1e3:8.1f} ms  optimize_parameters '
            f'{side["optimize_s"] * 1e3:8.1f} ms  iteration {side["iteration_s"] * 1e3:8.1f} ms  (CPU time: '
            f'{side["feed_data_cpu_s"] * 1e3:.1f} / {side["optimize_cpu_s"] * 1e3:.1f} / '
            f'{side["iteration_cpu_s"] * 1e3:.1f} ms)',
            file=sys.stderr,
        )
    return {
        'model': model,
        'net': net,
        'batch': int(batch),
        'gt_size': int(gt_size),
        'crop_pad_size': int(crop),
        'official': official,
        'ours': ours,
        'speedup_vs_official': round(official['iteration_s'] / ours['iteration_s'], 3),
        'optimize_speedup_vs_official': round(official['optimize_s'] / ours['optimize_s'], 3),
        'cpu_time_speedup_vs_official': round(official['iteration_cpu_s'] / ours['iteration_cpu_s'], 3),
        'optimize_cpu_time_speedup_vs_official': round(official['optimize_cpu_s'] / ours['optimize_cpu_s'], 3),
    }


def table_rows(runs: dict, threads: int) -> list[dict]:
    """Four README rows per configuration: the whole iteration and optimize_parameters alone, each in
    wall-clock and in CPU time."""
    rows = []
    for run in runs.values():
        name = {'realesrnet': 'Real-ESRNet', 'realesrgan': 'Real-ESRGAN'}[run['model']]
        setting = (
            f'{run["net"]} RRDBNet, batch {run["batch"]}, gt {run["gt_size"]}, crop {run["crop_pad_size"]}, '
            f'pool full, {threads} thread(s), median'
        )
        for part, key, ratio in (
            ('iteration (feed_data + optimize_parameters)', 'iteration_s', 'speedup_vs_official'),
            ('optimize_parameters', 'optimize_s', 'optimize_speedup_vs_official'),
            (
                'iteration (feed_data + optimize_parameters), CPU time',
                'iteration_cpu_s',
                'cpu_time_speedup_vs_official',
            ),
            ('optimize_parameters, CPU time', 'optimize_cpu_s', 'optimize_cpu_time_speedup_vs_official'),
        ):
            rows.append({
                'what': f'{name} {part}, {setting}',
                'official': f'{run["official"][key]:.3f} s',
                'ours': f'{run["ours"][key]:.3f} s',
                'ratio': f'{run[ratio]:.2f}×',
            })  # fmt: skip
        off_peak, our_peak = run['official']['peak_mem_mib'], run['ours']['peak_mem_mib']
        if off_peak is not None and our_peak is not None:
            rows.append({
                'what': f'{name} iteration, peak GPU memory (max_memory_allocated), {setting}',
                'official': memory_text(off_peak),
                'ours': memory_text(our_peak),
                'ratio': f'{off_peak / our_peak:.2f}×',
            })  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        '--configs', nargs='+', default=DEFAULT_CONFIGS, help='model/net/batch/gt_size/crop_pad_size (net: tiny|full)'
    )
    parser.add_argument('--queue-size', type=int, default=180)
    parser.add_argument('--iters', type=int, default=4)
    parser.add_argument('--warmup', type=int, default=2, help='untimed steps; the pool is filled after the first')
    parser.add_argument('--threads', type=int, default=1, help='torch threads per side (default: %(default)s)')
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    # one configuration, for the worker processes
    parser.add_argument('--worker', choices=['ours', 'official'], help=argparse.SUPPRESS)
    parser.add_argument('--model', choices=['realesrnet', 'realesrgan'], help=argparse.SUPPRESS)
    parser.add_argument('--net', choices=sorted(NETS), help=argparse.SUPPRESS)
    parser.add_argument('--batch', type=int, help=argparse.SUPPRESS)
    parser.add_argument('--gt-size', type=int, help=argparse.SUPPRESS)
    parser.add_argument('--crop-pad-size', type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.impl = args.worker
        worker(args)
        return
    started = load_average()
    runs = {config: run_config(config, args) for config in args.configs}
    result = {
        'device': args.device,
        'torch_threads': args.threads,
        'iters': args.iters,
        'warmup': args.warmup,
        'queue_size': args.queue_size,
        'runs': runs,
        'speedup_vs_official': next(iter(runs.values()))['speedup_vs_official'],
        'rows': table_rows(runs, args.threads),
    }
    write_result('train_step', result, started)


if __name__ == '__main__':
    main()
