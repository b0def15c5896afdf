"""What every bench shares: the machine record and the committed result file.

Each bench ends with ``write_result(name, result, started)``: it adds the machine record (CPU
model and the flags that decide which kernels run, torch version and threads, OMP_NUM_THREADS,
UTC date, load average at start and end, the exact command line) and writes the JSON to
``docs/bench/<name>-<cpu-model-slug>.json``, so a figure in the README (made from these files by
``tools/bench_table.py``) traces to a file, a machine and a command. A rerun on the same CPU
model overwrites its file; another CPU model gets its own. The same JSON object is printed as
the bench's last stdout line.

``rows`` in a result are what the README table shows: ``{'what', 'official', 'ours', 'ratio'}``
strings, written by the bench that measured them.

Imports nothing of the plugin at module level: bench workers that run the official package
import this module too.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shlex
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / 'docs' / 'bench'
# The CPU flags that decide which convolution / matmul kernels torch and OpenCV use.
CPU_FLAGS = ('avx2', 'fma', 'avx512f', 'avx512bw', 'avx512_vnni', 'avx512_bf16', 'amx_tile', 'amx_bf16', 'amx_int8')
MACHINE_FIELDS = ('cpu_model', 'cpu_flags', 'torch_version', 'torch_threads', 'omp_num_threads', 'date_utc')
MACHINE_FIELDS += ('command', 'load_avg_start', 'load_avg_end')


def cpu_info() -> tuple[str, list[str]]:
    """(model name, the CPU_FLAGS it has) from /proc/cpuinfo; ('unknown', []) where there is none."""
    try:
        text = Path('/proc/cpuinfo').read_text(encoding='utf-8', errors='replace')
    except OSError:
        return 'unknown', []
    model = re.search(r'^model name\s*:\s*(.+)$', text, re.M)
    flags = re.search(r'^flags\s*:\s*(.+)$', text, re.M)
    have = set(flags.group(1).split()) if flags else set()
    return (model.group(1).strip() if model else 'unknown'), [f for f in CPU_FLAGS if f in have]


def cpu_slug(model: str) -> str:
    """File-name form of a CPU model: lower case, runs of non-alphanumerics as one '-'."""
    return re.sub(r'[^a-z0-9]+', '-', model.lower()).strip('-') or 'unknown'


def command_line() -> str:
    """The command that reproduces this run, as typed from the repository root."""
    script = Path(sys.argv[0]).resolve()
    shown = script.relative_to(REPO).as_posix() if script.is_relative_to(REPO) else str(script)
    return shlex.join(['python', shown, *sys.argv[1:]])


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine_record(started_load: list[float]) -> dict:
    """Everything a reader needs to judge where and how a figure was measured."""
    import torch

    model, flags = cpu_info()
    return {
        'cpu_model': model,
        'cpu_flags': flags,
        'torch_version': torch.__version__,
        'torch_threads': torch.get_num_threads(),
        'omp_num_threads': os.environ.get('OMP_NUM_THREADS'),
        'date_utc': datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M'),
        'command': command_line(),
        'load_avg_start': started_load,
        'load_avg_end': load_average(),
    }


def result_path(bench: str, model: str | None = None) -> Path:
    return RESULTS_DIR / f'{bench}-{cpu_slug(model or cpu_info()[0])}.json'


def cuda_device_named(argv: list[str]) -> str | None:
    """The GPU's name when the bench was asked to run on CUDA (``--device cuda[:N]``), else None:
    such a result is keyed by the GPU, not by the host CPU."""
    device = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a == '--device'), None)
    if device is None or not device.startswith('cuda'):
        return None
    import torch

    return torch.cuda.get_device_name(torch.device(device)) if torch.cuda.is_available() else None


def write_result(bench: str, result: dict, started_load: list[float], gpu_model: str | None = None) -> Path:
    """Add the machine record, write ``docs/bench/<bench>-<slug>.json`` atomically and print the
    JSON as the last stdout line. ``started_load``: ``load_average()`` taken when the bench began.
    The slug is the GPU's (``gpu_model``, or the device of ``--device cuda``) for GPU runs, else the CPU's."""
    from realesrgan_plugin.core.atomic import atomic_write

    record = {'bench': bench, **machine_record(started_load), **result}  # a bench may set its own torch_threads
    gpu = gpu_model or cuda_device_named(sys.argv[1:])
    if gpu is not None:
        record['gpu_model'] = gpu
    path = result_path(bench, gpu or record['cpu_model'])
    with atomic_write(path, fsync=False) as f:
        f.write((json.dumps(record, indent=1, sort_keys=True) + '\n').encode())
    print(f'written: {path.relative_to(REPO)}', file=sys.stderr)
    print(json.dumps(record), flush=True)
    return path


def ratio(official: float, ours: float) -> str:
    """A speed-up as the table prints it (official time / our time, or our rate / official rate)."""
    return f'{official / ours:.2f}×'


def reset_peak_memory(device: str) -> None:
    """Start a peak-GPU-memory measurement on a CUDA ``device`` (nothing elsewhere)."""
    import torch

    if str(device).startswith('cuda'):
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mib(device: str) -> float | None:
    """The most GPU memory tensors held since ``reset_peak_memory`` (``max_memory_allocated``), in
    MiB; None off CUDA. Works in the official's worker processes too (torch only)."""
    import torch

    if not str(device).startswith('cuda'):
        return None
    torch.cuda.synchronize(device)
    return round(torch.cuda.max_memory_allocated(device) / 2**20, 1)


def memory_text(mib: float | None) -> str:
    """A peak-memory figure as the table prints it."""
    return '–' if mib is None else f'{mib / 1024:.2f} GiB'
