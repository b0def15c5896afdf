# Real-ESRNet x4plus (stage 1), equivalent to options/train_realesrnet_x4plus.yml: RRDBNet trained
# with L1 on DF2K+OST, 1M iterations, batch 12 per GPU on 4 GPUs:
#   torchrun --nproc-per-node 4 -m realesrgan_plugin.mmengine.train \
#     options/mmengine/realesrnet_x4plus.py --launcher pytorch
_base_ = ['./_base_/default_runtime.py', './_base_/realesrnet_model.py', './_base_/df2k_data.py']

# BasicSR's pretrain_network_g: start from ESRGAN (a BasicSR, MMEngine or mmagic file).
model = dict(
    init_generator=dict(path='experiments/pretrained_models/ESRGAN_SRx4_DF2KOST_official-ff704c30.pth'),
)
