#!/usr/bin/env python
"""Django's command-line utility for continust: a bad setting is one line, not a traceback."""

from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "continust.settings")
    from continust.startup import command_line

    command_line(sys.argv)


if __name__ == "__main__":
    main()
