"""Capacity fade of a fleet's batteries from its SoC and temperature trajectories.

One duty period (a day) of SoC per EV is repeated for a number of years. Per period and EV the stressors are
extracted once (charge throughput, depth of discharge, mean C-rate, the SoC and temperature samples), the
chemistry's model turns them into degradation rates, and a compiled loop carries each EV's loss states from
period to period (:mod:`v2gtwin.battery.states`): as the cell loses capacity, the same SoC swing moves less
charge, so the cycle loss is threaded through the states rather than computed once. This is the structure of
NREL's BLAST-Lite (version 1.1.1) called one period at a time, against which ``tests/battery/
test_degradation.py`` checks both models.

Models (registry :data:`MODELS`): ``"nmc"`` — Schmalstieg et al. (2014), Sanyo UR18650E (:mod:`.nmc`);
``"lfp"`` — Gasper et al. (2022) on Naumann et al.'s Sony/Murata LFP data (:mod:`.lfp`).

Depth of discharge (``dod_method``): ``"rainflow"`` (default) is the throughput-weighted mean range of the
period's rainflow cycles (:func:`v2gtwin.battery.cycles.calc_cycle_dod_pu`); ``"range"`` is the period's
``max - min`` SoC, as BLAST-Lite takes it. They are equal for a period with one charge and one discharge; for
a V2G day with several swings ``"range"`` charges every swing with the day's full range.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from v2gtwin.battery import lfp, nmc
from v2gtwin.battery.cycles import calc_cycle_dod_pu
from v2gtwin.errors import DataError

__all__ = [
    "CHEMISTRIES",
    "CYCLING_RANGE_C",
    "DAYS_PER_YEAR",
    "MODELS",
    "ChemistryModel",
    "FadeResult",
    "calc_extrapolation_note",
    "calc_fade",
    "calc_period_stressors",
    "summarize_fade",
]

FloatArray = npt.NDArray[np.float64]

#: Days in a year of the fade horizon [day] (leap days ignored).
DAYS_PER_YEAR: Final = 365

#: Longest horizon accepted [year] (the same bound as the scenario's ``battery.years`` and both CLIs).
MAX_YEARS: Final = 30

#: Instantaneous C-rates below this are storage and count as 0 in the mean C-rate [1/h] (BLAST-Lite's rule).
CRATE_STORAGE_PER_H: Final = 1e-2

#: Cell temperature range accepted [degC], the same in the scenario's ``battery.temp_c`` and in ``battery fade`` /
#: ``battery cost``. The models' cycle terms were identified at 20-40 degC only (:data:`CYCLING_RANGE_C`); their
#: calendar terms on storage tests (NMC: temperature varied at 50 % SoC, Schmalstieg et al. 2014 / Ecker et al.
#: 2014; LFP: Naumann et al. 2018). 0-60 degC is the envelope the twin accepts: at 60 degC the default NMC fleet
#: already loses 42 % of its capacity in the first year; the output names any temperature outside 20-40 degC
#: as an extrapolation of the cycle terms.
TEMP_RANGE_C: Final = (0.0, 60.0)

#: Cycling temperatures of both models' test data [degC] (BLAST-Lite 1.1.1, ``experimental_range
#: ["cycling_temperature"]`` of ``Nmc111_Gr_Sanyo2Ah_Battery`` and ``Lfp_Gr_SonyMurata3Ah_Battery``).
CYCLING_RANGE_C: Final = (20.0, 40.0)


def calc_extrapolation_note(temp_c: float) -> str | None:
    """A sentence when ``temp_c`` lies outside :data:`CYCLING_RANGE_C` (the cycle terms extrapolated), else None."""
    lo, hi = CYCLING_RANGE_C
    if lo <= temp_c <= hi:
        return None
    return (
        f"{temp_c:g} degC is outside the {lo:g}-{hi:g} degC of the models' cycling tests (BLAST-Lite 1.1.1 "
        "experimental_range): their cycle terms, which have no temperature dependence, are extrapolated there"
    )


@dataclass(frozen=True)
class ChemistryModel:
    """One chemistry's ageing model: how a period's stressors become rates, and how states advance.

    Attributes
    ----------
    name : registry key.
    cell : the cell the parameters were identified on.
    cap_ah : nominal capacity of that cell [Ah].
    calc_rates : ``(stressors) -> rates`` (dict of (n_ev,) arrays).
    run_states : ``(rates, efc0, dt_days, n_days, days_per_out) -> (q_loss_cal_pu, q_loss_cyc_pu)``.
    """

    name: str
    cell: str
    cap_ah: float
    calc_rates: Callable[[dict[str, Any]], dict[str, FloatArray]]
    run_states: Callable[[dict[str, FloatArray], FloatArray, float, int, int], tuple[FloatArray, FloatArray]]


def _nmc_rates(s: dict[str, Any]) -> dict[str, FloatArray]:
    return nmc.calc_rates(s["soc_pu"], s["temp_k"], s["t_h"], s["dod_pu"])


def _lfp_rates(s: dict[str, Any]) -> dict[str, FloatArray]:
    return lfp.calc_rates(s["soc_pu"], s["temp_k"], s["t_h"], s["dod_pu"], s["crate0_per_h"])


#: Registry of the ageing models by chemistry.
MODELS: Final[dict[str, ChemistryModel]] = {
    "nmc": ChemistryModel("nmc", "Sanyo UR18650E (NMC111/graphite), Schmalstieg et al. 2014", nmc.CAP_AH,
                          _nmc_rates, nmc.run_states),
    "lfp": ChemistryModel("lfp", "Sony/Murata 3 Ah (LFP/graphite), Gasper et al. 2022", lfp.CAP_AH,
                          _lfp_rates, lfp.run_states),
}  # fmt: skip

#: Chemistries with an ageing model.
CHEMISTRIES: Final[tuple[str, ...]] = tuple(MODELS)

DodMethod = Literal["rainflow", "range"]


@dataclass(frozen=True)
class FadeResult:
    """Capacity fade of each EV, year by year.

    Attributes
    ----------
    q_loss_pu : (n_ev, n_years) relative capacity loss at the end of each year [pu of the new capacity].
    q_loss_cal_pu : calendar part, same shape [pu].
    q_loss_cyc_pu : cycle part (for LFP including break-in), same shape [pu].
    efc_per_day : (n_ev,) equivalent full cycles per day of the duty cycle of the new cell [1/day].
    chemistry : chemistry of each EV.
    dod_pu : (n_ev,) depth of discharge of the duty period (by ``dod_method``) [pu].
    dod_method : how ``dod_pu`` was counted.

    A cell's total loss saturates at 1 (nothing left): from then on it moves no charge and its states stop;
    :meth:`years_to_fade` and :func:`summarize_fade` flag the EVs past an end-of-life loss.
    """

    q_loss_pu: FloatArray
    q_loss_cal_pu: FloatArray
    q_loss_cyc_pu: FloatArray
    efc_per_day: FloatArray
    chemistry: tuple[str, ...]
    dod_pu: FloatArray | None = None
    dod_method: str = "rainflow"

    @property
    def n_years(self) -> int:
        """Number of years [-]."""
        return int(self.q_loss_pu.shape[1])

    def years_to_fade(self, fade_pu: float) -> npt.NDArray[np.int64]:
        """Per EV, the first whole year at whose end the loss reaches ``fade_pu`` (1-based), or
        :attr:`n_years` when it never does within the horizon [year]."""
        past = self.q_loss_pu >= fade_pu
        return np.where(past.any(axis=1), past.argmax(axis=1) + 1, self.n_years).astype(np.int64)


def calc_period_stressors(soc_pu: FloatArray, dt_h: float, temp_c: npt.ArrayLike) -> dict[str, Any]:
    """Stressors of one periodic duty cycle per EV (the samples closed with the first one).

    Parameters
    ----------
    soc_pu : (n_ev, n_t) SoC at the start of each step of the period [pu].
    dt_h : step [h].
    temp_c : cell temperature [degC]: scalar, (n_ev,) or (n_ev, n_t).

    Returns
    -------
    dict
        ``soc_pu``, ``temp_k`` (n_ev, n_t + 1) and ``t_h`` (n_t + 1,) of the closed period; ``efc0`` (n_ev,)
        equivalent full cycles ``sum|dSoC| / 2`` [-]; ``crate0_per_h`` (n_ev,) mean absolute C-rate with storage
        (below 0.01/h) as 0 [1/h]; ``range_pu`` (n_ev,) ``max - min`` [pu].
    """
    n_ev, n_t = soc_pu.shape
    closed = np.concatenate([soc_pu, soc_pu[:, :1]], axis=1)
    t_h = np.arange(n_t + 1, dtype=np.float64) * dt_h
    temp = np.asarray(temp_c, dtype=np.float64)
    if temp.ndim == 2:
        temp = np.concatenate([temp, temp[:, :1]], axis=1)
    elif temp.ndim == 1:
        temp = np.broadcast_to(temp[:, None], (n_ev, n_t + 1))
    temp_k = np.broadcast_to(temp + 273.15, (n_ev, n_t + 1))
    dsoc = np.abs(np.diff(closed, axis=1))
    efc0 = dsoc.sum(axis=1) / 2.0
    rate = dsoc / dt_h
    rate = np.where(rate < CRATE_STORAGE_PER_H, 0.0, rate)
    # mean C-rate as BLAST-Lite takes it: trapezoid of the n_t step rates placed at the steps' ends
    span_h = n_t * dt_h
    crate0 = np.trapezoid(rate, dx=dt_h, axis=1) / span_h if n_t > 1 else np.zeros(n_ev)
    return {
        "soc_pu": closed,
        "temp_k": temp_k,
        "t_h": t_h,
        "efc0": efc0,
        "crate0_per_h": crate0,
        "range_pu": closed.max(axis=1) - closed.min(axis=1),
    }


def _check_inputs(soc: FloatArray, dt_h: float, temp: FloatArray, years: int, n_ev: int, n_t: int) -> None:
    if soc.ndim != 2 or n_ev == 0 or n_t < 2:
        raise DataError(f"soc_pu must be a non-empty (n_ev, n_t) array with n_t >= 2; got shape {soc.shape}")
    if not np.all(np.isfinite(soc)) or soc.min() < 0.0 or soc.max() > 1.0:
        raise DataError("soc_pu must be finite and within 0-1 [pu]")
    if not (np.isfinite(dt_h) and dt_h > 0.0):
        raise DataError(f"dt_h must be a positive number of hours; got {dt_h}")
    if abs(n_t * dt_h - 24.0) > 1e-9:
        raise DataError(f"the duty period n_t * dt_h must be 24 h (one day); got {n_t} x {dt_h} h = {n_t * dt_h} h")
    if temp.shape not in ((), (n_ev,), (n_ev, n_t)):
        raise DataError(f"temp_c must be a scalar, ({n_ev},) or ({n_ev}, {n_t}); got shape {temp.shape}")
    lo, hi = TEMP_RANGE_C
    if not np.all(np.isfinite(temp)) or temp.min() < lo or temp.max() > hi:
        raise DataError(f"temp_c must be finite and within {lo:g} to {hi:g} [degC]")
    if isinstance(years, bool) or int(years) != years or not 1 <= years <= MAX_YEARS:
        raise DataError(f"years must be a whole number from 1 to {MAX_YEARS}; got {years}")


def _chemistry_per_ev(chemistry: str | Sequence[str], n_ev: int) -> tuple[str, ...]:
    if isinstance(chemistry, str):
        chem = (chemistry,) * n_ev
    else:
        chem = tuple(chemistry)
        if len(chem) != n_ev:
            raise DataError(f"chemistry must be one name or one per EV ({n_ev}); got {len(chem)}")
    unknown = sorted(set(chem) - set(MODELS))
    if unknown:
        raise DataError(f"chemistry {unknown[0]!r} is not known; allowed: {', '.join(CHEMISTRIES)}")
    return chem


def calc_fade(
    soc_pu: npt.ArrayLike,
    dt_h: float,
    temp_c: npt.ArrayLike,
    years: int,
    chemistry: str | Sequence[str] = "nmc",
    *,
    capacity_kwh: npt.ArrayLike | None = None,
    dod_method: DodMethod = "rainflow",
) -> FadeResult:
    """Capacity fade of each EV over ``years`` of a repeated daily duty cycle.

    Parameters
    ----------
    soc_pu : (n_ev, n_t) SoC over one day at the start of each step [pu]; the day repeats (the sample after
        the last is the first).
    dt_h : step [h]; ``n_t * dt_h`` must be 24 h.
    temp_c : cell temperature [degC]: scalar, (n_ev,) or (n_ev, n_t) (0 to 60, :data:`TEMP_RANGE_C`).
    years : whole years to simulate (1 to 30).
    chemistry : one of :data:`CHEMISTRIES`, or one per EV.
    capacity_kwh : (n_ev,) usable capacity [kWh], optional and only checked: the models are relative to the
        cell's capacity, so a pack's relative fade does not depend on its size.
    dod_method : ``"rainflow"`` (default) or ``"range"`` (see the module docstring).

    Returns
    -------
    FadeResult

    Raises
    ------
    v2gtwin.errors.DataError
        A shape, range or name out of bounds (the message names the argument and what is allowed).

    Notes
    -----
    Each day is one period: the rates are computed once from the day's samples (they do not change as the cell
    ages, except through the capacity that scales the charge throughput and C-rate), and the states advance
    one day at a time in compiled code, in parallel over EVs.
    """
    soc = np.ascontiguousarray(soc_pu, dtype=np.float64)
    temp = np.asarray(temp_c, dtype=np.float64)
    n_ev, n_t = soc.shape if soc.ndim == 2 else (0, 0)
    _check_inputs(soc, float(dt_h), temp, years, n_ev, n_t)
    chem = _chemistry_per_ev(chemistry, n_ev)
    if capacity_kwh is not None:
        cap = np.asarray(capacity_kwh, dtype=np.float64)
        if cap.shape != (n_ev,) or not np.all(np.isfinite(cap)) or np.any(cap <= 0.0):
            raise DataError(f"capacity_kwh must be ({n_ev},) positive finite values [kWh]")
    if dod_method not in ("rainflow", "range"):
        raise DataError(f"dod_method must be 'rainflow' or 'range'; got {dod_method!r}")
    years = int(years)
    st = calc_period_stressors(soc, float(dt_h), temp)
    dod = calc_cycle_dod_pu(soc) if dod_method == "rainflow" else st["range_pu"]
    st["dod_pu"] = dod
    n_days = years * DAYS_PER_YEAR
    dt_days = n_t * float(dt_h) / 24.0
    q_cal = np.zeros((n_ev, years))
    q_cyc = np.zeros((n_ev, years))
    # Each model's states stop when its cell has no capacity left; the calendar state, a function of time,
    # is capped here so that the total loss never passes 1 (never a negative capacity).
    chem_arr = np.asarray(chem)
    for name, model in MODELS.items():
        idx = np.flatnonzero(chem_arr == name)
        if idx.size == 0:
            continue
        sub = _subset(st, idx) if idx.size < n_ev else st
        rates = model.calc_rates(sub)
        cal, cyc = model.run_states(rates, sub["efc0"], dt_days, n_days, DAYS_PER_YEAR)
        q_cal[idx] = cal
        q_cyc[idx] = cyc
    q_cyc = np.minimum(q_cyc, 1.0)
    q_cal = np.minimum(q_cal, 1.0 - q_cyc)
    return FadeResult(
        q_loss_pu=q_cal + q_cyc,
        q_loss_cal_pu=q_cal,
        q_loss_cyc_pu=q_cyc,
        efc_per_day=st["efc0"] / dt_days,
        chemistry=chem,
        dod_pu=dod,
        dod_method=dod_method,
    )


def _subset(st: dict[str, Any], idx: npt.NDArray[np.intp]) -> dict[str, Any]:
    return {k: (v if k == "t_h" else np.asarray(v)[idx]) for k, v in st.items()}


#: Percentiles of the fleet reported by :func:`summarize_fade` [%].
PERCENTILES: Final = (5, 50, 95)


def summarize_fade(result: FadeResult, temp_c: float | None = None, eol_fade_pu: float = 0.2) -> dict[str, Any]:
    """Fleet capacity fade by year: mean and percentiles over EVs (the ``battery fade --json`` dict).

    Parameters
    ----------
    result : the fleet's fade.
    temp_c : the cell temperature used, when one value for the fleet [degC] (echoed in the output).
    eol_fade_pu : loss at which a battery is replaced [pu]; each year counts the EVs past it.

    Returns
    -------
    dict
        ``n_evs``, ``years``, ``chemistry`` (one name, or ``"mixed"`` with ``n_evs_by_chemistry``),
        ``dod_method``, ``efc_per_day_mean`` [1/day], ``dod_mean_pu`` [pu], and ``by_year``:
        ``{"year_1": {"q_loss_mean_pu", "q_loss_p5_pu", "q_loss_p50_pu", "q_loss_p95_pu",
        "q_loss_cal_mean_pu", "q_loss_cyc_mean_pu", "n_evs_past_eol", "n_evs_dead"}, ...}`` [pu of the new
        capacity]: ``n_evs_past_eol`` EVs whose loss reached ``eol_fade_pu`` (replaced in practice; their later
        fade is that of a battery nobody would still drive), ``n_evs_dead`` those at a loss of 1 (saturated).
    """
    names = sorted(set(result.chemistry))
    out: dict[str, Any] = {
        "n_evs": int(result.q_loss_pu.shape[0]),
        "years": result.n_years,
        "chemistry": names[0] if len(names) == 1 else "mixed",
    }
    if len(names) > 1:
        out["n_evs_by_chemistry"] = {n: int(sum(c == n for c in result.chemistry)) for n in names}
    if temp_c is not None:
        out["temp_c"] = float(temp_c)
    out["dod_method"] = result.dod_method
    out["eol_fade_pu"] = float(eol_fade_pu)
    out["efc_per_day_mean"] = float(np.mean(result.efc_per_day))
    if result.dod_pu is not None:
        out["dod_mean_pu"] = float(np.mean(result.dod_pu))
    by_year: dict[str, dict[str, float]] = {}
    pct = np.percentile(result.q_loss_pu, PERCENTILES, axis=0)
    for y in range(result.n_years):
        row = {"q_loss_mean_pu": float(np.mean(result.q_loss_pu[:, y]))}
        for p, v in zip(PERCENTILES, pct[:, y], strict=True):
            row[f"q_loss_p{p}_pu"] = float(v)
        row["q_loss_cal_mean_pu"] = float(np.mean(result.q_loss_cal_pu[:, y]))
        row["q_loss_cyc_mean_pu"] = float(np.mean(result.q_loss_cyc_pu[:, y]))
        row["n_evs_past_eol"] = int(np.sum(result.q_loss_pu[:, y] >= eol_fade_pu))
        row["n_evs_dead"] = int(np.sum(result.q_loss_pu[:, y] >= 1.0 - 1e-12))
        by_year[f"year_{y + 1}"] = row
    out["by_year"] = by_year
    return out
