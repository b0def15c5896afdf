"""Pictures and tables of the demo: comparison strips, loss curves from BasicSR logs, metrics.

Kept apart from the demo's pipeline so each piece can be tested on tiny inputs.
"""

from __future__ import annotations

import io
import os
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

from realesrgan_plugin.core.atomic import write_bytes_atomic
from realesrgan_plugin.core.img_io import write_image

import cv2
import numpy as np

# BasicSR's MessageLogger: "[name..][epoch:  0, iter:   1,200, lr:(1.000e-04,)] [eta: ...] l_pix: 1.2345e-02 ..."
_ITER = re.compile(r'\biter:\s*([\d,]+)')
_LOSS = re.compile(r'\b(\w+): (-?\d+\.\d+e[+-]\d+)')
# BasicSR's validation: "\t # psnr: 16.7091\tBest: ..." right after the log line of that iteration
_METRIC = re.compile(r'# (\w+): (-?\d+(?:\.\d+)?)\b')
NIQE_BLOCK = 96


def read_training_log(path: str | os.PathLike) -> dict[str, list[tuple[int, float]]]:
    """Every logged scalar of a BasicSR train log: ``{'l_pix': [(iter, value), ...], ...}``;
    validation metrics as ``'val_<name>'`` at the iteration logged just before them."""
    curves: dict[str, list[tuple[int, float]]] = defaultdict(list)
    last_step = 0
    with open(path, encoding='utf-8', errors='replace') as f:
        for line in f:
            it = _ITER.search(line)
            if not it:
                metric = _METRIC.search(line)
                if metric:
                    points = curves[f'val_{metric.group(1)}']
                    if points and points[-1][0] == last_step:  # BasicSR validates again after the last iteration
                        points.pop()
                    points.append((last_step, float(metric.group(2))))
                continue
            step = last_step = int(it.group(1).replace(',', ''))
            tail = line[it.end() :]
            tail = tail[tail.find(')]') + 2 :] if ')]' in tail else tail  # skip the learning rates
            for name, value in _LOSS.findall(tail):
                curves[name].append((step, float(value)))
    return dict(curves)


def moving_average(values: Sequence[float], window: int = 5) -> np.ndarray:
    """Centred moving average (shorter windows at the ends): batch-4 losses are noisy."""
    values = np.asarray(values, dtype=np.float64)
    half = window // 2
    return np.array([values[max(0, i - half) : i + half + 1].mean() for i in range(len(values))])


