"""The GPU check: the ``gpu`` tests, then the GPU benchmarks, ours against the official in one run.

    python bench/gpu_check.py [--tests-timeout 300] [--bench-timeout 120]

On a machine with CUDA it runs ``pytest -m gpu tests`` and then, each with ``--device cuda``:
pair synthesis (batch 12, gt 256, x4plus options), a Real-ESRGAN iteration with the full RRDBNet
(batch 12, gt 256) and x4plus inference. Each bench writes its own ``docs/bench/<bench>-<gpu>.json``
(keyed by the GPU, see bench/common.py); this script writes ``docs/bench/gpu_check-<gpu>.json``
with the test summary and every bench's figures, and prints that JSON as its last line. The
budget is 8 minutes on one GPU: each step has a timeout and a step that runs out is reported, not
retried.

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
# (bench script, its arguments): what the issue asks to compare on the GPU.
GPU_BENCHES = (
    ('bench_synthesis.py', ['--device', 'cuda', '--batch-size', '12']),
    ('bench_train_step.py', ['--device', 'cuda', '--configs', 'realesrgan/full/12/256/400']),
    ('bench_inference.py', ['--device', 'cuda', '--size', '512', '--no-bf16']),
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
    parser.add_argument('--tests-timeout', type=float, default=300, help='seconds for the gpu tests')
    parser.add_argument('--bench-timeout', type=float, default=120, help='seconds for each benchmark')
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        message = 'no CUDA device here: no GPU test or GPU benchmark ran (run this on a machine with a GPU)'
        print(json.dumps({'cuda': False, 'message': message, 'gpu_tests_that_would_run': gpu_test_count()}))
        return 0
    started, start = load_average(), time.perf_counter()
    gpu = torch.cuda.get_device_name()
    tests = run_gpu_tests(args.tests_timeout)
    benches = {script: run_bench(script, bench_args, args.bench_timeout) for script, bench_args in GPU_BENCHES}
    outcome = ', '.join(f'{tests[k]} {k}' for k in ('passed', 'failed', 'skipped', 'error', 'errors') if k in tests)
    rows = [{'what': 'gpu tests (pytest -m gpu)', 'official': '-', 'ours': outcome or 'timed out', 'ratio': '-'}]
    result = {
        'gpu_model': gpu,
        'gpu_tests': tests,
        'benches': benches,
        'seconds': round(time.perf_counter() - start, 1),
        'rows': rows,
    }
    write_result('gpu_check', result, started, gpu_model=gpu)  # the benches' rows are in their own files
    return 0 if tests.get('exit_code') == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
