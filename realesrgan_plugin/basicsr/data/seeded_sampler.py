"""Training data that is a pure function of (seed, epoch, position): the key to exact resume.

BasicSR seeds each loader worker once, so what a worker draws depends on which batches it served
before: a run resumed mid-epoch cannot see the same crops, flips and kernels again. Here the
sampler hands every sample its own seed next to its index, and the dataset wrapper seeds python,
numpy and torch with it before loading. Samples then no longer depend on the number of workers or
on what came before, and a resumed run skips the batches already consumed in its epoch.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from realesrgan_plugin.core.checkpoint import preserved_rng_state

import numpy as np
import torch
from basicsr.data.data_sampler import EnlargedSampler
from torch.utils.data import Dataset


def sample_seed(base_seed: int, epoch: int, position: int) -> int:
    """A well-mixed 32-bit seed for the sample at ``position`` of ``epoch``."""
    return int(np.random.SeedSequence([base_seed, epoch, position]).generate_state(1)[0])


class SeededSampler(EnlargedSampler):
    """BasicSR's ``EnlargedSampler`` (same epoch-seeded shuffle and rank split) yielding
    ``(index, seed)`` pairs, able to start part-way through an epoch."""

    def __init__(self, dataset, num_replicas: int, rank: int, ratio: int = 1, seed: int = 0) -> None:
        super().__init__(dataset, num_replicas, rank, ratio)
        self.seed = seed
        self.start = 0

    def skip(self, num_samples: int) -> None:
        """Start the next iteration after the first ``num_samples`` samples of this epoch."""
        self.start = num_samples

    def __iter__(self) -> Iterator[tuple[int, int]]:
        indices = list(super().__iter__())
        for position in range(self.start, len(indices)):
            global_position = position * self.num_replicas + self.rank
            yield indices[position], sample_seed(self.seed, self.epoch, global_position)

    def __len__(self) -> int:
        return max(self.num_samples - self.start, 0)


class SeededDataset(Dataset):
    """Wraps a map-style dataset; ``dataset[(index, seed)]`` loads ``index`` with every global RNG
    seeded by ``seed``, leaving the caller's RNG state untouched."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str) -> Any:
        if name == 'dataset':  # not yet set (unpickling in a worker)
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getitem__(self, item: tuple[int, int]) -> Any:
        index, seed = item
        with preserved_rng_state():
            random.seed(seed)
            np.random.seed(seed)
            torch.manual_seed(seed)
            return self.dataset[index]
