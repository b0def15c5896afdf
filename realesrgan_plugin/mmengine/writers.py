"""MMEngine's own writers name the file a full disk (or an I/O error) refused.

MMEngine writes the log file, ``vis_data/scalars.json``, the config copies and tensorboard events
itself; a storage failure there surfaced as a bare ``[Errno 28] No space left on device`` (the
command line could only blame "the work dir"), the log handler printed a traceback per record
and went on, and tensorboard's writer thread printed its own traceback. Here each writer of a
runner is made to raise :class:`~realesrgan_plugin.core.atomic.DiskWriteError` naming its file,
which ``realesrgan-train-mm`` prints as its one ``error:`` line; checkpoints, written atomically
before, stay intact for ``--resume``.
"""

from __future__ import annotations

import logging
import os.path as osp

from realesrgan_plugin.core.atomic import (
    NamingDiskErrors,
    naming_disk_errors,
    raise_disk_errors_of,
    tensorboard_event_file,
    tensorboard_file_in,
)


def vis_backend_target(backend: object, method: str) -> str:
    """The file (or, where the library picks names per call, the folder) ``backend.<method>`` writes."""
    files = {'add_config': '_config_save_file', 'add_scalar': '_scalar_save_file', 'add_scalars': '_scalar_save_file'}
    if method in files and hasattr(backend, files[method]):
        return getattr(backend, files[method])
    if method == 'add_image' and hasattr(backend, '_img_save_dir'):
        return backend._img_save_dir
    writer = getattr(backend, '_tensorboard', None)
    if writer is not None:
        return tensorboard_event_file(writer)
    folder = getattr(backend, '_save_dir', None)
    return tensorboard_file_in(folder) if folder else f'the folder of {type(backend).__name__}'


def name_disk_errors_of_visualizer(visualizer) -> None:
    """Wrap each vis backend of an MMEngine ``Visualizer`` in place (the visualizer is the
    process-wide instance the hooks use)."""
    backends = visualizer._vis_backends
    for name, backend in list(backends.items()):
        if isinstance(backend, NamingDiskErrors):
            continue
        if hasattr(backend, '_dump'):  # LocalVisBackend: every scalar file (scalars.json, the json log) by name
            backend._dump = _dump_naming_its_file(backend._dump)
        backends[name] = NamingDiskErrors(backend, lambda method, backend=backend: vis_backend_target(backend, method))


def _dump_naming_its_file(dump):
    def dump_named(value_dict: dict, file_path: str, file_format: str) -> None:
        with naming_disk_errors(file_path):
            dump(value_dict, file_path, file_format)

    return dump_named


def name_disk_errors_of_log_files(logger: logging.Logger) -> None:
    """A full disk under the runner's log file stops the run with one line naming it."""
    for handler in logger.handlers:
        if isinstance(handler, logging.FileHandler):
            raise_disk_errors_of(handler)


def config_dump_target(work_dir: str, config_filename: str | None, timestamp: str) -> str:
    """Where ``Runner.dump_config`` writes the config copy (MMEngine's own naming rule)."""
    return osp.join(work_dir, osp.basename(config_filename) if config_filename is not None else f'{timestamp}.py')
