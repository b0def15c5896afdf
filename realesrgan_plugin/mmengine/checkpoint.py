"""Checkpoints across hosts: safe loading of MMEngine training states, and weight layouts.

Safe loading: torch >= 2.6 loads with ``weights_only=True``; MMEngine 0.10.7 training states
hold a few non-tensor objects (``HistoryBuffer`` logs with numpy arrays, numpy scalars, and
``getattr(HistoryBuffer, 'min')``-style references to its statistics methods). We allow exactly
those, never arbitrary code: ``getattr`` is replaced by a function that resolves only
``HistoryBuffer``'s statistics methods.

Layouts of generator/discriminator weights (the state-dict keys inside are the official ones
in every case; only the wrapping differs):

* ``basicsr``: ``{'params': G, 'params_ema': G_ema}`` (``net_g_*.pth``, official releases) and
  ``{'params': D}`` (``net_d_*.pth``).
* ``mmengine``: this plugin's MMEngine models, ``{'state_dict': {'generator.<k>', 'generator_ema.<k>',
  'discriminator.<k>', ...}, 'meta': ..., ...}``.
* ``mmagic``: the same prefixes, but the discriminator names its convs ``conv_0..conv_9`` where
  the official ``UNetDiscriminatorSN`` has ``conv0..conv9``, and other modules (losses, data
  preprocessor) may be saved too.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import re
import sys
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from realesrgan_plugin.convert_mm import build_parser
from realesrgan_plugin.core.atomic import atomic_torch_save
from realesrgan_plugin.core.checkpoint import SAFE_CHECKPOINT_GLOBALS, safe_torch_load
from realesrgan_plugin.core.cli_errors import FailedError, UsageError, run_cli

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

GENERATOR, GENERATOR_EMA, DISCRIMINATOR = 'generator.', 'generator_ema.', 'discriminator.'
MODEL_PREFIXES = (GENERATOR, GENERATOR_EMA, DISCRIMINATOR)
BASICSR_KEYS = ('params', 'params_ema')
_MMAGIC_DISC_CONV = re.compile(r'^conv_(\d+)\.')
_HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')


# --------------------------------------------------------------------------- safe loading


def _history_buffer_statistic(owner: Any, name: str) -> Any:
    """Stand-in for ``getattr`` while unpickling: only ``HistoryBuffer.<statistic>`` resolves."""
    allowed = set(_HISTORY_BUFFER_STATISTICS) | set(HistoryBuffer._statistics_methods)
    if owner is not HistoryBuffer or name not in allowed:
        raise pickle.UnpicklingError(
            f'Refusing getattr({owner!r}, {name!r}) while loading a checkpoint: only HistoryBuffer '
            f'statistics methods {sorted(allowed)} are allowed.'
        )
    return getattr(HistoryBuffer, name)


def _numpy_globals() -> list[Any]:
    core = np._core.multiarray
    dtypes = [type(np.dtype(t)) for t in (np.float64, np.float32, np.int64, np.int32, np.bool_)]
    aliases = []
    for name in ('_reconstruct', 'scalar'):  # numpy 1.x writes numpy.core, numpy 2.x numpy._core
        aliases += [(getattr(core, name), f'numpy.core.multiarray.{name}'), getattr(core, name)]
    return [np.ndarray, np.dtype, *dtypes, *aliases]


#: Exactly what MMEngine 0.10.7 training states contain beyond tensors and plain containers.
_MMENGINE_ONLY_GLOBALS: list[Any] = [
    HistoryBuffer,
    *_numpy_globals(),
    (_history_buffer_statistic, 'builtins.getattr'),
]
MMENGINE_CHECKPOINT_GLOBALS: list[Any] = [*SAFE_CHECKPOINT_GLOBALS, *_MMENGINE_ONLY_GLOBALS]


@contextlib.contextmanager
def mmengine_safe_globals() -> Iterator[None]:
    """Within this context, ``torch.load(weights_only=True)`` reads MMEngine training states."""
    with torch.serialization.safe_globals(MMENGINE_CHECKPOINT_GLOBALS):
        yield


def load_checkpoint_file(path: str | os.PathLike) -> dict:
    """Read any checkpoint this module understands, safely, onto the CPU."""
    ckpt = safe_torch_load(path, map_location='cpu', extra_safe_globals=_MMENGINE_ONLY_GLOBALS)
    if not isinstance(ckpt, Mapping):
        raise ValueError(f'{os.fspath(path)!r}: expected a dict checkpoint, got {type(ckpt).__name__}')
    return dict(ckpt)


# --------------------------------------------------------------------------- layouts


def _strip_module(state: Mapping[str, torch.Tensor]) -> OrderedDict:
    return OrderedDict((k[len('module.') :] if k.startswith('module.') else k, v) for k, v in state.items())


def model_state_dict(ckpt: Mapping) -> Mapping[str, Any]:
    """The prefixed model state dict of an MMEngine/mmagic checkpoint (or the dict itself)."""
    state = ckpt.get('state_dict', ckpt)
    return _strip_module(state)


def detect_layout(ckpt: Mapping, name: str = 'checkpoint') -> str:
    """'basicsr', 'mmengine' or 'mmagic' (see the module docstring); ValueError naming the keys otherwise."""
    if any(isinstance(ckpt.get(k), Mapping) for k in BASICSR_KEYS) and 'state_dict' not in ckpt:
        return 'basicsr'
    state = model_state_dict(ckpt)
    if any(k.startswith(MODEL_PREFIXES) for k in state):
        disc = [k[len(DISCRIMINATOR) :] for k in state if k.startswith(DISCRIMINATOR)]
        foreign = any(not k.startswith(MODEL_PREFIXES) for k in state)  # mmagic also saves losses, preprocessor
        return 'mmagic' if foreign or any(_MMAGIC_DISC_CONV.match(k) for k in disc) else 'mmengine'
    top = sorted(ckpt)[:8]
    raise ValueError(
        f"{name}: not a generator/discriminator checkpoint: expected 'params'/'params_ema' (BasicSR) or "
        f"'state_dict' with 'generator.'/'generator_ema.'/'discriminator.' keys (MMEngine/mmagic); "
        f'top-level keys are {top}'
    )


def official_discriminator_keys(state: Mapping[str, torch.Tensor]) -> OrderedDict:
    """mmagic's ``conv_N.*`` discriminator keys -> the official ``convN.*``; others unchanged."""
    return OrderedDict((_MMAGIC_DISC_CONV.sub(r'conv\1.', k), v) for k, v in state.items())


