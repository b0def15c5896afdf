"""Multiscale ground truth for DF2K, the official recipe: each image resized by 0.75, 0.5 and 1/3
and once more so that its shortest edge is 400 px, with Lanczos, saved as ``{stem}T0.png`` ..
``{stem}T3.png``.

Sizes truncate like the official script (``int(w * scale)``), and 8-bit images are resized by
Pillow's LANCZOS exactly as the official script does (alpha premultiplied, as Pillow does for
RGBA), so its outputs are pixel-identical. Unlike it, images are read with the training loader
(16-bit stays 16-bit: resized per channel in float by the same Pillow filter, then rounded),
finished images are skipped on a re-run, and unreadable files are reported instead of ending
the job.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import partial

from realesrgan_plugin.core.atomic import DiskWriteError, remove_stale_temp_files
from realesrgan_plugin.core.img_io import ImageReadError, png_params, read_image, write_image
from realesrgan_plugin.prep.batch import BatchReport, list_images, refuse_same_folder, run_pool

import cv2
import numpy as np
from PIL import Image

SCALES = (0.75, 0.5, 1 / 3)
SHORTEST_EDGE = 400


def multiscale_sizes(
    width: int, height: int, scales: tuple[float, ...] = SCALES, shortest_edge: int = SHORTEST_EDGE
) -> list[tuple[int, int]]:
    """(width, height) of each output, in output order T0, T1, ..."""
    sizes = [(int(width * s), int(height * s)) for s in scales]
    if width < height:
        sizes.append((shortest_edge, int(shortest_edge * (height / width))))
    else:
        sizes.append((int(shortest_edge * (width / height)), shortest_edge))
    return sizes


def output_names(name: str, count: int = len(SCALES) + 1) -> list[str]:
    stem = os.path.splitext(os.path.basename(name))[0]
    return [f'{stem}T{idx}.png' for idx in range(count)]


def _resize_float_channels(channels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """HxWxC float32 -> size, each channel by Pillow's LANCZOS in mode 'F'."""
    return np.stack(
        [
            np.asarray(Image.fromarray(np.ascontiguousarray(channels[..., c])).resize(size, Image.Resampling.LANCZOS))
            for c in range(channels.shape[2])
        ],
        axis=2,
    )


def _resize_uint16(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    planes = img.astype(np.float32)[..., None] if img.ndim == 2 else img.astype(np.float32)
    if planes.shape[2] == 4:  # premultiply like Pillow does for 8-bit RGBA
        alpha = planes[..., 3:] / 65535
        planes = np.concatenate([planes[..., :3] * alpha, planes[..., 3:]], axis=2)
        out = _resize_float_channels(planes, size)
        new_alpha = np.clip(out[..., 3:], 0, 65535) / 65535
        out[..., :3] = np.where(new_alpha > 0, out[..., :3] / np.maximum(new_alpha, 1e-12), 0)
    else:
        out = _resize_float_channels(planes, size)
    out = np.clip(np.rint(out), 0, 65535).astype(np.uint16)
    return out[..., 0] if img.ndim == 2 else out


def resize_lanczos(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a loader image (HxW, HxWx3 BGR or HxWx4 BGRA; uint8 or uint16) to ``size`` =
    (width, height) with Pillow's LANCZOS; layout and dtype are kept."""
    if min(size) < 1:
        raise ValueError(f'target size {size} is empty (image {img.shape[1]}x{img.shape[0]} too small)')
    if img.dtype == np.uint16:
        return _resize_uint16(img, size)
    if img.ndim == 2:
        return np.asarray(Image.fromarray(img).resize(size, Image.Resampling.LANCZOS))
    to_rgb, from_rgb = (
        (cv2.COLOR_BGR2RGB, cv2.COLOR_RGB2BGR) if img.shape[2] == 3 else (cv2.COLOR_BGRA2RGBA, cv2.COLOR_RGBA2BGRA)
    )
    pil = Image.fromarray(cv2.cvtColor(img, to_rgb))
    return cv2.cvtColor(np.asarray(pil.resize(size, Image.Resampling.LANCZOS)), from_rgb)


@dataclass
class _Result:
    name: str
    error: str | None = None


def multiscale_one(name: str, input_folder: str, save_folder: str, compression_level: int) -> _Result:
    try:
        img = read_image(os.path.join(input_folder, name))
        sizes = multiscale_sizes(img.shape[1], img.shape[0])
        resized = [resize_lanczos(img, size) for size in sizes]  # all before any write: no partial set
        for out_name, out in zip(output_names(name, len(sizes)), resized):
            write_image(os.path.join(save_folder, out_name), out, png_params(compression_level), fsync=False)
        return _Result(name)
    except ImageReadError as err:
        return _Result(name, err.reason)
    except DiskWriteError:
        raise  # a full disk fails every later item too: the job stops and says so (a rerun does the rest)
    except Exception as err:  # noqa: BLE001  (reported per file at the end of the job)
        return _Result(name, f'{type(err).__name__}: {err}')


def generate_multiscale(
    input_folder: str | os.PathLike,
    save_folder: str | os.PathLike,
    n_thread: int | None = None,
    compression_level: int = 3,
) -> BatchReport:
    """Write the four multiscale versions of every image of ``input_folder``; images whose four
    outputs already exist are skipped (outputs are written atomically)."""
    input_folder, save_folder = os.fspath(input_folder), os.fspath(save_folder)
    png_params(compression_level)
    refuse_same_folder(input_folder, save_folder)
    report = BatchReport('generate_multiscale_df2k')
    names, others = list_images(input_folder)
    report.note_ignored(others)
    owners: dict[str, list[str]] = {}
    for name in names:
        owners.setdefault(output_names(name, 1)[0], []).append(name)
    for srcs in owners.values():
        if len(srcs) > 1:
            report.failed += [(os.path.join(input_folder, s), f'outputs would share names with {srcs}') for s in srcs]
    names = [n for n in names if len(owners[output_names(n, 1)[0]]) == 1]

    os.makedirs(save_folder, exist_ok=True)
    remove_stale_temp_files(save_folder)
    existing = {e.name for e in os.scandir(save_folder) if e.is_file() and e.stat().st_size > 0}
    todo = [n for n in names if not existing.issuperset(output_names(n))]
    report.skipped = len(names) - len(todo)
    worker = partial(
        multiscale_one, input_folder=input_folder, save_folder=save_folder, compression_level=compression_level
    )
    for result in run_pool(worker, todo, n_thread, desc='Multiscale'):
        if result.error is None:
            report.done += 1
        else:
            report.failed.append((os.path.join(input_folder, result.name), result.error))
    return report
