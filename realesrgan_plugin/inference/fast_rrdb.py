"""An allocation-free forward for BasicSR's RRDBNet: same weights, same arithmetic, less copying.

The official forward concatenates the growing feature stack of every dense block
(``cat(x, x1)``, ``cat(x, x1, x2)``...): 640 channels copied per block, 69 blocks per image.
Here each block writes its 32-channel outputs into one preallocated buffer whose leading
channels are, in NCHW, contiguous views: every conv reads its input in place. LeakyReLU and the
0.2 residual scalings run in place. The result equals ``RRDBNet.forward`` to the last bit.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _dense_block(rdb: nn.Module, x: torch.Tensor, stack: torch.Tensor) -> torch.Tensor:
    channels = x.shape[1]
    stack[:, :channels] = x
    for conv in (rdb.conv1, rdb.conv2, rdb.conv3, rdb.conv4):
        grown = F.leaky_relu_(conv(stack[:, :channels]), 0.2)
        stack[:, channels : channels + grown.shape[1]] = grown
        channels += grown.shape[1]
    return rdb.conv5(stack[:, :channels]).mul_(0.2).add_(x)


class FastRRDBNet(nn.Module):
    """Inference-only view of an ``RRDBNet`` (shares its parameters, same state-dict keys)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.scale = int(net.scale)
        self.num_grow_ch = net.body[0].rdb1.conv1.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        net = self.net
        if self.scale == 2:
            x = F.pixel_unshuffle(x, 2)
        elif self.scale == 1:
            x = F.pixel_unshuffle(x, 4)
        feat = net.conv_first(x)
        n, c, h, w = feat.shape
        stack = feat.new_empty(n, c + 4 * self.num_grow_ch, h, w)
        body = feat
        for rrdb in net.body:
            out = _dense_block(rrdb.rdb1, body, stack)
            out = _dense_block(rrdb.rdb2, out, stack)
            out = _dense_block(rrdb.rdb3, out, stack)
            body = out.mul_(0.2).add_(body)
        feat = net.conv_body(body).add_(feat)
        feat = F.leaky_relu_(net.conv_up1(F.interpolate(feat, scale_factor=2, mode='nearest')), 0.2)
        feat = F.leaky_relu_(net.conv_up2(F.interpolate(feat, scale_factor=2, mode='nearest')), 0.2)
        return net.conv_last(F.leaky_relu_(net.conv_hr(feat), 0.2))


def is_rrdbnet(model: nn.Module) -> bool:
    return type(model).__name__ == 'RRDBNet' and hasattr(model, 'conv_first') and hasattr(model, 'body')
