"""The synthesis as MMEngine's data preprocessor: second-order degradation + pair pool on the model's device.

This is the MMEngine side of the "GPU synthesis" step: the dataset only loads HR crops
(``{'gt': ...}``); here, on whatever device the model lives, each batch is degraded by the one
:class:`~realesrgan_plugin.core.degradations.RealESRGANSynthesis`, passed through the
:class:`~realesrgan_plugin.core.degradations.TrainingPairPool`, and handed to the model as
``inputs=lq`` and ``data_samples={'gt', 'gt_usm'}``. Paired batches (validation) pass through.
The per-stage semantics are the BasicSR host's (:class:`~realesrgan_plugin.core.training_steps.TrainingPairMaker`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from realesrgan_plugin.core.degradations import (
    RealESRGANSynthesis,
    TrainingPairPool,
    USMSharp,
    synthesis_generators,
)
from realesrgan_plugin.core.training_steps import KERNEL_KEYS, TrainingPairMaker, kernels_from_batch
from realesrgan_plugin.mmengine.registry import MODELS

import torch
from mmengine.dist import get_rank
from mmengine.model import BaseDataPreprocessor

PATH_KEYS = ('lq_path', 'gt_path')


@MODELS.register_module()
class RealESRGANDataPreprocessor(BaseDataPreprocessor):
    """Args:
    degradations: the BasicSR option file's top-level degradation keys (``resize_prob``,
        ``noise_range``, ``jpeg_range``, ``second_blur_prob``, ``*2`` variants, ``gt_size``,
        ``scale``...); absent keys take the official x4plus values.
    kernels: the blur-kernel keys of the BasicSR train dataset (``blur_kernel_size``,
        ``kernel_list``, ``kernel_prob``, ``sinc_prob``, ``blur_sigma``, ..., ``final_sinc_prob``).
    queue_size: pair pool size (official 180; 0 disables it).
    gt_usm: Real-ESRNet: sharpen the target before degrading it (official ``gt_usm``).
    keep_gt_usm: Real-ESRGAN: degrade ``usm(gt)``, keep ``gt`` and ``gt_usm`` (set by that model).
    seed: seed of the synthesis and pool generators (plus the rank); None = from torch's seed,
        which the Runner's ``randomness.seed`` sets.
    """

    def __init__(
        self,
        degradations: Mapping[str, Any] | None = None,
        kernels: Mapping[str, Any] | None = None,
        queue_size: int = 180,
        gt_usm: bool = True,
        keep_gt_usm: bool = False,
        seed: int | None = None,
        non_blocking: bool = False,
    ) -> None:
        super().__init__(non_blocking=non_blocking)
        opt = {**dict(degradations or {}), 'datasets': {'train': dict(kernels or {})}}
        self.seed = (torch.initial_seed() if seed is None else int(seed)) % 2**31 + get_rank()
        self.usm = USMSharp()
        self.pair_maker = TrainingPairMaker(
            RealESRGANSynthesis.from_options(opt),
            self.usm,
            TrainingPairPool(queue_size, seed=self.seed),
            sharpen_gt=bool(gt_usm),
            keep_gt_usm=bool(keep_gt_usm),
        )
        self.keep_gt_usm = bool(keep_gt_usm)
        self._generators: tuple[torch.Generator, torch.Generator] | None = None

    def _current_generators(self) -> tuple[torch.Generator, torch.Generator]:
        """(noise generator on the current device, CPU generator of the choices), re-seeded if the
        device changed; one generator on the CPU (see ``synthesis_generators``)."""
        if self._generators is None or self._generators[0].device != self.device:
            self._generators = synthesis_generators(self.device, self.seed)
        return self._generators

    @property
    def generator(self) -> torch.Generator:
        return self._current_generators()[0]

    @property
    def host_generator(self) -> torch.Generator:
        return self._current_generators()[1]

    @property
    def pool(self) -> TrainingPairPool:
        return self.pair_maker.pool

    def forward(self, data: dict, training: bool = False) -> dict:
        kernels = kernels_from_batch(data)  # stay on the host: the synthesis moves them with its numbers
        data = self.cast_data({k: v for k, v in data.items() if kernels is None or k not in KERNEL_KEYS})
        if training and 'lq' not in data:
            if 'gt' not in data:
                raise KeyError(f"training batches need a 'gt' image (RealESRGANDataset); this one has {sorted(data)}")
            pair = self.pair_maker(data['gt'], kernels, self.generator, self.host_generator)
            samples = {'gt': pair.gt}
            if pair.gt_usm is not None:
                samples['gt_usm'] = pair.gt_usm
            return {'inputs': pair.lq, 'data_samples': samples}
        if 'lq' not in data:
            raise KeyError(f"validation/paired batches need an 'lq' image; this one has {sorted(data)}")
        samples = {k: data[k] for k in ('gt', *PATH_KEYS) if k in data}
        if training and self.keep_gt_usm and 'gt' in data:
            samples['gt_usm'] = self.usm(data['gt'])
        return {'inputs': data['lq'], 'data_samples': samples}

    # ---------------------------------------------------------------- resume
    def synthesis_state(self) -> dict[str, Any]:
        """The random generator and the pool: what an exact resume needs besides the weights."""
        state = {'seed': self.seed, 'generator': self.generator.get_state(), 'pool': self.pool.state_dict()}
        if self.host_generator is not self.generator:  # on an accelerator
            state['host_generator'] = self.host_generator.get_state()
        return state

    def load_synthesis_state(self, state: Mapping[str, Any]) -> None:
        self.seed = int(state['seed'])
        self._generators = None
        self.generator.set_state(state['generator'].cpu())
        if 'host_generator' in state and self.host_generator is not self.generator:
            self.host_generator.set_state(state['host_generator'].cpu())
        self.pool.load_state_dict(state['pool'], device=self.device)


@MODELS.register_module(name='RealESRGANSynthesis')
def build_synthesis(**opt: Any) -> RealESRGANSynthesis:
    """The synthesis alone (e.g. to make pairs in a custom model): BasicSR option keys, kernel keys
    included, at the top level."""
    return RealESRGANSynthesis.from_options({**opt, 'datasets': {'train': dict(opt)}})


MODELS.register_module(name='USMSharp', module=USMSharp)
