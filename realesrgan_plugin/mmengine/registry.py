"""The plugin's MMEngine scope: one child of each MMEngine root registry.

Children fall back to their parent for anything they do not hold (``Adam``, ``OptimWrapper``,
``IterBasedTrainLoop`` ...), so configs name MMEngine's components and ours alike. Members are
imported on first lookup from the modules listed in ``locations``.
"""

from __future__ import annotations

import importlib

from mmengine import registry as mm
from mmengine.registry import Registry

SCOPE = 'realesrgan_plugin'
_PKG = 'realesrgan_plugin.mmengine'

#: Modules that register something; each registry lists the ones it needs.
MODULES = {
    'archs': f'{_PKG}.archs',
    'datasets': f'{_PKG}.datasets',
    'data_preprocessor': f'{_PKG}.data_preprocessor',
    'realesrnet_model': f'{_PKG}.realesrnet_model',
    'realesrgan_model': f'{_PKG}.realesrgan_model',
    'metrics': f'{_PKG}.metrics',
    'hooks': f'{_PKG}.hooks',
    'runner': f'{_PKG}.runner',
    'optim_constructor': f'{_PKG}.optim_constructor',
}


def _child(parent: Registry, *modules: str) -> Registry:
    return Registry(parent.name, parent=parent, scope=SCOPE, locations=[MODULES[m] for m in modules])


RUNNERS = _child(mm.RUNNERS, 'runner')
RUNNER_CONSTRUCTORS = _child(mm.RUNNER_CONSTRUCTORS)
LOOPS = _child(mm.LOOPS)
HOOKS = _child(mm.HOOKS, 'hooks')
LOG_PROCESSORS = _child(mm.LOG_PROCESSORS)
DATASETS = _child(mm.DATASETS, 'datasets')
DATA_SAMPLERS = _child(mm.DATA_SAMPLERS)
TRANSFORMS = _child(mm.TRANSFORMS)
MODELS = _child(mm.MODELS, 'archs', 'data_preprocessor', 'realesrnet_model', 'realesrgan_model')
MODEL_WRAPPERS = _child(mm.MODEL_WRAPPERS)
WEIGHT_INITIALIZERS = _child(mm.WEIGHT_INITIALIZERS)
OPTIMIZERS = _child(mm.OPTIMIZERS)
OPTIM_WRAPPERS = _child(mm.OPTIM_WRAPPERS)
OPTIM_WRAPPER_CONSTRUCTORS = _child(mm.OPTIM_WRAPPER_CONSTRUCTORS, 'optim_constructor')
PARAM_SCHEDULERS = _child(mm.PARAM_SCHEDULERS)
METRICS = _child(mm.METRICS, 'metrics')
EVALUATOR = _child(mm.EVALUATOR)
VISUALIZERS = _child(mm.VISUALIZERS)
VISBACKENDS = _child(mm.VISBACKENDS)
FUNCTIONS = _child(mm.FUNCTIONS)


def import_all_modules() -> None:
    """Register every component now (instead of on first lookup), e.g. to list what is there."""
    for module in MODULES.values():
        importlib.import_module(module)
