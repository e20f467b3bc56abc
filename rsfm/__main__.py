"""``python -m rsfm``: the same as the ``rsfm`` console script."""

import sys

from rsfm.cli import main

sys.exit(main())
