"""Building blocks of the results' tables: a per-step frame on the scenario's time index, a per-row frame, and a
nested summary dict flattened into a long (tidy) table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from v2gtwin.errors import DataError

if TYPE_CHECKING:
    from v2gtwin.scenario import TimeGrid

__all__ = ["rows_frame", "step_frame", "summary_frame"]


def step_frame(time: TimeGrid, columns: Mapping[str, Any]) -> pd.DataFrame:
    """One row per step of ``time`` on its tz-aware index (``TimeGrid.index()``, named ``time``), with the columns
    given (each of ``n_steps`` values; a column given as None is left out).

    Raises
    ------
    DataError
        A column does not have one value per step.
    """
    idx = time.index()
    data: dict[str, np.ndarray] = {}
    for name, values in columns.items():
        if values is None:
            continue
        arr = np.asarray(values)
        if arr.shape != (time.n_steps,):
            raise DataError(f"table column {name}: expected {time.n_steps} values (one per step), got {arr.shape}")
        data[name] = arr
    return pd.DataFrame(data, index=idx)


def rows_frame(rows: list[dict[str, Any]] | tuple[dict[str, Any], ...]) -> pd.DataFrame:
    """A frame of records (one dict per row, the keys the columns, in order); an empty list gives an empty frame."""
    return pd.DataFrame(list(rows))


def _flatten(prefix: str, value: Any, out: list[tuple[str, float | None, str | None]]) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, (list, tuple, np.ndarray)):
        for i, v in enumerate(value):
            _flatten(f"{prefix}.{i}", v, out)
    elif value is None:
        out.append((prefix, None, None))
    elif isinstance(value, (bool, np.bool_)):
        out.append((prefix, float(value), None))
    elif isinstance(value, (int, float, np.integer, np.floating)):
        x = float(value)
        out.append((prefix, x if np.isfinite(x) else None, None if np.isfinite(x) else str(x)))
    else:
        out.append((prefix, None, str(value)))


def summary_frame(summary: Mapping[str, Any], key: str = "quantity") -> pd.DataFrame:
    """A nested summary dict (the one results.json holds) as a long table: one row per leaf, its dotted path in
    ``key`` (the unit in the last part of the name, as in results.json), a number in ``value`` (booleans as 0/1;
    None: not a number) and anything else as text in ``text``. A non-finite number goes in ``text`` as ``inf``
    or ``nan`` (never a non-finite ``value``)."""
    out: list[tuple[str, float | None, str | None]] = []
    _flatten("", summary, out)
    return pd.DataFrame(
        {
            key: pd.array([r[0] for r in out], dtype="string"),
            "value": pd.array([r[1] for r in out], dtype="Float64"),
            "text": pd.array([r[2] for r in out], dtype="string"),
        }
    )
