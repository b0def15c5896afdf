# Real-ESRGAN x4plus: what options/train_realesrgan_x4plus.yml adds to Real-ESRNet: the U-Net SN
# discriminator, VGG19 perceptual and GAN losses, two Adam optimisers, 400k iterations.
_base_ = ['./realesrnet_model.py']

model = dict(
    type='RealESRGANModel',
    discriminator=dict(type='UNetDiscriminatorSN', num_in_ch=3, num_feat=64, skip_connection=True),
    pixel_loss=dict(type='L1Loss', loss_weight=1.0, reduction='mean'),
    perceptual_loss=dict(
        type='PerceptualLoss',
        layer_weights={'conv1_2': 0.1, 'conv2_2': 0.1, 'conv3_4': 1, 'conv4_4': 1, 'conv5_4': 1},
        vgg_type='vgg19',
        use_input_norm=True,
        perceptual_weight=1.0,
        style_weight=0,
        range_norm=False,
        criterion='l1',
    ),
    gan_loss=dict(type='GANLoss', gan_type='vanilla', real_label_val=1.0, fake_label_val=0.0, loss_weight=0.1),
    l1_gt_usm=True,
    percep_gt_usm=True,
    gan_gt_usm=False,
    net_d_iters=1,
    net_d_init_iters=0,
)

optim_wrapper = dict(
    _delete_=True,
    constructor='MultiOptimWrapperConstructor',
    generator=dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-4, weight_decay=0, betas=(0.9, 0.99))),
    discriminator=dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-4, weight_decay=0, betas=(0.9, 0.99))),
)
param_scheduler = [dict(type='MultiStepLR', milestones=[400000], gamma=0.5, by_epoch=False)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=400000, val_interval=5000)
