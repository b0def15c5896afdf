# The tiny demo dataset of options/demo/*.yml (write it with `python tools/make_demo_dataset.py`):
# 128x128 HR tiles for on-the-fly degradation, and 64x64 real LQ/GT pairs for validation.
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='RealESRGANDataset',
        dataroot_gt='datasets/demo/gt',
        io_backend=dict(type='disk'),
        crop_pad_size=128,  # official: 400
        gt_size=64,
        use_hflip=True,
        use_rot=False,
    ),
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
