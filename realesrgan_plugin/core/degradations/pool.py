"""Training-pair pool: mixes pairs across batches so one batch holds more varied degradations.

Like the official pool, it first fills up (passing batches through unchanged), then for every
batch swaps each incoming pair with a randomly chosen stored one. Unlike the official it works
for any pool size and batch size (no "queue size must divide batch size"), keeps its own
random generator, and ``state_dict()`` / ``load_state_dict()`` restore it exactly on resume.
"""

from __future__ import annotations

from typing import Any

from realesrgan_plugin.core.degradations.batching import to_device_in_one_copy

import torch


class TrainingPairPool:
    """Pool of ``size`` (lq, gt) pairs; ``pool(lq, gt) -> (lq, gt)``. ``size=0`` disables it."""

    def __init__(self, size: int = 180, seed: int | None = None) -> None:
        if size < 0:
            raise ValueError(f'pool size must be >= 0, got {size}')
        self.size = int(size)
        self.generator = torch.Generator()  # CPU: indices are tiny; state is device-independent
        self.generator.manual_seed(seed if seed is not None else int(torch.initial_seed()) % 2**63)
        self.lq: torch.Tensor | None = None
        self.gt: torch.Tensor | None = None
        self.filled = 0

    def __len__(self) -> int:
        return self.filled

    @torch.no_grad()
    def __call__(self, lq: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if lq.shape[0] != gt.shape[0]:
            raise ValueError(f'lq batch {lq.shape[0]} and gt batch {gt.shape[0]} differ')
        if self.size == 0:
            return lq, gt
        if self.lq is None:
            self.lq = lq.new_zeros((self.size, *lq.shape[1:]))
            self.gt = gt.new_zeros((self.size, *gt.shape[1:]))
        elif self.lq.shape[1:] != lq.shape[1:] or self.gt.shape[1:] != gt.shape[1:]:
            raise ValueError(
                f'pool holds lq {tuple(self.lq.shape[1:])} / gt {tuple(self.gt.shape[1:])} pairs, '
                f'got lq {tuple(lq.shape[1:])} / gt {tuple(gt.shape[1:])}'
            )
        if self.lq.device != lq.device:
            self.lq, self.gt = self.lq.to(lq.device), self.gt.to(gt.device)
        if self.filled < self.size:
            n = min(lq.shape[0], self.size - self.filled)
            self.lq[self.filled : self.filled + n] = lq[:n]
            self.gt[self.filled : self.filled + n] = gt[:n]
            self.filled += n
            return lq, gt
        n = min(lq.shape[0], self.size)
        slots = torch.randperm(self.size, generator=self.generator)[:n]
        (slots,) = to_device_in_one_copy([slots], lq.device, torch.int64)  # non-blocking: no GPU stall
        out_lq, out_gt = lq.clone(), gt.clone()
        out_lq[:n] = self.lq[slots]
        out_gt[:n] = self.gt[slots]
        self.lq[slots] = lq[:n]
        self.gt[slots] = gt[:n]
        return out_lq, out_gt

    def state_dict(self) -> dict[str, Any]:
        """Stored pairs (on CPU), fill level and generator state: all that exact resume needs."""
        stored = self.filled
        return {
            'size': self.size,
            'filled': stored,
            'lq': None if self.lq is None else self.lq[:stored].cpu().clone(),
            'gt': None if self.gt is None else self.gt[:stored].cpu().clone(),
            'generator': self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any], device: torch.device | str | None = None) -> None:
        if state['size'] != self.size:
            raise ValueError(f'pool state is for size {state["size"]}, this pool has size {self.size}')
        self.generator.set_state(state['generator'])
        self.filled = int(state['filled'])
        if state['lq'] is None:
            self.lq = self.gt = None
            return
        lq, gt = state['lq'], state['gt']
        self.lq = lq.new_zeros((self.size, *lq.shape[1:]))
        self.gt = gt.new_zeros((self.size, *gt.shape[1:]))
        self.lq[: self.filled] = lq
        self.gt[: self.filled] = gt
        if device is not None:
            self.lq, self.gt = self.lq.to(device), self.gt.to(device)
