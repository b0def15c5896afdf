"""SRVGGNetCompact inference on the CPU through Winograd F(6,3) convolutions (see ``winograd.py``).

The compact nets (realesr-animevideov3, realesr-general-x4v3) are a plain chain of 3x3 convs,
each followed by a ReLU / LeakyReLU / PReLU. Every activation is a per-channel slope on the
negative side, so it is fused into the conv's output transform; the chain runs NHWC end to end
and only the pixel shuffle and the nearest-upsampled skip are left to torch.
"""

from __future__ import annotations

import threading

from realesrgan_plugin.inference.winograd import WinogradConv, Workspace

import torch
import torch.nn.functional as F
from torch import nn


def negative_slope(act: nn.Module, channels: int) -> torch.Tensor:
    """The activation as a per-channel slope for negative inputs (ReLU 0, LeakyReLU, PReLU)."""
    if isinstance(act, nn.PReLU):
        return act.weight.detach().float().cpu().reshape(-1).expand(channels)
    if isinstance(act, nn.LeakyReLU):
        return torch.full((channels,), float(act.negative_slope))
    if isinstance(act, nn.ReLU):
        return torch.zeros(channels)
    raise ValueError(f'no Winograd epilogue for activation {act}')


def is_srvgg(model: nn.Module) -> bool:
    return type(model).__name__ == 'SRVGGNetCompact' and hasattr(model, 'body') and hasattr(model, 'upscale')


class WinogradSRVGGNet(nn.Module):
    """Inference-only CPU float32 view of an ``SRVGGNetCompact`` (shares its parameters and
    state-dict keys; transformed weights are taken once, here)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        layers = list(net.body)
        convs, acts = layers[0::2], layers[1::2]
        self.convs = [WinogradConv(c, slope=negative_slope(a, c.out_channels)) for c, a in zip(convs, acts)]
        self.convs.append(WinogradConv(convs[-1]))
        self.work = Workspace()
        self._lock = threading.Lock()  # the workspace is shared: one forward at a time

    def release_scratch(self) -> None:
        """Free the kept scratch tensors (after an out-of-memory); waits for a running forward."""
        with self._lock:
            self.work.clear()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.float32 or x.device.type != 'cpu':
            raise ValueError(f'WinogradSRVGGNet runs float32 on the CPU, got {x.dtype} on {x.device}')
        net = self.net
        with self._lock:
            feat = x.permute(0, 2, 3, 1).contiguous()
            for index, conv in enumerate(self.convs[:-1]):
                feat = conv(feat, self.work, out=self.work.get(f'feat{index % 2}', *feat.shape[:3], conv.cout))
            out = self.convs[-1](feat, self.work).permute(0, 3, 1, 2)
            self.work.trim()
        out = F.pixel_shuffle(out, net.upscale)
        base = x if net.num_in_ch == net.num_out_ch else x.mean(dim=1, keepdim=True)
        return out + F.interpolate(base, scale_factor=net.upscale, mode='nearest')
