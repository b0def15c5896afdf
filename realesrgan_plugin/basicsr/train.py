"""Training entry: ``realesrgan-train -opt FILE.yml`` / ``python -m realesrgan_plugin.train -opt FILE.yml``.

BasicSR's runner, rebuilt from BasicSR's own parts (option parsing, dataset/dataloader/model
builders, loggers, MessageLogger, validation) with what its ``train_pipeline`` lacks:

* ``--launcher pytorch`` under torchrun with ``--local-rank`` or ``LOCAL_RANK``, on GPUs (NCCL) or
  CPUs (gloo);
* ``--auto_resume`` looks in the experiment's own folder (``<root>/experiments/<name>``), and a
  resumed run continues bit for bit: training data is a function of (seed, epoch, position), and the
  training state holds every random state, the synthesis generator and the pair pool;
* ``--auto_resume`` verifies the newest state and the network files it names: a damaged one gets
  one warning, is moved aside as ``*.corrupt``, and the newest intact state is used; none intact
  stops the run unless ``--auto_resume=fresh-if-none`` (BasicSR crashes on the damaged file);
* checkpoints written atomically, the ``.state`` file last; a full disk is one error line naming the file;
* validation sharded over all ranks and run without touching the training random streams.

Experiments go under ``--root_path`` (default: the current directory), as with BasicSR.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import math
import os
import sys
import time
from collections.abc import Sequence
from contextlib import contextmanager
from os import path as osp
from pathlib import Path
from typing import Any

from realesrgan_plugin.basicsr.data.seeded_sampler import SeededDataset, SeededSampler
from realesrgan_plugin.basicsr.option_checks import (
    check_option_file,
    choose_perceptual_loss,
    option_file_argument,
    split_plugin_flags,
)
from realesrgan_plugin.core.atomic import (
    NamingDiskErrors,
    naming_disk_errors,
    raise_disk_errors_of,
    remove_stale_temp_files,
    tensorboard_event_file,
    tensorboard_file_in,
)
from realesrgan_plugin.core.checkpoint import (
    ResumeError,
    newest_intact_checkpoint,
    preserved_rng_state,
    safe_torch_load,
    training_states_newest_first,
    verify_checkpoint,
)
from realesrgan_plugin.core.cli_errors import (
    EXIT_SIGINT,
    EXIT_SIGTERM,
    Terminated,
    run_cli,
    training_errors_as_one_line,
)
from realesrgan_plugin.core.dist import (
    assert_replicas_in_sync,
    barrier,
    init_distributed,
    normalize_local_rank_args,
    shutdown_distributed,
    training_device,
)

import basicsr.utils.options as basicsr_options
import torch
from basicsr.data import build_dataloader, build_dataset
from basicsr.data.prefetch_dataloader import CPUPrefetcher, CUDAPrefetcher
from basicsr.models import build_model
from basicsr.train import init_tb_loggers
from basicsr.utils import (
    AvgTimer,
    MessageLogger,
    check_resume,
    get_env_info,
    get_root_logger,
    get_time_str,
    make_exp_dirs,
    mkdir_and_rename,
)
from basicsr.utils.options import copy_opt_file, dict2str


@contextmanager
def _basicsr_argv(argv: list[str]):
    """BasicSR's ``parse_options`` reads ``sys.argv`` and starts the process group with its own
    ``init_dist`` (NCCL + CUDA only); run it on ``argv`` with ours instead."""
    saved_argv, saved_init = sys.argv, basicsr_options.init_dist
    sys.argv = [saved_argv[0], *argv]
    basicsr_options.init_dist = init_distributed
    try:
        yield
    finally:
        sys.argv, basicsr_options.init_dist = saved_argv, saved_init


FRESH_IF_NONE = 'fresh-if-none'


def parse_training_options(argv: Sequence[str]) -> tuple[dict, argparse.Namespace, str]:
    """BasicSR's options plus ``--root_path`` and ``--auto_resume[=fresh-if-none]``; returns (opt,
    basicsr args, root path). ``opt['auto_resume_fresh']`` says whether a run whose every state is
    damaged may start from scratch."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument('--root_path', default=os.getcwd())
    pre.add_argument('--auto_resume', nargs='?', const='newest', choices=('newest', FRESH_IF_NONE), default=None)
    ours, rest = pre.parse_known_args(normalize_local_rank_args(list(argv)))
    root_path = osp.abspath(ours.root_path)
    if ours.auto_resume is not None:
        rest.append('--auto_resume')  # BasicSR's own flag
    with _basicsr_argv(rest):
        opt, args = basicsr_options.parse_options(root_path, is_train=True)
    opt['root_path'] = root_path
    opt['auto_resume_fresh'] = ours.auto_resume == FRESH_IF_NONE
    if opt['num_gpu'] != 0 and not torch.cuda.is_available():
        # BasicSR multiplies batch size and workers by num_gpu when not distributed: on a machine
        # without CUDA, an official file's ``num_gpu: 4`` must mean one CPU process, as written per GPU.
        print(f'num_gpu: {opt["num_gpu"]} but no CUDA device: training on the CPU (num_gpu: 0).', flush=True)
        opt['num_gpu'] = 0
    if opt.get('dist') and opt.get('dist_params', {}).get('backend') == 'nccl' and not torch.cuda.is_available():
        opt['dist_params']['backend'] = 'gloo'  # what actually runs; keeps the saved options honest
    return opt, args, root_path


