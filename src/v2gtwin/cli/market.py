"""`v2gtwin market`, `bid` and `schedule`: welfare, pricing, regulation bids, day-ahead schedules."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from v2gtwin.cli._common import (
    JsonOpt,
    ScenarioOpt,
    _emit,
    _fleet_baseline,
    app,
    load_scenario_with,
)


def _degradation(scen, fleet, base):  # type: ignore[no-untyped-def]
    """The battery's cost per MWh discharged as the study prices it: per EV, the fleet's one cost, its source
    (:func:`v2gtwin.battery.cost.degradation_cost_per_mwh`; [battery] degradation_cost)."""
    from v2gtwin.battery.cost import degradation_cost_per_mwh
    from v2gtwin.markets.scheduling import calc_fleet_degradation_per_mwh

    c = degradation_cost_per_mwh(scen, fleet, base.soc_pu)
    return c.per_ev_per_mwh, calc_fleet_degradation_per_mwh(fleet, c.per_ev_per_mwh), c.source


market_app = typer.Typer(help="Markets: TOU vs RTP welfare, Stackelberg aggregator pricing.", no_args_is_help=True)
app.add_typer(market_app, name="market")


@market_app.command("compare")
def market_compare(scenario: ScenarioOpt = None, json_out: JsonOpt = False) -> None:
    """TOU against RTP on the scenario's day: surpluses, welfare and the deadweight loss of TOU (per day)."""
    from v2gtwin.markets.analysis import run_market_analysis, summarize_market
    from v2gtwin.study_network import place_on_network

    scen, fleet, base = _fleet_baseline(scenario)
    fleet, limits = place_on_network(scen, fleet)
    deg, _, _ = _degradation(scen, fleet, base)
    market = run_market_analysis(fleet, base, scen.markets, scen.time, limits, deg)
    out = {"currency": scen.currency} | summarize_market(market)
    if not json_out:  # the hourly series only in --json
        for k in ("rtp", "tou"):
            out[k] = {kk: vv for kk, vv in out[k].items() if not isinstance(vv, list)}
    _emit(out, json_out)


@market_app.command("stackelberg")
def market_stackelberg(scenario: ScenarioOpt = None, json_out: JsonOpt = False) -> None:
    """The aggregator's profit-maximising prices for the scenario's EVs: charging it sells, V2G energy it buys
    back (exact breakpoint search)."""
    from v2gtwin.markets.analysis import run_stackelberg_analysis, summarize_stackelberg

    scen, fleet, base = _fleet_baseline(scenario)
    deg, _, _ = _degradation(scen, fleet, base)
    st = run_stackelberg_analysis(fleet, scen.markets, scen.seed, deg)
    _emit({"currency": scen.currency} | summarize_stackelberg(st), json_out)


