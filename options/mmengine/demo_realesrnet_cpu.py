# Tiny Real-ESRNet run on a CPU in seconds: the x4plus pipeline with a toy RRDBNet, 64x64 crops and
# a 4-pair pool. Point the data paths at any folder of HR images and a paired LQ/GT folder, e.g.
#   realesrgan-train-mm options/mmengine/demo_realesrnet_cpu.py --cfg-options \
#     train_dataloader.dataset.dataroot_gt=HR train_dataloader.dataset.meta_info=HR/meta_info.txt \
#     val_dataloader.dataset.dataroot_gt=VAL_GT val_dataloader.dataset.dataroot_lq=VAL_LQ
_base_ = ['./realesrnet_x4plus.py']

gt_size = 64
model = dict(
    generator=dict(num_feat=8, num_block=1, num_grow_ch=4),
    init_generator=None,
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
work_dir = './work_dirs/demo_realesrnet_cpu'
