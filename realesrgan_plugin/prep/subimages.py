"""Crop large training images into overlapping sub-images (faster IO when training).

Same windows and names as the official ``scripts/extract_subimages.py`` (``{stem}_s{idx:03d}{ext}``,
row-major, the last window flush with the border when the leftover exceeds ``thresh_size``), so
the crops are byte-identical to the official ones for the images both can read. Differences,
each one deliberate:

* names are kept as they are; the official script deletes "x2", "x3", "x4", "x8" anywhere in a
  name (``box4.png`` -> ``bo_s001.png``). ``strip_scale_suffix`` removes only a DIV2K-style
  trailing scale (``0001x4.png`` -> ``0001_s001.png``).
* an image smaller than the crop size is kept whole instead of crashing the job.
* unreadable files are reported at the end instead of killing a worker.
* an existing output folder is resumed: a journal next to it (``<output>.extract_subimages.jsonl``,
  outside the folder so that scanners of the folder, such as BasicSR's folder datasets, see only
  crops) records the settings and each finished source image; re-running skips those whose crops
  are all present and refuses other settings. Crops are written atomically, so a killed job
  leaves no half-written file.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from functools import partial

from realesrgan_plugin.core.atomic import DiskWriteError, naming_disk_errors, remove_stale_temp_files
from realesrgan_plugin.core.img_io import ImageReadError, png_params, read_image, write_image
from realesrgan_plugin.core.windows import window_starts
from realesrgan_plugin.prep.batch import BatchReport, list_images, refuse_same_folder, run_pool

import numpy as np

JOURNAL_SUFFIX = '.extract_subimages.jsonl'
_SCALE_SUFFIX = re.compile(r'x(2|3|4|8)$')


@dataclass(frozen=True)
class CropSettings:
    crop_size: int = 480
    step: int = 240
    thresh_size: int = 0
    compression_level: int = 3
    strip_scale_suffix: bool = False

    def __post_init__(self) -> None:
        if self.crop_size < 1 or self.step < 1 or self.thresh_size < 0:
            raise ValueError(f'need crop_size >= 1, step >= 1, thresh_size >= 0; got {self}')
        png_params(self.compression_level)  # validates the level


def output_stem(name: str, strip_scale_suffix: bool = False) -> tuple[str, str]:
    """(stem, extension) the crops of ``name`` are named after; the extension is kept as is."""
    stem, ext = os.path.splitext(os.path.basename(name))
    if strip_scale_suffix:
        stem = _SCALE_SUFFIX.sub('', stem)
    return stem, ext


def crop_names(stem: str, ext: str, count: int) -> list[str]:
    return [f'{stem}_s{idx:03d}{ext}' for idx in range(1, count + 1)]


@dataclass
class _Result:
    name: str
    crops: int = 0
    shape: tuple[int, ...] = ()
    error: str | None = None


def crop_one(name: str, input_folder: str, save_folder: str, settings: CropSettings) -> _Result:
    """Crop one image; errors are returned (naming the file), not raised."""
    path = os.path.join(input_folder, name)
    try:
        img = read_image(path)
        s = settings
        stem, ext = output_stem(name, s.strip_scale_suffix)
        rows = window_starts(img.shape[0], s.crop_size, s.step, s.thresh_size)
        cols = window_starts(img.shape[1], s.crop_size, s.step, s.thresh_size)
        params = png_params(s.compression_level)
        names = iter(crop_names(stem, ext, len(rows) * len(cols)))
        for y in rows:
            for x in cols:
                crop = np.ascontiguousarray(img[y : y + s.crop_size, x : x + s.crop_size])
                write_image(os.path.join(save_folder, next(names)), crop, params, fsync=False)
        return _Result(name, len(rows) * len(cols), tuple(img.shape))
    except ImageReadError as err:
        return _Result(name, error=err.reason)
    except DiskWriteError:
        raise  # a full disk fails every later item too: the job stops and says so (a rerun does the rest)
    except Exception as err:  # noqa: BLE001  (reported per file at the end of the job)
        return _Result(name, error=f'{type(err).__name__}: {err}')


def journal_path(save_folder: str | os.PathLike) -> str:
    """Where the journal of an output folder lives: beside it, ``<folder>.extract_subimages.jsonl``."""
    return os.path.normpath(os.path.abspath(save_folder)) + JOURNAL_SUFFIX


class _Journal:
    """Append-only record of finished source images in the output folder. The first line holds
    the settings; a line cut short by a kill is ignored on reading."""

    def __init__(self, save_folder: str, settings: CropSettings) -> None:
        self.path = journal_path(save_folder)
        self.settings = asdict(settings)
        self.finished: dict[str, int] = {}
        if os.path.exists(self.path):
            self._load()
        else:
            with naming_disk_errors(self.path), open(self.path, 'w', encoding='utf-8') as f:
                f.write(json.dumps({'settings': self.settings}) + '\n')
        self._file = open(self.path, 'a', encoding='utf-8')  # noqa: SIM115  (closed in close())

    def _load(self) -> None:
        with open(self.path, encoding='utf-8') as f:
            lines = f.read().splitlines()
        records = []
        for line in lines:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # the last line of a killed run
        if not records or records[0].get('settings') != self.settings:
            old = records[0].get('settings') if records else None
            raise ValueError(
                f'{self.path}: the output folder was made with other settings ({old}); '
                f'now asked for {self.settings}. Use a new output folder.'
            )
        for rec in records[1:]:
            if 'source' in rec:
                self.finished[rec['source']] = rec['crops']

    def add(self, result: _Result) -> None:
        """One line per finished image, flushed at once; on a full disk an error naming the journal
        (a line cut short there is ignored on reading, and that image is redone)."""
        with naming_disk_errors(self.path):
            self._file.write(json.dumps({'source': result.name, 'crops': result.crops, 'shape': result.shape}) + '\n')
            self._file.flush()

    def close(self) -> None:
        try:
            self._file.close()
        except OSError:
            pass  # a flush that failed already raised from add()


def _find_collisions(names: list[str], strip: bool) -> dict[str, list[str]]:
    owners: dict[str, list[str]] = {}
    for name in names:
        owners.setdefault(''.join(output_stem(name, strip)), []).append(name)
    return {key: srcs for key, srcs in owners.items() if len(srcs) > 1}


def extract_subimages(
    input_folder: str | os.PathLike,
    save_folder: str | os.PathLike,
    crop_size: int = 480,
    step: int = 240,
    thresh_size: int = 0,
    n_thread: int | None = None,
    compression_level: int = 3,
    strip_scale_suffix: bool = False,
) -> BatchReport:
    """Crop every image of ``input_folder`` (not recursive) into ``save_folder``; resumable."""
    settings = CropSettings(crop_size, step, thresh_size, compression_level, strip_scale_suffix)
    input_folder, save_folder = os.fspath(input_folder), os.fspath(save_folder)
    refuse_same_folder(input_folder, save_folder)
    report = BatchReport('extract_subimages')
    names, others = list_images(input_folder)
    report.note_ignored(others)
    collisions = _find_collisions(names, strip_scale_suffix)
    for out, srcs in collisions.items():
        report.failed += [(os.path.join(input_folder, s), f'crops would share the name {out!r}') for s in srcs]
    names = [n for n in names if ''.join(output_stem(n, strip_scale_suffix)) not in collisions]

    os.makedirs(save_folder, exist_ok=True)
    removed = remove_stale_temp_files(save_folder)
    if removed:
        report.notes.append(f'removed {len(removed)} temporary file(s) left by an interrupted run')
    journal = _Journal(save_folder, settings)
    existing = {e.name for e in os.scandir(save_folder) if e.is_file() and e.stat().st_size > 0}
    todo = []
    for name in names:
        count = journal.finished.get(name)
        if count is not None and existing.issuperset(crop_names(*output_stem(name, strip_scale_suffix), count)):
            report.skipped += 1
        else:
            todo.append(name)

    small = 0
    worker = partial(crop_one, input_folder=input_folder, save_folder=save_folder, settings=settings)
    try:
        for result in run_pool(worker, todo, n_thread, desc='Extract'):
            if result.error is not None:
                report.failed.append((os.path.join(input_folder, result.name), result.error))
                continue
            journal.add(result)
            report.done += 1
            small += min(result.shape[:2]) < crop_size
    finally:
        journal.close()
    if small:
        report.notes.append(f'{small} image(s) smaller than crop_size={crop_size} on a side were kept whole')
    return report
