"""Make BasicSR 1.4.2 importable on today's torchvision.

Applied on import of every package that may import basicsr (``archs``, ``losses``, ``inference``,
``basicsr``, ``mmengine``), before basicsr itself is imported. Nothing here edits site-packages:
the fix is a runtime alias of a renamed torchvision module.
"""

from __future__ import annotations

import importlib
import sys

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


def apply() -> None:
    """Apply every runtime fix; idempotent."""
    alias_torchvision_functional_tensor()


apply()
