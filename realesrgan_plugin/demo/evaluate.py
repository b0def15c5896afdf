"""Held-out evaluation of the demo: degrade GT photos with the plugin's synthesis, restore them,
and build the comparison rows and metrics (LQ | bicubic | Real-ESRGAN | GT)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from realesrgan_plugin.core.img_io import from_float32, to_float32
from realesrgan_plugin.demo.report import comparison_row, image_metrics

import cv2
import numpy as np
import torch

Restorer = Callable[[np.ndarray], np.ndarray]


def bgr_to_tensor(img: np.ndarray) -> torch.Tensor:
    """HxWx3 BGR uint8 -> 1x3xHxW RGB float in [0, 1]."""
    return torch.from_numpy(to_float32(img[:, :, ::-1].copy())).permute(2, 0, 1)[None]


def tensor_to_bgr(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(from_float32(t[0].permute(1, 2, 0).float().cpu().numpy())[:, :, ::-1])


def synthesis_options(gt_size: int, scale: int = 4) -> dict:
    """A BasicSR-style option dict for ``RealESRGANSynthesis.from_options``: the official x4plus
    degradation settings (the synthesis' defaults) at the given crop size."""
    return {'scale': scale, 'gt_size': gt_size, 'datasets': {'train': {}}}


def degrade(gt: np.ndarray, gt_size: int, seed: int, scale: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Second-order Real-ESRGAN degradation of one BGR photo. Returns ``(lq, gt_crop)`` where
    ``gt_crop`` is the gt_size x gt_size region the LQ was made from."""
    from realesrgan_plugin.core.degradations import RealESRGANSynthesis

    synthesis = RealESRGANSynthesis.from_options(synthesis_options(gt_size, scale))
    source = bgr_to_tensor(gt)
    with torch.no_grad():
        lq, (gt_crop,) = synthesis(source, source, generator=torch.Generator().manual_seed(seed))
    return tensor_to_bgr(lq), tensor_to_bgr(gt_crop)


def zoom(img: np.ndarray, box: tuple[int, int, int], factor: int) -> np.ndarray:
    """Crop ``box = (top, left, size)`` and enlarge it ``factor`` times with nearest neighbour."""
    top, left, size = box
    crop = img[top : top + size, left : left + size]
    return cv2.resize(crop, None, fx=factor, fy=factor, interpolation=cv2.INTER_NEAREST)


@dataclass
class HeldOutResult:
    name: str
    panels: dict[str, np.ndarray]  # method -> image at GT size
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)


def evaluate_photo(
    name: str, gt: np.ndarray, lq: np.ndarray, restore: Restorer, method: str = 'Real-ESRGAN'
) -> HeldOutResult:
    """Restore ``lq`` and compare nearest-upscaled LQ, bicubic and the restoration with ``gt``."""
    h, w = gt.shape[:2]
    restored = restore(lq)
    if restored.shape[:2] != (h, w):
        restored = cv2.resize(restored, (w, h), interpolation=cv2.INTER_CUBIC)
    panels = {
        'LQ (input)': cv2.resize(lq, (w, h), interpolation=cv2.INTER_NEAREST),
        'bicubic': cv2.resize(lq, (w, h), interpolation=cv2.INTER_CUBIC),
        method: restored,
        'GT': gt,
    }
    metrics = {m: image_metrics(img, None if m == 'GT' else gt) for m, img in panels.items()}
    return HeldOutResult(name, panels, metrics)


def comparison_rows(result: HeldOutResult, box: tuple[int, int, int] | None = None, factor: int = 3) -> list:
    """The full-size row, plus a zoomed detail row when ``box`` is given."""
    rows = [comparison_row([(f'{result.name}: {m}', img) for m, img in result.panels.items()])]
    if box is not None:
        zoomed = [(f'{m} (x{factor} zoom)', zoom(img, box, factor)) for m, img in result.panels.items()]
        rows.append(comparison_row(zoomed))
    return rows
