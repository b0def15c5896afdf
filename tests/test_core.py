"""Small host-free helpers of ``core``: environment variables, SLURM translation, verified downloads,
tiling windows, host memory reuse. Local files only (``file://`` URLs), never the network."""

from __future__ import annotations

import datetime
import json
import logging
import os
import subprocess
import sys
import textwrap

from realesrgan_plugin.core import download, env
from realesrgan_plugin.core.dist import export_slurm_env
from realesrgan_plugin.core.windows import window_starts

import pytest

# ----------------------------------------------------------------------------- environment variables


def test_every_variable_is_one_family():
    names = [env.OFFLINE, env.CACHE, env.VGG_WEIGHTS, env.DIST_TIMEOUT_MIN, env.WINOGRAD]
    assert all(n.startswith('REALESRGAN_PLUGIN_') for n in names)


def test_flags_parse_and_bad_values_name_the_variable(monkeypatch):
    monkeypatch.delenv(env.OFFLINE, raising=False)
    assert env.offline() is False
    for value, expected in (('1', True), ('yes', True), ('0', False), ('off', False), ('', False)):
        monkeypatch.setenv(env.OFFLINE, value)
        assert env.offline() is expected, value
    monkeypatch.setenv(env.OFFLINE, 'maybe')
    with pytest.raises(ValueError, match="REALESRGAN_PLUGIN_OFFLINE='maybe'"):
        env.offline()
    monkeypatch.setenv(env.WINOGRAD, '0')
    assert env.winograd_enabled() is False


def test_dist_timeout_and_cache_dir(monkeypatch, tmp_path):
    monkeypatch.delenv(env.DIST_TIMEOUT_MIN, raising=False)
    assert env.dist_timeout() == datetime.timedelta(minutes=30)
    monkeypatch.setenv(env.DIST_TIMEOUT_MIN, '2.5')
    assert env.dist_timeout() == datetime.timedelta(minutes=2.5)
    monkeypatch.setenv(env.DIST_TIMEOUT_MIN, 'soon')
    with pytest.raises(ValueError, match='REALESRGAN_PLUGIN_DIST_TIMEOUT_MIN'):
        env.dist_timeout()
    monkeypatch.setenv(env.CACHE, str(tmp_path))
    assert env.cache_dir() == tmp_path


def test_an_old_spelling_is_not_read_but_pointed_out(monkeypatch, caplog):
    monkeypatch.delenv(env.OFFLINE, raising=False)
    monkeypatch.setenv('REALESRGAN_OFFLINE', '1')
    monkeypatch.setattr(env, '_warned', set())
    with caplog.at_level(logging.WARNING, logger=env.__name__):
        assert env.offline() is False
    assert 'REALESRGAN_OFFLINE is no longer read: rename it REALESRGAN_PLUGIN_OFFLINE' in caplog.text


# ----------------------------------------------------------------------------- SLURM


@pytest.fixture
def slurm_env(monkeypatch):
    for key in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_PORT', 'SLURM_LOCALID'):
        # setenv first, so that the teardown also removes what export_slurm_env writes (a delenv of
        # an absent variable records nothing, and a leaked RANK=5 makes later tests a non-zero rank)
        monkeypatch.setenv(key, '')
        monkeypatch.delenv(key)
    monkeypatch.setenv('MASTER_ADDR', 'node7')  # set: scontrol is not asked
    monkeypatch.setenv('SLURM_PROCID', '5')
    monkeypatch.setenv('SLURM_NTASKS', '8')
    monkeypatch.setenv('SLURM_NODELIST', 'node[7-8]')
    return monkeypatch


