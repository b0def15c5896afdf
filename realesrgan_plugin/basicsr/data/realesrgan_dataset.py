"""``RealESRGANDataset``: GT images for on-the-fly degradation (official name and options).

Returns ``{'gt': 3xHxW float RGB in [0, 1], 'gt_path': str}``, ``H = W = crop_pad_size``
(default 400, the official hard-coded value: images are reflect-padded up to it or randomly
cropped down to it). With ``kernels_on_cpu: true`` it also returns the official ``kernel1``,
``kernel2`` and ``sinc_kernel`` (drawn by the same code the synthesis uses on the device).
Backends: ``io_backend.type`` ``disk`` (``meta_info`` file, or a folder scan when absent) or
``lmdb`` (the LMDB's own ``meta_info.txt``). Bad files: see :class:`RobustReader`
(options ``io_retries``, ``io_retry_sleep``, ``skip_bad_images``).
"""

from __future__ import annotations

import random

from realesrgan_plugin.basicsr.data.image_store import RobustReader, augment, decode_rgb, list_names, make_store
from realesrgan_plugin.core.degradations.synthesis import random_kernels, settings_from_options
from realesrgan_plugin.core.registration import register_official

import cv2
import numpy as np
import torch
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils import data


def crop_or_pad(img: np.ndarray, size: int, rng: random.Random) -> np.ndarray:
    """Reflect-pad (bottom/right) up to ``size``, then take a random ``size x size`` crop."""
    h, w = img.shape[:2]
    if h < size or w < size:
        img = cv2.copyMakeBorder(img, 0, max(0, size - h), 0, max(0, size - w), cv2.BORDER_REFLECT_101)
        h, w = img.shape[:2]
    top, left = rng.randint(0, h - size), rng.randint(0, w - size)
    return img[top : top + size, left : left + size]


@register_official(DATASET_REGISTRY)
class RealESRGANDataset(data.Dataset):
    def __init__(self, opt: dict) -> None:
        super().__init__()
        self.opt = opt
        self.store = make_store(opt.get('io_backend'), opt['dataroot_gt'])
        self.names = list_names(self.store, opt.get('meta_info'))
        self.crop_pad_size = int(opt.get('crop_pad_size', 400))
        gt_size = opt.get('gt_size')
        if gt_size is not None and self.crop_pad_size < int(gt_size):
            raise ValueError(f'crop_pad_size {self.crop_pad_size} is smaller than gt_size {gt_size}')
        self.kernels_on_cpu = bool(opt.get('kernels_on_cpu', False))
        # Kernel keys live in the dataset options, as in the official option files.
        self.synthesis_settings = settings_from_options({'datasets': {'train': opt}})
        self.reader = RobustReader.from_options(len(self.names), opt)

    @property
    def paths(self) -> list[str]:
        """Where each image is read from (file path, or ``lmdb_folder:key``)."""
        return [self.store.location(n) for n in self.names]

    def __len__(self) -> int:
        return len(self.names)

    def _load(self, index: int) -> tuple[np.ndarray, str]:
        name = self.names[index]
        return decode_rgb(self.store.read(name), self.store.location(name)), self.store.location(name)

    def __getitem__(self, index: int) -> dict:
        rng = random  # worker-seeded by the DataLoader / BasicSR, like the official dataset
        img, path = self.reader(index, self._load, lambda i: self.store.location(self.names[i]), rng)
        img = augment([img], self.opt.get('use_hflip', True), self.opt.get('use_rot', False), rng)[0]
        img = crop_or_pad(img, self.crop_pad_size, rng)
        out = {'gt': torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))), 'gt_path': path}
        if self.kernels_on_cpu:
            kernels = random_kernels(1, self.synthesis_settings)
            out.update({k: v[0] for k, v in kernels.items()})
        return out
