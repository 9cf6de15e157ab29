"""The resilience analysis a study runs: the scenario's critical facility through its outage, with and without
the V2G fleet plugged in nearby, and as a function of fleet size; and its one JSON summary, which both
``v2gtwin resilience --json`` and the study's results.json print."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from v2gtwin.errors import ScenarioError
from v2gtwin.fleet import Fleet, SocResult
from v2gtwin.grid.resilience import (
    V2G_FLOOR_RULES,
    OutageFleet,
    OutageResult,
    ResilienceMetrics,
    V2gDynamics,
    calc_ev_floor_kwh,
    calc_resilience_metrics,
    run_outage,
)
from v2gtwin.scenario import ResilienceSpec, TimeGrid

if TYPE_CHECKING:
    from v2gtwin.grid.feeder import Feeder

__all__ = [
    "CRITICAL_SHAPES",
    "ResilienceAnalysis",
    "build_outage_fleet",
    "calc_critical_load_kw",
    "calc_pv_kw",
    "nearby_order",
    "run_resilience_analysis",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]


def _shape_hospital(clock_h: FloatArray) -> FloatArray:
    # A hospital runs around the clock (the DOE reference hospital is modelled with 24-hour operation: Deru et
    # al., "U.S. Department of Energy Commercial Reference Building Models of the National Building Stock",
    # NREL/TP-5500-46861, 2011). The levels are an assumption: 0.8 of peak at night, 1.0 from 08:00 to 18:00.
    day = (clock_h >= 8.0) & (clock_h < 18.0)
    return np.where(day, 1.0, 0.8)


def _shape_flat(clock_h: FloatArray) -> FloatArray:
    return np.ones_like(clock_h)


#: Daily shapes of the critical load [pu of its peak] by name, as functions of the local clock time [h].
CRITICAL_SHAPES: dict[str, Callable[[FloatArray], FloatArray]] = {"hospital": _shape_hospital, "flat": _shape_flat}


def calc_critical_load_kw(peak_kw: float, shape: str, clock_h: npt.ArrayLike) -> FloatArray:
    """Critical load [kW] at local clock times ``clock_h`` [h] (taken modulo 24): ``peak_kw`` x the shape."""
    if shape not in CRITICAL_SHAPES:
        raise ScenarioError(f"resilience.critical_shape: must be one of {', '.join(CRITICAL_SHAPES)}, got {shape!r}")
    c = np.asarray(clock_h, dtype=float) % 24.0
    return np.asarray(peak_kw * CRITICAL_SHAPES[shape](c))


def calc_pv_kw(peak_kw: float, clock_h: npt.ArrayLike) -> FloatArray:
    """On-site PV [kW]: ``peak sin(pi (h - 6) / 12)`` between 06:00 and 18:00, 0 otherwise (an assumption: a
    clear equinox day; give your own profile to :func:`~v2gtwin.grid.resilience.run_outage` for more)."""
    c = np.asarray(clock_h, dtype=float) % 24.0
    return np.asarray(np.where((c > 6.0) & (c < 18.0), peak_kw * np.sin(np.pi * (c - 6.0) / 12.0), 0.0))


def nearby_order(n_evs: int, seed: int) -> npt.NDArray[np.int64]:
    """A seeded permutation of the fleet's EVs: its first ``n`` are the ``n`` EVs near the facility, so that the
    fleets of a size sweep are nested."""
    return np.random.default_rng([seed, 13]).permutation(n_evs).astype(np.int64)


def build_outage_fleet(
    fleet: Fleet, baseline: SocResult, t0_s: float, duration_s: float, dt_sim_s: float, floor_rule: str
) -> OutageFleet:
    """The fleet's EVs as the outage sees them (all of ``fleet``, in its order).

    Notes
    -----
    An EV plugged in at the outage start ``t0`` has the stored energy of its baseline (uncontrolled charging)
    there, interpolated inside the step (power is constant within a step); one arriving during the outage has its
    arrival energy. It counts from the first simulation step that starts at or after its arrival
    (``on = ceil((a dt - t0) / dt_sim)``) and gives nothing in the step it leaves in
    (``off = floor((d dt - t0) / dt_sim)``). Its floor follows ``floor_rule`` (:func:`calc_ev_floor_kwh`), with
    the time it stays plugged in after the grid returns at ``t0 + duration``.
    """
    dt = fleet.dt_s
    k0 = min(math.floor(t0_s / dt + 1e-9), fleet.n_steps - 1)
    idx = np.arange(fleet.n)
    cap = fleet.capacity_kwh
    into_h = (t0_s - k0 * dt) / 3600.0
    p0 = np.asarray(baseline.p_kw[k0], dtype=float)
    de = np.where(p0 > 0, p0 * fleet.eta_charge, p0 / fleet.eta_discharge) * into_h
    e_at_t0 = np.asarray(baseline.soc_pu[k0], dtype=float) * cap + de
    arr_s = fleet.arrival_step * dt
    dep_s = fleet.departure_step * dt
    later = arr_s > t0_s + 1e-9
    e_arrival = np.asarray(baseline.soc_pu[fleet.arrival_step, idx], dtype=float) * cap
    e = np.where(later, e_arrival, e_at_t0)
    tol = 1e-9
    on = np.where(later, np.ceil((arr_s - t0_s) / dt_sim_s - tol), 0).astype(np.int64)
    off = np.floor((dep_s - t0_s) / dt_sim_s + tol).astype(np.int64)
    off = np.clip(off, -1, round(duration_s / dt_sim_s) + 1)
    floor = calc_ev_floor_kwh(
        floor_rule,
        cap,
        fleet.soc_min_pu,
        fleet.soc_target_pu,
        fleet.p_charge_max_kw,
        fleet.eta_charge,
        dep_s - (t0_s + duration_s),
    )
    return OutageFleet(e, floor, fleet.p_discharge_max_kw, fleet.eta_discharge, on, off)


@dataclass(frozen=True)
class ResilienceAnalysis:
    """The facility through the scenario's outage.

    Attributes
    ----------
    with_v2g, without_v2g : the outage with the EVs near the facility, and with none [-].
    metrics_with, metrics_without : their resilience metrics.
    sweep_n_evs : fleet sizes of the sweep, those larger than the fleet left out (said in ``notes``) [-];
        sweep : one :class:`ResilienceMetrics` per size.
    sweep_energy_v2g_kwh : V2G energy delivered at each size [kWh].
    The summary's ``n_evs_min_holding`` is the smallest swept size whose Q reaches the level inside the outage
    and stays there to its end (None when no swept size does).
    n_evs_nearby : EVs near the facility [-]. n_v2g_at_start : of them, V2G-capable and plugged in at the start [-].
    outage_start_step : study step the outage starts in [-]; outage_start_clock : the outage's start "HH:MM".
    v2g_cap_kw : cap on V2G power into the island (None: none) [kW]; cap_source : where it comes from.
    spec : the scenario's resilience section. notes : what a reader must know.
    """

    with_v2g: OutageResult
    without_v2g: OutageResult
    metrics_with: ResilienceMetrics
    metrics_without: ResilienceMetrics
    sweep_n_evs: tuple[int, ...]
    sweep: tuple[ResilienceMetrics, ...]
    sweep_energy_v2g_kwh: tuple[float, ...]
    n_evs_nearby: int
    n_v2g_at_start: int
    outage_start_step: int
    outage_start_clock: str
    v2g_cap_kw: float | None
    cap_source: str
    spec: ResilienceSpec
    notes: tuple[str, ...]

    def summary(self) -> dict[str, Any]:
        """Headline figures (JSON-ready): the dict ``v2gtwin resilience --json`` prints and results.json holds."""
        s = self.spec

        def case(res: OutageResult, m: ResilienceMetrics) -> dict[str, Any]:
            dt_h = res.dt_s / 3600.0
            return m.to_dict() | {
                "n_evs": res.n_evs,
                "energy_v2g_kwh": res.energy_v2g_kwh,
                "energy_gen_kwh": float(res.p_gen_kw.sum() * dt_h),
                "energy_battery_kwh": float(res.p_battery_kw.sum() * dt_h),
                "energy_unserved_kwh": res.energy_unserved_kwh,
                "p_v2g_peak_kw": float(res.p_v2g_kw.max()),
            }

        holding = [
            n
            for n, m in zip(self.sweep_n_evs, self.sweep, strict=True)
            if m.recovered_by == "microgrid" and m.t_below_level_s <= m.t_r_s + 1e-9
        ]
        return {
            "facility_bus": s.facility_bus,
            "critical_peak_kw": s.critical_peak_kw,
            "critical_shape": s.critical_shape,
            "outage_start_step": self.outage_start_step,
            "outage_start_clock": self.outage_start_clock,
            "outage_duration_h": s.outage_duration_h,
            "dt_sim_s": s.dt_sim_s,
            "acceptable_level": s.acceptable_level,
            "gen_kw": s.gen_kw,
            "gen_start_delay_s": s.gen_start_delay_s,
            "n_evs_nearby": self.n_evs_nearby,
            "n_v2g_at_start": self.n_v2g_at_start,
            "v2g_floor": s.v2g_floor,
            "cap_source": self.cap_source,
            "v2g_cap_kw": self.v2g_cap_kw,
            "with_v2g": case(self.with_v2g, self.metrics_with),
            "without_v2g": case(self.without_v2g, self.metrics_without),
            "sweep": {
                "n_evs": list(self.sweep_n_evs),
                "t_r_s": [m.t_r_s for m in self.sweep],
                "recovered_by": [m.recovered_by for m in self.sweep],
                "m_d_h": [m.m_d_h for m in self.sweep],
                "q_min": [m.q_min for m in self.sweep],
                "t_below_level_s": [m.t_below_level_s for m in self.sweep],
                "energy_v2g_kwh": list(self.sweep_energy_v2g_kwh),
            },
            "n_evs_min_holding": min(holding) if holding else None,
            "notes": list(self.notes),
        }

    def to_frames(self, time: TimeGrid) -> dict[str, Any]:
        """The outage over time and the headline figures as pandas DataFrames:
        :func:`v2gtwin.tables.grid.resilience_frames`."""
        from v2gtwin.tables.grid import resilience_frames

        return resilience_frames(self, time)

    def series(self) -> dict[str, Any]:
        """Q(t) with and without V2G and the fleet's power, one value per simulation step (results.json)."""
        w, wo = self.with_v2g, self.without_v2g
        return {
            "t_s": w.t_s.tolist(),
            "q_with_v2g": w.q.tolist(),
            "q_without_v2g": wo.q.tolist(),
            "p_v2g_kw": w.p_v2g_kw.tolist(),
        }


