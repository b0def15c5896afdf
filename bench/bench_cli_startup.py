"""Benchmark: start-up time of the command line tools, ``realesrgan-infer --help`` first.

Each run is a fresh interpreter (``python -m realesrgan_plugin.inference.cli --help``, what the
console script does), so the figure includes every import done before the help is printed. The
median of ``--runs`` runs is reported for each command (infer, video, train, train-mm, convert-mm);
the modules a ``--help`` must not load (torch, basicsr, mmengine, torchvision) are checked in one
extra run of each.

    python bench/bench_cli_startup.py [--runs 5]

The official counterpart is the start of the official ``inference_realesrgan.py`` (a repository
script, not installed): everything it imports before argparse can print its help, run the same
way (``realesrgan`` 0.3.0 from the bench extra, with the torchvision alias basicsr needs today).

Prints one line per tool and, as its last line, one JSON object (also written to
``docs/bench/cli_startup-<cpu>.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import load_average, ratio, write_result

REPO = Path(__file__).resolve().parents[1]
TOOLS = {
    'realesrgan-infer --help': ['-m', 'realesrgan_plugin.inference.cli', '--help'],
    'realesrgan-video --help': ['-m', 'realesrgan_plugin.inference.video', '--help'],
    'realesrgan-train --help': ['-m', 'realesrgan_plugin.train', '--help'],
    'realesrgan-train-mm --help': ['-m', 'realesrgan_plugin.train_mm', '--help'],
    'realesrgan-convert-mm --help': ['-m', 'realesrgan_plugin.convert_mm', '--help'],
}
# Tools with no official counterpart: one README row each.
UNPAIRED = [name for name in TOOLS if name != 'realesrgan-infer --help']
# The official inference_realesrgan.py's imports, all done before its argparse answers --help.
OFFICIAL_SCRIPT_IMPORTS = (
    'import sys, importlib\n'
    "sys.modules['torchvision.transforms.functional_tensor'] = "
    "importlib.import_module('torchvision.transforms._functional_tensor')\n"
    'import argparse, cv2, glob, os\n'
    'from basicsr.archs.rrdbnet_arch import RRDBNet\n'
    'from basicsr.utils.download_util import load_file_from_url\n'
    'from realesrgan import RealESRGANer\n'
    'from realesrgan.archs.srvgg_arch import SRVGGNetCompact\n'
)
HEAVY = ('torch', 'torchvision', 'basicsr', 'mmengine')
PROBE = (
    'import runpy, sys, json\n'
    'sys.argv = ["tool", "--help"]\n'
    'try:\n    runpy.run_module({module!r}, run_name="__main__")\n'
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


def heavy_modules_loaded(module: str) -> list[str]:
    """The modules of HEAVY that ``python -m <module> --help`` imported (should be none)."""
    code = PROBE.format(module=module)
    out = subprocess.run([sys.executable, '-c', code], env=_env(), check=True, capture_output=True, text=True)
    return json.loads(out.stderr.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', type=int, default=5, help='runs per command (the median is reported)')
    args = parser.parse_args()
    started = load_average()
    commands = {**TOOLS, 'official inference_realesrgan.py --help': ['-c', OFFICIAL_SCRIPT_IMPORTS]}
    results = {}
    for _ in range(args.runs):  # interleaved: a load spike hits every command alike
        for name, argv in commands.items():
            results.setdefault(name, []).extend(time_command(argv, 1))
    medians = {name: round(statistics.median(times), 3) for name, times in results.items()}
    for name, median in medians.items():
        print(f'{name}: median {median:.3f} s over {args.runs} runs', flush=True)
    official, ours = medians['official inference_realesrgan.py --help'], medians['realesrgan-infer --help']
    rows = [
        {
            'what': f'`--help` start-up, median of {args.runs} fresh processes (s)',
            'official': f'{official:.2f} s',
            'ours': f'{ours:.2f} s',
            'ratio': ratio(official, ours),
        },
        *(
            {
                'what': f'`{name}` start-up (no official counterpart)',
                'official': '-',
                'ours': f'{medians[name]:.2f} s',
                'ratio': '-',
            }
            for name in UNPAIRED
        ),
    ]
    result = {
        'infer_help_median_s': ours,
        'official_help_median_s': official,
        'speedup_vs_official': round(official / ours, 2),
        'runs_s': {name: [round(t, 3) for t in times] for name, times in results.items()},
        'heavy_modules_loaded_by_help': {name: heavy_modules_loaded(argv[1]) for name, argv in TOOLS.items()},
        'rows': rows,
    }
    write_result('cli_startup', result, started)


if __name__ == '__main__':
    main()
