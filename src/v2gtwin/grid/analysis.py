"""Feeder analyses a study runs: building the scenario's feeder, the day's power flows with and without the
fleet (and with volt-var), hosting capacity and loss-aware charging. Each is one function of arrays."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from v2gtwin.grid.feeder import Feeder, ieee33, run_powerflow, synthetic_feeder
from v2gtwin.grid.hosting import FleetHostingResult, HostingResult, run_fleet_hosting, run_node_hosting
from v2gtwin.grid.losses import run_loss_aware_dispatch, run_loss_optimal_dispatch
from v2gtwin.grid.profiles import calc_daily_profile
from v2gtwin.grid.voltvar import run_voltvar
from v2gtwin.scenario import FeederSpec, TimeGrid

__all__ = [
    "FEEDERS",
    "DispatchComparison",
    "FeederTimeSeries",
    "build_feeder",
    "calc_base_load",
    "run_dispatch_comparison",
    "run_feeder_timeseries",
    "run_hosting_analysis",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

#: Feeder builders by scenario name.
FEEDERS: dict[str, Callable[[FeederSpec, np.random.Generator], Feeder]] = {
    "ieee33": lambda spec, rng: ieee33(spec.ampacity_a),
    "synthetic": lambda spec, rng: synthetic_feeder(spec.synthetic_n_bus, rng),
}


def build_feeder(spec: FeederSpec, seed: int) -> Feeder:
    """The scenario's feeder (synthetic feeders drawn from a generator seeded with ``seed``)."""
    feeder = FEEDERS[spec.name](spec, np.random.default_rng([seed, 33]))
    if spec.ampacity_a is not None and spec.name != "ieee33":
        amp = np.full(feeder.n_bus, spec.ampacity_a)
        amp[0] = np.inf
        feeder = Feeder(**{**feeder.__dict__, "ampacity_a": amp})
    # Said in every output of the feeder: the one [feeder] keeps its data's ratings (Baran & Wu publish none),
    # unlike a network's feeders, which get a documented default (grid.network.rate_network_feeder).
    note = (
        f"ampacity: no rating in {feeder.name}'s data and no [feeder] ampacity_a: branch currents are not limited"
        if spec.ampacity_a is None
        else f"ampacity: the scenario's [feeder] ampacity_a, {spec.ampacity_a:g} A, on every branch"
    )
    return Feeder(**{**feeder.__dict__, "notes": (*feeder.notes, note)})


def calc_base_load(feeder: Feeder, spec: FeederSpec, time: TimeGrid) -> tuple[FloatArray, FloatArray]:
    """Base loads (n_steps, n_bus) [kW], [kvar]: nominal loads x ``peak_load_scale`` x the RTS-79 daily shape."""
    shape = calc_daily_profile(time.n_steps, time.dt_s, time.start_hour) * spec.peak_load_scale
    return shape[:, None] * feeder.p_load_kw, shape[:, None] * feeder.q_load_kvar


@dataclass(frozen=True)
class FeederTimeSeries:
    """The day on the feeder, three ways: base load only, with the fleet's uncontrolled charging, and with
    it plus volt-var on the EV inverters.

    Attributes
    ----------
    v_min_base_pu, v_min_fleet_pu, v_min_voltvar_pu : lowest bus voltage per step [pu].
    losses_base_kw, losses_fleet_kw, losses_voltvar_kw : feeder losses per step [kW].
    worst_step : step of the lowest voltage with the fleet [-].
    v_profile_base_pu, v_profile_fleet_pu, v_profile_voltvar_pu : voltage of every bus at ``worst_step`` [pu].
    q_voltvar_kvar : reactive power injected by all EV inverters per step [kvar].
    voltvar_iterations : fixed-point iterations of the volt-var solve [-].
    """

    v_min_base_pu: FloatArray
    v_min_fleet_pu: FloatArray
    v_min_voltvar_pu: FloatArray
    losses_base_kw: FloatArray
    losses_fleet_kw: FloatArray
    losses_voltvar_kw: FloatArray
    worst_step: int
    v_profile_base_pu: FloatArray
    v_profile_fleet_pu: FloatArray
    v_profile_voltvar_pu: FloatArray
    q_voltvar_kvar: FloatArray
    voltvar_iterations: int


