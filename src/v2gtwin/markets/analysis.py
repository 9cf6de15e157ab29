"""Market analyses a study runs, each one function from the fleet and the scenario (the scheduling analyses are
in ``markets.scheduling``)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from v2gtwin.errors import DataError
from v2gtwin.fleet import Fleet, SocResult, synthesize_fleet
from v2gtwin.grid.profiles import RTS79_WINTER_WEEKDAY_PCT, calc_daily_profile
from v2gtwin.grid.secure import SECURE_RULE, NetworkLimits, calc_secure_band, calc_secure_change, summarize_gap
from v2gtwin.markets.newsvendor import Availability, BidResult, calc_expected_profit, solve_newsvendor
from v2gtwin.markets.stackelberg import StackelbergResult, solve_stackelberg, solve_stackelberg_discharge
from v2gtwin.markets.welfare import Demand, MarketResult, SupplyStack, run_market_comparison
from v2gtwin.scenario import MarketsSpec, Scenario, TimeGrid

__all__ = [
    "BidAnalysis",
    "StackelbergAnalysis",
    "calc_charging_followers",
    "calc_discharge_followers",
    "calc_market_demand",
    "calc_price_curve",
    "calc_regulation_headroom_kw",
    "calc_regulation_headroom_secure_kw",
    "calc_v2g_offer",
    "calc_v2g_offer_secure",
    "gate_bid_by_path",
    "run_bid_analysis",
    "run_market_analysis",
    "run_stackelberg_analysis",
    "summarize_bid",
    "summarize_market",
    "summarize_stackelberg",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]


def calc_price_curve(spec: MarketsSpec, time: TimeGrid) -> FloatArray:
    """Energy price per step [currency/MWh]: the scenario's own prices (``markets.price_csv``) when it names a
    file, else base + (peak - base) x the squared normalised RTS-79 load shape (a synthetic day-ahead curve)."""
    if spec.price_csv is not None:
        from v2gtwin.data_in import read_price_csv

        return np.asarray(read_price_csv(spec.price_csv, time), dtype=np.float64)
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


def calc_v2g_offer_secure(fleet: Fleet, spec: MarketsSpec, time: TimeGrid, limits: NetworkLimits) -> tuple[float, int]:
    """The part of the V2G offer's power [kW] the network carries, and the buses whose export limit binds [-].

    Each plugged EV's offer (``v2g_share`` x its discharge power) is an export from idle at ``v2g_offer_hour``;
    per bus the export stops at the operating envelope's export limit of that step, shared pro rata among the
    bus's EVs (:func:`v2gtwin.grid.secure.calc_secure_change`): ``sum_b min(v2g_share P_dis,b, E_b)``. The
    offer's energy is not bounded by the envelope (it limits power) and is left as it is.
    """
    step = time.step_at(spec.v2g_offer_hour, "markets.v2g_offer_hour")
    plugged = (fleet.arrival_step <= step) & (step < fleet.departure_step)
    dp = -spec.v2g_share * np.where(plugged, fleet.p_discharge_max_kw, 0.0)
    sc = calc_secure_change(limits, step, np.zeros(fleet.n), dp)
    offer = calc_v2g_offer(fleet, spec, time)[0] if sc.n_bus_binding == 0 else -sc.total_secure_kw
    return offer, sc.n_bus_binding


def calc_v2g_offer_cost_per_mwh(
    fleet: Fleet, spec: MarketsSpec, time: TimeGrid, degradation_per_mwh: float | npt.ArrayLike | None = None
) -> float:
    """The V2G offer's price: the degradation cost of the EVs plugged in at ``v2g_offer_hour`` averaged with
    their discharge power as weights (``degradation_per_mwh`` one cost or one per EV; None: the flat
    ``markets.degradation_per_mwh``) [currency/MWh]."""
    if degradation_per_mwh is None:
        return float(spec.degradation_per_mwh)
    deg = np.broadcast_to(np.asarray(degradation_per_mwh, dtype=float), (fleet.n,))
    step = time.step_at(spec.v2g_offer_hour, "markets.v2g_offer_hour")
    w = np.where((fleet.arrival_step <= step) & (step < fleet.departure_step), fleet.p_discharge_max_kw, 0.0)
    return float((deg * w).sum() / w.sum()) if w.sum() > 0 else float(deg.mean()) if fleet.n else 0.0


def run_market_analysis(
    fleet: Fleet,
    baseline: SocResult,
    spec: MarketsSpec,
    time: TimeGrid,
    limits: NetworkLimits | None = None,
    degradation_per_mwh: float | npt.ArrayLike | None = None,
) -> dict[str, Any]:
    """TOU vs RTP over 24 hourly periods with the fleet's V2G offer in the supply stack.

    Returns {'rtp', 'tou', 'deadweight_loss', 'demand', 'supply', 'v2g_offer_hour', 'v2g_offer_clock'} (the
    clock as "HH:MM", :meth:`TimeGrid.clock_label`); money over the day. With ``limits`` (the network's
    operating envelopes) also 'v2g_offer_secure_kw', 'v2g_offer_n_bus_binding' and 'secure_rule'
    (:func:`calc_v2g_offer_secure`); the market itself is cleared with the unconstrained offer. The offer is
    priced at its EVs' degradation cost (:func:`calc_v2g_offer_cost_per_mwh`), stored as
    ``v2g_offer_price_per_mwh`` in :func:`summarize_market`."""
    demand = calc_market_demand(spec)
    v2g_p, v2g_e = calc_v2g_offer(fleet, spec, time)
    v2g_cost = calc_v2g_offer_cost_per_mwh(fleet, spec, time, degradation_per_mwh)
    supply = SupplyStack(
        np.asarray(spec.gen_capacity_mw) * 1000.0,
        np.asarray(spec.gen_cost_per_mwh, float),
        v2g_p_max_kw=v2g_p,
        v2g_energy_kwh=v2g_e,
        v2g_cost_per_mwh=v2g_cost,
    )
    hours = np.arange(24)
    blocks = ((hours >= spec.tou_peak_start_hour) & (hours < spec.tou_peak_end_hour)).astype(int)
    out = run_market_comparison(demand, supply, blocks)
    out["demand"] = demand
    out["supply"] = supply
    out["v2g_offer_hour"] = spec.v2g_offer_hour
    out["v2g_offer_clock"] = time.clock_label(time.step_at(spec.v2g_offer_hour, "markets.v2g_offer_hour"))
    if limits is not None:
        out["v2g_offer_secure_kw"], out["v2g_offer_n_bus_binding"] = calc_v2g_offer_secure(fleet, spec, time, limits)
        out["secure_rule"] = SECURE_RULE
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
    out["v2g_offer_clock"] = market.get("v2g_offer_clock")
    out["v2g_offer_kw"] = float(np.max(supply.v2g_p_max_kw))
    out["v2g_energy_kwh"] = float(supply.v2g_energy_kwh)
    out["v2g_offer_price_per_mwh"] = float(supply.v2g_cost_per_mwh)
    # V2G energy the market takes over the day under RTP (24 hourly periods: kW x 1 h) [kWh].
    out["v2g_sold_kwh"] = float(np.sum(market["rtp"].v2g_kw))
    if "v2g_offer_secure_kw" in market:
        out |= summarize_gap(out["v2g_offer_kw"], market["v2g_offer_secure_kw"], "v2g_offer")
        out["v2g_offer_n_bus_binding"] = int(market["v2g_offer_n_bus_binding"])
        out["secure_rule"] = market["secure_rule"]
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
    fleet: Fleet, spec: MarketsSpec, rng: np.random.Generator, degradation_per_mwh: FloatArray | None = None
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Discharging followers (reservation [currency/kWh], gamma [currency/kWh^2], y_max [kWh]): the V2G-capable
    EVs with more than 0.1 kWh (grid side) between their target and their SoC ceiling; ``y_max`` that energy
    after discharge losses, reservation prices uniform on [0.2 v, 0.6 v] (v the aggregator's resale value) and
    ``gamma`` so that each offers its whole energy at a price of about v (x U(0.6, 1.4), at least 5 % of v per
    ``y_max``). ``degradation_per_mwh``: per EV of ``fleet`` (None: the flat ``markets.degradation_per_mwh``)."""
    spare = np.clip(fleet.soc_max_pu - fleet.soc_target_pu, 0, None) * fleet.capacity_kwh * fleet.eta_discharge
    sells = (spare > 0.1) & (fleet.p_discharge_max_kw > 0)
    y_max = spare[sells]
    v = spec.discharge_value_per_kwh
    d = _follower_degradation_per_kwh(fleet, spec, sells, degradation_per_mwh)
    res = rng.uniform(0.2 * v, 0.6 * v, y_max.size)
    gamma = np.maximum(v - res - d, 0.05 * v) / y_max * rng.uniform(0.6, 1.4, y_max.size)
    return res, gamma, y_max


