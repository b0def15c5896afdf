"""VGG perceptual loss with weights loaded from a known file (see :mod:`.vgg_weights`).

Same features and arithmetic as BasicSR's ``PerceptualLoss`` (the official Real-ESRGAN loss), but
BasicSR's extractor looks for a file relative to the current directory and otherwise calls
torchvision with the removed ``pretrained=True``. The models build this class whenever an option
file asks for ``type: PerceptualLoss``; the extra key ``vgg_weights_path`` names a local file.
"""

from __future__ import annotations

import copy
import os
from collections import OrderedDict
from collections.abc import Mapping

from realesrgan_plugin.core.checkpoint import safe_torch_load
from realesrgan_plugin.losses.vgg_weights import resolve_vgg_weights

import torch
from basicsr.archs.vgg_arch import NAMES, insert_bn
from basicsr.losses import build_loss
from basicsr.losses.basic_loss import PerceptualLoss as BasicSRPerceptualLoss
from torch import nn
from torchvision.models import vgg as tv_vgg

VGG_CONFIGS = {'vgg11': 'A', 'vgg13': 'B', 'vgg16': 'D', 'vgg19': 'E'}  # torchvision's layer tables
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg_layer_names(vgg_type: str) -> list[str]:
    names = NAMES[vgg_type.replace('_bn', '')]
    return insert_bn(names) if 'bn' in vgg_type else list(names)


def load_vgg_features(vgg_type: str, weights_path: str | os.PathLike, num_layers: int) -> nn.Sequential:
    """The first ``num_layers`` modules of torchvision's ``vgg_type.features`` with weights from
    ``weights_path`` (a full torchvision state dict, or only its ``features.*`` entries)."""
    features = tv_vgg.make_layers(tv_vgg.cfgs[VGG_CONFIGS[vgg_type.replace('_bn', '')]], 'bn' in vgg_type)
    features = features[:num_layers]  # built without the 100M-parameter classifier, never used here
    state = safe_torch_load(weights_path, map_location='cpu')
    if isinstance(state, Mapping) and 'params' in state and isinstance(state['params'], Mapping):
        state = state['params']
    wanted = {k: v for k, v in state.items() if k.startswith('features.')}
    wanted = {k[len('features.') :]: v for k, v in wanted.items() if int(k.split('.')[1]) < num_layers}
    missing, unexpected = features.load_state_dict(wanted, strict=False)
    if missing:
        raise RuntimeError(f'VGG weights {os.fspath(weights_path)!r} lack {missing} for {vgg_type}')
    return features


