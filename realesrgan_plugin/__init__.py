"""Real-ESRGAN as a plugin for BasicSR (and MMEngine).

Importing this package does nothing but define names: each layer is imported on its own, lowest
first (see DEVELOPERS.md):

* ``realesrgan_plugin.core`` and ``realesrgan_plugin.prep``: host-free (torch, numpy, OpenCV);
* ``realesrgan_plugin.archs``, ``.losses``, ``.inference``: networks and inference (BasicSR's archs);
* ``realesrgan_plugin.basicsr``: the BasicSR adapter; importing it registers every arch, dataset
  and model under the official Real-ESRGAN names;
* ``realesrgan_plugin.mmengine``: the MMEngine adapter.

``Upsampler``, ``load_model`` and ``RealESRGANer`` (the official API) are importable from here too;
they load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = '0.1.0'

# Public names re-exported lazily from the inference layer, so ``import realesrgan_plugin`` stays free.
_LAZY = {
    'Upsampler': 'realesrgan_plugin.inference',
    'load_model': 'realesrgan_plugin.inference',
    'RealESRGANer': 'realesrgan_plugin.inference',
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
