"""Market and scheduling analyses a study runs, each one function from the fleet and the scenario."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from v2gtwin.fleet import Fleet, SocResult, calc_energy_bounds, calc_envelope, synthesize_fleet
from v2gtwin.grid.profiles import RTS79_WINTER_WEEKDAY_PCT, calc_daily_profile
from v2gtwin.markets.newsvendor import Availability, BidResult, calc_expected_profit, solve_newsvendor
from v2gtwin.markets.stackelberg import StackelbergResult, solve_stackelberg
from v2gtwin.markets.welfare import Demand, SupplyStack, run_market_comparison
from v2gtwin.optimize.robust import RobustResult, calc_violation_rate, solve_robust_schedule
from v2gtwin.optimize.schedule import (
    AggregateSchedule,
    ScheduleResult,
    disaggregate,
    solve_aggregate_schedule,
    solve_fleet_schedule,
)
from v2gtwin.scenario import MarketsSpec, Scenario, TimeGrid

__all__ = [
    "BidAnalysis",
    "RobustAnalysis",
    "ScheduleAnalysis",
    "calc_price_curve",
    "feasible_drop",
    "feasible_part",
    "run_bid_analysis",
    "run_market_analysis",
    "run_robust_analysis",
    "run_schedule_analysis",
    "run_stackelberg_analysis",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]


def calc_price_curve(spec: MarketsSpec, time: TimeGrid) -> FloatArray:
    """Energy price per step [currency/MWh]: base + (peak - base) x the squared normalised RTS-79 load shape
    (a synthetic day-ahead curve; replace it with a real one through the API)."""
    shape = calc_daily_profile(time.n_steps, time.dt_s, time.start_hour)
    lo, hi = min(RTS79_WINTER_WEEKDAY_PCT) / 100, 1.0
    x = np.clip((shape - lo) / (hi - lo), 0.0, 1.0)
    return np.asarray(spec.price_base_per_mwh + (spec.price_peak_per_mwh - spec.price_base_per_mwh) * x**2)


def run_market_analysis(fleet: Fleet, baseline: SocResult, spec: MarketsSpec, time: TimeGrid) -> dict[str, Any]:
    """TOU vs RTP over 24 hourly periods with the fleet's V2G offer in the supply stack."""
    shape = np.asarray(RTS79_WINTER_WEEKDAY_PCT, dtype=float) / 100.0
    q_ref = spec.peak_demand_mw * 1000.0 * shape
    if spec.demand_kind == "linear":
        b = -spec.p_ref_per_mwh / (spec.elasticity * q_ref)
        demand = Demand("linear", a_per_mwh=spec.p_ref_per_mwh + b * q_ref, b_per_mwh_per_kw=b)
    else:
        demand = Demand(
            "constant_elasticity", scale_kw=q_ref, elasticity=spec.elasticity, p_ref_per_mwh=spec.p_ref_per_mwh
        )
    # V2G offer: discharge capacity of the V2G EVs plugged in at 18:00, energy above their targets.
    step = int(np.floor(((18.0 - time.start_hour) % 24.0) / time.dt_h))
    step = min(step, time.n_steps - 1)
    plugged = (fleet.arrival_step <= step) & (step < fleet.departure_step)
    v2g_p = spec.v2g_share * float(fleet.p_discharge_max_kw[plugged].sum())
    spare = np.clip(fleet.soc_max_pu - fleet.soc_target_pu, 0, None) * fleet.capacity_kwh
    v2g_e = spec.v2g_energy_share * float(spare[fleet.p_discharge_max_kw > 0].sum())
    supply = SupplyStack(
        np.asarray(spec.gen_capacity_mw) * 1000.0,
        np.asarray(spec.gen_cost_per_mwh, float),
        v2g_p_max_kw=v2g_p,
        v2g_energy_kwh=v2g_e,
        v2g_cost_per_mwh=spec.degradation_per_mwh,
    )
    hours = np.arange(24)
    blocks = ((hours >= spec.tou_peak_start_hour) & (hours < spec.tou_peak_end_hour)).astype(int)
    out = run_market_comparison(demand, supply, blocks)
    out["demand"] = demand
    out["supply"] = supply
    return out


def run_stackelberg_analysis(fleet: Fleet, spec: MarketsSpec, seed: int) -> StackelbergResult:
    """The aggregator prices charging for the fleet's EVs: each EV's capacity limit is its energy need, its
    marginal value ``alpha`` drawn around twice the aggregator's cost and ``beta`` so that it wants its whole
    need at a price of about the cost (seeded)."""
    rng = np.random.default_rng([seed, 21])
    need = np.clip(fleet.soc_target_pu - fleet.soc0_pu, 0, None) * fleet.capacity_kwh / fleet.eta_charge
    keep = need > 0.1
    x_max = need[keep]
    c = spec.charging_cost_per_kwh
    alpha = rng.uniform(1.5 * c + 0.05, 3.0 * c + 0.15, x_max.size)
    beta = (alpha - c) / np.maximum(x_max, 1e-3) * rng.uniform(0.6, 1.4, x_max.size)
    free = float(np.clip((alpha - c) / beta, 0, x_max).sum())
    return solve_stackelberg(alpha, beta, x_max, c, x_cap=spec.x_cap_share * free)


