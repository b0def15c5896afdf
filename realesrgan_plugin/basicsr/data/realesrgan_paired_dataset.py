"""``RealESRGANPairedDataset``: fixed (LQ, GT) pairs, e.g. for fine-tuning on real pairs.

Pairs come from (in this order of precedence):

1. ``io_backend.type: lmdb``: ``dataroot_lq`` and ``dataroot_gt`` are LMDBs; their
   ``meta_info.txt`` must list the same images;
2. ``meta_info``: lines ``<gt relpath>, <lq relpath>``;
3. a folder scan of ``dataroot_gt``; the LQ of ``name.ext`` is ``filename_tmpl.format(name) + ext``.

In the ``train`` phase a random aligned crop of ``gt_size`` (LQ ``gt_size/scale``) and the
flips/rotation are applied. ``mean``/``std`` normalise both images when given.
"""

from __future__ import annotations

import os
import random

from realesrgan_plugin.basicsr.data.image_store import (
    LmdbStore,
    RobustReader,
    StoreClient,
    augment,
    decode_rgb,
    make_store,
    scan_images,
)
from realesrgan_plugin.core.registration import register_official

import numpy as np
import torch
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils import data


def _pairs_from_meta_info(path: str) -> list[tuple[str, str]]:
    pairs = []
    with open(path, encoding='utf-8') as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = [p.strip() for p in line.strip().split(',')]
            if len(parts) != 2 or not all(parts):
                raise ValueError(f'{path}:{number}: expected "<gt path>, <lq path>", got {line.strip()!r}')
            pairs.append((parts[0], parts[1]))
    if not pairs:
        raise ValueError(f'meta_info file {path!r} lists no pairs')
    return pairs


def _pairs_from_lmdbs(gt: LmdbStore, lq: LmdbStore) -> list[tuple[str, str]]:
    gt_names, lq_names = gt.names(), lq.names()
    if set(gt_names) != set(lq_names):
        only_gt = sorted(set(gt_names) - set(lq_names))[:5]
        only_lq = sorted(set(lq_names) - set(gt_names))[:5]
        raise ValueError(
            f'LMDBs {gt.root!r} and {lq.root!r} list different images: only in gt {only_gt}, only in lq {only_lq}'
        )
    return [(name, name) for name in gt_names]


def _pairs_from_folders(gt_root: str, lq_root: str, template: str) -> list[tuple[str, str]]:
    pairs, missing = [], []
    for gt_name in scan_images(gt_root):
        stem, ext = os.path.splitext(gt_name)
        folder, base = os.path.split(stem)
        lq_name = os.path.join(folder, template.format(base) + ext)
        if not os.path.isfile(os.path.join(lq_root, lq_name)):
            missing.append(os.path.join(lq_root, lq_name))
        pairs.append((gt_name, lq_name))
    if missing:
        raise FileNotFoundError(f'{len(missing)} LQ image(s) missing for GT images in {gt_root!r}, e.g. {missing[:3]}')
    return pairs


def paired_random_crop(gt: np.ndarray, lq: np.ndarray, gt_size: int, scale: int, rng, name: str):
    """Aligned random crop of an (HR, LR) pair; errors name the pair when sizes do not fit."""
    h_lq, w_lq = lq.shape[:2]
    h_gt, w_gt = gt.shape[:2]
    lq_size = gt_size // scale
    if (h_gt, w_gt) != (h_lq * scale, w_lq * scale):
        raise ValueError(f'{name}: GT {h_gt}x{w_gt} is not {scale}x the LQ {h_lq}x{w_lq}')
    if h_lq < lq_size or w_lq < lq_size:
        raise ValueError(f'{name}: LQ {h_lq}x{w_lq} is smaller than the patch {lq_size}x{lq_size}')
    top, left = rng.randint(0, h_lq - lq_size), rng.randint(0, w_lq - lq_size)
    lq = lq[top : top + lq_size, left : left + lq_size]
    gt = gt[top * scale : top * scale + gt_size, left * scale : left * scale + gt_size]
    return gt, lq


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))


