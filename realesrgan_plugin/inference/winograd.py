"""Winograd F(6x6, 3x3) convolutions for CPU inference: 5x fewer multiplies than direct conv.

Real-ESRGAN's generators are almost all 3x3 / stride 1 / pad 1 convolutions, and oneDNN already
runs them near this CPU's GEMM peak, so the only way to go faster is less arithmetic. Winograd
F(6,3) turns a conv into a small input transform, 64 independent GEMMs with 64/36/9 = 0.20 of
the multiplies (F(4,3): 0.25), and an output transform. The transforms and the GEMMs are C loops
in ``kernels/winograd.c``, built once with the system C compiler into the plugin's cache folder
and loaded with ``ctypes``; without a compiler everything falls back to the direct convs.
Results differ from direct conv by float rounding only (the tests bound it at 2e-5 of the output's
range; x4plus, anime_6B and animevideov3 stay within 1 grey level of the direct convs on three
photos).

Tensors here are float32, NHWC (``[N, H, W, C]``, contiguous), on the CPU.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import json
import logging
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from realesrgan_plugin.core import env
from realesrgan_plugin.core.atomic import atomic_path, atomic_write

import torch
from filelock import FileLock
from filelock import Timeout as FileLockTimeout

logger = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name('kernels') / 'winograd.c'
CFLAGS = ('-O3', '-march=native', '-fopenmp', '-shared', '-fPIC')
STRIP_BYTES = 4 << 20  # per-strip V / M size for convs run in strips (stays in L2/L3)
KEEP_BYTES = 512 << 20  # scratch memory a Winograd net keeps between calls (a 128x128 x4plus needs ~210 MB)

TILE = 6  # output tile side of F(6x6, 3x3)
POINTS = (TILE + 2) ** 2  # Winograd points: one GEMM each
BLOCK_TILES = 6  # tiles per block of a transformed input: the GEMM's register block (GB in winograd.c)

# F(6, 3) filter transform for the points 0, +-1, +-2, +-1/2 and infinity (Lavin & Gray 2016);
# the data/output transforms of the same points live in the C file.
_G = torch.tensor(
    [
        [1, 0, 0],
        [-2 / 9, -2 / 9, -2 / 9],
        [-2 / 9, 2 / 9, -2 / 9],
        [1 / 90, 1 / 45, 2 / 45],
        [1 / 90, -1 / 45, 2 / 45],
        [32 / 45, 16 / 45, 8 / 45],
        [32 / 45, -16 / 45, 8 / 45],
        [0, 0, 1],
    ],
    dtype=torch.float64,
)


FAILED_BUILD_RETRY_S = 24 * 3600  # a build that failed is not tried again for a day
BUILD_TIMEOUT_S = 300

# Run once per new library, in a child process: a library built for another CPU (SIGILL) or
# damaged on disk crashes the child, not the caller. Tiny 4x4 input, one thread.
_SELF_TEST = """
import ctypes, sys
import torch  # loads the libgomp the kernels link against
lib = ctypes.CDLL(sys.argv[1])
x = (ctypes.c_float * 16)(*[float(i) for i in range(16)])
v = (ctypes.c_float * 384)()  # one block: 64 points x 6 tiles x 1 channel
lib.wino_input(x, 1, 4, 4, 1, 1, 0, 1, v, ctypes.c_long(1), ctypes.c_long(0), 0, 1)
y = (ctypes.c_float * 16)()
lib.wino_output(v, 1, 4, 4, 1, 0, 1, None, None, None, ctypes.c_float(1.0), y, 1)
assert any(value != 0 for value in v) and all(value == value for value in y), 'wrong results'
"""


def _cpu_signature() -> str:
    """What ``-march=native`` depends on, so that a shared cache never hands one CPU another's build:
    torch's detected vector capability plus the CPU's feature flags where the OS lists them
    (never an empty key: the capability and machine are always there)."""
    try:
        capability = torch.backends.cpu.get_cpu_capability()
    except (AttributeError, RuntimeError):
        capability = 'unknown-capability'
    return ' '.join(part for part in (platform.machine() or 'unknown-machine', capability, _cpu_flags()) if part)


def _cpu_flags() -> str:
    """The CPU feature flags Linux lists; elsewhere whatever ``platform.processor()`` says (may be empty)."""
    try:
        return next(line for line in Path('/proc/cpuinfo').read_text().splitlines() if line.startswith('flags'))
    except (OSError, StopIteration):
        return platform.processor()


def _compiler() -> str | None:
    return os.environ.get('CC') or shutil.which('cc') or shutil.which('gcc')


def _library_path(compiler: str) -> Path:
    """``<cache>/kernels/winograd-<hash>.so``; the hash covers the source, compiler, flags and CPU."""
    key = hashlib.sha256(SOURCE.read_bytes())
    key.update(' '.join((compiler, *CFLAGS, _cpu_signature())).encode())
    return env.cache_dir() / 'kernels' / f'winograd-{key.hexdigest()[:16]}.so'


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + '.stamp')


def _failure_path(target: Path) -> Path:
    return target.with_name(target.name + '.failed')


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_small_file(path: Path, text: str) -> None:
    with atomic_write(path, fsync=False) as f:
        f.write(text.encode())


def _stamp_matches(target: Path) -> bool:
    """True when the library has the size and hash recorded right after it was built and tested."""
    try:
        stamp = json.loads(_stamp_path(target).read_text())
        return target.stat().st_size == stamp['size'] and _file_digest(target) == stamp['sha256']
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _recent_failure(target: Path) -> str | None:
    """The reason of a build that failed here less than a day ago (then nobody tries again)."""
    path = _failure_path(target)
    try:
        if time.time() - path.stat().st_mtime < FAILED_BUILD_RETRY_S:
            return path.read_text().strip() or 'unknown reason'
    except OSError:
        pass
    return None


def _record_failure(target: Path, reason: str) -> None:
    try:
        _write_small_file(_failure_path(target), reason[-2000:])
    except OSError:
        pass  # a read-only cache: the next process tries again, nothing worse


def _self_test(library: Path) -> None:
    """Load and call the library in a child process; raise RuntimeError when that child dies."""
    cmd = [sys.executable, '-c', _SELF_TEST, str(library)]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.SubprocessError) as err:
        raise RuntimeError(f'the self-test of {library} could not run: {err}') from err
    if res.returncode:
        why = f'signal {-res.returncode}' if res.returncode < 0 else res.stderr.strip().splitlines()[-1:]
        raise RuntimeError(f'the self-test of {library} failed ({why})')


def _build(compiler: str, target: Path) -> None:
    """Compile into a temporary file, self-test it, then rename and stamp it: concurrent builders
    never see half a library, and a stamp only exists for a library that ran."""
    with atomic_path(target, suffix='.so') as tmp:
        cmd = [compiler, *CFLAGS, str(SOURCE), '-o', str(tmp)]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False)
        except (OSError, subprocess.SubprocessError) as err:
            raise RuntimeError(f'{" ".join(cmd)} failed: {err}') from err
        if res.returncode:
            raise RuntimeError(f'{" ".join(cmd)} failed:\n{res.stderr[-2000:]}')
        _self_test(tmp)
        digest, size = _file_digest(tmp), os.path.getsize(tmp)
    _write_small_file(_stamp_path(target), json.dumps({'size': size, 'sha256': digest}))


def _verified_library(compiler: str) -> Path:
    """The cached library, (re)built when it is missing or does not match its stamp (truncated,
    overwritten, left by a killed build). A file lock makes concurrent processes build it once."""
    target = _library_path(compiler)
    if _stamp_matches(target):
        return target
    failure = _recent_failure(target)
    if failure is not None:
        raise RuntimeError(
            f'the build failed less than {FAILED_BUILD_RETRY_S // 3600} h ago, not retried '
            f'(delete {_failure_path(target)} to retry): {failure.splitlines()[-1]}'
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + '.lock', timeout=BUILD_TIMEOUT_S + 60):
        if _stamp_matches(target):  # another process built it meanwhile
            return target
        if target.exists():
            logger.warning('cached Winograd library %s does not match its stamp: rebuilding it', target)
        logger.info('building the Winograd kernels into %s', target)
        try:
            _build(compiler, target)
        except RuntimeError as err:
            _record_failure(target, str(err))
            raise
    return target


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    ptr, i32, i64, f32 = ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_float
    lib.wino_input.argtypes = [ptr, i32, i32, i32, i32, i32, i32, i32, ptr, i64, i64, i32, i32]
    lib.wino_input.restype = None
    lib.wino_output.argtypes = [ptr, i32, i32, i32, i32, i32, i32, ptr, ptr, ptr, f32, ptr, i32]
    lib.wino_output.restype = None
    lib.wino_gemm.argtypes = [ptr, i64, i64, i32, ptr, i32, ptr, i32]
    lib.wino_gemm.restype = None
    return lib


@functools.lru_cache(maxsize=1)
def load_kernels() -> ctypes.CDLL | None:
    """The compiled transforms (built and tested on first use), or None when they cannot be had here.

    ``REALESRGAN_PLUGIN_WINOGRAD=0`` turns them off. No compiler, a missing source file, a
    read-only cache, a failed build or self-test: the reason is logged once and the callers use
    the direct convs; this never raises."""
    if not env.winograd_enabled():
        logger.info('Winograd kernels disabled by %s=0', env.WINOGRAD)
        return None
    compiler = _compiler()
    if compiler is None:
        logger.warning('no C compiler (cc/gcc or $CC) found: CPU inference uses direct convolutions')
        return None
    try:
        lib = _declare(ctypes.CDLL(str(_verified_library(compiler))))
    except (OSError, RuntimeError, subprocess.SubprocessError, FileLockTimeout) as err:
        logger.warning('Winograd kernels unavailable (%s): CPU inference uses direct convolutions', err)
        return None
    return lib


_forked = False


def _note_fork() -> None:
    global _forked
    _forked = True


if hasattr(os, 'register_at_fork'):
    os.register_at_fork(after_in_child=_note_fork)


def kernel_threads() -> int:
    """OpenMP threads for the transforms: torch's count, but one in a forked process (a DataLoader
    worker...): GNU OpenMP's thread pool does not survive ``fork``, and a parallel region there
    can hang. A team of one never touches the pool."""
    return 1 if _forked else torch.get_num_threads()


def available() -> bool:
    return load_kernels() is not None


def transform_weight(weight: torch.Tensor) -> torch.Tensor:
    """``[Cout, Cin, 3, 3]`` conv weight -> ``[64, Cin, Cout]`` float32 (computed in float64)."""
    if weight.shape[-2:] != (3, 3):
        raise ValueError(f'Winograd F(6,3) needs 3x3 kernels, got weight of shape {tuple(weight.shape)}')
    u = torch.einsum('ak,oikl,bl->aboi', _G, weight.detach().double().cpu(), _G)
    return u.reshape(POINTS, weight.shape[0], weight.shape[1]).transpose(1, 2).contiguous().float()


def tile_rows(h: int) -> int:
    """Rows of output tiles that cover ``h`` pixels."""
    return (h + TILE - 1) // TILE


def tile_count(n: int, rows: int, w: int) -> int:
    """Tiles in ``rows`` tile rows of ``n`` images ``w`` pixels wide."""
    return n * rows * tile_rows(w)


def _ptr(t: torch.Tensor | None) -> ctypes.c_void_p | None:
    return None if t is None else ctypes.c_void_p(t.data_ptr())


def _check(name: str, t: torch.Tensor) -> None:
    if t.dtype != torch.float32 or t.device.type != 'cpu' or not t.is_contiguous():
        raise ValueError(f'{name} must be a contiguous float32 CPU tensor, got {t.dtype} on {t.device}')


def v_shape(tiles: int, channels: int) -> tuple[int, int, int, int]:
    """Shape of a transformed input: ``[blocks, 64 points, BLOCK_TILES, channels]``. Point ``p``
    of tile ``t`` is row ``t % BLOCK_TILES`` of block ``(t // BLOCK_TILES, p)``: each GEMM block
    reads contiguous rows, and a tile's 64 points are written close together (64 far-apart
    write streams, one per point, cost F(6,3) a quarter of its speed)."""
    return -(-tiles // BLOCK_TILES), POINTS, BLOCK_TILES, channels


def input_transform(
    x: torch.Tensor, v: torch.Tensor, c_off: int = 0, up: int = 1, ty0: int = 0, nty: int = -1, stream: bool = False
) -> None:
    """Write the transform of ``x`` ``[N, Hs, Ws, C]`` (seen upsampled ``up`` times, nearest) into
    channels ``c_off:c_off + C`` of ``v`` (:func:`v_shape`) for tile rows ``[ty0, ty0 + nty)``.
    ``stream``: write around the cache, for a ``v`` too big to stay there (halves the memory
    traffic: no line is read before it is overwritten); a cache-sized ``v`` is better without."""
    _check('x', x)
    _check('v', v)
    n, hs, ws, c = x.shape
    nty = tile_rows(hs * up) - ty0 if nty < 0 else nty
    if v.shape[:3] != v_shape(tile_count(n, nty, ws * up), c)[:3]:
        raise ValueError(f'V buffer of shape {tuple(v.shape)} does not fit {nty} tile rows of {tuple(x.shape)}')
    if c_off + c > v.shape[3]:
        raise ValueError(f'V buffer of shape {tuple(v.shape)} has no room for {c} channels at {c_off}')
    load_kernels().wino_input(
        _ptr(x), n, hs, ws, c, up, ty0, nty, _ptr(v), v.shape[3], c_off, int(stream), kernel_threads()
    )


def gemm(v: torch.Tensor, k: int, u: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``out[t, p] = v[t, p, :k] @ u[p]`` for the 64 Winograd points (``out``: ``[T, 64, Cout]``,
    tile-major for the output transform). Only the first ``k`` channels of ``v`` are read: a
    dense block's later convs read a leading slice of one buffer. The C kernel keeps 6 tiles x 2
    vectors of outputs in registers and prefetches the next block of ``v`` (it comes from memory):
    about 1.5x MKL's ``bmm`` for these narrow outputs on a 1-core AVX2 EPYC."""
    _check('v', v)
    _check('u', u)
    _check('out', out)
    t, n_out = out.shape[0], out.shape[2]
    if v.shape[:3] != v_shape(t, k)[:3] or not 0 < k <= v.shape[3] or u.shape != (POINTS, k, n_out):
        shapes = f'v {tuple(v.shape)}, k {k}, u {tuple(u.shape)}, out {tuple(out.shape)}'
        raise ValueError(f'GEMM shapes do not fit: {shapes}')
    load_kernels().wino_gemm(_ptr(v), v.shape[3], t, k, _ptr(u), n_out, _ptr(out), kernel_threads())
    return out


