"""Collectives put their tensors where the process group's backend needs them (CUDA for NCCL)."""

from __future__ import annotations

import socket

from realesrgan_plugin.core.dist import all_reduce_sum, collective_device

import pytest
import torch
import torch.distributed as dist


def test_gloo_collectives_run_on_the_cpu():
    assert collective_device('gloo') == torch.device('cpu')


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the CPU-only machine')
def test_nccl_without_cuda_is_a_clear_error():
    with pytest.raises(RuntimeError, match="backend 'nccl' needs CUDA tensors"):
        collective_device('nccl')


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the CPU-only machine')
def test_mixed_backend_stays_on_the_cpu_without_cuda():
    assert collective_device('cpu:gloo,cuda:nccl') == torch.device('cpu')


@pytest.mark.gpu
def test_nccl_and_mixed_backends_use_the_current_cuda_device():
    expected = torch.device('cuda', torch.cuda.current_device())
    assert collective_device('nccl') == expected
    assert collective_device('cpu:gloo,cuda:nccl') == expected


def test_all_reduce_sum_without_a_group_returns_the_tensor():
    t = torch.arange(3.0)
    assert all_reduce_sum(t) is t


@pytest.fixture
def single_rank_gloo_group():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


def test_all_reduce_sum_keeps_a_cpu_tensor_on_the_cpu(single_rank_gloo_group):
    sums = torch.tensor([2.5, 1.0], dtype=torch.float64)
    out = all_reduce_sum(sums)
    assert out.device == torch.device('cpu')
    assert out.dtype == torch.float64
    assert out.tolist() == [2.5, 1.0]
