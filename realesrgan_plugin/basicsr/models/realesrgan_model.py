"""Real-ESRGAN: the second stage, RRDBNet + U-Net SN discriminator with L1, VGG19 perceptual and GAN losses."""

from __future__ import annotations

from collections import OrderedDict

from realesrgan_plugin.basicsr.models.realesrnet_model import RealESRNetModel
from realesrgan_plugin.core.registration import register_official
from realesrgan_plugin.core.training_steps import (
    discriminator_fake_loss,
    discriminator_real_loss,
    generator_gan_loss,
    loss_targets,
    pixel_and_perceptual_losses,
    updates_generator,
)
from realesrgan_plugin.losses import build_optional_loss

from basicsr.archs import build_network
from basicsr.utils.registry import MODEL_REGISTRY


@register_official(MODEL_REGISTRY)
class RealESRGANModel(RealESRNetModel):
    """Official options: ``l1_gt_usm``, ``percep_gt_usm``, ``gan_gt_usm``, ``train.net_d_iters``,
    ``train.net_d_init_iters``, ``train.gan_opt`` / ``perceptual_opt`` / ``pixel_opt``, ``network_d``,
    ``path.pretrain_network_d``; logs ``l_g_pix``, ``l_g_percep``, ``l_g_gan``, ``l_d_real``,
    ``l_d_fake``, ``out_d_real``, ``out_d_fake``."""

    def init_training_settings(self) -> None:
        train_opt = self.opt['train']
        self.setup_ema(train_opt)
        self.net_d = self.model_to_device(build_network(self.opt['network_d']))
        self.print_network(self.net_d)
        load_path = self.opt['path'].get('pretrain_network_d')
        if load_path is not None:
            param_key = self.opt['path'].get('param_key_d', 'params')
            self.load_network(self.net_d, load_path, self.opt['path'].get('strict_load_d', True), param_key)
        self.net_g.train()
        self.net_d.train()

        self.cri_pix = build_optional_loss(train_opt, 'pixel_opt', self.device)
        self.cri_perceptual = build_optional_loss(train_opt, 'perceptual_opt', self.device)
        self.cri_gan = build_optional_loss(train_opt, 'gan_opt', self.device)
        if self.cri_gan is None:
            raise ValueError('Real-ESRGAN needs train.gan_opt')
        self.net_d_iters = train_opt.get('net_d_iters', 1)
        self.net_d_init_iters = train_opt.get('net_d_init_iters', 0)
        self.setup_optimizers()
        self.setup_schedulers()
        self.setup_amp()
        self.setup_memory_format()
        self.setup_host_memory()
        self.setup_synthesis(sharpen_gt=False, keep_gt_usm=True)

    def setup_optimizers(self) -> None:
        train_opt = self.opt['train']
        optim_g, optim_d = dict(train_opt['optim_g']), dict(train_opt['optim_d'])
        self.optimizer_g = self.get_optimizer(optim_g.pop('type'), self.net_g.parameters(), **optim_g)
        self.optimizer_d = self.get_optimizer(optim_d.pop('type'), self.net_d.parameters(), **optim_d)
        self.optimizers = [self.optimizer_g, self.optimizer_d]

    def feed_data(self, data) -> None:
        self.feed_training_pair(data, keep_gt_usm=True)

    def optimize_parameters(self, current_iter: int) -> None:
        targets = loss_targets(self.gt, self.gt_usm, self.opt)
        losses = OrderedDict()

        # generator (the discriminator is frozen while its gradients are not wanted)
        self.net_d.requires_grad_(False)
        self.optimizer_g.zero_grad(set_to_none=True)
        with self.autocast():
            self.output = self.net_g(self.lq)
        if updates_generator(current_iter, self.net_d_iters, self.net_d_init_iters):
            with self.autocast():
                total = pixel_and_perceptual_losses(self.output, targets, self.cri_pix, self.cri_perceptual, losses)
                total = total + generator_gan_loss(self.net_d, self.output, self.cri_gan, losses)
            self.backward(total)
            self.step(self.optimizer_g)

        # discriminator: real then fake, as two backward passes (as the official)
        self.net_d.requires_grad_(True)
        self.optimizer_d.zero_grad(set_to_none=True)
        with self.autocast():
            l_d_real = discriminator_real_loss(self.net_d, targets.gan, self.cri_gan, losses)
        self.backward(l_d_real)
        with self.autocast():
            l_d_fake = discriminator_fake_loss(self.net_d, self.output, self.cri_gan, losses)
        self.backward(l_d_fake)
        self.step(self.optimizer_d)
        self.finish_step()

        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)
        self.log_dict = self.reduce_loss_dict(losses)

    def save(self, epoch: int, current_iter: int) -> None:
        """``net_g`` (+ ``params_ema``) and ``net_d`` weights, then the training state (written last)."""
        if hasattr(self, 'net_g_ema'):
            self.save_network([self.net_g, self.net_g_ema], 'net_g', current_iter, param_key=['params', 'params_ema'])
        else:
            self.save_network(self.net_g, 'net_g', current_iter)
        self.save_network(self.net_d, 'net_d', current_iter)
        self.save_training_state(epoch, current_iter)
