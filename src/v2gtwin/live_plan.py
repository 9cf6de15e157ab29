"""One cycle of the closed loop on the model side: live state -> fleet arrays -> envelope (and, on a network, the
feeders' operating envelopes) -> the schedule re-solved for the rest of the horizon from the current state -> the
next set-point of every station.

Pure functions of their inputs (no I/O, no clock): a recorded cycle replays to the same plan. The schedule is the
package's per-EV LP (:func:`v2gtwin.optimize.schedule.solve_fleet_schedule`) against the scenario's price curve on
the cycle's clock and the scenario's import cap rule (``markets.import_cap_share`` of the live fleet's uncontrolled
peak, as :func:`v2gtwin.markets.scheduling.run_schedule_analysis`, raised where the EVs' must-charge energy does not
fit under it: :func:`calc_must_charge_peak_kw`, named in the plan). Model predictive control: only the first step
is sent; the next cycle solves again from what the stations then report.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from v2gtwin.errors import InfeasibleError
from v2gtwin.fleet import Envelope, Fleet, calc_envelope, run_uncontrolled
from v2gtwin.live_state import LiveFleetNotes, LiveState, NeedBook, build_live_fleet, calc_live_time_grid
from v2gtwin.markets.analysis import calc_price_curve
from v2gtwin.optimize.schedule import ScheduleResult, solve_fleet_schedule
from v2gtwin.scenario import Scenario, TimeGrid

__all__ = [
    "CyclePlan",
    "NetworkSlots",
    "calc_must_charge_peak_kw",
    "calc_network_slots",
    "clip_to_station_limits",
    "plan_cycle",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class NetworkSlots:
    """Where live stations sit on the scenario's network: the planning fleet's load-share placement (``slots``),
    each station on slot ``crc32(station_id) mod n_slots`` (OCPP does not say where a station is connected; a
    stable hash keeps a station on one bus from cycle to cycle).

    Attributes
    ----------
    ev_feeder, ev_bus : (n_slots,) feeder index and bus of each slot [-].
    """

    ev_feeder: IntArray
    ev_bus: IntArray

    def place(self, station_id: tuple[str, ...]) -> tuple[IntArray, IntArray]:
        """Feeder and bus of each station [-]."""
        slot = np.fromiter((zlib.crc32(s.encode()) for s in station_id), dtype=np.int64, count=len(station_id))
        slot %= max(self.ev_feeder.size, 1)
        return self.ev_feeder[slot], self.ev_bus[slot]


def calc_network_slots(scenario: Scenario) -> NetworkSlots | None:
    """The slots of the scenario's ``[network]`` (None without one, or with ``network_secure = false``)."""
    if scenario.network is None or not scenario.network.secure:
        return None
    from v2gtwin.grid.network import build_network
    from v2gtwin.study import build_fleet

    net = build_network(scenario.network, build_fleet(scenario), scenario.time, scenario.seed)
    return NetworkSlots(net.ev_feeder, net.ev_bus)


