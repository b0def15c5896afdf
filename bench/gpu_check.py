"""The GPU check: the ``gpu`` tests, then the GPU benchmarks, ours against the official in one run.

    python bench/gpu_check.py [--budget 480]

On a machine with CUDA it runs ``pytest -m gpu tests`` and then, each with ``--device cuda``:
pair synthesis (batch 12, gt 256, x4plus options), a Real-ESRGAN iteration with the full RRDBNet
(batch 12, gt 256, VGG19 with random weights on both sides) and x4plus inference on a 512x512
image in fp32 and fp16, untiled and tiled 256. Every bench reports the peak GPU memory of both
sides. Each bench writes its own ``docs/bench/<bench>-<gpu>.json`` (keyed by the GPU, see
bench/common.py); this script writes ``docs/bench/gpu_check-<gpu>.json`` with the test summary and
every bench's figures, and prints that JSON as its last line.

Time plan (8 minutes on one GPU, ``--budget`` seconds in all): each step below has a cap, and no
step gets more than what is left of the budget. A step that runs out is reported, not retried.

    gpu tests (17 tests: tiny nets, a few iterations each, 3 torchrun launches)   cap 180 s
    synthesis: 2 warm-up + 8 timed batches of 12 per side (96 pairs for the PSNR)  cap  80 s
    train step: 2 warm-up + 4 timed iterations per side, one configuration         cap 110 s
    inference: 512x512, 3 reps, fp32 + fp16, untiled + tile 256, no extra models   cap 100 s

Without CUDA it prints one line saying so, with the number of ``gpu`` tests it would run, and
exits 0: nothing here may fail a CPU-only CI.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from common import load_average, write_result

REPO = Path(__file__).resolve().parents[1]
TESTS_CAP_S = 180
# (bench script, its arguments, cap in seconds): what the issue asks to compare on the GPU.
GPU_BENCHES = (
    ('bench_synthesis.py', ['--device', 'cuda', '--batch-size', '12', '--batches', '8'], 80),
    ('bench_train_step.py', ['--device', 'cuda', '--configs', 'realesrgan/full/12/256/400', '--iters', '4'], 110),
    (
        'bench_inference.py',
        ['--device', 'cuda', '--size', '512', '--tile', '256', '--half', '--no-bf16', '--rounds', '1', '--reps', '3']
        + ['--also'],  # no extra models: the 8-minute plan
        100,
    ),
)


def gpu_test_count() -> int:
    """How many tests carry the ``gpu`` marker (collected, not run)."""
    out = subprocess.run(
        [sys.executable, '-m', 'pytest', '--collect-only', '-q', '-m', 'gpu', '-p', 'no:cacheprovider', 'tests'],
        cwd=REPO,
        capture_output=True,
        text=True,
    ).stdout
    found = re.search(r'(\d+)(?:/\d+)? tests? (?:collected|selected)', out)
    return int(found.group(1)) if found else 0


def run_gpu_tests(timeout: float) -> dict:
    """``pytest -m gpu``: the counts of its closing line, its exit code, the failing test ids."""
    cmd = [sys.executable, '-m', 'pytest', '-q', '-m', 'gpu', '-p', 'no:cacheprovider', '-rf', 'tests']
    try:
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {'exit_code': None, 'timed_out_after_s': timeout}
    counts = {k: int(n) for n, k in re.findall(r'(\d+) (passed|failed|skipped|errors?)', proc.stdout)}
    failed = re.findall(r'^FAILED (\S+)', proc.stdout, re.M)
    return {'exit_code': proc.returncode, **counts, 'failed_tests': failed}


def run_bench(script: str, args: list[str], timeout: float) -> dict:
    """Run one bench; its last stdout line is its JSON result."""
    cmd = [sys.executable, str(REPO / 'bench' / script), *args]
    try:
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {'command': ' '.join(['python', f'bench/{script}', *args]), 'timed_out_after_s': timeout}
    lines = proc.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        return {'command': ' '.join(['python', f'bench/{script}', *args]), 'exit_code': proc.returncode,
                'stderr_tail': proc.stderr[-2000:]}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--budget', type=float, default=480, help='seconds for the whole check (the 8-minute plan)')
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        message = 'no CUDA device here: no GPU test or GPU benchmark ran (run this on a machine with a GPU)'
        print(json.dumps({'cuda': False, 'message': message, 'gpu_tests_that_would_run': gpu_test_count()}))
        return 0
    started, start = load_average(), time.perf_counter()

    def cap(seconds: float) -> float:
        return max(1.0, min(seconds, args.budget - (time.perf_counter() - start)))

    gpu = torch.cuda.get_device_name()
    tests = run_gpu_tests(cap(TESTS_CAP_S))
    benches = {script: run_bench(script, bench_args, cap(limit)) for script, bench_args, limit in GPU_BENCHES}
    outcome = ', '.join(f'{tests[k]} {k}' for k in ('passed', 'failed', 'skipped', 'error', 'errors') if k in tests)
    rows = [{'what': 'gpu tests (pytest -m gpu)', 'official': '-', 'ours': outcome or 'timed out', 'ratio': '-'}]
    result = {
        'gpu_model': gpu,
        'gpu_tests': tests,
        'benches': benches,
        'seconds': round(time.perf_counter() - start, 1),
        'budget_s': args.budget,
        'rows': rows,
    }
    write_result('gpu_check', result, started, gpu_model=gpu)  # the benches' rows are in their own files
    return 0 if tests.get('exit_code') == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
