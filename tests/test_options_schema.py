"""The option schema: official files pass, defaults are the synthesis defaults, BasicSR's keys
pass through untouched, and every problem is reported with its option path."""

from __future__ import annotations

import copy
from pathlib import Path

from realesrgan_plugin.core.degradations.synthesis import DegradationSettings, settings_from_options
from realesrgan_plugin.core.options_schema import (
    DegradationOptions,
    KernelOptions,
    OptionsError,
    check_synthesis_options,
    check_training_options,
)

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
OPTION_FILES = sorted((REPO / 'options').rglob('*.yml'))


@pytest.mark.parametrize('path', OPTION_FILES, ids=[p.name for p in OPTION_FILES])
def test_shipped_option_files_pass(path):
    check_training_options(yaml.safe_load(path.read_text()), str(path), check_paths=False)


def test_schema_defaults_are_the_synthesis_defaults():
    """One source of defaults: an empty option set means the same synthesis either way."""
    settings = settings_from_options({})
    assert settings == DegradationSettings()
    deg, ker = DegradationOptions(), KernelOptions()
    for name in ('resize_prob', 'noise_range', 'jpeg_range2', 'resize_range2'):
        assert tuple(getattr(deg, name)) == tuple(getattr(settings, name)), name
    for name in ('second_blur_prob', 'gray_noise_prob2', 'gt_size', 'scale', 'per_sample'):
        assert getattr(deg, name) == getattr(settings, name), name
    assert ker.blur_kernel_size == settings.kernel1.kernel_size
    assert tuple(ker.blur_sigma2) == tuple(settings.kernel2.blur_sigma)
    assert tuple(ker.kernel_prob) == tuple(settings.kernel1.kernel_prob)
    assert ker.final_sinc_prob == settings.final_sinc_prob


def test_basicsr_keys_pass_through_untouched():
    opt = yaml.safe_load((REPO / 'options' / 'train_realesrgan_x4plus.yml').read_text())
    opt['logger']['some_future_basicsr_key'] = {'x': 1}
    opt['network_g']['anything'] = 'goes'
    before = copy.deepcopy(opt)
    check_training_options(opt, check_paths=False)
    assert opt == before


def test_every_problem_with_its_path():
    opt = yaml.safe_load((REPO / 'options' / 'train_realesrgan_x4plus.yml').read_text())
    opt['datasets']['train']['blur_sigma'] = [3, 0.2]
    opt['datasets']['train']['kernel_list'] = ['iso', 'aniso']
    opt['datasets']['train']['sinc_prob'] = 1.5
    opt['gray_noise_prob'] = '0.4'
    opt['train']['ema_decy'] = 0.9
    opt['num_gpu'] = 'two'
    with pytest.raises(OptionsError) as err:
        check_training_options(opt, 'x.yml', check_paths=False)
    problems = dict(err.value.problems)
    assert 'lo <= hi' in problems['datasets.train.blur_sigma']
    assert '6 probabilities for 2 kernels' in problems['datasets.train.kernel_prob']
    assert 'less than or equal to 1' in problems['datasets.train.sinc_prob']
    assert "'0.4'" in problems['gray_noise_prob']  # a string is not a number, even if it looks like one
    assert "did you mean 'ema_decay'" in problems['train.ema_decy']
    assert 'num_gpu' in problems
    assert len(problems) == 6


def test_missing_paths_are_problems(tmp_path):
    opt = {'datasets': {'train': {'dataroot_gt': str(tmp_path / 'gone')}}, 'path': {'pretrain_network_g': 'x.pth'}}
    with pytest.raises(OptionsError) as err:
        check_training_options(opt)
    assert {p for p, _ in err.value.problems} == {'datasets.train.dataroot_gt', 'path.pretrain_network_g'}
    check_training_options(opt, check_paths=False)


def test_mmengine_preprocessor_dicts_use_the_same_rules():
    check_synthesis_options({'scale': 4, 'noise_range': [1, 30]}, {'blur_sigma': [0.2, 3]}, 'cfg.py')
    with pytest.raises(OptionsError) as err:
        check_synthesis_options({'nosie_range': [1, 30]}, {'blur_sigma2': [2, 1]}, 'cfg.py')
    problems = dict(err.value.problems)
    assert "did you mean 'noise_range'" in problems['degradations.nosie_range']
    assert 'lo <= hi' in problems['kernels.blur_sigma2']
