"""Upscale a video frame by frame: ``realesrgan-video -i in.mp4 -o out.mp4``.

Decoding, encoding and muxing go through PyAV (FFmpeg libraries from PyPI, no system ffmpeg).
Each frame goes through any ``Callable[[np.ndarray], np.ndarray]`` (BGR uint8 in and out), by
default an :class:`realesrgan_plugin.inference.Upsampler`. Frame timestamps (hence fps, also
variable) are kept; audio streams are copied packet by packet without re-encoding when the
output container accepts their codec, and re-encoded to AAC/Opus otherwise. The video is
written to a hidden temporary file next to the output and renamed over it only when complete,
so an interrupted or failed run never leaves a truncated output (an existing one is untouched).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

from realesrgan_plugin.core.atomic import DiskWriteError, atomic_path

import av
import numpy as np
from tqdm import tqdm

FrameFn = Callable[[np.ndarray], np.ndarray]
X264_LIKE = ('libx264', 'libx265')


class VideoError(RuntimeError):
    """A video could not be read or written; the message names the file."""


def _even(img: np.ndarray) -> np.ndarray:
    """yuv420p needs even width and height: replicate the last row/column when odd."""
    pad_h, pad_w = img.shape[0] % 2, img.shape[1] % 2
    if pad_h or pad_w:
        img = np.pad(img, ((0, pad_h), (0, pad_w), (0, 0)), mode='edge')
    return img


def _frame_rate(stream: av.video.stream.VideoStream) -> Fraction:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not rate:
        raise VideoError(f'{stream.container.name}: cannot tell the frame rate of video stream {stream.index}')
    return Fraction(rate)


def _audio_codec_for(container: av.container.OutputContainer) -> str:
    for name in ('aac', 'libopus', 'libmp3lame', 'pcm_s16le'):
        if name in container.supported_codecs:
            return name
    raise VideoError(f'{container.name}: the output format accepts none of the audio codecs aac/opus/mp3/pcm')


class _AudioCopy:
    """One input audio stream to the output: remuxed packets, or decoded and re-encoded when the
    output container does not accept the codec."""

    def __init__(self, src: av.audio.stream.AudioStream, out: av.container.OutputContainer) -> None:
        self.src = src
        self.remux = src.codec_context.name in out.supported_codecs
        if self.remux:
            self.dst = out.add_stream_from_template(src)
        else:
            rate = src.codec_context.sample_rate
            self.dst = out.add_stream(_audio_codec_for(out), rate=rate, layout=src.codec_context.layout.name)
        self.out = out

    def feed(self, packet: av.Packet) -> None:
        if self.remux:
            if packet.dts is None:  # demuxer flush packet
                return
            packet.stream = self.dst
            self.out.mux(packet)
            return
        for frame in packet.decode():
            frame.pts = None  # let the encoder number samples continuously
            self.out.mux(self.dst.encode(frame))

    def flush(self) -> None:
        if not self.remux:
            self.out.mux(self.dst.encode(None))


def upscale_video(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    frame_fn: FrameFn,
    *,
    codec: str = 'libx264',
    crf: int = 18,
    preset: str = 'medium',
    pix_fmt: str = 'yuv420p',
    copy_audio: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Decode ``src``, pass each frame (BGR uint8) through ``frame_fn``, encode to ``dst``.

    Returns a summary (frames, fps, size, audio streams and whether they were remuxed)."""
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise VideoError(f'input video not found: {str(src)!r}')
    if dst.exists() and dst.resolve() == src.resolve():
        raise VideoError(f'output {str(dst)!r} is the input: refusing to overwrite it')
    dst.parent.mkdir(parents=True, exist_ok=True)
    if codec not in av.codecs_available:
        raise VideoError(f'video codec {codec!r} is not available in this PyAV build')
    with atomic_path(dst, suffix=f'.partial{dst.suffix}') as tmp:
        summary = _transcode(src, tmp, dst.suffix, frame_fn, codec, crf, preset, pix_fmt, copy_audio, progress)
    summary['output'] = str(dst)
    return summary


def _open_input(src: Path) -> av.container.InputContainer:
    try:
        return av.open(str(src))
    except av.FFmpegError as err:
        raise VideoError(f'cannot open video {str(src)!r}: {err}') from err


def _transcode(
    src: Path,
    tmp: Path,
    suffix: str,
    frame_fn: FrameFn,
    codec: str,
    crf: int,
    preset: str,
    pix_fmt: str,
    copy_audio: bool,
    progress: bool,
) -> dict[str, Any]:
    with _open_input(src) as inp:
        if not inp.streams.video:
            raise VideoError(f'{str(src)!r} has no video stream')
        vin = inp.streams.video[0]
        vin.thread_type = 'AUTO'
        fps = _frame_rate(vin)
        try:  # the temporary name ends with the output's extension: FFmpeg picks the format from it
            out = av.open(str(tmp), 'w')
        except (av.FFmpegError, ValueError) as err:
            raise VideoError(f'cannot write a {suffix!r} video ({tmp.name}): {err}') from err
        with out:
            audio = [_AudioCopy(s, out) for s in inp.streams.audio] if copy_audio else []
            vout = None
            frames = 0
            total = vin.frames or None
            bar = tqdm(total=total, unit='frame', desc=f'upscale {src.name}', disable=not progress)
            held: list[av.Packet] = []  # audio before the first frame: the header needs the video stream first
            for packet in inp.demux([vin, *(a.src for a in audio)]):
                if packet.stream.type == 'audio':
                    if vout is None:
                        held.append(packet)
                    else:
                        _audio_for(audio, packet).feed(packet)
                    continue
                for frame in _decode(packet, src):
                    img = _even(np.ascontiguousarray(frame_fn(frame.to_ndarray(format='bgr24'))))
                    if vout is None:
                        vout = _add_video_stream(out, vin, codec, fps, img.shape, crf, preset, pix_fmt)
                        out.start_encoding()
                        for early in held:
                            _audio_for(audio, early).feed(early)
                        held.clear()
                    new = av.VideoFrame.from_ndarray(img, format='bgr24')
                    new.pts, new.time_base = frame.pts, frame.time_base
                    out.mux(vout.encode(new))
                    frames += 1
                    bar.update()
            bar.close()
            if vout is None:
                raise VideoError(f'{str(src)!r}: no decodable video frames')
            out.mux(vout.encode(None))
            for a in audio:
                a.flush()
            size = (vout.codec_context.width, vout.codec_context.height)
    return {
        'frames': frames,
        'fps': float(fps),
        'size': size,
        'audio_streams': len(audio),
        'audio_remuxed': [a.remux for a in audio],
    }


