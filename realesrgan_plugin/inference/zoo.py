"""The official Real-ESRGAN model zoo: names, release URLs, checksums, and a download cache.

Downloads go to an explicit cache folder (``$REALESRGAN_PLUGIN_CACHE`` or
``~/.cache/realesrgan_plugin``), never the current directory, through a temporary file that is
renamed into place only after its sha256 checked out: a killed download never leaves a file
that later loads as weights.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from realesrgan_plugin.core.atomic import atomic_write

CACHE_ENV = 'REALESRGAN_PLUGIN_CACHE'
RELEASES = 'https://github.com/xinntao/Real-ESRGAN/releases/download'


@dataclass(frozen=True)
class ZooEntry:
    name: str
    url: str
    # The official releases publish no checksums: these are the digests of the release files as
    # recorded independently by several public projects that pin them. None: not checked.
    sha256: str | None
    description: str

    @property
    def filename(self) -> str:
        return self.url.rsplit('/', 1)[1]


ZOO: dict[str, ZooEntry] = {
    e.name: e
    for e in (
        ZooEntry(
            'RealESRGAN_x4plus',
            f'{RELEASES}/v0.1.0/RealESRGAN_x4plus.pth',
            '4fa0d38905f75ac06eb49a7951b426670021be3018265fd191d2125df9d682f1',
            'x4 RRDBNet (23 blocks), general photos',
        ),
        ZooEntry(
            'RealESRNet_x4plus',
            f'{RELEASES}/v0.1.1/RealESRNet_x4plus.pth',
            'a820b9bde89a874d7599d545567308ce6c128fc8754a53208eda016d40aa81df',
            'x4 RRDBNet, PSNR-oriented',
        ),
        ZooEntry(
            'RealESRGAN_x4plus_anime_6B',
            f'{RELEASES}/v0.2.2.4/RealESRGAN_x4plus_anime_6B.pth',
            'f872d837d3c90ed2e05227bed711af5671a6fd1c9f7d7e91c911a61f155e99da',
            'x4 RRDBNet (6 blocks), anime images',
        ),
        ZooEntry(
            'RealESRGAN_x2plus',
            f'{RELEASES}/v0.2.1/RealESRGAN_x2plus.pth',
            '49fafd45f8fd7aa8d31ab2a22d14d91b536c34494a5cfe31eb5d89c2fa266abb',
            'x2 RRDBNet (pixel-unshuffle)',
        ),
        ZooEntry(
            'realesr-animevideov3',
            f'{RELEASES}/v0.2.5.0/realesr-animevideov3.pth',
            'b8a8376811077954d82ca3fcf476f1ac3da3e8a68a4f4d71363008000a18b75d',
            'x4 SRVGGNetCompact (16 convs), anime video',
        ),
        ZooEntry(
            'realesr-general-x4v3',
            f'{RELEASES}/v0.2.5.0/realesr-general-x4v3.pth',
            '8dc7edb9ac80ccdc30c3a5dca6616509367f05fbc184ad95b731f05bece96292',
            'x4 SRVGGNetCompact (32 convs), general scenes; DNI with the wdn model via denoise strength',
        ),
        ZooEntry(
            'realesr-general-wdn-x4v3',
            f'{RELEASES}/v0.2.5.0/realesr-general-wdn-x4v3.pth',
            '1641f8c4464b9f097c9fdda5589273713f67cf59f3d909e0bd688f0cee269dca',
            'realesr-general-x4v3 trained with stronger denoising (DNI partner)',
        ),
    )
}

DNI_PARTNER = {'realesr-general-x4v3': 'realesr-general-wdn-x4v3'}


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """Where weights are kept: ``override``, else ``$REALESRGAN_PLUGIN_CACHE``, else ``~/.cache/realesrgan_plugin``."""
    if override is not None:
        return Path(override)
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / '.cache' / 'realesrgan_plugin'


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def cached_path(name: str, cache: str | os.PathLike | None = None) -> Path:
    """Path the zoo file ``name`` has in the cache (whether or not it is there)."""
    return cache_dir(cache) / entry(name).filename


def entry(name: str) -> ZooEntry:
    if name not in ZOO:
        raise KeyError(f'unknown model {name!r}; official names: {", ".join(ZOO)}')
    return ZOO[name]


def download(name: str, cache: str | os.PathLike | None = None, progress: bool = True) -> Path:
    """Return the cached file of zoo model ``name``, downloading it atomically if missing.

    Raises ``RuntimeError`` naming the URL and the cache file when offline or on a bad checksum."""
    return download_entry(entry(name), cache_dir(cache), progress)


def download_entry(item: ZooEntry, folder: str | os.PathLike, progress: bool = True) -> Path:
    """Fetch ``item`` into ``folder/<its file name>`` unless present: temp file, sha256 check, rename."""
    name = item.name
    target = Path(folder) / item.filename
    if target.is_file():
        return target
    try:
        with atomic_write(target, suffix='.part') as out:
            got = _fetch(item.url, out, progress)
            if item.sha256 is not None and got != item.sha256:
                raise RuntimeError(f'{item.url}: sha256 {got} is not the official {item.sha256}; download discarded')
    except OSError as err:
        raise RuntimeError(f'Cannot download {name} from {item.url} into {target}: {err}') from err
    return target


def _fetch(url: str, out, progress: bool) -> str:
    """Stream ``url`` into ``out``; return the sha256 of what was written."""
    import urllib.request  # here, not at the top: it costs a third of `realesrgan-infer --help`

    from tqdm import tqdm

    with urllib.request.urlopen(url, timeout=60) as response:
        total = int(response.headers.get('Content-Length') or 0) or None
        digest = hashlib.sha256()
        with tqdm(total=total, unit='B', unit_scale=True, desc=url.rsplit('/', 1)[1], disable=not progress) as bar:
            for chunk in iter(lambda: response.read(1 << 20), b''):
                out.write(chunk)
                digest.update(chunk)
                bar.update(len(chunk))
    return digest.hexdigest()
