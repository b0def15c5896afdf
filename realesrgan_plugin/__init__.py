"""Real-ESRGAN as a plugin for BasicSR (and MMEngine).

Importing the package applies the compatibility fixes (before basicsr is imported) and
registers every arch, dataset and model under the official Real-ESRGAN names.
"""

from realesrgan_plugin import compat  # noqa: F401  (must run before basicsr is imported)

# isort: split
from realesrgan_plugin import archs, data, models  # noqa: F401

__version__ = '0.1.0'
