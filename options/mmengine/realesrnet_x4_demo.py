# Tiny Real-ESRNet run on a CPU in minutes; the MMEngine twin of options/demo/train_realesrnet_x4_demo.yml.
#   python tools/make_demo_dataset.py && realesrgan-train-mm options/mmengine/realesrnet_x4_demo.py
_base_ = ['./_base_/default_runtime.py', './_base_/realesrnet_model.py', './_base_/demo_data.py']

model = dict(
    generator=dict(
        _delete_=True, type='SRVGGNetCompact', num_in_ch=3, num_out_ch=3, num_feat=16, num_conv=4, upscale=4
    ),
    data_preprocessor=dict(queue_size=16, degradations=dict(gt_size=64)),
)
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [dict(type='MultiStepLR', milestones=[300], gamma=0.5, by_epoch=False)]
train_cfg = dict(max_iters=300, val_interval=100)
default_hooks = dict(logger=dict(interval=20), checkpoint=dict(interval=100))
env_cfg = dict(cudnn_benchmark=False)
work_dir = './work_dirs/realesrnet_x4_demo'
