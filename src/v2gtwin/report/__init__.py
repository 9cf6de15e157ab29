"""The study report: one self-contained HTML file (figures embedded) and results.json.

Reads :class:`~v2gtwin.study.StudyResult` only.
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from v2gtwin import __version__
from v2gtwin.errors import V2GTwinError
from v2gtwin.grid.secure import SECURE_RULE, tabulate_secure_figures
from v2gtwin.jsonout import dumps_strict
from v2gtwin.report.battery_health import battery_health_section
from v2gtwin.report.compliance import compliance_section
from v2gtwin.report.cyber_path import cyber_path_section
from v2gtwin.report.figures import (
    fig_agc,
    fig_arrivals,
    fig_bid,
    fig_cascade,
    fig_cyber,
    fig_dispatch,
    fig_energy_envelope,
    fig_feeder_vmin,
    fig_frequency_event,
    fig_hosting,
    fig_market,
    fig_power_envelope,
    fig_regulation,
    fig_reserve_dr,
    fig_robust,
    fig_schedule,
    fig_soc,
    fig_voltage_profile,
    to_png_base64,
)
from v2gtwin.report.network_figures import fig_envelope_heatmap
from v2gtwin.report.network_section import (
    base_load_text,
    feeder_notes_part,
    grid_label,
    network_table_part,
    ratings_text,
)
from v2gtwin.report.network_services import (
    fmt_secure,
    ignores_network_note,
    network_battery_part,
    network_schedule_note,
    network_schedule_rows,
    secure_first,
    secure_label,
)
from v2gtwin.report.protection import protection_section
from v2gtwin.report.resilience import resilience_section
from v2gtwin.study import StudyResult
from v2gtwin.study_summary import summary_json

__all__ = ["prepare_out_dir", "render_html", "write_report"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:980px;margin:2em auto;
color:#222;line-height:1.45;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}.muted{color:#666;font-size:.9em}
img{max-width:100%;height:auto}figure{margin:1em 0}figcaption{color:#555;font-size:.9em}
"""

_SUMMARY_ROWS = (
    ("n_evs", "EVs", "{:,.0f}"),
    ("share_home", "share charging at home", "{:.1%}"),
    ("share_v2g", "share V2G-capable", "{:.1%}"),
    ("capacity_total_kwh", "battery capacity, total [kWh]", "{:,.0f}"),
    ("p_charge_total_kw", "charging power, total [kW]", "{:,.0f}"),
    ("p_discharge_total_kw", "discharging power, total [kW]", "{:,.0f}"),
    ("dwell_mean_h", "mean time plugged in [h]", "{:.2f}"),
    ("energy_need_total_kwh", "energy needed to reach targets [kWh]", "{:,.0f}"),
    ("energy_delivered_kwh", "energy delivered, uncontrolled [kWh]", "{:,.0f}"),
    ("energy_unmet_kwh", "energy unmet at departure, uncontrolled [kWh]", "{:,.1f}"),
    ("n_unmet", "EVs leaving below target, uncontrolled", "{:,.0f}"),
    ("n_infeasible", "EVs whose target is out of reach at full power", "{:,.0f}"),
    ("p_peak_kw", "peak of uncontrolled charging [kW]", "{:,.0f}"),
)


