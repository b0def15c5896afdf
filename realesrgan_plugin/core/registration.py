"""Registration into BasicSR's registries that fails loudly instead of silently falling back.

BasicSR 1.4.2 ships its own Real-ESRGAN copies registered as ``<Name>_basicsr`` and, when a
plain name is missing, silently uses that copy. The plugin therefore owns the plain official
names, and refuses to share a name with another package.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar('T')


class RegistryConflictError(RuntimeError):
    """Another package already registered a name the plugin needs."""


def _qualified(obj: object) -> str:
    return f'{obj.__module__}.{obj.__qualname__}'


def register_official(registry) -> Callable[[T], T]:
    """Decorator: register ``cls`` in a BasicSR ``Registry`` under its own class name.

    Re-registering the same class (a module imported twice) is allowed; any other owner of the
    name raises :class:`RegistryConflictError` naming both classes and the owning package.
    """

    def decorate(cls: T) -> T:
        name = cls.__name__
        existing = registry._obj_map.get(name)
        if existing is not None and _qualified(existing) != _qualified(cls):
            owner = existing.__module__.split('.')[0]
            raise RegistryConflictError(
                f"Cannot register {_qualified(cls)} as '{name}' in BasicSR's '{registry._name}' registry: "
                f"the name is already taken by {_qualified(existing)} (package '{owner}'). "
                'Import only one Real-ESRGAN implementation per process.'
            )
        registry._obj_map[name] = cls
        return cls

    return decorate
