"""The README's benchmark figures trace to committed files: every bench has a result for at least one
CPU, each result names its machine and command, and the README table is exactly what
tools/bench_table.py makes of them (so nobody can edit a figure by hand)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / 'docs' / 'bench'


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem + '_under_test', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench_table = _load(REPO / 'tools' / 'bench_table.py')
bench_common = _load(REPO / 'bench' / 'common.py')
BENCHES = sorted(p.stem.removeprefix('bench_') for p in (REPO / 'bench').glob('bench_*.py'))


def test_committed_readme_is_what_the_committed_results_give():
    readme = (REPO / 'README.md').read_text(encoding='utf-8')
    assert bench_table.render_readme(readme, bench_table.load_results(RESULTS)) == readme, (
        'README.md benchmark table is stale or hand-edited: run python tools/bench_table.py'
    )


def test_rendering_is_deterministic_and_check_flags_a_stale_readme(tmp_path):
    readme = tmp_path / 'README.md'
    readme.write_text(f'# x\n\n{bench_table.START}\n| hand-typed | 1 | 2 | 2× |\n{bench_table.END}\n\ntail\n')
    argv = ['--readme', str(readme), '--results', str(RESULTS)]
    assert bench_table.main([*argv, '--check']) == 1
    assert bench_table.main(argv) == 0
    once = readme.read_bytes()
    assert bench_table.main(argv) == 0
    assert readme.read_bytes() == once
    assert bench_table.main([*argv, '--check']) == 0
    assert once.decode().endswith('\n\ntail\n') and 'hand-typed' not in once.decode()


@pytest.mark.parametrize('bench', BENCHES)
def test_every_bench_has_a_committed_result(bench):
    assert sorted(RESULTS.glob(f'{bench}-*.json')), f'no docs/bench/{bench}-<cpu>.json: run bench/bench_{bench}.py'


@pytest.mark.parametrize('path', sorted(RESULTS.glob('*.json')), ids=lambda p: p.name)
def test_each_result_names_its_machine_and_command(path):
    record = json.loads(path.read_text(encoding='utf-8'))
    missing = [k for k in bench_common.MACHINE_FIELDS if k not in record]
    assert not missing, f'{path.name} lacks {missing}'
    assert path.name == f'{record["bench"]}-{bench_common.cpu_slug(record["cpu_model"])}.json'
    assert record['command'].startswith(f'python bench/bench_{record["bench"]}.py')
    assert record['rows'] and all({'what', 'official', 'ours', 'ratio'} <= set(row) for row in record['rows'])
