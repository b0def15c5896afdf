"""PSNR for MMEngine's evaluator, computed exactly as BasicSR's validation computes it.

Both hosts turn the output and the ground truth into 8-bit images with BasicSR's
``tensor2img`` and call BasicSR's ``calculate_psnr``, so the same weights on the same
validation set report the same number on either host.
"""

from __future__ import annotations

from collections.abc import Sequence

from realesrgan_plugin.mmengine.registry import METRICS

import numpy as np
from basicsr.metrics import calculate_psnr
from basicsr.utils import tensor2img
from mmengine.evaluator import BaseMetric


@METRICS.register_module()
class PSNR(BaseMetric):
    """Mean PSNR (dB) over images; predictions are dicts with 'pred' and 'gt' (CxHxW in [0, 1]).

    Args:
        crop_border: pixels cropped from each edge first (BasicSR's ``crop_border``; the scale).
        test_y_channel: PSNR on the Y channel of YCbCr instead of RGB.
    """

    default_prefix = ''

    def __init__(self, crop_border: int = 4, test_y_channel: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.crop_border = crop_border
        self.test_y_channel = test_y_channel

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            pred, gt = tensor2img(sample['pred'].float().cpu()), tensor2img(sample['gt'].float().cpu())
            psnr = calculate_psnr(pred, gt, crop_border=self.crop_border, test_y_channel=self.test_y_channel)
            self.results.append(float(psnr))

    def compute_metrics(self, results: list) -> dict:
        return {'PSNR': float(np.mean(results))}