def _follower_degradation_per_kwh(
    fleet: Fleet, spec: MarketsSpec, sells: npt.NDArray[np.bool_], degradation_per_mwh: FloatArray | None
) -> FloatArray:
    """Each discharging follower's degradation cost [currency/kWh]."""
    if degradation_per_mwh is None:
        return np.full(int(sells.sum()), spec.degradation_per_mwh / 1000.0)
    return np.broadcast_to(np.asarray(degradation_per_mwh, dtype=float), (fleet.n,))[sells] / 1000.0


def run_stackelberg_analysis(
    fleet: Fleet, spec: MarketsSpec, seed: int, degradation_per_mwh: float | npt.ArrayLike | None = None
) -> StackelbergAnalysis:
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
    deg = None if degradation_per_mwh is None else np.broadcast_to(np.asarray(degradation_per_mwh, float), (fleet.n,))
    r, g, ym = calc_discharge_followers(fleet, spec, np.random.default_rng([seed, 22]), deg)
    spare = np.clip(fleet.soc_max_pu - fleet.soc_target_pu, 0, None) * fleet.capacity_kwh * fleet.eta_discharge
    v = spec.discharge_value_per_kwh
    d = _follower_degradation_per_kwh(fleet, spec, (spare > 0.1) & (fleet.p_discharge_max_kw > 0), deg)
    offer = float(np.clip((v - r - d) / g, 0, ym).sum())
    if r.size == 0:
        notes["discharge"] = "no V2G-capable EV of the fleet holds energy above its target"
    elif offer <= 0:
        notes["discharge"] = (
            f"no EV sells at markets.discharge_value_per_kwh = {v:g} (every reservation price plus degradation "
            f"({float(d.min()) if d.size else 0.0:g} to {float(d.max()) if d.size else 0.0:g}/kWh) is above it)"
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
    event_clock : the same as "HH:MM" (:meth:`TimeGrid.clock_label`; None when the availability was given).
    reg_price_per_mw, reg_penalty_per_mw : payment and penalty [currency per MW and hour].
    samples_secure_kw : the same days' headroom the network carries (None without a network bound) [kW].
    bid_secure : the optimal bid under the empirical distribution of ``samples_secure_kw`` (None without) .
    secure_rule : the rule of the network-secure figures (empty without a network bound).
    path_verdict : the command path's verdict on regulation (``PathAnalysis.verdict`` of
        :mod:`v2gtwin.cyber.path_analysis`; None: no path checked). When it is not deliverable, ``bid``
        (``normal_fit``, ``bid_secure``) are 0 kW and ``bid_if_deliverable`` keeps the bid the path forbids.
    degradation_per_mwh : the battery's cost per MWh discharged while regulating [currency/MWh] (0: none).
    reg_discharge_kwh_per_kw_h : energy discharged per kW of regulation capacity and hour of a RegD-like signal
    (the mean of its negative part, :func:`v2gtwin.grid.agc.generate_regd_signal`) [kWh/(kW h)].
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
    event_clock: str | None = None
    degradation_per_mwh: float = 0.0
    reg_discharge_kwh_per_kw_h: float = 0.0
    samples_secure_kw: FloatArray | None = None
    bid_secure: BidResult | None = None
    secure_rule: str = ""
    path_verdict: dict[str, Any] | None = None
    bid_if_deliverable: BidResult | None = None


