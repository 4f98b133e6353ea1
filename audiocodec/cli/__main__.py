"""`python -m audiocodec.cli`, as `python -m audiocodec`."""

import sys

from .entry import main

sys.exit(main())