def _with_prefix(state: Mapping[str, Any], prefix: str) -> OrderedDict:
    return OrderedDict((k[len(prefix) :], v) for k, v in state.items() if k.startswith(prefix))


def _is_discriminator(state: Mapping[str, Any]) -> bool:
    """Spectral-normalised weights (``*.weight_orig``) only occur in the U-Net discriminator."""
    return any(k.endswith('.weight_orig') for k in state)


def generator_state(ckpt: Mapping, key: str = 'params_ema', name: str = 'checkpoint') -> OrderedDict:
    """Generator weights with official keys from any layout.

    ``key``: 'params_ema' (the EMA generator, as released) or 'params' (the trained one). Like
    BasicSR, falls back to the other one when the requested one is absent."""
    if key not in BASICSR_KEYS:
        raise ValueError(f'generator key must be one of {BASICSR_KEYS}, got {key!r}')
    other = BASICSR_KEYS[1 - BASICSR_KEYS.index(key)]
    if detect_layout(ckpt, name) == 'basicsr':
        for k in (key, other):
            found = ckpt.get(k)
            if isinstance(found, Mapping) and not _is_discriminator(found):
                return _strip_module(found)
        raise ValueError(f"{name}: neither '{key}' nor '{other}' holds generator weights")
    state = model_state_dict(ckpt)
    prefixes = {'params': GENERATOR, 'params_ema': GENERATOR_EMA}
    for prefix in (prefixes[key], prefixes[other]):
        found = _with_prefix(state, prefix)
        if found:
            return found
    raise ValueError(f"{name}: no '{GENERATOR}' or '{GENERATOR_EMA}' weights in its state dict")


def has_generator(ckpt: Mapping, name: str = 'checkpoint') -> bool:
    try:
        generator_state(ckpt, name=name)
    except ValueError:
        return False
    return True


def discriminator_state(ckpt: Mapping, name: str = 'checkpoint') -> OrderedDict | None:
    """Discriminator weights with official keys (``UNetDiscriminatorSN``), or None if absent."""
    if detect_layout(ckpt, name) == 'basicsr':
        params = ckpt.get('params')
        return _strip_module(params) if isinstance(params, Mapping) and _is_discriminator(params) else None
    found = _with_prefix(model_state_dict(ckpt), DISCRIMINATOR)
    return official_discriminator_keys(found) if found else None


