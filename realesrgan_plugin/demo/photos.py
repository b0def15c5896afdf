"""scikit-image's bundled photos (offline) as the demo's training and held-out images."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from realesrgan_plugin.core.img_io import write_image

import cv2
import numpy as np

# Bundled with scikit-image (no pooch download). Held-out photos never enter the training set.
TRAIN_PHOTOS = (
    'astronaut',
    'rocket',
    'immunohistochemistry',
    'hubble_deep_field',
    'colorwheel',
    'camera',
    'brick',
    'grass',
    'gravel',
    'moon',
    'coins',
    'clock',
)
HELD_OUT_PHOTOS = ('chelsea', 'coffee')  # skimage's 'cat' is chelsea too: never train on it


def load_photo(name: str) -> np.ndarray:
    """A scikit-image sample as a BGR uint8 image (gray ones replicated to 3 channels)."""
    from skimage import data

    img = getattr(data, name)()
    if img.dtype != np.uint8:
        raise ValueError(f'scikit-image sample {name!r} is {img.dtype}, expected uint8')
    if img.ndim == 2:
        return np.ascontiguousarray(np.repeat(img[:, :, None], 3, axis=2))
    return np.ascontiguousarray(cv2.cvtColor(img[:, :, :3], cv2.COLOR_RGB2BGR))


def write_photos(names: Iterable[str], folder: str | os.PathLike) -> list[Path]:
    """Write each named sample as ``<folder>/<name>.png``; returns the paths."""
    folder = Path(folder)
    paths = []
    for name in names:
        path = folder / f'{name}.png'
        write_image(path, load_photo(name))
        paths.append(path)
    return paths
