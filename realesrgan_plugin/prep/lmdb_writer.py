"""LMDB of training images, in the layout BasicSR reads (see DEVELOPERS.md, "LMDB layout").

``X.lmdb/`` holds ``data.mdb``, ``lock.mdb`` and ``meta_info.txt`` with one line per image,
``<relpath> (h,w,c) <level>``. The key is the relative path without its LAST extension
(``a.b.c.png`` -> ``a.b.c``), the value the encoded image. By default the file's own bytes are
stored (lossless, no re-encoding; ``level`` is then ``-1``); with ``compress_level`` every image is
re-encoded as PNG at that level, as BasicSR's own ``make_lmdb_from_imgs`` does.

The job is resumable: entries are committed in batches and each committed batch is appended to
``meta_info.txt.partial``; ``meta_info.txt`` is written last (atomically), so its presence marks
a finished database. The map grows whenever it is full.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial

from realesrgan_plugin.core.atomic import naming_disk_errors, write_bytes_atomic
from realesrgan_plugin.core.img_io import (
    ImageReadError,
    decode_image,
    encode_image,
    png_params,
    read_image,
)
from realesrgan_plugin.core.lmdb_env import close_readonly_env, readonly_env
from realesrgan_plugin.core.meta_info import (
    LmdbEntry,
    lmdb_key,
    parse_meta_line,
    read_lmdb_meta_info,
    relpaths_from_meta_info,
)
from realesrgan_plugin.prep.batch import BatchReport, list_images, run_pool

import lmdb

META_INFO = 'meta_info.txt'
PARTIAL_META_INFO = META_INFO + '.partial'
RAW_LEVEL = -1  # meta_info level of an entry holding the source file's bytes as they are


@dataclass
class _Encoded:
    relpath: str
    value: bytes = b''
    shape: tuple[int, int, int] = (0, 0, 0)
    error: str | None = None


def _shape3(shape: tuple[int, ...]) -> tuple[int, int, int]:
    return (shape[0], shape[1], shape[2] if len(shape) == 3 else 1)


def encode_entry(relpath: str, root: str, compress_level: int | None) -> _Encoded:
    """Read one file and return the bytes to store (checked by decoding them)."""
    path = os.path.join(root, relpath)
    try:
        with open(path, 'rb') as f:
            data = f.read()
        img = decode_image(data, path)
        if compress_level is not None:
            data = encode_image(img, '.png', png_params(compress_level))
        return _Encoded(relpath, data, _shape3(img.shape))
    except ImageReadError as err:
        return _Encoded(relpath, error=err.reason)
    except OSError as err:
        return _Encoded(relpath, error=err.strerror or str(err))


class _Writer:
    """Batched puts into an LMDB environment that doubles its map size whenever it is full.

    Entries reach the partial meta_info (the record of what is done) only after their
    transaction committed. A full disk or I/O error raises one DiskWriteError naming the file
    and drops the pending batch: a rerun after freeing space writes only what is not recorded."""

    def __init__(self, lmdb_path: str, map_size: int) -> None:
        close_readonly_env(lmdb_path)  # a reader of this path in our process would block the open
        self.data_path = os.path.join(lmdb_path, 'data.mdb')
        self.partial_path = os.path.join(lmdb_path, PARTIAL_META_INFO)
        with naming_disk_errors(self.data_path):
            self.env = lmdb.open(lmdb_path, map_size=map_size, readahead=False, meminit=False)
        self.partial = open(self.partial_path, 'a', encoding='utf-8')  # noqa: SIM115
        self.pending: list[tuple[LmdbEntry, bytes]] = []
        self.pending_bytes = 0

    def add(self, entry: LmdbEntry, value: bytes, batch: int, batch_bytes: int) -> None:
        self.pending.append((entry, value))
        self.pending_bytes += len(value)
        if len(self.pending) >= batch or self.pending_bytes >= batch_bytes:
            self.commit()

    def commit(self) -> None:
        if not self.pending:
            return
        pending, self.pending, self.pending_bytes = self.pending, [], 0
        with naming_disk_errors(self.data_path):
            while True:
                try:
                    with self.env.begin(write=True) as txn:
                        for entry, value in pending:
                            txn.put(entry.key.encode('utf-8'), value)
                    break
                except lmdb.MapFullError:
                    self.env.set_mapsize(self.env.info()['map_size'] * 2)
        with naming_disk_errors(self.partial_path):
            self.partial.write(''.join(entry.meta_line() + '\n' for entry, _ in pending))
            self.partial.flush()

    def delete(self, keys: Sequence[str]) -> None:
        with self.env.begin(write=True) as txn:
            for key in keys:
                txn.delete(key.encode('utf-8'))

    def close(self) -> None:
        try:
            self.commit()
            with naming_disk_errors(self.data_path):
                self.env.sync()
        finally:
            self.env.close()
            try:
                self.partial.close()
            except OSError:
                pass  # its last flush failed and raised already


def _read_partial(lmdb_path: str) -> dict[str, LmdbEntry]:
    path = os.path.join(lmdb_path, PARTIAL_META_INFO)
    done: dict[str, LmdbEntry] = {}
    if os.path.exists(path):
        with open(path, encoding='utf-8') as f:
            for line in f:
                try:
                    entry = parse_meta_line(line)
                except ValueError:
                    continue  # a line cut short by a kill
                done[entry.relpath] = entry
    return done


def create_lmdb(
    input_folder: str | os.PathLike,
    lmdb_path: str | os.PathLike,
    meta_info: str | os.PathLike | None = None,
    compress_level: int | None = None,
    n_thread: int | None = None,
    recursive: bool = False,
    verify: bool = False,
    overwrite: bool = False,
    batch: int = 1000,
    batch_bytes: int = 256 << 20,
    initial_map_size: int | None = None,
) -> BatchReport:
    """Pack the images of ``input_folder`` (or those listed in ``meta_info``, relative to it) into
    ``lmdb_path``. Unreadable files are reported and left out; an interrupted run resumes. The
    map starts at ``initial_map_size`` (default: twice the source bytes) and doubles when full."""
    input_folder, lmdb_path = os.fspath(input_folder), os.fspath(lmdb_path)
    if not lmdb_path.endswith('.lmdb'):
        raise ValueError(f'LMDB path must end with .lmdb (BasicSR checks it): {lmdb_path!r}')
    if compress_level is not None:
        png_params(compress_level)
    report = BatchReport('create_lmdb')
    if meta_info is not None:
        relpaths = sorted(set(relpaths_from_meta_info(meta_info)))
    else:
        relpaths, others = list_images(input_folder, recursive)
        report.note_ignored(others)
    relpaths = [p.replace(os.sep, '/') for p in relpaths]

    by_key: dict[str, list[str]] = {}
    for rel in relpaths:
        by_key.setdefault(lmdb_key(rel), []).append(rel)
    for key, rels in by_key.items():
        if len(rels) > 1:
            report.failed += [(os.path.join(input_folder, r), f'shares the LMDB key {key!r} with {rels}') for r in rels]
    relpaths = [r for r in relpaths if len(by_key[lmdb_key(r)]) == 1]
    non_ascii = [r for r in relpaths if not lmdb_key(r).isascii()]
    if non_ascii:
        report.notes.append(
            f"{len(non_ascii)} key(s) are not ASCII, which BasicSR's FileClient cannot look up "
            f'(the plugin can), e.g. {lmdb_key(non_ascii[0])!r}'
        )

    final_meta = os.path.join(lmdb_path, META_INFO)
    if os.path.exists(final_meta) and overwrite:
        if not os.path.exists(os.path.join(lmdb_path, 'data.mdb')):
            raise ValueError(f'{lmdb_path!r} does not look like an LMDB folder; not deleting it')
        shutil.rmtree(lmdb_path)
    if os.path.exists(final_meta):
        report.skipped = len(relpaths)
        report.notes.append(f'{lmdb_path} is complete already (remove it or pass overwrite to rebuild)')
        if verify:
            _merge(report, verify_lmdb(lmdb_path, input_folder))
        return report

    os.makedirs(lmdb_path, exist_ok=True)
    level = RAW_LEVEL if compress_level is None else compress_level
    previous = _read_partial(lmdb_path)
    done = {rel: e for rel, e in previous.items() if e.level == level}
    todo = [r for r in relpaths if r not in done]
    report.skipped = len(relpaths) - len(todo)
    source_bytes = sum(
        os.path.getsize(os.path.join(input_folder, r)) for r in todo if os.path.isfile(os.path.join(input_folder, r))
    )
    if initial_map_size is None:
        initial_map_size = max(64 << 20, 2 * source_bytes)
    writer = _Writer(lmdb_path, map_size=initial_map_size)
    worker = partial(encode_entry, root=input_folder, compress_level=compress_level)
    try:
        for item in run_pool(worker, todo, n_thread, desc='LMDB', chunksize=4):
            if item.error is not None:
                report.failed.append((os.path.join(input_folder, item.relpath), item.error))
                continue
            entry = LmdbEntry(item.relpath, item.shape, level)
            writer.add(entry, item.value, batch, batch_bytes)
            done[item.relpath] = entry
            report.done += 1
        wanted = set(relpaths)
        writer.commit()
        writer.delete([lmdb_key(rel) for rel in previous.keys() - wanted])  # an interrupted run had another list
    except BaseException:
        writer.pending = []  # not recorded as done: a rerun writes them
        writer.close()
        raise
    writer.close()

    lines = [done[r].meta_line() + '\n' for r in sorted(done, key=lmdb_key) if r in wanted]
    write_bytes_atomic(final_meta, ''.join(lines).encode('utf-8'))
    os.unlink(os.path.join(lmdb_path, PARTIAL_META_INFO))
    if verify:
        _merge(report, verify_lmdb(lmdb_path, input_folder))
    return report


def _merge(report: BatchReport, other: BatchReport) -> None:
    report.failed += other.failed
    report.notes += [f'verify: {n}' for n in other.notes] + [f'verify: {other.done} entries decoded and checked']


def verify_entry(entry: LmdbEntry, lmdb_path: str, source_folder: str | None) -> tuple[str, str | None]:
    """Check one entry: present, decodable, of the recorded shape, and equal to its source
    (same bytes when stored raw, same pixels when re-encoded)."""
    with readonly_env(lmdb_path).begin() as txn:
        value = txn.get(entry.key.encode('utf-8'))
    if value is None:
        return entry.relpath, f'key {entry.key!r} is missing from the database'
    try:
        img = decode_image(bytes(value), f'{lmdb_path}[{entry.key}]')
    except ImageReadError as err:
        return entry.relpath, err.reason
    if _shape3(img.shape) != entry.shape:
        return entry.relpath, f'stored image has shape {_shape3(img.shape)}, meta_info says {entry.shape}'
    if source_folder is not None:
        source = os.path.join(source_folder, entry.relpath)
        try:
            if entry.level == RAW_LEVEL:
                with open(source, 'rb') as f:
                    same = f.read() == bytes(value)
            else:
                src = read_image(source)
                same = src.shape == img.shape and bool((src == img).all())
        except (OSError, ImageReadError) as err:
            return entry.relpath, f'cannot compare with the source {source!r}: {err}'
        if not same:
            return entry.relpath, f'differs from its source {source!r}'
    return entry.relpath, None


def verify_lmdb(
    lmdb_path: str | os.PathLike, source_folder: str | os.PathLike | None = None, n_thread: int | None = None
) -> BatchReport:
    """Decode every entry listed in ``meta_info.txt`` and check it (see :func:`verify_entry`); also
    checks that the database holds no entry the meta-info does not list."""
    lmdb_path = os.fspath(lmdb_path)
    report = BatchReport('verify_lmdb')
    entries = read_lmdb_meta_info(lmdb_path)
    with lmdb.open(lmdb_path, readonly=True, lock=False) as env:
        stored = env.stat()['entries']
    if stored != len(entries):
        report.failed.append((lmdb_path, f'database holds {stored} entries, meta_info.txt lists {len(entries)}'))
    worker = partial(
        verify_entry, lmdb_path=lmdb_path, source_folder=None if source_folder is None else os.fspath(source_folder)
    )
    try:
        for relpath, error in run_pool(worker, entries, n_thread, desc='Verify', chunksize=8):
            if error is None:
                report.done += 1
            else:
                report.failed.append((f'{lmdb_path}: {relpath}', error))
    finally:
        close_readonly_env(lmdb_path)  # with n_thread=1 the entries were read here: let others open it again
    return report


def read_lmdb_images(lmdb_path: str | os.PathLike, keys: Iterable[str] | None = None) -> Sequence[tuple[str, object]]:
    """(key, decoded image) for ``keys`` (default: all, in meta_info order); a convenience for
    inspection and tests, not for training loops."""
    lmdb_path = os.fspath(lmdb_path)
    keys = [e.key for e in read_lmdb_meta_info(lmdb_path)] if keys is None else list(keys)
    out = []
    with lmdb.open(lmdb_path, readonly=True, lock=False) as env, env.begin() as txn:
        for key in keys:
            value = txn.get(key.encode('utf-8'))
            if value is None:
                raise KeyError(f'{lmdb_path}: no entry with key {key!r}')
            out.append((key, decode_image(bytes(value), f'{lmdb_path}[{key}]')))
    return out