def output_transform(
    m: torch.Tensor,
    y: torch.Tensor,
    bias: torch.Tensor | None = None,
    slope: torch.Tensor | None = None,
    residual: torch.Tensor | None = None,
    alpha: float = 1.0,
    ty0: int = 0,
    nty: int = -1,
) -> None:
    """``y[:, rows of tiles ty0..]`` = A^T m A + bias, then the per-channel leaky ``slope`` or
    ``alpha * out + residual``. ``m``: ``[T, 64, Cout]``; ``y``/``residual``: ``[N, H, W, Cout]``."""
    _check('m', m)
    _check('y', y)
    n, h, w, co = y.shape
    nty = tile_rows(h) - ty0 if nty < 0 else nty
    if m.shape != (tile_count(n, nty, w), POINTS, co):
        raise ValueError(f'M of shape {tuple(m.shape)} does not fit {nty} tile rows of output {tuple(y.shape)}')
    for name, t in (('bias', bias), ('slope', slope), ('residual', residual)):
        if t is not None:
            _check(name, t)
    if residual is not None and residual.shape != y.shape:
        raise ValueError(f'residual {tuple(residual.shape)} and output {tuple(y.shape)} differ')
    load_kernels().wino_output(
        _ptr(m), n, h, w, co, ty0, nty, _ptr(bias), _ptr(slope), _ptr(residual), alpha, _ptr(y), kernel_threads()
    )


