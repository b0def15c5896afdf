"""Every ``*_arch.py`` module here is imported, and so registered in BasicSR, on package import."""

from realesrgan_plugin import compat  # noqa: F401  (before anything imports basicsr)

# isort: split
from pathlib import Path

from realesrgan_plugin.core.autoimport import import_modules_with_suffix

__all__ = import_modules_with_suffix(__name__, Path(__file__).parent, 'arch')
