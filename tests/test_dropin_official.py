"""The plugin next to the official ``realesrgan`` 0.3.0 on the same data, the official in its own process.

One subprocess (it never imports the plugin: both register the same BasicSR names) runs the
official ``RealESRGANer`` on tiny random SRVGGNetCompact weights and builds the official datasets
on folders and an LMDB made here; it reports outputs, attributes, item keys/types/shapes and errors.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import realesrgan_plugin.basicsr  # noqa: F401  (compat + BasicSR registration before basicsr)
from realesrgan_plugin.archs.srvgg_arch import SRVGGNetCompact
from realesrgan_plugin.basicsr.data.realesrgan_dataset import RealESRGANDataset
from realesrgan_plugin.basicsr.data.realesrgan_paired_dataset import RealESRGANPairedDataset
from realesrgan_plugin.core.img_io import encode_image, write_image
from realesrgan_plugin.inference import RealESRGANer

import cv2
import lmdb
import numpy as np
import pytest
import torch
import yaml

pytestmark = pytest.mark.skipif(importlib.util.find_spec('realesrgan') is None, reason='official realesrgan missing')
REPO = Path(__file__).resolve().parents[1]
NET = dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=2, act_type='prelu')
DATASET_ATTRS = [
    'gt_folder',
    'paths',
    'io_backend_opt',
    'blur_kernel_size',
    'kernel_list',
    'kernel_prob',
    'blur_sigma',
    'betag_range',
    'betap_range',
    'sinc_prob',
    'blur_kernel_size2',
    'kernel_list2',
    'kernel_prob2',
    'blur_sigma2',
    'betag_range2',
    'betap_range2',
    'sinc_prob2',
    'final_sinc_prob',
    'kernel_range',
]
PAIRED_ATTRS = ['gt_folder', 'lq_folder', 'paths', 'io_backend_opt', 'filename_tmpl', 'mean', 'std']

PROBE = r"""
import importlib, json, sys
sys.modules['torchvision.transforms.functional_tensor'] = importlib.import_module(
    'torchvision.transforms._functional_tensor')  # basicsr 1.4.2 on torchvision >= 0.17
import cv2, numpy as np, torch
from realesrgan import RealESRGANer
from realesrgan.archs.srvgg_arch import SRVGGNetCompact
from realesrgan.data.realesrgan_dataset import RealESRGANDataset
from realesrgan.data.realesrgan_paired_dataset import RealESRGANPairedDataset

job = json.load(open(sys.argv[1]))
report = {}
up = RealESRGANer(scale=2, model_path=job['weights'], model=SRVGGNetCompact(**job['net']), device='cpu')
for name in job['images']:
    out, mode = up.enhance(cv2.imread(name, cv2.IMREAD_UNCHANGED))
    np.save(name + '.official.npy', out)
    report[name] = mode

def plain(value):
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value

def describe(ds, attrs):
    item = ds[0]
    return {
        'attrs': {a: plain(getattr(ds, a)) for a in attrs},
        'pulse': plain(getattr(ds, 'pulse_tensor', None)),
        'item': [[k, type(v).__name__, list(getattr(v, 'shape', [])), str(getattr(v, 'dtype', ''))]
                 for k, v in item.items()],
    }

for name, opt in job['datasets'].items():
    cls = RealESRGANPairedDataset if 'dataroot_lq' in opt else RealESRGANDataset
    try:
        report[name] = describe(cls(opt), job['paired_attrs' if 'dataroot_lq' in opt else 'dataset_attrs'])
    except Exception as err:
        report[name] = {'error': type(err).__name__, 'message': str(err)}
