"""Shared fixtures: small real photos from scikit-image (bundled, offline) and a temp dir.

Every test session is hermetic: the plugin's caches (weights, Winograd kernels), torch hub and
XDG caches point at one temporary folder (session-wide, so the kernels are built once), and any
network connection other than loopback fails the test. Subprocesses inherit the cache variables.
"""

from __future__ import annotations

import contextlib
import ipaddress
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import realesrgan_plugin.basicsr  # noqa: F401  (compat + BasicSR registration before basicsr)
from realesrgan_plugin.inference import zoo

import numpy as np
import pytest

CACHE_VARIABLES = {zoo.CACHE_ENV: 'realesrgan_plugin', 'TORCH_HOME': 'torch', 'XDG_CACHE_HOME': 'xdg'}


class NetworkAccessInTest(RuntimeError):
    """A test tried to reach the network (tests must run offline)."""


def _is_loopback(address: object) -> bool:
    """Loopback (gloo/distributed tests talk over it) or a local socket; anything else is the network."""
    if not isinstance(address, tuple):
        return True  # AF_UNIX paths
    host = address[0]
    if host in ('localhost', ''):
        return True
    try:
        return ipaddress.ip_address(host.split('%')[0]).is_loopback
    except ValueError:
        return False  # a host name other than localhost would need DNS


def _guard(original):
    def connect(self, address, *args, **kwargs):
        if not _is_loopback(address):
            raise NetworkAccessInTest(f'network access in a test: connect to {address!r}')
        return original(self, address, *args, **kwargs)

    return connect


def _guarded_getaddrinfo(original):
    def getaddrinfo(host, *args, **kwargs):
        if host not in (None, 'localhost', socket.gethostname()) and not _is_loopback((host,)):
            raise NetworkAccessInTest(f'network access in a test: name lookup of {host!r}')
        return original(host, *args, **kwargs)

    return getaddrinfo


@pytest.fixture(scope='session', autouse=True)
def hermetic_session(tmp_path_factory):
    """Caches in a temporary folder, the network blocked (loopback allowed), for the whole session."""
    base = tmp_path_factory.mktemp('caches')
    with pytest.MonkeyPatch.context() as mp:
        for variable, folder in CACHE_VARIABLES.items():
            mp.setenv(variable, str(base / folder))
        mp.setattr(socket.socket, 'connect', _guard(socket.socket.connect))
        mp.setattr(socket.socket, 'connect_ex', _guard(socket.socket.connect_ex))
        mp.setattr(socket, 'getaddrinfo', _guarded_getaddrinfo(socket.getaddrinfo))
        from realesrgan_plugin.inference import winograd

        winograd.load_kernels.cache_clear()  # anything loaded before the session used the real cache
        yield base


def free_port() -> int:
    """A TCP port the OS says is free now (for torchrun's --master-port)."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='session')
def astronaut_bgr() -> np.ndarray:
    """512x512x3 uint8 BGR photo."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[:, :, ::-1])


def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'gpu: needs CUDA; collected always, skipped without it (bench/gpu_check.py runs them)'
    )


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason='needs CUDA (run bench/gpu_check.py on a GPU machine)')
    for item in items:
        if 'gpu' in item.keywords:
            item.add_marker(skip)


@contextlib.contextmanager
def mounted_tmpfs(mount_point: Path, size: str = '2m', read_only: bool = False) -> Iterator[Path]:
    """A real size-limited tmpfs at ``mount_point`` (created), for full-disk and read-only faults;
    the test is skipped, saying why, where mounting is refused (it needs root: CI and here are)."""
    mount_point.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ['mount', '-t', 'tmpfs', '-o', f'size={size}', 'tmpfs', str(mount_point)], capture_output=True, text=True
    )
    if proc.returncode:
        pytest.skip(f'cannot mount a size-limited tmpfs here ({proc.stderr.strip() or proc.returncode}): needs root')
    try:
        if read_only:
            subprocess.run(['mount', '-o', 'remount,ro', str(mount_point)], check=True)
        yield mount_point
    finally:
        subprocess.run(['umount', '-l', str(mount_point)], check=False)


def ctrl_c_reaches_child() -> None:
    """``preexec_fn`` for a child that a test interrupts with SIGINT: a shell starts background jobs
    (``make test &``, nohup) with SIGINT ignored, children inherit that, and Python then never
    raises KeyboardInterrupt; the child gets the default disposition back, as in a terminal."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def write_random_vgg19(path: Path, seed: int | None = 0) -> Path:
    """A VGG19 feature state dict with random weights under ``path`` (the real file cannot be
    downloaded in tests); ``seed=None`` keeps the caller's random stream."""
    import torch
    import torchvision

    if seed is not None:
        torch.manual_seed(seed)
    features = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs['E'])
    torch.save({f'features.{k}': v for k, v in features.state_dict().items()}, path)
    return path


@pytest.fixture(scope='module')
def vgg_file(tmp_path_factory) -> Path:
    """Random VGG19 features under the torchvision file name the perceptual loss looks for."""
    return write_random_vgg19(tmp_path_factory.mktemp('vgg') / 'vgg19-dcbb9e9d.pth')