class Workspace:
    """Named scratch tensors kept between calls: re-faulting hundreds of MB per image costs more
    than the transforms themselves. Each name owns one flat buffer that only grows; a request
    gets a contiguous view of its front, so the last, smaller batch of tiles or a smaller image
    reuses it. After a call, :meth:`trim` lets go of the largest buffers so a big image does not
    pin its memory. Tensors under different names never overlap."""

    def __init__(self, keep_bytes: int = KEEP_BYTES) -> None:
        self._buffers: dict[str, torch.Tensor] = {}
        self.keep_bytes = keep_bytes

    def get(self, name: str, *shape: int) -> torch.Tensor:
        numel = math.prod(shape)
        buf = self._buffers.get(name)
        if buf is None or buf.numel() < numel:
            self._buffers.pop(name, None)  # free the old one before allocating the larger one
            buf = self._buffers[name] = torch.empty(numel)
        return buf[:numel].view(shape)

    def clear(self) -> None:
        self._buffers.clear()

    def nbytes(self) -> int:
        return sum(b.numel() * b.element_size() for b in self._buffers.values())

    def trim(self) -> None:
        """Drop the largest buffers until at most ``keep_bytes`` are held."""
        for name in sorted(self._buffers, key=lambda k: self._buffers[k].numel(), reverse=True):
            if self.nbytes() <= self.keep_bytes:
                break
            del self._buffers[name]


