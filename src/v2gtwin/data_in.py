"""Your own data in: energy prices, base load and charging sessions read from CSV files named in the scenario.

Each reader checks its file against the scenario's time grid and raises a one-line :class:`DataError` naming
the file, the column and the line (the header is line 1): missing or unknown columns, a column whose name
carries another unit (``p_mw`` where ``p_kw`` is wanted), a time that is not a date-time, a time step other than
the scenario's ``dt_s``, gaps, repeated or unordered times, values that are not finite numbers, times outside
the horizon. Times are ISO 8601 date-times; one without a UTC offset is local time in the scenario's
``time.time_zone``. The formats are in docs/data_in.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from v2gtwin.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

    from v2gtwin.fleet import Fleet
    from v2gtwin.scenario import FleetSpec, TimeGrid

__all__ = [
    "SESSION_COLUMNS",
    "SESSION_OPTIONAL_COLUMNS",
    "read_base_load_csv",
    "read_price_csv",
    "read_series_csv",
    "read_sessions_csv",
    "spread_base_load",
]

#: Required columns of a sessions file and their meaning (units in the names).
SESSION_COLUMNS: dict[str, str] = {
    "arrival_time": "start of the first step the EV is plugged in (a step start of the horizon)",
    "departure_time": "start of the first step the EV is no longer plugged in (a step start, or the horizon end)",
    "e_session_kwh": "energy the battery takes in during the session, battery side [kWh]",
    "p_charge_max_kw": "charger power limit, grid side [kW]",
    "capacity_kwh": "usable battery capacity [kWh]",
}
#: Optional columns of a sessions file (drawn with the scenario's seed when absent).
SESSION_OPTIONAL_COLUMNS: dict[str, str] = {
    "v2g": "1 when the charger can discharge (at p_charge_max_kw), 0 when not (absent: drawn with fleet.v2g_share)",
    "bus": "feeder bus the EV charges at, 1..n_bus-1 (absent: drawn uniformly)",
    "kind": "'home' or 'work' (absent: 'work', as for the ACN sessions)",
}

#: Alternative unit suffixes that are recognised as a wrong unit for a wanted column (a helpful message).
_UNIT_STEMS: dict[str, tuple[str, ...]] = {
    "p_kw": ("p_w", "p_mw", "p_gw", "p", "power", "power_kw", "load_kw", "p_kva"),
    "price_per_mwh": ("price", "price_per_kwh", "price_per_mw", "price_usd_per_mwh", "price_eur_per_mwh", "lmp"),
    "e_session_kwh": ("energy", "energy_kwh", "energy_wh", "energy_mwh", "e_kwh", "kwh", "e_wh"),
    "p_charge_max_kw": ("p_max_kw", "p_max_w", "p_max", "p_max_mw", "power_max_kw", "p_charge_max_w"),
    "capacity_kwh": ("capacity", "capacity_wh", "capacity_mwh"),
}


def _read_csv(path: str | Path, what: str) -> pd.DataFrame:
    import pandas as pd

    p = Path(path)
    try:
        with p.open("rb") as fh:
            head = fh.read(65536)
    except (FileNotFoundError, IsADirectoryError):
        head = b""  # named below, as pandas reports it
    except OSError as exc:
        raise DataError(f"{p}: cannot read {what} CSV ({exc.__class__.__name__}: {exc})") from None
    if b"\x00" in head:  # a NUL byte: not text (pandas would read it as a header with no rows)
        raise DataError(f"{p}: not a text CSV file (binary content); expected a UTF-8 {what} CSV file")
    try:
        df = pd.read_csv(p, dtype=str, keep_default_na=False, skipinitialspace=True)
    except FileNotFoundError:
        raise DataError(f"{p}: no such {what} file") from None
    except IsADirectoryError:
        raise DataError(f"{p}: is a directory, expected a {what} CSV file") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{p}: empty {what} file (expected a header line and one row per step)") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else ""
        raise DataError(f"{p}: cannot read {what} CSV ({exc.__class__.__name__}: {msg})") from None
    df.columns = [str(c).strip() for c in df.columns]
    if df.empty:
        raise DataError(f"{p}: {what} file has a header but no rows")
    return df


def _check_columns(
    df: pd.DataFrame, path: str | Path, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> None:
    cols = list(df.columns)
    allowed = (*required, *optional)
    listing = ", ".join(required) + (f" (optional: {', '.join(optional)})" if optional else "")
    for want in required:
        if want in cols:
            continue
        wrong = [c for c in cols if c.lower() in _UNIT_STEMS.get(want, ())]
        if wrong:
            raise DataError(
                f"{path}: column '{wrong[0]}' has another unit or no unit; expected '{want}' (columns: {listing})"
            )
        raise DataError(f"{path}: missing column '{want}' (columns: {listing})")
    extra = [c for c in cols if c not in allowed]
    if extra:
        raise DataError(f"{path}: unknown column '{extra[0]}' (columns: {listing})")
    if len(set(cols)) != len(cols):
        dup = next(c for c in cols if cols.count(c) > 1)
        raise DataError(f"{path}: column '{dup}' appears twice")


def _parse_times(values: pd.Series, path: str | Path, column: str, time: TimeGrid) -> pd.DatetimeIndex:
    """Parse ISO 8601 date-times (without a UTC offset: local in ``time.time_zone``) to tz-aware times in that
    zone; vectorised, with the first bad row named on error."""
    import pandas as pd

    zone = time.time_zone
    text = values.astype(str).str.strip()
    aware = text.str.contains(r"(?:Z|[+-]\d{2}:?\d{2})$", regex=True).to_numpy()
    if aware.any() and not aware.all():
        i = int(np.flatnonzero(aware != aware[0])[0])
        raise DataError(
            f"{path} line {i + 2}: {column} = {text.iloc[i]!r}: either every time has a UTC offset or none has"
        )
    parsed = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=bool(aware[0]))
    if (bad := np.flatnonzero(parsed.isna().to_numpy())).size:
        i = int(bad[0])
        raise DataError(f"{path} line {i + 2}: {column} = {text.iloc[i]!r} is not an ISO 8601 date-time")
    idx = pd.DatetimeIndex(parsed)
    if aware[0]:
        return idx.tz_convert(zone)
    try:
        return idx.tz_localize(zone, ambiguous="raise", nonexistent="raise")
    except Exception:  # pytz's AmbiguousTimeError / NonExistentTimeError (not ValueError): find the row
        for i, ts in enumerate(idx):
            try:
                ts.tz_localize(zone, ambiguous="raise", nonexistent="raise")
            except Exception:
                raise DataError(
                    f"{path} line {i + 2}: {column} = {text.iloc[i]!r} does not exist once in {zone} "
                    "(daylight-saving change); give its UTC offset"
                ) from None
        raise


def _steps_of(times: pd.DatetimeIndex, path: str | Path, column: str, time: TimeGrid, allow_end: bool) -> np.ndarray:
    """Step index of each time (which must be a step start of the horizon; ``allow_end``: or its end)."""
    import pandas as pd

    start = pd.Timestamp(time.start_datetime())
    offset_s = (times - start).total_seconds().to_numpy()
    k = np.rint(offset_s / time.dt_s)
    last = time.n_steps if allow_end else time.n_steps - 1
    outside = np.flatnonzero((k < 0) | (k > last))
    off_grid = np.flatnonzero(np.abs(offset_s - k * time.dt_s) > 1e-6)
    if outside.size and (not off_grid.size or outside[0] <= off_grid[0]):
        i = int(outside[0])
        end = start + pd.Timedelta(seconds=time.dt_s * last)
        raise DataError(
            f"{path} line {i + 2}: {column} = {times[i].isoformat()} is outside the horizon "
            f"({start.isoformat()} to {end.isoformat()})"
        )
    if off_grid.size:
        i = int(off_grid[0])
        raise DataError(
            f"{path} line {i + 2}: {column} = {times[i].isoformat()} is not a step start (steps of "
            f"{time.dt_s:g} s from {start.isoformat()}); round the file's times to the scenario's steps"
        )
    return k.astype(np.int64)


def _numbers(values: pd.Series, path: str | Path, column: str) -> np.ndarray:
    import pandas as pd

    out = pd.to_numeric(values.astype(str).str.strip(), errors="coerce").to_numpy(dtype=float)
    if (bad := np.flatnonzero(~np.isfinite(out))).size:
        i = int(bad[0])
        raise DataError(f"{path} line {i + 2}: {column} = {values.iloc[i]!r} is not a finite number")
    return out


def read_series_csv(path: str | Path, time: TimeGrid, column: str, what: str) -> np.ndarray:
    """One value per step of ``time`` from a CSV file with the columns ``time`` and ``column``.

    The file has exactly one row per step of the horizon, in order: ``time`` is the start of the step (ISO 8601;
    without a UTC offset it is local time in ``time.time_zone``), consecutive rows ``dt_s`` apart.

    Returns
    -------
    numpy.ndarray
        (n_steps,) values of ``column``, in its unit.

    Raises
    ------
    DataError
        One line naming the file, the line and the column: see the module docstring.
    """
    df = _read_csv(path, what)
    _check_columns(df, path, ("time", column))
    times = _parse_times(df["time"], path, "time", time)
    values = _numbers(df[column], path, column)
    dt = np.diff(times.tz_convert("UTC").tz_localize(None).to_numpy().astype("datetime64[ns]").astype(np.int64)) / 1e9
    for i, d in enumerate(dt):
        line = i + 3  # the row after the step
        if d <= 0:
            raise DataError(f"{path} line {line}: time {times[i + 1].isoformat()} repeats or goes back in time")
        if abs(d - time.dt_s) > 1e-6:
            n_missing = d / time.dt_s - 1.0
            if n_missing >= 1.0 - 1e-9 and abs(n_missing - round(n_missing)) < 1e-9:
                raise DataError(
                    f"{path} line {line}: gap of {round(n_missing)} step(s) before {times[i + 1].isoformat()} "
                    f"(one row per {time.dt_s:g} s step is needed)"
                )
            raise DataError(
                f"{path} line {line}: time step {d:g} s, but the scenario's dt_s is {time.dt_s:g} s "
                "(resample the file to the scenario's step)"
            )
    first = _steps_of(times[:1], path, "time", time, allow_end=False)[0]
    if first != 0:
        raise DataError(
            f"{path} line 2: time = {times[0].isoformat()} starts {first} step(s) after the horizon's start "
            f"({time.start_datetime().isoformat()}); the file must cover every step"
        )
    if len(times) != time.n_steps:
        line = 2 + min(len(times), time.n_steps)
        if len(times) > time.n_steps:
            raise DataError(
                f"{path} line {line}: time = {times[time.n_steps].isoformat()} is outside the horizon "
                f"({time.n_steps} steps); the file must have one row per step"
            )
        raise DataError(
            f"{path}: {len(times)} rows cover {len(times)} of the horizon's {time.n_steps} steps (ends "
            f"{times[-1].isoformat()}); the file must cover every step"
        )
    return values


def read_price_csv(path: str | Path, time: TimeGrid) -> np.ndarray:
    """Energy price per step [currency/MWh] from a CSV with the columns ``time`` and ``price_per_mwh``
    (the scenario's currency; negative prices allowed)."""
    return read_series_csv(path, time, "price_per_mwh", "price")


def read_base_load_csv(path: str | Path, time: TimeGrid) -> np.ndarray:
    """The feeder's total base load per step [kW] from a CSV with the columns ``time`` and ``p_kw`` (>= 0)."""
    p = read_series_csv(path, time, "p_kw", "base load")
    if (bad := np.flatnonzero(p < 0)).size:
        raise DataError(f"{path} line {bad[0] + 2}: p_kw = {p[bad[0]]:g} is negative (base load is consumption, >= 0)")
    return p


def spread_base_load(
    p_total_kw: np.ndarray, p_load_kw: np.ndarray, q_load_kvar: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """A feeder total spread over its buses in proportion to their nominal loads, each bus at its nominal
    power factor.

    Notes
    -----
    :math:`P_{t,b} = P_t \\, P^{nom}_b / \\sum_b P^{nom}_b` and :math:`Q_{t,b} = P_{t,b} \\, Q^{nom}_b / P^{nom}_b`
    (0 where a bus has no nominal load), so the buses' loads sum to the file's total every step.

    Returns
    -------
    (p_kw, q_kvar) : (n_steps, n_bus) [kW], [kvar].
    """
    p_nom = np.asarray(p_load_kw, dtype=float)
    total = p_nom.sum()
    if total <= 0:
        raise DataError("base load: the feeder has no nominal load to spread the file's total over")
    share = p_nom / total
    pf_ratio = np.divide(q_load_kvar, p_nom, out=np.zeros_like(p_nom), where=p_nom > 0)
    p = np.asarray(p_total_kw, dtype=float)[:, None] * share[None, :]
    return p, p * pf_ratio[None, :]


def read_sessions_csv(path: str | Path, spec: FleetSpec, time: TimeGrid, n_bus: int, rng: np.random.Generator) -> Fleet:
    """A fleet of the charging sessions in a CSV file, one row per session (columns :data:`SESSION_COLUMNS`,
    optionally :data:`SESSION_OPTIONAL_COLUMNS`).

    Arrival and departure must be step starts of the horizon (the departure may be the horizon's end): the
    file's times are used as they are, never rounded. Each EV arrives with
    ``soc_target_pu - e_session_kwh / capacity_kwh`` and wants ``fleet.soc_target_pu`` at departure; efficiencies
    and SoC limits come from ``[fleet]``. ``v2g`` and ``bus``, when absent, are drawn from ``rng``.

    Raises
    ------
    DataError
        One line naming the file, the line and the column (see the module docstring), and also: departure not
        after arrival, a non-positive energy, power or capacity, an energy the battery cannot take in
        (``e_session_kwh > capacity_kwh x (soc_target_pu - 0.05)``), ``v2g`` not 0/1, ``bus`` out of range.
    """
    from v2gtwin.fleet import KIND_HOME, KIND_WORK, SOC_ARRIVAL_FLOOR_PU, fleet_from_sessions

    df = _read_csv(path, "sessions")
    _check_columns(df, path, tuple(SESSION_COLUMNS), tuple(SESSION_OPTIONAL_COLUMNS))
    arr = _steps_of(_parse_times(df["arrival_time"], path, "arrival_time", time), path, "arrival_time", time, False)
    dep = _steps_of(
        _parse_times(df["departure_time"], path, "departure_time", time), path, "departure_time", time, True
    )
    if (bad := np.flatnonzero(dep <= arr)).size:
        i = bad[0]
        raise DataError(
            f"{path} line {i + 2}: departure_time {df['departure_time'].iloc[i]} is not after arrival_time "
            f"{df['arrival_time'].iloc[i]}"
        )
    num = {c: _numbers(df[c], path, c) for c in ("e_session_kwh", "p_charge_max_kw", "capacity_kwh")}
    for c, x in num.items():
        if (bad := np.flatnonzero(x <= 0)).size:
            raise DataError(f"{path} line {bad[0] + 2}: {c} = {x[bad[0]]:g} must be > 0")
    room = num["capacity_kwh"] * (spec.soc_target_pu - min(SOC_ARRIVAL_FLOOR_PU, spec.soc_target_pu))
    if (bad := np.flatnonzero(num["e_session_kwh"] > room + 1e-9)).size:
        i = bad[0]
        raise DataError(
            f"{path} line {i + 2}: e_session_kwh = {num['e_session_kwh'][i]:g} does not fit in the battery: at most "
            f"capacity_kwh x (fleet.soc_target_pu - {SOC_ARRIVAL_FLOOR_PU:g}) = {room[i]:g} kWh"
        )
    n = len(df)
    if "v2g" in df.columns:
        v2g_num = _numbers(df["v2g"], path, "v2g")
        if (bad := np.flatnonzero((v2g_num != 0) & (v2g_num != 1))).size:
            raise DataError(f"{path} line {bad[0] + 2}: v2g = {df['v2g'].iloc[bad[0]]!r} must be 0 or 1")
        v2g = v2g_num == 1
    else:
        v2g = rng.random(n) < spec.v2g_share
    if "bus" in df.columns:
        bus_num = _numbers(df["bus"], path, "bus")
        bad = np.flatnonzero((bus_num != np.rint(bus_num)) | (bus_num < 1) | (bus_num > n_bus - 1))
        if bad.size:
            raise DataError(
                f"{path} line {bad[0] + 2}: bus = {df['bus'].iloc[bad[0]]!r} must be an integer in 1..{n_bus - 1}"
            )
        bus = bus_num.astype(np.int64)
    else:
        bus = rng.integers(1, n_bus, size=n)
    kind = np.full(n, KIND_WORK)
    if "kind" in df.columns:
        names = df["kind"].astype(str).str.strip().str.lower()
        if (bad := np.flatnonzero(~names.isin(["home", "work"]).to_numpy())).size:
            raise DataError(f"{path} line {bad[0] + 2}: kind = {df['kind'].iloc[bad[0]]!r} must be 'home' or 'work'")
        kind = np.where(names.to_numpy() == "home", KIND_HOME, KIND_WORK)
    return fleet_from_sessions(
        spec,
        time,
        arrival_step=arr,
        departure_step=dep,
        need_kwh=num["e_session_kwh"],
        capacity_kwh=num["capacity_kwh"],
        p_charge_max_kw=num["p_charge_max_kw"],
        v2g=v2g,
        bus=bus,
        kind=kind,
    )
