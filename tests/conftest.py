"""Shared fixtures: small real photos from scikit-image (bundled, offline) and a temp dir."""

from __future__ import annotations

import realesrgan_plugin.basicsr  # noqa: F401  (compat + BasicSR registration before basicsr)

import numpy as np
import pytest


@pytest.fixture(scope='session')
def astronaut_bgr() -> np.ndarray:
    """512x512x3 uint8 BGR photo."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[:, :, ::-1])


def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'gpu: needs CUDA; collected always, skipped without it (bench/gpu_check.py runs them)'
    )


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason='needs CUDA (run bench/gpu_check.py on a GPU machine)')
    for item in items:
        if 'gpu' in item.keywords:
            item.add_marker(skip)