@app.command("bid")
def bid(
    scenario: ScenarioOpt = None,
    price: Annotated[
        float | None, typer.Option("--price", min=0.0, help="Payment per MW delivered, per hour [currency].")
    ] = None,
    penalty: Annotated[
        float | None, typer.Option("--penalty", min=0.0, help="Penalty per MW short, per hour [currency].")
    ] = None,
    availability: Annotated[
        str | None,
        typer.Option(
            "--availability",
            help="Available capacity [kW] instead of the simulated fleet days: normal:MEAN,SD, lognormal:MEAN,SD, "
            "beta:MEAN,SD,SCALE or empirical:A1,A2,...",
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Newsvendor regulation bid b* = F^-1(p/(p+lambda)) on the fleet's simulated availability (or a given one)."""
    from v2gtwin.markets.analysis import run_bid_analysis, summarize_bid
    from v2gtwin.markets.newsvendor import parse_availability

    av = None if availability is None else parse_availability(availability, "--availability")
    changes: dict[str, Any] = {}
    if price is not None:
        changes["reg_price_per_mw"] = price
    if penalty is not None:
        changes["reg_penalty_per_mw"] = penalty
    scen = load_scenario_with(scenario, {"markets": changes} if changes else {})
    from v2gtwin.fleet import run_uncontrolled
    from v2gtwin.study import build_fleet

    fleet = build_fleet(scen)
    # The battery wear of regulating, priced as the study prices it (the study fleet's one cost).
    _, deg_fleet, _ = _degradation(scen, fleet, run_uncontrolled(fleet))
    if av is None and scen.network is not None:  # the simulated availability, also within the network
        from v2gtwin.study_network import place_on_network, run_bid_analysis_within

        _, limits = place_on_network(scen, fleet)
        result = run_bid_analysis_within(scen, limits, deg_fleet)
    else:
        result = run_bid_analysis(scen, av, degradation_per_mwh=deg_fleet)
    # As the study: regulation is not sold when the scenario's command path misses its deadline too often.
    from v2gtwin.cyber.path_analysis import SERVICE_REGULATION
    from v2gtwin.cyber.path_study import run_path_study
    from v2gtwin.markets.analysis import gate_bid_by_path

    result = gate_bid_by_path(result, run_path_study(scen).verdict(SERVICE_REGULATION))
    _emit({"currency": scen.currency} | summarize_bid(result), json_out)


@app.command("schedule")
def schedule(
    scenario: ScenarioOpt = None,
    robust: Annotated[
        bool,
        typer.Option(
            "--robust",
            help="Also the robust SOCP (Clarabel) for each radius Omega of the scenario (implied when a violation "
            "probability is given).",
        ),
    ] = False,
    violation_prob: Annotated[
        float | None,
        typer.Option(
            "--violation-prob",
            help="With --robust (implied): the violation probability to guarantee, in (0, 1); the radius comes "
            "from markets.robust_radius_bound. Overrides markets.robust_violation_prob.",
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Day-ahead cost-optimal schedule of every EV (an LP: v2gtwin's structure-exploiting interior point by
    default, HiGHS with a warning when it does not converge; markets.schedule_solver) and the virtual-battery
    versions on the outer (a lower bound) and the inner (exactly disaggregable) virtual battery (HiGHS)."""
    from v2gtwin.markets.scheduling import run_robust_analysis, run_schedule_analysis

    changes = {} if violation_prob is None else {"markets": {"robust_violation_prob": violation_prob}}
    scen, fleet, base = _fleet_baseline(scenario, changes)
    deg, _, source = _degradation(scen, fleet, base)
    sc = run_schedule_analysis(
        fleet,
        base,
        scen.markets,
        scen.time,
        scen.seed,
        scen.currency,
        degradation_per_mwh=deg,
        degradation_source=source,
    )
    out: dict[str, Any] = {"currency": scen.currency} | sc.summary()  # stated once, at the top
    network_sched = None
    chain = None  # the study's steps, asked of its graph (each runs once, with what it needs) when used
    if scen.network is not None and scen.network.secure:
        # The schedule sold within the network, as the study's schedule step computes it (results.json's
        # markets.network_schedule); placing the EVs on feeders changes only their buses.
        from v2gtwin.study import StudyChain

        chain = StudyChain(scen)
        chain.get("network")
        chain.get("battery_cost")
        network_sched = chain.run_network_schedule(sc)
        if network_sched is not None:
            out["network_schedule"] = network_sched.summary()
    if robust or scen.markets.robust_violation_prob is not None:
        # The site is the feeder with the EVs charging on it, as in the study.
        from v2gtwin.study import StudyChain

        chain = chain or StudyChain(scen)
        chain.get("feeder")
        assert chain.feeder_fleet is not None and chain.base_load_ is not None
        site_load = chain.base_load_[0].sum(axis=1)
        rb = run_robust_analysis(chain.feeder_fleet, site_load, scen.markets, scen.time, scen.seed, scen.currency)
        out["robust"] = rb.summary()
        if not json_out:
            radii = out["robust"].pop("radii")
            for key, v in radii.items():
                out["robust"][key] = _radius_line(v)
    if json_out:
        out["p_total_kw"] = sc.individual.p_total_kw.tolist()
        if network_sched is not None:  # the schedule sold: network-secure, per step [kW]
            out["network_schedule"]["p_total_kw"] = network_sched.secure.p_ev_kw.sum(axis=1).tolist()
    _emit(out, json_out)


def _radius_line(v: dict[str, Any]) -> str:
    """One radius of the robust summary in words: an infeasible radius with the solver's reason; the promise
    as "at most" (or "no promise"), beside the measured rates."""
    pr = v["violation_prob_promised_at_most"]
    promise = "no violation promise" if pr is None else f"violation promised at most {pr:.2%}"
    if not v["feasible"]:
        return f"infeasible ({v['infeasible_reason']}); {promise}"
    seen = v.get("violation_rate_observed")
    return (
        f"expected cost {v['expected_cost_per_horizon']:,.1f}, {promise}, "
        f"Monte Carlo {v['violation_rate_mc']:.2%}" + ("" if seen is None else f", observed {seen:.2%}")
    )
