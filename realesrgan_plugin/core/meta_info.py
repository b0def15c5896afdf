"""meta_info files and LMDB keys: the one parser shared by the prep tools and the datasets.

A meta_info file lists images one per line, either as a plain relative path or, in an LMDB
folder, as ``relpath (h,w,c) level``. Relative paths may contain spaces and dots (the official
code splits at the first space and so cannot read such names back).
"""

from __future__ import annotations

import os
import re

LMDB_META_LINE = re.compile(r'^(?P<relpath>.+) \((?P<h>\d+),(?P<w>\d+),(?P<c>\d+)\) (?P<level>-?\d+)$')


def lmdb_key(relpath: str) -> str:
    """The LMDB key of an image: its relative path ('/'-separated) without the last extension."""
    return os.path.splitext(relpath.replace(os.sep, '/'))[0]


def relpaths_from_meta_info(path: str | os.PathLike) -> list[str]:
    """Image paths listed in a meta-info file: plain ``relpath`` lines (``generate_meta_info``) or
    LMDB ``relpath (h,w,c) level`` lines. Pair files (``gt, lq``) are refused."""
    out = []
    with open(path, encoding='utf-8') as f:
        for number, line in enumerate(f, 1):
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
    return out
