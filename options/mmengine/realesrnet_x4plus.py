# Real-ESRNet x4plus (stage 1), equivalent to options/train_realesrnet_x4plus.yml:
# RRDBNet trained with L1 on DF2K+OST, 1M iterations, batch 12 per GPU on 4 GPUs.
#   torchrun --nproc-per-node 4 -m realesrgan_plugin.mmengine.train \
#     options/mmengine/realesrnet_x4plus.py --launcher pytorch
_base_ = ['./_base_/default_runtime.py', './_base_/degradations_x4plus.py']

model = dict(
    type='RealESRNetModel',
    generator=dict(type='RRDBNet', num_in_ch=3, num_out_ch=3, num_feat=64, num_block=23, num_grow_ch=32),
    pixel_loss=dict(type='L1Loss', loss_weight=1.0, reduction='mean'),
    ema_decay=0.999,
    # BasicSR's pretrain_network_g: start from ESRGAN (any BasicSR / MMEngine / mmagic file).
    init_generator=dict(
        path='experiments/pretrained_models/ESRGAN_SRx4_DF2KOST_official-ff704c30.pth', key='params_ema'
    ),
)

train_dataloader = dict(
    batch_size=12,
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

optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=2e-4, weight_decay=0, betas=(0.9, 0.99)))
param_scheduler = [dict(type='MultiStepLR', milestones=[1000000], gamma=0.5, by_epoch=False)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=1000000, val_interval=5000)

# Validation (as the official files: off until you name a paired LQ/GT set), e.g.
# val_dataloader = dict(batch_size=1, num_workers=1, sampler=dict(type='DefaultSampler', shuffle=False),
#                       collate_fn=dict(type='default_collate'),
#                       dataset=dict(type='PairedImageDataset', dataroot_gt='path_to_gt', dataroot_lq='path_to_lq'))
# val_cfg = dict(type='ValLoop')
# val_evaluator = dict(type='PSNR', crop_border=4, test_y_channel=False)
