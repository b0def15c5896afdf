"""MMEngine host: the plugin's networks, synthesis and losses trained by MMEngine's ``Runner``.

A thin adapter over the host-agnostic parts of the package. Its registries (scope
``realesrgan_plugin``) are children of MMEngine's and import their members lazily through
``locations``, so ``default_scope='realesrgan_plugin'`` or
``custom_imports=dict(imports=['realesrgan_plugin.mmengine'])`` in a config is all it takes.
Importing this package stays light: the model modules load on first use.
"""

from realesrgan_plugin import compat  # noqa: F401  (before anything imports basicsr)

# isort: split
from realesrgan_plugin.mmengine.registry import (  # noqa: F401
    DATA_SAMPLERS,
    DATASETS,
    EVALUATOR,
    FUNCTIONS,
    HOOKS,
    LOG_PROCESSORS,
    LOOPS,
    METRICS,
    MODEL_WRAPPERS,
    MODELS,
    OPTIM_WRAPPER_CONSTRUCTORS,
    OPTIM_WRAPPERS,
    OPTIMIZERS,
    PARAM_SCHEDULERS,
    RUNNERS,
    TRANSFORMS,
    VISBACKENDS,
    VISUALIZERS,
    WEIGHT_INITIALIZERS,
    import_all_modules,
)
