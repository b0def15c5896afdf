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
