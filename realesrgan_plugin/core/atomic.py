"""Atomic file writes: a temporary file beside the target, renamed over it only on success.

A process killed mid-write leaves the old target (or none) and a dot-named temporary file,
never half a file under the target's name (:func:`remove_stale_temp_files` clears those).
Used for images, checkpoints, metadata and downloads.

A full disk or an I/O error while writing (``ENOSPC``, ``EIO``, quota, file size limit) becomes
one :class:`DiskWriteError` that names the target; the temporary file is removed and the
previous file under the target's name is left as it was.
"""

from __future__ import annotations

import errno
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

# errno values that mean "the storage cannot take this write", not "this program is wrong".
DISK_ERRNOS = frozenset(
    code for code in (errno.ENOSPC, errno.EIO, getattr(errno, 'EDQUOT', None), errno.EFBIG, errno.EROFS) if code
)


class DiskWriteError(OSError):
    """Writing ``target`` failed because of the storage (full, read-only, I/O error).

    An ``OSError`` (command lines print it as one ``error:`` line) whose text names the target
    and says what is left behind."""

    def __init__(self, target: str | os.PathLike, reason: str, code: int | None = None) -> None:
        super().__init__(code, reason)
        self.filename = os.fspath(target)
        self.reason = reason

    def __reduce__(self):  # crosses process pools intact (OSError would rebuild it from its args)
        return type(self), (self.filename, self.reason, self.errno)

    def __str__(self) -> str:
        return f'cannot write {self.filename}: {self.reason} (free space and run again)'


def is_disk_error(err: BaseException) -> bool:
    """True for an OSError, or an error of a library (LMDB, PyAV...) whose message carries one,
    that means the storage refused the write; also when such an error is the context of ``err``
    (``torch.save`` hides an ENOSPC behind a RuntimeError about zip positions)."""
    seen = 0
    while err is not None and seen < 8:
        if isinstance(err, DiskWriteError):
            return False  # already reported with its target
        if isinstance(err, OSError) and err.errno in DISK_ERRNOS:
            return True
        if any(os.strerror(code) in str(err) for code in DISK_ERRNOS):
            return True
        err, seen = err.__cause__ or err.__context__, seen + 1
    return False


def _disk_reason(err: BaseException) -> tuple[str, int | None]:
    """The storage failure's text and errno, from ``err`` or the error it hides."""
    while err is not None:
        if isinstance(err, OSError) and err.errno in DISK_ERRNOS:
            return os.strerror(err.errno), err.errno
        if any(os.strerror(code) in str(err) for code in DISK_ERRNOS):
            return str(err).splitlines()[0], None
        err = err.__cause__ or err.__context__
    return 'write failed', None


def as_disk_write_error(target: str | os.PathLike, err: BaseException) -> DiskWriteError:
    reason, code = _disk_reason(err)
    return DiskWriteError(target, reason, code)


@contextmanager
def naming_disk_errors(target: str | os.PathLike) -> Iterator[None]:
    """Turn a storage failure inside the block into a :class:`DiskWriteError` naming ``target``."""
    try:
        yield
    except Exception as err:
        if is_disk_error(err):
            raise as_disk_write_error(target, err) from err
        raise


class NamingDiskErrors:
    """Wraps a writer object (a tensorboard ``SummaryWriter``...) so that a storage failure in any
    of its methods becomes a :class:`DiskWriteError` naming ``target`` instead of a bare
    ``[Errno 28] No space left on device`` from deep inside the library."""

    def __init__(self, wrapped: object, target: str | os.PathLike) -> None:
        self._wrapped, self._target = wrapped, target

    def __getattr__(self, name: str):
        value = getattr(self._wrapped, name)
        if not callable(value):
            return value

        def call(*args, **kwargs):
            with naming_disk_errors(self._target):
                return value(*args, **kwargs)

        return call

    def __bool__(self) -> bool:
        return bool(self._wrapped)


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
    with naming_disk_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix=suffix, dir=path.parent)
        os.close(fd)
    try:
        with naming_disk_errors(path):  # also for the caller's writes into the temporary file
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
