"""What every preparation job shares: listing a folder's images, running a function over them in
a process pool with a progress bar, and a report that keeps going past bad files.

A bad file never stops a job: its error is collected, the good files are processed, and the
report (printed at the end) turns into a non-zero exit code for the command line.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing import Pool
from typing import TextIO, TypeVar

from realesrgan_plugin.core.cli_errors import UsageError, quiet_opencv, run_cli
from realesrgan_plugin.core.img_io import is_image_file

from tqdm import tqdm

T = TypeVar('T')
R = TypeVar('R')


@dataclass
class BatchReport:
    """Outcome of a batch job. ``failed`` holds ``(path, reason)`` pairs."""

    task: str
    done: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def summary(self) -> str:
        lines = [f'{self.task}: {self.done} done, {self.skipped} skipped (already done), {len(self.failed)} failed']
        lines += [f'  note: {note}' for note in self.notes]
        if self.failed:
            lines.append(f'{len(self.failed)} file(s) could not be processed:')
            lines += [f'  {path}: {reason}' for path, reason in self.failed]
        return '\n'.join(lines)

    def print(self, stream: TextIO | None = None) -> None:
        print(self.summary(), file=stream or (sys.stderr if self.failed else sys.stdout))

    def note_ignored(self, others: list[str], where: str = '') -> None:
        """Record the non-image files ``list_images`` found, so they are reported, never dropped silently."""
        if others:
            self.notes.append(f'{where}{len(others)} non-image file(s) ignored, e.g. {others[0]!r}')


def refuse_same_folder(input_folder: str, save_folder: str) -> None:
    """Jobs that write new files next to nothing they read: inputs must never be overwritten."""
    if os.path.abspath(input_folder) == os.path.abspath(save_folder):
        raise ValueError(f'output folder must differ from the input folder {input_folder!r}')


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count() or 1)


def list_images(folder: str | os.PathLike, recursive: bool = False) -> tuple[list[str], list[str]]:
    """Sorted paths relative to ``folder`` of its image files (by extension, hidden files
    excluded), and of the other files found, which callers report rather than silently drop."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f'input folder {folder!r} does not exist or is not a folder')
    images, others = [], []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith('.')) if recursive else []
        for name in files:
            if name.startswith('.'):
                continue
            rel = os.path.relpath(os.path.join(root, name), folder)
            (images if is_image_file(name) else others).append(rel)
    return sorted(images), sorted(others)


def run_pool(
    func: Callable[[T], R],
    items: Iterable[T],
    n_thread: int | None,
    desc: str,
    total: int | None = None,
    ordered: bool = False,
    chunksize: int = 1,
) -> Iterator[R]:
    """Yield ``func(item)`` for each item, in ``n_thread`` processes (inline when 1), with a tqdm
    bar. ``func`` must be a picklable top-level function and should return its errors rather than
    raise them, so one bad item does not end the job."""
    items = list(items) if total is None else items
    total = len(items) if total is None else total
    n_thread = default_workers() if n_thread is None else max(1, int(n_thread))
    with tqdm(total=total, unit='image', desc=desc, dynamic_ncols=True) as bar:
        if n_thread == 1 or total <= 1:
            for item in items:
                yield func(item)
                bar.update(1)
            return
        with Pool(min(n_thread, total), initializer=_worker_signals) as pool:
            mapper = pool.imap if ordered else pool.imap_unordered
            for result in mapper(func, items, chunksize=chunksize):
                yield result
                bar.update(1)


def _worker_signals() -> None:
    """In a pool worker: die quietly on SIGTERM and leave Ctrl-C to the parent. A forked worker
    inherits ``run_cli``'s SIGTERM handler, and the pool ends its workers with SIGTERM: each one
    printed a ``Terminated`` traceback at the end of every successful job."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_job(job: Callable[[], BatchReport]) -> int:
    """Run a job for a command line: print its report and return the exit code (0 all good,
    1 some files failed, 2 the job could not run, with the reason on stderr in the common error
    style; traceback with ``--debug``). OpenCV's own warnings are silenced first (workers forked
    from here inherit it): the report names every file that failed."""
    quiet_opencv()

    def command(_argv: list[str]) -> int:
        try:
            report = job()
        except (ValueError, OSError) as err:
            raise UsageError(str(err)) from err
        report.print()
        return report.exit_code

    return run_cli(command)
