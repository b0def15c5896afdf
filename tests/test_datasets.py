"""Real-ESRGAN datasets on real files: disk folders, meta_info files and LMDBs (written here with lmdb)."""

from __future__ import annotations

import os
import random

from realesrgan_plugin.basicsr.data.image_store import lmdb_key
from realesrgan_plugin.basicsr.data.realesrgan_dataset import RealESRGANDataset
from realesrgan_plugin.basicsr.data.realesrgan_paired_dataset import RealESRGANPairedDataset
from realesrgan_plugin.core.img_io import ImageReadError, encode_image, write_image

import cv2
import lmdb
import numpy as np
import pytest
import torch
from basicsr.data import build_dataset
from basicsr.utils.registry import DATASET_REGISTRY

NAMES = ['plain.png', 'sub/dotted.name.v2.png', 'photo.jpg']


@pytest.fixture(scope='module')
def gt_images(astronaut_bgr):
    """Three real crops of different sizes (one smaller than the crop so it gets padded)."""
    return {
        'plain.png': astronaut_bgr[:160, :200],
        'sub/dotted.name.v2.png': astronaut_bgr[100:300, 50:170],
        'photo.jpg': astronaut_bgr[200:296, 300:500],
    }


@pytest.fixture
def gt_folder(tmp_path, gt_images):
    root = tmp_path / 'gt'
    for name, img in gt_images.items():
        write_image(root / name, img)
    (tmp_path / 'meta_info.txt').write_text(''.join(f'{n}\n' for n in NAMES))
    return root


def write_lmdb(path, images: dict[str, np.ndarray]) -> None:
    """The contract layout: key = relpath without its last extension, value = encoded bytes."""
    env = lmdb.open(str(path), map_size=1 << 26)
    lines = []
    with env.begin(write=True) as txn:
        for name, img in images.items():
            ext = os.path.splitext(name)[1]
            txn.put(lmdb_key(name).encode('utf-8'), encode_image(img, ext))
            h, w = img.shape[:2]
            lines.append(f'{name} ({h},{w},{img.shape[2] if img.ndim == 3 else 1}) 1\n')
    env.close()
    (path / 'meta_info.txt').write_text(''.join(lines))


def _opt(**kw):
    return {'phase': 'train', 'use_hflip': False, 'use_rot': False, 'crop_pad_size': 128, 'gt_size': 64, **kw}


def _expected_rgb(img_bgr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img_bgr[:, :, ::-1].astype(np.float32) / 255).permute(2, 0, 1)


def _is_crop_of(crop: torch.Tensor, full: torch.Tensor, atol: float = 1e-6) -> bool:
    h, w = crop.shape[-2:]
    hits = ((full - crop[:, :1, :1]).abs() <= atol).all(dim=0)[: full.shape[1] - h + 1, : full.shape[2] - w + 1]
    candidates = hits.nonzero().tolist()
    return any(torch.allclose(full[:, t : t + h, x : x + w], crop, atol=atol) for t, x in candidates)


# ------------------------------------------------------------------------------ RealESRGANDataset
def test_registered_under_the_official_names():
    assert DATASET_REGISTRY.get('RealESRGANDataset') is RealESRGANDataset
    assert DATASET_REGISTRY.get('RealESRGANPairedDataset') is RealESRGANPairedDataset


def test_disk_with_meta_info_returns_rgb_crops(gt_folder, gt_images, tmp_path):
    ds = RealESRGANDataset(_opt(dataroot_gt=str(gt_folder), meta_info=str(tmp_path / 'meta_info.txt')))
    assert len(ds) == 3
    item = ds[0]
    assert set(item) == {'gt', 'kernel1', 'kernel2', 'sinc_kernel', 'gt_path'}  # the official keys
    assert item['gt'].shape == (3, 128, 128) and item['gt'].dtype == torch.float32
    assert item['gt_path'] == os.path.join(str(gt_folder), 'plain.png')
    assert _is_crop_of(item['gt'], _expected_rgb(gt_images['plain.png']))  # RGB order, exact values


def test_small_images_are_reflect_padded_to_crop_pad_size(gt_folder, tmp_path):
    ds = RealESRGANDataset(_opt(dataroot_gt=str(gt_folder), meta_info=str(tmp_path / 'meta_info.txt')))
    assert ds[2]['gt'].shape == (3, 128, 128)  # photo.jpg is 96 high


def test_folder_scan_without_meta_info(gt_folder):
    ds = RealESRGANDataset(_opt(dataroot_gt=str(gt_folder)))
    assert sorted(os.path.relpath(p, gt_folder) for p in ds.paths) == sorted(NAMES)


def test_lmdb_backend_with_dotted_names(tmp_path, gt_images):
    path = tmp_path / 'gt.lmdb'
    write_lmdb(path, gt_images)
    ds = RealESRGANDataset(_opt(dataroot_gt=str(path), io_backend={'type': 'lmdb'}, crop_pad_size=96))
    assert ds.paths[1] == 'sub/dotted.name.v2'  # the LMDB key, as the official (which cut it to 'sub/dotted')
    item = ds[1]
    assert _is_crop_of(item['gt'], _expected_rgb(gt_images['sub/dotted.name.v2.png']))


