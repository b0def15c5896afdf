"""Real-ESRNet (stage 1) as an MMEngine ``BaseModel``: the generator trained with L1 on synthesised pairs.

State-dict keys: ``generator.<official>`` and ``generator_ema.<official>`` (EMA with the official
decay 0.999, updated after every optimiser step, exactly BasicSR's ``model_ema``), so weights
convert to and from BasicSR's ``params``/``params_ema`` by prefix alone (see :mod:`.checkpoint`).
The losses are not part of the state dict (no VGG weights in every checkpoint).
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from realesrgan_plugin.core.training_steps import LossTargets, ema_update, pixel_and_perceptual_losses
from realesrgan_plugin.losses import build_training_loss
from realesrgan_plugin.mmengine.checkpoint import discriminator_state, generator_state, load_checkpoint_file
from realesrgan_plugin.mmengine.registry import MODELS

import torch
from mmengine.model import BaseModel, is_model_wrapper
from mmengine.optim import OptimWrapper, OptimWrapperDict
from torch import nn

DEFAULT_PIXEL_LOSS = dict(type='L1Loss', loss_weight=1.0, reduction='mean')


def bare(module: nn.Module) -> nn.Module:
    """The network inside a DDP wrapper (or the network itself)."""
    return (
        module.module if is_model_wrapper(module) or isinstance(module, nn.parallel.DistributedDataParallel) else module
    )


def load_weights_file(spec: Mapping[str, Any] | str) -> tuple[dict, str, str, bool]:
    """``init_generator``/``init_discriminator`` spec -> (checkpoint, path, key, strict)."""
    spec = {'path': spec} if isinstance(spec, str) else dict(spec)
    path = spec['path']
    return load_checkpoint_file(path), path, spec.get('key', 'params_ema'), spec.get('strict', True)


@MODELS.register_module()
class RealESRNetModel(BaseModel):
    """Args:
    generator: network config (``RRDBNet`` / ``SRVGGNetCompact`` with BasicSR's ``network_g`` keys).
    pixel_loss / perceptual_loss: BasicSR loss options (``pixel_opt`` / ``perceptual_opt``); None = off.
    ema_decay: 0.999 as the official; 0 disables the EMA generator.
    init_generator: ``dict(path=..., key='params_ema', strict=True)`` or a path: start from these
        weights (BasicSR's ``pretrain_network_g`` + ``param_key_g``; BasicSR, MMEngine or mmagic
        files). Generator and EMA both start from them, as in BasicSR.
    data_preprocessor: a :class:`RealESRGANDataPreprocessor` config (the synthesis).
    """

    #: Stage semantics passed to the data preprocessor.
    keep_gt_usm = False

    def __init__(
        self,
        generator: dict,
        pixel_loss: dict | None = DEFAULT_PIXEL_LOSS,
        perceptual_loss: dict | None = None,
        ema_decay: float = 0.999,
        init_generator: Mapping[str, Any] | str | None = None,
        data_preprocessor: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        preprocessor = dict(data_preprocessor or dict(type='RealESRGANDataPreprocessor'))
        preprocessor['keep_gt_usm'] = self.keep_gt_usm
        super().__init__(data_preprocessor=preprocessor, init_cfg=init_cfg)
        self.generator = MODELS.build(generator)
        self.ema_decay = float(ema_decay)
        self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False) if self.ema_decay > 0 else None
        # Losses are kept out of the module tree: not in checkpoints, moved to the device on use.
        self._losses = {
            'pixel': build_training_loss(pixel_loss) if pixel_loss else None,
            'perceptual': build_training_loss(perceptual_loss) if perceptual_loss else None,
        }
        if self._losses['pixel'] is None and self._losses['perceptual'] is None:
            raise ValueError(f'{type(self).__name__} needs pixel_loss or perceptual_loss (both are None)')
        if init_generator is not None:
            self.load_generator(init_generator)

    # ------------------------------------------------------------- weights
    def load_generator(self, spec: Mapping[str, Any] | str) -> None:
        """Generator and EMA from a BasicSR / MMEngine / mmagic file (BasicSR's pretrain_network_g)."""
        ckpt, path, key, strict = load_weights_file(spec)
        state = generator_state(ckpt, key, name=path)
        self.generator.load_state_dict(state, strict=strict)
        if self.generator_ema is not None:
            self.generator_ema.load_state_dict(generator_state(ckpt, 'params_ema', name=path), strict=strict)

    def load_discriminator(self, spec: Mapping[str, Any] | str) -> None:
        ckpt, path, _, strict = load_weights_file(spec)
        state = discriminator_state(ckpt, name=path)
        if state is None:
            raise ValueError(f'{path}: no discriminator weights in it')
        self.discriminator.load_state_dict(state, strict=strict)

    def train(self, mode: bool = True) -> RealESRNetModel:
        super().train(mode)
        if self.generator_ema is not None:
            self.generator_ema.eval()
        return self

    def loss_module(self, name: str, device: torch.device) -> nn.Module | None:
        loss = self._losses.get(name)
        return None if loss is None else loss.to(device)

    def update_ema(self) -> None:
        if self.generator_ema is not None:
            ema_update(self.generator_ema, bare(self.generator), self.ema_decay)

    @property
    def test_network(self) -> nn.Module:
        """The EMA generator when there is one (what BasicSR validates and releases)."""
        return self.generator_ema if self.generator_ema is not None else self.generator

    # ------------------------------------------------------------- steps
    @staticmethod
    def generator_wrapper(optim_wrapper: OptimWrapper | OptimWrapperDict) -> OptimWrapper:
        return optim_wrapper['generator'] if isinstance(optim_wrapper, OptimWrapperDict) else optim_wrapper

    def train_step(self, data: dict, optim_wrapper: OptimWrapper | OptimWrapperDict) -> dict[str, torch.Tensor]:
        data = self.data_preprocessor(data, training=True)
        lq, gt = data['inputs'], data['data_samples']['gt']
        wrapper = self.generator_wrapper(optim_wrapper)
        losses: OrderedDict = OrderedDict()
        with wrapper.optim_context(self.generator):
            output = self.generator(lq)
            total = pixel_and_perceptual_losses(
                output,
                LossTargets(gt, gt, gt),
                self.loss_module('pixel', lq.device),
                self.loss_module('perceptual', lq.device),
                losses,
                prefix='l_',
            )
        wrapper.update_params(total)
        self.update_ema()
        return {k: v.detach() for k, v in losses.items()}

    def forward(self, inputs: torch.Tensor, data_samples: dict | None = None, mode: str = 'tensor'):
        """'tensor': the (EMA) generator's raw output; 'predict': one dict per image with 'pred'
        (clamped to [0, 1]), 'gt' and paths, for metrics. Training goes through :meth:`train_step`."""
        if mode == 'loss':
            raise NotImplementedError(f'{type(self).__name__} trains through train_step, not forward(mode="loss")')
        with torch.no_grad():
            output = self.test_network(inputs)
        if mode == 'tensor':
            return output
        if mode != 'predict':
            raise ValueError(f"mode must be 'tensor', 'predict' or 'loss', got {mode!r}")
        samples = data_samples or {}
        results = []
        for i, pred in enumerate(output.clamp(0, 1)):
            item = {'pred': pred}
            for key, value in samples.items():
                item[key] = value[i]
            results.append(item)
        return results