def set_cudnn_mode(deterministic: bool) -> None:
    """cuDNN autotuning (BasicSR's default, fastest) or deterministic kernels (``deterministic: true``),
    which bit-exact resume on a GPU needs; on CPU training is deterministic either way."""
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = deterministic
    if deterministic:
        os.environ.setdefault('CUBLAS_WORKSPACE_CONFIG', ':4096:8')
        torch.use_deterministic_algorithms(True, warn_only=True)


def load_resume_state(opt: dict) -> dict | None:
    """The training state to continue from: the newest intact ``<iter>.state`` of this experiment
    (with the network files it names) with ``--auto_resume``, else ``path.resume_state``, which must
    be intact; loaded safely onto the training device."""
    device = training_device(opt['num_gpu'])
    if opt['auto_resume']:
        path, state = _newest_intact_state(opt, device)
        if path is not None:
            opt['path']['resume_state'] = str(path)
    elif opt['path'].get('resume_state'):
        path = opt['path']['resume_state']
        state = verify_checkpoint(path, _state_companions(opt, path), lambda p: safe_torch_load(p, map_location=device))
    else:
        return None
    if path is None:
        return None
    if opt['rank'] == 0:
        for folder in (opt['path']['models'], opt['path']['training_states']):
            remove_stale_temp_files(folder)
    check_resume(opt, state['iter'])
    return state


def _state_companions(opt: dict, state_path: str | os.PathLike) -> list[str]:
    """The files resuming from ``<iter>.state`` also reads: ``net_<x>_<iter>.pth`` for each network
    (as BasicSR's ``check_resume`` names them) and the other ranks' states."""
    step = osp.basename(state_path).split('.')[0]
    ignored = opt['path'].get('ignore_resume_networks') or ()
    nets = [k.removeprefix('network_') for k in opt if k.startswith('network_') and k not in ignored]
    files = [osp.join(opt['path']['models'], f'net_{net}_{step}.pth') for net in nets]
    ranks_dir = osp.join(opt['path']['training_states'], 'ranks')
    files += [osp.join(ranks_dir, f'{step}_rank{r}.pth') for r in range(1, opt.get('world_size', 1))]
    return files


def _newest_intact_state(opt: dict, device) -> tuple[str | None, dict | None]:
    """``--auto_resume``: rank 0 walks the states newest first, moving damaged files aside (one
    warning each); the other ranks then find the same one. No state at all: a fresh start. States,
    but none intact: an error, unless ``--auto_resume=fresh-if-none``."""
    states_dir = opt['path']['training_states']
    had_states = bool(training_states_newest_first(states_dir))
    if opt['rank'] != 0:
        barrier()

    def warn(message: str) -> None:
        print(f'WARNING: --auto_resume: {message}', file=sys.stderr, flush=True)

    found = newest_intact_checkpoint(
        training_states_newest_first(states_dir),
        companions=lambda p: [Path(f) for f in _state_companions(opt, p)],
        load=lambda p: safe_torch_load(p, map_location=device),
        warn=warn if opt['rank'] == 0 else lambda message: None,
        move_aside=opt['rank'] == 0,
    )
    if opt['rank'] == 0:
        barrier()
    if found is not None:
        return str(found[0]), found[1]
    if had_states and not opt['auto_resume_fresh']:
        raise ResumeError(
            f'--auto_resume: no intact training state left in {states_dir} (damaged ones were moved aside as '
            f'*.corrupt); run with --auto_resume={FRESH_IF_NONE} to start from scratch'
        )
    if had_states:
        warn(f'no intact training state left in {states_dir}: starting from scratch ({FRESH_IF_NONE})')
    return None, None


