"""``RealESRGANer``: the official ``realesrgan.RealESRGANer`` API (0.3.0) as a thin facade over
:class:`~realesrgan_plugin.inference.upsampler.Upsampler`, plus the official ``PrefetchReader`` and
``IOConsumer`` helpers. Code written against the official class (GFPGAN's ``bg_upsampler``, web
UIs calling ``enhance``) works after changing its import only.

Fixes of official defects that the facade keeps (see README, "Migrating from the official package"):

* tiles overlap and are blended (``tile_process`` output matches untiled output, no seams);
* ``half=True`` on a CPU runs fp32 (fp16 convolutions are not supported / very slow there);
* out of memory shrinks the tile batch and the tile size and retries, where the official
  printed the error and then failed with ``NameError`` on the missing tile;
* ``enhance`` takes the bit depth from the array dtype (a dark 16-bit image stays 16-bit) and, for
  RGBA images, replaces a hidden colour that does not continue the visible edge (black, white,
  noise) by fills from the visible pixels, so no dark ring or fringe appears (``alpha_colour='auto'``);
* ``dni`` interpolates the weights that are then loaded (``params_ema`` when present; the official
  interpolated ``params`` and then loaded the untouched ``params_ema``);
* downloads go to the plugin's checked cache (``zoo``), never into the installed package.
"""

from __future__ import annotations

import copy
import os
import queue
import threading
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from realesrgan_plugin.core.img_io import read_image, write_image
from realesrgan_plugin.inference import zoo
from realesrgan_plugin.inference.upsampler import Upsampler, _pad_bottom_right
from realesrgan_plugin.inference.weights import interpolate_state_dicts, model_from_state_dict, read_state_dict

import numpy as np
import torch
from torch import nn

#: The official ``img_mode`` strings returned by :meth:`RealESRGANer.enhance`.
IMG_MODES = {2: 'L', 3: 'RGB', 4: 'RGBA'}


def _official_device(device: str | torch.device | None, gpu_id: int | None) -> torch.device:
    """The official rule: ``device`` if given, else ``cuda[:gpu_id]`` when CUDA exists, else CPU."""
    if device is not None:
        return torch.device(device)
    if not torch.cuda.is_available():
        return torch.device('cpu')
    return torch.device(f'cuda:{gpu_id}' if gpu_id else 'cuda')


def local_weights(model_path: str | os.PathLike) -> Path:
    """A local file for ``model_path``; a URL is fetched into the plugin's cache (sha256-checked
    when it is an official release file), as the official downloaded ``https://`` paths."""
    path = os.fspath(model_path)
    if '://' not in path:
        return Path(path)
    for name, item in zoo.ZOO.items():
        if item.url == path:
            return zoo.release_file(name)
    filename = path.rsplit('/', 1)[-1]
    return zoo.download_entry(zoo.ZooEntry(filename, path, None, 'RealESRGANer model_path'), zoo.cache_dir())


