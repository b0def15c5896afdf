import importlib.util
import subprocess
import sys

from realesrgan_plugin.core.registration import RegistryConflictError, register_official

import pytest
from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, MODEL_REGISTRY, Registry

# Official Real-ESRGAN names and the registry each lives in. Option files name these.
OFFICIAL_NAMES = {
    'SRVGGNetCompact': ARCH_REGISTRY,
    'UNetDiscriminatorSN': ARCH_REGISTRY,
}
LATER_NAMES = {  # registered by the synthesis and training parts of the plugin
    'RealESRGANDataset': DATASET_REGISTRY,
    'RealESRGANPairedDataset': DATASET_REGISTRY,
    'RealESRNetModel': MODEL_REGISTRY,
    'RealESRGANModel': MODEL_REGISTRY,
}


def _registered_names():
    names = dict(OFFICIAL_NAMES)
    names.update({k: r for k, r in LATER_NAMES.items() if k in r})
    return names


@pytest.mark.parametrize(('name', 'registry'), list(_registered_names().items()))
def test_official_names_resolve_to_plugin_classes(name, registry):
    cls = registry.get(name)
    assert cls.__module__.startswith('realesrgan_plugin.'), f'{name} resolved to {cls.__module__}'
    # BasicSR's own copy stays reachable under its suffixed name and is a different class.
    if f'{name}_basicsr' in registry:
        assert registry.get(f'{name}_basicsr') is not cls


def test_conflicting_name_error_names_the_other_package():
    reg = Registry('toy')

    class Thing:
        pass

    Thing.__module__ = 'otherpkg.things'
    reg.register()(Thing)

    class Mine:
        pass

    Mine.__name__ = Mine.__qualname__ = 'Thing'
    with pytest.raises(RegistryConflictError, match=r"package 'otherpkg'"):
        register_official(reg)(Mine)


def test_reregistering_the_same_class_is_allowed():
    reg = Registry('toy')

    class Same:
        pass

    register_official(reg)(Same)
    assert register_official(reg)(Same) is Same
    assert reg.get('Same') is Same


def test_official_realesrgan_package_in_same_process_is_reported():
    """If the official realesrgan package registered first, importing the plugin's BasicSR adapter says so."""
    if importlib.util.find_spec('realesrgan') is None:  # never import it here: it would register
        pytest.skip('official realesrgan package (bench extra) not installed')
    code = (
        'import sys, importlib; '
        "sys.modules['torchvision.transforms.functional_tensor'] = "
        "importlib.import_module('torchvision.transforms._functional_tensor'); "
        'import realesrgan; import realesrgan_plugin.basicsr'
    )
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert out.returncode != 0
    assert 'RegistryConflictError' in out.stderr
    assert "package 'realesrgan'" in out.stderr
