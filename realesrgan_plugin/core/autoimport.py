"""BasicSR-style auto registration: import every ``*_<suffix>.py`` module of a package."""

from __future__ import annotations

import importlib
from pathlib import Path


def import_modules_with_suffix(package: str, package_dir: str | Path, suffix: str) -> list[str]:
    """Import ``package.<stem>`` for every ``<stem>_<suffix>.py`` in ``package_dir``; return their names."""
    names = sorted(p.stem for p in Path(package_dir).glob(f'*_{suffix}.py'))
    for name in names:
        importlib.import_module(f'{package}.{name}')
    return names