class WinogradConv:
    """One 3x3 conv (+ bias, + leaky slope or scaled residual), NHWC in and out, run in strips of
    tile rows so the transformed tensors stay cache-sized whatever the image size."""

    def __init__(self, conv: torch.nn.Conv2d, slope: float | torch.Tensor | None = None) -> None:
        if conv.kernel_size != (3, 3) or conv.stride != (1, 1) or conv.padding != (1, 1) or conv.groups != 1:
            raise ValueError(f'WinogradConv needs a 3x3 / stride 1 / pad 1 conv, got {conv}')
        self.u = transform_weight(conv.weight)
        self.cin, self.cout = self.u.shape[1], self.u.shape[2]
        self.bias = None if conv.bias is None else conv.bias.detach().float().cpu().contiguous()
        if isinstance(slope, (int, float)):
            slope = torch.full((self.cout,), float(slope))
        self.slope = None if slope is None else slope.detach().float().cpu().reshape(-1).expand(self.cout).contiguous()

    def __call__(
        self,
        x: torch.Tensor,
        work: Workspace,
        up: int = 1,
        residual: torch.Tensor | None = None,
        alpha: float = 1.0,
        out: torch.Tensor | None = None,
    ) -> torch.Tensor:
        n, hs, ws, c = x.shape
        if c != self.cin:
            raise ValueError(f'conv expects {self.cin} input channels, got {c}')
        h, w = hs * up, ws * up
        y = torch.empty(n, h, w, self.cout) if out is None else out
        tiles_per_row = tile_count(n, 1, w)
        rows_total = tile_rows(h)
        strip = max(1, min(rows_total, STRIP_BYTES // (POINTS * tiles_per_row * 4 * max(self.cin, self.cout))))
        for ty0 in range(0, rows_total, strip):
            nty = min(strip, rows_total - ty0)
            v = work.get('strip_v', *v_shape(tiles_per_row * nty, self.cin))
            m = work.get('strip_m', tiles_per_row * nty, POINTS, self.cout)
            input_transform(x, v, 0, up, ty0, nty)
            gemm(v, self.cin, self.u, m)
            output_transform(m, y, self.bias, self.slope, residual, alpha, ty0, nty)
        return y
