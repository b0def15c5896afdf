"""Host-agnostic pieces of a Real-ESRNet / Real-ESRGAN training step.

The BasicSR models (``*_model.py`` here) and the MMEngine wrappers both call these: how a batch
of HR crops becomes a degraded training pair, which target each loss compares against, the
generator and discriminator losses with the official log keys, and the EMA update.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import torch
from torch import nn

KERNEL_KEYS = ('kernel1', 'kernel2', 'sinc_kernel')


@dataclass
class TrainingPair:
    """What a step trains on: the degraded input, its HR target and the USM-sharpened target."""

    lq: torch.Tensor
    gt: torch.Tensor
    gt_usm: torch.Tensor | None = None


def kernels_from_batch(data: Mapping) -> dict[str, torch.Tensor] | None:
    """The CPU-made blur kernels of a batch (datasets with ``kernels_on_cpu: true``), else None.

    They stay where the loader put them (the host): the synthesis measures their supports there
    and sends them to the device with its other per-sample numbers, in one non-blocking copy.
    """
    if all(k in data for k in KERNEL_KEYS):
        return {k: data[k] for k in KERNEL_KEYS}
    return None


class TrainingPairMaker(nn.Module):
    """HR batch -> degraded training pair, with the official semantics of both stages.

    Real-ESRNet (``keep_gt_usm=False``) degrades ``gt`` (sharpened first when ``sharpen_gt``).
    Real-ESRGAN (``keep_gt_usm=True``) degrades ``usm(gt)``, crops ``gt`` and ``usm(gt)`` at the
    same place, passes ``(lq, gt)`` through the pair pool and sharpens the pooled ``gt`` again.
    """

    def __init__(self, synthesis: nn.Module, usm: nn.Module, pool, sharpen_gt: bool, keep_gt_usm: bool) -> None:
        super().__init__()
        self.synthesis = synthesis
        self.usm = usm
        self.pool = pool
        self.sharpen_gt = sharpen_gt
        self.keep_gt_usm = keep_gt_usm

    @torch.no_grad()
    def forward(
        self,
        gt: torch.Tensor,
        kernels: Mapping[str, torch.Tensor] | None = None,
        generator: torch.Generator | None = None,
        host_generator: torch.Generator | None = None,
    ) -> TrainingPair:
        """``generator`` (on ``gt``'s device) draws the noise fields, ``host_generator`` (CPU) every
        choice of the batch: see ``synthesis_generators``."""
        draw = {'kernels': kernels, 'generator': generator, 'host_generator': host_generator}
        if self.keep_gt_usm:
            gt_usm = self.usm(gt)
            lq, (gt, gt_usm) = self.synthesis(gt_usm, gt, gt_usm, **draw)
            lq, gt = self.pool(lq, gt)
            return TrainingPair(lq.contiguous(), gt, self.usm(gt))
        if self.sharpen_gt:
            gt = self.usm(gt)
        lq, (gt,) = self.synthesis(gt, gt, **draw)
        lq, gt = self.pool(lq, gt)
        return TrainingPair(lq.contiguous(), gt)


@dataclass
class LossTargets:
    l1: torch.Tensor
    percep: torch.Tensor
    gan: torch.Tensor


def loss_targets(gt: torch.Tensor, gt_usm: torch.Tensor | None, opt: Mapping) -> LossTargets:
    """Each loss compares against ``gt_usm`` unless its ``*_gt_usm`` option is False (official default: True)."""

    def pick(key: str) -> torch.Tensor:
        return gt if opt.get(key, True) is False or gt_usm is None else gt_usm

    return LossTargets(pick('l1_gt_usm'), pick('percep_gt_usm'), pick('gan_gt_usm'))


def updates_generator(current_iter: int, net_d_iters: int, net_d_init_iters: int) -> bool:
    """The generator is trained every ``net_d_iters`` iterations, after ``net_d_init_iters`` D-only ones."""
    return current_iter % net_d_iters == 0 and current_iter > net_d_init_iters


def pixel_and_perceptual_losses(
    output: torch.Tensor,
    targets: LossTargets,
    cri_pix: nn.Module | None,
    cri_perceptual: nn.Module | None,
    losses: OrderedDict,
    prefix: str = 'l_g_',
) -> torch.Tensor | int:
    """Add ``<prefix>pix``, ``<prefix>percep`` and ``<prefix>style`` to ``losses``; return their sum.
    The official keys: ``l_g_*`` for Real-ESRGAN, ``l_*`` for Real-ESRNet."""
    total = 0
    if cri_pix is not None:
        losses[f'{prefix}pix'] = cri_pix(output, targets.l1)
        total = total + losses[f'{prefix}pix']
    if cri_perceptual is not None:
        percep, style = cri_perceptual(output, targets.percep)
        if percep is not None:
            losses[f'{prefix}percep'] = percep
            total = total + percep
        if style is not None:
            losses[f'{prefix}style'] = style
            total = total + style
    return total


def generator_gan_loss(net_d: nn.Module, output: torch.Tensor, cri_gan: nn.Module, losses: OrderedDict) -> torch.Tensor:
    """``l_g_gan``: the discriminator should take the output for real."""
    losses['l_g_gan'] = cri_gan(net_d(output), True, is_disc=False)
    return losses['l_g_gan']


def discriminator_real_loss(net_d: nn.Module, real: torch.Tensor, cri_gan: nn.Module, losses: OrderedDict):
    pred = net_d(real)
    losses['l_d_real'] = cri_gan(pred, True, is_disc=True)
    losses['out_d_real'] = torch.mean(pred.detach())
    return losses['l_d_real']


def discriminator_fake_loss(net_d: nn.Module, fake: torch.Tensor, cri_gan: nn.Module, losses: OrderedDict):
    pred = net_d(fake.detach())
    losses['l_d_fake'] = cri_gan(pred, False, is_disc=True)
    losses['out_d_fake'] = torch.mean(pred.detach())
    return losses['l_d_fake']


@torch.no_grad()
def ema_update(ema_net: nn.Module, net: nn.Module, decay: float) -> None:
    """``ema = decay * ema + (1 - decay) * net`` over parameters, as the official (bit-identical,
    batched with ``torch._foreach_*``)."""
    net_params = dict(net.named_parameters())
    ema_params, src = [], []
    for name, param in ema_net.named_parameters():
        ema_params.append(param.data)
        src.append(net_params[name].data)
    torch._foreach_mul_(ema_params, decay)
    torch._foreach_add_(ema_params, src, alpha=1 - decay)


AMP_DTYPES = {'bf16': torch.bfloat16, 'bfloat16': torch.bfloat16, 'fp16': torch.float16, 'float16': torch.float16}


def amp_dtype(value) -> torch.dtype | None:
    """Parse the ``amp`` option: None/False/'none' = full precision, 'bf16' or 'fp16'."""
    if value in (None, False, 'none', 'None', 'fp32', ''):
        return None
    try:
        return AMP_DTYPES[str(value).lower()]
    except KeyError:
        raise ValueError(f'Unknown amp option {value!r}: expected bf16, fp16 or none') from None


def autocast(device: torch.device, dtype: torch.dtype | None) -> AbstractContextManager:
    """Mixed-precision context for ``dtype`` on ``device`` (a no-op without amp)."""
    if dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