print(json.dumps(report))
"""


def write_lmdb(path: Path, images: dict) -> None:
    env = lmdb.open(str(path), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for name, img in images.items():
            txn.put(os.path.splitext(name)[0].encode(), encode_image(img, '.png'))
    env.close()
    (path / 'meta_info.txt').write_text(
        ''.join(f'{n} ({img.shape[0]},{img.shape[1]},3) 1\n' for n, img in images.items())
    )


@pytest.fixture(scope='module')
def setup(tmp_path_factory, astronaut_bgr):
    """Weights, images, folders and option dicts; then the official run's report."""
    root = tmp_path_factory.mktemp('official')
    torch.manual_seed(0)
    net = SRVGGNetCompact(**NET)
    torch.save({'params': net.state_dict()}, root / 'tiny.pth')
    photo = np.ascontiguousarray(astronaut_bgr[::8, ::8])
    images = {
        'bgr': photo,
        'gray': photo[:, :, 1].copy(),
        'bgr16': photo.astype(np.uint16) * 257 + 100,
    }
    for name, img in images.items():
        cv2.imwrite(str(root / f'{name}.png'), img)
    gts = {'a.png': astronaut_bgr[:96, :80], 'b.png': astronaut_bgr[200:260, 100:190]}
    for name, img in gts.items():
        write_image(root / 'gt' / name, img)
        write_image(root / 'lq' / name, img[::4, ::4])
    (root / 'meta_info.txt').write_text('a.png\nb.png\n')
    (root / 'pairs.txt').write_text('a.png, a.png\nb.png, b.png\n')
    write_lmdb(root / 'gt.lmdb', {'a.png': astronaut_bgr[:64, :64]})
    train = yaml.safe_load((REPO / 'options' / 'train_realesrgan_x4plus.yml').read_text())['datasets']['train']
    train.update(dataroot_gt=str(root / 'gt'), meta_info=str(root / 'meta_info.txt'))
    paired = {
        'dataroot_gt': str(root / 'gt'),
        'dataroot_lq': str(root / 'lq'),
        'meta_info': str(root / 'pairs.txt'),
        'io_backend': {'type': 'disk'},
        'phase': 'val',
        'scale': 4,
    }
    datasets = {
        'disk': train,
        'lmdb': {**train, 'dataroot_gt': str(root / 'gt.lmdb'), 'io_backend': {'type': 'lmdb'}},
        'lmdb_misnamed': {**train, 'dataroot_gt': str(root / 'gt'), 'io_backend': {'type': 'lmdb'}},
        'paired': paired,
    }
    job = {
        'weights': str(root / 'tiny.pth'),
        'net': NET,
        'images': [str(root / f'{name}.png') for name in images],
        'datasets': copy.deepcopy(datasets),
        'dataset_attrs': DATASET_ATTRS,
        'paired_attrs': PAIRED_ATTRS,
    }
    (root / 'job.json').write_text(json.dumps(job))
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': ''}
    run = subprocess.run(
        [sys.executable, '-c', PROBE, str(root / 'job.json')],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=root,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    return root, images, datasets, report


@pytest.mark.parametrize('name', ['bgr', 'gray', 'bgr16'])
def test_realesrganer_matches_the_official(setup, name):
    """Same weights and image, untiled, official defaults (pre_pad 10): at most one grey level apart."""
    root, images, _, report = setup
    path = str(root / f'{name}.png')
    official = np.load(path + '.official.npy')
    ours, mode = RealESRGANer(scale=2, model_path=str(root / 'tiny.pth'), model=SRVGGNetCompact(**NET)).enhance(
        images[name]
    )
    assert mode == report[path] and ours.shape == official.shape and ours.dtype == official.dtype
    level = 257 if ours.dtype == np.uint16 else 1
    assert np.abs(ours.astype(int) - official).max() <= level


def _plain(value):
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _describe(ds, attrs) -> dict:
    item = ds[0]
    return {
        'attrs': {a: _plain(getattr(ds, a)) for a in attrs},
        'pulse': _plain(getattr(ds, 'pulse_tensor', None)),
        'item': [
            [k, type(v).__name__, list(getattr(v, 'shape', [])), str(getattr(v, 'dtype', ''))] for k, v in item.items()
        ],
    }


@pytest.mark.parametrize('name', ['disk', 'lmdb', 'paired'])
def test_datasets_have_the_official_attributes_keys_types_and_shapes(setup, name):
    _, _, datasets, report = setup
    opt = copy.deepcopy(datasets[name])
    if name == 'paired':
        ours = _describe(RealESRGANPairedDataset(opt), PAIRED_ATTRS)
    else:
        ours = _describe(RealESRGANDataset(opt), DATASET_ATTRS)
    official = report[name]
    if 'io_backend_opt' in official['attrs']:  # the official pops 'type' when it reads its first item
        official['attrs']['io_backend_opt'].setdefault('type', opt['io_backend']['type'])
    assert ours == official


def test_same_error_for_an_lmdb_root_not_ending_in_lmdb(setup):
    _, _, datasets, report = setup
    with pytest.raises(ValueError) as err:
        RealESRGANDataset(copy.deepcopy(datasets['lmdb_misnamed']))
    assert report['lmdb_misnamed'] == {'error': 'ValueError', 'message': str(err.value)}
