# Real-ESRNet x4plus: model, losses, optimiser and schedule of options/train_realesrnet_x4plus.yml.
# The official second-order degradation settings are the data preprocessor's options: the synthesis
# runs there, on the model's device.
model = dict(
    type='RealESRNetModel',
    generator=dict(type='RRDBNet', num_in_ch=3, num_out_ch=3, num_feat=64, num_block=23, num_grow_ch=32),
    pixel_loss=dict(type='L1Loss', loss_weight=1.0, reduction='mean'),
    ema_decay=0.999,
    data_preprocessor=dict(
        type='RealESRGANDataPreprocessor',
        queue_size=180,
        gt_usm=True,
        degradations=dict(
            scale=4,
            gt_size=256,
            # the first degradation process
            resize_prob=[0.2, 0.7, 0.1],  # up, down, keep
            resize_range=[0.15, 1.5],
            gaussian_noise_prob=0.5,
            noise_range=[1, 30],
            poisson_scale_range=[0.05, 3],
            gray_noise_prob=0.4,
            jpeg_range=[30, 95],
            # the second degradation process
            second_blur_prob=0.8,
            resize_prob2=[0.3, 0.4, 0.3],
            resize_range2=[0.3, 1.2],
            gaussian_noise_prob2=0.5,
            noise_range2=[1, 25],
            poisson_scale_range2=[0.05, 2.5],
            gray_noise_prob2=0.4,
            jpeg_range2=[30, 95],
        ),
        kernels=dict(
            blur_kernel_size=21,
            kernel_list=['iso', 'aniso', 'generalized_iso', 'generalized_aniso', 'plateau_iso', 'plateau_aniso'],
            kernel_prob=[0.45, 0.25, 0.12, 0.03, 0.12, 0.03],
            sinc_prob=0.1,
            blur_sigma=[0.2, 3],
            betag_range=[0.5, 4],
            betap_range=[1, 2],
            blur_kernel_size2=21,
            kernel_list2=['iso', 'aniso', 'generalized_iso', 'generalized_aniso', 'plateau_iso', 'plateau_aniso'],
            kernel_prob2=[0.45, 0.25, 0.12, 0.03, 0.12, 0.03],
            sinc_prob2=0.1,
            blur_sigma2=[0.2, 1.5],
            betag_range2=[0.5, 4],
            betap_range2=[1, 2],
            final_sinc_prob=0.8,
        ),
    ),
)

optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=2e-4, weight_decay=0, betas=(0.9, 0.99)))
param_scheduler = [dict(type='MultiStepLR', milestones=[1000000], gamma=0.5, by_epoch=False)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=1000000, val_interval=5000)