def plot_loss_curves(stages: Mapping[str, Mapping[str, Sequence[tuple[int, float]]]], path: str | os.PathLike) -> Path:
    """One panel per training stage (e.g. Real-ESRNet, Real-ESRGAN), one line per loss (logged
    points faint, their moving average bold); PNG."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    stages = {name: curves for name, curves in stages.items() if curves}
    if not stages:
        raise ValueError('no loss values to plot (empty training logs?)')
    fig, axes = plt.subplots(1, len(stages), figsize=(8 * len(stages), 4), squeeze=False)
    for ax, (stage, curves) in zip(axes[0], stages.items(), strict=True):
        losses = {k: v for k, v in curves.items() if not k.startswith('val_')}
        for name, points in sorted(losses.items()):
            steps, values = zip(*points, strict=True)
            (line,) = ax.plot(steps, values, marker='.', alpha=0.35, linewidth=0.8)
            ax.plot(steps, moving_average(values), color=line.get_color(), linewidth=2, label=name)
        ax.set_title(stage)
        ax.set_xlabel('iteration')
        ax.set_ylabel('loss (faint: logged, bold: moving average)')
        ax.grid(alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        metrics = {k: v for k, v in curves.items() if k.startswith('val_')}
        if metrics:
            twin = ax.twinx()
            for name, points in sorted(metrics.items()):
                steps, values = zip(*points, strict=True)
                twin.plot(steps, values, 'k--s', linewidth=1.5, markersize=5, label=f'{name} (right axis)')
            twin.set_ylabel('validation')
            more_handles, more_labels = twin.get_legend_handles_labels()
            handles, labels = handles + more_handles, labels + more_labels
        ax.legend(handles, labels, fontsize='small', loc='upper left', bbox_to_anchor=(1.14, 1), framealpha=0.9)
    fig.tight_layout()
    path = Path(path)
    buffer = io.BytesIO()
    fig.savefig(buffer, format='png', dpi=100)
    plt.close(fig)
    write_bytes_atomic(path, buffer.getvalue())
    return path


def _label(img: np.ndarray, text: str, height: int = 28) -> np.ndarray:
    banner = np.full((height, img.shape[1], 3), 255, np.uint8)
    scale = 0.6 if img.shape[1] >= 200 else 0.4
    cv2.putText(banner, text, (6, height - 9), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([banner, img], axis=0)


def comparison_row(panels: Sequence[tuple[str, np.ndarray]], gap: int = 4) -> np.ndarray:
    """Labelled BGR uint8 panels of one height side by side, white gaps between them."""
    height = panels[0][1].shape[0]
    parts = []
    for i, (name, img) in enumerate(panels):
        if img.shape[0] != height:
            raise ValueError(f'panel {name!r} is {img.shape[0]} px high, expected {height}')
        if i:
            parts.append(np.full((height + 28, gap, 3), 255, np.uint8))
        parts.append(_label(img, name))
    return np.concatenate(parts, axis=1)


def stack_rows(rows: Sequence[np.ndarray], gap: int = 8) -> np.ndarray:
    """Rows of possibly different widths, left-aligned on white."""
    width = max(r.shape[1] for r in rows)
    out = []
    for i, row in enumerate(rows):
        if i:
            out.append(np.full((gap, width, 3), 255, np.uint8))
        pad = np.full((row.shape[0], width - row.shape[1], 3), 255, np.uint8)
        out.append(np.concatenate([row, pad], axis=1))
    return np.concatenate(out, axis=0)


def write_comparison(rows: Sequence[np.ndarray], path: str | os.PathLike) -> Path:
    path = Path(path)
    write_image(path, stack_rows(rows))
    return path


def image_metrics(img: np.ndarray, gt: np.ndarray | None, crop_border: int = 4) -> dict[str, float]:
    """PSNR / SSIM (RGB, against ``gt`` when given) and NIQE (no reference, Y channel) with BasicSR's
    own implementations (the numbers papers report); images BGR uint8."""
    from basicsr.metrics import calculate_niqe, calculate_psnr, calculate_ssim

    h, w = (s - 2 * crop_border for s in img.shape[:2])
    enough_blocks = (h // NIQE_BLOCK) * (w // NIQE_BLOCK) >= 2  # NIQE fits a covariance over 96x96 blocks
    niqe = float('nan')
    if enough_blocks:
        niqe = float(calculate_niqe(img.astype(np.float32), crop_border, input_order='HWC', convert_to='y'))
    out = {'NIQE': niqe}
    if gt is not None:
        out['PSNR'] = float(calculate_psnr(img, gt, crop_border, input_order='HWC'))
        out['SSIM'] = float(calculate_ssim(img, gt, crop_border, input_order='HWC'))
    return out


def metrics_markdown(table: Mapping[str, Mapping[str, Mapping[str, float]]], note: str = '') -> str:
    """``table[image][method] = {'PSNR': .., 'SSIM': .., 'NIQE': ..}`` as a Markdown table.
    PSNR/SSIM: higher is better; NIQE: lower is better."""
    lines = [
        '| image | method | PSNR (dB) ↑ | SSIM ↑ | NIQE ↓ |',
        '| --- | --- | ---: | ---: | ---: |',
    ]
    for image, methods in table.items():
        for method, m in methods.items():
            psnr = f'{m["PSNR"]:.2f}' if 'PSNR' in m else '–'
            ssim = f'{m["SSIM"]:.4f}' if 'SSIM' in m else '–'
            niqe = f'{m["NIQE"]:.3f}' if np.isfinite(m['NIQE']) else '–'
            lines.append(f'| {image} | {method} | {psnr} | {ssim} | {niqe} |')
    text = '\n'.join(lines) + '\n'
    return f'{note}\n\n{text}' if note else text
