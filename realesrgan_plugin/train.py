"""Training entry: ``realesrgan-train -opt FILE.yml`` / ``python -m realesrgan_plugin.train -opt FILE.yml``.

Imports the plugin (compatibility fixes + registration of the official names) and then runs
BasicSR's own training pipeline with BasicSR's flags (``--launcher``, ``--auto_resume``,
``--debug``, ``--force_yml``). Experiments are written under the current directory.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import realesrgan_plugin  # noqa: F401  (compat + registration before basicsr's pipeline)
from realesrgan_plugin.compat import normalize_local_rank_args


def main(argv: Sequence[str] | None = None) -> None:
    args = normalize_local_rank_args(sys.argv[1:] if argv is None else argv)
    sys.argv = [sys.argv[0], *args]
    from basicsr.train import train_pipeline

    train_pipeline(os.getcwd())


if __name__ == '__main__':
    main()