class RealESRGANer:
    """Upsample numpy images with a Real-ESRGAN network: the official class's constructor,
    attributes (``scale``, ``tile_size``, ``tile_pad``, ``pre_pad``, ``mod_scale``, ``half``,
    ``model``, ``device``, ``img``, ``output``) and methods, run by the plugin's :class:`Upsampler`.

    Args:
        scale: the network's upsampling factor.
        model_path: weights file, ``http(s)://`` URL (downloaded into the plugin cache), or a
            list of two files/URLs interpolated with ``dni_weight``.
        dni_weight: two weights for the two ``model_path`` entries (deep network interpolation).
        model: the network to load the weights into; None builds it from the weights (plugin
            extension: RRDBNet / SRVGGNetCompact are recognised from the state dict).
        tile: tile size in input pixels (0: whole image). Tiles overlap and are blended (no seams).
        tile_pad: context around each tile. pre_pad: reflect padding bottom/right.
        half: fp16 on CUDA/MPS; ignored (fp32) on a CPU, where fp16 convolutions are unusable.
        device / gpu_id: as the official (``device`` wins; else ``cuda:gpu_id``; else CPU).

    Differences: ``pre_process`` keeps ``img`` on the CPU in float32 (the Upsampler moves tiles to
    the device), ``process``/``tile_process``/``post_process`` produce a float32 CPU tensor clamped
    to [0, 1]; ``enhance`` runs :meth:`Upsampler.enhance` directly (overriding ``process`` in a
    subclass does not change it) and does not leave ``img``/``output`` behind.
    """

    def __init__(
        self,
        scale: int,
        model_path: str | os.PathLike | Sequence[str | os.PathLike],
        dni_weight: Sequence[float] | None = None,
        model: nn.Module | None = None,
        tile: int = 0,
        tile_pad: int = 10,
        pre_pad: int = 10,
        half: bool = False,
        device: str | torch.device | None = None,
        gpu_id: int | None = None,
    ) -> None:
        self.scale = scale
        self.tile_size = tile
        self.tile_pad = tile_pad
        self.pre_pad = pre_pad
        self.mod_scale: int | None = None
        self.mod_pad_h = self.mod_pad_w = 0
        self.device = _official_device(device, gpu_id)
        if half and self.device.type == 'cpu':
            warnings.warn('RealESRGANer: half=True ignored on the CPU (fp16 convs are unusable there)', stacklevel=2)
            half = False
        self.half = half
        self.img: torch.Tensor | None = None
        self.output: torch.Tensor | None = None

        if isinstance(model_path, (list, tuple)):
            if dni_weight is None or len(model_path) != len(dni_weight) or len(model_path) != 2:
                raise ValueError(
                    f'DNI needs two model paths and two dni_weight values, got {list(model_path)} and {dni_weight}'
                )
            state = self.dni(model_path[0], model_path[1], dni_weight, key=None)['params']
            source = ' + '.join(os.fspath(p) for p in model_path)
        else:
            source = os.fspath(model_path)
            state = read_state_dict(local_weights(model_path))
        if model is None:
            model, _ = model_from_state_dict(state, source)
        else:
            model.load_state_dict(state, strict=True)
        self.model = model

    # ------------------------------------------------------------------ the network
    @property
    def model(self) -> nn.Module:
        """The network (eval mode, on ``device``); assigning another one rebuilds the Upsampler."""
        return self._model

    @model.setter
    def model(self, net: nn.Module) -> None:
        net = net.eval().to(self.device)
        self._model = net.half() if self.half else net
        self._upsampler = Upsampler(
            self._model,
            self.scale,
            tile=self.tile_size,
            tile_pad=self.tile_pad,
            pre_pad=self.pre_pad,
            dtype=torch.float16 if self.half else torch.float32,
            device=self.device,
        )

    @property
    def upsampler(self) -> Upsampler:
        """The plugin :class:`Upsampler` doing the work, with this object's current tile settings."""
        up = self._upsampler
        up.tile, up.tile_pad, up.pre_pad = int(self.tile_size), int(self.tile_pad), int(self.pre_pad)
        return up

    def dni(
        self,
        net_a: str | os.PathLike,
        net_b: str | os.PathLike,
        dni_weight: Sequence[float],
        key: str | None = 'params',
        loc: str = 'cpu',
    ) -> dict[str, dict[str, torch.Tensor]]:
        """Deep network interpolation, ``dni_weight[0] * a + dni_weight[1] * b``, returned as
        ``{'params': state_dict}``. ``key`` picks the entry of both files (None: ``params_ema``,
        else ``params``, what the constructor loads). ``loc`` is accepted for compatibility:
        weights are always read on the CPU."""
        del loc
        a = read_state_dict(local_weights(net_a), key=key)
        b = read_state_dict(local_weights(net_b), key=key)
        return {'params': interpolate_state_dicts(a, b, float(dni_weight[0]), float(dni_weight[1]))}

    # ------------------------------------------------------------------ the official steps
    def pre_process(self, img: np.ndarray) -> None:
        """HxWx3 float RGB in [0, 1] -> ``self.img`` (1x3xHxW, pre-padded, padded to ``mod_scale``)."""
        x = torch.from_numpy(np.ascontiguousarray(np.transpose(img, (2, 0, 1)))).float()[None]
        x = _pad_bottom_right(x, self.pre_pad, self.pre_pad)
        self.mod_scale = {2: 2, 1: 4}.get(self.scale)
        self.mod_pad_h = self.mod_pad_w = 0
        if self.mod_scale is not None:
            _, _, h, w = x.shape
            self.mod_pad_h, self.mod_pad_w = (-h) % self.mod_scale, (-w) % self.mod_scale
            x = _pad_bottom_right(x, self.mod_pad_h, self.mod_pad_w)
        self.img = x

    def _run(self, tile: int) -> torch.Tensor:
        """The Upsampler on the already padded ``self.img`` (no second pre-pad)."""
        runner = copy.copy(self.upsampler)  # shares the prepared network
        runner.pre_pad, runner.tile = 0, tile
        return runner.upscale_tensor(self.img)

    def process(self) -> None:
        """``self.output`` = the network on ``self.img`` (tiled automatically on out-of-memory)."""
        self.output = self._run(0)

    def tile_process(self) -> None:
        """``self.output`` from overlapping ``tile_size`` tiles blended together (seam-free)."""
        self.output = self._run(int(self.tile_size))

    def post_process(self) -> torch.Tensor:
        """Remove the mod and pre padding from ``self.output`` and return it."""
        _, _, h, w = self.output.shape
        if self.mod_scale is not None:
            h, w = h - self.mod_pad_h * self.scale, w - self.mod_pad_w * self.scale
        if self.pre_pad:
            h, w = h - self.pre_pad * self.scale, w - self.pre_pad * self.scale
        self.output = self.output[:, :, :h, :w]
        return self.output

    # ------------------------------------------------------------------ the public call
    @torch.no_grad()
    def enhance(
        self, img: np.ndarray, outscale: float | None = None, alpha_upsampler: str = 'realesrgan'
    ) -> tuple[np.ndarray, str]:
        """Upscale a BGR / gray / BGRA image; returns ``(output, img_mode)`` with ``img_mode`` in
        'RGB', 'L', 'RGBA' (as the official). uint8 and uint16 keep their dtype; float arrays
        follow the official rule: values above 256 mean a 16-bit range (uint16 out), else 0..255
        (uint8 out). ``alpha_upsampler``: 'realesrgan' or any other value for a bilinear resize."""
        img = np.asarray(img)
        float_range = None
        if img.dtype.kind == 'f':
            float_range = 65535 if float(np.max(img)) > 256 else 255
            img = np.rint(np.clip(img, 0, float_range) * (65535 / float_range)).astype(np.uint16)
        img = Upsampler.check_image(img)
        mode = IMG_MODES[2 if img.ndim == 2 else img.shape[2]]
        alpha = alpha_upsampler if alpha_upsampler == 'realesrgan' else 'bilinear'
        output = self.upsampler.enhance(img, outscale=outscale, alpha_upsampler=alpha)
        if float_range == 255:
            output = np.rint(output / 257.0).astype(np.uint8)
        return output, mode


