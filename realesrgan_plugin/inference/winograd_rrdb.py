"""RRDBNet inference on the CPU through Winograd F(6,3) convolutions (see ``winograd.py``).

Same weights and outputs as BasicSR's ``RRDBNet.forward`` up to float rounding, about 3x
faster on one AVX2 EPYC core. Two things beyond the cheaper convs:

* In a dense block every conv reads the concatenation of all earlier outputs. The Winograd
  transform is linear and per channel, so each 32-channel output is transformed once, into its
  channels of one transformed buffer of 64 + 4 * 32 channels (``winograd.v_shape``), and every
  later conv's GEMM reads its leading channels: no concatenation and no repeated transform.
* The x2 nearest upsamplings are folded into the next conv's input transform and the
  full-resolution convs run in cache-sized strips, so the 4x-sized tensors are written once.
"""

from __future__ import annotations

import threading

from realesrgan_plugin.inference.winograd import (
    POINTS,
    WinogradConv,
    Workspace,
    gemm,
    input_transform,
    output_transform,
    tile_count,
    tile_rows,
    v_shape,
)

import torch
import torch.nn.functional as F
from torch import nn

LEAKY_SLOPE = 0.2
RESIDUAL_SCALE = 0.2


def _dense_block_convs(rdb: nn.Module) -> list[WinogradConv]:
    """conv1..conv4 (leaky ReLU fused) and conv5 of one residual dense block."""
    grow = [WinogradConv(c, slope=LEAKY_SLOPE) for c in (rdb.conv1, rdb.conv2, rdb.conv3, rdb.conv4)]
    return [*grow, WinogradConv(rdb.conv5)]


class WinogradRRDBNet(nn.Module):
    """Inference-only CPU float32 view of an ``RRDBNet`` (shares its parameters and state-dict keys;
    the transformed weights are taken once, here: rebuild it after changing the weights)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.scale = int(net.scale)
        self.num_feat = net.conv_first.out_channels
        self.num_grow_ch = net.body[0].rdb1.conv1.out_channels
        self.blocks = [_dense_block_convs(rdb) for rrdb in net.body for rdb in (rrdb.rdb1, rrdb.rdb2, rrdb.rdb3)]
        self.conv_body = WinogradConv(net.conv_body)
        self.conv_up1 = WinogradConv(net.conv_up1, slope=LEAKY_SLOPE)
        self.conv_up2 = WinogradConv(net.conv_up2, slope=LEAKY_SLOPE)
        self.conv_hr = WinogradConv(net.conv_hr, slope=LEAKY_SLOPE)
        self.work = Workspace()
        self._lock = threading.Lock()  # the workspace is shared: one forward at a time

    def release_scratch(self) -> None:
        """Free the kept scratch tensors (after an out-of-memory); waits for a running forward."""
        with self._lock:
            self.work.clear()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.float32 or x.device.type != 'cpu':
            raise ValueError(f'WinogradRRDBNet runs float32 on the CPU, got {x.dtype} on {x.device}')
        if self.scale == 2:
            x = F.pixel_unshuffle(x, 2)
        elif self.scale == 1:
            x = F.pixel_unshuffle(x, 4)
        feat = self.net.conv_first(x).permute(0, 2, 3, 1).contiguous()
        with self._lock:
            try:
                return self._body_and_tail(feat)
            finally:
                self.work.trim()

    def _body_and_tail(self, feat: torch.Tensor) -> torch.Tensor:
        body = self._trunk(feat)
        work = self.work
        # Strips read halo rows of their input: outputs never go into the tensor being read.
        feat = self.conv_body(body, work, residual=feat, out=work.get('body_out', *feat.shape))
        feat = self.conv_up1(feat, work, up=2, out=work.get('up1', *self._shape(feat, 2)))
        feat = self.conv_up2(feat, work, up=2, out=work.get('up2', *self._shape(feat, 2)))
        feat = self.conv_hr(feat, work, out=work.get('hr', *self._shape(feat, 1)))
        # 3 output channels fill no vector of the Winograd GEMM; oneDNN's direct conv on the
        # channels-last view was twice as fast here (measured at 512x512).
        return self.net.conv_last(feat.permute(0, 3, 1, 2)).contiguous()

    @staticmethod
    def _shape(x: torch.Tensor, up: int) -> tuple[int, int, int, int]:
        n, h, w, c = x.shape
        return n, h * up, w * up, c

    def _trunk(self, feat: torch.Tensor) -> torch.Tensor:
        """The 3 * num_block dense blocks; returns a workspace tensor (``feat`` is left intact)."""
        n, h, w, nf = feat.shape
        gc, work = self.num_grow_ch, self.work
        tiles = tile_count(n, tile_rows(h), w)
        v = work.get('dense_v', *v_shape(tiles, nf + 4 * gc))
        m_grow, m_feat = work.get('m_grow', tiles, POINTS, gc), work.get('m_feat', tiles, POINTS, nf)
        grown = work.get('grown', n, h, w, gc)
        buffers = [work.get(f'feat{i}', n, h, w, nf) for i in range(3)]
        body = feat
        for index, block in enumerate(self.blocks):
            if index % 3 == 0:
                rrdb_in = body
            out = next(b for b in buffers if b is not body and b is not rrdb_in)
            input_transform(body, v, 0, stream=True)
            channels = nf
            for conv in block[:4]:
                gemm(v, channels, conv.u, m_grow)
                output_transform(m_grow, grown, conv.bias, slope=conv.slope)
                input_transform(grown, v, channels, stream=True)
                channels += gc
            last = block[4]
            gemm(v, channels, last.u, m_feat)
            output_transform(m_feat, out, last.bias, residual=body, alpha=RESIDUAL_SCALE)
            if index % 3 == 2:
                out.mul_(RESIDUAL_SCALE).add_(rrdb_in)
            body = out
        return body
