"""``atomic_local``: MMEngine's local file backend, but every write goes to a temporary file that is
renamed into place, so a run killed while saving never leaves a truncated checkpoint or a
``last_checkpoint`` pointing at one (``--resume`` then always finds a whole file)."""

from __future__ import annotations

from pathlib import Path

from realesrgan_plugin.core.atomic import write_bytes_atomic

from mmengine.fileio import LocalBackend, register_backend


class AtomicLocalBackend(LocalBackend):
    def put(self, obj: bytes, filepath: str | Path) -> None:
        write_bytes_atomic(filepath, obj)

    def put_text(self, obj: str, filepath: str | Path, encoding: str = 'utf-8') -> None:
        write_bytes_atomic(filepath, obj.encode(encoding))


register_backend('atomic_local', AtomicLocalBackend, force=True)
