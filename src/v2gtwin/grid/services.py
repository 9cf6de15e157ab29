"""Contingency reserve and demand response (peak shaving) from an EV fleet, over a day.

Both start from the fleet's baseline (uncontrolled charging) and respect every EV's plug-in window, power
limits, mobility SoC floor and the need to reach its target SoC by departure.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from v2gtwin.errors import DataError
from v2gtwin.fleet import Fleet, SocResult, run_uncontrolled
from v2gtwin.grid.secure import SECURE_RULE, NetworkLimits, calc_secure_change

__all__ = ["DemandResponseResult", "ReserveResult", "run_demand_response", "run_reserve"]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ReserveResult:
    """Contingency reserve the fleet can promise, per start step.

    Attributes
    ----------
    reserve_kw : increase of injection (less charging, then discharge) deliverable ``lead_s`` after the
        start of the step and sustainable for ``duration_s`` [kW] (0 where the event would run past the
        horizon: ``n_past_horizon`` steps at the end).
    from_charging_kw : part of it that comes from stopping charging [kW].
    n_available : EVs plugged in for the whole window [-].
    lead_s, duration_s : delivery lead time and sustain duration, exactly as asked (not rounded to steps) [s].
    n_past_horizon : start steps whose window ends after the horizon (reserve 0) [-].
    reserve_secure_kw : the part of ``reserve_kw`` the network carries: each EV's reserve clipped per bus to
        the tightest operating envelope of the window (rule ``secure_rule``); None without network limits [kW].
    n_bus_binding : buses whose envelope cuts the reserve, per start step (None without network limits) [-].
    secure_rule : the rule of the network-secure figure (empty without network limits).
    """

    reserve_kw: FloatArray
    from_charging_kw: FloatArray
    n_available: npt.NDArray[np.int64]
    lead_s: float
    duration_s: float
    n_past_horizon: int = 0
    reserve_secure_kw: FloatArray | None = None
    n_bus_binding: npt.NDArray[np.int64] | None = None
    secure_rule: str = ""


def run_reserve(
    fleet: Fleet,
    baseline: SocResult | None = None,
    *,
    lead_s: float = 600.0,
    duration_s: float = 1800.0,
    limits: NetworkLimits | None = None,
) -> ReserveResult:
    """Reserve the fleet can deliver within ``lead_s`` [s] and sustain for ``duration_s`` [s], for every
    start step; with ``limits`` (the network's operating envelopes), also the network-secure reserve.

    Notes
    -----
    An event called at the start of step ``t`` (time ``t dt``) is delivered over the window
    ``[t0, t1] = [t dt + lead, t dt + lead + duration]`` in seconds, at sub-step resolution: a 10-minute
    product on a 15-minute grid starts 10 minutes into the step, not at the next step. The EV must be
    plugged in from ``t`` to ``t1`` (it leaves at ``departure_step dt``). During the window it holds a
    constant power ``p`` instead of its baseline ``p0`` (the baseline power of the step containing ``t0``;
    uncontrolled charging by default). Its stored energy at ``t0`` is the baseline's, interpolated inside
    the step (power is constant within a step): ``e_s = C soc[k] + (t0 - k dt) (eta_c p0 | p0 / eta_d)``.
    At ``t1`` its energy must stay above the floor
    ``max(min(soc_min C, e_s), e_T - P_c eta_c (d dt - t1))`` (mobility SoC, and the target still
    reachable by charging at full power afterwards), which gives the lowest admissible ``p`` with
    ``D = duration``: ``need = floor - e_s``; ``p_min = need / (eta_c D)`` if ``need > 0`` else
    ``max(-P_d, need eta_d / D)``. The EV's reserve is ``max(0, p0 - p_min)``; the fleet's is the sum.
    (Baseline power is taken constant over the window — conservative when the baseline would stop
    charging inside it.)

    Network-secure reserve: the change ``-r`` of every EV, from the baseline power of every EV of the fleet at
    the step containing ``t0``, clipped bus by bus to the smallest operating envelope of the steps the window
    overlaps (:func:`v2gtwin.grid.secure.calc_secure_change`). Stopping charging is never cut (it moves a bus
    toward its envelope); discharge stops at the bus's export limit.
    """
    if not (np.isfinite(lead_s) and lead_s >= 0):
        raise DataError(f"reserve lead_s = {lead_s}: allowed range >= 0 s")
    if not (np.isfinite(duration_s) and duration_s > 0):
        raise DataError(f"reserve duration_s = {duration_s}: allowed range > 0 s")
    base = baseline if baseline is not None else run_uncontrolled(fleet)
    dt_s = fleet.dt_s
    n_steps = fleet.n_steps
    dur_h = duration_s / 3600.0
    reserve = np.zeros(n_steps)
    from_charging = np.zeros(n_steps)
    count = np.zeros(n_steps, dtype=np.int64)
    cap = fleet.capacity_kwh
    dep_s = fleet.departure_step * dt_s
    n_past = 0
    tol_s = 1e-6 * dt_s
    secure = None if limits is None else np.zeros(n_steps)
    binding = None if limits is None else np.zeros(n_steps, dtype=np.int64)
    for t in range(n_steps):
        t0_s = t * dt_s + lead_s
        t1_s = t0_s + duration_s
        if t1_s > n_steps * dt_s + tol_s:
            n_past += 1
            continue
        avail = (fleet.arrival_step <= t) & (dep_s >= t1_s - tol_s)
        if not avail.any():
            continue
        idx = np.flatnonzero(avail)
        k = min(int(np.floor(t0_s / dt_s + 1e-9)), n_steps - 1)  # step containing the window start
        into_h = (t0_s - k * dt_s) / 3600.0
        p0 = np.asarray(base.p_kw[k, idx], dtype=float)
        de = np.where(p0 > 0, p0 * fleet.eta_charge[idx], p0 / fleet.eta_discharge[idx]) * into_h
        e_s = np.asarray(base.soc_pu[k, idx], dtype=float) * cap[idx] + de
        e_tgt = fleet.soc_target_pu[idx] * cap[idx]
        after_h = np.clip(dep_s[idx] - t1_s, 0.0, None) / 3600.0
        late = e_tgt - fleet.p_charge_max_kw[idx] * fleet.eta_charge[idx] * after_h
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
        if limits is not None and secure is not None and binding is not None:
            last = min(int(np.ceil(t1_s / dt_s - 1e-9)), n_steps)  # steps k .. last-1 overlap the window
            dp = np.zeros(fleet.n)
            dp[idx] = -r
            sc = calc_secure_change(limits, np.arange(k, max(last, k + 1)), base.p_kw[k], dp)
            # Where no bus binds the secure figure is the unconstrained one (not a sum in another order).
            secure[t] = reserve[t] if sc.n_bus_binding == 0 else -sc.total_secure_kw
            binding[t] = sc.n_bus_binding
    return ReserveResult(
        reserve,
        from_charging,
        count,
        float(lead_s),
        float(duration_s),
        n_past,
        reserve_secure_kw=secure,
        n_bus_binding=binding,
        secure_rule="" if limits is None else SECURE_RULE,
    )


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
    event_clock : {'notify', 'start', 'end'}: local clock times "HH:MM" of those step starts, when the event
        came from clock times (empty otherwise).
    p_dr_secure_kw : aggregate fleet power with the event, each step's change from the baseline clipped per bus
        to the step's operating envelope (None without network limits) [kW, + charging].
    reduction_mean_secure_kw, peak_reduction_secure_kw, rebound_peak_secure_kw : the figures above from
        ``p_dr_secure_kw`` (None without network limits) [kW].
    n_bus_binding : buses whose envelope cuts the change, per step (None without network limits) [-].
    secure_rule : the rule of the network-secure figures (empty without network limits).
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
    event_clock: dict[str, str] = field(default_factory=dict)
    p_dr_secure_kw: FloatArray | None = None
    reduction_mean_secure_kw: float | None = None
    peak_reduction_secure_kw: float | None = None
    rebound_peak_secure_kw: float | None = None
    n_bus_binding: npt.NDArray[np.int64] | None = None
    secure_rule: str = ""


def run_demand_response(
    fleet: Fleet,
    notify_step: int,
    start_step: int,
    end_step: int,
    *,
    allow_discharge: bool = True,
    precharge: bool = True,
    limits: NetworkLimits | None = None,
) -> DemandResponseResult:
    """The fleet's answer to a demand-response (peak-shaving) event.

    From notification to start, EVs charge at full power if ``precharge`` (building energy for the event);
    during the event each EV draws only its must-run power (what it needs now to still reach its target at
    full power afterwards) and, if ``allow_discharge``, V2G EVs discharge down to their mobility floor
    without breaking that guarantee; after the event every EV charges at full power until its target (the
    rebound). Baseline: uncontrolled charging.

    With ``limits`` (the network's operating envelopes), each step's change of every EV from its baseline
    power is clipped per bus to that step's envelope (:func:`v2gtwin.grid.secure.calc_secure_change`) and the
    figures are given again from the clipped fleet power. Each step is clipped on its own: energy an EV could
    not shift is not planned again at other steps (the network-constrained schedule does that), so the secure
    rebound is what the network lets through at each step, not a re-solved one.
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
    res = DemandResponseResult(
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
    if limits is None:
        return res
    p_sec = np.empty(n_steps)
    binding = np.zeros(n_steps, dtype=np.int64)
    for t in range(n_steps):
        p0_t = np.asarray(base.p_kw[t], dtype=float)
        sc = calc_secure_change(limits, t, p0_t, p_out[t] - p0_t)
        p_sec[t] = p_dr[t] if sc.n_bus_binding == 0 else p_base[t] + sc.total_secure_kw
        binding[t] = sc.n_bus_binding
    return dataclasses.replace(
        res,
        p_dr_secure_kw=p_sec,
        reduction_mean_secure_kw=float((p_base[ev] - p_sec[ev]).mean()),
        peak_reduction_secure_kw=float(p_base[ev].max() - p_sec[ev].max()),
        rebound_peak_secure_kw=float(p_sec[after_ev].max()) if end_step < n_steps else 0.0,
        n_bus_binding=binding,
        secure_rule=SECURE_RULE,
    )
