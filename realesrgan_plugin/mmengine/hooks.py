"""Hooks of the MMEngine host."""

from __future__ import annotations

from realesrgan_plugin.mmengine.checkpoint import normalize_checkpoint
from realesrgan_plugin.mmengine.registry import HOOKS

from mmengine.hooks import Hook


@HOOKS.register_module()
class CheckpointLayoutHook(Hook):
    """Lets ``load_from`` name a BasicSR weight file (``params``/``params_ema``, e.g. an official
    release) or an mmagic Real-ESRGAN/Real-ESRNet checkpoint: converts it, in memory, to this
    plugin's layout before MMEngine loads it. The plugin's own checkpoints pass through untouched."""

    priority = 'VERY_HIGH'

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        normalize_checkpoint(checkpoint, name='the checkpoint being loaded')
