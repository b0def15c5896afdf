"""``python -m realesrgan_plugin.train -opt FILE.yml``: the BasicSR training entry (glue only)."""

from realesrgan_plugin.basicsr.train import main

if __name__ == '__main__':
    main()
