"""Contingency reserve and demand response (peak shaving) from an EV fleet, over a day.

Both start from the fleet's baseline (uncontrolled charging) and respect every EV's plug-in window, power
limits, mobility SoC floor and the need to reach its target SoC by departure.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from v2gtwin.errors import DataError
from v2gtwin.fleet import Fleet, SocResult, run_uncontrolled

__all__ = ["DemandResponseResult", "ReserveResult", "run_demand_response", "run_reserve"]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ReserveResult:
    """Contingency reserve the fleet can promise, per start step.

    Attributes
    ----------
    reserve_kw : increase of injection (less charging, then discharge) deliverable ``lead`` after the step
        and sustainable for ``duration`` [kW] (0 where the event would run past the horizon).
    from_charging_kw : part of it that comes from stopping charging [kW].
    n_available : EVs plugged in for the whole window [-].
    lead_s, duration_s : delivery lead time and sustain duration [s].
    """

    reserve_kw: FloatArray
    from_charging_kw: FloatArray
    n_available: npt.NDArray[np.int64]
    lead_s: float
    duration_s: float


def run_reserve(
    fleet: Fleet, baseline: SocResult | None = None, *, lead_s: float = 600.0, duration_s: float = 1800.0
) -> ReserveResult:
    """Reserve the fleet can deliver within ``lead_s`` and sustain for ``duration_s``, for every start step.

    Notes
    -----
    For an event starting at step ``t`` the EV must be plugged in from ``t`` to the end of the window
    ``[t + lead, t + lead + duration]``. During the window it holds a constant power ``p`` instead of its
    baseline ``p0`` (the baseline power at the window start; uncontrolled charging by default). Its stored
    energy at the window's end must stay above the floor
    ``max(min(soc_min C, e_s), e_T - P_c eta_c (d - t_end) dt)`` (mobility SoC, and the target still
    reachable by charging at full power afterwards), which gives the lowest admissible ``p``:
    ``need = floor - e_s``; ``p_min = need / (eta_c D)`` if ``need > 0`` else ``max(-P_d, need eta_d / D)``.
    The EV's reserve is ``max(0, p0 - p_min)``; the fleet's is the sum. (Baseline power is taken constant
    over the window — conservative when the baseline would stop charging inside it.)
    """
    if not (lead_s >= 0 and duration_s > 0):
        raise DataError(f"lead_s must be >= 0 and duration_s > 0; got {lead_s}, {duration_s}")
    base = baseline if baseline is not None else run_uncontrolled(fleet)
    dt_s, dt_h = fleet.dt_s, fleet.dt_h
    lead = int(np.ceil(lead_s / dt_s - 1e-9))
    dur = max(1, int(np.ceil(duration_s / dt_s - 1e-9)))
    dur_h = dur * dt_h
    n_steps = fleet.n_steps
    reserve = np.zeros(n_steps)
    from_charging = np.zeros(n_steps)
    count = np.zeros(n_steps, dtype=np.int64)
    cap = fleet.capacity_kwh
    for t in range(n_steps):
        ws, we = t + lead, t + lead + dur  # window [ws, we) in steps
        if we > n_steps:
            continue
        avail = (fleet.arrival_step <= t) & (fleet.departure_step >= we)
        if not avail.any():
            continue
        idx = np.flatnonzero(avail)
        e_s = np.asarray(base.soc_pu[ws, idx], dtype=float) * cap[idx]
        p0 = np.asarray(base.p_kw[ws, idx], dtype=float)
        e_tgt = fleet.soc_target_pu[idx] * cap[idx]
        late = e_tgt - fleet.p_charge_max_kw[idx] * fleet.eta_charge[idx] * dt_h * (fleet.departure_step[idx] - we)
        floor = np.maximum(np.minimum(fleet.soc_min_pu[idx] * cap[idx], e_s), late)
        need = floor - e_s
        p_min = np.where(
            need > 0,
            need / (fleet.eta_charge[idx] * dur_h),
            np.maximum(-fleet.p_discharge_max_kw[idx], need * fleet.eta_discharge[idx] / dur_h),
        )
        r = np.clip(p0 - p_min, 0.0, None)
        reserve[t] = r.sum()
        from_charging[t] = np.minimum(r, np.clip(p0, 0.0, None)).sum()
        count[t] = idx.size
    return ReserveResult(reserve, from_charging, count, lead * dt_s, dur * dt_s)


@dataclass(frozen=True)
class DemandResponseResult:
    """A demand-response event and the fleet's answer.

    Attributes
    ----------
    p_baseline_kw, p_dr_kw : aggregate fleet power per step without and with the event [kW, + charging].
    notify_step, start_step, end_step : event timing (end exclusive) [-].
    reduction_mean_kw : mean reduction of fleet power during the event [kW].
    peak_reduction_kw : baseline peak minus DR peak inside the event [kW].
    rebound_peak_kw : highest fleet power after the event, and baseline's at the same steps
        (``rebound_baseline_kw``) [kW].
    energy_shifted_kwh : energy not drawn during the event [kWh].
    n_unmet : EVs that leave below their target with the event (and without: ``n_unmet_baseline``) [-].
    """

    p_baseline_kw: FloatArray
    p_dr_kw: FloatArray
    notify_step: int
    start_step: int
    end_step: int
    reduction_mean_kw: float
    peak_reduction_kw: float
    rebound_peak_kw: float
    rebound_baseline_kw: float
    energy_shifted_kwh: float
    n_unmet: int
    n_unmet_baseline: int


def run_demand_response(
    fleet: Fleet,
    notify_step: int,
    start_step: int,
    end_step: int,
    *,
    allow_discharge: bool = True,
    precharge: bool = True,
) -> DemandResponseResult:
    """The fleet's answer to a demand-response (peak-shaving) event.

    From notification to start, EVs charge at full power if ``precharge`` (building energy for the event);
    during the event each EV draws only its must-run power (what it needs now to still reach its target at
    full power afterwards) and, if ``allow_discharge``, V2G EVs discharge down to their mobility floor
    without breaking that guarantee; after the event every EV charges at full power until its target (the
    rebound). Baseline: uncontrolled charging.
    """
    n_steps = fleet.n_steps
    if not (0 <= notify_step <= start_step < end_step <= n_steps):
        raise DataError(
            f"event steps: need 0 <= notify <= start < end <= {n_steps}; got {notify_step}, {start_step}, {end_step}"
        )
    base = run_uncontrolled(fleet)
    dt_h = fleet.dt_h
    cap = fleet.capacity_kwh
    soc = fleet.soc0_pu.astype(float).copy()
    p_out = np.zeros((n_steps, fleet.n))
    for t in range(n_steps):
        plugged = (fleet.arrival_step <= t) & (t < fleet.departure_step)
        e = soc * cap
        e_tgt = fleet.soc_target_pu * cap
        full = fleet.p_charge_max_kw
        # Must-run: energy still needed beyond what full power after this step can bring.
        after = full * fleet.eta_charge * dt_h * np.maximum(fleet.departure_step - t - 1, 0)
        must = np.clip((e_tgt - e - after) / (fleet.eta_charge * dt_h), 0.0, full)
        if start_step <= t < end_step:
            req = must.copy()
            if allow_discharge:
                # Discharge only what full-power charging over the rest of the stay can put back, and never
                # below the mobility floor; the must-run rule of later steps then keeps the target reachable.
                spare = np.minimum(e + after - e_tgt, e - fleet.soc_min_pu * cap)
                dis = np.clip(spare * fleet.eta_discharge / dt_h, 0.0, fleet.p_discharge_max_kw)
                req = np.where(must > 0, must, -dis)
        elif notify_step <= t < start_step and precharge:
            req = np.clip((fleet.soc_max_pu * cap - e) / (fleet.eta_charge * dt_h), 0.0, full)
        else:
            # Baseline behaviour: charge at full power until the target.
            req = np.clip((e_tgt - e) / (fleet.eta_charge * dt_h), 0.0, full)
        # SoC limits, then advance.
        room_up = np.clip((fleet.soc_max_pu * cap - e) / (fleet.eta_charge * dt_h), 0.0, None)
        room_dn = np.clip((e - fleet.soc_min_pu * cap) * fleet.eta_discharge / dt_h, 0.0, None)
        p = np.where(
            plugged, np.clip(req, -np.minimum(room_dn, fleet.p_discharge_max_kw), np.minimum(room_up, full)), 0.0
        )
        soc = soc + np.where(p > 0, p * fleet.eta_charge, p / fleet.eta_discharge) * dt_h / cap
        p_out[t] = p
    p_dr = p_out.sum(axis=1)
    p_base = np.asarray(base.p_kw, dtype=float).sum(axis=1)
    ev = slice(start_step, end_step)
    after_ev = slice(end_step, n_steps)
    soc_dep_base = np.asarray(base.soc_pu[fleet.departure_step, np.arange(fleet.n)], dtype=float)
    soc_end = soc  # after departure SoC is frozen: the loop leaves unplugged EVs untouched
    return DemandResponseResult(
        p_baseline_kw=p_base,
        p_dr_kw=p_dr,
        notify_step=notify_step,
        start_step=start_step,
        end_step=end_step,
        reduction_mean_kw=float((p_base[ev] - p_dr[ev]).mean()),
        peak_reduction_kw=float(p_base[ev].max() - p_dr[ev].max()),
        rebound_peak_kw=float(p_dr[after_ev].max()) if end_step < n_steps else 0.0,
        rebound_baseline_kw=float(p_base[after_ev].max()) if end_step < n_steps else 0.0,
        energy_shifted_kwh=float((p_base[ev] - p_dr[ev]).sum() * dt_h),
        n_unmet=int(np.sum(soc_end < fleet.soc_target_pu - 1e-6)),
        n_unmet_baseline=int(np.sum(soc_dep_base < fleet.soc_target_pu - 1e-6)),
    )
