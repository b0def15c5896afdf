"""meta_info files and LMDB keys: the one parser shared by the prep tools and the datasets.

A meta_info file lists images one per line, either as a plain relative path or, in an LMDB
folder, as ``relpath (h,w,c) level``. Relative paths may contain spaces and dots (the official
code splits at the first space and so cannot read such names back).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

LMDB_META_LINE = re.compile(r'^(?P<relpath>.+) \((?P<h>\d+),(?P<w>\d+),(?P<c>\d+)\) (?P<level>-?\d+)$')


def lmdb_key(relpath: str) -> str:
    """The LMDB key of an image: its relative path ('/'-separated) without the last extension."""
    return os.path.splitext(relpath.replace(os.sep, '/'))[0]


@dataclass(frozen=True)
class LmdbEntry:
    """One line of an LMDB folder's ``meta_info.txt``."""

    relpath: str  # relative path of the source image, with its extension
    shape: tuple[int, int, int]  # (h, w, c); c is 1 for gray
    level: int  # PNG compression level it was re-encoded with, or -1 for the file's own bytes

    @property
    def key(self) -> str:
        return lmdb_key(self.relpath)

    def meta_line(self) -> str:
        h, w, c = self.shape
        return f'{self.relpath} ({h},{w},{c}) {self.level}'


def parse_meta_line(line: str) -> LmdbEntry:
    """Parse ``relpath (h,w,c) level``, from the right (names may contain spaces and dots)."""
    match = LMDB_META_LINE.match(line.rstrip('\r\n'))
    if not match:
        raise ValueError(f'not a meta_info line "<relpath> (h,w,c) <level>": {line.rstrip()!r}')
    return LmdbEntry(match['relpath'], (int(match['h']), int(match['w']), int(match['c'])), int(match['level']))


def read_lmdb_meta_info(path: str | os.PathLike) -> list[LmdbEntry]:
    """Entries of an LMDB folder's ``meta_info.txt`` (``path`` is the folder or that file)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, 'meta_info.txt')
    with open(path, encoding='utf-8') as f:
        return [parse_meta_line(line) for line in f if line.strip()]


def relpaths_from_meta_info(path: str | os.PathLike) -> list[str]:
    """Image paths listed in a meta-info file: plain ``relpath`` lines (``generate_meta_info``) or
    LMDB ``relpath (h,w,c) level`` lines. Pair files (``gt, lq``) are refused, and so is a file
    that cannot be read or lists no image (errors name the file)."""
    try:
        with open(path, encoding='utf-8') as f:
            lines = f.readlines()
    except OSError as err:
        raise FileNotFoundError(f'Cannot read meta_info file {os.fspath(path)!r}: {err.strerror or err}') from err
    out = []
    for number, line in enumerate(lines, 1):
        line = line.rstrip('\r\n')
        if not line.strip():
            continue
        match = LMDB_META_LINE.match(line)
        if match:
            out.append(match['relpath'])
        elif ', ' in line:
            raise ValueError(f'{path}:{number}: looks like a GT/LQ pair line; make one LMDB per side: {line!r}')
        else:
            out.append(line.strip())
    if not out:
        raise ValueError(f'meta_info file {os.fspath(path)!r} lists no images')
    return out
