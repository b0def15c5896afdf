"""Real-ESRGAN (stage 2) as an MMEngine ``BaseModel``: generator + U-Net discriminator, two optimisers.

One iteration is the official one: the generator step (L1 + perceptual + GAN losses, the
discriminator frozen) every ``net_d_iters`` iterations after ``net_d_init_iters``, then the
discriminator step on real and fake as two backward passes, then the EMA update. The loss
arithmetic and log keys are the BasicSR host's (:mod:`realesrgan_plugin.core.training_steps`).
Optimisers come as an ``OptimWrapperDict`` with keys ``generator`` and ``discriminator``; under
DDP use ``model_wrapper_cfg=dict(type='MMSeparateDistributedDataParallel')``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from realesrgan_plugin.core.training_steps import (
    discriminator_fake_loss,
    discriminator_real_loss,
    generator_gan_loss,
    loss_targets,
    pixel_and_perceptual_losses,
    updates_generator,
)
from realesrgan_plugin.losses import build_training_loss
from realesrgan_plugin.mmengine.realesrnet_model import DEFAULT_PIXEL_LOSS, RealESRNetModel, bare
from realesrgan_plugin.mmengine.registry import MODELS

import torch
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapperDict

DEFAULT_GAN_LOSS = dict(type='GANLoss', gan_type='vanilla', real_label_val=1.0, fake_label_val=0.0, loss_weight=0.1)


@MODELS.register_module()
class RealESRGANModel(RealESRNetModel):
    """Args (besides :class:`RealESRNetModel`'s):
    discriminator: network config (``UNetDiscriminatorSN``).
    gan_loss: BasicSR ``gan_opt``. l1_gt_usm / percep_gt_usm / gan_gt_usm: which losses compare
    against the sharpened target (official: True, True, False). net_d_iters / net_d_init_iters:
    as BasicSR's ``train`` options. init_discriminator: BasicSR's ``pretrain_network_d``.
    """

    keep_gt_usm = True

    def __init__(
        self,
        generator: dict,
        discriminator: dict,
        pixel_loss: dict | None = DEFAULT_PIXEL_LOSS,
        perceptual_loss: dict | None = None,
        gan_loss: dict = DEFAULT_GAN_LOSS,
        l1_gt_usm: bool = True,
        percep_gt_usm: bool = True,
        gan_gt_usm: bool = False,
        net_d_iters: int = 1,
        net_d_init_iters: int = 0,
        ema_decay: float = 0.999,
        init_generator: Mapping[str, Any] | str | None = None,
        init_discriminator: Mapping[str, Any] | str | None = None,
        data_preprocessor: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(
            generator,
            pixel_loss=pixel_loss,
            perceptual_loss=perceptual_loss,
            ema_decay=ema_decay,
            init_generator=init_generator,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg,
        )
        self.discriminator = MODELS.build(discriminator)
        self._losses['gan'] = build_training_loss(gan_loss)
        self.target_opt = {'l1_gt_usm': l1_gt_usm, 'percep_gt_usm': percep_gt_usm, 'gan_gt_usm': gan_gt_usm}
        self.net_d_iters, self.net_d_init_iters = int(net_d_iters), int(net_d_init_iters)
        if init_discriminator is not None:
            self.load_discriminator(init_discriminator)

    @staticmethod
    def current_iter() -> int:
        """BasicSR's 1-based ``current_iter`` of the iteration being run."""
        return int(MessageHub.get_current_instance().get_info('iter', 0)) + 1

    def train_step(self, data: dict, optim_wrapper: OptimWrapperDict) -> dict[str, torch.Tensor]:
        if not isinstance(optim_wrapper, OptimWrapperDict) or {'generator', 'discriminator'} - set(
            optim_wrapper.keys()
        ):
            raise TypeError(
                'RealESRGANModel needs optim_wrapper=dict(constructor="MultiOptimWrapperConstructor", '
                'generator=dict(...), discriminator=dict(...))'
            )
        data = self.data_preprocessor(data, training=True)
        lq, samples = data['inputs'], data['data_samples']
        targets = loss_targets(samples['gt'], samples['gt_usm'], self.target_opt)
        gan = self.loss_module('gan', lq.device)
        net_d = bare(self.discriminator)
        losses: OrderedDict = OrderedDict()

        # generator step (the discriminator frozen; used unwrapped: its DDP sees no gradients here)
        g_wrapper, d_wrapper = optim_wrapper['generator'], optim_wrapper['discriminator']
        net_d.requires_grad_(False)
        if updates_generator(self.current_iter(), self.net_d_iters, self.net_d_init_iters):
            with g_wrapper.optim_context(self.generator):
                output = self.generator(lq)
                total = pixel_and_perceptual_losses(
                    output,
                    targets,
                    self.loss_module('pixel', lq.device),
                    self.loss_module('perceptual', lq.device),
                    losses,
                )
                total = total + generator_gan_loss(net_d, output, gan, losses)
            g_wrapper.update_params(total)
        else:
            with torch.no_grad(), g_wrapper.optim_context(self.generator):
                output = self.generator(lq)

        # discriminator step: real then fake, two backward passes (as the official)
        net_d.requires_grad_(True)
        with d_wrapper.optim_context(self.discriminator):
            l_d_real = discriminator_real_loss(self.discriminator, targets.gan, gan, losses)
        d_wrapper.backward(l_d_real)
        with d_wrapper.optim_context(self.discriminator):
            l_d_fake = discriminator_fake_loss(self.discriminator, output.detach().clone(), gan, losses)
        d_wrapper.backward(l_d_fake)
        d_wrapper.step()
        d_wrapper.zero_grad()

        self.update_ema()
        return {k: v.detach() for k, v in losses.items()}