@register_official(DATASET_REGISTRY)
class RealESRGANPairedDataset(data.Dataset):
    """The official attributes: ``opt``, ``io_backend_opt``, ``file_client``, ``gt_folder``,
    ``lq_folder``, ``filename_tmpl``, ``mean``, ``std`` and ``paths`` (``{'gt_path', 'lq_path'}``
    dicts: file paths, or LMDB keys)."""

    def __init__(self, opt: dict) -> None:
        super().__init__()
        self.opt = opt
        self.io_backend_opt = opt.get('io_backend') or {'type': 'disk'}
        self.mean, self.std = opt.get('mean'), opt.get('std')
        self.gt_folder, self.lq_folder = opt['dataroot_gt'], opt['dataroot_lq']
        self.filename_tmpl = opt.get('filename_tmpl', '{}')
        if self.io_backend_opt.get('type') == 'lmdb':
            if not (os.fspath(self.gt_folder).endswith('.lmdb') and os.fspath(self.lq_folder).endswith('.lmdb')):
                raise ValueError(
                    'lq folder and gt folder should both in lmdb formats. '
                    f'But received lq: {self.lq_folder}; gt: {self.gt_folder}'
                )
            self.io_backend_opt['db_paths'] = [self.lq_folder, self.gt_folder]
            self.io_backend_opt['client_keys'] = ['lq', 'gt']
        gt_store = make_store(self.io_backend_opt, self.gt_folder, 'dataroot_gt')
        lq_store = make_store(self.io_backend_opt, self.lq_folder, 'dataroot_lq')
        self.file_client = StoreClient({'gt': gt_store, 'lq': lq_store})
        if isinstance(gt_store, LmdbStore):
            pairs = _pairs_from_lmdbs(gt_store, lq_store)
        elif opt.get('meta_info'):
            pairs = _pairs_from_meta_info(opt['meta_info'])
        else:
            pairs = _pairs_from_folders(self.gt_folder, self.lq_folder, self.filename_tmpl)
        self.paths = [{'gt_path': gt_store.official_path(g), 'lq_path': lq_store.official_path(q)} for g, q in pairs]
        self.reader = RobustReader.from_options(len(self.paths), opt)

    def __len__(self) -> int:
        return len(self.paths)

    def _read(self, path: str, key: str) -> np.ndarray:
        return decode_rgb(self.file_client.get(path, key), self.file_client.describe(path, key))

    def _load(self, index: int):
        gt_path, lq_path = self.paths[index]['gt_path'], self.paths[index]['lq_path']
        return self._read(gt_path, 'gt'), self._read(lq_path, 'lq'), gt_path, lq_path

    def _describe(self, index: int) -> str:
        p = self.paths[index]
        return f'{self.file_client.describe(p["gt_path"], "gt")} / {self.file_client.describe(p["lq_path"], "lq")}'

    def __getitem__(self, index: int) -> dict:
        rng = random
        gt, lq, gt_path, lq_path = self.reader(index, self._load, self._describe, rng)
        if self.opt.get('phase', 'train') == 'train':
            scale = int(self.opt['scale'])
            gt, lq = paired_random_crop(gt, lq, int(self.opt['gt_size']), scale, rng, f'{gt_path} / {lq_path}')
            gt, lq = augment([gt, lq], self.opt.get('use_hflip', True), self.opt.get('use_rot', True), rng)
        gt_t, lq_t = _to_tensor(gt), _to_tensor(lq)
        if self.mean is not None or self.std is not None:
            mean = torch.as_tensor(self.mean if self.mean is not None else 0.0, dtype=torch.float32).view(-1, 1, 1)
            std = torch.as_tensor(self.std if self.std is not None else 1.0, dtype=torch.float32).view(-1, 1, 1)
            gt_t, lq_t = (gt_t - mean) / std, (lq_t - mean) / std
        return {'lq': lq_t, 'gt': gt_t, 'lq_path': lq_path, 'gt_path': gt_path}
