"""Foundation demo: build the plugin's generator from BasicSR's registry, train it briefly on a
scikit-image photo (bicubic x4 pairs), and write a comparison image. Replaced by the full demo."""

from __future__ import annotations

from pathlib import Path

import realesrgan_plugin  # noqa: F401
from realesrgan_plugin.utils.img_io import from_float32, write_image

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from basicsr.utils.registry import ARCH_REGISTRY
from skimage import data
from tqdm import trange


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / F.mse_loss(a.clamp(0, 1), b)))


def main(out_dir: Path = Path('demo_out'), steps: int = 300) -> None:
    torch.manual_seed(0)
    gt = torch.from_numpy(data.astronaut()[:256, 128:384].astype(np.float32) / 255).permute(2, 0, 1)[None]
    lq = F.interpolate(gt, scale_factor=0.25, mode='bicubic', antialias=True).clamp(0, 1)
    net = ARCH_REGISTRY.get('SRVGGNetCompact')(num_feat=32, num_conv=4, upscale=4, act_type='prelu')
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in trange(steps, desc='train SRVGGNetCompact (bicubic x4)'):
        loss = F.l1_loss(net(lq), gt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        sr = net(lq).clamp(0, 1)
    bicubic = F.interpolate(lq, scale_factor=4, mode='bicubic').clamp(0, 1)
    print(f'PSNR bicubic {psnr(bicubic, gt):.2f} dB, SRVGGNetCompact {psnr(sr, gt):.2f} dB')
    row = torch.cat([F.interpolate(lq, scale_factor=4, mode='nearest'), bicubic, sr, gt], dim=3)[0]
    path = out_dir / 'foundation_demo.png'
    write_image(path, cv2.cvtColor(from_float32(row.permute(1, 2, 0).numpy()), cv2.COLOR_RGB2BGR))
    print(f'wrote {path} (LQ | bicubic | SRVGGNetCompact | GT)')


if __name__ == '__main__':
    main()
