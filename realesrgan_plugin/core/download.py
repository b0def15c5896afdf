"""The one way the plugin fetches and trusts a weights file: sha256-verified, atomic, stamped.

Downloads go through ``torch.hub.download_url_to_file`` (a temporary file beside the target,
sha256 checked, then renamed; progress bar on stderr): a killed or corrupt download never leaves
a file under the target's name. A file verified against a full sha256 gets a stamp beside it,
``<file>.sha256`` holding ``<digest> <size> <mtime_ns>``: later uses trust the file while its
size and mtime are unchanged and re-hash it (once) when they change.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from realesrgan_plugin.core.atomic import write_bytes_atomic

STAMP_SUFFIX = '.sha256'


class DownloadError(RuntimeError):
    """A file could not be fetched, or what came was not the expected file."""


class ChecksumMismatchError(RuntimeError):
    """A file on disk is not the file its sha256 says it should be; ``path`` names it."""

    def __init__(self, path: Path, got: str, expected: str) -> None:
        self.path = path
        super().__init__(f'{path}: sha256 {got} is not the expected {expected} (changed or corrupt file)')


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def stamp_path(path: Path) -> Path:
    return path.with_name(path.name + STAMP_SUFFIX)


def _file_signature(path: Path) -> str:
    st = path.stat()
    return f'{st.st_size} {st.st_mtime_ns}'


def _write_stamp(path: Path, digest: str) -> None:
    write_bytes_atomic(stamp_path(path), f'{digest} {_file_signature(path)}\n'.encode(), fsync=False)


def _stamp_vouches_for(path: Path, sha256: str) -> bool:
    try:
        return stamp_path(path).read_text().split() == [sha256, *_file_signature(path).split()]
    except OSError:
        return False


def verify_file(path: str | os.PathLike, sha256: str | None) -> Path:
    """Return ``path`` if it holds the file of digest ``sha256`` (None: any file is accepted).

    Hashes the file only when its stamp does not vouch for it (first use, or size/mtime changed),
    then stamps it. Raises :class:`ChecksumMismatchError` naming the file when it does not match."""
    path = Path(path)
    if sha256 is None or _stamp_vouches_for(path, sha256):
        return path
    got = sha256_of(path)
    if got != sha256:
        stamp_path(path).unlink(missing_ok=True)
        raise ChecksumMismatchError(path, got, sha256)
    _write_stamp(path, got)
    return path


def download_file(url: str, target: str | os.PathLike, sha256: str | None = None, progress: bool = True) -> Path:
    """Fetch ``url`` into ``target`` atomically, replacing any file there; return ``target``.

    ``sha256``: the full digest (the file is then stamped, see :func:`verify_file`) or a prefix of
    it (as torchvision's file names carry). Raises :class:`DownloadError` naming the URL and target
    when the fetch fails or the digest does not match; nothing is left under ``target`` then."""
    import torch.hub  # here: importing this module must stay cheap

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(url, os.fspath(target), hash_prefix=sha256, progress=progress)
    except Exception as err:  # URLError, socket errors, HTTP errors, torch's hash mismatch RuntimeError
        raise DownloadError(f'Cannot download {url} into {target}: {err}') from err
    if sha256 is not None and len(sha256) == 64:
        _write_stamp(target, sha256)
    else:
        stamp_path(target).unlink(missing_ok=True)
    return target
