"""Meta-info files: the list of training images (``meta_info``) and of GT/LQ pairs.

``meta_info`` lines are paths relative to a root folder, one per line (what the official
``RealESRGANDataset`` reads with ``dataroot_gt``). Pair files hold ``gt_relpath, lq_relpath``
lines (``RealESRGANPairedDataset``). Unlike the official scripts, pairs are matched by name,
not by sort order, and what does not match is reported instead of mispaired.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from realesrgan_plugin.core.atomic import write_bytes_atomic
from realesrgan_plugin.core.img_io import ImageReadError, read_image
from realesrgan_plugin.prep.batch import BatchReport, list_images, run_pool

PAIR_SEPARATOR = ', '
# A DIV2K scale suffix at the end of a name, or before the ``_sNNN`` index extract_subimages adds.
_SCALE_SUFFIX = re.compile(r'x(2|3|4|8)(?=(_s\d{3,})?$)')


def _shape_or_error(path: str) -> tuple[str, tuple[int, ...] | None, str | None]:
    try:
        return path, tuple(read_image(path).shape), None
    except ImageReadError as err:
        return path, None, err.reason


def check_images(paths: Sequence[str], n_thread: int | None, desc: str = 'Check') -> dict[str, tuple | str]:
    """Decode every file: path -> its shape, or the reason it cannot be read."""
    out: dict[str, tuple | str] = {}
    for path, shape, error in run_pool(_shape_or_error, paths, n_thread, desc=desc, chunksize=4):
        out[path] = shape if error is None else error
    return out


def _write_lines(meta_info: str | os.PathLike, lines: Sequence[str]) -> None:
    write_bytes_atomic(meta_info, ''.join(line + '\n' for line in lines).encode('utf-8'))


def _relative_to_root(folder: str, rel: str, root: str) -> str:
    return os.path.relpath(os.path.join(folder, rel), root).replace(os.sep, '/')


def generate_meta_info(
    folders: Sequence[str | os.PathLike],
    meta_info: str | os.PathLike,
    roots: Sequence[str | os.PathLike] | None = None,
    check: bool = False,
    recursive: bool = False,
    n_thread: int | None = None,
) -> BatchReport:
    """Write one path per image of ``folders``, relative to the matching root (default: each
    folder's parent, so lines read ``DF2K_HR/0001.png``). With ``check``, every image is decoded
    and unreadable ones are left out and reported."""
    roots = [os.path.dirname(os.path.abspath(f)) for f in folders] if roots is None else list(roots)
    if len(roots) != len(folders):
        raise ValueError(f'got {len(folders)} folder(s) but {len(roots)} root(s); give one root per folder')
    report = BatchReport('generate_meta_info')
    entries: list[tuple[str, str]] = []  # (full path, line)
    for folder, root in zip(folders, roots):
        folder, root = os.fspath(folder), os.fspath(root)
        images, others = list_images(folder, recursive)
        report.note_ignored(others, where=f'{folder}: ')
        entries += [(os.path.join(folder, rel), _relative_to_root(folder, rel, root)) for rel in images]
    if check:
        status = check_images([path for path, _ in entries], n_thread)
        report.failed += [(path, status[path]) for path, _ in entries if isinstance(status[path], str)]
        entries = [(path, line) for path, line in entries if not isinstance(status[path], str)]
    _write_lines(meta_info, [line for _, line in entries])
    report.done = len(entries)
    return report


def pair_key(relpath: str, strip_scale_suffix: bool = False) -> str:
    """Name a GT and an LQ file are matched by: the relative path without its last extension
    (``a.b.png`` -> ``a.b``), optionally without a DIV2K scale suffix (``0001x4`` -> ``0001``, and
    ``0001x4_s001`` -> ``0001_s001`` for sub-images cropped without ``--strip-scale-suffix``)."""
    stem = os.path.splitext(relpath.replace(os.sep, '/'))[0]
    return _SCALE_SUFFIX.sub('', stem) if strip_scale_suffix else stem


@dataclass
class Pairing:
    pairs: list[tuple[str, str]]  # (gt relpath, lq relpath), sorted by GT
    unmatched_gt: list[str]
    unmatched_lq: list[str]
    ambiguous: list[tuple[str, list[str]]]  # (key, the relpaths sharing it on one side)


def _index(relpaths: Sequence[str], strip: bool) -> tuple[dict[str, str], list[tuple[str, list[str]]]]:
    groups: dict[str, list[str]] = {}
    for rel in relpaths:
        groups.setdefault(pair_key(rel, strip), []).append(rel)
    unique = {key: rels[0] for key, rels in groups.items() if len(rels) == 1}
    return unique, [(key, rels) for key, rels in groups.items() if len(rels) > 1]


def pair_by_name(gt_relpaths: Sequence[str], lq_relpaths: Sequence[str], strip_scale_suffix: bool = False) -> Pairing:
    """Match GT and LQ files by :func:`pair_key`. A key held by two files on one side (``a.png``
    and ``a.jpg``) is ambiguous and pairs with nothing."""
    gt, gt_amb = _index(gt_relpaths, strip_scale_suffix)
    lq, lq_amb = _index(lq_relpaths, strip_scale_suffix)
    pairs = sorted((gt[key], lq[key]) for key in gt.keys() & lq.keys())
    return Pairing(
        pairs=pairs,
        unmatched_gt=sorted(gt[key] for key in gt.keys() - lq.keys()),
        unmatched_lq=sorted(lq[key] for key in lq.keys() - gt.keys()),
        ambiguous=gt_amb + lq_amb,
    )


def generate_meta_info_pairdata(
    gt_folder: str | os.PathLike,
    lq_folder: str | os.PathLike,
    meta_info: str | os.PathLike,
    gt_root: str | os.PathLike | None = None,
    lq_root: str | os.PathLike | None = None,
    strip_scale_suffix: bool = False,
    check: bool = False,
    scale: int | None = None,
    recursive: bool = False,
    n_thread: int | None = None,
) -> BatchReport:
    """Write ``gt, lq`` lines for the GT/LQ images matched by name; roots default to each
    folder's parent. Unmatched and ambiguous files are reported (non-zero exit) and left out.
    With ``check``, both images of each pair are decoded; with ``scale`` too, the GT size must be
    ``scale`` times the LQ size."""
    gt_folder, lq_folder = os.fspath(gt_folder), os.fspath(lq_folder)
    gt_root = os.fspath(gt_root) if gt_root else os.path.dirname(os.path.abspath(gt_folder))
    lq_root = os.fspath(lq_root) if lq_root else os.path.dirname(os.path.abspath(lq_folder))
    report = BatchReport('generate_meta_info_pairdata')
    gt_images, _ = list_images(gt_folder, recursive)
    lq_images, _ = list_images(lq_folder, recursive)
    pairing = pair_by_name(gt_images, lq_images, strip_scale_suffix)
    report.failed += [(os.path.join(gt_folder, rel), 'no LQ image with the same name') for rel in pairing.unmatched_gt]
    report.failed += [(os.path.join(lq_folder, rel), 'no GT image with the same name') for rel in pairing.unmatched_lq]
    for key, rels in pairing.ambiguous:
        report.failed.append((key, f'several files share this name: {rels}'))

    lines = []
    pairs = pairing.pairs
    if check:
        status = check_images(
            [os.path.join(gt_folder, g) for g, _ in pairs] + [os.path.join(lq_folder, q) for _, q in pairs], n_thread
        )
    for gt_rel, lq_rel in pairs:
        gt_path, lq_path = os.path.join(gt_folder, gt_rel), os.path.join(lq_folder, lq_rel)
        gt_line, lq_line = _relative_to_root(gt_folder, gt_rel, gt_root), _relative_to_root(lq_folder, lq_rel, lq_root)
        if ',' in gt_line or ',' in lq_line:  # readers split pair lines at the comma
            report.failed.append((gt_path, "a name containing ',' cannot be written in a pair file"))
            continue
        if check:
            gt_shape, lq_shape = status[gt_path], status[lq_path]
            bad = [(p, s) for p, s in ((gt_path, gt_shape), (lq_path, lq_shape)) if isinstance(s, str)]
            if bad:
                report.failed += bad
                continue
            if scale is not None and (gt_shape[0], gt_shape[1]) != (lq_shape[0] * scale, lq_shape[1] * scale):
                report.failed.append(
                    (gt_path, f'size {gt_shape[:2]} is not {scale} x the LQ size {lq_shape[:2]} of {lq_path}')
                )
                continue
        lines.append(f'{gt_line}{PAIR_SEPARATOR}{lq_line}')
    _write_lines(meta_info, lines)
    report.done = len(lines)
    if pairing.unmatched_gt or pairing.unmatched_lq:
        report.notes.append(
            f'{len(pairing.unmatched_gt)} GT and {len(pairing.unmatched_lq)} LQ file(s) had no partner'
            + ('' if strip_scale_suffix else ' (DIV2K-style "0001x4" LQ names need --strip-scale-suffix)')
        )
    return report
