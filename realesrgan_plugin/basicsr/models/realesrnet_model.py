"""Real-ESRNet: the first stage, RRDBNet trained with L1 on synthesised second-order degradations."""

from __future__ import annotations

from collections import OrderedDict

from realesrgan_plugin.basicsr.models.training_runtime import TrainingRuntimeMixin
from realesrgan_plugin.core.options_schema import check_training_options
from realesrgan_plugin.core.registration import register_official
from realesrgan_plugin.core.training_steps import LossTargets, pixel_and_perceptual_losses
from realesrgan_plugin.losses import build_optional_loss

from basicsr.archs import build_network
from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger
from basicsr.utils.registry import MODEL_REGISTRY


@register_official(MODEL_REGISTRY)
class RealESRNetModel(TrainingRuntimeMixin, SRModel):
    """Options as the official: ``gt_usm`` (sharpen the target before degrading it), the degradation
    keys read by :class:`~realesrgan_plugin.core.degradations.RealESRGANSynthesis`, ``queue_size``,
    ``high_order_degradation`` (False = paired ``lq``/``gt`` data), ``train.ema_decay``; plus
    ``amp: bf16|fp16`` and ``channels_last``. Logs ``l_pix`` (and ``l_percep``/``l_style``)."""

    def __init__(self, opt):
        # BasicSR's own train_pipeline reaches the plugin only here: check the options before
        # anything is built (paths are the datasets' business, already opened by then).
        check_training_options(opt, source=f'the options of {opt.get("name")!r}', check_paths=False)
        self.runner_state = {}
        super().__init__(opt)

    def init_training_settings(self) -> None:
        self.net_g.train()
        train_opt = self.opt['train']
        self.setup_ema(train_opt)
        self.cri_pix = build_optional_loss(train_opt, 'pixel_opt', self.device)
        self.cri_perceptual = build_optional_loss(train_opt, 'perceptual_opt', self.device)
        if self.cri_pix is None and self.cri_perceptual is None:
            raise ValueError('Real-ESRNet needs train.pixel_opt or train.perceptual_opt')
        self.setup_optimizers()
        self.setup_schedulers()
        self.setup_amp()
        self.setup_memory_format()
        self.setup_host_memory()
        self.setup_synthesis(sharpen_gt=self.opt.get('gt_usm', False) is True, keep_gt_usm=False)

    def setup_ema(self, train_opt) -> None:
        """``net_g_ema`` (never wrapped in DDP) starting from the pretrained ``params_ema`` or a copy of net_g."""
        self.ema_decay = train_opt.get('ema_decay', 0)
        if self.ema_decay <= 0:
            return
        get_root_logger().info(f'Use Exponential Moving Average with decay: {self.ema_decay}')
        self.net_g_ema = build_network(self.opt['network_g']).to(self.device)
        load_path = self.opt['path'].get('pretrain_network_g')
        if load_path is not None:
            strict = self.opt['path'].get('strict_load_g', True)
            self.load_network(self.net_g_ema, load_path, strict, 'params_ema')
        else:
            self.model_ema(0)
        self.net_g_ema.eval()
        self.net_g_ema.requires_grad_(False)

    def feed_data(self, data) -> None:
        self.feed_training_pair(data, keep_gt_usm=False)

    def optimize_parameters(self, current_iter: int) -> None:
        self.optimizer_g.zero_grad(set_to_none=True)
        losses = OrderedDict()
        with self.autocast():
            self.output = self.net_g(self.lq)
            targets = LossTargets(self.gt, self.gt, self.gt)
            total = pixel_and_perceptual_losses(self.output, targets, self.cri_pix, self.cri_perceptual, losses, 'l_')
        self.backward(total)
        self.step(self.optimizer_g)
        self.finish_step()
        self.log_dict = self.reduce_loss_dict(losses)
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)
