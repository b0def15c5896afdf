"""Write the tiny training set the ``options/demo/*.yml`` configs use, from scikit-image's bundled photos.

``datasets/demo/gt``: 128x128 tiles (HR images for on-the-fly degradation);
``datasets/demo/val/{gt,lq}``: 64x64 centre crops and their x4 area-downscaled versions.
"""

from __future__ import annotations

import sys
from pathlib import Path

from realesrgan_plugin.core.cli_errors import CliArgumentParser, run_cli
from realesrgan_plugin.core.img_io import write_image

import cv2
import numpy as np
from skimage import data

EXAMPLES = ('python tools/make_demo_dataset.py',)
PHOTOS = ('astronaut', 'coffee', 'chelsea', 'rocket', 'immunohistochemistry', 'retina')


def make_demo_dataset(root: str | Path, tile: int = 128, val_size: int = 64, scale: int = 4) -> Path:
    """Write the demo dataset under ``root``; return it."""
    root = Path(root)
    for name in PHOTOS:
        photo = getattr(data, name)()
        bgr = np.ascontiguousarray(photo[:, :, 2::-1])
        h, w = bgr.shape[:2]
        for i in range(min(2, h // tile)):
            for j in range(min(2, w // tile)):
                tile_img = bgr[i * tile : (i + 1) * tile, j * tile : (j + 1) * tile]
                write_image(root / 'gt' / f'{name}_{i}{j}.png', tile_img)
        top, left = (h - val_size) // 2, (w - val_size) // 2
        crop = bgr[top : top + val_size, left : left + val_size]
        small = cv2.resize(crop, (val_size // scale, val_size // scale), interpolation=cv2.INTER_AREA)
        write_image(root / 'val' / 'gt' / f'{name}.png', crop)
        write_image(root / 'val' / 'lq' / f'{name}.png', small)
    return root


def main() -> None:
    parser = CliArgumentParser(description=__doc__, examples=EXAMPLES)
    parser.add_argument('--root', default='datasets/demo', help='output folder (default: %(default)s)')
    args = parser.parse_args()
    print(f'wrote {make_demo_dataset(args.root)}')


if __name__ == '__main__':
    sys.exit(run_cli(lambda argv: main() or 0))
