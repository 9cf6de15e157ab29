"""The base of every scenario input model: frozen, unknown keys are errors, defaults validated; and the reading of a
TOML input file with one-line errors (scenarios, asset registers)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from v2gtwin.errors import ScenarioError

__all__ = ["_Model", "read_toml_file"]


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


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)
