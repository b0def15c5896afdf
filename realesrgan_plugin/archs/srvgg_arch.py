"""SRVGGNetCompact: the small VGG-style generator of realesr-animevideov3 / realesr-general-x4v3.

A plain stack of 3x3 convs and activations at LR resolution, a pixel shuffle, and a
nearest-upsampled copy of the input added as the residual. Module indices inside ``body``
match the official release files, so their state dicts load with ``strict=True``.
"""

from __future__ import annotations

from realesrgan_plugin.core.registration import register_official

import torch
import torch.nn.functional as F
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

ACTIVATIONS = ('relu', 'prelu', 'leakyrelu')


def _make_activation(act_type: str, num_feat: int) -> nn.Module:
    if act_type == 'relu':
        return nn.ReLU(inplace=True)
    if act_type == 'prelu':
        return nn.PReLU(num_parameters=num_feat)
    if act_type == 'leakyrelu':
        return nn.LeakyReLU(negative_slope=0.1, inplace=True)
    raise ValueError(f'SRVGGNetCompact: act_type must be one of {ACTIVATIONS}, got {act_type!r}')


@register_official(ARCH_REGISTRY)
class SRVGGNetCompact(nn.Module):
    """Compact VGG-style SR network (no BN), any integer ``upscale``.

    Args:
        num_in_ch: input channels. num_out_ch: output channels. num_feat: feature width.
        num_conv: number of body convs between the first and last conv.
        upscale: integer scale factor. act_type: 'relu' | 'prelu' | 'leakyrelu'.
    """

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        num_conv: int = 16,
        upscale: int = 4,
        act_type: str = 'prelu',
    ) -> None:
        super().__init__()
        if upscale < 1:
            raise ValueError(f'SRVGGNetCompact: upscale must be >= 1, got {upscale}')
        self.num_in_ch, self.num_out_ch, self.upscale = num_in_ch, num_out_ch, upscale
        self.num_feat, self.num_conv, self.act_type = num_feat, num_conv, act_type  # the official attributes
        layers: list[nn.Module] = [
            nn.Conv2d(num_in_ch, num_feat, 3, 1, 1),
            _make_activation(act_type, num_feat),
        ]
        for _ in range(num_conv):
            layers += [nn.Conv2d(num_feat, num_feat, 3, 1, 1), _make_activation(act_type, num_feat)]
        layers.append(nn.Conv2d(num_feat, num_out_ch * upscale * upscale, 3, 1, 1))
        self.body = nn.ModuleList(layers)
        self.upsampler = nn.PixelShuffle(upscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for layer in self.body:
            out = layer(out)
        out = self.upsampler(out)
        base = x if self.num_in_ch == self.num_out_ch else x.mean(dim=1, keepdim=True)
        return out + F.interpolate(base, scale_factor=self.upscale, mode='nearest')
