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
import glob
import logging
import os
import re
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
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
        return f'cannot write {self.filename}: {self.reason} ({what_to_do_about(self.errno)})'


def what_to_do_about(code: int | None) -> str:
    """The user's next step for a storage failure: an I/O error is not cured by freeing space."""
    if code == errno.EIO:
        return 'the storage reported an I/O error: check the disk, or write elsewhere, and run again'
    if code == errno.EROFS:
        return 'the filesystem is read-only: write elsewhere and run again'
    if code == errno.EFBIG:
        return 'the file is over a size limit: raise it (ulimit -f) or write elsewhere, and run again'
    return 'free space and run again'


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
        named = [code for code in DISK_ERRNOS if os.strerror(code) in str(err)]
        if named:
            return str(err).splitlines()[0], named[0]
        err = err.__cause__ or err.__context__
    return 'write failed', None


def as_disk_write_error(target: str | os.PathLike, err: BaseException) -> DiskWriteError:
    reason, code = _disk_reason(err)
    return DiskWriteError(target, reason, code)


@contextmanager
def naming_disk_errors(target: str | os.PathLike | Callable[[], str]) -> Iterator[None]:
    """Turn a storage failure inside the block into a :class:`DiskWriteError` naming ``target``
    (or what ``target()`` returns, asked after the failure: the file may be named inside the block)."""
    try:
        yield
    except Exception as err:
        if is_disk_error(err):
            raise as_disk_write_error(target() if callable(target) else target, err) from err
        raise


class NamingDiskErrors:
    """Wraps a writer object (a tensorboard ``SummaryWriter``, an MMEngine vis backend...) so that a
    storage failure in any of its methods becomes a :class:`DiskWriteError` naming the file instead
    of a bare ``[Errno 28] No space left on device`` from deep inside the library.

    ``target`` is the file, or a function of the method's name giving it (asked only once a write
    failed: a library may choose its file names on first use)."""

    def __init__(self, wrapped: object, target: str | os.PathLike | Callable[[str], str]) -> None:
        self._wrapped, self._target = wrapped, target

    def __getattr__(self, name: str):
        value = getattr(self._wrapped, name)
        if not callable(value):
            return value

        def call(*args, **kwargs):
            try:
                return value(*args, **kwargs)
            except Exception as err:
                if not is_disk_error(err):
                    raise
                target = self._target(name) if callable(self._target) else self._target
                raise as_disk_write_error(target, err) from err

        return call

    def __bool__(self) -> bool:
        return bool(self._wrapped)


def tensorboard_event_file(writer: object) -> str:
    """The event file a tensorboard ``SummaryWriter`` appends to (its folder where the library
    hides the name)."""
    event_writer = getattr(getattr(writer, 'file_writer', None), 'event_writer', None)
    return getattr(event_writer, '_file_name', None) or writer.get_logdir()


def tensorboard_file_in(folder: str | os.PathLike) -> str:
    """The event file this process is writing in ``folder``, else the folder: for a tensorboard
    writer that failed while being created (the file name holds our pid)."""
    pattern = os.path.join(glob.escape(os.fspath(folder)), f'events.out.tfevents.*.{os.getpid()}.*')
    mine = glob.glob(pattern)
    return max(mine, key=os.path.getmtime) if mine else os.fspath(folder)


def raise_disk_errors_of(handler: logging.Handler) -> None:
    """Make a log file handler stop the program with a :class:`DiskWriteError` naming its file
    when the disk refuses a record. ``logging`` would print a traceback for every record that
    cannot be written and go on, burying the one line that says what is wrong; other failures
    keep logging's own handling."""
    report = handler.handleError
    if getattr(report, 'raises_disk_errors', False):
        return
    target = getattr(handler, 'baseFilename', None) or repr(handler)

    def handle_error(record: logging.LogRecord) -> None:
        err = sys.exc_info()[1]
        if err is not None and is_disk_error(err):
            raise as_disk_write_error(target, err) from err
        report(record)

    handle_error.raises_disk_errors = True
    handler.handleError = handle_error


def quiet_writer_thread_disk_errors() -> None:
    """From now on, a library's writer thread that dies of a storage failure prints nothing.

    Tensorboard's event writer thread keeps its exception for the next call in the caller's thread
    to raise (where :class:`NamingDiskErrors` names the file), yet Python also prints the thread's
    traceback, often after the caller's error line. Only such a thread is silenced: one that stored
    the very exception it died of in ``.exception`` for another thread to raise, and only for a
    storage failure. Installed once per process and left in place (the thread may die after the
    caller has already reported the error)."""
    if getattr(threading.excepthook, 'quiets_writer_threads', False):
        return
    previous = threading.excepthook

    def hook(args) -> None:
        handed_over = args.thread is not None and getattr(args.thread, 'exception', None) is args.exc_value
        if handed_over and args.exc_value is not None and is_disk_error(args.exc_value):
            return
        previous(args)

    hook.quiets_writer_threads = True
    threading.excepthook = hook


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