def _figure(fig_b64: str, caption: str) -> str:
    return (
        f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{fig_b64}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _fleet_section(result: StudyResult) -> str:
    f = result.fleet
    rows = "".join(
        f"<tr><td>{html.escape(label)}</td><td>{fmt.format(f.summary[key])}</td></tr>"
        for key, label, fmt in _SUMMARY_ROWS
        if key in f.summary
    )
    peak_clock = result.scenario.time.clock_label(int(f.summary.get("p_peak_step", 0))) if f.clock_h.size else "-"
    return (
        "<h2>Fleet</h2>"
        f"<table><tr><th>quantity</th><th>value</th></tr>{rows}</table>"
        f'<p class="muted">Uncontrolled charging peaks at {peak_clock} local time. The envelope is the '
        "sum of each plugged-in EV's power box and energy band (an outer approximation of the fleet's "
        "flexibility); the energy band's lower edge is the least stored energy from which every EV can still "
        "reach its target by departure.</p>"
        + _figure(to_png_base64(fig_arrivals(f)), "Arrivals and departures per step, and EVs plugged in.")
        + _figure(
            to_png_base64(fig_power_envelope(f)),
            "Uncontrolled aggregate charging against the feasible aggregate power range.",
        )
        + _figure(
            to_png_base64(fig_energy_envelope(f)),
            "Stored energy of the plugged-in EVs, uncontrolled, against the virtual battery's energy band.",
        )
        + _figure(to_png_base64(fig_soc(f)), "SoC at arrival and at departure under uncontrolled charging.")
    )


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _feeder_section(result: StudyResult) -> str:
    fd, fl = result.feeder, result.fleet
    spec = result.scenario.feeder
    s = fd.summary()
    fh = fd.fleet_hosting
    ts = fd.timeseries
    clock = result.scenario.time.clock_label
    rows = [
        ("lowest voltage, base load only [pu]", f"{s['v_min_base_pu']:.4f}"),
        (
            "lowest voltage with uncontrolled EV charging [pu]",
            f"{s['v_min_fleet_pu']:.4f} at bus {s['v_min_fleet_bus']}",
        ),
        (
            f"... with volt-var (curve {spec.voltvar_curve}) on the EV inverters [pu]",
            f"{s['v_min_voltvar_pu']:.4f}",
        ),
        (
            "fleet hosting: largest scaling of the uncontrolled charging",
            f"{fh.scale:.3f}" if math.isfinite(fh.scale) else "no limit found",
        ),
        (
            "... binding constraint",
            fh.binding
            if fh.binding_step < 0
            else f"{fh.binding} (at {clock(fh.binding_step)}, step {fh.binding_step})",
        ),
        (
            "node hosting capacity, lowest / median [kW]",
            f"{s['hosting_min_kw']:,.0f} / {s['hosting_median_kw']:,.0f}",
        ),
    ]
    if "hosting_voltvar_median_kw" in s:
        rows.append(("node hosting with volt-var, median [kW]", f"{s['hosting_voltvar_median_kw']:,.0f}"))
    d = fd.dispatch
    drows = [
        (p, f"{lo:,.1f}", f"{lo - d.losses_base_kwh:,.2f}", f"{e:,.1f}", f"{v:.4f}")
        for p, lo, e, v in zip(d.policies, d.losses_kwh, d.energy_kwh, d.v_min_pu, strict=True)
    ]
    return (
        f"<h2>Feeder: {html.escape(fd.name)} ({fd.n_bus} buses)</h2>"
        + _table(("quantity", "value"), rows)
        + f'<p class="muted">{base_load_text(result)} '
        "Exact AC power flow (backward/forward sweep, validated against pandapower). "
        f"Volt-var: IEEE 1547-2018 Category {spec.voltvar_curve} default curve, {spec.voltvar_priority} priority, "
        f"inverters rated {spec.s_over_p:g} kVA per kW of charger, {ts.voltvar_iterations} fixed-point "
        "iterations.</p>"
        + feeder_notes_part(result)
        + _figure(
            to_png_base64(fig_feeder_vmin(fl, fd, spec.v_min_pu)),
            "Lowest bus voltage per step, with the aggregate EV charging shaded.",
        )
        + _figure(
            to_png_base64(fig_voltage_profile(fd, clock(fd.timeseries.worst_step))),
            "Voltage of every bus at the step with the lowest voltage, against its distance in branches from "
            "the substation: the main feeder and each lateral as its own line.",
        )
        + _figure(
            to_png_base64(fig_hosting(fd)),
            "Largest EV charging power each bus can host alone (exact AC, bisection from a LinDistFlow "
            "estimate), and what volt-var on that EV's inverter adds.",
        )
        + "<h3>Loss-aware charging</h3>"
        + _table(
            ("policy", "feeder losses [kWh]", "due to EVs [kWh]", "EV energy [kWh]", "lowest voltage [pu]"),
            drows,
        )
        + '<p class="muted">uniform: every EV at its flat rate; random / loss_aware: the same aggregate per step '
        "given to EVs in random order / lowest loss sensitivity first; loss_optimal: least LinDistFlow losses "
        '(Frank-Wolfe on the marginal loss sensitivities, free to move charging in time). "Due to EVs" '
        f"subtracts the base load's own losses ({d.losses_base_kwh:,.1f} kWh). loss_aware can lose more than "
        "uniform charging: every EV charges at its own bus, so only the timing of each bus's energy can change; "
        "serving the low-sensitivity buses first at full power leaves the far-end EVs to charge late and "
        "together (must-run), and losses grow with the square of that bunching (a linear sensitivity does "
        "not see it). loss_optimal weighs where and when together.</p>"
        + _figure(to_png_base64(fig_dispatch(fl, fd)), "Aggregate EV charging of each policy.")
        + network_table_part(result)
        + _envelope_part(result)
    )


def _envelope_part(result: StudyResult) -> str:
    """The network's dynamic operating envelopes as a heat map (empty when the fleet is not on a network)."""
    envs = result.feeder.envelopes
    if not envs:
        return ""
    tg = result.scenario.time
    e0 = envs[0]
    fig = fig_envelope_heatmap(
        [e.feeder_name for e in envs],
        [[str(b) for b in e.bus_labels] for e in envs],
        [e.p_import_max_kw for e in envs],
        [e.p_export_max_kw for e in envs],
        [tg.clock_label(k) for k in range(tg.n_steps)],
    )
    return (
        "<h3>Dynamic operating envelopes</h3>"
        + f'<p class="muted">Largest EV import and export at each bus and step that keep every voltage within '
        f"[{e0.v_min_pu:g}, {e0.v_max_pu:g}] pu and every branch within its rating, given the base load; "
        f"allocation among buses: {html.escape(' / '.join(sorted({str(e.rule) for e in envs})))}; "
        f"{len(envs)} feeder(s), exact-AC violations of the allocated envelopes: "
        f"{sum(int(e.ac_violations) for e in envs)}. {html.escape(ratings_text(result))}</p>"
        + _figure(to_png_base64(fig), "Operating envelopes, bus x time: import (left) and export (right) limits.")
    )


def _network_services_part(result: StudyResult, services: dict[str, Any]) -> str:
    """Each service unconstrained, network-secure and the difference (empty when the fleet is not on a
    network)."""
    rows = tabulate_secure_figures(services, result.markets.summary())
    if not rows:
        return ""
    cur = result.scenario.currency
    units = {"kw": "kW", "per_h": f"{cur}/h", "per_horizon": f"{cur} over the horizon", "count": "-"}
    body = []
    for r in rows:
        label = f"{r['service']} [{units.get(r['unit'], r['unit'])}]"
        if r["unit"] in ("per_horizon", "count"):  # a cost or a count: the extra the security costs (+)
            diff, label = r["secure"] - r["unconstrained"], label + " (difference: network-secure − unconstrained)"
        else:  # what the network cannot carry (+)
            diff = r["network_gap"]
        body.append(
            (
                label,
                fmt_secure(r["unconstrained"], r["unit"]),
                fmt_secure(r["secure"], r["unit"]),
                fmt_secure(diff, r["unit"]),
            )
        )
    # The one rule, and where a figure states more (e.g. how the bid's simulated days are placed), that too.
    extra = {r["service"]: str(r["secure_rule"]) for r in rows if r["secure_rule"] != SECURE_RULE}
    notes = "".join(f" {html.escape(k)}: {html.escape(v)}." for k, v in extra.items())
    return (
        "<h3>Services within the network</h3>"
        + _table(("service", "unconstrained", "network-secure", "difference"), body)
        + f'<p class="muted">Rule: {html.escape(SECURE_RULE)}. Difference = unconstrained minus network-secure '
        "(what the network cannot carry), except for costs and counts, where it is network-secure minus "
        f"unconstrained (the extra cost, or the extra violations, of security).{notes}</p>"
    )


def path_verdict_rows(summaries: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    """One row per service summary carrying the command path's verdict: sold or not, with P(miss) of its
    deadline against the scenario's threshold (and, for the bid, the bid the path forbids)."""
    rows = []
    for label, d in summaries.items():
        if (v := d.get("path")) is None:
            continue
        what = "deliverable" if v["deliverable"] else "NOT deliverable over this path: not sold"
        if "bid_if_deliverable_kw" in v:
            what += f" (bid if deliverable {v['bid_if_deliverable_kw']:,.0f} kW)"
        rows.append(
            (
                f"{label} over the command path ({v['path']}): P(miss {v['deadline_s']:g} s) vs threshold",
                f"{v['p_miss']:.3g} vs {v['deadline_miss_max']:g}: {what}",
            )
        )
    return rows


def _services_section(result: StudyResult) -> str:
    sv, spec = result.services, result.scenario.frequency
    tg = result.scenario.time
    event_clock = tg.clock_label(tg.step_at(spec.event_hour, "frequency.event_hour"))
    s = sv.summary()
    pr, dy, ag, dr = s["droop"], s["dynamics"], s["agc"], s["dr"]
    rows = [
        ("EVs on frequency droop at the event", f"{pr['n_evs']:,}"),
        ("fleet droop gain, unsaturated [kW/Hz]", f"{pr['k_fleet_kw_per_hz']:,.0f}"),
        (
            "settled deviation without / with the fleet [Hz]",
            f"{pr['df_ss_without_fleet_hz']:.4f} / {pr['df_ss_hz']:.4f}",
        ),
        ("nadir without / with the fleet [Hz]", f"{dy['nadir_without_fleet_hz']:.4f} / {dy['nadir_hz']:.4f}"),
        ("RoCoF, steepest (negative = falling) [Hz/s]", f"{dy['rocof_hz_per_s']:.3f}"),
        ("EVs saturated in steady state", f"{pr['n_saturated']:,}"),
        (
            "AGC restoration time without / with the fleet [s]",
            f"{ag['restore_without_fleet_s']:.0f} / {ag['restore_s']:.0f}",
        ),
        (
            "contingency reserve, max / mean over the day" + secure_label(s["reserve"], ("max", "mean")) + " [kW]",
            secure_first(s["reserve"], ("max", "mean")),
        ),
        (
            "DR: mean reduction / peak reduction" + secure_label(dr, ("reduction_mean", "peak_reduction")) + " [kW]",
            secure_first(dr, ("reduction_mean", "peak_reduction")),
        ),
        (
            "DR: rebound peak after the event" + secure_label(dr, ("rebound_peak",)) + " [kW]",
            secure_first(dr, ("rebound_peak",)),
        ),
        ("DR: baseline at the rebound peak [kW]", f"{dr['rebound_baseline_kw']:,.0f}"),
        ("DR: EVs leaving below target with / without the event", f"{dr['n_unmet']} / {dr['n_unmet_baseline']}"),
        *path_verdict_rows({"Contingency reserve": s["reserve"], "DR": dr}),
    ]
    if "capacity_kw" in ag:  # the regulation capacity offered (with network limits: the secure one first)
        rows.append(
            ("regulation capacity offered" + secure_label(ag, ("capacity",)) + " [kW]", secure_first(ag, ("capacity",)))
        )
    reg_secure = ag.get("capacity_secure_kw")
    reg_rows = [
        (
            k,
            f"{v['capacity_kw']:,.0f}"
            + ("" if reg_secure is None else f" unconstrained (network-secure {reg_secure:,.0f})"),
            f"{v['accuracy']:.3f}",
            f"{v['delay']:.3f}",
            f"{v['precision']:.3f}",
            f"{v['score']:.3f}",
            f"{v['throughput_kwh']:,.1f}",
        )
        for k, v in ag["regulation"].items()
    ]
    cas_rows = [
        (
            m,
            f"{c['nadir_hz']:.3f}",
            ", ".join(str(k) for k in c["ufls_stages"]) or "none",
            f"{c['load_shed_kw'] / 1e3:,.1f}",
            f"{c['der_lost_kw'] / 1e3:,.1f}",
        )
        for m, c in s["cascade"].items()
        if m in sv.cascade
    ]
    fx = s["cascade"]["fleet_ramp_effect"]
    share = fx["fleet_share_of_gain"]
    fleet_note = (
        f"Ramping only the V2G fleet's tripping generation ({fx['fleet_ramped_kw'] / 1e3:,.2f} MW) while legacy "
        f"DERs trip at once raises the nadir by {fx['nadir_gain_fleet_ramp_hz'] * 1e3:,.1f} mHz; ramping every "
        f"tripping DER ({fx['all_ramped_kw'] / 1e3:,.2f} MW) by {fx['nadir_gain_all_ramp_hz'] * 1e3:,.1f} mHz; "
        + (
            f"the fleet's share of that gain is {share * 100:.0f} %."
            if share is not None
            else "ramping changes the nadir by less than 1 µHz, so a share is undefined."
        )
    )
    return (
        "<h2>Bulk-grid services</h2>"
        + ignores_network_note(result)
        + _table(("quantity", "value"), rows)
        + f'<p class="muted">System: {spec.system_mw:g} MW, H = {spec.h_s:g} s, R = {spec.r_pu:g}, load damping '
        f"{spec.load_damping_pu:g} %/%; EVs on the IEEE 1547-2018 default droop (deadband {spec.ev_deadband_hz:g} "
        f"Hz, {spec.ev_droop_pu * 100:g} %), event in the step starting {event_clock}.</p>"
        + _figure(
            to_png_base64(fig_frequency_event(sv, spec.step_mw)),
            "Frequency after the load step (RK4, every EV modelled), and the fleet's response.",
        )
        + _figure(to_png_base64(fig_agc(sv)), "Two-area AGC with and without the fleet as a participant.")
        + "<h3>Regulation (PJM performance score)</h3>"
        + _table(
            ("allocation", "capacity [kW]", "accuracy", "delay", "precision", "score", "throughput [kWh]"), reg_rows
        )
        + (
            ""
            if reg_secure is None
            else '<p class="muted">The scores are of the unconstrained capacity; the network carries the '
            "network-secure capacity (the one sold).</p>"
        )
        + _figure(to_png_base64(fig_regulation(sv)), "Signal and response, first 20 minutes.")
        + _figure(
            to_png_base64(fig_reserve_dr(result.fleet, sv)),
            "Contingency reserve over the day (top) and the demand-response event with its rebound (bottom)"
            + ("; black: network-secure." if sv.reserve.reserve_secure_kw is not None else "."),
        )
        + "<h3>Under-frequency cascade</h3>"
        + _table(("mode", "nadir [Hz]", "UFLS stages", "load shed [MW]", "DER lost [MW]"), cas_rows)
        + f'<p class="muted">{fleet_note}</p>'
        + f'<p class="muted">Generation loss {spec.cascade_loss_mw:g} MW in a {spec.system_mw:g} MW system with '
        f"H = {spec.cascade_h_s:g} s; legacy DERs trip at 59.3 Hz / 0.16 s, IEEE 1547-2018 ones ride through to "
        f"58.5 Hz / 300 s; staggered ramp-down at {spec.ramp_pct_per_s:g} %/s; random delays up to "
        f"{spec.random_delay_max_s:g} s. UFLS stages (illustrative): 59.0, 58.7, 58.4 Hz.</p>"
        + _figure(to_png_base64(fig_cascade(sv)), "Frequency in the cascade event, by disconnection mode.")
        + _network_services_part(result, s)
        + network_battery_part(result)
    )


def _markets_section(result: StudyResult) -> str:
    mk, spec = result.markets, result.scenario.markets
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
        + _table(("", "RTP", "TOU"), rows)
        + f'<p class="muted">24 hourly periods, {spec.demand_kind} demand (elasticity {spec.elasticity:g} at '
        f"{spec.p_ref_per_mwh:g} {cur}/MWh, peak {spec.peak_demand_mw:g} MW), merit order "
        f"{list(spec.gen_capacity_mw)} MW at {list(spec.gen_cost_per_mwh)} {cur}/MWh, the fleet's V2G offer "
        f"(EVs plugged in at {m['v2g_offer_hour']:g} h) at {spec.degradation_per_mwh:g} {cur}/MWh. TOU peak "
        f"block {spec.tou_peak_start_hour}-{spec.tou_peak_end_hour} h at the quantity-weighted RTP price.</p>"
        + _figure(
            to_png_base64(fig_market(mk, cur)), "Supply and demand in the peak hour; prices and V2G over the day."
        )
        + "<h3>Aggregator pricing, bids and schedules</h3>"
        + ignores_network_note(result)
        + _table(("quantity", "value"), other)
        + network_schedule_note(s.get("network_schedule"))
        + _figure(to_png_base64(fig_bid(mk, cur)), "Expected profit of regulation bids; the critical-fractile bid.")
        + _figure(
            to_png_base64(fig_schedule(result.fleet, mk, cur)),
            f"Cost-optimal day-ahead schedules (LP, solver: {sc['solver']})"
            + ("; black: the network-secure schedule sold." if mk.network_schedule is not None else "."),
        )
        + "<h3>Robust schedule under ellipsoidal uncertainty</h3>"
        + _table(
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
        + _figure(to_png_base64(fig_robust(mk)), "Cost of robustness and Monte Carlo violation rate (SOCP, Clarabel).")
    )


def _robust_row(v: dict[str, Any]) -> tuple[str, str, str, str]:
    """A radius of the robust summary as a table row; an infeasible one names the solver's reason."""
    pr = v["violation_prob_promised_at_most"]
    promise = "no promise" if pr is None else f"at most {pr:.1%}"
    if not v["feasible"]:
        return (f"Ω = {v['omega']:.3g}", f"infeasible: {v['infeasible_reason']}", promise, "-")
    return (f"Ω = {v['omega']:.3g}", f"{v['expected_cost_per_horizon']:,.1f}", promise, f"{v['violation_rate_mc']:.1%}")


def _cyber_section(result: StudyResult) -> str:
    run = result.cyber
    if run is None:
        return ""
    s = run.summary()
    rows = [
        (
            "Simulated stations (V2X on OCPP 2.1 / others on 2.0.1)",
            f"{s['n_stations']} ({s['n_v2x']} / {s['n_stations'] - s['n_v2x']})",
        ),
        ("Charging profiles sent / acknowledged", f"{s['profiles_sent']} / {s['profiles_acknowledged']}"),
        (
            "Fan-out: median over every station / slowest acceptance [ms] (-: none, or half did not accept)",
            " / ".join("-" if v is None else f"{1e3 * v:.1f}" for v in (s["fanout_p50_s"], s["fanout_max_s"])),
        ),
        ("Stations following their set-point", f"{s['followed']} of {s['n_stations']}"),
        ("Meter values committed before acknowledgement", f"{s['meter_values_stored']:,}"),
    ]
    return (
        "<h2>Control path: OCPP central system</h2>"
        + _table(("quantity", "value"), rows)
        + f'<p class="muted">The fleet\'s first {s["n_stations"]} EVs plugged into simulated stations on loopback '
        "(websockets, the <code>ocpp</code> package); each boots, declares its charging needs and reports, then the "
        "central system pushes one set-point each: half power charging, or half power discharge for V2X EVs "
        "(a demand-response event). Loopback latencies: a lower bound for a real cellular path. "
        "<code>benchmarks/bench_csms.py</code> measures the load case.</p>"
        + _figure(to_png_base64(fig_cyber(run)), "Dispatch latency distribution; set-points against station power.")
    )


def render_html(result: StudyResult) -> str:
    """The whole report as one self-contained HTML string (opens offline)."""
    s = result.scenario
    t = s.time
    timing = ", ".join(f"{k} {v:.2f} s" for k, v in result.timings_s.items())
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>v2gtwin study: {html.escape(s.name)}</title><style>{_CSS}</style></head><body>"
        f"<h1>v2gtwin study: {html.escape(s.name)}</h1>"
        f'<p class="muted">v2gtwin {__version__} · seed {s.seed} · {t.n_steps} steps of {t.dt_s:g} s from '
        f"{t.start_hour:g} h local time · fleet source: {html.escape(s.fleet.source)} · "
        f"{html.escape(grid_label(result))}</p>"
        + _fleet_section(result)
        + _feeder_section(result)
        + protection_section(result.protection)
        + _services_section(result)
        + _markets_section(result)
        + battery_health_section(result)
        + resilience_section(result)
        + cyber_path_section(result)
        + _cyber_section(result)
        + compliance_section(result)
        + f'<h2>Run</h2><p class="muted">Step timings: {html.escape(timing)}.</p>'
        + "</body></html>"
    )


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def prepare_out_dir(out_dir: str | Path) -> Path:
    """Create the output folder (and parents) or raise a one-line error; the CLI calls it before a study runs
    so that a bad ``--out`` fails at once, not after the study."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise V2GTwinError(f"--out {out}: cannot create the output folder ({exc.strerror})") from None
    if not out.is_dir():
        raise V2GTwinError(f"--out {out}: not a folder")
    return out


def write_report(result: StudyResult, out_dir: str | Path) -> dict[str, Path]:
    """Write ``report.html`` and ``results.json`` into ``out_dir`` (created if needed).

    Files are written to a temporary name and renamed, so an earlier report is replaced only by a
    complete new one.
    """
    out = prepare_out_dir(out_dir)
    html_text = render_html(result)
    json_text = dumps_strict(result.to_dict() | summary_json(result))
    paths = {"report": out / "report.html", "results": out / "results.json"}
    try:
        _atomic_write(paths["results"], json_text)
        _atomic_write(paths["report"], html_text)
    except OSError as exc:
        raise V2GTwinError(f"--out {out}: cannot write the report ({exc.strerror})") from None
    return paths
