"""Training-pair pool: any size, pairs stay matched, exact resume from its state."""

from __future__ import annotations

import io

from realesrgan_plugin.core.degradations import TrainingPairPool

import pytest
import torch


def _batch(start: int, n: int):
    """Pairs whose identity is readable from both tensors: lq = id, gt = 10 * id (other shapes)."""
    ids = torch.arange(start, start + n, dtype=torch.float32)
    return ids.view(-1, 1, 1, 1).expand(n, 3, 2, 2).clone(), (10 * ids).view(-1, 1, 1, 1).expand(n, 3, 8, 8).clone()


def _ids(lq, gt):
    lq_ids, gt_ids = lq[:, 0, 0, 0], gt[:, 0, 0, 0] / 10
    assert torch.equal(lq_ids, gt_ids), 'lq and gt of a pair were separated'
    return lq_ids.int().tolist()


@pytest.mark.parametrize(('size', 'batch'), [(7, 3), (5, 12), (180, 12)])
def test_pool_of_any_size_fills_then_swaps_keeping_pairs_together(size, batch):
    pool = TrainingPairPool(size, seed=0)
    seen = set()
    for step in range(6):
        lq, gt = _batch(step * batch, batch)
        out = _ids(*pool(lq, gt))
        assert len(out) == batch
        seen.update(range(step * batch, (step + 1) * batch))
        assert set(out) <= seen  # only pairs that were fed in
        stored = _ids(pool.lq[: len(pool)], pool.gt[: len(pool)])
        # nothing is lost or duplicated: pool + output = everything fed, minus pairs handed out before
        assert len(set(stored)) == len(stored)
    assert len(pool) == min(size, 6 * batch)


def test_while_filling_the_batch_passes_through_unchanged():
    pool = TrainingPairPool(10, seed=0)
    lq, gt = _batch(0, 4)
    out_lq, out_gt = pool(lq, gt)
    assert torch.equal(out_lq, lq) and torch.equal(out_gt, gt)
    assert len(pool) == 4


def test_full_pool_mixes_old_pairs_into_the_batch():
    pool = TrainingPairPool(6, seed=0)
    pool(*_batch(0, 6))
    out = _ids(*pool(*_batch(100, 6)))
    assert set(out) == set(range(6))  # the whole pool swapped out when batch == size
    assert set(_ids(pool.lq, pool.gt)) == set(range(100, 106))


def _continue(pool, start, steps):
    return [_ids(*pool(*_batch(start + 5 * i, 5))) for i in range(steps)]


def test_state_dict_resumes_exactly_even_through_torch_save():
    pool = TrainingPairPool(9, seed=3)
    _continue(pool, 0, 4)
    buffer = io.BytesIO()
    torch.save(pool.state_dict(), buffer)
    expected = _continue(pool, 1000, 5)

    resumed = TrainingPairPool(9, seed=123)  # a different seed: the state must override it
    buffer.seek(0)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    assert _continue(resumed, 1000, 5) == expected


def test_state_of_a_partly_filled_pool_resumes():
    pool = TrainingPairPool(20, seed=1)
    _continue(pool, 0, 2)
    state = pool.state_dict()
    expected = _continue(pool, 50, 4)
    resumed = TrainingPairPool(20)
    resumed.load_state_dict(state)
    assert len(resumed) == 10 and _continue(resumed, 50, 4) == expected


def test_size_zero_disables_and_bad_input_is_reported():
    lq, gt = _batch(0, 3)
    out_lq, _ = TrainingPairPool(0)(lq, gt)
    assert out_lq is lq
    pool = TrainingPairPool(4)
    pool(lq, gt)
    with pytest.raises(ValueError, match='pool holds'):
        pool(torch.zeros(3, 3, 4, 4), gt)
    with pytest.raises(ValueError, match='differ'):
        pool(lq, gt[:2])
    with pytest.raises(ValueError, match='size 4'):
        TrainingPairPool(5).load_state_dict(pool.state_dict())