def run_feeder_timeseries(
    feeder: Feeder,
    p_base_kw: FloatArray,
    q_base_kvar: FloatArray,
    p_ev_bus_kw: FloatArray,
    s_inv_bus_kva: FloatArray,
    spec: FeederSpec,
) -> FeederTimeSeries:
    """Power flows over the day: base, base + fleet, base + fleet with volt-var (``spec.voltvar_curve``)."""
    base = run_powerflow(feeder, p_base_kw, q_base_kvar)
    fleet = run_powerflow(feeder, p_base_kw + p_ev_bus_kw, q_base_kvar)
    if spec.voltvar_curve == "none":
        vv_pf, q_inv, iters = fleet, np.zeros_like(p_ev_bus_kw), 0
    else:
        vv = run_voltvar(
            feeder,
            p_base_kw,
            q_base_kvar,
            p_ev_bus_kw,
            s_inv_bus_kva,
            spec.voltvar_curve,
            priority=spec.voltvar_priority,
        )
        vv_pf, q_inv, iters = vv.powerflow, vv.q_inv_kvar, vv.iterations
    worst = int(np.argmin(fleet.v_pu.min(axis=1)))
    return FeederTimeSeries(
        v_min_base_pu=base.v_pu.min(axis=1),
        v_min_fleet_pu=fleet.v_pu.min(axis=1),
        v_min_voltvar_pu=vv_pf.v_pu.min(axis=1),
        losses_base_kw=base.p_loss_kw,
        losses_fleet_kw=fleet.p_loss_kw,
        losses_voltvar_kw=vv_pf.p_loss_kw,
        worst_step=worst,
        v_profile_base_pu=base.v_pu[worst],
        v_profile_fleet_pu=fleet.v_pu[worst],
        v_profile_voltvar_pu=vv_pf.v_pu[worst],
        q_voltvar_kvar=q_inv.sum(axis=1),
        voltvar_iterations=iters,
    )


def run_hosting_analysis(
    feeder: Feeder,
    p_base_kw: FloatArray,
    q_base_kvar: FloatArray,
    p_ev_bus_kw: FloatArray,
    spec: FeederSpec,
) -> tuple[HostingResult, HostingResult | None, FleetHostingResult]:
    """Node hosting at the day's base-load peak (without and with volt-var) and the fleet's scale limit."""
    peak = int(np.argmax(p_base_kw.sum(axis=1)))
    plain = run_node_hosting(feeder, p_base_kw[peak], q_base_kvar[peak], v_min_pu=spec.v_min_pu)
    vv = None
    if spec.voltvar_curve != "none":
        vv = run_node_hosting(
            feeder,
            p_base_kw[peak],
            q_base_kvar[peak],
            v_min_pu=spec.v_min_pu,
            voltvar=spec.voltvar_curve,
            s_over_p=spec.s_over_p,
        )
    fleet = run_fleet_hosting(feeder, p_base_kw, q_base_kvar, p_ev_bus_kw, v_min_pu=spec.v_min_pu)
    return plain, vv, fleet


@dataclass(frozen=True)
class DispatchComparison:
    """Loss-aware against uniform and random charging of the same EV energy.

    Attributes
    ----------
    policies : policy names.
    losses_base_kwh : feeder losses of the base load alone, exact AC [kWh].
    losses_kwh : feeder losses over the horizon per policy, exact AC [kWh].
    energy_kwh : EV energy delivered per policy [kWh].
    v_min_pu : lowest voltage per policy [pu].
    p_ev_total_kw : aggregate EV charging per policy and step, shape (n_policies, n_steps) [kW].
    """

    policies: tuple[str, ...]
    losses_base_kwh: float
    losses_kwh: tuple[float, ...]
    energy_kwh: tuple[float, ...]
    v_min_pu: tuple[float, ...]
    p_ev_total_kw: FloatArray

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            p: {
                "losses_kwh": lo,
                "losses_due_to_evs_kwh": lo - self.losses_base_kwh,
                "energy_kwh": e,
                "v_min_pu": v,
            }
            for p, lo, e, v in zip(self.policies, self.losses_kwh, self.energy_kwh, self.v_min_pu, strict=True)
        }


def run_dispatch_comparison(
    feeder: Feeder,
    p_base_kw: FloatArray,
    q_base_kvar: FloatArray,
    ev_bus: npt.ArrayLike,
    ev_arrival_step: npt.ArrayLike,
    ev_departure_step: npt.ArrayLike,
    ev_energy_kwh: npt.ArrayLike,
    ev_p_max_kw: npt.ArrayLike,
    dt_s: float,
    seed: int,
) -> DispatchComparison:
    """The same EVs charged four ways: uniform, random priority, lowest-sensitivity priority
    (:func:`~v2gtwin.grid.losses.run_loss_aware_dispatch`) and least losses
    (:func:`~v2gtwin.grid.losses.run_loss_optimal_dispatch`)."""
    args = (
        feeder,
        p_base_kw,
        q_base_kvar,
        ev_bus,
        ev_arrival_step,
        ev_departure_step,
        ev_energy_kwh,
        ev_p_max_kw,
        dt_s,
    )
    priority = ("uniform", "random", "loss_aware")
    out = [run_loss_aware_dispatch(*args, pol, np.random.default_rng(seed)) for pol in priority]  # type: ignore[arg-type]
    out.append(run_loss_optimal_dispatch(*args))
    policies = (*priority, "loss_optimal")
    base = run_powerflow(feeder, p_base_kw, q_base_kvar)
    return DispatchComparison(
        policies=policies,
        losses_base_kwh=float(base.p_loss_kw.sum() * dt_s / 3600.0),
        losses_kwh=tuple(r.losses_kwh for r in out),
        energy_kwh=tuple(r.energy_delivered_kwh for r in out),
        v_min_pu=tuple(r.v_min_pu for r in out),
        p_ev_total_kw=np.vstack([r.p_ev_kw.sum(axis=1) for r in out]),
    )
