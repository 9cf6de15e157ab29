"""Market and scheduling analyses a study runs, each one function from the fleet and the scenario."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from v2gtwin.fleet import Fleet, SocResult, calc_energy_bounds, calc_envelope, synthesize_fleet
from v2gtwin.grid.profiles import RTS79_WINTER_WEEKDAY_PCT, calc_daily_profile
from v2gtwin.markets.newsvendor import Availability, BidResult, calc_expected_profit, solve_newsvendor
from v2gtwin.markets.stackelberg import StackelbergResult, solve_stackelberg, solve_stackelberg_discharge
from v2gtwin.markets.welfare import Demand, MarketResult, SupplyStack, run_market_comparison
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
    disaggregate,
    solve_aggregate_schedule,
    solve_fleet_schedule,
)
from v2gtwin.scenario import MarketsSpec, Scenario, TimeGrid

__all__ = [
    "BidAnalysis",
    "RobustAnalysis",
    "ScheduleAnalysis",
    "StackelbergAnalysis",
    "calc_charging_followers",
    "calc_discharge_followers",
    "calc_market_demand",
    "calc_price_curve",
    "calc_regulation_headroom_kw",
    "calc_v2g_offer",
    "feasible_drop",
    "feasible_part",
    "run_bid_analysis",
    "run_market_analysis",
    "run_robust_analysis",
    "run_schedule_analysis",
    "run_stackelberg_analysis",
    "summarize_bid",
    "summarize_market",
    "summarize_stackelberg",
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


def calc_market_demand(spec: MarketsSpec) -> Demand:
    """The market's 24 hourly demand curves: the RTS-79 daily shape x ``peak_demand_mw`` at the reference price
    ``p_ref_per_mwh`` with elasticity ``elasticity`` there (linear or constant elasticity).

    Notes
    -----
    Linear: ``p = a - b q`` through ``(q_ref, p_ref)`` with point elasticity ``eps = -p_ref / (b q_ref)``, so
    ``b = -p_ref / (eps q_ref)`` and ``a = p_ref + b q_ref``.
    """
    shape = np.asarray(RTS79_WINTER_WEEKDAY_PCT, dtype=float) / 100.0
    q_ref = spec.peak_demand_mw * 1000.0 * shape
    if spec.demand_kind == "linear":
        b = -spec.p_ref_per_mwh / (spec.elasticity * q_ref)
        return Demand("linear", a_per_mwh=spec.p_ref_per_mwh + b * q_ref, b_per_mwh_per_kw=b)
    return Demand("constant_elasticity", scale_kw=q_ref, elasticity=spec.elasticity, p_ref_per_mwh=spec.p_ref_per_mwh)


def calc_v2g_offer(fleet: Fleet, spec: MarketsSpec, time: TimeGrid) -> tuple[float, float]:
    """The fleet's V2G offer to the market: power [kW] and energy over the day [kWh].

    Power: ``v2g_share`` x the discharge capacity of the EVs plugged in at ``v2g_offer_hour`` (a clock time in
    the horizon, else a ScenarioError). Energy: ``v2g_energy_share`` x the energy the V2G-capable EVs hold
    between their targets and their SoC ceilings.
    """
    step = time.step_at(spec.v2g_offer_hour, "markets.v2g_offer_hour")
    plugged = (fleet.arrival_step <= step) & (step < fleet.departure_step)
    v2g_p = spec.v2g_share * float(fleet.p_discharge_max_kw[plugged].sum())
    spare = np.clip(fleet.soc_max_pu - fleet.soc_target_pu, 0, None) * fleet.capacity_kwh
    v2g_e = spec.v2g_energy_share * float(spare[fleet.p_discharge_max_kw > 0].sum())
    return v2g_p, v2g_e


def run_market_analysis(fleet: Fleet, baseline: SocResult, spec: MarketsSpec, time: TimeGrid) -> dict[str, Any]:
    """TOU vs RTP over 24 hourly periods with the fleet's V2G offer in the supply stack.

    Returns {'rtp', 'tou', 'deadweight_loss', 'demand', 'supply', 'v2g_offer_hour'}; money over the day."""
    demand = calc_market_demand(spec)
    v2g_p, v2g_e = calc_v2g_offer(fleet, spec, time)
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
    out["v2g_offer_hour"] = spec.v2g_offer_hour
    return out


_SURPLUS_KEYS = ("consumer_surplus", "producer_surplus", "v2g_surplus", "retailer_surplus", "welfare")


def summarize_market(market: dict[str, Any]) -> dict[str, Any]:
    """The TOU vs RTP comparison as printed by ``v2gtwin market compare`` and stored in results.json.

    Money over the day in the scenario's currency (stated once per output by the caller); the hourly consumer
    price and consumption of each scheme."""
    out: dict[str, Any] = {}
    for scheme in ("rtp", "tou"):
        r: MarketResult = market[scheme]
        out[scheme] = {f"{k}_per_day": float(getattr(r, k)) for k in _SURPLUS_KEYS} | {
            "price_per_mwh": r.price_per_mwh.tolist(),
            "q_kw": r.q_kw.tolist(),
        }
    supply: SupplyStack = market["supply"]
    out["deadweight_loss_per_day"] = float(market["deadweight_loss"])
    out["v2g_offer_hour"] = float(market["v2g_offer_hour"])
    out["v2g_offer_kw"] = float(np.max(supply.v2g_p_max_kw))
    out["v2g_energy_kwh"] = float(supply.v2g_energy_kwh)
    return out


@dataclass(frozen=True)
class StackelbergAnalysis:
    """The aggregator's prices for the fleet's EVs, both directions.

    Attributes
    ----------
    charge : the charging price it sells at (followers: EVs with an energy need); None when there is no trade.
    discharge : the price it pays for V2G energy (followers: V2G EVs with energy above their targets); None
    when there is no trade.
    notes : why a direction has no trade, by direction.
    """

    charge: StackelbergResult | None
    discharge: StackelbergResult | None
    notes: dict[str, str] = field(default_factory=dict)


def calc_charging_followers(
    fleet: Fleet, spec: MarketsSpec, rng: np.random.Generator
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Charging followers (alpha [currency/kWh], beta [currency/kWh^2], x_max [kWh]): the EVs needing more than
    0.1 kWh from the grid; ``x_max`` that need, ``alpha`` uniform on [1.5 c + 0.05, 3 c + 0.15] and ``beta`` so
    that each wants its whole need at a price of about the cost c (x U(0.6, 1.4))."""
    need = np.clip(fleet.soc_target_pu - fleet.soc0_pu, 0, None) * fleet.capacity_kwh / fleet.eta_charge
    x_max = need[need > 0.1]
    c = spec.charging_cost_per_kwh
    alpha = rng.uniform(1.5 * c + 0.05, 3.0 * c + 0.15, x_max.size)
    beta = (alpha - c) / x_max * rng.uniform(0.6, 1.4, x_max.size)
    return alpha, beta, x_max


