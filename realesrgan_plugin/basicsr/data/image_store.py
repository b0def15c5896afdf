"""Where training images come from: a folder or an LMDB, listed by a meta_info file or a scan.

Shared by the Real-ESRGAN datasets. LMDB layout (see DEVELOPERS.md): the key of an image is
its relative path with the LAST extension removed (``a.b.png`` -> ``a.b``; the official code
used ``split('.')[0]`` and broke dotted names); ``meta_info.txt`` lines are
``<relpath-with-ext> (h,w,c) <level>``. Bytes are decoded by ``realesrgan_plugin.core.img_io``.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from realesrgan_plugin.core.img_io import ImageReadError, decode_image, is_image_file, to_float32
from realesrgan_plugin.core.lmdb_env import readonly_env
from realesrgan_plugin.core.meta_info import lmdb_key, relpaths_from_meta_info

import numpy as np

logger = logging.getLogger('basicsr')


def scan_images(folder: str | os.PathLike) -> list[str]:
    """Sorted relative paths (POSIX separators) of all images under ``folder``, recursively."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f'Image folder {os.fspath(folder)!r} does not exist')
    names = sorted(p.relative_to(root).as_posix() for p in root.rglob('*') if p.is_file() and is_image_file(p))
    if not names:
        raise ValueError(f'No images found in folder {os.fspath(folder)!r}')
    return names


class DiskStore:
    """Images as files under ``root``; ``name`` is the relative path (absolute paths work too)."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = os.fspath(root)

    def location(self, name: str) -> str:
        return os.path.join(self.root, name)

    def read(self, name: str) -> bytes:
        return self.get(self.location(name))

    def official_path(self, name: str) -> str:
        """What the official dataset lists in ``paths`` and returns as ``gt_path``: the file path."""
        return self.location(name)

    def describe(self, path: str) -> str:
        return path

    def get(self, path: str) -> bytes:
        with open(path, 'rb') as f:
            return f.read()


class LmdbStore:
    """Images in an LMDB written in the contract layout; ``name`` is the relative path with extension.

    The environment is the process's shared one (``utils.lmdb_env``), opened on first read, so
    the store pickles into DataLoader workers and two datasets can share one LMDB.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.root = os.fspath(path)
        if not os.path.isfile(os.path.join(self.root, 'data.mdb')):
            raise FileNotFoundError(f'{self.root!r} is not an LMDB folder (no data.mdb)')

    def names(self) -> list[str]:
        return relpaths_from_meta_info(os.path.join(self.root, 'meta_info.txt'))

    def location(self, name: str) -> str:
        return f'{self.root}:{lmdb_key(name)}'

    def read(self, name: str) -> bytes:
        return self.get(lmdb_key(name))

    def official_path(self, name: str) -> str:
        """What the official dataset lists in ``paths`` and returns as ``gt_path``: the LMDB key."""
        return lmdb_key(name)

    def describe(self, key: str) -> str:
        return f'{self.root}:{key}'

    def get(self, key: str) -> bytes:
        with readonly_env(self.root).begin(write=False) as txn:
            value = txn.get(key.encode('utf-8'))
        if value is None:
            raise ImageReadError(self.describe(key), 'key not found in the LMDB')
        return bytes(value)


def make_store(io_backend: dict | None, root: str | os.PathLike, option: str = 'dataroot_gt') -> DiskStore | LmdbStore:
    """The store for ``root`` (the value of option ``option``); an LMDB folder must end in
    ``.lmdb`` (the official datasets' ValueError for the same misuse)."""
    kind = (io_backend or {}).get('type', 'disk')
    if kind == 'lmdb':
        if not os.fspath(root).endswith('.lmdb'):
            raise ValueError(f"'{option}' should end with '.lmdb', but received {os.fspath(root)}")
        return LmdbStore(root)
    if kind == 'disk':
        return DiskStore(root)
    raise ValueError(f"io_backend type must be 'disk' or 'lmdb', got {kind!r}")


