"""What both Real-ESRGAN models add to BasicSR's ``SRModel`` at run time.

Device choice without ``.cuda()``; DistributedDataParallel on CPU (gloo) as well as GPU; checkpoint
files written atomically; a training state that also holds the synthesis generator, the pair pool,
the AMP grad scaler and every global RNG state (per rank), so that a resumed run continues bit for
bit; validation that every rank takes part in (sharded), so none waits on the others.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from os import path as osp
from typing import Any

from realesrgan_plugin.core.atomic import atomic_torch_save
from realesrgan_plugin.core.checkpoint import capture_rng_state, restore_rng_state, safe_torch_load
from realesrgan_plugin.core.degradations import (
    DiffJPEG,
    RealESRGANSynthesis,
    TrainingPairPool,
    USMSharp,
    settings_from_options,
    synthesis_generators,
)
from realesrgan_plugin.core.dist import all_reduce_sum, barrier, training_device
from realesrgan_plugin.core.host_memory import keep_freed_memory_in_process
from realesrgan_plugin.core.training_steps import (
    TrainingPairMaker,
    amp_dtype,
    autocast,
    ema_update,
    kernels_from_batch,
)

import torch
import torch.distributed as dist
from basicsr.metrics import calculate_metric
from basicsr.utils import get_root_logger, imwrite, tensor2img
from torch.nn.parallel import DataParallel, DistributedDataParallel
from torch.utils.data import DataLoader, Subset


def rank_state_path(states_dir: str, current_iter: int, rank: int) -> str:
    """Per-rank part of a training state (ranks > 0; rank 0's part lives in ``<iter>.state``)."""
    return osp.join(states_dir, 'ranks', f'{current_iter}_rank{rank}.pth')


class TrainingRuntimeMixin:
    """Mixed into ``SRModel`` subclasses (put it first in the bases)."""

    #: filled in by the training loop before each save: its own progress (epoch position...)
    runner_state: dict[str, Any]

    # ----------------------------------------------------------------- device
    @property
    def device(self) -> torch.device:
        """CUDA when ``num_gpu`` asks for it and CUDA is present, else CPU (BaseModel's
        ``'cuda' if num_gpu != 0`` assignment is replaced by this rule)."""
        return self._device

    @device.setter
    def device(self, _requested) -> None:
        self._device = training_device(self.opt.get('num_gpu', 0))

    def model_to_device(self, net: torch.nn.Module) -> torch.nn.Module:
        net = net.to(self.device)
        if self._channels_last():
            net = net.to(memory_format=torch.channels_last)
        if self.opt['dist']:
            find_unused = self.opt.get('find_unused_parameters', False)
            device_ids = [self.device.index] if self.device.type == 'cuda' else None
            return DistributedDataParallel(net, device_ids=device_ids, find_unused_parameters=find_unused)
        if self.device.type == 'cuda' and self.opt['num_gpu'] > 1:
            return DataParallel(net)
        return net

    def _channels_last(self) -> bool:
        return bool(self.opt.get('channels_last', self.opt.get('train', {}).get('channels_last', False)))

    def _to_memory_format(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self._channels_last() else x

    # ------------------------------------------------------------ set-up bits
    def setup_amp(self) -> None:
        """``amp: bf16|fp16`` (top level or under ``train``); fp16 gets a gradient scaler."""
        train_opt = self.opt.get('train', {})
        self.amp_dtype = amp_dtype(train_opt.get('amp', self.opt.get('amp')))
        enabled = self.amp_dtype == torch.float16
        self.grad_scaler = torch.amp.GradScaler(self.device.type, enabled=enabled) if enabled else None
        if self.amp_dtype is not None:
            get_root_logger().info(f'Mixed precision: {self.amp_dtype} on {self.device}')

    def autocast(self):
        return autocast(self.device, self.amp_dtype)

    def backward(self, loss: torch.Tensor) -> None:
        (self.grad_scaler.scale(loss) if self.grad_scaler is not None else loss).backward()

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.grad_scaler is not None:
            self.grad_scaler.step(optimizer)
        else:
            optimizer.step()

    def finish_step(self) -> None:
        if self.grad_scaler is not None:
            self.grad_scaler.update()

    def setup_memory_format(self) -> None:
        """With ``channels_last`` the perceptual VGG goes NHWC too (its convs dominate a Real-ESRGAN step;
        measured 1.15x for a whole step on CPU)."""
        if self._channels_last() and getattr(self, 'cri_perceptual', None) is not None:
            self.cri_perceptual.to(memory_format=torch.channels_last)

    def setup_host_memory(self) -> None:
        """On CPU, the buffers a step frees stay in the process for the next step (glibc would hand
        them back to the kernel and page-fault them in again: a quarter of a small net's step)."""
        if self.device.type == 'cpu':
            keep_freed_memory_in_process()

    def setup_synthesis(self, sharpen_gt: bool, keep_gt_usm: bool) -> None:
        """Build the second-order degradation pipeline, USM and pair pool, and the generator that
        makes the synthesis reproducible (seeded by ``manual_seed`` + rank)."""
        self.usm_sharpener = USMSharp().to(self.device)
        self.jpeger = DiffJPEG(differentiable=False).to(self.device)  # the official attribute: the synthesis's JPEG
        self.queue_size = self.opt.get('queue_size', 180)
        self.high_order_degradation = self.opt.get('high_order_degradation', True)
        seed = int(self.opt.get('manual_seed') or 0) + int(self.opt.get('rank', 0))
        self.pair_pool = TrainingPairPool(self.queue_size, seed=seed)
        self.pair_maker = None
        self.synthesis_generator = self.synthesis_host_generator = None
        if not self.high_order_degradation:
            return
        synthesis = RealESRGANSynthesis.from_options(self.opt).to(self.device)
        self.pair_maker = TrainingPairMaker(synthesis, self.usm_sharpener, self.pair_pool, sharpen_gt, keep_gt_usm)
        self.synthesis_generator, self.synthesis_host_generator = synthesis_generators(self.device, seed)

    def refresh_degradation_options(self) -> None:
        """Re-read the degradation options from ``self.opt``, as the official ``feed_data`` does at
        every call: changing e.g. ``model.opt['second_blur_prob']`` during training takes effect."""
        self.pair_maker.synthesis.settings = settings_from_options(self.opt)
        if not self.pair_maker.keep_gt_usm:  # Real-ESRNet: sharpen the target before degrading it
            self.pair_maker.sharpen_gt = self.opt.get('gt_usm', False) is True

    @torch.no_grad()
    def _dequeue_and_enqueue(self) -> None:
        """The official pair-pool step on ``self.lq`` / ``self.gt``, for subclasses written against the
        official model (any queue size works; the pool is part of the saved training state)."""
        self.lq, self.gt = self.pair_pool(self.lq, self.gt)

    # ------------------------------------------------------------- feed data
    @torch.no_grad()
    def feed_training_pair(self, data: Mapping, keep_gt_usm: bool) -> None:
        """Synthesise (high-order degradation) or take (paired data) the batch's ``lq``/``gt``."""
        if self.is_train and self.high_order_degradation:
            if 'gt' not in data:
                raise KeyError("high_order_degradation needs batches with a 'gt' key (RealESRGANDataset)")
            gt = data['gt'].to(self.device, non_blocking=True)
            self.refresh_degradation_options()
            pair = self.pair_maker(
                gt, kernels_from_batch(data), self.synthesis_generator, self.synthesis_host_generator
            )
            self.lq, self.gt = self._to_memory_format(pair.lq), pair.gt
            if keep_gt_usm:
                self.gt_usm = pair.gt_usm
            return
        if 'lq' not in data:
            raise KeyError(
                "Batches without an 'lq' image need high_order_degradation: true (the synthesis pipeline); "
                f'this batch has only {sorted(data)}'
            )
        self.lq = self._to_memory_format(data['lq'].to(self.device, non_blocking=True))
        if 'gt' in data:
            self.gt = data['gt'].to(self.device, non_blocking=True)
            if keep_gt_usm:
                self.gt_usm = self.usm_sharpener(self.gt)

    def model_ema(self, decay: float = 0.999) -> None:
        ema_update(self.net_g_ema, self.get_bare_model(self.net_g), decay)

    # -------------------------------------------------------------- testing
    def test(self) -> None:
        """Inference for validation with the bare network (no DDP collectives on one rank only)."""
        net = getattr(self, 'net_g_ema', None)
        if net is None:
            net = self.get_bare_model(self.net_g)
        was_training = net.training
        net.eval()
        with torch.no_grad():
            self.output = net(self.lq)
        net.train(was_training)

    def validation(self, dataloader, current_iter, tb_logger, save_img=False) -> None:
        """Validate on real pairs (never synthesised), all ranks taking a share of the images."""
        self.is_train = False
        try:
            super().validation(dataloader, current_iter, tb_logger, save_img)
        finally:
            self.is_train = True

    def nondist_validation(self, dataloader, current_iter, tb_logger, save_img) -> None:
        self._validate(dataloader, dataloader, current_iter, tb_logger, save_img)

    def dist_validation(self, dataloader, current_iter, tb_logger, save_img) -> None:
        rank, world = dist.get_rank(), dist.get_world_size()
        shard = DataLoader(Subset(dataloader.dataset, range(rank, len(dataloader.dataset), world)), batch_size=1)
        self._validate(dataloader, shard, current_iter, tb_logger, save_img)

    def _validate(self, dataloader, images, current_iter, tb_logger, save_img) -> None:
        dataset_name = dataloader.dataset.opt['name']
        metrics = self.opt['val'].get('metrics') or {}
        sums = torch.zeros(len(metrics) + 1, dtype=torch.float64)
        for val_data in images:
            img_name = osp.splitext(osp.basename(val_data['lq_path'][0]))[0]
            self.feed_data(val_data)
            self.test()
            sr_img = tensor2img([self.output.detach().float().cpu()])
            metric_data = {'img': sr_img}
            if hasattr(self, 'gt'):
                metric_data['img2'] = tensor2img([self.gt.detach().float().cpu()])
                del self.gt
            del self.lq, self.output
            if save_img:
                imwrite(sr_img, osp.join(self.opt['path']['visualization'], img_name, f'{img_name}_{current_iter}.png'))
            for i, metric_opt in enumerate(metrics.values()):
                sums[i] += float(calculate_metric(metric_data, metric_opt))
            sums[-1] += 1
        sums = all_reduce_sum(sums)
        if not metrics or sums[-1] == 0:
            return
        self._initialize_best_metric_results(dataset_name)
        self.metric_results = {name: float(sums[i] / sums[-1]) for i, name in enumerate(metrics)}
        for name, value in self.metric_results.items():
            self._update_best_metric_result(dataset_name, name, value, current_iter)
        if self.opt.get('rank', 0) == 0:
            self._log_validation_metric_values(current_iter, dataset_name, tb_logger)

    # ------------------------------------------------------- saving/resuming
    def save_network(self, net, net_label, current_iter, param_key='params') -> None:
        """Network weights (CPU tensors, no ``module.`` prefix), written atomically by rank 0."""
        if self.opt.get('rank', 0) != 0:
            return
        label = 'latest' if current_iter == -1 else current_iter
        nets = net if isinstance(net, list) else [net]
        keys = param_key if isinstance(param_key, list) else [param_key]
        save_dict = {}
        for net_, key in zip(nets, keys):
            state = self.get_bare_model(net_).state_dict()
            save_dict[key] = OrderedDict((k.removeprefix('module.'), v.detach().cpu()) for k, v in state.items())
        atomic_torch_save(save_dict, osp.join(self.opt['path']['models'], f'{net_label}_{label}.pth'))

    def rank_training_state(self) -> dict[str, Any]:
        """What differs between ranks: global RNGs, the synthesis generator and the pair pool."""
        state: dict[str, Any] = {'rng': capture_rng_state()}
        if self.synthesis_generator is not None:
            state['synthesis_generator'] = self.synthesis_generator.get_state()
            if self.synthesis_host_generator is not self.synthesis_generator:  # on an accelerator
                state['synthesis_host_generator'] = self.synthesis_host_generator.get_state()
        if self.pair_pool.size > 0:
            state['pair_pool'] = _to_cpu(self.pair_pool.state_dict())
        return state

    def load_rank_training_state(self, state: Mapping[str, Any]) -> None:
        if self.synthesis_generator is not None and 'synthesis_generator' in state:
            self.synthesis_generator.set_state(state['synthesis_generator'].cpu())
        if self.synthesis_host_generator is not None and 'synthesis_host_generator' in state:
            self.synthesis_host_generator.set_state(state['synthesis_host_generator'].cpu())
        if 'pair_pool' in state:
            self.pair_pool.load_state_dict(state['pair_pool'], device=self.device)
        restore_rng_state(state['rng'])

    def save_training_state(self, epoch, current_iter) -> None:
        """``<iter>.state``: optimizers, schedulers, scaler, loop progress and rank 0's random state;
        ranks > 0 write theirs beside it first. The ``.state`` file is written last, atomically: its
        presence means the whole checkpoint is there."""
        if current_iter == -1:
            return
        states_dir = self.opt['path']['training_states']
        rank = self.opt.get('rank', 0)
        if rank != 0:
            atomic_torch_save(self.rank_training_state(), rank_state_path(states_dir, current_iter, rank))
        barrier()
        if rank == 0:
            state = {
                'epoch': epoch,
                'iter': current_iter,
                'optimizers': [o.state_dict() for o in self.optimizers],
                'schedulers': [s.state_dict() for s in self.schedulers],
                'world_size': self.opt.get('world_size', 1),
                'runner': dict(getattr(self, 'runner_state', {})),
                'rank_state': self.rank_training_state(),
            }
            if self.grad_scaler is not None:
                state['grad_scaler'] = self.grad_scaler.state_dict()
            atomic_torch_save(state, osp.join(states_dir, f'{current_iter}.state'))
        barrier()

    def resume_training(self, resume_state: Mapping[str, Any]) -> None:
        """Optimizers, schedulers and scaler; the rank state is restored by :meth:`resume_random_state`
        at the last moment (building things after this would draw random numbers)."""
        if len(resume_state['optimizers']) != len(self.optimizers):
            raise ValueError(
                f'Training state has {len(resume_state["optimizers"])} optimizers, model has {len(self.optimizers)}'
            )
        for optimizer, state in zip(self.optimizers, resume_state['optimizers']):
            optimizer.load_state_dict(state)
        for scheduler, state in zip(self.schedulers, resume_state['schedulers']):
            scheduler.load_state_dict(state)
        if self.grad_scaler is not None and 'grad_scaler' in resume_state:
            self.grad_scaler.load_state_dict(resume_state['grad_scaler'])

    def resume_random_state(self, resume_state: Mapping[str, Any]) -> bool:
        """Restore this rank's random state and pool; False when the state was saved with another
        world size (training continues correctly, but not bit-identically)."""
        rank, world = self.opt.get('rank', 0), self.opt.get('world_size', 1)
        if resume_state.get('world_size', 1) != world or 'rank_state' not in resume_state:
            get_root_logger().warning('Training state saved with another world size: random state not restored.')
            return False
        if rank == 0:
            state = resume_state['rank_state']
        else:
            path = rank_state_path(self.opt['path']['training_states'], resume_state['iter'], rank)
            state = safe_torch_load(path, map_location='cpu')
        self.load_rank_training_state(state)
        return True


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, Mapping):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


__all__ = ['TrainingRuntimeMixin', 'rank_state_path']
