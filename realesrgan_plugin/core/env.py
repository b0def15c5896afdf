"""The plugin's environment variables, read here and nowhere else: one small accessor per variable.

Every variable is named ``REALESRGAN_PLUGIN_*`` and listed in README.md ("Environment
variables"); a new one is added here and to that table. The values are read at each call (not
on import), so a test or a tool may set them at any time. A bad value is an error that names
the variable and the value.
"""

from __future__ import annotations

import datetime
import logging
import os
from pathlib import Path

OFFLINE = 'REALESRGAN_PLUGIN_OFFLINE'
CACHE = 'REALESRGAN_PLUGIN_CACHE'
VGG_WEIGHTS = 'REALESRGAN_PLUGIN_VGG_WEIGHTS'
DIST_TIMEOUT_MIN = 'REALESRGAN_PLUGIN_DIST_TIMEOUT_MIN'
WINOGRAD = 'REALESRGAN_PLUGIN_WINOGRAD'

# Names earlier versions read; they are no longer honoured, only pointed out once.
RENAMED = {
    'REALESRGAN_OFFLINE': OFFLINE,
    'REALESRGAN_VGG_WEIGHTS': VGG_WEIGHTS,
    'REALESRGAN_DIST_TIMEOUT_MIN': DIST_TIMEOUT_MIN,
}

_TRUE = ('1', 'true', 'yes', 'on')
_FALSE = ('0', 'false', 'no', 'off')
_warned: set[str] = set()
logger = logging.getLogger(__name__)


def _read(name: str) -> str | None:
    """The variable's value, None when unset or empty; warns once about a renamed old spelling."""
    for old, new in RENAMED.items():
        if new == name and old in os.environ and old not in _warned:
            _warned.add(old)
            logger.warning('%s is no longer read: rename it %s', old, new)
    value = os.environ.get(name, '').strip()
    return value or None


def _flag(name: str, default: bool) -> bool:
    value = _read(name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ValueError(f'{name}={value!r}: expected 1/0 (or true/false, yes/no, on/off)')


def offline() -> bool:
    """``REALESRGAN_PLUGIN_OFFLINE=1``: download nothing (model zoo, face and VGG weights); zoo
    names then use the packaged ncnn copies where there are some."""
    return _flag(OFFLINE, False)


def cache_dir() -> Path:
    """``REALESRGAN_PLUGIN_CACHE``: the plugin's cache (zoo weights, face weights, built kernels);
    default ``~/.cache/realesrgan_plugin``."""
    value = _read(CACHE)
    return Path(value).expanduser() if value else Path.home() / '.cache' / 'realesrgan_plugin'


def vgg_weights_path() -> Path | None:
    """``REALESRGAN_PLUGIN_VGG_WEIGHTS``: a local file with the perceptual loss's ImageNet VGG weights."""
    value = _read(VGG_WEIGHTS)
    return Path(value).expanduser() if value else None


def dist_timeout() -> datetime.timedelta:
    """``REALESRGAN_PLUGIN_DIST_TIMEOUT_MIN``: how long a rank waits for the others (minutes, default 30)."""
    value = _read(DIST_TIMEOUT_MIN)
    if value is None:
        return datetime.timedelta(minutes=30)
    try:
        minutes = float(value)
    except ValueError:
        raise ValueError(f'{DIST_TIMEOUT_MIN}={value!r}: expected a number of minutes') from None
    if minutes <= 0:
        raise ValueError(f'{DIST_TIMEOUT_MIN}={value!r}: expected a positive number of minutes')
    return datetime.timedelta(minutes=minutes)


def winograd_enabled() -> bool:
    """``REALESRGAN_PLUGIN_WINOGRAD=0`` turns the compiled Winograd CPU kernels off (default on)."""
    return _flag(WINOGRAD, True)