def build_train_loader(opt: dict, logger: logging.Logger) -> tuple[Any, SeededSampler, int]:
    """Train dataset wrapped so each sample is seeded by its place in the run; returns (loader,
    sampler, batches per epoch)."""
    dataset_opt = opt['datasets']['train']
    ratio = dataset_opt.get('dataset_enlarge_ratio', 1)
    dataset = build_dataset(dataset_opt)
    sampler = SeededSampler(dataset, opt['world_size'], opt['rank'], ratio, seed=int(opt['manual_seed']))
    loader = build_dataloader(
        SeededDataset(dataset),
        dataset_opt,
        num_gpu=opt['num_gpu'],
        dist=opt['dist'],
        sampler=sampler,
        seed=opt['manual_seed'],
    )
    if dataset_opt.get('prefetch_mode') == 'cpu' and loader.num_workers == 0:
        logger.warning(
            'prefetch_mode: cpu with num_worker_per_gpu: 0 loads samples in a background thread that shares the '
            'global random state with training: runs are not reproducible. Use workers or prefetch_mode: ~.'
        )
    batches_per_epoch = len(sampler) // loader.batch_size
    if batches_per_epoch == 0:
        raise ValueError(
            f'Train dataset {dataset_opt.get("name")!r} has {len(dataset)} image(s) x ratio {ratio} per rank, '
            f'less than one batch of {loader.batch_size}: add images, lower batch_size_per_gpu or raise '
            'dataset_enlarge_ratio'
        )
    total_iters = int(opt['train']['total_iter'])
    logger.info(
        'Training statistics:'
        f'\n\tNumber of train images: {len(dataset)}'
        f'\n\tDataset enlarge ratio: {ratio}'
        f'\n\tBatch size per gpu: {dataset_opt["batch_size_per_gpu"]}'
        f'\n\tWorld size (gpu number): {opt["world_size"]}'
        f'\n\tRequire iter number per epoch: {batches_per_epoch}'
        f'\n\tTotal epochs: {math.ceil(total_iters / batches_per_epoch)}; iters: {total_iters}.'
    )
    return loader, sampler, batches_per_epoch


def build_val_loaders(opt: dict, logger: logging.Logger) -> list:
    loaders = []
    for phase, dataset_opt in opt['datasets'].items():
        if phase == 'train':
            continue
        if phase.split('_')[0] != 'val':
            raise ValueError(f'Dataset phase {phase} is not recognized.')
        dataset = build_dataset(dataset_opt)
        loaders.append(build_dataloader(dataset, dataset_opt, num_gpu=opt['num_gpu'], dist=opt['dist'], sampler=None))
        logger.info(f'Number of val images/folders in {dataset_opt["name"]}: {len(dataset)}')
    return loaders


def make_prefetcher(opt: dict, loader):
    mode = opt['datasets']['train'].get('prefetch_mode')
    if mode in (None, 'cpu'):
        return CPUPrefetcher(loader)
    if mode == 'cuda':
        if opt['datasets']['train'].get('pin_memory') is not True:
            raise ValueError('prefetch_mode: cuda needs pin_memory: true in datasets.train')
        return CUDAPrefetcher(loader, opt)
    raise ValueError(f"Wrong prefetch_mode {mode!r}. Supported ones are: None, 'cuda', 'cpu'.")


def model_networks(model) -> dict:
    """The model's networks by name (bare, without DDP wrappers)."""
    names = ('net_g', 'net_g_ema', 'net_d')
    return {n: model.get_bare_model(getattr(model, n)) for n in names if getattr(model, n, None) is not None}


