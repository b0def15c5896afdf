# Runtime shared by the plugin's MMEngine configs (MMEngine's Python config format).
default_scope = 'realesrgan_plugin'
custom_imports = dict(imports=['realesrgan_plugin.mmengine'], allow_failed_imports=False)
runner_type = 'RealESRGANRunner'  # safe resume on torch >= 2.6, gloo on CPU-only machines

env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),  # the runner uses gloo where there is no CUDA
)
# Generator and discriminator get their own DDP wrappers (GAN training, as BasicSR).
model_wrapper_cfg = dict(type='MMSeparateDistributedDataParallel', broadcast_buffers=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook',
        interval=5000,
        by_epoch=False,
        max_keep_ckpts=5,
        save_last=True,
        backend_args=dict(backend='atomic_local'),  # temp file + rename: a kill never truncates one
    ),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)
custom_hooks = [
    dict(type='CheckpointLayoutHook'),  # load_from may name BasicSR or mmagic weight files
    dict(type='SynthesisStateHook'),  # exact resume of the synthesis RNG and the pair pool
]
log_processor = dict(type='LogProcessor', window_size=100, by_epoch=False)
log_level = 'INFO'
randomness = dict(seed=0)
load_from = None
resume = False
