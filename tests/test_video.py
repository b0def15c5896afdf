"""realesrgan-video on short generated clips: every frame goes through the frame function,
fps/timestamps are kept, audio is copied bit for bit (or re-encoded when the container needs
it), and an interrupted or failed run leaves no output behind (an existing one is untouched)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from fractions import Fraction
from pathlib import Path

import realesrgan_plugin.basicsr  # noqa: F401  (compat + BasicSR registration before basicsr)
from realesrgan_plugin.archs.srvgg_arch import SRVGGNetCompact
from realesrgan_plugin.inference.video import VideoError, main, upscale_video

import av
import cv2
import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
FPS = Fraction(25)
N_FRAMES, W, H, RATE = 12, 48, 32, 16000


def clip_frame(i: int) -> np.ndarray:
    """BGR frame: a horizontal green ramp with a moving orange (B=0,G=128,R=255) bar."""
    img = np.zeros((H, W, 3), np.uint8)
    img[..., 1] = np.linspace(0, 200, W, dtype=np.uint8)[None]
    img[:, (i * 3) % (W - 8) : (i * 3) % (W - 8) + 8] = (0, 128, 255)
    return img


def make_clip(path: Path, audio_codec: str | None = 'aac', video_codec: str = 'libx264', rate: int = RATE) -> Path:
    """A short clip encoded with PyAV: N_FRAMES frames at 25 fps and a 440 Hz mono sine track."""
    with av.open(str(path), 'w') as out:
        video = out.add_stream(video_codec, rate=FPS, options={'crf': '10'})
        video.width, video.height, video.pix_fmt = W, H, 'yuv420p'
        audio = out.add_stream(audio_codec, rate=rate, layout='mono') if audio_codec else None
        for i in range(N_FRAMES):
            frame = av.VideoFrame.from_ndarray(clip_frame(i), format='bgr24')
            frame.pts, frame.time_base = i, 1 / FPS
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if audio is not None:
            n = int(rate * N_FRAMES / FPS)
            samples = (0.3 * 32767 * np.sin(2 * np.pi * 440 * np.arange(n) / rate)).astype(np.int16)
            for start in range(0, n, 1024):
                chunk = av.AudioFrame.from_ndarray(samples[None, start : start + 1024], format='s16', layout='mono')
                chunk.sample_rate, chunk.pts, chunk.time_base = rate, start, Fraction(1, rate)
                out.mux(audio.encode(chunk))
            out.mux(audio.encode(None))
    return path


def upscale_x2(img: np.ndarray) -> np.ndarray:
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    return cv2.resize(img, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)


def video_frames(path: Path) -> tuple[list[np.ndarray], list[float], Fraction]:
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        frames = list(c.decode(stream))
        return [f.to_ndarray(format='bgr24') for f in frames], [float(f.time) for f in frames], stream.average_rate


def audio_packets(path: Path) -> tuple[str, list[bytes]]:
    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        return stream.codec_context.name, [bytes(p) for p in c.demux(stream) if p.size]


@pytest.fixture
def clip(tmp_path) -> Path:
    return make_clip(tmp_path / 'in.mp4')


def test_frames_fps_and_audio_are_kept(clip, tmp_path):
    out = tmp_path / 'out.mp4'
    summary = upscale_video(clip, out, upscale_x2, progress=False)
    assert summary['frames'] == N_FRAMES and summary['size'] == (2 * W, 2 * H) and summary['audio_remuxed'] == [True]
    frames, times, fps = video_frames(out)
    src_frames, src_times, _ = video_frames(clip)
    assert fps == FPS and len(frames) == N_FRAMES
    assert times == pytest.approx(src_times)
    for got, src in zip(frames, src_frames, strict=True):  # the frame function's output, in BGR order
        assert got.shape == (2 * H, 2 * W, 3)
        assert np.abs(got.astype(int) - upscale_x2(src)).mean() < 4
    assert frames[0][:, 0:16].mean(axis=(0, 1)) == pytest.approx((0, 128, 255), abs=12)  # orange bar, not blue
    assert audio_packets(out) == audio_packets(clip)  # remuxed: the same AAC packets, not re-encoded


def test_audio_is_reencoded_when_the_container_refuses_the_codec(tmp_path):
    clip = make_clip(tmp_path / 'in.mkv', audio_codec='pcm_s16le')
    summary = upscale_video(clip, tmp_path / 'out.webm', upscale_x2, codec='libvpx-vp9', progress=False)
    assert summary['audio_remuxed'] == [False]
    with av.open(str(tmp_path / 'out.webm')) as c:
        assert c.streams.audio[0].codec_context.name == 'opus'
        duration = sum(f.samples / f.sample_rate for f in c.decode(c.streams.audio[0]))
    assert duration == pytest.approx(N_FRAMES / FPS, abs=0.05)
    assert len(video_frames(tmp_path / 'out.webm')[0]) == N_FRAMES


def test_no_audio_option_and_silent_input(tmp_path):
    silent = make_clip(tmp_path / 'silent.mp4', audio_codec=None)
    upscale_video(silent, tmp_path / 'a.mp4', upscale_x2, progress=False)
    upscale_video(make_clip(tmp_path / 'in.mp4'), tmp_path / 'b.mp4', upscale_x2, copy_audio=False, progress=False)
    for name in ('a.mp4', 'b.mp4'):
        with av.open(str(tmp_path / name)) as c:
            assert not c.streams.audio and c.streams.video[0].frames == N_FRAMES


def test_failure_midway_leaves_existing_output_untouched_and_no_partial(clip, tmp_path):
    out = tmp_path / 'out.mp4'
    out.write_bytes(b'previous result')
    calls = []

    def failing(img):
        calls.append(1)
        if len(calls) == 5:
            raise RuntimeError('model blew up')
        return upscale_x2(img)

    with pytest.raises(RuntimeError, match='blew up'):
        upscale_video(clip, out, failing, progress=False)
    assert out.read_bytes() == b'previous result'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['in.mp4', 'out.mp4']


SLOW_RUN = textwrap.dedent(
    """
    import sys, time, cv2
    from realesrgan_plugin.inference.video import main
    def slow(img):
        print('frame', flush=True)
        time.sleep(0.3)
        return cv2.resize(img, None, fx=2, fy=2)
    sys.exit(main(['-i', sys.argv[1], '-o', sys.argv[2], '--quiet'], frame_fn=slow))
    """
)


@pytest.mark.parametrize('sig', [signal.SIGKILL, signal.SIGTERM], ids=['sigkill', 'sigterm'])
def test_killed_run_leaves_no_corrupt_output(clip, tmp_path, sig):
    out = tmp_path / 'out.mp4'
    out.write_bytes(b'previous result')
    proc = subprocess.Popen(
        [sys.executable, '-c', SLOW_RUN, str(clip), str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    for _ in range(4):  # let it encode a few frames (output stream open, partial file growing)
        assert proc.stdout.readline() == 'frame\n', proc.stderr.read()
    proc.send_signal(sig)
    proc.wait(timeout=60)
    assert out.read_bytes() == b'previous result'
    partials = [p for p in tmp_path.iterdir() if p.name.startswith('.out.')]
    if sig == signal.SIGTERM:  # caught: clean exit code, temporary file removed
        assert proc.returncode == 143 and partials == []
    else:  # SIGKILL cannot be caught: at most a hidden .partial file, never a corrupt out.mp4
        assert proc.returncode == -signal.SIGKILL and all('.partial' in p.name for p in partials)
    # and a rerun completes
    upscale_video(clip, out, upscale_x2, progress=False)
    assert len(video_frames(out)[0]) == N_FRAMES


def test_bad_inputs_are_named(clip, tmp_path, capsys):
    with pytest.raises(VideoError, match='nope.mp4'):
        upscale_video(tmp_path / 'nope.mp4', tmp_path / 'o.mp4', upscale_x2)
    junk = tmp_path / 'junk.mp4'
    junk.write_bytes(b'not a video at all' * 10)
    with pytest.raises(VideoError, match='junk.mp4'):
        upscale_video(junk, tmp_path / 'o.mp4', upscale_x2)
    with pytest.raises(VideoError, match='refusing'):
        upscale_video(clip, clip, upscale_x2)
    with pytest.raises(VideoError, match=r"'\.xyz'"):
        upscale_video(clip, tmp_path / 'o.xyz', upscale_x2)
    assert not any(p.name.startswith('.o.') for p in tmp_path.iterdir())
    assert main(['-i', str(junk), '-o', str(tmp_path / 'o.mp4'), '--quiet'], frame_fn=upscale_x2) == 1
    assert 'junk.mp4' in capsys.readouterr().err
    assert not (tmp_path / 'o.mp4').exists()


def test_cli_runs_the_upsampler_of_a_weights_file(clip, tmp_path):
    """realesrgan-video with --model-path: the plugin's Upsampler and model loader, x2 SRVGG."""
    torch.manual_seed(0)
    net = SRVGGNetCompact(num_feat=4, num_conv=1, upscale=2, act_type='prelu')
    torch.save({'params_ema': net.state_dict()}, tmp_path / 'tiny_x2.pth')
    out = tmp_path / 'out.mp4'
    assert main(['-i', str(clip), '-o', str(out), '--model-path', str(tmp_path / 'tiny_x2.pth'), '--quiet']) == 0
    frames, _, fps = video_frames(out)
    assert len(frames) == N_FRAMES and frames[0].shape == (2 * H, 2 * W, 3) and fps == FPS
    assert main(['-i', str(clip), '-o', str(out), '--model-path', str(tmp_path / 'none.pth'), '--quiet']) == 2


