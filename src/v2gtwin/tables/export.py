"""Writing the study's tables to files: one file per table (Parquet or CSV), each written atomically (a temporary
file in the same folder, then renamed), so that a file that exists is complete."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from v2gtwin.errors import DataError

__all__ = ["EXPORT_FORMATS", "ExportFormat", "write_atomic", "write_tables"]

ExportFormat = Literal["parquet", "csv"]


def _parquet(df: pd.DataFrame, path: Path) -> None:
    df.to_parquet(path, engine="pyarrow", index=True)


def _csv(df: pd.DataFrame, path: Path) -> None:
    # Date-times as ISO 8601 with their UTC offset; the index is the first column (named, e.g. ``time``).
    df.to_csv(path, index=True)


#: How each export format writes one table: {format: (file suffix, writer)}.
EXPORT_FORMATS: dict[str, tuple[str, Callable[[pd.DataFrame, Path], None]]] = {
    "parquet": (".parquet", _parquet),
    "csv": (".csv", _csv),
}


def write_atomic(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path`` (atomic on one file
    system); on any error the temporary file is removed and ``path`` is left as it was."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _for_file(df: pd.DataFrame, table: str) -> pd.DataFrame:
    """A copy fit for a file: object columns hold one type each (Parquet needs that: a column mixing numbers with
    text becomes text; numbers with None stay numbers, None -> missing), a float NaN is a missing value (null in
    Parquet, empty in CSV), and an infinite value is an error naming the table and column (nothing non-finite
    leaves the program, as in results.json)."""
    out = df.copy()
    for name in out.columns:
        col = out[name]
        if pd.api.types.is_float_dtype(col.dtype):
            values = col.to_numpy(dtype=float, na_value=np.nan)
            if np.isinf(values).any():
                row = int(np.flatnonzero(np.isinf(values))[0])
                raise DataError(f"table {table}, column {name}, row {row}: value is {values[row]} (not finite)")
            if np.isnan(values).any():
                out[name] = col.astype("Float64")
            continue
        if col.dtype != object:
            continue
        kinds = {type(v) for v in col if v is not None and not (isinstance(v, float) and v != v)}
        if kinds <= {int, float, bool} and kinds - {bool}:
            out[name] = pd.to_numeric(col, errors="coerce").astype("Float64")
        elif kinds <= {bool}:
            out[name] = col.astype("boolean")
        else:
            out[name] = col.map(lambda v: None if v is None else str(v)).astype("string")
    return out


def write_tables(frames: Mapping[str, pd.DataFrame], out_dir: Path, fmt: str) -> dict[str, Path]:
    """Write each table to ``out_dir/NAME.parquet`` (or ``.csv``), atomically; returns {name: path}.

    Raises
    ------
    DataError
        ``fmt`` is not one of :data:`EXPORT_FORMATS`, or a table holds an infinite value (checked for every table
        before the first file is written).
    """
    if fmt not in EXPORT_FORMATS:
        raise DataError(f"--export: unknown format {fmt!r}; allowed: {', '.join(EXPORT_FORMATS)}")
    suffix, writer = EXPORT_FORMATS[fmt]
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    ready = {name: _for_file(df, name) for name, df in frames.items()}  # every check before the first write
    for name, table in ready.items():

        def write(tmp: Path, t: pd.DataFrame = table) -> None:
            writer(t, tmp)

        paths[name] = write_atomic(out_dir / f"{name}{suffix}", write)
    return paths
