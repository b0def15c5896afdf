"""Convert Real-ESRGAN weights between BasicSR, MMEngine and mmagic layouts (see ``--help``)."""

import sys

from realesrgan_plugin.convert_mm import main

if __name__ == '__main__':
    sys.exit(main())
