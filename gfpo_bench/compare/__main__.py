"""`python -m gfpo_bench.compare` runs the `gfpo-bench-compare` CLI."""

import sys

from .cli import main

sys.exit(main())
