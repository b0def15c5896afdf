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
import sys
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from realesrgan_plugin.core.atomic import DiskWriteError, atomic_path
from realesrgan_plugin.core.cli_errors import CliArgumentParser, FailedError, UsageError, quiet_opencv, run_cli
from realesrgan_plugin.inference.cli import add_model_arguments, check_model_arguments, check_writable, load_upsampler

if TYPE_CHECKING:  # at run time av, numpy and tqdm load on use: `realesrgan-video --help` stays fast
    import av
    import numpy as np

FrameFn = Callable[['np.ndarray'], 'np.ndarray']
X264_LIKE = ('libx264', 'libx265')
DEFAULT_CODEC = 'libx264'
CODEC_BY_CONTAINER = {'.webm': 'libvpx-vp9'}  # WebM takes only VP8/VP9/AV1 video


class VideoError(RuntimeError):
    """A video could not be read or written; the message names the file."""


def _even(img: np.ndarray) -> np.ndarray:
    """yuv420p needs even width and height: replicate the last row/column when odd."""
    import numpy as np

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


def default_codec(suffix: str) -> str:
    """The video encoder for an output extension: libx264, except where the container refuses H.264."""
    return CODEC_BY_CONTAINER.get(suffix.lower(), DEFAULT_CODEC)


def encoder_sample_rate(codec: str, rate: int) -> int:
    """``rate`` when the audio encoder takes it, else the nearest rate it takes, preferring higher
    ones (libopus: 44.1 kHz -> 48 kHz); FFmpeg's encoder refuses to open otherwise."""
    import av

    rates = av.codec.Codec(codec, 'w').audio_rates
    if not rates or rate in rates:
        return rate
    return min(rates, key=lambda r: (r < rate, abs(r - rate)))


class _AudioCopy:
    """One input audio stream to the output: remuxed packets, or decoded and re-encoded when the
    output container does not accept the codec."""

    def __init__(self, src: av.audio.stream.AudioStream, out: av.container.OutputContainer) -> None:
        self.src = src
        self.remux = src.codec_context.name in out.supported_codecs
        if self.remux:
            self.dst = out.add_stream_from_template(src)
        else:
            codec = _audio_codec_for(out)
            rate = encoder_sample_rate(codec, src.codec_context.sample_rate)  # PyAV's encoder resamples
            self.dst = out.add_stream(codec, rate=rate, layout=src.codec_context.layout.name)
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
    codec: str | None = None,
    crf: int = 18,
    preset: str = 'medium',
    pix_fmt: str = 'yuv420p',
    copy_audio: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Decode ``src``, pass each frame (BGR uint8) through ``frame_fn``, encode to ``dst``.

    ``codec`` None: by container (:func:`default_codec`). Returns a summary (frames, fps, size,
    audio streams and whether they were remuxed)."""
    import av

    src, dst = Path(src), Path(dst)
    codec = codec or default_codec(dst.suffix)
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
    import av

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
    import av
    import numpy as np
    from tqdm import tqdm

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
    import av

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
    upsampler = load_upsampler(args)
    return lambda img: upsampler.enhance(img, outscale=args.outscale)


EXAMPLES = (
    'realesrgan-video -i clip.mp4 -o clip_x4.mp4',
    'realesrgan-video -i clip.mp4 -o clip_x2.webm -s 2 -t 512',
    'realesrgan-video -i clip.mkv -o clip_x4.mkv -n realesr-general-x4v3 -dn 0.3 --no_audio',
)


def build_parser() -> argparse.ArgumentParser:
    """realesrgan-infer's model flags (same spellings and defaults) plus the video ones."""
    parser = CliArgumentParser(
        prog='realesrgan-video',
        description='Upscale a video with Real-ESRGAN, keeping its frame timing and audio.',
        examples=EXAMPLES,
    )
    parser.add_argument('-i', '--input', required=True, help='input video (any format FFmpeg reads)')
    parser.add_argument('-o', '--output', required=True, help='output video (.mp4, .mkv, .mov, .webm ...)')
    add_model_arguments(parser, 'realesr-animevideov3', None)
    parser.add_argument('--codec', default=None, help='video encoder (unset: libx264, libvpx-vp9 for .webm)')
    parser.add_argument('--crf', type=int, default=18, help='x264/x265 quality, lower is better')
    parser.add_argument('--preset', default='medium', help='x264/x265 preset')
    parser.add_argument('--no_audio', action='store_true', help='drop the audio streams')
    parser.add_argument('--quiet', action='store_true', help='no progress bar')
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def check_video_arguments(args: argparse.Namespace) -> None:
    """Input, output, codec and quality checked before the model loads (exit 2 with one line)."""
    import av

    src, dst = Path(args.input), Path(args.output)
    if not src.is_file():
        raise UsageError('input video not found', f'-i {src}', 'give a video file')
    if dst.exists() and dst.resolve() == src.resolve():
        raise UsageError('the output is the input', f'-o {dst}', 'choose another output name')
    codec = args.codec or default_codec(dst.suffix)
    if codec not in av.codecs_available:
        raise UsageError(f'video encoder {codec!r} is not in this PyAV build', f'--codec {codec}', 'try libx264')
    if not 0 <= args.crf <= 63:
        raise UsageError('crf must be in [0, 63]', f'--crf {args.crf}', 'lower is better; the default is 18')
    check_writable(dst.parent, f'-o {dst}')
    _check_readable_video(src)


def _check_readable_video(src: Path) -> None:
    """The input opens and has a video stream: known before the model loads (exit 1 otherwise)."""
    try:
        with _open_input(src) as inp:
            if not inp.streams.video:
                raise VideoError(f'{str(src)!r} has no video stream')
    except VideoError as err:
        raise FailedError(str(err), f'-i {src}', 'give a video file FFmpeg can read') from err


def main(argv: Sequence[str] | None = None, frame_fn: FrameFn | None = None) -> int:
    return run_cli(lambda args: _main(args, frame_fn), argv)


def _main(argv: list[str], frame_fn: FrameFn | None) -> int:
    args = parse_args(argv)
    quiet_opencv()
    check_model_arguments(args)
    check_video_arguments(args)
    fn = frame_fn or build_upsampler(args)
    try:
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
    except VideoError as err:  # its message names the file
        raise FailedError(str(err)) from err
    except DiskWriteError as err:  # names the output and says what to do; nothing partial left, an old output kept
        raise UsageError(str(err)) from err
    print(
        f'wrote {summary["output"]}: {summary["frames"]} frames at {summary["fps"]:.3f} fps, '
        f'{summary["size"][0]}x{summary["size"][1]}, {summary["audio_streams"]} audio stream(s)'
    )
    return 0


if __name__ == '__main__':
    sys.exit(main())
