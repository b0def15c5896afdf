# Tiny Real-ESRGAN run on a CPU, starting from the demo Real-ESRNet (run realesrnet_x4_demo.py first);
# the MMEngine twin of options/demo/train_realesrgan_x4_demo.yml. The perceptual loss needs ImageNet
# VGG19 weights (torch hub cache, REALESRGAN_PLUGIN_VGG_WEIGHTS=file or model.perceptual_loss.vgg_weights_path).
_base_ = ['./_base_/default_runtime.py', './_base_/realesrgan_model.py', './_base_/demo_data.py']

model = dict(
    generator=dict(
        _delete_=True, type='SRVGGNetCompact', num_in_ch=3, num_out_ch=3, num_feat=16, num_conv=4, upscale=4
    ),
    discriminator=dict(num_feat=16),
    # the demo Real-ESRNet (a BasicSR net_g_*.pth works too)
    init_generator=dict(path='work_dirs/realesrnet_x4_demo/iter_300.pth', key='params_ema'),
    data_preprocessor=dict(queue_size=16, degradations=dict(gt_size=64)),
)
param_scheduler = [dict(type='MultiStepLR', milestones=[200], gamma=0.5, by_epoch=False)]
train_cfg = dict(max_iters=200, val_interval=100)
default_hooks = dict(logger=dict(interval=20), checkpoint=dict(interval=100))
env_cfg = dict(cudnn_benchmark=False)
work_dir = './work_dirs/realesrgan_x4_demo'
