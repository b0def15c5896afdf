"""The synthesis never waits for the device: proven on the CPU with the ``meta`` device.

A meta tensor has a shape and no data, so anything that reads a device value on the host
(``.item()``, ``.tolist()``, ``bool(t)``, ``.cpu()``, data-dependent shapes such as
``nonzero`` or ``bincount``) raises there. Host-to-device copies do not raise, so a
``TorchFunctionMode`` counts them: on a GPU each ordinary one would stall the queue.
"""

from __future__ import annotations

from realesrgan_plugin.core.degradations import (
    RealESRGANSynthesis,
    TrainingPairPool,
    USMSharp,
    random_kernels,
    synthesis_generators,
)
from realesrgan_plugin.core.training_steps import TrainingPairMaker

import pytest
import torch
from torch.overrides import TorchFunctionMode

META = torch.device('meta')
_COPIES = {torch.tensor, torch.as_tensor, torch.Tensor.to, torch.Tensor.cuda, torch.Tensor.copy_}


class HostToDeviceCopies(TorchFunctionMode):
    """Records every call that puts host data (a CPU tensor or Python data) on the meta device."""

    def __init__(self) -> None:
        super().__init__()
        self.copies: list[tuple[str, bool]] = []  # (function, non_blocking)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func in _COPIES and isinstance(out, torch.Tensor) and out.device == META:
            source = args[1] if func is torch.Tensor.copy_ else args[0]
            if not isinstance(source, torch.Tensor) or source.device.type == 'cpu':
                self.copies.append((func.__name__, bool(kwargs.get('non_blocking', False))))
        return out


def _x4plus_synthesis(**overrides) -> RealESRGANSynthesis:
    return RealESRGANSynthesis.from_options({'gt_size': 64, **overrides})


@pytest.mark.parametrize('per_sample', [True, False])
@pytest.mark.parametrize('with_dataset_kernels', [False, True])
def test_synthesis_reads_nothing_back_and_copies_once_per_batch(per_sample, with_dataset_kernels):
    synth = _x4plus_synthesis(per_sample=per_sample, second_blur_prob=0.5)
    host = torch.Generator().manual_seed(0)
    source = torch.empty(6, 3, 96, 96, device=META)
    hr = torch.empty(6, 3, 96, 96, device=META)

    def batch():
        kernels = random_kernels(6, synth.settings, generator=host) if with_dataset_kernels else None
        return synth(source, hr, kernels=kernels, host_generator=host)

    batch()  # the JPEG constants are copied to a device once, on first use
    for _ in range(3):  # different draws each time: every branch of the pipeline is taken somewhere
        with HostToDeviceCopies() as seen:
            lq, (cropped,) = batch()
        assert lq.device == META and lq.shape == (6, 3, 16, 16) and cropped.shape == (6, 3, 64, 64)
        assert seen.copies == [('to', True)]  # kernels + per-sample numbers, one non-blocking copy


@pytest.mark.parametrize('keep_gt_usm', [False, True])
def test_pair_maker_with_a_full_pool_reads_nothing_back(keep_gt_usm):
    """Both stages' pair making (USM, synthesis, pool swap) on the device: two non-blocking copies
    per batch (the synthesis's numbers and the pool's slots), nothing read back."""
    maker = TrainingPairMaker(
        _x4plus_synthesis(), USMSharp(), TrainingPairPool(4, seed=0), sharpen_gt=True, keep_gt_usm=keep_gt_usm
    ).to(META)
    generator, host = synthesis_generators('cpu', 0)
    gt = torch.empty(4, 3, 80, 80, device=META)
    maker(gt, host_generator=host)  # fills the pool, first JPEG constants
    with HostToDeviceCopies() as seen:
        pair = maker(gt, host_generator=host)
    assert pair.lq.device == META and (pair.gt_usm is not None) == keep_gt_usm
    assert seen.copies == [('to', True), ('to', True)]


def test_the_meta_check_can_fail():
    """The guard is real: reading a device value, or an ordinary copy, is caught."""
    x = torch.empty(3, device=META)
    with pytest.raises((RuntimeError, NotImplementedError)):
        bool(x.any())
    with HostToDeviceCopies() as seen:
        torch.tensor([1.0, 2.0], device=META)
    assert seen.copies == [('tensor', False)]


def test_on_the_cpu_the_two_generators_are_one_stream():
    """On the CPU the choices and the noise share one generator: the seed stream of before."""
    device_gen, host_gen = synthesis_generators('cpu', 3)
    assert device_gen is host_gen and host_gen.initial_seed() == 3
