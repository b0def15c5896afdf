"""Benchmark: start-up time of the command line tools, ``realesrgan-infer --help`` first.

Each run is a fresh interpreter (``python -m realesrgan_plugin.inference.cli --help``, what the
console script does), so the figure includes every import done before the help is printed. The
median of ``--runs`` runs is reported; the modules a ``--help`` must not load (torch, basicsr,
mmengine, torchvision) are checked in one extra run.

    python bench/bench_cli_startup.py [--runs 5]

Prints one line per tool and, as its last line, one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOOLS = {
    'realesrgan-infer --help': ['-m', 'realesrgan_plugin.inference.cli', '--help'],
    'realesrgan-video --help': ['-m', 'realesrgan_plugin.inference.video', '--help'],
}
HEAVY = ('torch', 'torchvision', 'basicsr', 'mmengine')
PROBE = (
    'import runpy, sys, json\n'
    'sys.argv = ["realesrgan-infer", "--help"]\n'
    'try:\n    runpy.run_module("realesrgan_plugin.inference.cli", run_name="__main__")\n'
    'except SystemExit:\n    pass\n'
    f'print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]), file=sys.stderr)\n'
)


def _env() -> dict[str, str]:
    return {**os.environ, 'PYTHONPATH': os.pathsep.join([str(REPO), os.environ.get('PYTHONPATH', '')])}


def time_command(args: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, *args], env=_env(), check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def heavy_modules_loaded() -> list[str]:
    out = subprocess.run([sys.executable, '-c', PROBE], env=_env(), check=True, capture_output=True, text=True)
    return json.loads(out.stderr.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', type=int, default=5, help='runs per command (the median is reported)')
    args = parser.parse_args()
    results = {}
    for name, argv in TOOLS.items():
        times = time_command(argv, args.runs)
        results[name] = {'median_s': round(statistics.median(times), 3), 'runs_s': [round(t, 3) for t in times]}
        print(f'{name}: median {statistics.median(times):.3f} s over {args.runs} runs', flush=True)
    summary = {
        'bench': 'cli_startup',
        'command': ' '.join(['python', 'bench/bench_cli_startup.py', *sys.argv[1:]]),
        'infer_help_median_s': results['realesrgan-infer --help']['median_s'],
        'results': results,
        'heavy_modules_loaded_by_help': heavy_modules_loaded(),
        'python': platform.python_version(),
        'cpu': platform.processor() or platform.machine(),
        'date': time.strftime('%Y-%m-%d'),
    }
    print(json.dumps(summary))


if __name__ == '__main__':
    main()
