# Tiny Real-ESRGAN run on a CPU: the x4plus stage-2 pipeline with toy networks. The perceptual loss
# is off here because it needs ImageNet VGG19 weights (see docs/mmengine.md to switch it on).
_base_ = ['./realesrgan_x4plus.py']

gt_size = 64
model = dict(
    generator=dict(num_feat=8, num_block=1, num_grow_ch=4),
    discriminator=dict(num_feat=8),
    init_generator=None,
    perceptual_loss=None,
    data_preprocessor=dict(queue_size=4, degradations=dict(gt_size=gt_size)),
)
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(dataroot_gt='datasets/demo/hr', meta_info='datasets/demo/hr/meta_info.txt', gt_size=gt_size),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='PairedImageDataset', dataroot_gt='datasets/demo/val/gt', dataroot_lq='datasets/demo/val/lq'),
)
val_cfg = dict(type='ValLoop')
val_evaluator = dict(type='PSNR', crop_border=4, test_y_channel=False)

train_cfg = dict(max_iters=4, val_interval=2)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2))
env_cfg = dict(cudnn_benchmark=False)
work_dir = './work_dirs/demo_realesrgan_cpu'
