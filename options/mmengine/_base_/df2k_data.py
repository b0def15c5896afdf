# DF2K+OST HR images (multi-scale sub-images listed in a meta_info file), as the official x4plus files.
train_dataloader = dict(
    batch_size=12,  # per GPU; the paper: 4 GPUs
    num_workers=5,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='RealESRGANDataset',
        dataroot_gt='datasets/DF2K',
        meta_info='datasets/DF2K/meta_info/meta_info_DF2Kmultiscale+OST_sub.txt',
        io_backend=dict(type='disk'),
        gt_size=256,
        use_hflip=True,
        use_rot=False,
    ),
)

# Validation is off (as in the official files) until you name a paired LQ/GT set, e.g.
# val_dataloader = dict(batch_size=1, num_workers=1, sampler=dict(type='DefaultSampler', shuffle=False),
#                       collate_fn=dict(type='default_collate'),
#                       dataset=dict(type='PairedImageDataset', dataroot_gt='path_to_gt', dataroot_lq='path_to_lq'))
# val_cfg = dict(type='ValLoop')
# val_evaluator = dict(type='PSNR', crop_border=4, test_y_channel=False)
