"""Convert Real-ESRGAN weights between BasicSR, MMEngine and mmagic layouts (see ``--help``)."""

from realesrgan_plugin.mmengine.checkpoint import main

if __name__ == '__main__':
    main()