def calc_discharge_followers(
    fleet: Fleet, spec: MarketsSpec, rng: np.random.Generator
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Discharging followers (reservation [currency/kWh], gamma [currency/kWh^2], y_max [kWh]): the V2G-capable
    EVs with more than 0.1 kWh (grid side) between their target and their SoC ceiling; ``y_max`` that energy
    after discharge losses, reservation prices uniform on [0.2 v, 0.6 v] (v the aggregator's resale value) and
    ``gamma`` so that each offers its whole energy at a price of about v (x U(0.6, 1.4), at least 5 % of v per
    ``y_max``)."""
    spare = np.clip(fleet.soc_max_pu - fleet.soc_target_pu, 0, None) * fleet.capacity_kwh * fleet.eta_discharge
    y_max = spare[(spare > 0.1) & (fleet.p_discharge_max_kw > 0)]
    v, d = spec.discharge_value_per_kwh, spec.degradation_per_mwh / 1000.0
    res = rng.uniform(0.2 * v, 0.6 * v, y_max.size)
    gamma = np.maximum(v - res - d, 0.05 * v) / y_max * rng.uniform(0.6, 1.4, y_max.size)
    return res, gamma, y_max


def run_stackelberg_analysis(fleet: Fleet, spec: MarketsSpec, seed: int) -> StackelbergAnalysis:
    """The aggregator prices charging (energy cost ``charging_cost_per_kwh``, limit ``x_cap_share`` of the EVs'
    demand at that cost) and V2G energy bought back (value ``discharge_value_per_kwh``, followers' degradation
    ``degradation_per_mwh``, limit ``discharge_cap_share`` of their offer at that value); followers seeded.
    A direction without followers, or where none trades at the aggregator's cost or value, has no trade
    (None), with the reason in ``notes``."""
    notes: dict[str, str] = {}
    charge = discharge = None
    a, b, xm = calc_charging_followers(fleet, spec, np.random.default_rng([seed, 21]))
    if a.size == 0:
        notes["charge"] = "no EV of the fleet needs energy (every SoC at or above its target)"
    else:
        c = spec.charging_cost_per_kwh
        free = float(np.clip((a - c) / b, 0, xm).sum())
        charge = solve_stackelberg(a, b, xm, c, x_cap=spec.x_cap_share * free)
    r, g, ym = calc_discharge_followers(fleet, spec, np.random.default_rng([seed, 22]))
    v, d = spec.discharge_value_per_kwh, spec.degradation_per_mwh / 1000.0
    offer = float(np.clip((v - r - d) / g, 0, ym).sum())
    if r.size == 0:
        notes["discharge"] = "no V2G-capable EV of the fleet holds energy above its target"
    elif offer <= 0:
        notes["discharge"] = (
            f"no EV sells at markets.discharge_value_per_kwh = {v:g} (every reservation price plus degradation "
            f"{d:g}/kWh is above it)"
        )
    else:
        discharge = solve_stackelberg_discharge(r, d, g, ym, v, y_cap_kwh=spec.discharge_cap_share * offer)
    return StackelbergAnalysis(charge, discharge, notes)


def summarize_stackelberg(st: StackelbergAnalysis) -> dict[str, Any]:
    """Both Stackelberg prices as printed by ``v2gtwin market stackelberg`` and stored in results.json; the
    profit covers the followers' energy of the day (money in the scenario's currency)."""
    out: dict[str, Any] = {}
    for direction in ("charge", "discharge"):
        r: StackelbergResult | None = getattr(st, direction)
        out[direction] = {
            "price_per_kwh": None if r is None else r.price_per_kwh,
            "profit_per_day": 0.0 if r is None else r.profit,
            "energy_kwh": 0.0 if r is None else r.energy_kwh,
            "cap_binding": False if r is None else r.cap_binding,
            "n_followers": 0 if r is None else int(r.x_kwh.size),
            "no_trade": st.notes.get(direction),
        }
    return out


@dataclass(frozen=True)
class BidAnalysis:
    """Regulation bids under uncertain availability.

    Attributes
    ----------
    availability : the distribution of available capacity used [kW].
    source : where it comes from ('simulated fleet days' or the command line's spec).
    samples_kw : symmetric regulation headroom of the fleet at the event hour on seeded days [kW] (empty when
    the availability was given).
    bid : the optimal bid under ``availability``. normal_fit : the optimal bid under a normal fitted to the
    samples (None when the availability was given).
    bids_kw, profit_exact_per_h, profit_mc_per_h : expected-profit curve [currency/h] (exact, and a Monte
    Carlo estimate on fresh draws).
    event_hour : clock time of the simulated availability [h] (None when the availability was given).
    reg_price_per_mw, reg_penalty_per_mw : payment and penalty [currency per MW and hour].
    """

    availability: Availability
    source: str
    samples_kw: FloatArray
    bid: BidResult
    normal_fit: BidResult | None
    bids_kw: FloatArray
    profit_exact_per_h: FloatArray
    profit_mc_per_h: FloatArray
    event_hour: float | None
    reg_price_per_mw: float
    reg_penalty_per_mw: float


def calc_regulation_headroom_kw(fleet: Fleet, step: int) -> float:
    """Symmetric regulation headroom [kW] of the EVs plugged in at ``step``: the sum of each one's smaller of
    its charge and discharge power limits (idle EVs can move both ways by that much)."""
    plugged = (fleet.arrival_step <= step) & (step < fleet.departure_step)
    return float(np.minimum(fleet.p_charge_max_kw, fleet.p_discharge_max_kw)[plugged].sum())


def run_bid_analysis(scenario: Scenario, availability: Availability | None = None) -> BidAnalysis:
    """The newsvendor regulation bid at ``markets.reg_price_per_mw`` and ``reg_penalty_per_mw``.

    Without ``availability``: the empirical availability of ``bid_days`` seeded fleet days (symmetric headroom
    of the plugged EVs at ``frequency.event_hour``, a clock time in the horizon), with a normal fit beside it.
    """
    spec, time = scenario.markets, scenario.time
    p, lam = spec.reg_price_per_mw / 1000.0, spec.reg_penalty_per_mw / 1000.0  # per kW
    samples = np.zeros(0)
    normal_fit = None
    event_hour = None
    if availability is None:
        event_hour = scenario.frequency.event_hour
        step = time.step_at(scenario.frequency.event_hour, "frequency.event_hour")
        samples = np.asarray(
            [
                calc_regulation_headroom_kw(
                    synthesize_fleet(
                        scenario.fleet, time, scenario.feeder.n_bus, np.random.default_rng([scenario.seed, 31, day])
                    ),
                    step,
                )
                for day in range(spec.bid_days)
            ]
        )
        availability = Availability("empirical", samples_kw=samples)
        source = f"{spec.bid_days} simulated fleet days"
        sd = float(samples.std(ddof=1))
        if float(samples.mean()) > 0 and sd > 0:
            normal_fit = solve_newsvendor(Availability("normal", mean_kw=float(samples.mean()), sd_kw=sd), p, lam)
        bids = np.linspace(0.5 * samples.min(), 1.1 * samples.max(), 81)
    else:
        source = "given"
        bids = np.linspace(max(availability.ppf(0.001), 0.0), availability.ppf(0.999), 81)
    best = solve_newsvendor(availability, p, lam)
    exact = calc_expected_profit(bids, availability, p, lam)
    mc = calc_expected_profit(bids, availability, p, lam, n_mc=50_000, rng=np.random.default_rng([scenario.seed, 32]))
    return BidAnalysis(
        availability,
        source,
        samples,
        best,
        normal_fit,
        bids,
        exact,
        mc,
        event_hour,
        spec.reg_price_per_mw,
        spec.reg_penalty_per_mw,
    )


def summarize_bid(b: BidAnalysis) -> dict[str, Any]:
    """The regulation bid as printed by ``v2gtwin bid`` and stored in results.json; expected profit per hour of
    regulation at the payment and penalty per MW and hour (money in the scenario's currency)."""
    av = b.availability
    if av.kind == "empirical":
        s = np.asarray(av.samples_kw, dtype=float)
        mean, sd = float(s.mean()), float(s.std(ddof=1))
    else:
        mean, sd = float(av.dist().mean()), float(av.dist().std())
    return {
        "availability_kind": av.kind,
        "availability_source": b.source,
        "availability_mean_kw": mean,
        "availability_sd_kw": sd,
        "event_hour": b.event_hour,
        "n_days": int(b.samples_kw.size) if b.samples_kw.size else None,
        "reg_price_per_mw": b.reg_price_per_mw,
        "reg_penalty_per_mw": b.reg_penalty_per_mw,
        "fractile": b.bid.fractile,
        "bid_kw": b.bid.bid_kw,
        "bid_normal_fit_kw": None if b.normal_fit is None else b.normal_fit.bid_kw,
        "expected_profit_per_h": b.bid.expected_profit,
    }


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
    uncontrolled_cost_per_horizon, disaggregated_cost_per_horizon : over the horizon [currency].
    n_evs : EVs scheduled (reachable targets). n_dropped : EVs left out (targets out of reach).
    solver_requested : markets.schedule_solver. horizon_h : the horizon the costs cover [h].
    currency : the scenario's currency.
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

    def summary(self) -> dict[str, Any]:
        """Headline figures (JSON-ready). ``solver`` is the one that answered the per-EV LP; when it differs
        from ``solver_requested``, ``solver_fallback_reason`` says why."""
        return {
            "currency": self.currency,
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
            "solver_fallback_reason": self.individual.fallback_reason,
            "solver_note": self.individual.solver_note,
            "aggregate_solver": self.aggregate.solver,
        }


def _cost(p_kw: npt.ArrayLike, price: FloatArray, dt_h: float, deg: float) -> float:
    p = np.asarray(p_kw, dtype=float)
    total = p.sum(axis=1) if p.ndim == 2 else p
    dis = -np.clip(p, None, 0).sum(axis=1) if p.ndim == 2 else -np.clip(p, None, 0)
    return float((total * price).sum() * dt_h / 1000 + deg * dis.sum() * dt_h / 1000)


def run_schedule_analysis(
    fleet: Fleet, baseline: SocResult, spec: MarketsSpec, time: TimeGrid, seed: int = 0, currency: str = "USD"
) -> ScheduleAnalysis:
    """Individual and aggregate schedules of the EVs with reachable targets, under the site import cap (a
    seeded sample of ``schedule_max_evs`` of them for larger fleets); costs over the horizon in ``currency``."""
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
        uncontrolled_cost_per_horizon=_cost(unc.p_kw, price, time.dt_h, spec.degradation_per_mwh),
        disaggregated_cost_per_horizon=_cost(real.p_kw, price, time.dt_h, spec.degradation_per_mwh),
        n_evs=part.n,
        n_dropped=feasible_drop(fleet),
        solver_requested=spec.schedule_solver,
        horizon_h=time.horizon_h,
        currency=currency,
    )


@dataclass(frozen=True)
class RobustAnalysis:
    """Robust schedules for several radii.

    Attributes
    ----------
    omegas : radii (nominal first when a violation probability is given). results : the schedules.
    rates_mc : violation rates on ``n_mc_days`` Gaussian days N(mu, Sigma), per radius.
    rates_observed : with weather uncertainty, the same on the observed forecast errors of the weather year
    (in sample: they also gave mu and Sigma); empty otherwise. promised : the violation probability the
    radius bound promises at each radius. violation_prob : the target probability (None: radii given).
    radius_bound : the bound's name. uncertainty : 'weather' or 'synthetic'. source, forecast : in words.
    mu_kw, sd_kw : the net-load mean and sd per step [kW]. cap_kw : the import cap [kW]. n_dims : dimensions
    of the uncertainty (rank of Sigma) [-]. horizon_h [h]. currency.
    """

    omegas: tuple[float, ...]
    results: tuple[RobustResult, ...]
    rates_mc: tuple[ViolationRates, ...]
    rates_observed: tuple[ViolationRates, ...]
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

    @property
    def violation_rate(self) -> tuple[float, ...]:
        """Monte Carlo rate of the event the bound promises (a day with any violation for 'chi2', the worst
        single constraint for 'cantelli'), per radius [-]."""
        return tuple(_promised_event_rate(self.radius_bound, r) for r in self.rates_mc)

    def summary(self) -> dict[str, Any]:
        """Expected cost, promised and measured violation rates and solve time per radius (JSON-ready)."""
        radii = {}
        for i, (o, r, v) in enumerate(zip(self.omegas, self.results, self.rates_mc, strict=True)):
            row: dict[str, Any] = {
                "omega": o,
                "expected_cost_per_horizon": r.cost_per_horizon,
                "violation_prob_promised": self.promised[i],
                "violation_rate_mc": _promised_event_rate(self.radius_bound, v),
                "violation_rate_mc_any_day": v.any_day,
                "cap_violation_rate_mc_day": v.cap_day,
                "violation_rate_mc_max_constraint": v.max_constraint,
                "solve_s": r.solve_s,
                "solver": r.solver,
                "solver_note": r.solver_note,
            }
            if self.rates_observed:
                row["violation_rate_observed"] = _promised_event_rate(self.radius_bound, self.rates_observed[i])
            radii[f"omega_{o:.4g}"] = row
        mc = self.rates_mc[0]
        return {
            "currency": self.currency,
            "horizon_h": self.horizon_h,
            "uncertainty": self.uncertainty,
            "source": self.source,
            "forecast": self.forecast,
            "radius_bound": self.radius_bound,
            "promised_event": RADIUS_BOUNDS[self.radius_bound][2],
            "violation_prob": self.violation_prob,
            "n_dims": self.n_dims,
            "import_cap_kw": self.cap_kw,
            "mc_days": mc.n_days,
            "mc_sampling_sd": 0.5 / float(np.sqrt(mc.n_days)),
            "observed_days": self.rates_observed[0].n_days if self.rates_observed else 0,
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
    results, rates, observed_rates = [], [], []
    rng = np.random.default_rng([seed, 41])
    for om in omegas:
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
        results.append(r)
        z = rng.standard_normal((5000, r.n_dims))
        args = (r, mu, cap, env.p_min_kw, env.p_max_kw, e_lo, e_up, e0, time.dt_h)
        rates.append(calc_violation_rates(*args, z))
        if observed is not None:
            observed_rates.append(calc_violation_rates(*args, calc_standardised_errors(r, observed)))
    return RobustAnalysis(
        omegas=omegas,
        results=tuple(results),
        rates_mc=tuple(rates),
        rates_observed=tuple(observed_rates),
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
    )