def calc_regulation_headroom_kw(fleet: Fleet, step: int) -> float:
    """Symmetric regulation headroom [kW] of the EVs plugged in at ``step``: the sum of each one's smaller of
    its charge and discharge power limits (idle EVs can move both ways by that much)."""
    plugged = (fleet.arrival_step <= step) & (step < fleet.departure_step)
    return float(np.minimum(fleet.p_charge_max_kw, fleet.p_discharge_max_kw)[plugged].sum())


def calc_regulation_headroom_secure_kw(fleet: Fleet, step: int, limits: NetworkLimits) -> float:
    """The part of :func:`calc_regulation_headroom_kw` [kW] the network carries both ways at ``step``: each
    plugged EV's band (the smaller of its charge and discharge limits, from idle) clipped per bus to the
    operating envelope (:func:`v2gtwin.grid.secure.calc_secure_band`). EV ``i`` of ``fleet`` sits where
    ``limits`` places EV ``i``."""
    plugged = (fleet.arrival_step <= step) & (step < fleet.departure_step)
    band = np.where(plugged, np.minimum(fleet.p_charge_max_kw, fleet.p_discharge_max_kw), 0.0)
    secure, n_bind = calc_secure_band(limits, step, np.zeros(fleet.n), band)
    return calc_regulation_headroom_kw(fleet, step) if n_bind == 0 else float(secure.sum())


