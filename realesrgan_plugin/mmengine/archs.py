"""The networks, registered in the plugin's MMEngine ``MODELS`` under their BasicSR names.

These are the very classes BasicSR's ``ARCH_REGISTRY`` builds (basicsr's ``RRDBNet``, the
plugin's ``SRVGGNetCompact`` and ``UNetDiscriminatorSN``), with the same constructor
arguments as the ``network_g`` / ``network_d`` options, so weights move between hosts with
identical state-dict keys.
"""

from __future__ import annotations

import realesrgan_plugin.archs  # noqa: F401  (registers the plugin's archs in BasicSR)
from realesrgan_plugin.mmengine.registry import MODELS

from basicsr.utils.registry import ARCH_REGISTRY

#: Names shared with BasicSR's ARCH_REGISTRY.
SHARED_ARCHS = ('RRDBNet', 'SRVGGNetCompact', 'UNetDiscriminatorSN')

for _name in SHARED_ARCHS:
    MODELS.register_module(name=_name, module=ARCH_REGISTRY.get(_name), force=True)
