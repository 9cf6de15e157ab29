"""Microgrid resilience of a critical facility during an upstream outage, and what a V2G fleet adds.

At ``t = 0`` the grid upstream of the facility is lost for ``n * dt_s`` seconds. The facility's critical load is
served, in merit order, by on-site PV, a backup generator (start delay, power and fuel limits), the V2G fleet
plugged in nearby (the aggregator's dynamics and each EV's power, energy and plug-in window) and a stationary
battery (the bridge: it covers what the others do not yet give). The performance is

``Q(t) = served critical load / critical load``

and the two metrics are those of Bruneau et al.'s resilience triangle: the recovery time ``T_r`` (first time Q
reaches an acceptable level) and the loss of resilience ``M_D = integral of (1 - Q(t)) dt`` over the outage.

Time is a fixed simulation step ``dt_s``; every power is constant within a step (the package's convention), so
``M_D = sum_k (1 - Q_k) dt`` is exact for the discrete model.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from numba import njit

from v2gtwin.errors import DataError

__all__ = [
    "V2G_FLOOR_RULES",
    "OutageFleet",
    "OutageResult",
    "ResilienceMetrics",
    "V2gDynamics",
    "calc_ev_floor_kwh",
    "calc_resilience_metrics",
    "calc_served_kw",
    "run_outage",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.floating[Any]]
IntArray = npt.NDArray[np.int64]

V2gFloor = Literal["target", "soc_min"]

#: How low V2G may take an EV during an outage, by rule name (the description is printed with every result).
V2G_FLOOR_RULES: dict[str, str] = {
    "target": "each EV keeps enough energy to reach its departure target by charging at full power once the grid "
    "is back (an EV leaving during the outage keeps its target), and never goes below its minimum SoC",
    "soc_min": "each EV may give everything above its minimum (mobility) SoC; departure targets are not kept",
}


@dataclass(frozen=True)
class V2gDynamics:
    """How the aggregator's V2G fleet answers the microgrid's call for power.

    Attributes
    ----------
    delay_s : communication and decision delay: the set-point at ``t`` is the deficit seen at ``t - delay_s`` [s].
    tau_s : time constant of the first-order response to the set-point (0: none) [s].
    ramp_kw_per_s : largest change of the fleet's output per second (None: no limit) [kW/s].
    cap_kw : largest V2G power the island accepts (None: no cap beyond the EVs' own limits) [kW].
    """

    delay_s: float = 5.0
    tau_s: float = 2.0
    ramp_kw_per_s: float | None = None
    cap_kw: float | None = None

    def __post_init__(self) -> None:
        for name in ("delay_s", "tau_s"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise DataError(f"V2G dynamics {name} = {v!r}: allowed range >= 0 s")
        for name in ("ramp_kw_per_s", "cap_kw"):
            v = getattr(self, name)
            if v is not None and not (math.isfinite(v) and v > 0):
                raise DataError(f"V2G dynamics {name} = {v!r}: allowed range > 0 (or None for no limit)")


@dataclass(frozen=True)
class OutageFleet:
    """The V2G EVs near the facility, as seen by the outage (one entry per EV).

    Attributes
    ----------
    e_kwh : stored energy when the EV becomes available to the island (at the outage start, or at its arrival
        during the outage) [kWh].
    floor_kwh : least stored energy V2G may leave it with (:func:`calc_ev_floor_kwh`) [kWh].
    p_discharge_max_kw : discharge limit, grid side [kW].
    eta_discharge : battery-to-grid efficiency [-].
    on_step : first simulation step in which the EV is plugged in (0 when plugged in at the outage start) [-].
    off_step : first simulation step in which it is gone (``n`` or more: stays to the end) [-].
    """

    e_kwh: FloatArray
    floor_kwh: FloatArray
    p_discharge_max_kw: FloatArray
    eta_discharge: FloatArray
    on_step: IntArray
    off_step: IntArray

    def __post_init__(self) -> None:
        n = None
        for name in ("e_kwh", "floor_kwh", "p_discharge_max_kw", "eta_discharge", "on_step", "off_step"):
            dtype = np.int64 if name.endswith("_step") else np.float64
            arr = np.ascontiguousarray(getattr(self, name), dtype=dtype)
            if arr.ndim != 1:
                raise DataError(f"outage fleet {name}: expected a 1-D array, got shape {arr.shape}")
            if n is None:
                n = arr.size
            elif arr.size != n:
                raise DataError(f"outage fleet {name}: length {arr.size} differs from e_kwh ({n})")
            if dtype is np.float64 and not np.isfinite(arr).all():
                raise DataError(f"outage fleet {name}: every value must be finite")
            object.__setattr__(self, name, arr)
        if (self.p_discharge_max_kw < 0).any() or (self.e_kwh < 0).any():
            raise DataError("outage fleet p_discharge_max_kw, e_kwh: must be >= 0")
        if ((self.eta_discharge <= 0) | (self.eta_discharge > 1)).any():
            raise DataError("outage fleet eta_discharge: allowed range > 0 and <= 1")

    @property
    def n(self) -> int:
        """EVs [-]."""
        return int(self.e_kwh.size)

    @classmethod
    def empty(cls) -> OutageFleet:
        """No EVs (the case without V2G)."""
        z = np.zeros(0)
        return cls(z, z, z, z, np.zeros(0, np.int64), np.zeros(0, np.int64))

    def head(self, n_evs: int) -> OutageFleet:
        """The first ``n_evs`` EVs (nested fleets for a fleet-size sweep)."""
        k = slice(0, n_evs)
        return OutageFleet(
            self.e_kwh[k],
            self.floor_kwh[k],
            self.p_discharge_max_kw[k],
            self.eta_discharge[k],
            self.on_step[k],
            self.off_step[k],
        )


@dataclass(frozen=True)
class ResilienceMetrics:
    """Bruneau et al.'s resilience-triangle metrics of one outage.

    Attributes
    ----------
    level : acceptable performance level [-].
    t_r_s : recovery time: start of the first step from which Q >= level, counted from the outage start; the
        grid's return (the outage duration) when the island never reaches it (``recovered_by`` says which) [s].
    recovered_by : ``"microgrid"`` or ``"grid"`` (the island never reached the level) [-].
    m_d_h : loss of resilience, integral of (1 - Q) over the outage [h].
    q_min : lowest performance during the outage [-].
    t_below_level_s : total time with Q below the level, falling back below it included [s].
    """

    level: float
    t_r_s: float
    recovered_by: str
    m_d_h: float
    q_min: float
    t_below_level_s: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (units in the keys)."""
        return {
            "level": self.level,
            "t_r_s": self.t_r_s,
            "recovered_by": self.recovered_by,
            "m_d_h": self.m_d_h,
            "q_min": self.q_min,
            "t_below_level_s": self.t_below_level_s,
        }


@dataclass(frozen=True)
class OutageResult:
    """Power balance of the islanded facility, one value per simulation step (step ``k`` covers
    ``[k dt_s, (k + 1) dt_s)`` after the outage start).

    Attributes
    ----------
    dt_s : simulation step [s].
    p_load_kw : critical load [kW].
    p_served_kw : critical load served [kW].
    p_pv_kw, p_gen_kw, p_v2g_kw, p_battery_kw : what each source delivers [kW].
    p_v2g_setpoint_kw : the aggregator's set-point (the deficit after PV and generator, ``delay_s`` earlier) [kW].
    p_v2g_avail_kw : what the plugged-in EVs could give in the step (power and energy above their floors) [kW].
    q : performance Q = served / load (1 when the load is 0) [-].
    e_v2g_kwh : energy above their floors of the EVs plugged in, at the start of each step and after the last,
        (n + 1,) [kWh].
    n_evs : EVs in the fleet [-].
    """

    dt_s: float
    p_load_kw: FloatArray
    p_served_kw: FloatArray
    p_pv_kw: FloatArray
    p_gen_kw: FloatArray
    p_v2g_kw: FloatArray
    p_battery_kw: FloatArray
    p_v2g_setpoint_kw: FloatArray
    p_v2g_avail_kw: FloatArray
    q: FloatArray
    e_v2g_kwh: FloatArray
    n_evs: int

    @property
    def t_s(self) -> FloatArray:
        """Start of each step after the outage start [s]."""
        return np.arange(self.q.size) * self.dt_s

    @property
    def energy_v2g_kwh(self) -> float:
        """Energy the fleet delivered [kWh]."""
        return float(self.p_v2g_kw.sum() * self.dt_s / 3600.0)

    @property
    def energy_unserved_kwh(self) -> float:
        """Critical energy not served [kWh]."""
        return float((self.p_load_kw - self.p_served_kw).sum() * self.dt_s / 3600.0)


def calc_ev_floor_kwh(
    rule: str,
    capacity_kwh: npt.ArrayLike,
    soc_min_pu: npt.ArrayLike,
    soc_target_pu: npt.ArrayLike,
    p_charge_max_kw: npt.ArrayLike,
    eta_charge: npt.ArrayLike,
    t_after_s: npt.ArrayLike,
) -> FloatArray:
    """Least stored energy [kWh] V2G may leave each EV with during an outage (:data:`V2G_FLOOR_RULES`).

    Notes
    -----
    ``"soc_min"``: ``soc_min C``. ``"target"``: ``max(soc_min C, soc_T C - P_c eta_c t_after)`` with
    ``t_after`` [s] the time the EV stays plugged in after the grid returns (0 when it leaves during the
    outage): the target stays reachable by charging at full power afterwards, the rule of the package's
    envelope and reserve (:func:`v2gtwin.fleet.calc_envelope`).
    """
    if rule not in V2G_FLOOR_RULES:
        raise DataError(f"v2g_floor: must be one of {', '.join(V2G_FLOOR_RULES)}, got {rule!r}")
    cap = np.asarray(capacity_kwh, dtype=float)
    lo = np.asarray(soc_min_pu, dtype=float) * cap
    if rule == "soc_min":
        return np.asarray(lo * np.ones_like(cap))
    after_h = np.clip(np.asarray(t_after_s, dtype=float), 0.0, None) / 3600.0
    late = np.asarray(soc_target_pu, dtype=float) * cap - np.asarray(p_charge_max_kw) * np.asarray(eta_charge) * after_h
    return np.asarray(np.maximum(lo, late))


def calc_served_kw(supply_kw: npt.ArrayLike, load_kw: npt.ArrayLike, blocks_pu: tuple[float, ...] = ()) -> FloatArray:
    """Critical load served [kW] from the supply available [kW].

    Without ``blocks_pu``, ``min(load, supply)`` (the load is shed continuously). With priority blocks (shares of
    the load in priority order, summing to 1), whole blocks are served in order while they fit:
    ``load * max{c_j : c_j <= supply / load}`` with ``c_j`` the cumulative shares (0 included).
    """
    s = np.asarray(supply_kw, dtype=float)
    p = np.asarray(load_kw, dtype=float)
    if not blocks_pu:
        return np.asarray(np.minimum(s, p))
    c = np.concatenate(([0.0], np.cumsum(blocks_pu)))
    c[-1] = 1.0
    ratio = np.where(p > 0, s / np.where(p > 0, p, 1.0), 1.0)
    k = np.searchsorted(c, ratio + 1e-12, side="right") - 1
    return np.asarray(p * c[np.clip(k, 0, c.size - 1)])


@njit(cache=True)
def _lag_ramp_step(y, r, dt_s, tau_s, ramp):  # type: ignore[no-untyped-def]
    """``dy/dt = clip((r - y) / tau, -ramp, ramp)`` over one step of ``dt_s`` with ``r`` held: (y_end, mean y).

    Linear at the rate limit while ``|r - y| > ramp tau`` (all the way when ``tau = 0``), then exponential."""
    d = abs(r - y)
    if d == 0.0:
        return y, y
    s = 1.0 if r > y else -1.0
    t1 = (d - ramp * tau_s) / ramp if ramp < np.inf else 0.0  # time spent on the rate limit
    if t1 <= 0.0:
        t1 = 0.0
    if t1 >= dt_s:
        y_end = y + s * ramp * dt_s
        return y_end, 0.5 * (y + y_end)
    area = 0.0
    y1 = y
    if t1 > 0.0:
        area = t1 * (y + 0.5 * s * ramp * t1)
        y1 = y + s * ramp * t1
    t2 = dt_s - t1
    if tau_s > 0.0:
        g = 1.0 - np.exp(-t2 / tau_s)
        y_end = y1 + (r - y1) * g
        area += r * t2 + (y1 - r) * tau_s * g
    else:
        y_end = r
        area += r * t2
    return y_end, area / dt_s


@njit(cache=True)
def _outage_kernel(  # type: ignore[no-untyped-def]
    p_load, p_pv, dt_s, gen_kw, gen_start, gen_e, bat_kw, bat_e, delay, tau_s, ramp_kw_per_s, cap_kw,
    e, floor, pdis, eta, on, off, blocks_c,
    out_served, out_pv, out_gen, out_v2g, out_bat, out_set, out_avail, out_e,
):  # fmt: skip
    n = p_load.size
    m = e.size
    dt_h = dt_s / 3600.0
    deficit_hist = np.zeros(n)
    avail_i = np.zeros(m)
    y = 0.0
    for k in range(n):
        load = p_load[k]
        # Capacities of the sources this step.
        pv_cap = p_pv[k]
        g_cap = 0.0
        if k >= gen_start:
            g_cap = min(gen_kw, gen_e / dt_h)
        deficit = max(load - min(pv_cap, load) - min(g_cap, max(load - pv_cap, 0.0)), 0.0)
        deficit_hist[k] = deficit
        # The aggregator's set-point: the deficit seen delay steps ago (0 before the outage), capped by the island.
        r = deficit_hist[k - delay] if k >= delay else 0.0
        if r > cap_kw:
            r = cap_kw
        # Rate-limited first-order response over the step, solved exactly for the held set-point.
        y, y_mean = _lag_ramp_step(y, r, dt_s, tau_s, ramp_kw_per_s)
        # What the plugged-in EVs can give in this step.
        avail = 0.0
        e_tot = 0.0
        for i in range(m):
            a = 0.0
            room = e[i] - floor[i]
            if room > 0.0 and on[i] <= k < off[i]:
                e_tot += room
                a = min(pdis[i], room * eta[i] / dt_h)
            avail_i[i] = a
            avail += a
        out_e[k] = e_tot
        v_cap = min(y_mean, avail, cap_kw)
        b_cap = min(bat_kw, bat_e / dt_h)
        supply = pv_cap + g_cap + v_cap + b_cap
        # Served load: continuous shedding, or whole priority blocks.
        if blocks_c.size == 0:
            served = min(load, supply)
        elif load <= 0.0:
            served = 0.0
        else:
            ratio = supply / load
            frac = 0.0
            for c in blocks_c:
                if c <= ratio + 1e-12:
                    frac = c
            served = load * frac
        # Dispatch the served load in merit order: PV, generator, V2G, battery.
        rest = served
        pv = min(pv_cap, rest)
        rest -= pv
        g = min(g_cap, rest)
        rest -= g
        v = min(v_cap, rest)
        rest -= v
        b = min(b_cap, max(rest, 0.0))
        # (max with 0: x / dt_h * dt_h may exceed x by a rounding error; energies never go below 0)
        gen_e = max(gen_e - g * dt_h, 0.0)
        bat_e = max(bat_e - b * dt_h, 0.0)
        if v > 0.0 and avail > 0.0:
            u = v / avail
            for i in range(m):
                if avail_i[i] > 0.0:
                    e[i] = max(e[i] - u * avail_i[i] * dt_h / eta[i], floor[i])
        out_served[k] = served
        out_pv[k] = pv
        out_gen[k] = g
        out_v2g[k] = v
        out_bat[k] = b
        out_set[k] = r
        out_avail[k] = avail
    e_tot = 0.0
    for i in range(m):
        if e[i] > floor[i] and on[i] <= n - 1 < off[i]:
            e_tot += e[i] - floor[i]
    out_e[n] = e_tot


def _steps_of(value_s: float, dt_s: float, name: str) -> int:
    k = value_s / dt_s
    if not math.isfinite(k) or abs(k - round(k)) > 1e-6:
        raise DataError(f"{name} = {value_s:g} s: must be a whole number of simulation steps of {dt_s:g} s")
    return round(k)


def run_outage(
    p_load_kw: npt.ArrayLike,
    dt_s: float,
    fleet: OutageFleet,
    dynamics: V2gDynamics,
    *,
    gen_kw: float = 0.0,
    gen_start_delay_s: float = 10.0,
    gen_energy_kwh: float | None = None,
    p_pv_kw: npt.ArrayLike | None = None,
    battery_kw: float = 0.0,
    battery_kwh: float = 0.0,
    shed_blocks_pu: tuple[float, ...] = (),
) -> OutageResult:
    """Serve a critical load through an upstream outage from on-site sources and a V2G fleet.

    Parameters
    ----------
    p_load_kw : critical load in each simulation step of the outage, (n,) [kW].
    dt_s : simulation step [s]; the delays must be whole numbers of steps.
    fleet : the V2G EVs near the facility (:class:`OutageFleet`; ``OutageFleet.empty()`` for none).
    dynamics : the aggregator's response (:class:`V2gDynamics`).
    gen_kw : backup generator rating [kW] (0: none).
    gen_start_delay_s : time from the outage start to the generator taking load [s].
    gen_energy_kwh : electrical energy its fuel gives (None: enough for the outage) [kWh].
    p_pv_kw : on-site PV in each step, (n,) [kW] (None: none).
    battery_kw, battery_kwh : stationary battery power and the energy it can deliver [kW], [kWh].
    shed_blocks_pu : priority blocks of the critical load (shares in priority order, summing to 1); empty: the
        load is shed continuously.

    Returns
    -------
    OutageResult

    Notes
    -----
    In each step ``k`` (powers constant within a step):

    * PV gives ``min(PV_k, L_k)``; the generator, from step ``gen_start_delay_s / dt_s`` on and while its fuel
      lasts, ``min(P_gen, what remains)`` (load-following; fuel drawn in proportion to output);
    * the aggregator's set-point is the deficit after PV and the generator seen ``delay`` steps earlier,
      ``r_k = D_{k - delay}`` (0 before the outage: the fleet was not discharging), capped by ``cap_kw``;
    * the fleet's command ``y`` follows ``r`` as a rate-limited first-order lag,
      ``dy/dt = clip((r - y) / tau, -ramp, ramp)``, solved exactly over each step with ``r_k`` held: on the
      rate limit (linear) while ``|r - y| > ramp tau``, then ``y = r + (y_1 - r) e^{-t/tau}``; the step's
      output is the command's mean over the step (``tau = 0``: a pure ramp; no ramp limit: a pure lag);
    * the fleet delivers ``min(mean command, A_k, cap)`` where ``A_k = sum_i min(P_i, (e_i - f_i) eta_i / dt)``
      over the EVs plugged in (``on_step <= k < off_step``): power limits, and energy above each EV's floor
      ``f_i``; it is shared in proportion to each EV's ``min(...)``, so no EV goes below its floor and an EV
      that leaves takes its energy with it;
    * the battery covers what is still missing, within its power and energy;
    * served load: ``min(L_k, supply)``, or whole priority blocks (:func:`calc_served_kw`); the sources are
      dispatched in the order PV, generator, V2G, battery for what is served.

    Stored energy of the EVs falls by ``p dt / eta_discharge``; battery and generator energy by ``p dt``
    (delivered energy). EV chargers stop at the outage (they are not critical load).
    """
    load = np.ascontiguousarray(p_load_kw, dtype=np.float64)
    if load.ndim != 1 or load.size == 0:
        raise DataError(f"p_load_kw: expected a non-empty 1-D array, got shape {load.shape}")
    if not np.isfinite(load).all() or (load < 0).any():
        raise DataError("p_load_kw: every value must be finite and >= 0")
    if not (math.isfinite(dt_s) and dt_s > 0):
        raise DataError(f"dt_s = {dt_s!r}: allowed range > 0 s")
    n = load.size
    pv = np.zeros(n) if p_pv_kw is None else np.ascontiguousarray(p_pv_kw, dtype=np.float64)
    if pv.shape != (n,) or not np.isfinite(pv).all() or (pv < 0).any():
        raise DataError(f"p_pv_kw: expected {n} finite values >= 0")
    for name, v in (("gen_kw", gen_kw), ("battery_kw", battery_kw), ("battery_kwh", battery_kwh)):
        if not (math.isfinite(v) and v >= 0):
            raise DataError(f"{name} = {v!r}: allowed range >= 0")
    if gen_energy_kwh is not None and not (math.isfinite(gen_energy_kwh) and gen_energy_kwh >= 0):
        raise DataError(f"gen_energy_kwh = {gen_energy_kwh!r}: allowed range >= 0 (or None for unlimited)")
    if gen_start_delay_s < 0:
        raise DataError(f"gen_start_delay_s = {gen_start_delay_s!r}: allowed range >= 0 s")
    gen_start = _steps_of(gen_start_delay_s, dt_s, "gen_start_delay_s")
    delay = _steps_of(dynamics.delay_s, dt_s, "v2g delay_s")
    if shed_blocks_pu:
        if any(not (math.isfinite(b) and b > 0) for b in shed_blocks_pu) or abs(sum(shed_blocks_pu) - 1) > 1e-6:
            raise DataError(f"shed_blocks_pu = {shed_blocks_pu}: shares must be > 0 and sum to 1")
        blocks_c = np.cumsum(shed_blocks_pu)
        blocks_c[-1] = 1.0
    else:
        blocks_c = np.zeros(0)
    gen_e = math.inf if gen_energy_kwh is None else float(gen_energy_kwh)
    e = fleet.e_kwh.astype(np.float64).copy()
    outs = [np.zeros(n) for _ in range(7)]
    out_e = np.zeros(n + 1)
    _outage_kernel(  # type: ignore[call-arg]
        load,
        pv,
        float(dt_s),
        float(gen_kw),
        gen_start,
        gen_e,
        float(battery_kw),
        float(battery_kwh),
        delay,
        float(dynamics.tau_s),
        math.inf if dynamics.ramp_kw_per_s is None else float(dynamics.ramp_kw_per_s),
        math.inf if dynamics.cap_kw is None else float(dynamics.cap_kw),
        e,
        fleet.floor_kwh,
        fleet.p_discharge_max_kw,
        fleet.eta_discharge,
        fleet.on_step,
        fleet.off_step,
        blocks_c,
        *outs,
        out_e,
    )
    served, p_pv, p_gen, p_v2g, p_bat, p_set, p_avail = outs
    safe = np.where(load > 0, load, 1.0)
    q = np.where(load > 0, np.minimum(served / safe, 1.0), 1.0)
    return OutageResult(
        dt_s=float(dt_s),
        p_load_kw=load,
        p_served_kw=served,
        p_pv_kw=p_pv,
        p_gen_kw=p_gen,
        p_v2g_kw=p_v2g,
        p_battery_kw=p_bat,
        p_v2g_setpoint_kw=p_set,
        p_v2g_avail_kw=p_avail,
        q=q,
        e_v2g_kwh=out_e,
        n_evs=fleet.n,
    )


def calc_resilience_metrics(q: npt.ArrayLike, dt_s: float, level: float = 0.9) -> ResilienceMetrics:
    """Recovery time ``T_r`` and loss of resilience ``M_D`` of a performance series held constant within steps.

    Parameters
    ----------
    q : performance in each step of the outage, in [0, 1] [-].
    dt_s : step [s].
    level : acceptable level, in (0, 1] [-].

    Notes
    -----
    ``M_D = sum_k (1 - Q_k) dt`` [h], the area of the resilience triangle with Q in per unit (Bruneau et al.
    integrate ``100 - Q(t)`` with Q in percent from the event to full recovery; after the outage the grid is
    back and Q = 1, so the integral over the outage is the whole loss). ``T_r = k* dt`` with ``k*`` the first
    step with ``Q_k >= level``; when there is none, the grid's return ends the disturbance: ``T_r = n dt`` and
    ``recovered_by = "grid"``.

    References
    ----------
    M. Bruneau, S. E. Chang, R. T. Eguchi, G. C. Lee, T. D. O'Rourke, A. M. Reinhorn, M. Shinozuka, K. Tierney,
    W. A. Wallace and D. von Winterfeldt, "A framework to quantitatively assess and enhance the seismic
    resilience of communities", Earthquake Spectra 19(4), 733-752, 2003 (the resilience triangle).
    """
    qq = np.asarray(q, dtype=float)
    if qq.ndim != 1 or qq.size == 0 or not np.isfinite(qq).all():
        raise DataError("q: expected a non-empty 1-D array of finite values")
    if not (0.0 < level <= 1.0):
        raise DataError(f"level = {level!r}: allowed range > 0 and <= 1")
    ok = qq >= level - 1e-12
    if ok.any():
        t_r_s, by = float(np.argmax(ok)) * dt_s, "microgrid"
    else:
        t_r_s, by = qq.size * dt_s, "grid"
    return ResilienceMetrics(
        level=float(level),
        t_r_s=t_r_s,
        recovered_by=by,
        m_d_h=float(np.sum(1.0 - qq) * dt_s / 3600.0),
        q_min=float(qq.min()),
        t_below_level_s=float(np.count_nonzero(~ok) * dt_s),
    )
