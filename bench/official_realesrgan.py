"""Run the official ``realesrgan==0.3.0`` RealESRGANer in THIS process (never import the plugin here).

Used by ``bench/bench_inference.py`` and ``tests/test_inference.py`` through a subprocess: the
official package registers the same BasicSR names as the plugin. Forces CPU/GPU by ``--device``
and fp32 unless ``--half`` (the official fp16 default, which crashes on CPU). Prints one JSON
line: the enhance times, and on CUDA the peak GPU memory of the timed runs.

    python bench/official_realesrgan.py --model m.pth --input in.png [b.png] --output out.npy [b.npy] [--tile 64]
"""

import argparse
import importlib
import json
import sys
import time


def _alias_torchvision() -> None:
    """basicsr 1.4.2 imports a torchvision module renamed in 0.17; alias it (as the plugin does)."""
    name = 'torchvision.transforms.functional_tensor'
    try:
        importlib.import_module(name)
    except ImportError:
        sys.modules[name] = importlib.import_module('torchvision.transforms._functional_tensor')


def build_official_model(state: dict):
    """The official network for a state dict (same rules the official script uses, by shape)."""
    from basicsr.archs.rrdbnet_arch import RRDBNet
    from realesrgan.archs.srvgg_arch import SRVGGNetCompact

    if 'conv_first.weight' in state:
        nf, first_in = state['conv_first.weight'].shape[:2]
        blocks = 1 + max(int(k.split('.')[1]) for k in state if k.startswith('body.'))
        gc = state['body.0.rdb1.conv1.weight'].shape[0]
        scale = {3: 4, 12: 2, 48: 1}[first_in]
        return RRDBNet(3, 3, num_feat=nf, num_block=blocks, num_grow_ch=gc, scale=scale), scale
    convs = sorted(int(k.split('.')[1]) for k in state if k.endswith('.weight') and state[k].dim() == 4)
    nf = state['body.0.weight'].shape[0]
    scale = int((state[f'body.{convs[-1]}.weight'].shape[0] // 3) ** 0.5)
    return SRVGGNetCompact(3, 3, num_feat=nf, num_conv=len(convs) - 2, upscale=scale, act_type='prelu'), scale


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument('--model', required=True)
    p.add_argument('--input', required=True, nargs='+', help='one or more images (one model load for all)')
    p.add_argument('--output', required=True, nargs='+', help='.npy of each output image, in input order')
    p.add_argument('--tile', type=int, default=0)
    p.add_argument('--tile_pad', type=int, default=10)
    p.add_argument('--pre_pad', type=int, default=0)
    p.add_argument('--outscale', type=float, default=None)
    p.add_argument('--alpha_upsampler', default='realesrgan', help='for BGRA inputs (the official default)')
    p.add_argument('--device', default='cpu')
    p.add_argument('--threads', type=int, default=0)
    p.add_argument('--repeat', type=int, default=1)
    p.add_argument('--warmup', action='store_true', help='one untimed run on a 32x32 corner first')
    p.add_argument('--half', action='store_true', help='the official fp16 (CUDA only)')
    args = p.parse_args()
    _alias_torchvision()
    import cv2
    import numpy as np
    import torch
    from realesrgan import RealESRGANer

    if args.threads:
        torch.set_num_threads(args.threads)
    raw = torch.load(args.model, map_location='cpu', weights_only=True)
    state = raw.get('params_ema', raw.get('params', raw))
    model, scale = build_official_model(state)
    up = RealESRGANer(
        scale=scale,
        model_path=args.model,
        model=model,
        tile=args.tile,
        tile_pad=args.tile_pad,
        pre_pad=args.pre_pad,
        half=args.half,
        device=torch.device(args.device),
    )
    if len(args.input) != len(args.output):
        p.error('give one --output per --input')
    if args.warmup:  # what the plugin's side gets too: first-call set-up kept out of the timing
        first = cv2.imread(args.input[0], cv2.IMREAD_UNCHANGED)
        up.enhance(first[:32, :32], outscale=args.outscale, alpha_upsampler=args.alpha_upsampler)
    cuda = args.device.startswith('cuda')
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times, cpu_times = [], []
    for src, dst in zip(args.input, args.output, strict=True):
        img = cv2.imread(src, cv2.IMREAD_UNCHANGED)
        for _ in range(args.repeat):
            start, cpu_start = time.perf_counter(), time.process_time()
            out, _ = up.enhance(img, outscale=args.outscale, alpha_upsampler=args.alpha_upsampler)
            if args.device.startswith('cuda'):
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
        np.save(dst, out)
    report = {'times': times, 'cpu_times': cpu_times}
    if cuda:
        report['peak_mem_mib'] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    print(json.dumps(report))
    return 0


if __name__ == '__main__':
    sys.exit(main())