def _torch_env() -> list[str]:
    return [os.environ[k] for k in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT')]


def test_slurm_local_rank_is_slurm_localid_when_present(slurm_env):
    slurm_env.setenv('SLURM_LOCALID', '1')
    export_slurm_env()
    assert _torch_env() == ['5', '8', '1', 'node7', '29500']


def test_slurm_local_rank_without_localid_is_procid_modulo_local_devices(slurm_env):
    import torch

    export_slurm_env(port=29611)
    assert _torch_env() == ['5', '8', str(5 % max(torch.cuda.device_count(), 1)), 'node7', '29611']


def test_slurm_without_its_variables_says_which(slurm_env):
    slurm_env.delenv('SLURM_NTASKS')
    with pytest.raises(RuntimeError, match=r"\['SLURM_NTASKS'\].*srun"):
        export_slurm_env()


# ----------------------------------------------------------------------------- verified downloads


@pytest.fixture
def release(tmp_path):
    src = tmp_path / 'server' / 'net.pth'
    src.parent.mkdir()
    src.write_bytes(os.urandom(4096))
    return src, download.sha256_of(src)


def test_download_verifies_renames_and_stamps(release, tmp_path):
    src, digest = release
    target = download.download_file(src.as_uri(), tmp_path / 'cache' / 'net.pth', digest, progress=False)
    assert target.read_bytes() == src.read_bytes()
    assert sorted(p.name for p in target.parent.iterdir()) == ['net.pth', 'net.pth.sha256']
    assert download.stamp_path(target).read_text().split()[0] == digest


def test_bad_download_leaves_nothing(release, tmp_path):
    src, _ = release
    cache = tmp_path / 'cache'
    with pytest.raises(download.DownloadError, match=f'{src.as_uri()} into .*net.pth.*hash'):
        download.download_file(src.as_uri(), cache / 'net.pth', '0' * 64, progress=False)
    assert list(cache.iterdir()) == []
    with pytest.raises(download.DownloadError, match='Cannot download'):
        download.download_file((tmp_path / 'missing').as_uri(), cache / 'x.pth', progress=False)


def test_a_stamped_file_is_hashed_once_then_again_when_it_changes(release, tmp_path, monkeypatch):
    src, digest = release
    cached = tmp_path / 'cache' / 'net.pth'
    cached.parent.mkdir()
    cached.write_bytes(src.read_bytes())
    hashed = []
    real_sha = download.sha256_of
    monkeypatch.setattr(download, 'sha256_of', lambda p: hashed.append(p) or real_sha(p))
    for _ in range(3):
        assert download.verify_file(cached, digest) == cached
    assert hashed == [cached]  # first use only; then the stamp vouches for it
    data = bytearray(cached.read_bytes())
    data[0] ^= 0xFF  # same size, other content, new mtime
    cached.write_bytes(bytes(data))
    os.utime(cached, ns=(cached.stat().st_atime_ns, cached.stat().st_mtime_ns + 10**9))
    with pytest.raises(download.ChecksumMismatchError, match=f'{cached}: sha256 .* is not the expected {digest}'):
        download.verify_file(cached, digest)
    assert len(hashed) == 2 and not download.stamp_path(cached).exists()


# ----------------------------------------------------------------------------- windows


def test_spread_windows_cover_the_side_evenly_and_aligned():
    assert window_starts(100, 64, 32, spread=True) == [0, 18, 36]
    assert window_starts(100, 64, 32, spread=True, align=4) == [0, 16, 36]
    assert window_starts(64, 64, 32, spread=True) == [0]


# ----------------------------------------------------------------------------- host memory

# A step's pattern in miniature: several 16 MiB buffers allocated, written, then all freed, again
# and again; prints whether the settings were made and the page faults of 10 cycles after 8 warm-up
# cycles (glibc places the first few cycles' buffers higher and higher before it reuses them).
STEP_LIKE_CYCLES = textwrap.dedent("""
    import json, resource, sys
    import torch
    from realesrgan_plugin.core.host_memory import keep_freed_memory_in_process
    kept = keep_freed_memory_in_process() if sys.argv[1] == 'keep' else None
    def cycle():
        buffers = [torch.ones(4, 1024, 1024) for _ in range(4)]
        del buffers
    for _ in range(8):
        cycle()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        cycle()
    print(json.dumps({'kept': kept, 'faults': resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
""")


def run_cycles(mode: str, **env_vars: str) -> dict:
    env_ = {k: v for k, v in os.environ.items() if not k.startswith('MALLOC_') and k != 'GLIBC_TUNABLES'}
    out = subprocess.run(
        [sys.executable, '-c', STEP_LIKE_CYCLES, mode], env={**env_, **env_vars}, capture_output=True, text=True,
        check=True, timeout=120,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not hasattr(os, 'confstr') or not os.confstr('CS_GNU_LIBC_VERSION'), reason='glibc only')
def test_freed_step_memory_is_reused_without_page_faults():
    """Cycles of 4 x 16 MiB written buffers: glibc with its default thresholds unmaps them and
    faults them in again; kept in the process, they are reused. (The plain run fixes glibc's
    defaults: its dynamic threshold otherwise depends on what the process did before, and then
    the faults come and go between runs.)"""
    defaults = {'MALLOC_MMAP_THRESHOLD_': '131072', 'MALLOC_TRIM_THRESHOLD_': '131072'}
    plain, kept = run_cycles('plain', **defaults), run_cycles('keep')
    assert plain['faults'] > 10 * 2048, plain
    assert kept['kept'] is True and kept['faults'] < 1000, kept


@pytest.mark.skipif(not hasattr(os, 'confstr') or not os.confstr('CS_GNU_LIBC_VERSION'), reason='glibc only')
@pytest.mark.parametrize('variable', ['MALLOC_TRIM_THRESHOLD_', 'GLIBC_TUNABLES'])
def test_the_users_own_malloc_settings_win(variable):
    value = '131072' if variable.startswith('MALLOC_') else 'glibc.malloc.trim_threshold=131072'
    assert run_cycles('keep', **{variable: value})['kept'] is False
