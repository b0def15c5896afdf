"""The BasicSR adapter (layer 3): datasets, models and the training entry.

Importing it registers every arch, dataset and model in BasicSR's registries under the official
Real-ESRGAN names, as ``import realesrgan`` does for the official package.
"""

from realesrgan_plugin import compat  # noqa: F401  (before anything imports basicsr)

# isort: split
from realesrgan_plugin import archs  # noqa: F401
from realesrgan_plugin.basicsr import data, models  # noqa: F401
