"""Atomic file writes: a temporary file beside the target, renamed over it only on success.

A process killed mid-write leaves the old target (or none) and a dot-named temporary file,
never half a file under the target's name. Used for images, checkpoints and downloads.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


def default_file_mode() -> int:
    """The mode ``open()`` would give a new file under the current umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_write(path: str | os.PathLike, *, suffix: str = '.tmp', fsync: bool = True) -> Iterator[BinaryIO]:
    """Yield a binary file to write; on a clean exit it replaces ``path``, on any error it is removed.

    ``fsync=False`` skips flushing to disk: still atomic against a killed process, not against
    a power cut (fine for bulk outputs a resumed job can redo)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix=suffix, dir=path.parent)
    try:
        with os.fdopen(fd, 'wb') as f:
            yield f
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, default_file_mode())  # mkstemp makes it owner-only; outputs get the usual mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
