#!/usr/bin/env python3
"""Living Mosaic: run, replay, drive, analyse and benchmark the installation (see README)."""
import sys

from installation.cli import main

if __name__ == "__main__":
    sys.exit(main())