def to_mmengine_state_dict(ckpt: Mapping, net_d: Mapping | None = None, name: str = 'checkpoint') -> OrderedDict:
    """The state dict of this plugin's MMEngine models (``generator.``/``generator_ema.``/
    ``discriminator.`` keys) from any layout; other modules' weights (losses...) are dropped.
    ``net_d``: a separate BasicSR ``net_d_*.pth`` for the discriminator."""
    out: OrderedDict = OrderedDict()
    if has_generator(ckpt, name):
        for prefix, key in ((GENERATOR, 'params'), (GENERATOR_EMA, 'params_ema')):
            out.update((prefix + k, v) for k, v in generator_state(ckpt, key, name).items())
    disc = discriminator_state(net_d, 'net_d') if net_d is not None else discriminator_state(ckpt, name)
    if disc is not None:
        out.update((DISCRIMINATOR + k, v) for k, v in disc.items())
    if not out:
        raise ValueError(f'{name}: holds neither generator nor discriminator weights')
    return out


def to_basicsr(ckpt: Mapping, name: str = 'checkpoint') -> tuple[dict, dict | None]:
    """(``{'params': G, 'params_ema': G_ema}``, ``{'params': D}`` or None) from any layout."""
    net_g = {key: generator_state(ckpt, key, name) for key in BASICSR_KEYS} if has_generator(ckpt, name) else {}
    disc = discriminator_state(ckpt, name)
    return net_g, (None if disc is None else {'params': disc})


def normalize_checkpoint(ckpt: dict, name: str = 'checkpoint') -> dict:
    """In place: make a BasicSR or mmagic checkpoint loadable into this plugin's MMEngine models
    (``{'state_dict': ...}`` with their keys); this plugin's own checkpoints are left as they are."""
    layout = detect_layout(ckpt, name)
    if layout == 'mmengine':
        return ckpt
    state = to_mmengine_state_dict(ckpt, name=name)
    meta = ckpt.get('meta', {}) if layout == 'mmagic' else {}
    ckpt.clear()
    ckpt.update(state_dict=state, meta={**meta, 'converted_from': layout})
    return ckpt


# --------------------------------------------------------------------------- CLI


def convert(src: str, dst: str, to: str, net_d: str | None = None, dst_d: str | None = None) -> list[str]:
    """Convert ``src`` (any layout) to ``to`` ('basicsr' | 'mmengine'); return the files written."""
    if os.path.abspath(src) == os.path.abspath(dst):
        raise ValueError(f'refusing to overwrite the input {src!r}: choose another destination')
    ckpt = load_checkpoint_file(src)
    if to == 'mmengine':
        extra_d = load_checkpoint_file(net_d) if net_d else None
        state = to_mmengine_state_dict(ckpt, extra_d, name=src)
        atomic_torch_save({'state_dict': state, 'meta': {'converted_from': detect_layout(ckpt, src)}}, dst)
        return [dst]
    if to != 'basicsr':
        raise ValueError(f"--to must be 'basicsr' or 'mmengine', got {to!r}")
    net_g, disc = to_basicsr(ckpt, name=src)
    written = []
    if net_g:
        atomic_torch_save(net_g, dst)
        written.append(dst)
    if disc is not None and dst_d:
        atomic_torch_save(disc, dst_d)
        written.append(dst_d)
    elif disc is not None:
        print(f'note: {src} also holds discriminator weights; pass --dst-d to keep them')
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """``realesrgan-convert-mm``: one-line errors in the common style (traceback with ``--debug``)."""
    return run_cli(_convert_command, argv)


def _convert_command(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    for flag, path in (('src', args.src), ('--net-d', args.net_d)):
        if path is not None and not os.path.isfile(path):
            raise UsageError('checkpoint not found', f'{flag} {path}', 'give an existing .pth file')
    try:
        written = convert(args.src, args.dst, args.to, net_d=args.net_d, dst_d=args.dst_d)
    except (ValueError, RuntimeError, KeyError) as err:
        raise FailedError(
            str(err).strip('"'), args.src, 'give a BasicSR, MMEngine or mmagic Real-ESRGAN checkpoint'
        ) from err
    for path in written:
        print(f'wrote {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
