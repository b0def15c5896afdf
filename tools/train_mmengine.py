"""Train with MMEngine: ``python tools/train_mmengine.py CONFIG [--launcher ...] [--resume] [--cfg-options ...]``."""

from realesrgan_plugin.mmengine.train import main

if __name__ == '__main__':
    main()
