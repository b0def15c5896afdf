"""One image loader/writer for training, tools and inference.

Images are read as stored (8 or 16 bit, gray, BGR or BGRA) and bit depth is decided by dtype,
never by pixel values. Every failure names the file. Writes are atomic: a temporary file in
the destination folder is renamed over the target, so a killed job never leaves half an image.
"""

from __future__ import annotations

import os
from pathlib import Path

from realesrgan_plugin.core.atomic import write_bytes_atomic

import cv2
import numpy as np

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp', '.ppm', '.pgm')


class ImageReadError(ValueError):
    """An image could not be decoded; ``path`` names it."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f'Cannot read image {self.path!r}: {reason}')


def is_image_file(path: str | os.PathLike) -> bool:
    return os.fspath(path).lower().endswith(IMAGE_EXTENSIONS)


def decode_image(buffer: bytes | np.ndarray, name: str) -> np.ndarray:
    """Decode encoded image bytes as stored (``IMREAD_UNCHANGED``); ``name`` is used in errors."""
    data = np.frombuffer(buffer, dtype=np.uint8) if isinstance(buffer, bytes | bytearray | memoryview) else buffer
    if data.size == 0:
        raise ImageReadError(name, 'file is empty (0 bytes)')
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ImageReadError(name, 'not a decodable image (corrupt or not an image format)')
    if img.dtype not in (np.uint8, np.uint16):
        raise ImageReadError(name, f'unsupported pixel type {img.dtype} (expected 8 or 16 bit)')
    return img


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as stored: HxW (gray), HxWx3 (BGR) or HxWx4 (BGRA), uint8 or uint16."""
    path = os.fspath(path)
    try:
        with open(path, 'rb') as f:
            buffer = f.read()
    except OSError as err:
        raise ImageReadError(path, err.strerror or str(err)) from err
    return decode_image(buffer, path)


def max_value(img: np.ndarray) -> int:
    """Full-scale value for the image's dtype: 255 for uint8, 65535 for uint16."""
    if img.dtype == np.uint8:
        return 255
    if img.dtype == np.uint16:
        return 65535
    raise TypeError(f'expected a uint8 or uint16 image, got {img.dtype}')


def to_float32(img: np.ndarray) -> np.ndarray:
    """uint8/uint16 image to float32 in [0, 1]."""
    return img.astype(np.float32) / max_value(img)


def from_float32(img: np.ndarray, dtype: np.dtype | type = np.uint8) -> np.ndarray:
    """float image in [0, 1] to uint8/uint16, rounded and clipped."""
    peak = 65535 if np.dtype(dtype) == np.uint16 else 255
    return np.clip(np.rint(img * peak), 0, peak).astype(dtype)


def encode_image(img: np.ndarray, ext: str, params: list[int] | None = None) -> bytes:
    ok, buf = cv2.imencode(ext if ext.startswith('.') else '.' + ext, img, params or [])
    if not ok:
        raise ValueError(f'cannot encode image of shape {img.shape} and dtype {img.dtype} as {ext!r}')
    return buf.tobytes()


def write_image(
    path: str | os.PathLike, img: np.ndarray, params: list[int] | None = None, *, fsync: bool = True
) -> None:
    """Encode by the file extension and write atomically."""
    write_bytes_atomic(path, encode_image(img, Path(path).suffix, params), fsync=fsync)


def png_params(compression_level: int | None) -> list[int]:
    """cv2 encoder parameters for a PNG compression level 0-9 (None: OpenCV's default)."""
    if compression_level is None:
        return []
    if not 0 <= compression_level <= 9:
        raise ValueError(f'PNG compression level must be 0..9, got {compression_level}')
    return [cv2.IMWRITE_PNG_COMPRESSION, int(compression_level)]