def audio_seconds(path: Path) -> float:
    """Decoded audio duration (samples / rate), 0 without an audio stream."""
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return 0.0
        return sum(f.samples / f.sample_rate for f in c.decode(c.streams.audio[0]))


@pytest.fixture(scope='module')
def tiny_srvgg(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp('w') / 'tiny_x2.pth'
    torch.save({'params_ema': SRVGGNetCompact(num_feat=4, num_conv=1, upscale=2).state_dict()}, path)
    return path


@pytest.mark.parametrize('rate', [44100, 48000, None], ids=['44k1', '48k', 'silent'])
@pytest.mark.parametrize('container', ['mp4', 'mkv', 'mov', 'webm'])
def test_every_container_with_every_audio_rate(tmp_path, tiny_srvgg, container, rate):
    """The CLI with no --codec: the container picks the encoder (VP9 for WebM) and audio the
    target codec cannot take at its rate (Opus at 44.1 kHz) is resampled; decoded with PyAV,
    frame count, fps and audio duration match the input."""
    src = make_clip(tmp_path / 'in.mp4', audio_codec='aac' if rate else None, rate=rate or RATE)
    out = tmp_path / f'out.{container}'
    assert main(['-i', str(src), '-o', str(out), '--model_path', str(tiny_srvgg), '--quiet', '--no-winograd']) == 0
    frames, _, fps = video_frames(out)
    assert len(frames) == len(video_frames(src)[0]) == N_FRAMES and frames[0].shape == (2 * H, 2 * W, 3)
    assert fps == FPS
    with av.open(str(out)) as c:
        codec = c.streams.video[0].codec_context.name
        audio_rate = c.streams.audio[0].codec_context.sample_rate if c.streams.audio else None
    assert codec == ('vp9' if container == 'webm' else 'h264')
    if rate is None:
        assert audio_rate is None
    else:
        assert audio_rate == (48000 if container == 'webm' else rate)  # Opus runs at 48 kHz
        assert audio_seconds(out) == pytest.approx(audio_seconds(src), abs=0.03)
