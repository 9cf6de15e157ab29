"""Helpers shared by the CLI tests: run the CLI in-process, and the one-line error contract."""

from __future__ import annotations

import pytest

from v2gtwin.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``v2gtwin ARGS`` in this process; (exit code, stdout, stderr)."""
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str) -> None:
    """Bad input: exit code 2 and exactly one ``error:`` line on stderr, no traceback."""
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert "Traceback" not in err
