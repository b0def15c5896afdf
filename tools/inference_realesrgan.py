"""Upscale images with Real-ESRGAN (the official script's flags); see ``--help``."""

import sys

from realesrgan_plugin.inference.cli import main

if __name__ == '__main__':
    sys.exit(main())
