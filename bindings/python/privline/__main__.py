"""``python -m privline``: see :mod:`privline.cli`."""

import sys

from .cli import main

sys.exit(main())