def test_lmdb_made_by_the_prep_tool_reads_back_names_with_spaces(tmp_path, astronaut_bgr):
    """The prep tool keeps spaces in names; the dataset must read its meta_info the same way."""
    from realesrgan_plugin.prep import create_lmdb

    src = tmp_path / 'src'
    write_image(src / 'my photo.v2.png', astronaut_bgr[:120, :120])
    create_lmdb(str(src), str(tmp_path / 'gt.lmdb'))
    ds = RealESRGANDataset(_opt(dataroot_gt=str(tmp_path / 'gt.lmdb'), io_backend={'type': 'lmdb'}, crop_pad_size=96))
    assert ds.paths == ['my photo.v2']
    assert _is_crop_of(ds[0]['gt'], _expected_rgb(astronaut_bgr[:120, :120]))


def test_kernels_on_cpu_returns_the_official_kernel_keys(gt_folder):
    ds = RealESRGANDataset(_opt(dataroot_gt=str(gt_folder), kernels_on_cpu=True, final_sinc_prob=1.0))
    item = ds[0]
    for key in ('kernel1', 'kernel2', 'sinc_kernel'):
        assert item[key].shape == (21, 21)
        assert item[key].sum().item() == pytest.approx(1.0, abs=1e-5)
    assert item['sinc_kernel'][10, 10] < 1


def test_gray_and_16_bit_images_become_rgb_floats(tmp_path, astronaut_bgr):
    root = tmp_path / 'gt'
    gray = cv2.cvtColor(astronaut_bgr[:80, :80], cv2.COLOR_BGR2GRAY)
    write_image(root / 'gray.png', gray)
    write_image(root / 'deep.png', astronaut_bgr[:80, :80].astype(np.uint16) * 257)
    ds = RealESRGANDataset(_opt(dataroot_gt=str(root), crop_pad_size=80))
    deep, gray_item = ds[0]['gt'], ds[1]['gt']
    assert torch.allclose(deep, _expected_rgb(astronaut_bgr[:80, :80]), atol=1e-6)
    assert torch.equal(gray_item[0], gray_item[2])


def test_crop_size_smaller_than_gt_size_is_rejected(gt_folder):
    with pytest.raises(ValueError, match='crop_pad_size 32 is smaller than gt_size 64'):
        RealESRGANDataset(_opt(dataroot_gt=str(gt_folder), crop_pad_size=32))


@pytest.mark.parametrize('content', [b'', b'not an image at all'])
def test_corrupt_or_empty_file_is_an_error_naming_it(gt_folder, content):
    (gt_folder / 'plain.png').write_bytes(content)
    ds = RealESRGANDataset(_opt(dataroot_gt=str(gt_folder)))
    index = [os.path.basename(p) for p in ds.paths].index('plain.png')
    with pytest.raises(ImageReadError, match='plain.png'):
        ds[index]


def test_skip_bad_images_replaces_and_reports(gt_folder, caplog):
    (gt_folder / 'plain.png').write_bytes(b'')
    ds = RealESRGANDataset(_opt(dataroot_gt=str(gt_folder), skip_bad_images=True))
    index = [os.path.basename(p) for p in ds.paths].index('plain.png')
    item = ds[index]
    assert not item['gt_path'].endswith('plain.png')
    assert list(ds.reader.skipped) == [str(gt_folder / 'plain.png')]
    assert 'plain.png' in caplog.text


def test_missing_lmdb_key_is_an_error_naming_the_key(tmp_path, gt_images):
    path = tmp_path / 'gt.lmdb'
    write_lmdb(path, gt_images)
    with open(path / 'meta_info.txt', 'a') as f:
        f.write('ghost.png (1,1,3) 1\n')
    ds = RealESRGANDataset(_opt(dataroot_gt=str(path), io_backend={'type': 'lmdb'}))
    with pytest.raises(ImageReadError, match='ghost'):
        ds[3]


def test_io_errors_are_retried_on_valid_indices_then_reported(gt_folder, tmp_path):
    # a directory where an image should be: open() fails with an OSError (an I/O failure)
    (gt_folder / 'broken.png').mkdir()
    meta = tmp_path / 'two.txt'
    meta.write_text('broken.png\nplain.png\n')
    ds = RealESRGANDataset(_opt(dataroot_gt=str(gt_folder), meta_info=str(meta), io_retry_sleep=0))
    random.seed(0)
    for _ in range(20):  # the official picked randint(0, len), which can index past the end
        assert ds[0]['gt_path'].endswith('plain.png')
    meta.write_text('broken.png\nbroken.png\nbroken.png\nbroken.png\n')
    ds = RealESRGANDataset(_opt(dataroot_gt=str(gt_folder), meta_info=str(meta), io_retry_sleep=0, io_retries=2))
    with pytest.raises(OSError, match=r'after 3 attempt\(s\).*broken.png'):  # not an UnboundLocalError
        ds[0]


