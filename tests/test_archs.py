from realesrgan_plugin.archs.srvgg_arch import SRVGGNetCompact
from realesrgan_plugin.archs.unet_discriminator_arch import UNetDiscriminatorSN

import pytest
import torch
from basicsr.archs.rrdbnet_arch import RRDBNet


def n_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_official_parameter_counts():
    assert n_params(RRDBNet(3, 3, num_feat=64, num_block=23, num_grow_ch=32, scale=4)) == 16_697_987
    assert n_params(SRVGGNetCompact(3, 3, num_feat=64, num_conv=16, upscale=4, act_type='prelu')) == 621_424


@pytest.mark.parametrize('scale', [1, 2, 4])
def test_rrdbnet_scales_via_pixel_unshuffle(scale):
    net = RRDBNet(3, 3, num_feat=8, num_block=1, num_grow_ch=4, scale=scale).eval()
    with torch.no_grad():
        assert net(torch.rand(1, 3, 16, 12)).shape == (1, 3, 16 * scale, 12 * scale)


@pytest.mark.parametrize('act', ['relu', 'prelu', 'leakyrelu'])
@pytest.mark.parametrize('upscale', [1, 2, 3, 4])
def test_srvgg_shapes(act, upscale):
    net = SRVGGNetCompact(3, 3, num_feat=8, num_conv=2, upscale=upscale, act_type=act)
    assert net(torch.rand(2, 3, 7, 9)).shape == (2, 3, 7 * upscale, 9 * upscale)


def test_srvgg_zero_body_is_nearest_upsampling():
    """The residual path is nearest upsampling: with a zeroed last conv the net returns it exactly."""
    net = SRVGGNetCompact(3, 3, num_feat=8, num_conv=1, upscale=2)
    torch.nn.init.zeros_(net.body[-1].weight)
    torch.nn.init.zeros_(net.body[-1].bias)
    x = torch.rand(1, 3, 4, 4)
    assert torch.equal(net(x), x.repeat_interleave(2, -1).repeat_interleave(2, -2))


def test_srvgg_rejects_unknown_activation():
    with pytest.raises(ValueError, match="'gelu'"):
        SRVGGNetCompact(act_type='gelu')


def _official_srvgg_keys(num_conv: int, prelu: bool) -> dict[str, tuple[int, ...]]:
    """Key names and shapes as in the official realesr-animevideov3 / general-x4v3 files (num_feat 64, x4)."""
    keys = {'body.0.weight': (64, 3, 3, 3), 'body.0.bias': (64,)}
    idx = 1
    for _ in range(num_conv):
        if prelu:
            keys[f'body.{idx}.weight'] = (64,)
        keys[f'body.{idx + 1}.weight'] = (64, 64, 3, 3)
        keys[f'body.{idx + 1}.bias'] = (64,)
        idx += 2
    if prelu:
        keys[f'body.{idx}.weight'] = (64,)
    keys[f'body.{idx + 1}.weight'] = (48, 64, 3, 3)
    keys[f'body.{idx + 1}.bias'] = (48,)
    return keys


@pytest.mark.parametrize('key', ['params_ema', 'params'])
def test_official_format_srvgg_checkpoint_loads_strict(tmp_path, key):
    spec = _official_srvgg_keys(num_conv=16, prelu=True)
    torch.save({key: {k: torch.randn(s) for k, s in spec.items()}}, tmp_path / 'realesr-animevideov3.pth')
    ckpt = torch.load(tmp_path / 'realesr-animevideov3.pth', weights_only=True)
    net = SRVGGNetCompact(num_conv=16, upscale=4, act_type='prelu')
    net.load_state_dict(ckpt[key], strict=True)
    assert torch.equal(net.body[34].weight, ckpt[key]['body.34.weight'])


def _official_discriminator_keys(num_feat: int = 64) -> dict[str, tuple[int, ...]]:
    f = num_feat
    keys = {
        'conv0.weight': (f, 3, 3, 3),
        'conv0.bias': (f,),
        'conv9.weight': (1, f, 3, 3),
        'conv9.bias': (1,),
    }
    sn = {1: (f * 2, f, 4), 2: (f * 4, f * 2, 4), 3: (f * 8, f * 4, 4), 4: (f * 4, f * 8, 3)}
    sn |= {5: (f * 2, f * 4, 3), 6: (f, f * 2, 3), 7: (f, f, 3), 8: (f, f, 3)}
    for i, (out_ch, in_ch, k) in sn.items():
        keys[f'conv{i}.weight_orig'] = (out_ch, in_ch, k, k)
        keys[f'conv{i}.weight_u'] = (out_ch,)
        keys[f'conv{i}.weight_v'] = (in_ch * k * k,)
    return keys


def test_official_format_discriminator_checkpoint_loads_strict(tmp_path):
    spec = _official_discriminator_keys()
    torch.save({'params': {k: torch.randn(s) for k, s in spec.items()}}, tmp_path / 'RealESRGAN_x4plus_netD.pth')
    net = UNetDiscriminatorSN(3, num_feat=64, skip_connection=True)
    net.load_state_dict(torch.load(tmp_path / 'RealESRGAN_x4plus_netD.pth', weights_only=True)['params'], strict=True)


@pytest.mark.parametrize('skip', [True, False])
def test_discriminator_gives_per_pixel_logits_at_input_size(skip):
    net = UNetDiscriminatorSN(3, num_feat=8, skip_connection=skip)
    x = torch.rand(2, 3, 32, 24, requires_grad=True)
    out = net(x)
    assert out.shape == (2, 1, 32, 24)
    out.mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_discriminator_weights_are_spectrally_normalised():
    net = UNetDiscriminatorSN(3, num_feat=8)
    with torch.no_grad():
        net.conv1.weight_orig.mul_(50)
    for _ in range(30):  # power iterations run in training-mode forwards
        net(torch.rand(1, 3, 16, 16))
    sigma = torch.linalg.matrix_norm(net.conv1.weight.detach().flatten(1), ord=2)
    assert float(sigma) == pytest.approx(1.0, abs=0.05)


def test_discriminator_rejects_size_not_divisible_by_8():
    with pytest.raises(ValueError, match='divisible by 8'):
        UNetDiscriminatorSN(3, num_feat=8)(torch.rand(1, 3, 20, 16))