def calc_regulation_discharge_kwh_per_kw_h(seed: int, hours: float = 24.0) -> float:
    """Energy a regulation resource discharges per kW of capacity and hour: the mean of the negative part of a
    seeded RegD-like signal (:func:`v2gtwin.grid.agc.generate_regd_signal`, 2-s steps over ``hours``)
    [kWh/(kW h)]."""
    from v2gtwin.grid.agc import generate_regd_signal

    s = generate_regd_signal(round(hours * 1800), np.random.default_rng([seed, 35]))
    return float(np.clip(-s, 0.0, None).mean())


def run_bid_analysis(
    scenario: Scenario,
    availability: Availability | None = None,
    *,
    secure_headroom: Callable[[Fleet, int], float] | None = None,
    secure_rule: str = SECURE_RULE,
    degradation_per_mwh: float = 0.0,
) -> BidAnalysis:
    """The newsvendor regulation bid at ``markets.reg_price_per_mw`` and ``reg_penalty_per_mw``.

    Without ``availability``: the empirical availability of ``bid_days`` seeded fleet days (symmetric headroom
    of the plugged EVs at ``frequency.event_hour``, a clock time in the horizon), with a normal fit beside it.
    With ``secure_headroom(fleet, step)`` [kW] (the part of a day's symmetric headroom the network carries,
    e.g. :func:`v2gtwin.grid.secure.calc_secure_band` summed), the same days give a network-secure
    availability and its own optimal bid (``secure_rule`` names the rule behind it).

    With ``degradation_per_mwh`` > 0 the capacity delivered costs battery wear: a kW delivered for an hour
    discharges ``u`` kWh (:func:`calc_regulation_discharge_kwh_per_kw_h`), so with ``c = degradation x u`` the
    hour's profit ``p b - lambda E(b - A)+ - c E min(b, A)`` is the newsvendor's with ``p - c`` and
    ``lambda - c`` (``min(b, A) = b - (b - A)+``): the bid is ``F^-1((p - c) / (p + lambda - 2 c))``, and no
    bid at all when ``c >= p``.
    """
    spec, time = scenario.markets, scenario.time
    u = calc_regulation_discharge_kwh_per_kw_h(scenario.seed) if degradation_per_mwh > 0 else 0.0
    wear = degradation_per_mwh / 1000.0 * u  # per kW and hour
    p, lam = spec.reg_price_per_mw / 1000.0 - wear, spec.reg_penalty_per_mw / 1000.0 - wear  # per kW
    if p <= 0:
        raise DataError(
            f"markets.reg_price_per_mw: {spec.reg_price_per_mw:g} does not pay the battery wear of regulating "
            f"({wear * 1000:g} per MW and hour at a degradation cost of {degradation_per_mwh:g} per MWh); raise it"
        )
    if lam <= 0:
        raise DataError(
            f"markets.reg_penalty_per_mw: {spec.reg_penalty_per_mw:g} is below the battery wear of regulating "
            f"({wear * 1000:g} per MW and hour): a shortfall would cost less than delivering; raise it"
        )
    samples = np.zeros(0)
    normal_fit = None
    event_hour = event_clock = None
    samples_secure: FloatArray | None = None
    if availability is None:
        event_hour = scenario.frequency.event_hour
        step = time.step_at(scenario.frequency.event_hour, "frequency.event_hour")
        event_clock = time.clock_label(step)
        days = [
            synthesize_fleet(
                scenario.fleet, time, scenario.feeder.n_bus, np.random.default_rng([scenario.seed, 31, day])
            )
            for day in range(spec.bid_days)
        ]
        samples = np.asarray([calc_regulation_headroom_kw(f, step) for f in days])
        if secure_headroom is not None:
            samples_secure = np.asarray([secure_headroom(f, step) for f in days], dtype=float)
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
    secure: dict[str, Any] = {}
    if samples_secure is not None:
        secure = {
            "samples_secure_kw": samples_secure,
            "bid_secure": solve_newsvendor(Availability("empirical", samples_kw=samples_secure), p, lam),
            "secure_rule": secure_rule,
        }
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
        event_clock,
        **secure,
        degradation_per_mwh=float(degradation_per_mwh),
        reg_discharge_kwh_per_kw_h=u,
    )