class StoreClient:
    """BasicSR ``FileClient``'s ``get(filepath, client_key)`` over the plugin's stores: the
    ``file_client`` attribute of the datasets, for code written against the official ones.
    ``filepath`` is an entry of the dataset's ``paths`` (a file path, or an LMDB key)."""

    def __init__(self, stores: dict[str, DiskStore | LmdbStore]) -> None:
        self.stores = stores

    def _store(self, client_key: str) -> DiskStore | LmdbStore:
        return self.stores.get(client_key) or next(iter(self.stores.values()))

    def get(self, filepath: str, client_key: str = 'default') -> bytes:
        return self._store(client_key).get(filepath)

    def get_text(self, filepath: str, client_key: str = 'default') -> str:
        return self.get(filepath, client_key).decode('utf-8')

    def describe(self, filepath: str, client_key: str = 'default') -> str:
        """Where ``filepath`` is, for error messages (``lmdb_folder:key`` for LMDB entries)."""
        return self._store(client_key).describe(filepath)


def list_names(store: DiskStore | LmdbStore, meta_info: str | None) -> list[str]:
    """Image names of a store: the LMDB's own meta_info, else ``meta_info``, else a folder scan."""
    if isinstance(store, LmdbStore):
        return store.names()
    if meta_info:
        return relpaths_from_meta_info(meta_info)
    return scan_images(store.root)


def decode_rgb(buffer: bytes, name: str) -> np.ndarray:
    """Encoded bytes -> H x W x 3 float32 RGB in [0, 1] (gray expanded, alpha dropped, 16 bit kept)."""
    img = to_float32(decode_image(buffer, name))
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    elif img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    elif img.shape[2] == 4:
        img = img[:, :, :3]
    return np.ascontiguousarray(img[:, :, ::-1])


def augment(imgs: Sequence[np.ndarray], hflip: bool, rotation: bool, rng: random.Random) -> list[np.ndarray]:
    """Same random horizontal flip / vertical flip / transpose for all images (HWC arrays)."""
    do_h = hflip and rng.random() < 0.5
    do_v = rotation and rng.random() < 0.5
    do_t = rotation and rng.random() < 0.5
    out = []
    for img in imgs:
        if do_h:
            img = img[:, ::-1]
        if do_v:
            img = img[::-1]
        if do_t:
            img = img.transpose(1, 0, 2)
        out.append(np.ascontiguousarray(img))
    return out


class RobustReader:
    """Reads item ``index`` with the failure policy the datasets share.

    * I/O errors (``OSError``, e.g. a network file system hiccup) are retried ``retries`` times,
      each time on another random item (the official behaviour, without its off-by-one index
      and its unbound variable when every attempt fails); then an error lists every file tried.
    * Undecodable images raise :class:`ImageReadError` naming the file, or, with ``skip_bad``,
      are logged, remembered in ``skipped`` and replaced by another random item.
    """

    def __init__(self, size: int, retries: int = 3, retry_sleep: float = 1.0, skip_bad: bool = False) -> None:
        self.size = size
        self.retries = retries
        self.retry_sleep = retry_sleep
        self.skip_bad = skip_bad
        self.skipped: dict[str, str] = {}

    @classmethod
    def from_options(cls, size: int, opt: dict) -> RobustReader:
        """The dataset options ``io_retries``, ``io_retry_sleep`` and ``skip_bad_images``."""
        return cls(
            size,
            retries=int(opt.get('io_retries', 3)),
            retry_sleep=float(opt.get('io_retry_sleep', 1.0)),
            skip_bad=bool(opt.get('skip_bad_images', False)),
        )

    def __call__(self, index: int, load: Callable[[int], object], describe: Callable[[int], str], rng) -> object:
        tried: list[str] = []
        failed: set[int] = set()
        io_failures = 0
        while True:
            try:
                return load(index)
            except ImageReadError as err:
                if not self.skip_bad:
                    raise
                self.skipped[err.path] = err.reason
                logger.warning(f'Skipping unreadable image {err.path!r}: {err.reason} ({len(self.skipped)} skipped)')
            except OSError as err:
                io_failures += 1
                tried.append(f'{describe(index)} ({err.strerror or err})')
                left = self.retries - io_failures + 1
                logger.warning(f'I/O error reading {describe(index)!r}: {err}; retries left: {left}')
                if io_failures > self.retries:
                    break
                time.sleep(self.retry_sleep)
            failed.add(index)
            if len(failed) >= self.size:
                break
            # another item, never one that already failed (and always a valid index)
            index = rng.choice([i for i in range(self.size) if i not in failed])
        if tried:
            raise OSError(f'Could not read any image after {io_failures} attempt(s): ' + '; '.join(tried))
        raise RuntimeError(f'Every image tried was unreadable; skipped so far: {sorted(self.skipped)}')
