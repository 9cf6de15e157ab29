"""``python -m v2gtwin.cli``."""

from v2gtwin.cli import run

run()
