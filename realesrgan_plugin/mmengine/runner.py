"""``RealESRGANRunner``: MMEngine's ``Runner`` with safe resume on torch >= 2.6 and CPU distribution.

* Checkpoints are read with ``weights_only=True`` plus exactly the MMEngine types they hold
  (:data:`~realesrgan_plugin.mmengine.checkpoint.MMENGINE_CHECKPOINT_GLOBALS`), only while this
  runner loads them; safe loading stays on everywhere else.
* Checkpoints are written atomically when the checkpoint hook uses ``backend_args=dict(backend='atomic_local')``
  (the plugin's configs do).
* Without CUDA, ``--launcher pytorch|slurm`` starts a gloo process group (MMEngine would call
  ``torch.cuda.set_device``) and DDP wraps CPU modules (no ``device_ids``).
* A full disk under MMEngine's own writers (log file, vis backends, tensorboard, config copy)
  is a ``DiskWriteError`` naming the file (:mod:`realesrgan_plugin.mmengine.writers`).
* Training on CPU keeps the memory a step frees for the next step (``core.host_memory``).
"""

from __future__ import annotations

import os
import re
import sys
from datetime import timedelta
from pathlib import Path

from realesrgan_plugin.core.atomic import naming_disk_errors
from realesrgan_plugin.core.checkpoint import ResumeError, newest_intact_checkpoint
from realesrgan_plugin.core.dist import export_slurm_env
from realesrgan_plugin.core.host_memory import keep_freed_memory_in_process
from realesrgan_plugin.mmengine import fileio  # noqa: F401  (registers the 'atomic_local' file backend)
from realesrgan_plugin.mmengine.checkpoint import load_checkpoint_file, mmengine_safe_globals
from realesrgan_plugin.mmengine.registry import RUNNERS
from realesrgan_plugin.mmengine.writers import (
    config_dump_target,
    name_disk_errors_of_log_files,
    name_disk_errors_of_visualizer,
)

import torch
import torch.distributed as dist
from mmengine.dist import is_distributed
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner, find_latest_checkpoint

FRESH_IF_NONE = 'fresh-if-none'
_CHECKPOINT_NAME = re.compile(r'^(?:iter|epoch)_(\d+)\.pth$')


def work_dir_checkpoints_newest_first(work_dir: str) -> list[Path]:
    """The checkpoint ``last_checkpoint`` names, then every ``iter_N.pth`` / ``epoch_N.pth``, highest N first."""
    folder = Path(work_dir)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _CHECKPOINT_NAME.match(p.name))]
    ordered = [p for _, p in sorted(found, reverse=True)]
    latest = find_latest_checkpoint(work_dir)
    if latest is not None and Path(latest).is_file():
        ordered = [Path(latest)] + [p for p in ordered if p.resolve() != Path(latest).resolve()]
    return ordered


def newest_intact_work_dir_checkpoint(work_dir: str, fresh_if_none: bool = False) -> str | None:
    """``--resume`` without a file: the newest checkpoint of ``work_dir`` that loads; damaged ones are
    moved aside as ``*.corrupt`` with one warning each (every rank of a distributed run reads the
    same files before any training starts, so only the first process to look moves them)."""
    candidates = work_dir_checkpoints_newest_first(work_dir)

    def warn(message: str) -> None:
        print(f'WARNING: --resume: {message}', file=sys.stderr, flush=True)

    rank0 = int(os.environ.get('RANK', '0')) == 0
    found = newest_intact_checkpoint(
        candidates, load=load_checkpoint_file, warn=warn if rank0 else lambda m: None, move_aside=rank0
    )
    if found is not None:
        return str(found[0])
    if candidates and not fresh_if_none:
        raise ResumeError(
            f'--resume: no intact checkpoint left in {work_dir} (damaged ones were moved aside as *.corrupt); '
            f'use --resume {FRESH_IF_NONE} to start from scratch'
        )
    if candidates:
        warn(f'no intact checkpoint left in {work_dir}: starting from scratch ({FRESH_IF_NONE})')
    return None


