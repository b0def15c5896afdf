"""Distributed set-up that works without a GPU.

BasicSR 1.4.2's ``init_dist`` always uses NCCL and ``torch.cuda.set_device``: it cannot start on a
CPU-only machine. These replacements pick gloo when CUDA is absent and bind each process to its
local GPU only when there is one.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence

from realesrgan_plugin.core import env

import torch
import torch.distributed as dist


def default_backend() -> str:
    return 'nccl' if torch.cuda.is_available() else 'gloo'


def init_distributed(launcher: str, backend: str | None = None, port: int | None = None, **kwargs) -> None:
    """Start the process group for ``launcher`` ('pytorch' = torchrun, or 'slurm').

    ``backend`` defaults to NCCL with CUDA, gloo without; asking for NCCL without CUDA falls back to
    gloo (official option files name nccl in ``dist_params``)."""
    if backend is None or (backend == 'nccl' and not torch.cuda.is_available()):
        backend = default_backend()
    if launcher == 'slurm':
        export_slurm_env(port)
    elif launcher != 'pytorch':
        raise ValueError(f"Unknown launcher {launcher!r}: expected 'none', 'pytorch' or 'slurm'")
    if torch.cuda.is_available():
        local_rank = int(os.environ.get('LOCAL_RANK', os.environ.get('RANK', 0)))
        torch.cuda.set_device(local_rank % torch.cuda.device_count())
    dist.init_process_group(backend=backend, timeout=env.dist_timeout())


def export_slurm_env(port: int | None = None) -> None:
    """Translate SLURM's variables into the ones torch.distributed's ``env://`` init reads.

    ``LOCAL_RANK`` is ``SLURM_LOCALID`` (the task's index on its node) when SLURM sets it, else
    ``SLURM_PROCID`` modulo the local GPU count (BasicSR's rule, right only with one task per GPU).
    ``MASTER_ADDR`` already set is kept; otherwise it is the first node of ``SLURM_NODELIST``.
    ``port`` (a ``--port`` flag) wins over ``MASTER_PORT``, which defaults to 29500."""
    missing = [k for k in ('SLURM_PROCID', 'SLURM_NTASKS') if k not in os.environ]
    if 'MASTER_ADDR' not in os.environ and 'SLURM_NODELIST' not in os.environ:
        missing.append('SLURM_NODELIST')
    if missing:
        raise RuntimeError(f'--launcher slurm: environment variables {missing} are not set; start the job with srun')
    proc_id = int(os.environ['SLURM_PROCID'])
    if 'SLURM_LOCALID' in os.environ:
        local_rank = int(os.environ['SLURM_LOCALID'])
    else:
        local_rank = proc_id % max(torch.cuda.device_count(), 1)
    if port is not None:
        os.environ['MASTER_PORT'] = str(port)
    os.environ.setdefault('MASTER_PORT', '29500')
    if 'MASTER_ADDR' not in os.environ:
        node_list = os.environ['SLURM_NODELIST']
        os.environ['MASTER_ADDR'] = subprocess.getoutput(f'scontrol show hostname {node_list} | head -n1')
    os.environ['WORLD_SIZE'] = str(int(os.environ['SLURM_NTASKS']))
    os.environ['RANK'] = str(proc_id)
    os.environ['LOCAL_RANK'] = str(local_rank)


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def shutdown_distributed() -> None:
    """Wait for every rank, then tear the process group down. A process that exits with a live
    gloo group can abort in C++ ("terminate called without an active exception", SIGABRT)."""
    if is_distributed():
        dist.barrier()
        dist.destroy_process_group()


def training_device(num_gpu: int | str) -> torch.device:
    """The device a process trains on: its CUDA device when ``num_gpu`` asks for GPUs and CUDA is
    present, the CPU otherwise (``num_gpu: 0``, or no GPU on this machine)."""
    if num_gpu != 0 and torch.cuda.is_available():
        return torch.device('cuda', torch.cuda.current_device())
    return torch.device('cpu')


def tensors_digest(tensors) -> str:
    """sha256 of the bytes of ``tensors`` (in order): equal digests = bit-identical weights."""
    import hashlib

    digest = hashlib.sha256()
    for t in tensors:
        digest.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def assert_replicas_in_sync(named_nets: dict) -> dict[str, str]:
    """Check that every rank holds bit-identical weights for each network; return the digests.

    DDP keeps replicas equal only if every rank applies the same updates: this catches a rank that
    drifted (a skipped step, a non-synchronised buffer). Raises ``RuntimeError`` naming the network."""
    digests = {name: tensors_digest(net.state_dict().values()) for name, net in named_nets.items()}
    if not is_distributed():
        return digests
    gathered: list = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, digests)
    for name in digests:
        values = {rank: d[name] for rank, d in enumerate(gathered)}
        if len(set(values.values())) != 1:
            raise RuntimeError(f'Network {name} differs between ranks: {values}')
    return digests


def normalize_local_rank_args(argv: Sequence[str]) -> list[str]:
    """torch.distributed launchers pass ``--local-rank`` (dash); BasicSR's argparse only knows
    ``--local_rank``. Return argv with the dashed spelling rewritten, both ``=N`` and ``N`` forms."""
    out = []
    for arg in argv:
        if arg == '--local-rank':
            out.append('--local_rank')
        elif arg.startswith('--local-rank='):
            out.append('--local_rank=' + arg.split('=', 1)[1])
        else:
            out.append(arg)
    return out


def collective_device(backend: str | None = None) -> torch.device:
    """The device a collective's tensors must live on for ``backend`` (default: the running group's).

    NCCL accepts only CUDA tensors (the process's current device); gloo only CPU ones; a mixed
    backend such as ``'cpu:gloo,cuda:nccl'`` takes CUDA tensors when CUDA is there."""
    if backend is None:
        backend = str(dist.get_backend()) if is_distributed() else 'gloo'
    wants_cuda = 'nccl' in backend and ('gloo' not in backend or torch.cuda.is_available())
    if not wants_cuda:
        return torch.device('cpu')
    if not torch.cuda.is_available():
        raise RuntimeError(f"The process group's backend {backend!r} needs CUDA tensors, but CUDA is not available")
    return torch.device('cuda', torch.cuda.current_device())


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over every rank, whatever device it is on; returns the sum on ``tensor``'s device.

    THE way to run a collective here: the tensor travels to :func:`collective_device` and back, so
    metric sums kept on the CPU work under NCCL (which refuses CPU tensors) as under gloo."""
    if not is_distributed():
        return tensor
    on_wire = tensor.to(collective_device())
    dist.all_reduce(on_wire)
    return on_wire.to(tensor.device)
