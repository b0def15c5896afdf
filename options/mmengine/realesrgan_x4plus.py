# Real-ESRGAN x4plus (stage 2), equivalent to options/train_realesrgan_x4plus.yml: starts from the
# Real-ESRNet weights, adds the discriminator, perceptual and GAN losses; 400k iterations.
_base_ = ['./_base_/default_runtime.py', './_base_/realesrgan_model.py', './_base_/df2k_data.py']

# BasicSR's pretrain_network_g / param_key_g (a BasicSR, MMEngine or mmagic file)
model = dict(init_generator=dict(path='experiments/pretrained_models/RealESRNet_x4plus.pth', key='params_ema'))