def _audio_for(audio: list[_AudioCopy], packet: av.Packet) -> _AudioCopy:
    return next(a for a in audio if a.src is packet.stream)


def _decode(packet: av.Packet, src: Path) -> list[av.VideoFrame]:
    try:
        return packet.decode()
    except av.FFmpegError as err:
        raise VideoError(f'{str(src)!r}: cannot decode video at pts {packet.pts}: {err}') from err


def _add_video_stream(
    out: av.container.OutputContainer,
    vin: av.video.stream.VideoStream,
    codec: str,
    fps: Fraction,
    shape: tuple[int, ...],
    crf: int,
    preset: str,
    pix_fmt: str,
) -> av.video.stream.VideoStream:
    options = {'crf': str(crf), 'preset': preset} if codec in X264_LIKE else {}
    stream = out.add_stream(codec, rate=fps, options=options)
    stream.height, stream.width = shape[:2]
    stream.pix_fmt = pix_fmt
    stream.codec_context.time_base = vin.time_base  # keep the input timestamps (and VFR) as they are
    stream.time_base = vin.time_base
    return stream


def build_upsampler(args: argparse.Namespace) -> FrameFn:
    """The default frame function: the plugin's Upsampler with the requested model."""
    from realesrgan_plugin.inference import Upsampler, load_model

    model, scale = load_model(args.model_path or args.model_name, denoise_strength=args.denoise_strength)
    upsampler = Upsampler(model, scale, tile=args.tile, tile_pad=args.tile_pad, dtype=args.dtype, device=args.device)
    return lambda img: upsampler.enhance(img, outscale=args.outscale)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog='realesrgan-video', description='Upscale a video with Real-ESRGAN, keeping fps and audio.'
    )
    parser.add_argument('-i', '--input', required=True, help='input video (any format FFmpeg reads)')
    parser.add_argument('-o', '--output', required=True, help='output video (.mp4, .mkv, .mov, .webm ...)')
    parser.add_argument(
        '-n', '--model-name', default='realesr-animevideov3', help='model zoo name (%(default)s, as the official)'
    )
    parser.add_argument('--model-path', help='weights file (.pth / .safetensors); overrides --model-name')
    parser.add_argument('-s', '--outscale', type=float, default=None, help='final scale (default: the model scale)')
    parser.add_argument('-t', '--tile', type=int, default=0, help='tile size, 0 = whole frame')
    parser.add_argument('--tile-pad', type=int, default=10)
    parser.add_argument('-dn', '--denoise-strength', type=float, help='realesr-general-x4v3 only: 0 weak .. 1 strong')
    parser.add_argument('--fp16', dest='dtype', action='store_const', const='fp16', help='float16 (GPU)')
    parser.add_argument('--bf16', dest='dtype', action='store_const', const='bf16', help='bfloat16 (GPU, recent CPUs)')
    parser.add_argument('--device', help='cpu, cuda, cuda:1, mps... (default: the first GPU, else CPU)')
    parser.add_argument('--codec', default='libx264', help='video encoder (default libx264)')
    parser.add_argument('--crf', type=int, default=18, help='x264/x265 quality, lower is better (default 18)')
    parser.add_argument('--preset', default='medium', help='x264/x265 preset (default medium)')
    parser.add_argument('--no-audio', action='store_true', help='drop the audio streams')
    parser.add_argument('--quiet', action='store_true', help='no progress bar')
    return parser.parse_args(argv)


def _raise_on_sigterm() -> None:
    """SIGTERM becomes an exception so the temporary file is cleaned up like on Ctrl-C."""

    def handler(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt(f'signal {signum}')

    signal.signal(signal.SIGTERM, handler)


def main(argv: Sequence[str] | None = None, frame_fn: FrameFn | None = None) -> int:
    args = parse_args(argv)
    _raise_on_sigterm()
    try:
        fn = frame_fn or build_upsampler(args)
        summary = upscale_video(
            args.input,
            args.output,
            fn,
            codec=args.codec,
            crf=args.crf,
            preset=args.preset,
            copy_audio=not args.no_audio,
            progress=not args.quiet,
        )
    except (VideoError, DiskWriteError, FileNotFoundError, ValueError, KeyError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print('interrupted: no output written', file=sys.stderr)
        return 130
    print(
        f'wrote {summary["output"]}: {summary["frames"]} frames at {summary["fps"]:.3f} fps, '
        f'{summary["size"][0]}x{summary["size"][1]}, {summary["audio_streams"]} audio stream(s)'
    )
    return 0


if __name__ == '__main__':
    sys.exit(main())
