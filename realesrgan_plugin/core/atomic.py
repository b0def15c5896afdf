"""Atomic file writes: a temporary file beside the target, renamed over it only on success.

A process killed mid-write leaves the old target (or none) and a dot-named temporary file,
never half a file under the target's name (:func:`remove_stale_temp_files` clears those).
Used for images, checkpoints, metadata and downloads.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

TEMP_SUFFIX = '.tmp'
# mkstemp(prefix='.<name>.', suffix=TEMP_SUFFIX): a dot, the target name, a dot, random characters, '.tmp'.
_TEMP_NAME = re.compile(r'\..+\.[A-Za-z0-9_]+' + re.escape(TEMP_SUFFIX))


def default_file_mode() -> int:
    """The mode ``open()`` would give a new file under the current umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str = TEMP_SUFFIX) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for writers that want a file name (a compiler, a video
    muxer); on a clean exit it replaces ``path``, on any error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, default_file_mode())  # mkstemp makes it owner-only; outputs get the usual mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@contextmanager
def atomic_write(path: str | os.PathLike, *, suffix: str = TEMP_SUFFIX, fsync: bool = True) -> Iterator[BinaryIO]:
    """Yield a binary file to write; on a clean exit it replaces ``path``, on any error it is removed.

    ``fsync=False`` skips flushing to disk: still atomic against a killed process, not against
    a power cut (fine for bulk outputs a resumed job can redo)."""
    with atomic_path(path, suffix=suffix) as tmp, open(tmp, 'wb') as f:
        yield f
        if fsync:
            f.flush()
            os.fsync(f.fileno())


def write_bytes_atomic(path: str | os.PathLike, data: bytes, *, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (images, option files, reports, exported networks).

    ``fsync=False`` skips the flush to disk (several ms per file) for bulk outputs that a resumed
    job can redo after a power cut."""
    with atomic_write(path, fsync=fsync) as f:
        f.write(data)


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to ``path`` atomically: a run killed mid-save keeps the previous checkpoint."""
    import torch  # here, so that image-only users of this module do not pay for importing torch

    with atomic_write(path) as f:
        torch.save(obj, f)


def remove_stale_temp_files(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files a killed :func:`atomic_write` left in ``folder`` (not recursive)
    and return them. Only names of the writer's own pattern (``.<name>.<random>.tmp``) are touched."""
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []
    stale = sorted(Path(e.path) for e in entries if e.is_file() and _TEMP_NAME.fullmatch(e.name))
    for path in stale:
        path.unlink(missing_ok=True)
    return stale