@dataclass(frozen=True)
class CyclePlan:
    """What one cycle decided.

    Attributes
    ----------
    time : the cycle's grid (step 0 starts at the state's time).
    fleet : the live EVs as a fleet. notes : what building it assumed or cut.
    envelope : the fleet's flexibility envelope over the grid.
    schedule : the re-solved schedule (None when there is no EV).
    price_per_mwh : the prices it was solved against [currency/MWh].
    import_cap_kw : the cap it was solved under (inf when dropped or absent) [kW].
    import_cap_note : "" or why the cap was raised (to :func:`calc_must_charge_peak_kw`) or dropped (the schedule was
    infeasible under it).
    p_set_kw : (N,) the set-point sent to each EV's station [kW], after the network's and the stations' clips.
    p_planned_kw : (N,) the schedule's first step, before any clip [kW].
    n_clipped_station, n_clipped_network : set-points changed by the station limits / the operating envelope [-].
    network_cut_kw : total change the operating envelope made to the set-points (+ less charging) [kW].
    n_bus_binding : buses whose envelope cut the set-points [-].
    solve_s : wall time of the model side [s].
    """

    time: TimeGrid
    fleet: Fleet
    notes: LiveFleetNotes
    envelope: Envelope
    schedule: ScheduleResult | None
    price_per_mwh: FloatArray
    import_cap_kw: float
    import_cap_note: str
    p_set_kw: FloatArray
    p_planned_kw: FloatArray
    n_clipped_station: int
    n_clipped_network: int
    network_cut_kw: float
    n_bus_binding: int
    solve_s: float

    def summary(self) -> dict[str, Any]:
        """Headline figures of the cycle (JSON-ready; units in the keys)."""
        s = self.schedule
        return {
            "n_evs": self.fleet.n,
            "n_steps": self.time.n_steps,
            "dt_s": self.time.dt_s,
            "start_clock": self.time.clock_label(0),
            "p_envelope_max_kw": float(self.envelope.p_max_kw[0]) if self.fleet.n else 0.0,
            "p_envelope_min_kw": float(self.envelope.p_min_kw[0]) if self.fleet.n else 0.0,
            "p_set_total_kw": float(self.p_set_kw.sum()),
            "p_planned_total_kw": [float(x) for x in (s.p_total_kw if s is not None else [])],
            "cost_per_horizon": None if s is None else s.cost_per_horizon,
            "solver": None if s is None else s.solver,
            "solver_note": None if s is None else s.solver_note,
            "schedule_solve_s": None if s is None else s.solve_s,
            "import_cap_kw": self.import_cap_kw if np.isfinite(self.import_cap_kw) else None,
            "import_cap_note": self.import_cap_note,
            "n_clipped_station": self.n_clipped_station,
            "n_clipped_network": self.n_clipped_network,
            "network_cut_kw": self.network_cut_kw,
            "n_bus_binding": self.n_bus_binding,
            "solve_s": self.solve_s,
        } | {"assumed": self.notes.to_dict()}


def calc_must_charge_peak_kw(fleet: Fleet) -> float:
    """Peak aggregate power [kW] of charging every EV as late as its target allows, without discharge: each EV's
    stored energy ``e(k) = max(e0, e_T - P_c eta_c dt_h (d - k))`` for ``k <= d`` (the first term of the energy
    band's lower edge, :func:`v2gtwin.fleet.calc_envelope`). A schedule exists under any import cap at or above
    it (this one), so the loop never asks the LP for a cap the fleet's must-charge energy cannot fit under."""
    k = np.arange(fleet.n_steps + 1)[:, None]
    e0 = fleet.soc0_pu * fleet.capacity_kwh
    e_t = fleet.soc_target_pu * fleet.capacity_kwh
    rate = fleet.p_charge_max_kw * fleet.eta_charge * fleet.dt_h
    e = np.maximum(e0, e_t - rate * np.clip(fleet.departure_step - k, 0, None))
    p = np.diff(e, axis=0) / (fleet.eta_charge * fleet.dt_h)
    return float(p.sum(axis=1).max()) if fleet.n else 0.0


def clip_to_station_limits(p_kw: FloatArray, state: LiveState) -> tuple[FloatArray, int]:
    """Set-points within each station's declared limits ``[p_min_kw, p_max_kw]``; also the number changed [-]."""
    out = np.clip(p_kw, state.p_min_kw, state.p_max_kw)
    return out, int((np.abs(out - p_kw) > 1e-9).sum())


