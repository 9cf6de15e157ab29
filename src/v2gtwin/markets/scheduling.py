"""Scheduling analyses a study runs: the day-ahead schedule per EV and as a virtual battery, and the robust
schedule under net-load uncertainty (split from ``markets.analysis`` by topic)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from v2gtwin.errors import InfeasibleError
from v2gtwin.fleet import Fleet, SocResult, calc_energy_bounds, calc_envelope
from v2gtwin.markets.analysis import calc_price_curve
from v2gtwin.optimize.robust import (
    RADIUS_BOUNDS,
    RobustResult,
    ViolationRates,
    calc_causal_factor,
    calc_promised_violation_prob,
    calc_radius,
    calc_standardised_errors,
    calc_violation_rates,
    solve_robust_schedule,
)
from v2gtwin.optimize.schedule import (
    AggregateSchedule,
    ScheduleResult,
    solve_aggregate_schedule,
    solve_fleet_schedule,
)
from v2gtwin.optimize.virtual_battery import (
    BatterySchedule,
    calc_virtual_battery,
    calc_window_classes,
    disaggregate_battery,
    solve_battery_schedule,
)
from v2gtwin.scenario import MarketsSpec, TimeGrid

if TYPE_CHECKING:
    from v2gtwin.grid.linear import LinearFeederModel
    from v2gtwin.optimize.network_schedule import NetworkScheduleResult

__all__ = [
    "NetworkScheduleAnalysis",
    "RobustAnalysis",
    "ScheduleAnalysis",
    "calc_reachable",
    "feasible_drop",
    "feasible_part",
    "run_network_schedule_analysis",
    "run_robust_analysis",
    "run_schedule_analysis",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

#: Width of the arrival and departure bins of the inner virtual battery's window classes [s].
WINDOW_BIN_S = 1800.0
#: Gaussian days of the robust schedule's Monte Carlo check [-].
N_MC_DAYS = 5000
#: A promised violation probability at least this high promises nothing (reported as None, "no promise").
NO_PROMISE = 1.0 - 1e-9


def feasible_drop(fleet: Fleet) -> int:
    """EVs whose target is out of reach at full power [-]."""
    return fleet.n - feasible_part(fleet).n


def feasible_part(fleet: Fleet) -> Fleet:
    """The EVs whose target is reachable at full power (a schedule can only promise those)."""
    return fleet.subset(calc_reachable(fleet))


@dataclass(frozen=True)
class ScheduleAnalysis:
    """Day-ahead schedules of the fleet.

    Attributes
    ----------
    price_per_mwh : prices per step. import_cap_kw : the site cap used.
    individual : the per-EV LP. aggregate : the outer virtual-battery LP (sum of the EVs' bounds; its cost is a
    lower bound, its plan need not be realisable). inner : the inner virtual-battery LP (homothets per class of
    plug-in window, :mod:`v2gtwin.optimize.virtual_battery`), whose plan disaggregates exactly.
    disaggregated_kw : the inner plan split to EVs (aggregate per step, as realised by simulate_soc).
    tracking_error_kwh : largest difference over the horizon between the cumulative grid energy the EVs realise
    and the inner plan's (0 up to round-off: the plan disaggregates exactly) [kWh].
    n_classes, n_members : window classes of the inner battery, EVs scaled with a prototype (the others follow
    a fixed even-charging reference) [-].
    uncontrolled_cost_per_horizon, disaggregated_cost_per_horizon : over the horizon [currency].
    n_evs : EVs scheduled (reachable targets). n_dropped : EVs left out (targets out of reach).
    solver_requested : markets.schedule_solver. horizon_h : the horizon the costs cover [h].
    currency : the scenario's currency.
    p_ev_kw : the inner plan's per-EV power as realised (n_steps, n_evs) [kW]; ev_index : (n_evs,) each
    scheduled EV's index in the study's fleet [-] (to place the plan on the network's feeders).
    degradation_per_mwh : the degradation cost of the aggregate (outer and inner) batteries: the scheduled EVs'
    costs averaged with their discharge power as weights (the per-EV LP takes each EV's own) [currency/MWh].
    degradation_source : "flat" (markets.degradation_per_mwh) or "model" (the battery models, per EV).
    """

    price_per_mwh: FloatArray
    import_cap_kw: float
    individual: ScheduleResult
    aggregate: AggregateSchedule
    disaggregated_kw: FloatArray
    tracking_error_kwh: float
    uncontrolled_cost_per_horizon: float
    disaggregated_cost_per_horizon: float
    n_evs: int
    n_dropped: int
    solver_requested: str
    horizon_h: float
    currency: str = "USD"
    inner: BatterySchedule | None = None
    n_classes: int = 0
    n_members: int = 0
    p_ev_kw: FloatArray | None = None
    ev_index: npt.NDArray[np.int64] | None = None
    degradation_per_mwh: float = 30.0
    degradation_source: str = "flat"

    def summary(self) -> dict[str, Any]:
        """Headline figures (JSON-ready). ``solver`` is the one that answered the per-EV LP; when it differs
        from ``solver_requested``, ``solver_fallback_reason`` says why. ``aggregate_cost_per_horizon`` is the
        outer battery's (a lower bound), ``inner_cost_per_horizon`` the inner one's (realised exactly by the
        EVs: ``disaggregated_cost_per_horizon``), ``inner_outer_gap_per_horizon`` their difference;
        ``aggregate_energy_kwh``, ``inner_energy_kwh`` the net grid energy of each plan [kWh]."""
        return {
            "horizon_h": self.horizon_h,
            "n_evs": self.n_evs,
            "n_dropped": self.n_dropped,
            "import_cap_kw": self.import_cap_kw,
            "uncontrolled_cost_per_horizon": self.uncontrolled_cost_per_horizon,
            "individual_cost_per_horizon": self.individual.cost_per_horizon,
            "aggregate_cost_per_horizon": self.aggregate.cost_per_horizon,
            "disaggregated_cost_per_horizon": self.disaggregated_cost_per_horizon,
            "tracking_error_kwh": self.tracking_error_kwh,
            "solve_s": self.individual.solve_s,
            "solver": self.individual.solver,
            "solver_requested": self.solver_requested,
            "solver_fallback_reason": self.individual.fallback_reason or None,
            "solver_note": self.individual.solver_note,
            "aggregate_solver": self.aggregate.solver,
            "inner_cost_per_horizon": None if self.inner is None else self.inner.cost_per_horizon,
            "inner_outer_gap_per_horizon": (
                None if self.inner is None else self.inner.cost_per_horizon - self.aggregate.cost_per_horizon
            ),
            "inner_p_max_kw": None if self.inner is None else float(self.inner.p_total_kw.max()),
            # Net grid energy of each plan over the horizon [kWh].
            "aggregate_energy_kwh": float((self.aggregate.p_charge_kw - self.aggregate.p_discharge_kw).sum())
            * self.horizon_h
            / self.price_per_mwh.size,
            "inner_energy_kwh": None
            if self.inner is None
            else float(self.inner.p_total_kw.sum()) * self.horizon_h / self.price_per_mwh.size,
            "inner_solver": None if self.inner is None else self.inner.solver,
            # Energy the realised (inner) plan discharges over the horizon [kWh] and its degradation cost.
            "energy_discharged_kwh": None
            if self.p_ev_kw is None
            else float(-np.clip(self.p_ev_kw, None, 0).sum()) * self.horizon_h / self.price_per_mwh.size,
            "degradation_per_mwh": self.degradation_per_mwh,
            "degradation_source": self.degradation_source,
            "inner_n_classes": self.n_classes,
            "inner_n_members": self.n_members,
        }


def _cost(p_kw: npt.ArrayLike, price: FloatArray, dt_h: float, deg: float | FloatArray) -> float:
    """Energy cost plus degradation over the horizon; ``deg`` one cost or one per EV (column) [currency/MWh]."""
    p = np.asarray(p_kw, dtype=float)
    total = p.sum(axis=1) if p.ndim == 2 else p
    dis = -np.clip(p, None, 0).sum(axis=0) if p.ndim == 2 else -np.clip(p, None, 0)
    return float((total * price).sum() * dt_h / 1000 + np.sum(np.asarray(deg) * dis) * dt_h / 1000)


def calc_fleet_degradation_per_mwh(fleet: Fleet, degradation_per_mwh: float | npt.ArrayLike) -> float:
    """One degradation cost for an aggregate model of ``fleet``: the EVs' costs averaged with their discharge
    power as weights (the EVs that cannot discharge do not count; a fleet without V2G: the plain mean)
    [currency/MWh]."""
    deg = np.broadcast_to(np.asarray(degradation_per_mwh, dtype=float), (fleet.n,))
    w = fleet.p_discharge_max_kw
    if fleet.n == 0:
        return float(np.mean(np.asarray(degradation_per_mwh, dtype=float))) if np.size(degradation_per_mwh) else 0.0
    return float((deg * w).sum() / w.sum()) if w.sum() > 0 else float(deg.mean())


def run_schedule_analysis(
    fleet: Fleet,
    baseline: SocResult,
    spec: MarketsSpec,
    time: TimeGrid,
    seed: int = 0,
    currency: str = "USD",
    degradation_per_mwh: float | npt.ArrayLike | None = None,
    degradation_source: str = "flat",
) -> ScheduleAnalysis:
    """Individual and aggregate schedules of the EVs with reachable targets, under the site import cap (a
    seeded sample of ``schedule_max_evs`` of them for larger fleets); costs over the horizon in ``currency``.

    ``degradation_per_mwh``: one cost, or one per EV of ``fleet`` (the battery models':
    :func:`v2gtwin.battery.cost.degradation_cost_per_mwh`) [currency/MWh]; None: the flat
    ``markets.degradation_per_mwh``. The per-EV LP takes each EV's own; the aggregate batteries one cost
    (:func:`calc_fleet_degradation_per_mwh`)."""
    from v2gtwin.fleet import run_uncontrolled, simulate_soc

    deg_all = np.broadcast_to(
        np.asarray(spec.degradation_per_mwh if degradation_per_mwh is None else degradation_per_mwh, dtype=float),
        (fleet.n,),
    )
    part = feasible_part(fleet)
    ev_index = np.flatnonzero(calc_reachable(fleet))
    if part.n > spec.schedule_max_evs:
        keep = np.sort(np.random.default_rng([seed, 51]).choice(part.n, size=spec.schedule_max_evs, replace=False))
        part, ev_index = part.subset(keep), ev_index[keep]
    deg = np.ascontiguousarray(deg_all[ev_index])
    deg_fleet = calc_fleet_degradation_per_mwh(part, deg)
    price = calc_price_curve(spec, time)
    unc = run_uncontrolled(part)
    cap = spec.import_cap_share * float(unc.p_kw.sum(axis=1).max())
    ind = solve_fleet_schedule(part, price, degradation_per_mwh=deg, import_cap_kw=cap, method=spec.schedule_solver)
    agg = solve_aggregate_schedule(part, price, degradation_per_mwh=deg_fleet, import_cap_kw=cap)
    # Classes of 30-minute arrival and departure bins: 374.5 on the default day against 389.7 with 1-hour bins and
    # 365.5 with exact windows (447 classes, three times the LP time).
    classes = calc_window_classes(part, max(1, round(WINDOW_BIN_S / time.dt_s)))
    vb = calc_virtual_battery(part, "inner", classes)
    inner = solve_battery_schedule(vb, price, time.dt_h, degradation_per_mwh=deg_fleet, import_cap_kw=cap)
    real = simulate_soc(part, disaggregate_battery(part, inner.p_kw, classes, battery=vb))
    e_real = np.cumsum(real.p_kw.sum(axis=1)) * time.dt_h
    e_plan = np.cumsum(inner.p_total_kw) * time.dt_h
    short = np.abs(e_real - e_plan)
    return ScheduleAnalysis(
        price_per_mwh=price,
        import_cap_kw=cap,
        individual=ind,
        aggregate=agg,
        disaggregated_kw=np.asarray(real.p_kw.sum(axis=1)),
        tracking_error_kwh=float(short.max()),
        uncontrolled_cost_per_horizon=_cost(unc.p_kw, price, time.dt_h, deg),
        disaggregated_cost_per_horizon=_cost(real.p_kw, price, time.dt_h, deg),
        n_evs=part.n,
        n_dropped=feasible_drop(fleet),
        solver_requested=spec.schedule_solver,
        horizon_h=time.horizon_h,
        currency=currency,
        inner=inner,
        n_classes=int(classes.max()) + 1 if classes.size else 0,
        n_members=int(vb.n_members.sum()),
        p_ev_kw=np.asarray(real.p_kw, dtype=np.float64),
        ev_index=ev_index.astype(np.int64),
        degradation_per_mwh=deg_fleet,
        degradation_source=degradation_source,
    )


def calc_reachable(fleet: Fleet) -> npt.NDArray[np.bool_]:
    """Per EV: its target is reachable at full power (the EVs :func:`feasible_part` keeps)."""
    dwell = fleet.departure_step - fleet.arrival_step
    reach = fleet.soc0_pu * fleet.capacity_kwh + fleet.p_charge_max_kw * fleet.eta_charge * fleet.dt_h * dwell
    return np.asarray(reach >= fleet.soc_target_pu * fleet.capacity_kwh - 1e-9)


@dataclass(frozen=True)
class NetworkScheduleAnalysis:
    """The day-ahead schedule of the fleet on its feeders, unconstrained and network-secure
    (:func:`v2gtwin.optimize.network_schedule.solve_network_schedule`), both checked by exact AC.

    Attributes
    ----------
    unconstrained : the schedule without the feeders' limits (per-bus batteries and the import cap split among
    the feeders, as ``secure``). secure : with them: the schedule the study sells. n_evs : EVs scheduled
    (reachable targets) [-]. n_dropped : EVs left out [-]. v_min_pu, v_max_pu : the limits [pu]. horizon_h [h].
    currency. fleet_wide_ac_violations, fleet_wide_base_violations, fleet_wide_v_min_pu : the fleet-wide
    (network-blind) schedule of :func:`run_schedule_analysis` (inner battery of window classes, whole-fleet cap)
    through the exact power flow of every feeder [-], [-], [pu]; None when it was not checked
    (``fleet_wide_note`` says why).
    """

    unconstrained: NetworkScheduleResult
    secure: NetworkScheduleResult
    n_evs: int
    n_dropped: int
    v_min_pu: float
    v_max_pu: float
    horizon_h: float
    currency: str = "USD"
    fleet_wide_ac_violations: int | None = None
    fleet_wide_base_violations: int | None = None
    fleet_wide_v_min_pu: float | None = None
    fleet_wide_note: str = ""

    def summary(self) -> dict[str, Any]:
        """Each figure unconstrained and network-secure, and the difference (JSON-ready); the secure schedule's
        import cap and its split, and the fleet-wide (network-blind) schedule's exact-AC check."""
        u, s = self.unconstrained, self.secure
        return {
            "horizon_h": self.horizon_h,
            "n_evs": self.n_evs,
            "n_dropped": self.n_dropped,
            "n_feeders": len(s.feeders),
            "v_min_limit_pu": self.v_min_pu,
            "v_max_limit_pu": self.v_max_pu,
            "cost_unconstrained_per_horizon": u.cost_per_horizon,
            "cost_network_secure_per_horizon": s.cost_per_horizon,
            "cost_difference_per_horizon": s.cost_per_horizon - u.cost_per_horizon,
            "ac_violations_unconstrained": u.ac_violations,
            "ac_violations": s.ac_violations,
            "base_violations": s.base_violations,
            "v_min_pu_unconstrained": u.v_min_pu,
            "v_min_pu": s.v_min_pu,
            "rounds": s.rounds,
            "solver": s.solver,
            "workers": s.workers,
            "solve_s": s.solve_s,
            "import_cap_kw": s.summary()["import_cap_kw"],
            "import_cap_rule": s.summary()["import_cap_rule"],
            "p_peak_kw": s.summary()["p_peak_kw"],
            "energy_charged_kwh": s.energy_charged_kwh,
            "fleet_wide_ac_violations": self.fleet_wide_ac_violations,
            "fleet_wide_base_violations": self.fleet_wide_base_violations,
            "fleet_wide_v_min_pu": self.fleet_wide_v_min_pu,
            "fleet_wide_note": self.fleet_wide_note,
        }


def run_network_schedule_analysis(
    fleet: Fleet,
    feeders: Sequence[LinearFeederModel],
    ev_feeder: npt.ArrayLike,
    ev_bus: npt.ArrayLike,
    spec: MarketsSpec,
    time: TimeGrid,
    *,
    v_min_pu: float = 0.95,
    v_max_pu: float = 1.05,
    workers: int = 1,
    currency: str = "USD",
    fleet_wide: ScheduleAnalysis | None = None,
    degradation_per_mwh: float | npt.ArrayLike | None = None,
) -> NetworkScheduleAnalysis:
    """The fleet's EVs with reachable targets scheduled against the scenario's prices on their feeders (each EV
    on feeder ``ev_feeder[i]``, bus ``ev_bus[i]``), without and with the feeders' voltage and thermal limits,
    both under the import cap of :func:`run_schedule_analysis` (``import_cap_share`` of these EVs' uncontrolled
    peak) split among the feeders (:data:`v2gtwin.optimize.network_schedule.CAP_RULE`). With ``fleet_wide`` (the
    study's fleet-wide schedule of the same fleet), its per-EV plan is also run through every feeder's exact power
    flow and its violations counted. ``degradation_per_mwh`` as in :func:`run_schedule_analysis`; the feeders'
    per-bus batteries take one cost (:func:`calc_fleet_degradation_per_mwh` of the scheduled EVs)."""
    from v2gtwin.fleet import run_uncontrolled
    from v2gtwin.optimize.network_schedule import check_schedule_ac, solve_network_schedule

    keep = calc_reachable(fleet)
    part = fleet.subset(keep)
    deg = spec.degradation_per_mwh if degradation_per_mwh is None else degradation_per_mwh
    deg_fleet = calc_fleet_degradation_per_mwh(
        part, np.broadcast_to(np.asarray(deg, dtype=float), (fleet.n,))[keep] if np.ndim(deg) else deg
    )
    fe, bu = np.asarray(ev_feeder)[keep], np.asarray(ev_bus)[keep]
    price = calc_price_curve(spec, time)
    cap = spec.import_cap_share * float(run_uncontrolled(part).p_kw.sum(axis=1).max()) if part.n else np.inf
    kw: dict[str, Any] = dict(
        v_min_pu=v_min_pu,
        v_max_pu=v_max_pu,
        degradation_per_mwh=deg_fleet,
        workers=workers,
        import_cap_kw=cap if cap > 0 else np.inf,
    )
    free = solve_network_schedule(part, feeders, fe, bu, price, network_secure=False, **kw)
    secure = solve_network_schedule(part, feeders, fe, bu, price, network_secure=True, **kw)
    blind: tuple[int | None, int | None, float | None] = (None, None, None)
    note = "the fleet-wide schedule was not given"
    if fleet_wide is not None and fleet_wide.p_ev_kw is not None and fleet_wide.ev_index is not None:
        if fleet_wide.ev_index.size != int(keep.sum()):
            note = (
                f"not checked: the fleet-wide schedule covers a sample of {fleet_wide.ev_index.size:,} of the "
                f"{int(keep.sum()):,} EVs (markets.schedule_max_evs), so its power per bus is not the fleet's"
            )
        else:
            p_all = np.zeros((time.n_steps, fleet.n))
            p_all[:, fleet_wide.ev_index] = fleet_wide.p_ev_kw
            blind = check_schedule_ac(p_all, feeders, ev_feeder, ev_bus, v_min_pu=v_min_pu, v_max_pu=v_max_pu)
            note = "the fleet-wide schedule's per-EV plan through the exact power flow of every feeder"
    return NetworkScheduleAnalysis(
        unconstrained=free,
        secure=secure,
        n_evs=part.n,
        n_dropped=fleet.n - part.n,
        v_min_pu=v_min_pu,
        v_max_pu=v_max_pu,
        horizon_h=time.horizon_h,
        currency=currency,
        fleet_wide_ac_violations=blind[0],
        fleet_wide_base_violations=blind[1],
        fleet_wide_v_min_pu=blind[2],
        fleet_wide_note=note,
    )


@dataclass(frozen=True)
class RobustAnalysis:
    """Robust schedules for several radii.

    Attributes
    ----------
    omegas : radii (nominal first when a violation probability is given). results : the schedules (None
    where the radius is infeasible). rates_mc : violation rates on ``n_mc_days`` Gaussian days N(mu, Sigma),
    per radius (None where infeasible). rates_observed : with weather uncertainty, the same on the observed
    forecast errors of the weather year (in sample: they also gave mu and Sigma); empty otherwise.
    infeasible_reason : per radius, the solver's reason when no schedule holds for the whole set (None when
    one does). promised : the violation probability the radius bound promises at each radius, at most.
    violation_prob : the target probability (None: radii given). n_mc_days : Monte Carlo days [-].
    radius_bound : the bound's name. uncertainty : 'weather' or 'synthetic'. source, forecast : in words.
    mu_kw, sd_kw : the net-load mean and sd per step [kW]. cap_kw : the import cap [kW]. n_dims : dimensions
    of the uncertainty (rank of Sigma) [-]. horizon_h [h]. currency.
    """

    omegas: tuple[float, ...]
    results: tuple[RobustResult | None, ...]
    rates_mc: tuple[ViolationRates | None, ...]
    rates_observed: tuple[ViolationRates | None, ...]
    promised: tuple[float, ...]
    violation_prob: float | None
    radius_bound: str
    uncertainty: str
    source: str
    forecast: str
    mu_kw: FloatArray
    sd_kw: FloatArray
    cap_kw: float
    n_dims: int
    horizon_h: float
    currency: str = "USD"
    infeasible_reason: tuple[str | None, ...] = ()
    n_mc_days: int = N_MC_DAYS

    @property
    def violation_rate(self) -> tuple[float | None, ...]:
        """Monte Carlo rate of the event the bound promises (a day with any violation for 'chi2', the worst
        single constraint for 'cantelli'), per radius (None where infeasible) [-]."""
        return tuple(None if r is None else _promised_event_rate(self.radius_bound, r) for r in self.rates_mc)

    @property
    def feasible(self) -> tuple[bool, ...]:
        """Per radius: does a schedule hold for the whole uncertainty set?"""
        return tuple(r is not None for r in self.results)

    def summary(self) -> dict[str, Any]:
        """Expected cost, promised (at most; None = no promise) and measured violation rates and solve time per
        radius (JSON-ready); an infeasible radius gets ``feasible: false`` and the solver's reason."""
        radii: dict[str, dict[str, Any]] = {}
        reasons = self.infeasible_reason or (None,) * len(self.omegas)
        for i, (o, r, v) in enumerate(zip(self.omegas, self.results, self.rates_mc, strict=True)):
            promised = self.promised[i]
            if r is None or v is None:
                radii[f"omega_{o:.4g}"] = {
                    "omega": o,
                    "feasible": False,
                    "infeasible_reason": reasons[i],
                    "violation_prob_promised_at_most": None if promised >= NO_PROMISE else promised,
                }
                continue
            row: dict[str, Any] = {
                "omega": o,
                "feasible": True,
                "expected_cost_per_horizon": r.cost_per_horizon,
                "violation_prob_promised_at_most": None if promised >= NO_PROMISE else promised,
                "violation_rate_mc": _promised_event_rate(self.radius_bound, v),
                "violation_rate_mc_any_day": v.any_day,
                "cap_violation_rate_mc_day": v.cap_day,
                "violation_rate_mc_max_constraint": v.max_constraint,
                "solve_s": r.solve_s,
                "solver": r.solver,
                "solver_note": r.solver_note,
            }
            seen = self.rates_observed[i] if self.rates_observed else None
            if seen is not None:
                row["violation_rate_observed"] = _promised_event_rate(self.radius_bound, seen)
            radii[f"omega_{o:.4g}"] = row
        n_obs = next((r.n_days for r in self.rates_observed if r is not None), 0)
        return {
            "horizon_h": self.horizon_h,
            "uncertainty": self.uncertainty,
            "source": self.source,
            "forecast": self.forecast,
            "radius_bound": self.radius_bound,
            "promised_event": RADIUS_BOUNDS[self.radius_bound][2],
            "violation_prob": self.violation_prob,
            "n_dims": self.n_dims,
            "import_cap_kw": self.cap_kw,
            "mc_days": self.n_mc_days,
            "mc_sampling_sd": 0.5 / float(np.sqrt(self.n_mc_days)),
            "observed_days": n_obs,
            "n_radii_feasible": sum(self.feasible),
            "radii": radii,
        }


def _promised_event_rate(bound: str, rates: ViolationRates) -> float:
    return rates.any_day if bound == "chi2" else rates.max_constraint


def _net_load_uncertainty(
    base_load_kw: FloatArray, spec: MarketsSpec, time: TimeGrid
) -> tuple[FloatArray, FloatArray, FloatArray | None, str, str]:
    """(mu [kW], Sigma [kW^2], observed errors about their mean or None, source, forecast) of the site's net
    load: from weather (:mod:`v2gtwin.optimize.weather`) or the synthetic covariance."""
    mu = np.asarray(base_load_kw, dtype=float)
    if spec.robust_uncertainty == "synthetic":
        sd = spec.robust_sd_share * mu
        k = np.arange(mu.size)
        sigma = np.outer(sd, sd) * spec.robust_correlation ** np.abs(k[:, None] - k[None, :])
        text = (
            f"synthetic: sd {spec.robust_sd_share:g} x the load, correlation {spec.robust_correlation:g} "
            "between adjacent steps"
        )
        return mu, sigma, None, text, "the load itself (no forecast model)"
    from v2gtwin.optimize.weather import calc_weather_uncertainty, read_tmy_weather

    w = calc_weather_uncertainty(
        read_tmy_weather(spec.weather_site),
        mu,
        hvac_share=spec.weather_hvac_share,
        pv_share=spec.weather_pv_share,
        day_of_year=spec.weather_day_of_year,
        start_hour=time.start_hour,
        dt_h=time.dt_h,
        window_days=spec.weather_window_days,
    )
    source = (
        f"{w.source}; load {spec.weather_hvac_share:g} temperature-driven (degree-hours about 18.3 degC), "
        f"PV {w.p_pv_dc0_kw:.0f} kW DC (pvlib: SPA sun, isotropic sky, SAPM cell temperature, PVWatts)"
    )
    return w.mu_kw, w.sigma_kw2, w.errors_kw - w.mean_error_kw, source, w.forecast


def run_robust_analysis(
    fleet: Fleet, base_load_kw: FloatArray, spec: MarketsSpec, time: TimeGrid, seed: int, currency: str = "USD"
) -> RobustAnalysis:
    """The fleet as a virtual battery next to an uncertain site net load (the feeder's base load, with a
    weather-driven share and PV for ``robust_uncertainty = "weather"``), robust to an ellipsoid of radius Omega:
    ``robust_omegas``, or the nominal schedule and the radius that ``robust_radius_bound`` gives for
    ``robust_violation_prob``. Violation rates by Monte Carlo on 5,000 Gaussian days beside the promised
    probability (and, with weather, on the year's observed errors)."""
    part = feasible_part(fleet)
    env = calc_envelope(part)
    lo, up = calc_energy_bounds(part)
    mu, sigma, observed, source, forecast = _net_load_uncertainty(base_load_kw, spec, time)
    factor, _ = calc_causal_factor(sigma)
    n_dims = int(factor.shape[1])
    bound = spec.robust_radius_bound
    if spec.robust_violation_prob is None:
        omegas: tuple[float, ...] = tuple(spec.robust_omegas)
    else:
        omegas = (0.0, calc_radius(spec.robust_violation_prob, n_dims, bound))
    cap = spec.robust_cap_share * float(mu.max())
    price = calc_price_curve(spec, time)
    # Virtual battery: aggregate stored energy of all EVs between the sums of the per-EV bounds.
    e0 = float((part.soc0_pu * part.capacity_kwh).sum())
    e_lo, e_up = lo.sum(axis=1)[1:], up.sum(axis=1)[1:]
    results: list[RobustResult | None] = []
    rates: list[ViolationRates | None] = []
    observed_rates: list[ViolationRates | None] = []
    reasons: list[str | None] = []
    rng = np.random.default_rng([seed, 41])
    for om in omegas:
        try:
            r = solve_robust_schedule(
                mu,
                sigma,
                price,
                cap,
                env.p_min_kw,
                env.p_max_kw,
                e_lo,
                e_up,
                e0,
                time.dt_h,
                om,
                memory_steps=spec.robust_memory_steps,
            )
        except InfeasibleError as exc:
            # The analysis answered for this radius: no schedule holds for the whole set. Record it, go on.
            logger.info("robust schedule: %s", exc)
            results.append(None)
            rates.append(None)
            observed_rates.append(None)
            reasons.append(str(exc))
            continue
        results.append(r)
        reasons.append(None)
        z = rng.standard_normal((N_MC_DAYS, r.n_dims))
        args = (r, mu, cap, env.p_min_kw, env.p_max_kw, e_lo, e_up, e0, time.dt_h)
        rates.append(calc_violation_rates(*args, z))
        observed_rates.append(
            None if observed is None else calc_violation_rates(*args, calc_standardised_errors(r, observed))
        )
    return RobustAnalysis(
        omegas=omegas,
        results=tuple(results),
        rates_mc=tuple(rates),
        rates_observed=tuple(observed_rates) if observed is not None else (),
        promised=tuple(calc_promised_violation_prob(o, n_dims, bound) for o in omegas),
        violation_prob=spec.robust_violation_prob,
        radius_bound=bound,
        uncertainty=spec.robust_uncertainty,
        source=source,
        forecast=forecast,
        mu_kw=mu,
        sd_kw=np.sqrt(np.diag(sigma)),
        cap_kw=cap,
        n_dims=n_dims,
        horizon_h=time.horizon_h,
        currency=currency,
        infeasible_reason=tuple(reasons),
    )