@dataclass(frozen=True)
class BidAnalysis:
    """Regulation bids under uncertain availability.

    Attributes
    ----------
    samples_kw : symmetric regulation headroom of the fleet at the event hour on seeded days [kW].
    empirical, normal : optimal bids with the empirical and a fitted normal distribution.
    bids_kw, profit_exact, profit_mc : expected-profit curve (exact on the empirical distribution, and a
    Monte Carlo estimate on fresh draws).
    """

    samples_kw: FloatArray
    empirical: BidResult
    normal: BidResult
    bids_kw: FloatArray
    profit_exact: FloatArray
    profit_mc: FloatArray


def run_bid_analysis(scenario: Scenario) -> BidAnalysis:
    """Empirical availability from ``bid_days`` seeded fleet days (symmetric headroom of the plugged EVs at
    ``frequency.event_hour``, idle at their arrival SoC), and the newsvendor bid."""
    spec, time = scenario.markets, scenario.time
    step = int(np.floor(((scenario.frequency.event_hour - time.start_hour) % 24.0) / time.dt_h))
    samples = []
    for day in range(spec.bid_days):
        f = synthesize_fleet(
            scenario.fleet, time, scenario.feeder.n_bus, np.random.default_rng([scenario.seed, 31, day])
        )
        env_plugged = (f.arrival_step <= step) & (step < f.departure_step)
        samples.append(float(np.minimum(f.p_charge_max_kw, f.p_discharge_max_kw)[env_plugged].sum()))
    s = np.asarray(samples)
    p, lam = spec.reg_price_per_mw / 1000.0, spec.reg_penalty_per_mw / 1000.0  # per kW
    emp = solve_newsvendor(Availability("empirical", samples_kw=s), p, lam)
    nrm = solve_newsvendor(
        Availability("normal", mean_kw=float(s.mean()), sd_kw=max(float(s.std(ddof=1)), 1e-6)), p, lam
    )
    bids = np.linspace(0.5 * s.min(), 1.1 * s.max(), 81)
    exact = calc_expected_profit(bids, Availability("empirical", samples_kw=s), p, lam)
    mc = calc_expected_profit(
        bids,
        Availability("empirical", samples_kw=s),
        p,
        lam,
        n_mc=50_000,
        rng=np.random.default_rng([scenario.seed, 32]),
    )
    return BidAnalysis(s, emp, nrm, bids, exact, mc)


def feasible_drop(fleet: Fleet) -> int:
    """EVs whose target is out of reach at full power [-]."""
    return fleet.n - feasible_part(fleet).n


def feasible_part(fleet: Fleet) -> Fleet:
    """The EVs whose target is reachable at full power (a schedule can only promise those)."""
    dwell = fleet.departure_step - fleet.arrival_step
    reach = fleet.soc0_pu * fleet.capacity_kwh + fleet.p_charge_max_kw * fleet.eta_charge * fleet.dt_h * dwell
    return fleet.subset(reach >= fleet.soc_target_pu * fleet.capacity_kwh - 1e-9)


@dataclass(frozen=True)
class ScheduleAnalysis:
    """Day-ahead schedules of the fleet.

    Attributes
    ----------
    price_per_mwh : prices per step. import_cap_kw : the site cap used.
    individual : the per-EV LP. aggregate : the virtual-battery LP. disaggregated_kw : its split to EVs
    (aggregate per step, as realised by simulate_soc). tracking_error_kwh : largest per-step shortfall.
    uncontrolled_cost, individual_cost, disaggregated_cost : [currency]. n_evs : EVs scheduled (reachable
    targets). n_dropped : EVs left out (targets out of reach). solver : the LP solver used.
    """

    price_per_mwh: FloatArray
    import_cap_kw: float
    individual: ScheduleResult
    aggregate: AggregateSchedule
    disaggregated_kw: FloatArray
    tracking_error_kwh: float
    uncontrolled_cost: float
    disaggregated_cost: float
    n_evs: int
    n_dropped: int
    solver: str

    def summary(self) -> dict[str, Any]:
        """Headline figures (JSON-ready)."""
        return {
            "n_evs": self.n_evs,
            "n_dropped": self.n_dropped,
            "import_cap_kw": self.import_cap_kw,
            "uncontrolled_cost": self.uncontrolled_cost,
            "individual_cost": self.individual.cost,
            "aggregate_cost": self.aggregate.cost,
            "disaggregated_cost": self.disaggregated_cost,
            "tracking_error_kwh": self.tracking_error_kwh,
            "solve_s": self.individual.solve_s,
            "solver": self.solver,
        }