class VGGFeatureExtractor(nn.Module):
    """Frozen VGG returning the activations named in ``layer_name_list`` (e.g. 'conv5_4' = before relu)."""

    def __init__(
        self,
        layer_name_list: list[str],
        vgg_type: str = 'vgg19',
        use_input_norm: bool = True,
        range_norm: bool = False,
        requires_grad: bool = False,
        remove_pooling: bool = False,
        pooling_stride: int = 2,
        weights_path: str | os.PathLike | None = None,
    ) -> None:
        super().__init__()
        self.layer_name_list = list(layer_name_list)
        self.use_input_norm = use_input_norm
        self.range_norm = range_norm
        names = vgg_layer_names(vgg_type)
        unknown = [n for n in self.layer_name_list if n not in names]
        if unknown:
            raise ValueError(f'Unknown {vgg_type} layer(s) {unknown} in perceptual layer_weights')
        num_layers = max(names.index(n) for n in self.layer_name_list) + 1
        features = load_vgg_features(vgg_type, resolve_vgg_weights(vgg_type, weights_path), num_layers)
        layers = OrderedDict()
        for name, module in zip(names, features):
            if 'pool' in name:
                if remove_pooling:
                    continue
                module = nn.MaxPool2d(kernel_size=2, stride=pooling_stride)
            layers[name] = module
        self.vgg_net = nn.Sequential(layers)
        self.vgg_net.train(requires_grad)
        self.requires_grad_(requires_grad)
        if use_input_norm:
            self.register_buffer('mean', torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
            self.register_buffer('std', torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def train(self, mode: bool = True) -> VGGFeatureExtractor:
        """The frozen extractor stays in eval mode whatever its parent does."""
        super().train(mode)
        if not any(p.requires_grad for p in self.parameters()):
            self.vgg_net.eval()
        return self

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.range_norm:
            x = (x + 1) / 2
        if self.use_input_norm:
            x = (x - self.mean) / self.std
        output = {}
        for name, layer in self.vgg_net._modules.items():
            x = layer(x)
            if name in self.layer_name_list:
                output[name] = x.clone()
        return output


class PerceptualLoss(BasicSRPerceptualLoss):
    """Weighted L1 (or l2 / Frobenius) distance of VGG features, plus optional Gram-matrix style loss.

    Returns ``(percep_loss, style_loss)``, each None when its weight is 0 (as BasicSR's). A subclass
    of BasicSR's ``PerceptualLoss``, so ``isinstance`` checks written for it hold; its constructor
    is not run (it would build BasicSR's extractor, which downloads with a removed torchvision API),
    and BasicSR's ``l2`` criterion (``torch.nn.L2loss``, which does not exist) works here."""

    def __init__(
        self,
        layer_weights: Mapping[str, float],
        vgg_type: str = 'vgg19',
        use_input_norm: bool = True,
        range_norm: bool = False,
        perceptual_weight: float = 1.0,
        style_weight: float = 0.0,
        criterion: str = 'l1',
        vgg_weights_path: str | os.PathLike | None = None,
    ) -> None:
        nn.Module.__init__(self)  # not BasicSR's __init__: see the class docstring
        if criterion not in ('l1', 'l2', 'fro'):
            raise ValueError(f"Unknown perceptual criterion {criterion!r}: expected 'l1', 'l2' or 'fro'")
        self.perceptual_weight = perceptual_weight
        self.style_weight = style_weight
        self.layer_weights = dict(layer_weights)
        self.criterion_type = criterion
        self.criterion = {'l1': nn.L1Loss(), 'l2': nn.MSELoss(), 'fro': None}[criterion]
        self.vgg = VGGFeatureExtractor(
            layer_name_list=list(self.layer_weights),
            vgg_type=vgg_type,
            use_input_norm=use_input_norm,
            range_norm=range_norm,
            weights_path=vgg_weights_path,
        )

    def _distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if self.criterion is None:
            return torch.norm(a - b, p='fro')
        return self.criterion(a, b)

    @staticmethod
    def gram_matrix(x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.size()
        features = x.view(n, c, w * h)
        return features.bmm(features.transpose(1, 2)) / (c * h * w)

    def forward(self, x: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        x_features = self.vgg(x)
        gt_features = self.vgg(gt.detach())
        percep_loss = style_loss = None
        if self.perceptual_weight > 0:
            percep_loss = 0
            for k in x_features:
                percep_loss += self._distance(x_features[k], gt_features[k]) * self.layer_weights[k]
            percep_loss *= self.perceptual_weight
        if self.style_weight > 0:
            style_loss = 0
            for k in x_features:
                gram_x, gram_gt = self.gram_matrix(x_features[k]), self.gram_matrix(gt_features[k])
                style_loss += self._distance(gram_x, gram_gt) * self.layer_weights[k]
            style_loss *= self.style_weight
        return percep_loss, style_loss


def build_training_loss(opt: Mapping) -> nn.Module:
    """BasicSR's ``build_loss``, except that ``type: PerceptualLoss`` builds :class:`PerceptualLoss`
    (weights from a known local file or a checked download, never ``pretrained=True``)."""
    opt = copy.deepcopy(dict(opt))
    if opt.get('type') == 'PerceptualLoss':
        opt.pop('type')
        return PerceptualLoss(**opt)
    return build_loss(opt)


def build_optional_loss(train_opt: Mapping, key: str, device: torch.device) -> nn.Module | None:
    """The loss configured under ``train_opt[key]`` on ``device``, or None when the key is absent/empty."""
    return build_training_loss(train_opt[key]).to(device) if train_opt.get(key) else None
