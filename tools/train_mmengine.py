"""Train with MMEngine: ``python tools/train_mmengine.py CONFIG [--launcher ...] [--resume] [--cfg-options ...]``."""

import sys

from realesrgan_plugin.mmengine.train import main

if __name__ == '__main__':
    sys.exit(main())
