"""Look at the training pairs a configuration makes: LQ/GT PNG pairs and one contact sheet.

The pairs are made exactly as in training (dataset crop, USM-sharpened GT degraded by the
second-order pipeline); the sheet shows each LQ enlarged (nearest neighbour, so the pixels
stay visible) beside its GT crop.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from realesrgan_plugin.core.degradations.filters import USMSharp
from realesrgan_plugin.core.degradations.synthesis import RealESRGANSynthesis, dump_pairs, synthesis_generators

import numpy as np
import torch
from tqdm import tqdm


def contact_sheet(lq: torch.Tensor, gt: torch.Tensor, columns: int = 4) -> np.ndarray:
    """Grid of [LQ enlarged | GT] tiles as a BGR uint8 image."""
    scale = gt.shape[-1] // lq.shape[-1]
    up = lq.repeat_interleave(scale, dim=-2).repeat_interleave(scale, dim=-1)
    tiles = torch.cat([up, torch.ones_like(gt[..., :4]), gt], dim=-1)  # white gap between the two
    n, c, h, w = tiles.shape
    rows = -(-n // columns)
    sheet = torch.ones(c, rows * (h + 4), columns * (w + 4))
    for i in range(n):
        r, col = divmod(i, columns)
        sheet[:, r * (h + 4) : r * (h + 4) + h, col * (w + 4) : col * (w + 4) + w] = tiles[i].float().cpu()
    arr = sheet.clamp(0, 1).permute(1, 2, 0).numpy()[:, :, ::-1]
    return np.ascontiguousarray(np.rint(arr * 255).astype(np.uint8))


def preview_pairs(
    opt: Mapping, out_dir: str | Path, count: int = 16, seed: int = 0, device: str = 'cpu', batch_size: int = 8
) -> Path:
    """Write ``count`` pairs for a BasicSR option dict (its ``datasets.train`` is read); return the sheet path."""
    import random

    from realesrgan_plugin.basicsr.data.realesrgan_dataset import RealESRGANDataset
    from realesrgan_plugin.core.img_io import write_image

    random.seed(seed)
    torch.manual_seed(seed)
    dataset = RealESRGANDataset({**opt['datasets']['train'], 'kernels_on_cpu': False})  # drawn on the device here
    synthesis = RealESRGANSynthesis.from_options(opt).to(device)
    usm = USMSharp().to(device)
    generator, host_generator = synthesis_generators(device, seed)
    out_dir = Path(out_dir)
    all_lq, all_gt = [], []
    for start in tqdm(range(0, count, batch_size), desc='synthesising pairs'):
        n = min(batch_size, count - start)
        gt = torch.stack([dataset[(start + j) % len(dataset)]['gt'] for j in range(n)]).to(device)
        lq, (gt_crop,) = synthesis(usm(gt), gt, generator=generator, host_generator=host_generator)
        dump_pairs(lq, gt_crop, out_dir, start=start)
        all_lq.append(lq.cpu())
        all_gt.append(gt_crop.cpu())
    sheet_path = out_dir / 'contact_sheet.png'
    write_image(sheet_path, contact_sheet(torch.cat(all_lq), torch.cat(all_gt)))
    return sheet_path
