"""The report's markets section: TOU vs RTP, Stackelberg pricing, the bid, schedules, the robust schedule."""

from __future__ import annotations

from typing import Any

from v2gtwin.report.figures import Clock, fig_bid, fig_market, fig_robust, fig_schedule, to_png_base64
from v2gtwin.report.html_parts import figure_html, table_html
from v2gtwin.report.network_services import (
    ignores_network_note,
    network_schedule_note,
    network_schedule_rows,
    secure_first,
    secure_label,
)
from v2gtwin.report.sections_services import path_verdict_rows
from v2gtwin.report.surprises import robust_vs_per_ev, why_html
from v2gtwin.study_result import StudyResult

__all__ = ["markets_section"]


def markets_section(result: StudyResult) -> str:
    mk, spec, fl = result.markets, result.scenario.markets, result.fleet
    assert mk is not None and fl is not None  # render_html calls it only then
    cur = result.scenario.currency
    s = mk.summary()
    m = s["market"]
    rows = [
        (f"{k.replace('_', ' ')} [{cur}/day]", f"{m['rtp'][k]:,.0f}", f"{m['tou'][k]:,.0f}")
        for k in (
            "consumer_surplus_per_day",
            "producer_surplus_per_day",
            "v2g_surplus_per_day",
            "retailer_surplus_per_day",
            "welfare_per_day",
        )
    ]
    rows.append((f"deadweight loss of TOU [{cur}/day]", "", f"{m['deadweight_loss_per_day']:,.0f}"))
    st, bd, sc = s["stackelberg"], s["bid"], s["schedule"]
    blind = "" if s.get("network_schedule") is None else " fleet-wide, network-blind"
    ch, dis = st["charge"], st["discharge"]
    nfit = "-" if bd["bid_normal_fit_kw"] is None else f"{bd['bid_normal_fit_kw']:,.0f}"

    def _price(d: dict[str, Any]) -> str:
        return f"no trade: {d['no_trade']}" if d["price_per_kwh"] is None else f"{d['price_per_kwh']:.4f}"

    other = [
        (f"Stackelberg: optimal charging price [{cur}/kWh]", _price(ch)),
        (
            f"... energy sold [kWh] / aggregator profit [{cur}/day]",
            f"{ch['energy_kwh']:,.0f} / {ch['profit_per_day']:,.1f}",
        ),
        (f"Stackelberg: optimal V2G buy-back price [{cur}/kWh]", _price(dis)),
        (
            f"... energy bought [kWh] / aggregator profit [{cur}/day]",
            f"{dis['energy_kwh']:,.0f} / {dis['profit_per_day']:,.1f}",
        ),
        (
            f"Regulation bid b* ({bd['availability_kind']}){secure_label(bd, ('bid',))} [kW]",
            secure_first(bd, ("bid",)),
        ),
        (f"... normal fit{', unconstrained' if secure_label(bd, ('bid',)) else ''} [kW]", nfit),
        ("... critical fractile p/(p+λ)", f"{bd['fractile']:.3f}"),
        (
            f"... expected profit{secure_label(bd, ('expected_profit',), 'per_h')} [{cur}/h]",
            secure_first(bd, ("expected_profit",), "per_h", ",.1f"),
        ),
        *path_verdict_rows({"Regulation bid": bd}),
        *network_schedule_rows(s.get("network_schedule"), cur),
        (f"Schedule{blind}: EVs scheduled (left out: target out of reach)", f"{sc['n_evs']:,} ({sc['n_dropped']})"),
        (
            f"... cost uncontrolled / per-EV LP{blind} [{cur} per {sc['horizon_h']:g} h]",
            f"{sc['uncontrolled_cost_per_horizon']:,.1f} / {sc['individual_cost_per_horizon']:,.1f}",
        ),
        (
            f"... virtual battery{blind}: outer bound / inner (realised by the EVs) [{cur} per {sc['horizon_h']:g} h]",
            f"{sc['aggregate_cost_per_horizon']:,.1f} / {sc['disaggregated_cost_per_horizon']:,.1f}",
        ),
        (
            f"... inner − outer: the price of the disaggregation guarantee [{cur} per {sc['horizon_h']:g} h]",
            "-" if sc.get("inner_outer_gap_per_horizon") is None else f"{sc['inner_outer_gap_per_horizon']:,.1f}",
        ),
        ("... inner plan's disaggregation tracking error [kWh]", f"{sc['tracking_error_kwh']:,.3g}"),
    ]
    rb = s["robust"]
    rob = [_robust_row(v) for v in rb["radii"].values()]
    none_note = (
        " No radius is feasible: no schedule holds the import cap for the whole uncertainty set at any of them."
        if rb["n_radii_feasible"] == 0
        else ""
    )
    return (
        "<h2>Markets and scheduling</h2><h3>Time-of-use against real-time pricing</h3>"
        + table_html(("", "RTP", "TOU"), rows)
        + f'<p class="muted">24 hourly periods, {spec.demand_kind} demand (elasticity {spec.elasticity:g} at '
        f"{spec.p_ref_per_mwh:g} {cur}/MWh, peak {spec.peak_demand_mw:g} MW), merit order "
        f"{list(spec.gen_capacity_mw)} MW at {list(spec.gen_cost_per_mwh)} {cur}/MWh, the fleet's V2G offer "
        f"(EVs plugged in at {m['v2g_offer_hour']:g} h) at {spec.degradation_per_mwh:g} {cur}/MWh. TOU peak "
        f"block {spec.tou_peak_start_hour}-{spec.tou_peak_end_hour} h at the quantity-weighted RTP price.</p>"
        + figure_html(
            to_png_base64(fig_market(mk, cur)), "Supply and demand in the peak hour; prices and V2G over the day."
        )
        + "<h3>Aggregator pricing, bids and schedules</h3>"
        + ignores_network_note(result)
        + table_html(("quantity", "value"), other)
        + network_schedule_note(s.get("network_schedule"))
        + figure_html(to_png_base64(fig_bid(mk, cur)), "Expected profit of regulation bids; the critical-fractile bid.")
        + figure_html(
            to_png_base64(fig_schedule(fl, mk, cur, Clock.of(result.scenario.time))),
            f"Cost-optimal day-ahead schedules (LP, solver: {sc['solver']})"
            + ("; black: the network-secure schedule sold." if mk.network_schedule is not None else "."),
        )
        + "<h3>Robust schedule under ellipsoidal uncertainty</h3>"
        + table_html(
            (
                "radius",
                f"expected cost [{cur} per {rb['horizon_h']:g} h]",
                "violation: promised (at most)",
                "violation: Monte Carlo",
            ),
            rob,
        )
        + f'<p class="muted">Uncertainty: {rb["source"]}; forecast: {rb["forecast"]}. Radius bound '
        f"{rb['radius_bound']} ({rb['promised_event']}); Monte Carlo on {rb['mc_days']:,} Gaussian days."
        f"{none_note}</p>"
        + figure_html(
            to_png_base64(fig_robust(mk)), "Cost of robustness and Monte Carlo violation rate (SOCP, Clarabel)."
        )
        + why_html(robust_vs_per_ev(result))
    )


def _robust_row(v: dict[str, Any]) -> tuple[str, str, str, str]:
    """A radius of the robust summary as a table row; an infeasible one names the solver's reason."""
    pr = v["violation_prob_promised_at_most"]
    promise = "no promise" if pr is None else f"at most {pr:.1%}"
    if not v["feasible"]:
        return (f"Ω = {v['omega']:.3g}", f"infeasible: {v['infeasible_reason']}", promise, "-")
    return (f"Ω = {v['omega']:.3g}", f"{v['expected_cost_per_horizon']:,.1f}", promise, f"{v['violation_rate_mc']:.1%}")
