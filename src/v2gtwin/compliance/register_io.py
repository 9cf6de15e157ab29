"""Reading a register's parts: CSV rows as nested dicts and pydantic validation errors as one line naming the
file (and CSV row), the asset's id and the field. Used by :mod:`v2gtwin.compliance.register`."""

from __future__ import annotations

import csv
import math
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from v2gtwin.errors import ScenarioError

__all__ = ["format_error", "read_csv"]

_KIND = {"inverters": "inverter", "meters": "meter", "sites": "site", "meter_sums": "meter sum"}


def _field_info(root: type[BaseModel], loc: tuple[Any, ...]) -> Any:
    """The pydantic FieldInfo at ``loc`` in the model ``root`` (None when the path leaves the models)."""
    model: Any = root
    info = None
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(model, "model_fields", None)
        if not fields or part not in fields:
            return None
        info = fields[part]
        model = None
        for arg in typing.get_args(info.annotation) or (info.annotation,):
            for inner in typing.get_args(arg) or (arg,):
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    model = inner
    return info


def _range_text(root: type[BaseModel], loc: tuple[Any, ...]) -> str:
    """The allowed range of the numeric field at ``loc``, e.g. ``(0, 1440]`` (empty when it has no bounds)."""
    info = _field_info(root, loc)
    if info is None:
        return ""
    lo = hi = None
    lo_open = hi_open = False
    for m in info.metadata:
        for attr, is_lo, is_open in (
            ("gt", True, True),
            ("ge", True, False),
            ("lt", False, True),
            ("le", False, False),
        ):
            v = getattr(m, attr, None)
            if v is None:
                continue
            if is_lo:
                lo, lo_open = v, is_open
            else:
                hi, hi_open = v, is_open
    if lo is None and hi is None:
        return ""
    left = "(" if lo is None or lo_open else "["
    right = ")" if hi is None or hi_open else "]"
    return f" in {left}{'-inf' if lo is None else f'{lo:g}'}, {'inf' if hi is None else f'{hi:g}'}{right}"


def format_error(
    exc: ValidationError,
    data: dict[str, Any],
    source: str,
    root: type[BaseModel],
    origins: dict[tuple[str, int], str] | None = None,
) -> str:
    """The first cause of ``exc`` as one line: ``source: inverter 'ID' (file.csv row N): field a.b: problem``."""
    errors = exc.errors()
    locs = [tuple(e["loc"]) for e in errors]
    causes = [
        e
        for e, loc in zip(errors, locs, strict=True)
        if not any(len(o) > len(loc) and o[: len(loc)] == loc for o in locs)
    ]
    # An unknown key first: a misspelt field also shows up as the right name missing, which would hide it.
    causes.sort(key=lambda e: e["type"] != "extra_forbidden")
    err = causes[0]
    loc = tuple(err["loc"])
    msg = str(err["msg"])
    bad = err.get("input")
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if err["type"] == "extra_forbidden":
        msg = f"unknown key '{loc[-1]}'"
    elif err["type"] == "missing":
        msg = "missing field"
    elif isinstance(bad, float) and not math.isfinite(bad):
        msg = f"must be a finite number{_range_text(root, loc)}; got {bad!r}"
    elif not isinstance(bad, dict) and "got" not in msg and "looks like" not in msg:
        msg += f"; got {bad!r}"
    more = f" (+{len(causes) - 1} more)" if len(causes) > 1 else ""
    where = ""
    rest = loc
    if len(loc) >= 2 and loc[0] in _KIND and isinstance(loc[1], int):
        entries = data.get(str(loc[0]), [])
        entry = entries[loc[1]] if isinstance(entries, list) and loc[1] < len(entries) else {}
        ident = entry.get("id") if isinstance(entry, dict) else None
        where = f"{_KIND[str(loc[0])]} '{ident}'" if ident else f"{_KIND[str(loc[0])]} #{loc[1] + 1}"
        origin = (origins or {}).get((str(loc[0]), loc[1]))
        if origin:
            where += f" ({origin})"
        rest = loc[2:]
    elif len(loc) >= 2 and loc[0] == "retail_enrolments" and isinstance(loc[1], int):
        entries = data.get("retail_enrolments", [])
        entry = entries[loc[1]] if isinstance(entries, list) and loc[1] < len(entries) else {}
        prog = entry.get("program") if isinstance(entry, dict) else None
        where = f"retail enrolment '{prog}'" if prog else f"retail enrolment #{loc[1] + 1}"
        rest = loc[2:]
    field = ".".join(str(p) for p in rest)
    parts = [source] + ([where] if where else []) + ([f"field {field}"] if field else [])
    return (": ".join(parts) + f": {msg}{more}").replace("\n", " ")


def read_csv(path: Path, kind: str) -> list[dict[str, Any]]:
    """Rows of a CSV register part as nested dicts: ``trip.uf2_hz`` -> ``{"trip": {"uf2_hz": ...}}``; empty cells
    are missing; ``a;b`` in a list column (certifications, covers) is a list; numbers and true/false are parsed."""
    lists = {"certifications", "covers", "services", "resources", "meters"}
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:  # -sig: a byte-order mark (Excel) is not a header
            rows = list(csv.DictReader(fh))
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such {kind} CSV file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ScenarioError(f"{path}: cannot read {kind} CSV file ({exc.__class__.__name__}: {exc})") from None
    out = []
    for row in rows:
        entry: dict[str, Any] = {}
        for key, raw in row.items():
            if key is None or raw is None or raw.strip() == "":
                continue
            text = raw.strip()
            value: Any
            if key.split(".")[-1] in lists:
                value = [t.strip() for t in text.split(";") if t.strip()]
            elif text.lower() in ("true", "false"):
                value = text.lower() == "true"
            elif key.split(".")[-1] in ("accuracy_class", "id", "site", "firmware", "model", "vendor"):
                value = text
            else:
                try:
                    value = int(text) if text.lstrip("+-").isdigit() else float(text)
                except ValueError:
                    value = text
            node = entry
            *heads, last = key.strip().split(".")
            for h in heads:
                node = node.setdefault(h, {})
            node[last] = value
        out.append(entry)
    return out
