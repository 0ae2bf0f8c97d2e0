#!/usr/bin/env python
"""Django's command-line utility for Canvas Events."""

import os
import sys
from pathlib import Path


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "canvas.settings")
    # A checkout with no configuration at all (no SECRET_KEY in the environment or .env) is a developer's: run it
    # in debug mode, as `make run` does. Wherever SECRET_KEY is set, the settings are exactly what the
    # environment says, and production serves through canvas/wsgi.py, which has no such default.
    if "SECRET_KEY" not in os.environ and not (Path(__file__).resolve().parent / ".env").exists():
        os.environ.setdefault("DEBUG", "1")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