def _cost(p_kw: npt.ArrayLike, price: FloatArray, dt_h: float, deg: float) -> float:
    p = np.asarray(p_kw, dtype=float)
    total = p.sum(axis=1) if p.ndim == 2 else p
    dis = -np.clip(p, None, 0).sum(axis=1) if p.ndim == 2 else -np.clip(p, None, 0)
    return float((total * price).sum() * dt_h / 1000 + deg * dis.sum() * dt_h / 1000)


def run_schedule_analysis(
    fleet: Fleet, baseline: SocResult, spec: MarketsSpec, time: TimeGrid, seed: int = 0
) -> ScheduleAnalysis:
    """Individual and aggregate schedules of the EVs with reachable targets, under the site import cap (a
    seeded sample of ``schedule_max_evs`` of them for larger fleets)."""
    from v2gtwin.fleet import run_uncontrolled, simulate_soc

    part = feasible_part(fleet)
    if part.n > spec.schedule_max_evs:
        keep = np.random.default_rng([seed, 51]).choice(part.n, size=spec.schedule_max_evs, replace=False)
        part = part.subset(np.sort(keep))
    price = calc_price_curve(spec, time)
    unc = run_uncontrolled(part)
    cap = spec.import_cap_share * float(unc.p_kw.sum(axis=1).max())
    ind = solve_fleet_schedule(
        part, price, degradation_per_mwh=spec.degradation_per_mwh, import_cap_kw=cap, method=spec.schedule_solver
    )
    agg = solve_aggregate_schedule(part, price, degradation_per_mwh=spec.degradation_per_mwh, import_cap_kw=cap)
    req, short = disaggregate(part, agg)
    real = simulate_soc(part, req)
    return ScheduleAnalysis(
        price_per_mwh=price,
        import_cap_kw=cap,
        individual=ind,
        aggregate=agg,
        disaggregated_kw=np.asarray(real.p_kw.sum(axis=1)),
        tracking_error_kwh=float(short.max()),
        uncontrolled_cost=_cost(unc.p_kw, price, time.dt_h, spec.degradation_per_mwh),
        disaggregated_cost=_cost(real.p_kw, price, time.dt_h, spec.degradation_per_mwh),
        n_evs=part.n,
        n_dropped=feasible_drop(fleet),
        solver=spec.schedule_solver,
    )


@dataclass(frozen=True)
class RobustAnalysis:
    """Robust schedules for several radii.

    Attributes
    ----------
    omegas : radii. results : schedules (nominal first). violation_rate : Monte Carlo share of days with
    the cap exceeded, per radius. mu_kw, sd_kw : the net-load mean and sd per step. cap_kw : the import cap.
    """

    omegas: tuple[float, ...]
    results: tuple[RobustResult, ...]
    violation_rate: tuple[float, ...]
    mu_kw: FloatArray
    sd_kw: FloatArray
    cap_kw: float

    def summary(self) -> dict[str, Any]:
        """Cost, violation rate and solve time per radius (JSON-ready)."""
        return {
            f"omega_{o:g}": {"cost": r.cost, "violation_rate": v, "solve_s": r.solve_s}
            for o, r, v in zip(self.omegas, self.results, self.violation_rate, strict=True)
        }


def run_robust_analysis(
    fleet: Fleet, base_load_kw: FloatArray, spec: MarketsSpec, time: TimeGrid, seed: int
) -> RobustAnalysis:
    """The fleet as a virtual battery next to an uncertain site load (the feeder's base load), robust to an
    ellipsoid of radius Omega; Monte Carlo violation rates on Gaussian net-load days."""
    part = feasible_part(fleet)
    env = calc_envelope(part)
    lo, up = calc_energy_bounds(part)
    mu = np.asarray(base_load_kw, dtype=float)
    n = mu.size
    sd = spec.robust_sd_share * mu
    k = np.arange(n)
    sigma = np.outer(sd, sd) * spec.robust_correlation ** np.abs(k[:, None] - k[None, :])
    cap = spec.robust_cap_share * float(mu.max())
    price = calc_price_curve(spec, time)
    # Virtual battery: aggregate stored energy of all EVs between the sums of the per-EV bounds.
    e0 = float((part.soc0_pu * part.capacity_kwh).sum())
    results, rates = [], []
    rng = np.random.default_rng([seed, 41])
    for om in spec.robust_omegas:
        r = solve_robust_schedule(
            mu,
            sigma,
            price,
            cap,
            env.p_min_kw,
            env.p_max_kw,
            lo.sum(axis=1)[1:],
            up.sum(axis=1)[1:],
            e0,
            time.dt_h,
            om,
            memory_steps=spec.robust_memory_steps,
        )
        results.append(r)
        rates.append(calc_violation_rate(r, mu, sigma, cap, 5000, rng))
    return RobustAnalysis(tuple(spec.robust_omegas), tuple(results), tuple(rates), mu, sd, cap)
