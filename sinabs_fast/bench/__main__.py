"""``python -m sinabs_fast.bench``: the same as ``sinabs-fast bench``."""

import sys

from .command import main

sys.exit(main())
