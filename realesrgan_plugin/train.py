"""``python -m realesrgan_plugin.train -opt FILE.yml``: the BasicSR training entry (glue only)."""

import sys

from realesrgan_plugin.basicsr.train import main

if __name__ == '__main__':
    sys.exit(main())