def test_works_through_basicsr_build_and_a_dataloader(gt_folder):
    opt = _opt(type='RealESRGANDataset', name='t', dataroot_gt=str(gt_folder), io_backend={'type': 'disk'})
    ds = build_dataset(opt)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=3)))
    assert batch['gt'].shape == (3, 3, 128, 128) and len(batch['gt_path']) == 3


# ------------------------------------------------------------------------------ paired dataset
def _lq_of(img: np.ndarray, scale: int = 2) -> np.ndarray:
    h, w = img.shape[:2]
    return cv2.resize(img[: h - h % scale, : w - w % scale], (w // scale, h // scale), interpolation=cv2.INTER_AREA)


@pytest.fixture
def pair_folders(tmp_path, gt_images):
    for name, img in gt_images.items():
        img = img[: img.shape[0] // 2 * 2, : img.shape[1] // 2 * 2]
        write_image(tmp_path / 'gt' / name, img)
        stem, ext = os.path.splitext(name)
        folder, base = os.path.split(stem)
        write_image(tmp_path / 'lq' / folder / f'{base}x2{ext}', _lq_of(img))
    return tmp_path / 'gt', tmp_path / 'lq'


def _check_alignment(item, scale=2):
    down = torch.nn.functional.avg_pool2d(item['gt'][None], scale)[0]
    assert (down - item['lq']).abs().mean() < 0.03  # jpg pairs: small codec differences


def test_paired_folder_scan_with_filename_template(pair_folders):
    gt, lq = pair_folders
    ds = RealESRGANPairedDataset(_opt(dataroot_gt=str(gt), dataroot_lq=str(lq), filename_tmpl='{}x2', scale=2))
    assert len(ds) == 3
    for i in range(3):
        item = ds[i]
        assert item['gt'].shape == (3, 64, 64) and item['lq'].shape == (3, 32, 32)
        _check_alignment(item)
    assert any(p['lq_path'].endswith('sub/dotted.name.v2x2.png') for p in ds.paths)


def test_paired_meta_info_with_flips_and_normalisation(pair_folders, tmp_path):
    gt, lq = pair_folders
    meta = tmp_path / 'pairs.txt'
    meta.write_text('plain.png, plainx2.png\nsub/dotted.name.v2.png, sub/dotted.name.v2x2.png\n')
    opt = _opt(dataroot_gt=str(gt), dataroot_lq=str(lq), meta_info=str(meta), scale=2, use_hflip=True, use_rot=True)
    ds = RealESRGANPairedDataset(opt)
    assert len(ds) == 2
    for _ in range(4):
        _check_alignment(ds[1])
    normed = RealESRGANPairedDataset({**opt, 'mean': [0.5, 0.5, 0.5], 'std': [0.5, 0.5, 0.5], 'phase': 'val'})
    item = normed[0]
    assert item['gt'].min() < 0 and item['gt'].shape == (3, 160, 200)


def test_paired_lmdb(tmp_path, gt_images):
    gts = {n: img[: img.shape[0] // 2 * 2, : img.shape[1] // 2 * 2] for n, img in gt_images.items()}
    gts.pop('photo.jpg')
    (tmp_path / 'gt.lmdb').mkdir()
    (tmp_path / 'lq.lmdb').mkdir()
    write_lmdb(tmp_path / 'gt.lmdb', gts)
    write_lmdb(tmp_path / 'lq.lmdb', {n: _lq_of(img) for n, img in gts.items()})
    roots = {'dataroot_gt': str(tmp_path / 'gt.lmdb'), 'dataroot_lq': str(tmp_path / 'lq.lmdb')}
    ds = RealESRGANPairedDataset(_opt(**roots, io_backend={'type': 'lmdb'}, scale=2))
    assert [p['gt_path'].split(':')[-1] for p in ds.paths] == ['plain', 'sub/dotted.name.v2']
    _check_alignment(ds[1])


def test_paired_errors_name_the_files(pair_folders, tmp_path):
    gt, lq = pair_folders
    os.remove(lq / 'plainx2.png')
    with pytest.raises(FileNotFoundError, match='plainx2.png'):
        RealESRGANPairedDataset(_opt(dataroot_gt=str(gt), dataroot_lq=str(lq), filename_tmpl='{}x2', scale=2))
    meta = tmp_path / 'pairs.txt'
    meta.write_text('plain.png, sub/dotted.name.v2x2.png\n')  # wrong partner: sizes do not match
    ds = RealESRGANPairedDataset(_opt(dataroot_gt=str(gt), dataroot_lq=str(lq), meta_info=str(meta), scale=2))
    with pytest.raises(ValueError, match=r'plain.png .*dotted.name.v2x2.png.*not 2x'):
        ds[0]
    meta.write_text('plain.png lq.png\n')
    with pytest.raises(ValueError, match=r'pairs.txt:1'):
        RealESRGANPairedDataset(_opt(dataroot_gt=str(gt), dataroot_lq=str(lq), meta_info=str(meta), scale=2))
