"""Read-only LMDB environments shared within a process.

lmdb refuses to open one path twice in a process (train and val datasets on one LMDB, a
verify pass after a dataset...), and an environment must not cross a fork (DataLoader
workers). So there is one environment per (process, path), opened on first use.
"""

from __future__ import annotations

import os

import lmdb

_ENVS: dict[tuple[int, str], lmdb.Environment] = {}


def readonly_env(path: str | os.PathLike) -> lmdb.Environment:
    """This process's read-only environment for the LMDB folder ``path``."""
    key = (os.getpid(), os.path.abspath(path))
    if key not in _ENVS:
        _ENVS[key] = lmdb.open(key[1], readonly=True, lock=False, readahead=False, meminit=False)
    return _ENVS[key]


def close_readonly_env(path: str | os.PathLike) -> None:
    """Close this process's environment for ``path`` (so a writer may open it again)."""
    env = _ENVS.pop((os.getpid(), os.path.abspath(path)), None)
    if env is not None:
        env.close()
