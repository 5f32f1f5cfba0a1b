"""``python -m lib_modeldoc``."""

import sys

from .cli import main

sys.exit(main())