def _envelope_cap_kw(
    feeder: Feeder,
    p_base_kw: FloatArray,
    q_base_kvar: FloatArray,
    bus: int,
    steps: range,
    spec_v: tuple[float, float],
) -> float:
    from v2gtwin.grid.envelopes import calc_operating_envelope

    sl = slice(steps.start, steps.stop)
    # Weight 1 at the facility's bus only: the common scale is that bus's own export limit, every other bus at its
    # base load (one search per step instead of one per bus and step).
    weight = np.zeros(feeder.n_bus)
    weight[bus] = 1.0
    env = calc_operating_envelope(
        feeder,
        p_base_kw[sl],
        q_base_kvar[sl],
        rule="equal_per_ev",
        weight_bus=weight,
        v_min_pu=spec_v[0],
        v_max_pu=spec_v[1],
    )
    return float(env.p_export_max_kw[:, bus].min())


def run_resilience_analysis(
    fleet: Fleet,
    baseline: SocResult,
    spec: ResilienceSpec,
    time: TimeGrid,
    seed: int,
    *,
    feeder: Feeder | None = None,
    p_base_kw: FloatArray | None = None,
    q_base_kvar: FloatArray | None = None,
    v_limits_pu: tuple[float, float] = (0.95, 1.05),
) -> ResilienceAnalysis:
    """The scenario's facility through its outage, with and without the V2G fleet nearby, and the fleet-size
    sweep (see :func:`~v2gtwin.grid.resilience.run_outage` for the model).

    Parameters
    ----------
    fleet, baseline : the scenario's whole fleet and its uncontrolled charging (the EVs' energy before the outage).
    spec, time, seed : the scenario's resilience section, time grid and seed.
    feeder, p_base_kw, q_base_kvar : the feeder and its base load, needed for ``cap_source = "envelope"`` only.
    v_limits_pu : (v_min_pu, v_max_pu) of the envelope cap (the scenario's feeder limits) [pu].
    """
    start_step = time.step_at(spec.outage_start_hour, "resilience.outage_start_hour")
    t0_s = ((spec.outage_start_hour - time.start_hour) % 24.0) * 3600.0
    duration_s = spec.outage_duration_h * 3600.0
    if t0_s + duration_s > time.n_steps * time.dt_s + 1e-6:
        raise ScenarioError("resilience.outage_duration_h: the outage must end inside the horizon")
    dt = spec.dt_sim_s
    n = round(duration_s / dt)
    t_s = np.arange(n) * dt
    clock_h = spec.outage_start_hour + t_s / 3600.0
    load = calc_critical_load_kw(spec.critical_peak_kw, spec.critical_shape, clock_h)
    pv = calc_pv_kw(spec.pv_peak_kw, clock_h) if spec.pv_peak_kw > 0 else None
    notes = [
        f"critical load: {spec.critical_shape} shape x {spec.critical_peak_kw:g} kW",
        f"V2G floor '{spec.v2g_floor}': {V2G_FLOOR_RULES[spec.v2g_floor]}",
        "EVs near the facility: the first EVs of a seeded permutation of the fleet (nested for the sweep); EVs that "
        "arrive during the outage join it, EVs that leave take their energy with them",
    ]
    bus = _facility_index(feeder, spec.facility_bus) if feeder is not None else None
    cap: float | None = None
    if spec.cap_source == "explicit":
        cap = spec.v2g_cap_kw
        notes.append(f"V2G power into the island capped at {cap:g} kW (explicit, resilience.v2g_cap_kw)")
    elif spec.cap_source == "envelope":
        if feeder is None or bus is None or p_base_kw is None or q_base_kvar is None:
            raise ScenarioError("resilience.cap_source = 'envelope' needs the scenario's feeder and base load")
        end_step = min(time.n_steps, math.ceil((t0_s + duration_s) / time.dt_s - 1e-9))
        cap = _envelope_cap_kw(feeder, p_base_kw, q_base_kvar, bus, range(start_step, end_step), v_limits_pu)
        notes.append(
            f"V2G power into the island capped at {cap:,.1f} kW: the feeder's export operating envelope at bus "
            f"{spec.facility_bus} (grid-connected, every other bus at its base load, voltages within "
            f"{v_limits_pu[0]:g}-{v_limits_pu[1]:g} pu), lowest over the outage's steps: a proxy for the island's "
            "voltage limits"
        )
    n_near = round(spec.fleet_share * fleet.n)
    sizes = tuple(int(k) for k in spec.sweep_n_evs if k <= fleet.n)
    if len(sizes) < len(spec.sweep_n_evs):
        left_out = [int(k) for k in spec.sweep_n_evs if k > fleet.n]
        notes.append(f"sweep sizes {left_out} left out: larger than the fleet ({fleet.n} EVs)")
    biggest = max((n_near, *sizes))
    order = nearby_order(fleet.n, seed)[:biggest]
    ofleet = build_outage_fleet(fleet.subset(order), _subset_soc(baseline, order), t0_s, duration_s, dt, spec.v2g_floor)
    dyn = V2gDynamics(spec.v2g_delay_s, spec.v2g_tau_s, spec.v2g_ramp_kw_per_s, cap)
    kwargs: dict[str, Any] = {
        "gen_kw": spec.gen_kw,
        "gen_start_delay_s": spec.gen_start_delay_s,
        "gen_energy_kwh": spec.gen_energy_kwh,
        "p_pv_kw": pv,
        "battery_kw": spec.battery_kw,
        "battery_kwh": spec.battery_kwh,
        "shed_blocks_pu": spec.shed_blocks_pu,
    }

    def run(k: int) -> OutageResult:
        return run_outage(load, dt, ofleet.head(k), dyn, **kwargs)

    with_v2g, without = run(n_near), run(0)
    level = spec.acceptable_level
    sweep_res = [run(k) for k in sizes]
    near = ofleet.head(n_near)
    n_v2g_at_start = int(np.sum((near.on_step == 0) & (near.off_step > 0) & (near.p_discharge_max_kw > 0)))
    return ResilienceAnalysis(
        with_v2g=with_v2g,
        without_v2g=without,
        metrics_with=calc_resilience_metrics(with_v2g.q, dt, level),
        metrics_without=calc_resilience_metrics(without.q, dt, level),
        sweep_n_evs=sizes,
        sweep=tuple(calc_resilience_metrics(r.q, dt, level) for r in sweep_res),
        sweep_energy_v2g_kwh=tuple(r.energy_v2g_kwh for r in sweep_res),
        n_evs_nearby=int(n_near),
        n_v2g_at_start=n_v2g_at_start,
        outage_start_step=start_step,
        outage_start_clock=_clock(spec),
        v2g_cap_kw=cap,
        cap_source=spec.cap_source,
        spec=spec,
        notes=tuple(notes),
    )


def _facility_index(feeder: Feeder, facility_bus: str) -> int:
    """Feeder index of the facility's bus; a label the feeder does not publish is a ScenarioError (whatever
    ``cap_source``: the facility must sit on the feeder the study runs)."""
    labels = [str(b) for b in feeder.bus_labels]
    if facility_bus not in labels:
        raise ScenarioError(
            f"resilience.facility_bus = {facility_bus!r}: not a bus of feeder {feeder.name} "
            f"(labels {labels[0]} to {labels[-1]})"
        )
    return labels.index(facility_bus)


def _clock(spec: ResilienceSpec) -> str:
    minutes = round(spec.outage_start_hour * 60.0) % (24 * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _subset_soc(baseline: SocResult, idx: npt.NDArray[np.int64]) -> SocResult:
    return SocResult(
        p_kw=np.asarray(baseline.p_kw)[:, idx],
        soc_pu=np.asarray(baseline.soc_pu)[:, idx],
        clipped_kw=np.asarray(baseline.clipped_kw)[:, idx],
    )
