"""`python -m benchmark` entry point."""

from __future__ import annotations

import sys

from benchmark.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
