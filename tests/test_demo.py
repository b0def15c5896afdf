"""The demo's building blocks on tiny inputs (the full demo runs with `make demo`): loss curves
parsed from a log written by BasicSR's own MessageLogger, the plot, comparison strips, metrics."""

from __future__ import annotations

import logging

import realesrgan_plugin.basicsr  # noqa: F401  (compat + BasicSR registration before basicsr)
from realesrgan_plugin.core.img_io import read_image
from realesrgan_plugin.demo.evaluate import evaluate_photo, zoom
from realesrgan_plugin.demo.photos import HELD_OUT_PHOTOS, TRAIN_PHOTOS, load_photo, write_photos
from realesrgan_plugin.demo.pipeline import (
    DEMO_OPTIONS,
    ESRNET_OPTIONS,
    HELD_OUT,
    build_training_set,
    demo_options,
    load_options,
)
from realesrgan_plugin.demo.report import (
    comparison_row,
    image_metrics,
    metrics_markdown,
    plot_loss_curves,
    read_training_log,
    stack_rows,
)

import cv2
import numpy as np
import pytest
import torch
from basicsr.utils.logger import MessageLogger, get_root_logger


def write_basicsr_log(path, steps, losses):
    """Log ``losses[name][i]`` at ``steps[i]`` through BasicSR's MessageLogger into ``path``."""
    logger = get_root_logger()
    handler = logging.FileHandler(path, 'w')
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        opt = {'name': 'demo_RealESRNet', 'logger': {'print_freq': 1, 'use_tb_logger': False}, 'train': {}}
        opt['train']['total_iter'] = steps[-1]
        msg = MessageLogger(opt, start_iter=1)
        for i, step in enumerate(steps):
            log_vars = {'epoch': 0, 'iter': step, 'lrs': [2e-4], 'time': 0.1, 'data_time': 0.01}
            log_vars.update({name: values[i] for name, values in losses.items()})
            msg(log_vars)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        handler.close()


def test_loss_curves_from_a_basicsr_log(tmp_path):
    log = tmp_path / 'train.log'
    steps = [10, 20, 1500]  # 1,500 is printed with a thousands separator
    losses = {'l_g_pix': [0.5, 0.25, 0.125], 'l_d_real': [0.7, 0.69, 0.68]}
    write_basicsr_log(log, steps, losses)
    with open(log, 'a') as f:  # BasicSR's validation lines, after the iteration they belong to
        f.write('2026-01-01 00:00:00,000 INFO: Validation demo_val\n\t # psnr: 16.7091\tBest: 16.7091 @ 1500 iter\n')
    curves = read_training_log(log)
    assert set(curves) == {'l_g_pix', 'l_d_real', 'val_psnr'}  # not the learning rate or timings
    assert curves['val_psnr'] == [(1500, 16.7091)]
    assert curves['l_g_pix'] == [(10, 0.5), (20, 0.25), (1500, 0.125)]
    png = plot_loss_curves({'Real-ESRNet': curves, 'empty stage': {}}, tmp_path / 'loss.png')
    img = read_image(png)
    assert img.shape[1] >= 500 and img.std() > 10  # a real drawing, one panel
    with pytest.raises(ValueError, match='no loss'):
        plot_loss_curves({'a': {}}, tmp_path / 'none.png')


def test_photos_are_bundled_and_held_out_is_disjoint(tmp_path):
    assert not set(TRAIN_PHOTOS) & {*HELD_OUT_PHOTOS, 'cat'}  # skimage's cat is chelsea
    assert [name for name, *_ in HELD_OUT] == list(HELD_OUT_PHOTOS)
    for name in (*TRAIN_PHOTOS, *HELD_OUT_PHOTOS):
        img = load_photo(name)
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    (path,) = write_photos(['camera'], tmp_path)
    assert read_image(path).shape == (512, 512, 3)


def test_comparison_and_metrics(astronaut_bgr):
    gt = astronaut_bgr[:256, 128:384]
    lq = cv2.resize(gt, (64, 64), interpolation=cv2.INTER_AREA)
    result = evaluate_photo('astronaut', gt, lq, lambda x: cv2.resize(x, None, fx=4, fy=4))
    assert list(result.panels) == ['LQ (input)', 'bicubic', 'Real-ESRGAN', 'GT']
    assert result.metrics['GT'].keys() == {'NIQE'} and result.metrics['bicubic']['PSNR'] > 20
    assert result.metrics['LQ (input)']['PSNR'] < result.metrics['bicubic']['PSNR']
    row = comparison_row(list(result.panels.items()))
    assert row.shape[0] == 256 + 28 and row.shape[1] == 4 * 256 + 3 * 4
    np.testing.assert_array_equal(row[28:, -256:], gt)  # GT is the last panel, untouched
    detail = comparison_row([(m, zoom(img, (0, 0, 32), 2)) for m, img in result.panels.items()])
    assert stack_rows([row, detail]).shape[1] == row.shape[1]
    table = metrics_markdown({'astronaut': result.metrics})
    assert '| astronaut | bicubic |' in table and table.count('\n') == 2 + 4
    assert result.metrics['bicubic']['NIQE'] > result.metrics['GT']['NIQE']  # blur looks less natural
    assert np.isnan(image_metrics(gt[:96, :96], None)['NIQE'])  # too small for NIQE: no number, no crash
    with pytest.raises(ValueError, match='GT'):
        comparison_row([('LQ', lq), ('GT', gt)])


def test_demo_training_set_and_options_feed_basicsr(tmp_path):
    """The demo's LMDB (built with the prep tools) and its options (from options/demo) give a
    BasicSR training dataset that yields GT crops; iterations and paths are overridden."""
    from basicsr.data import build_dataset

    lmdb_path = build_training_set(tmp_path / 'data', names=('camera', 'coffee'))
    n_sub = len((lmdb_path / 'meta_info.txt').read_text().splitlines())
    assert n_sub == 4 * 4 + 4 * 5  # 512x512 and 400x600 photos in 128 px tiles, last ones flush with the edge
    val_dir = tmp_path / 'val'
    opt = demo_options(load_options(DEMO_OPTIONS, ESRNET_OPTIONS), lmdb_path, val_dir, 30, None)
    assert opt['train']['total_iter'] == 30 and opt['logger']['save_checkpoint_freq'] == 30
    assert opt['val']['val_freq'] % opt['logger']['print_freq'] == 0
    assert opt['datasets']['val']['dataroot_gt'] == str((val_dir / 'gt').resolve())
    train_opt = dict(opt['datasets']['train'], phase='train', scale=opt['scale'])
    dataset = build_dataset(train_opt)
    assert len(dataset) == n_sub
    gt = dataset[0]['gt']
    assert gt.shape[0] == 3 and gt.dtype == torch.float32 and 0 <= gt.min() and gt.max() <= 1
