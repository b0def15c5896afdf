"""The official x4plus degradation and kernel settings, read from the shipped option file
(``options/train_realesrgan_x4plus.yml``, checked against the paper by tests/test_options.py), so
every bench feeds both implementations exactly what training uses."""

from __future__ import annotations

from pathlib import Path

import yaml

OPTIONS_FILE = Path(__file__).resolve().parents[1] / 'options' / 'train_realesrgan_x4plus.yml'
_STAGE_KEYS = ('resize_prob', 'resize_range', 'gaussian_noise_prob', 'noise_range', 'poisson_scale_range')
_STAGE_KEYS += ('gray_noise_prob', 'jpeg_range')
_KERNEL_KEYS = ('blur_kernel_size', 'kernel_list', 'kernel_prob', 'sinc_prob', 'blur_sigma', 'betag_range')
_KERNEL_KEYS += ('betap_range',)


def _load() -> dict:
    with open(OPTIONS_FILE, encoding='utf-8') as f:
        return yaml.safe_load(f)


def degradation_settings() -> dict:
    """Top-level keys of both degradation stages (``resize_prob`` ... ``jpeg_range2``, ``second_blur_prob``)."""
    opt = _load()
    keys = [*_STAGE_KEYS, 'second_blur_prob', *(k + '2' for k in _STAGE_KEYS)]
    return {k: opt[k] for k in keys}


def kernel_settings() -> dict:
    """Dataset-side kernel keys of both stages and ``final_sinc_prob``."""
    train = _load()['datasets']['train']
    keys = [*_KERNEL_KEYS, *(k + '2' for k in _KERNEL_KEYS), 'final_sinc_prob']
    return {k: train[k] for k in keys}
