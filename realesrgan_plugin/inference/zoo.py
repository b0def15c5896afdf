"""The official Real-ESRGAN model zoo: names, release URLs, checksums, and a download cache.

Release files are kept in the plugin's cache folder (``REALESRGAN_PLUGIN_CACHE``, see the
README's environment variables), never the current directory. They are fetched and trusted by
``core.download``: sha256-verified, atomic, and re-hashed when a cached file's size or mtime
changes. ``REALESRGAN_PLUGIN_OFFLINE=1`` forbids downloads.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from realesrgan_plugin.core import env
from realesrgan_plugin.core.download import ChecksumMismatchError, DownloadError, download_file, verify_file

logger = logging.getLogger(__name__)
CACHE_ENV = env.CACHE  # the variable's name, for help texts
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


class ReleaseUnavailableError(RuntimeError):
    """A release file is not in the cache and may not (or could not) be downloaded, or the cached
    copy is corrupt where it cannot be fetched again."""


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """Where weights are kept: ``override``, else the plugin cache (``REALESRGAN_PLUGIN_CACHE``)."""
    return Path(override) if override is not None else env.cache_dir()


def cached_path(name: str, cache: str | os.PathLike | None = None) -> Path:
    """Path the zoo file ``name`` has in the cache (whether or not it is there)."""
    return cache_dir(cache) / entry(name).filename


def entry(name: str) -> ZooEntry:
    if name not in ZOO:
        raise KeyError(f'unknown model {name!r}; official names: {", ".join(ZOO)}')
    return ZOO[name]


def release_file(
    name: str, cache: str | os.PathLike | None = None, progress: bool = True, allow_download: bool = True
) -> Path:
    """The exact release file of zoo model ``name``: the verified cached copy, else a download.

    Raises :class:`ReleaseUnavailableError` naming the URL and the cache file when it cannot be had."""
    return download_entry(entry(name), cache_dir(cache), progress, allow_download)


def download_entry(
    item: ZooEntry, folder: str | os.PathLike, progress: bool = True, allow_download: bool = True
) -> Path:
    """``folder/<item's file name>``, sha256-verified: the cached file if it checks out, else a
    download (unless ``allow_download`` is False or ``REALESRGAN_PLUGIN_OFFLINE`` is set). A cached
    file that fails the check is fetched again, or named in the error when it cannot be."""
    target = Path(folder) / item.filename
    may_download = allow_download and not env.offline()
    rejected = ''
    if target.is_file():
        try:
            return verify_file(target, item.sha256)
        except ChecksumMismatchError as err:
            if not may_download:
                raise ReleaseUnavailableError(
                    f'{item.name}: the cached file is not the release file ({err}); delete it, or fetch '
                    f'{item.url} into {target.parent} again'
                ) from err
            logger.warning('%s; downloading %s again', err, item.name)
            rejected = f' (the cached copy was rejected: {err})'
    if not may_download:
        why = f'{env.OFFLINE} is set' if env.offline() else 'downloads are disabled'
        raise ReleaseUnavailableError(
            f'{item.name}: not in the cache ({target}) and {why}; fetch {item.url} into that folder'
        )
    try:
        return download_file(item.url, target, item.sha256, progress)
    except DownloadError as err:
        by_hand = f'save it by hand as {target} (then --offline or {env.OFFLINE}=1 skips the network)'
        raise ReleaseUnavailableError(f'{item.name}: {err}{rejected}; {by_hand}') from err