def gate_bid_by_path(b: BidAnalysis, verdict: dict[str, Any] | None) -> BidAnalysis:
    """The bid as the command path allows it: unchanged (the verdict recorded) when regulation is deliverable
    over the path, else no bid (0 kW, expected profit 0: nothing is sold, nothing is owed) with the
    forbidden bid kept as ``bid_if_deliverable``."""
    if verdict is None:
        return b
    if verdict["deliverable"]:
        return dataclasses.replace(b, path_verdict=verdict)
    none = BidResult(0.0, b.bid.fractile, 0.0)
    return dataclasses.replace(
        b,
        bid=none,
        normal_fit=None if b.normal_fit is None else none,
        bid_secure=None if b.bid_secure is None else none,
        path_verdict=verdict,
        bid_if_deliverable=b.bid,
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
    return (
        {
            "availability_kind": av.kind,
            "availability_source": b.source,
            "availability_mean_kw": mean,
            "availability_sd_kw": sd,
            "event_hour": b.event_hour,
            "event_clock": b.event_clock,
            "n_days": int(b.samples_kw.size) if b.samples_kw.size else None,
            "reg_price_per_mw": b.reg_price_per_mw,
            "reg_penalty_per_mw": b.reg_penalty_per_mw,
            "fractile": b.bid.fractile,
            "bid_kw": b.bid.bid_kw,
            "bid_normal_fit_kw": None if b.normal_fit is None else b.normal_fit.bid_kw,
            "expected_profit_per_h": b.bid.expected_profit,
            "degradation_per_mwh": b.degradation_per_mwh,
            "reg_discharge_kwh_per_kw_h": b.reg_discharge_kwh_per_kw_h,
            # Battery wear per MW of regulation delivered for an hour [currency/(MW h)].
            "reg_wear_per_mw": b.degradation_per_mwh * b.reg_discharge_kwh_per_kw_h,
        }
        | _summarize_bid_secure(b, mean)
        | _summarize_bid_path(b)
    )


def _summarize_bid_path(b: BidAnalysis) -> dict[str, Any]:
    """The command path's verdict on regulation (empty when no path was checked)."""
    if b.path_verdict is None:
        return {}
    out: dict[str, Any] = {"path": b.path_verdict}
    if b.bid_if_deliverable is not None:
        out["path"] = b.path_verdict | {
            "note": "not deliverable over this path: not sold",
            "bid_if_deliverable_kw": b.bid_if_deliverable.bid_kw,
            "expected_profit_if_deliverable_per_h": b.bid_if_deliverable.expected_profit,
        }
    return out


def _summarize_bid_secure(b: BidAnalysis, mean_kw: float) -> dict[str, Any]:
    """The network-secure availability and bid beside the unconstrained ones (empty without them)."""
    if b.samples_secure_kw is None or b.bid_secure is None:
        return {"secure_rule": b.secure_rule} if b.secure_rule else {}
    return (
        summarize_gap(mean_kw, float(np.mean(b.samples_secure_kw)), "availability_mean")
        | summarize_gap(b.bid.bid_kw, b.bid_secure.bid_kw, "bid")
        | summarize_gap(b.bid.expected_profit, b.bid_secure.expected_profit, "expected_profit", "per_h")
        | {"secure_rule": b.secure_rule}
    )
