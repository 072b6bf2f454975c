"""``python -m data.toy ...``: see :mod:`data.toy.cli`."""

import sys

from data.toy.cli import main

sys.exit(main())
