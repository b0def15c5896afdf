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


def _preprocessor(runner):
    model = runner.model.module if hasattr(runner.model, 'module') else runner.model
    return getattr(model, 'data_preprocessor', None)


@HOOKS.register_module()
class SynthesisStateHook(Hook):
    """Saves the synthesis random generator and the pair pool in checkpoints and restores them on
    resume, so a resumed run draws the same training pairs as an uninterrupted one.

    Single process only: under DDP only rank 0 writes checkpoints, so every rank re-seeds its
    synthesis on resume (training goes on correctly, with other random pairs)."""

    priority = 'NORMAL'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        pre = _preprocessor(runner)
        if runner.world_size == 1 and hasattr(pre, 'synthesis_state'):
            checkpoint['synthesis_state'] = pre.synthesis_state()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        pre = _preprocessor(runner)
        state = checkpoint.get('synthesis_state')
        if state is None or not getattr(runner, '_resume', False) or not hasattr(pre, 'load_synthesis_state'):
            return
        if runner.world_size == 1:
            pre.load_synthesis_state(state)
        else:
            runner.logger.info('Distributed resume: the synthesis is re-seeded on every rank.')
