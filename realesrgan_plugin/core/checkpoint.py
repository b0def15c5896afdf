"""Checkpoint files read safely, and the random state a run needs to resume to the bit.

Checkpoints are written by ``core.atomic.atomic_torch_save``: a run killed at any moment leaves
either the old file or the new one, never half of one.
"""

from __future__ import annotations

import collections
import os
import random
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch


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


def find_latest_training_state(states_dir: str | os.PathLike) -> Path | None:
    """The ``<iter>.state`` file with the highest iteration in ``states_dir`` (None when there is none).

    Temporary files of an interrupted write never match (they are dot-prefixed ``.tmp`` files)."""
    states_dir = Path(states_dir)
    if not states_dir.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in states_dir.iterdir() if (m := _STATE_NAME.match(p.name))]
    return max(found)[1] if found else None


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
