"""``python -m emomotion.cli``: the same as the ``emomotion`` command."""

import sys

from emomotion.cli import main

sys.exit(main())
