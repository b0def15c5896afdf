"""Checkpoint files read safely, and the random state a run needs to resume to the bit.

Checkpoints are written by ``core.atomic.atomic_torch_save``: a run killed at any moment leaves
either the old file or the new one, never half of one.
"""

from __future__ import annotations

import collections
import logging
import os
import random
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

logger = logging.getLogger(__name__)
CORRUPT_SUFFIX = '.corrupt'


def capture_rng_state() -> dict[str, Any]:
    """Global random state of python, numpy, torch CPU and every CUDA device, as plain data
    (ints, tuples, tensors) so that ``weights_only`` loading accepts it."""
    np_state = np.random.get_state()
    state = {
        'python': random.getstate(),
        'numpy': {
            'name': np_state[0],
            'keys': torch.from_numpy(np_state[1].astype(np.int64)),
            'pos': int(np_state[2]),
            'has_gauss': int(np_state[3]),
            'cached_gaussian': float(np_state[4]),
        },
        'torch': torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    random.setstate(_as_python_random_state(state['python']))
    npst = state['numpy']
    np.random.set_state(
        (npst['name'], npst['keys'].numpy().astype(np.uint32), npst['pos'], npst['has_gauss'], npst['cached_gaussian'])
    )
    torch.set_rng_state(state['torch'].cpu())
    if 'cuda' in state and torch.cuda.is_available():
        cuda_states = [s.cpu() for s in state['cuda']]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)


def _as_python_random_state(state: Any) -> tuple:
    """``random.setstate`` wants tuples; a round trip through some loaders gives lists."""
    version, internal, gauss = state
    return (version, tuple(internal), gauss)


@contextmanager
def preserved_rng_state() -> Iterator[None]:
    """Run a block (validation, creating a data loader iterator...) without changing the global
    random streams training draws from, so that it cannot make a resumed run diverge."""
    state = capture_rng_state()
    try:
        yield
    finally:
        restore_rng_state(state)


_STATE_NAME = re.compile(r'^(\d+)\.state$')


# Plain Python types found in BasicSR/MMEngine training states that torch's safe loader
# does not allow by default. Each one is data, not code.
SAFE_CHECKPOINT_GLOBALS: list[Any] = [collections.Counter, collections.OrderedDict, collections.defaultdict]


def safe_torch_load(path: str | os.PathLike, map_location: Any = 'cpu', extra_safe_globals: Iterable[Any] = ()) -> Any:
    """``torch.load`` with ``weights_only=True`` (no arbitrary code from a checkpoint), allowing only
    the plain container types training states are known to hold.

    Raises a ``RuntimeError`` that names the file when it cannot be read safely."""
    allowed = SAFE_CHECKPOINT_GLOBALS + list(extra_safe_globals)
    try:
        with torch.serialization.safe_globals(allowed):
            return torch.load(os.fspath(path), map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, EOFError...
        raise RuntimeError(f'Cannot load checkpoint {os.fspath(path)!r} safely: {err}') from err


class ResumeError(RuntimeError):
    """No checkpoint to resume from: the one named is damaged, or every one found is. The
    command lines print it as one ``error:`` line."""


def training_states_newest_first(states_dir: str | os.PathLike) -> list[Path]:
    """Every ``<iter>.state`` in ``states_dir``, highest iteration first."""
    states_dir = Path(states_dir)
    if not states_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in states_dir.iterdir() if (m := _STATE_NAME.match(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def first_unreadable(paths: Iterable[Path], load: Callable[[Path], Any]) -> tuple[Path, str] | None:
    """(file, why) for the first of ``paths`` that is missing or cannot be loaded, else None."""
    for path in paths:
        if not Path(path).is_file():
            return Path(path), f'{os.fspath(path)!r} is missing'
        try:
            load(path)
        except (RuntimeError, ValueError, OSError) as err:
            return Path(path), str(err).splitlines()[0]
    return None


def verify_checkpoint(
    path: Path, companions: Sequence[Path] = (), load: Callable[[Path], Any] = safe_torch_load
) -> Any:
    """Load ``path`` and check that each companion file (the network weights a training state
    names) loads too; a :class:`ResumeError` names the first file that does not. Returns what
    ``path`` holds. For a checkpoint the user named explicitly: no fallback."""
    try:
        state = load(path)
    except (RuntimeError, ValueError) as err:
        raise ResumeError(f'{str(err).splitlines()[0]} (the checkpoint to resume from is damaged)') from err
    bad = first_unreadable([Path(p) for p in companions], load)
    if bad is not None:
        raise ResumeError(f'checkpoint {os.fspath(path)!r} needs {bad[1]} (damaged or missing)')
    return state


def set_aside_corrupt(path: Path) -> Path:
    """Rename a damaged checkpoint to ``<name>.corrupt`` so that no later resume trips on it again,
    while keeping its bytes for whoever wants to look."""
    target = path.with_name(path.name + CORRUPT_SUFFIX)
    os.replace(path, target)
    return target


def newest_intact_checkpoint(
    candidates: Sequence[Path],
    companions: Callable[[Path], Sequence[Path]] = lambda path: (),
    load: Callable[[Path], Any] = safe_torch_load,
    warn: Callable[[str], None] = logger.warning,
    move_aside: bool = True,
) -> tuple[Path, Any] | None:
    """The first of ``candidates`` (newest first) that loads, with every companion file loading
    too; returns (path, loaded checkpoint) or None.

    Written once for both hosts' auto-resume. Each damaged file found on the way (a truncated
    copy, a disk fault) gets ONE warning naming it and is moved aside as ``*.corrupt``
    (``move_aside=False`` on ranks > 0, which only follow rank 0's decision); a missing
    companion is named but nothing is moved."""
    for path in candidates:
        try:
            state = load(path)
        except FileNotFoundError:
            continue  # moved aside meanwhile by another process
        except (RuntimeError, ValueError) as err:
            _report_damaged(path, str(err).splitlines()[0], warn, move_aside)
            continue
        bad = first_unreadable(companions(path), load)
        if bad is None:
            return path, state
        bad_path, why = bad
        if bad_path.exists():
            _report_damaged(bad_path, why, warn, move_aside)
        else:
            warn(f'skipping {os.fspath(path)!r}: it needs {why}')
    return None


def _report_damaged(path: Path, why: str, warn: Callable[[str], None], move_aside: bool) -> None:
    if move_aside:
        moved = set_aside_corrupt(path)
        warn(f'damaged checkpoint skipped: {why}; moved it aside to {moved.name}')
    else:
        warn(f'damaged checkpoint skipped: {why}')
