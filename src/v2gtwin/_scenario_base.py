"""The base of every scenario input model: frozen, unknown keys are errors, defaults validated; and the reading of a
TOML input file with one-line errors (scenarios, asset registers)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from v2gtwin.errors import ScenarioError

__all__ = ["_Model", "read_toml_file", "resolve_input_file"]


def read_toml_file(p: Path, kind: str) -> dict[str, Any]:
    """The parsed TOML of ``p``, a ``kind`` file (e.g. "scenario"); a missing file, a directory, an unreadable
    file or invalid TOML is a :class:`ScenarioError` of one line naming the file."""
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(f"{p}: no such {kind} file") from None
    except IsADirectoryError:
        raise ScenarioError(f"{p}: is a directory, expected a {kind} TOML file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{p}: cannot read {kind} file ({exc.__class__.__name__}: {exc})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{p}: not valid TOML: {exc}") from None


def resolve_input_file(value: str | None, base_dir: str | Path | None, what: str) -> str | None:
    """A data file named in a scenario: relative to ``base_dir`` (the scenario file's folder; None: the working
    directory), which must exist and be a file (ValueError otherwise, which validation turns into one line)."""
    if value is None:
        return None
    path = Path(value).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    if path.is_dir():
        raise ValueError(f"a directory, not a {what} file: {str(path)!r}")
    if not path.is_file():
        raise ValueError(f"no such {what} file: {str(path)!r}")
    return str(path)


class _Model(BaseModel):
    # allow_inf_nan=False: a non-finite float (nan, inf) is "not a finite number", not "should be <= 3; got nan".
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True, allow_inf_nan=False)