class PrefetchReader(threading.Thread):
    """Reads ``img_list`` in a background thread into a queue of ``num_prefetch_queue`` images;
    iterate over it to get them in order (as the official). Unreadable files raise
    :class:`~realesrgan_plugin.core.img_io.ImageReadError` naming the file where the official
    yielded ``None`` (which also ended the iteration early)."""

    _END = object()

    def __init__(self, img_list: Sequence[str | os.PathLike], num_prefetch_queue: int) -> None:
        super().__init__(daemon=True)
        self.que: queue.Queue = queue.Queue(num_prefetch_queue)
        self.img_list = list(img_list)

    def run(self) -> None:
        for path in self.img_list:
            try:
                self.que.put(read_image(path))
            except Exception as err:  # handed to the consumer, raised there
                self.que.put(err)
        self.que.put(self._END)

    def __next__(self) -> np.ndarray:
        item = self.que.get()
        if item is self._END:
            raise StopIteration
        if isinstance(item, Exception):
            raise item
        return item

    def __iter__(self) -> Iterator[np.ndarray]:
        return self


class IOConsumer(threading.Thread):
    """Writes ``{'output': image, 'save_path': path}`` messages from ``que`` until it gets 'quit'
    (as the official), atomically: a crash never leaves a half-written image."""

    def __init__(self, opt: Any, que: queue.Queue, qid: int) -> None:
        super().__init__(daemon=True)
        self._queue = que
        self.qid = qid
        self.opt = opt

    def run(self) -> None:
        while True:
            msg = self._queue.get()
            if isinstance(msg, str) and msg == 'quit':
                break
            write_image(msg['save_path'], msg['output'])
        print(f'IO worker {self.qid} is done.')


__all__ = ['IOConsumer', 'PrefetchReader', 'RealESRGANer', 'local_weights']
