"""Test-suite set-up: a derandomized hypothesis profile under CI, and the rule for tests that need a real part.

Under ``CI=true`` hypothesis runs derandomized (the same examples every run, so a CI failure reproduces), and a
test that needs a real part (Node.js and its OCPP peer, ...) fails instead of skipping when the part is absent.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

settings.register_profile("ci", derandomize=True, print_blob=True, deadline=None)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if IN_CI else "dev")


def require_part(available: bool, what: str) -> None:
    """Skip with ``what`` outside CI when a real part is missing; fail under CI=true (the Makefile installs it)."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} (CI=true: the Makefile's test set-up should have installed it)", pytrace=False)
    pytest.skip(what)
