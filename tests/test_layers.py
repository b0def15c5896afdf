"""The import rule of DEVELOPERS.md: a layer imports only from the layers below it.

Checked twice: statically (every ``import`` statement in the package, lazy ones included) and
dynamically (what ``sys.modules`` holds after importing a layer in a fresh interpreter).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / 'realesrgan_plugin'

# First component below ``realesrgan_plugin`` -> layer. Lower numbers sit lower.
LAYERS = {
    'core': 1,
    'prep': 1,
    'compat': 2,
    'archs': 2,
    'losses': 2,
    'inference': 2,
    'basicsr': 3,
    'train': 3,
    'mmengine': 4,
    'registry': 4,
    'train_mm': 4,
    'convert_mm': 4,
    'demo': 5,
}
LAYER_NAMES = {1: 'core', 2: 'archs/inference', 3: 'BasicSR adapter', 4: 'MMEngine adapter', 5: 'demo app'}
# Third-party hosts and the lowest layer allowed to import each.
HOSTS = {'basicsr': 2, 'mmengine': 4}


def _layer_of_module(module: str) -> int | None:
    """Layer of ``realesrgan_plugin.<part>...``; None for the package root or foreign modules."""
    parts = module.split('.')
    if parts[0] != 'realesrgan_plugin' or len(parts) < 2:
        return None
    return LAYERS[parts[1]]


def _package_modules() -> list[tuple[str, Path]]:
    modules = []
    for path in sorted(PACKAGE_DIR.rglob('*.py')):
        rel = path.relative_to(PACKAGE_DIR.parent).with_suffix('')
        parts = list(rel.parts)
        if parts[-1] == '__init__':
            parts.pop()
        modules.append(('.'.join(parts), path))
    return modules


def _imported_names(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) for every import statement, at any depth (lazy imports count too)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            # ``from realesrgan_plugin import archs`` imports the subpackage ``archs``
            if node.module == 'realesrgan_plugin':
                found += [(node.lineno, f'realesrgan_plugin.{alias.name}') for alias in node.names]
    return found


def upward_imports() -> list[str]:
    problems = []
    for module, path in _package_modules():
        layer = _layer_of_module(module)
        if layer is None:
            continue
        for line, target in _imported_names(ast.parse(path.read_text(encoding='utf-8'))):
            top = target.split('.')[0]
            where = f'{path.relative_to(PACKAGE_DIR.parent)}:{line}'
            target_layer = _layer_of_module(target)
            if target_layer is not None and target_layer > layer:
                problems.append(f'{where}: {LAYER_NAMES[layer]} imports {target} ({LAYER_NAMES[target_layer]})')
            if top in HOSTS and layer < HOSTS[top]:
                problems.append(f'{where}: {LAYER_NAMES[layer]} imports the host {top}')
    return problems


def test_every_package_module_has_a_layer():
    unknown = {m.split('.')[1] for m, _ in _package_modules() if '.' in m} - set(LAYERS)
    assert not unknown, f'add these to LAYERS (and to the diagram in DEVELOPERS.md): {sorted(unknown)}'


def test_no_module_imports_from_a_layer_above_it():
    assert upward_imports() == []


def test_the_static_check_catches_an_upward_import(tmp_path, monkeypatch):
    """The check is not vacuous: a core module importing the BasicSR adapter is reported."""
    fake = tmp_path / 'realesrgan_plugin'
    (fake / 'core').mkdir(parents=True)
    (fake / 'core' / 'bad.py').write_text('def f():\n    from realesrgan_plugin.basicsr import models\n')
    (fake / 'core' / 'host.py').write_text('import mmengine\n')
    monkeypatch.setattr(sys.modules[__name__], 'PACKAGE_DIR', fake)
    problems = upward_imports()
    assert any('core/bad.py:2' in p and 'BasicSR adapter' in p for p in problems)
    assert any('core/host.py:1' in p and 'host mmengine' in p for p in problems)


def _modules_after_import(*modules: str) -> set[str]:
    code = (
        'import importlib, json, sys\n'
        f'for m in {list(modules)!r}: importlib.import_module(m)\n'
        'print(json.dumps(sorted(sys.modules)))\n'
    )
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout
    return set(json.loads(out.splitlines()[-1]))


def _core_modules() -> list[str]:
    return [m for m, _ in _package_modules() if _layer_of_module(m) == 1]


FORBIDDEN_AFTER = {
    # what importing a layer must leave out of sys.modules
    'core': {
        'basicsr',
        'mmengine',
        'realesrgan_plugin.archs',
        'realesrgan_plugin.inference',
        'realesrgan_plugin.basicsr',
    },
    'realesrgan_plugin.inference': {'mmengine', 'realesrgan_plugin.basicsr', 'realesrgan_plugin.mmengine'},
    'realesrgan_plugin.archs': {'mmengine', 'realesrgan_plugin.basicsr', 'realesrgan_plugin.mmengine'},
    'realesrgan_plugin.prep': {'mmengine', 'basicsr'},
    'realesrgan_plugin.basicsr': {'mmengine', 'realesrgan_plugin.mmengine'},
    'realesrgan_plugin': {'torch', 'basicsr', 'mmengine'},
}


@pytest.mark.parametrize('layer', sorted(FORBIDDEN_AFTER))
def test_importing_a_layer_loads_nothing_above_it(layer):
    loaded = _modules_after_import(*(_core_modules() if layer == 'core' else [layer]))
    assert not (FORBIDDEN_AFTER[layer] & loaded)


def test_importing_core_has_no_side_effects():
    """The torchvision alias for basicsr is applied by the layers that import basicsr, never by core."""
    loaded = _modules_after_import(*_core_modules())
    assert 'torchvision.transforms.functional_tensor' not in loaded
