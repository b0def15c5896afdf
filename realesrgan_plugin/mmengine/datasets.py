"""The plugin's datasets in MMEngine's ``DATASETS``: the BasicSR dataset classes, fed by keyword options.

``dict(type='RealESRGANDataset', dataroot_gt=..., meta_info=..., gt_size=256, ...)`` builds the
class registered under that name in BasicSR's ``DATASET_REGISTRY`` with those keys as its
``opt`` (the same keys as the option files' ``datasets.train``), so both hosts read data through
one implementation. Batches are dicts of tensors: use ``collate_fn=dict(type='default_collate')``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import realesrgan_plugin.basicsr.data  # noqa: F401  (registers the plugin's datasets in BasicSR)
from realesrgan_plugin.mmengine.registry import DATASETS

from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils.data import Dataset

#: name -> default ``phase`` (BasicSR datasets crop/flip only when training)
SHARED_DATASETS = {'RealESRGANDataset': 'train', 'RealESRGANPairedDataset': 'val', 'PairedImageDataset': 'val'}


def basicsr_dataset_class(name: str) -> type:
    """The class BasicSR builds for ``name``; never its silent ``<name>_basicsr`` fallback."""
    cls = DATASET_REGISTRY._obj_map.get(name)
    if cls is None:
        raise KeyError(f"No dataset '{name}' in BasicSR's DATASET_REGISTRY (is realesrgan_plugin up to date?)")
    return cls


def _builder(name: str, default_phase: str) -> Callable[..., Dataset]:
    def build(**opt: Any) -> Dataset:
        opt.setdefault('name', name)
        opt.setdefault('phase', default_phase)
        opt.setdefault('io_backend', {'type': 'disk'})
        opt.setdefault('scale', 4)
        if name == 'RealESRGANDataset':
            # MMEngine configs are the plugin's own: the data preprocessor draws the kernels on the device
            # from its saved generator (exact resume); the official keys only when a config asks for them.
            opt.setdefault('kernels_on_cpu', False)
        return basicsr_dataset_class(name)(opt)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"BasicSR's {name} built from keyword options (its ``opt`` keys)."
    return build


for _name, _phase in SHARED_DATASETS.items():
    DATASETS.register_module(name=_name, module=_builder(_name, _phase), force=True)