def validate(model, val_loaders: list, opt: dict, current_iter: int, tb_logger) -> None:
    """Validation never changes the random streams training draws from."""
    with preserved_rng_state():
        for loader in val_loaders:
            model.validation(loader, current_iter, tb_logger, opt['val'].get('save_img', False))


def run_logger(log_file: str, rank: int) -> logging.Logger:
    """BasicSR's 'basicsr' logger writing to this run's ``log_file``. BasicSR sets a logger up once
    per process and ignores the ``log_file`` of later calls, so a second run in the same process
    (a notebook, a test) logged into the first run's file: the file handler is replaced here. A
    full disk under the log file stops the run with one line naming it (logging would print a
    traceback per record and go on)."""
    logger = get_root_logger(logger_name='basicsr', log_level=logging.INFO, log_file=log_file)
    if rank != 0:
        return logger
    logger.disabled = False  # another framework's logging set-up in between may disable or reset it
    logger.setLevel(logging.INFO)
    for handler in [h for h in logger.handlers if isinstance(h, logging.FileHandler)]:
        if handler.baseFilename != osp.abspath(log_file):
            logger.removeHandler(handler)
            handler.close()
    if not any(isinstance(h, logging.FileHandler) for h in logger.handlers):
        handler = logging.FileHandler(log_file, 'w')
        handler.setFormatter(logging.Formatter('%(asctime)s %(levelname)s: %(message)s'))
        handler.setLevel(logging.INFO)
        logger.addHandler(handler)
    for handler in logger.handlers:
        if isinstance(handler, logging.FileHandler):
            raise_disk_errors_of(handler)  # a full disk stops the run with one line naming the log
    return logger


def train_pipeline(argv: Sequence[str], no_perceptual: bool = False, on_options=None) -> None:
    """Train from BasicSR-style ``argv``; ``on_options(opt)`` sees the parsed options (the CLI uses
    them to name the last checkpoint when interrupted)."""
    opt, args, root_path = parse_training_options(argv)
    if on_options is not None:
        on_options(opt)
    perceptual_note = choose_perceptual_loss(opt, no_perceptual, args.opt)
    set_cudnn_mode(bool(opt.get('deterministic', False)))

    resume_state = load_resume_state(opt)
    if resume_state is None:
        make_exp_dirs(opt)
        if opt['logger'].get('use_tb_logger') and 'debug' not in opt['name'] and opt['rank'] == 0:
            mkdir_and_rename(osp.join(root_path, 'tb_logger', opt['name']))
    copy_opt_file(args.opt, opt['path']['experiments_root'])

    log_file = osp.join(opt['path']['log'], f'train_{opt["name"]}_{get_time_str()}.log')
    logger = run_logger(log_file, opt['rank'])
    logger.info(get_env_info())
    logger.info(dict2str(opt))
    if perceptual_note:
        logger.info(perceptual_note)
    with naming_disk_errors(lambda: tensorboard_file_in(osp.join(opt['root_path'], 'tb_logger', opt['name']))):
        tb_logger = init_tb_loggers(opt)  # its first event is written (and may fail) here
    if tb_logger:
        tb_logger = NamingDiskErrors(tb_logger, tensorboard_event_file(tb_logger))

    train_loader, train_sampler, batches_per_epoch = build_train_loader(opt, logger)
    val_loaders = build_val_loaders(opt, logger)
    total_iters = int(opt['train']['total_iter'])

    model = build_model(opt)
    epoch, current_iter, batches_done = 0, 0, 0
    if resume_state is not None:
        model.resume_training(resume_state)
        epoch, current_iter = resume_state['epoch'], resume_state['iter']
        batches_done = resume_state.get('runner', {}).get('batches_in_epoch', 0)
        logger.info(f'Resuming training from epoch: {epoch}, iter: {current_iter}.')
        model.resume_random_state(resume_state)
        del resume_state

    msg_logger = MessageLogger(opt, current_iter, tb_logger)
    prefetcher = make_prefetcher(opt, train_loader)
    logger.info(f'Start training from epoch: {epoch}, iter: {current_iter}')
    data_timer, iter_timer = AvgTimer(), AvgTimer()
    start_time = time.time()
    save_freq, print_freq = int(opt['logger']['save_checkpoint_freq']), int(opt['logger']['print_freq'])
    val_freq = int(opt['val']['val_freq']) if opt.get('val') is not None else 0

    while current_iter < total_iters:
        train_sampler.set_epoch(epoch)
        train_sampler.skip(batches_done * train_loader.batch_size)
        with preserved_rng_state():  # creating loader iterators draws worker seeds
            prefetcher.reset()
        train_data = prefetcher.next()
        while train_data is not None and current_iter < total_iters:
            data_timer.record()
            current_iter += 1
            batches_done += 1
            model.update_learning_rate(current_iter, warmup_iter=opt['train'].get('warmup_iter', -1))
            model.feed_data(train_data)
            model.optimize_parameters(current_iter)
            iter_timer.record()
            if current_iter == 1:
                msg_logger.reset_start_time()
            if current_iter % print_freq == 0:
                log_vars = {'epoch': epoch, 'iter': current_iter, 'lrs': model.get_current_learning_rate()}
                log_vars.update({'time': iter_timer.get_avg_time(), 'data_time': data_timer.get_avg_time()})
                log_vars.update(model.get_current_log())
                msg_logger(log_vars)
            if current_iter % save_freq == 0:
                logger.info('Saving models and training states.')
                model.runner_state = {'batches_in_epoch': batches_done}
                model.save(epoch, current_iter)
            if val_freq and current_iter % val_freq == 0:
                validate(model, val_loaders, opt, current_iter, tb_logger)
            data_timer.start()
            iter_timer.start()
            if batches_done < batches_per_epoch:
                train_data = prefetcher.next()
            else:
                train_data = None
        if batches_done >= batches_per_epoch:
            epoch, batches_done = epoch + 1, 0

    consumed = str(datetime.timedelta(seconds=int(time.time() - start_time)))
    logger.info(f'End of training. Time consumed: {consumed}')
    logger.info('Save the latest model.')
    model.save(epoch=-1, current_iter=-1)
    if opt['dist']:
        digests = assert_replicas_in_sync(model_networks(model))
        logger.info(f'Weights identical on all {opt["world_size"]} ranks: {digests}')
    if opt.get('val') is not None:
        validate(model, val_loaders, opt, current_iter, tb_logger)
    if tb_logger:
        tb_logger.close()
    shutdown_distributed()