def _network_clip(
    scenario: Scenario, slots: NetworkSlots, state: LiveState, fleet: Fleet, time: TimeGrid, p_kw: FloatArray
) -> tuple[FloatArray, int, float, int]:
    """The set-points cut by the feeders' operating envelopes at the cycle's first step (rule
    :data:`v2gtwin.grid.secure.SECURE_RULE`, from zero EV power): (set-points, EVs changed, total cut, binding)."""
    from v2gtwin.grid.network import build_network
    from v2gtwin.grid.network_analysis import run_network_envelopes
    from v2gtwin.grid.secure import build_network_limits, calc_secure_change

    spec = scenario.network
    assert spec is not None
    now = TimeGrid(dt_s=time.dt_s, n_steps=1, start_hour=time.start_hour)
    first = fleet.replace(n_steps=1, departure_step=np.ones(fleet.n, dtype=np.int64))
    net = build_network(spec, first, now, scenario.seed)
    ev_feeder, ev_bus = slots.place(state.station_id)
    net = dataclasses.replace(net, ev_feeder=ev_feeder, ev_bus=ev_bus)
    envelopes = run_network_envelopes(net, net.place(first), spec.allocation_rule, spec.v_min_pu, spec.v_max_pu)
    limits = build_network_limits(envelopes, ev_feeder, ev_bus)
    change = calc_secure_change(limits, 0, np.zeros(fleet.n), p_kw)
    out = np.asarray(change.dp_ev_kw, dtype=float)
    return out, int((np.abs(out - p_kw) > 1e-9).sum()), float((p_kw - out).sum()), change.n_bus_binding


def plan_cycle(scenario: Scenario, state: LiveState, book: NeedBook, slots: NetworkSlots | None = None) -> CyclePlan:
    """Plan one cycle from the live state (module docstring).

    Parameters
    ----------
    scenario : the scenario (fleet assumptions, time step and horizon, prices, import cap, network).
    state : the live state. book : the loop's need book after this state (:func:`v2gtwin.live_state.update_need_book`).
    slots : the stations' places on the scenario's network (:func:`calc_network_slots`); None: no network clip.

    Returns
    -------
    CyclePlan
        The set-point of each EV is the schedule's first step, cut by the operating envelope (with ``slots``) and
        by the station's limits, each cut counted.
    """
    t0 = time.perf_counter()
    grid = calc_live_time_grid(
        state.t_utc, state.departure_s, scenario.time.dt_s, scenario.time.n_steps, scenario.time.time_zone
    )
    fleet, notes = build_live_fleet(state, book, scenario.fleet, grid)
    env = calc_envelope(fleet)
    price = calc_price_curve(scenario.markets, grid)
    sched: ScheduleResult | None = None
    cap, cap_note = float("inf"), ""
    p_plan = np.zeros(fleet.n)
    if fleet.n:
        peak = float(run_uncontrolled(fleet).p_kw.sum(axis=1).max())
        cap = scenario.markets.import_cap_share * peak if peak > 0 else float("inf")
        must = calc_must_charge_peak_kw(fleet)
        if must > cap:
            cap_note = (
                f"import cap raised from {cap:.1f} kW ({scenario.markets.import_cap_share:g} x the uncontrolled peak) "
                f"to {must:.1f} kW, the peak of charging each EV as late as its target allows"
            )
            cap = must
        kw: dict[str, Any] = dict(
            degradation_per_mwh=scenario.markets.degradation_per_mwh, method=scenario.markets.schedule_solver
        )
        try:
            sched = solve_fleet_schedule(fleet, price, import_cap_kw=cap, **kw)
        except InfeasibleError as exc:
            cap_note = f"import cap {cap:.1f} kW dropped this cycle: {exc}"
            logger.warning("live: %s", cap_note)
            cap = float("inf")
            sched = solve_fleet_schedule(fleet, price, **kw)
        p_plan = np.asarray(sched.p_kw[0], dtype=float)
    p_set = p_plan
    n_net, cut_kw, binding = 0, 0.0, 0
    if slots is not None and fleet.n:
        p_set, n_net, cut_kw, binding = _network_clip(scenario, slots, state, fleet, grid, p_set)
    p_set, n_station = clip_to_station_limits(p_set, state)
    return CyclePlan(
        time=grid,
        fleet=fleet,
        notes=notes,
        envelope=env,
        schedule=sched,
        price_per_mwh=price,
        import_cap_kw=cap,
        import_cap_note=cap_note,
        p_set_kw=p_set,
        p_planned_kw=p_plan,
        n_clipped_station=n_station,
        n_clipped_network=n_net,
        network_cut_kw=cut_kw,
        n_bus_binding=binding,
        solve_s=time.perf_counter() - t0,
    )
