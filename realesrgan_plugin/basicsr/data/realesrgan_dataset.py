"""``RealESRGANDataset``: GT images for on-the-fly degradation (official name, options and surface).

Returns the official ``{'gt': 3xHxW float RGB in [0, 1], 'kernel1', 'kernel2', 'sinc_kernel':
21x21 float tensors, 'gt_path': str}``, ``H = W = crop_pad_size`` (default 400, the official
hard-coded value: images are reflect-padded up to it or randomly cropped down to it). The kernels
are drawn by the same code the synthesis uses on the device; ``kernels_on_cpu: false`` leaves them
out, and the models then draw them on the training device. The official attributes are there
(``opt``, ``io_backend_opt``, ``file_client``, ``gt_folder``, ``paths``, ``kernel_list``, ...,
``kernel_range``, ``pulse_tensor``); the kernel attributes are read at each item, as the official.
Backends: ``io_backend.type`` ``disk`` (``meta_info`` file, or a folder scan when absent) or
``lmdb`` (the LMDB's own ``meta_info.txt``; ``paths`` are its keys). Bad files: see
:class:`RobustReader` (options ``io_retries``, ``io_retry_sleep``, ``skip_bad_images``).
"""

from __future__ import annotations

import random

from realesrgan_plugin.basicsr.data.image_store import (
    RobustReader,
    StoreClient,
    augment,
    decode_rgb,
    list_names,
    make_store,
)
from realesrgan_plugin.core.degradations.kernels import KernelSettings
from realesrgan_plugin.core.degradations.synthesis import (
    DegradationSettings,
    kernel_settings_from_options,
    random_kernels,
)
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


#: The official kernel size range (7..21) and the 21x21 grid every kernel is padded to.
KERNEL_RANGE = [2 * v + 1 for v in range(3, 11)]
KERNEL_GRID = 21


@register_official(DATASET_REGISTRY)
class RealESRGANDataset(data.Dataset):
    def __init__(self, opt: dict) -> None:
        super().__init__()
        self.opt = opt
        self.io_backend_opt = opt.get('io_backend') or {'type': 'disk'}
        self.gt_folder = opt['dataroot_gt']
        store = make_store(self.io_backend_opt, self.gt_folder, 'dataroot_gt')
        if self.io_backend_opt.get('type') == 'lmdb':  # as the official (BasicSR's FileClient keys)
            self.io_backend_opt['db_paths'] = [self.gt_folder]
            self.io_backend_opt['client_keys'] = ['gt']
        self.file_client = StoreClient({'gt': store})
        self.paths = [store.official_path(n) for n in list_names(store, opt.get('meta_info'))]
        self.crop_pad_size = int(opt.get('crop_pad_size', 400))
        gt_size = opt.get('gt_size')
        if gt_size is not None and self.crop_pad_size < int(gt_size):
            raise ValueError(f'crop_pad_size {self.crop_pad_size} is smaller than gt_size {gt_size}')
        self.kernels_on_cpu = bool(opt.get('kernels_on_cpu', True))
        self._set_kernel_attributes(opt)
        self.reader = RobustReader.from_options(len(self.paths), opt)

    def _set_kernel_attributes(self, opt: dict) -> None:
        """The official attributes, from the options or the official x4plus defaults."""
        for stage, suffix in ((1, ''), (2, '2')):
            k = kernel_settings_from_options(opt, stage)
            setattr(self, f'blur_kernel_size{suffix}', k.kernel_size)
            setattr(self, f'kernel_list{suffix}', list(k.kernel_list))
            setattr(self, f'kernel_prob{suffix}', list(k.kernel_prob))
            setattr(self, f'blur_sigma{suffix}', list(k.blur_sigma))
            setattr(self, f'betag_range{suffix}', list(k.betag_range))
            setattr(self, f'betap_range{suffix}', list(k.betap_range))
            setattr(self, f'sinc_prob{suffix}', k.sinc_prob)
        self.final_sinc_prob = opt.get('final_sinc_prob', DegradationSettings().final_sinc_prob)
        self.kernel_range = list(KERNEL_RANGE)
        self.pulse_tensor = torch.zeros(KERNEL_GRID, KERNEL_GRID)  # convolving with it changes nothing
        self.pulse_tensor[KERNEL_GRID // 2, KERNEL_GRID // 2] = 1

    def kernel_settings(self) -> DegradationSettings:
        """Kernel settings from the attributes now (a subclass or caller may have changed them)."""

        def stage(suffix: str) -> KernelSettings:
            return KernelSettings(
                kernel_size=getattr(self, f'blur_kernel_size{suffix}'),
                kernel_list=getattr(self, f'kernel_list{suffix}'),
                kernel_prob=getattr(self, f'kernel_prob{suffix}'),
                sinc_prob=getattr(self, f'sinc_prob{suffix}'),
                blur_sigma=getattr(self, f'blur_sigma{suffix}'),
                betag_range=getattr(self, f'betag_range{suffix}'),
                betap_range=getattr(self, f'betap_range{suffix}'),
            )

        return DegradationSettings(kernel1=stage(''), kernel2=stage('2'), final_sinc_prob=self.final_sinc_prob)

    def __len__(self) -> int:
        return len(self.paths)

    def _load(self, index: int) -> tuple[np.ndarray, str]:
        path = self.paths[index]
        return decode_rgb(self.file_client.get(path, 'gt'), self.file_client.describe(path, 'gt')), path

    def __getitem__(self, index: int) -> dict:
        rng = random  # worker-seeded by the DataLoader / BasicSR, like the official dataset
        img, path = self.reader(index, self._load, lambda i: self.file_client.describe(self.paths[i], 'gt'), rng)
        img = augment([img], self.opt.get('use_hflip', True), self.opt.get('use_rot', False), rng)[0]
        img = crop_or_pad(img, self.crop_pad_size, rng)
        out = {'gt': torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))}
        if self.kernels_on_cpu:
            kernels = random_kernels(1, self.kernel_settings())
            out.update({k: v[0] for k, v in kernels.items()})
        out['gt_path'] = path
        return out
