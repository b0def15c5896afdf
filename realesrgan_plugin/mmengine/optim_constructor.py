"""``MultiOptimWrapperConstructor``: one optimiser wrapper per sub-network (MMEngine has none built in).

``optim_wrapper=dict(constructor='MultiOptimWrapperConstructor', generator=dict(type='OptimWrapper',
optimizer=...), discriminator=dict(...))`` gives an ``OptimWrapperDict`` whose ``generator`` entry
optimises ``model.generator`` and so on; each entry may carry its own ``paramwise_cfg``.
"""

from __future__ import annotations

from realesrgan_plugin.mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS

from mmengine.model import is_model_wrapper
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapperDict
from torch import nn


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class MultiOptimWrapperConstructor:
    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: dict | None = None) -> None:
        if paramwise_cfg is not None:
            raise ValueError('MultiOptimWrapperConstructor: give paramwise_cfg inside each sub-network entry')
        if not optim_wrapper_cfg or not all(isinstance(v, dict) for v in optim_wrapper_cfg.values()):
            raise ValueError(
                'MultiOptimWrapperConstructor expects one dict per sub-network, e.g. '
                f'generator=dict(type="OptimWrapper", optimizer=...), got {optim_wrapper_cfg}'
            )
        self.constructors = {
            name: DefaultOptimWrapperConstructor(
                {k: v for k, v in cfg.items() if k != 'paramwise_cfg'}, cfg.get('paramwise_cfg')
            )
            for name, cfg in optim_wrapper_cfg.items()
        }

    def __call__(self, model: nn.Module) -> OptimWrapperDict:
        model = model.module if is_model_wrapper(model) else model
        wrappers = {}
        for name, constructor in self.constructors.items():
            if not hasattr(model, name):
                raise AttributeError(f"optim_wrapper entry '{name}': the model has no sub-network '{name}'")
            wrappers[name] = constructor(getattr(model, name))
        return OptimWrapperDict(**wrappers)