def init_cpu_process_group(launcher: str, timeout_s: float = 1800) -> None:
    """Start a gloo process group from the launcher's environment variables."""
    if launcher == 'slurm':
        export_slurm_env()
    elif launcher != 'pytorch':
        raise ValueError(f"CPU distributed training supports --launcher pytorch or slurm, got '{launcher}'")
    missing = [k for k in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT') if k not in os.environ]
    if missing:
        raise RuntimeError(
            f'--launcher {launcher}: environment variables {missing} are not set; start the processes with '
            'torchrun (e.g. `torchrun --nproc-per-node 2 -m realesrgan_plugin.mmengine.train CONFIG '
            '--launcher pytorch`) or srun'
        )
    os.environ.setdefault('LOCAL_RANK', '0')
    dist.init_process_group(backend='gloo', timeout=timedelta(seconds=timeout_s))


@RUNNERS.register_module()
class RealESRGANRunner(Runner):
    """A ``Runner`` that resumes safely and distributes on CPUs too (see the module docstring)."""

    def setup_env(self, env_cfg: dict) -> None:
        if self.distributed and not is_distributed() and not torch.cuda.is_available():
            timeout = (env_cfg or {}).get('dist_cfg', {}).get('timeout', 1800)
            init_cpu_process_group(self.launcher, timeout_s=timeout)
        super().setup_env(env_cfg)

    def wrap_model(self, model_wrapper_cfg: dict | None, model: torch.nn.Module) -> torch.nn.Module:
        """Wrap for DDP. Without ``model_wrapper_cfg`` our models get ``MMSeparateDistributedDataParallel``:
        MMEngine's default ``MMDistributedDataParallel`` calls ``forward(mode='loss')``, which our
        models refuse (they run their own ``train_step``). Without CUDA the wrappers get no ``device_ids``."""
        if self.distributed and not is_model_wrapper(model):
            if model_wrapper_cfg is None:
                model_wrapper_cfg = dict(
                    type='MMSeparateDistributedDataParallel',
                    broadcast_buffers=False,
                    find_unused_parameters=self.cfg.get('find_unused_parameters', False),
                )
            if not torch.cuda.is_available():
                model_wrapper_cfg = dict(model_wrapper_cfg, device_ids=None)
        return super().wrap_model(model_wrapper_cfg, model)

    def build_logger(self, *args, **kwargs):
        logger = super().build_logger(*args, **kwargs)
        name_disk_errors_of_log_files(logger)
        return logger

    def build_visualizer(self, *args, **kwargs):
        visualizer = super().build_visualizer(*args, **kwargs)
        name_disk_errors_of_visualizer(visualizer)
        return visualizer

    def dump_config(self) -> None:
        with naming_disk_errors(config_dump_target(self.work_dir, self.cfg.filename, self.timestamp)):
            super().dump_config()

    def train(self) -> torch.nn.Module:
        """MMEngine's training; on CPU the buffers a step frees stay in the process for the next
        step (``core.host_memory``: no page faults per step)."""
        if all(p.device.type == 'cpu' for p in self.model.parameters()):
            keep_freed_memory_in_process()
        return super().train()

    def load_or_resume(self) -> None:
        """``resume=True`` without ``load_from``: the newest intact checkpoint (MMEngine takes the
        newest, damaged or not)."""
        if self._resume and self._load_from is None and not self._has_loaded:
            self._load_from = newest_intact_work_dir_checkpoint(self.work_dir)
            self._resume = self._load_from is not None
        super().load_or_resume()

    def load_checkpoint(self, *args, **kwargs):
        with mmengine_safe_globals():
            return super().load_checkpoint(*args, **kwargs)

    def resume(self, *args, **kwargs) -> None:
        with mmengine_safe_globals():
            return super().resume(*args, **kwargs)
