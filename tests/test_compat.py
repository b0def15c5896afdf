import collections
import subprocess
import sys

from realesrgan_plugin.core.checkpoint import safe_torch_load
from realesrgan_plugin.core.dist import normalize_local_rank_args

import pytest
import torch


def test_plugin_and_basicsr_import_in_fresh_process():
    code = 'import realesrgan_plugin.basicsr, basicsr, basicsr.data.degradations; print(basicsr.__version__)'
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == '1.4.2'


def test_no_shim_installed_in_site_packages():
    """The functional_tensor alias comes from the plugin at run time, never from a file in the venv."""
    code = 'import importlib.util; print(importlib.util.find_spec("torchvision.transforms.functional_tensor"))'
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == 'None'


@pytest.mark.parametrize(
    ('argv', 'expected'),
    [
        (['--local-rank=1', '-opt', 'a.yml'], ['--local_rank=1', '-opt', 'a.yml']),
        (['--local-rank', '2'], ['--local_rank', '2']),
        (['--local_rank=3'], ['--local_rank=3']),
        (['-opt', 'x--local-rank.yml'], ['-opt', 'x--local-rank.yml']),
    ],
)
def test_local_rank_spellings(argv, expected):
    assert normalize_local_rank_args(argv) == expected


def test_safe_load_accepts_training_state_containers(tmp_path):
    state = {'iter': 5, 'milestones': collections.Counter({100: 1}), 'w': torch.ones(2)}
    torch.save(state, tmp_path / 's.state')
    loaded = safe_torch_load(tmp_path / 's.state')
    assert loaded['milestones'] == collections.Counter({100: 1})
    assert torch.equal(loaded['w'], torch.ones(2))


class _Evil:
    def __reduce__(self):
        return (print, ('pwned',))


def test_safe_load_refuses_code_and_names_the_file(tmp_path):
    path = tmp_path / 'evil.pth'
    torch.save({'x': _Evil()}, path)
    with pytest.raises(RuntimeError, match='evil.pth'):
        safe_torch_load(path)


def test_safe_load_names_truncated_file(tmp_path):
    path = tmp_path / 'half.pth'
    torch.save({'w': torch.ones(1000)}, path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(RuntimeError, match='half.pth'):
        safe_torch_load(path)
