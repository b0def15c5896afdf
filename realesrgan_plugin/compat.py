"""Make BasicSR 1.4.2 importable on today's torchvision.

Applied on import of every package that may import basicsr (``archs``, ``losses``, ``inference``,
``basicsr``, ``mmengine``), before basicsr itself is imported. Nothing here edits site-packages:
the fix is a runtime alias of a renamed torchvision module, resolved only when something asks
for the old name, so importing this module costs nothing (torchvision is not loaded for it).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

_FUNCTIONAL_TENSOR = 'torchvision.transforms.functional_tensor'
_RENAMED_TO = 'torchvision.transforms._functional_tensor'


class _RenamedModuleAlias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Last-resort finder: an import of the old name that no other finder satisfies gets the
    renamed module (the very same module object, not a copy)."""

    def find_spec(self, fullname, path, target=None):  # noqa: ARG002
        if fullname != _FUNCTIONAL_TENSOR:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):  # noqa: ARG002
        return None  # a placeholder; exec_module puts the real module in its place

    def exec_module(self, module) -> None:
        sys.modules[module.__name__] = importlib.import_module(_RENAMED_TO)


def alias_torchvision_functional_tensor() -> None:
    """basicsr imports ``torchvision.transforms.functional_tensor``, renamed to ``_functional_tensor``
    in torchvision 0.17; make the old name resolve to the new module, lazily. Torchvision versions
    that still ship the old module are found first by the normal finders (this one is last)."""
    if not any(isinstance(f, _RenamedModuleAlias) for f in sys.meta_path):
        sys.meta_path.append(_RenamedModuleAlias())


def apply() -> None:
    """Apply every runtime fix; idempotent."""
    alias_torchvision_functional_tensor()


apply()
