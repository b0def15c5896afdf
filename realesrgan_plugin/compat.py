"""Make BasicSR 1.4.2 and MMEngine 0.10.7 work on today's torch/torchvision.

Applied once, on import of :mod:`realesrgan_plugin`, before anything imports basicsr.
Nothing here edits site-packages: every fix is a runtime alias or a wrapper we own.
"""

from __future__ import annotations

import collections
import importlib
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import torch

_FUNCTIONAL_TENSOR = 'torchvision.transforms.functional_tensor'


def alias_torchvision_functional_tensor() -> None:
    """basicsr imports ``torchvision.transforms.functional_tensor``, renamed to ``_functional_tensor``
    in torchvision 0.17; register the new module under the old name so that import succeeds."""
    if _FUNCTIONAL_TENSOR in sys.modules:
        return
    try:
        importlib.import_module(_FUNCTIONAL_TENSOR)
    except ImportError:
        sys.modules[_FUNCTIONAL_TENSOR] = importlib.import_module('torchvision.transforms._functional_tensor')


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


def apply() -> None:
    """Apply every runtime fix; idempotent."""
    alias_torchvision_functional_tensor()


apply()