def main(argv: Sequence[str] | None = None) -> int:
    """``realesrgan-train``: the option file is checked before anything is built, errors are one
    line (traceback with ``--debug``), Ctrl-C / SIGTERM name the last checkpoint and the command
    that resumes from it (exit 130 / 143); a damaged checkpoint or a full disk is one line naming
    the file (exit 2)."""
    return run_cli(_train_command, argv)


def _train_command(argv: list[str]) -> int:
    argv, no_perceptual = split_plugin_flags(argv)
    opt_file = option_file_argument(argv)
    if opt_file is not None:  # without -opt, BasicSR's parser says what is missing
        check_option_file(opt_file)
    seen: dict = {}
    try:
        with training_errors_as_one_line('the experiment folder'):
            train_pipeline(argv, no_perceptual, on_options=seen.update)
    except KeyboardInterrupt as stop:
        code = EXIT_SIGTERM if isinstance(stop, Terminated) else EXIT_SIGINT
        print(interrupted_message(seen, argv, code == EXIT_SIGTERM), file=sys.stderr, flush=True)
        shutdown_distributed()
        return code
    return 0


def interrupted_message(opt: dict, argv: Sequence[str], terminated: bool) -> str:
    """One line: the last complete checkpoint and the command that continues from it."""
    how = 'terminated (SIGTERM)' if terminated else 'interrupted (Ctrl-C)'
    states = (opt.get('path') or {}).get('training_states')
    newest = training_states_newest_first(states) if states and osp.isdir(states) else []
    if not newest:
        return f'error: {how}: no checkpoint was saved yet; rerun the same command to start again'
    latest = newest[0]
    resume = ' '.join(['realesrgan-train', *[a for a in argv if a != '--auto_resume'], '--auto_resume'])
    return f'error: {how}: last checkpoint: iter {Path(latest).stem} ({latest}); resume with: {resume}'


if __name__ == '__main__':
    sys.exit(main())
