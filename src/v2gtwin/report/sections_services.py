"""The report's bulk-grid services section: droop, AGC and regulation, reserve and DR, cascade."""

from __future__ import annotations

import html
from typing import Any

from v2gtwin.grid.secure import SECURE_RULE, tabulate_secure_figures
from v2gtwin.report.figures import (
    Clock,
    fig_agc,
    fig_cascade,
    fig_frequency_event,
    fig_regulation,
    fig_reserve_dr,
    to_png_base64,
)
from v2gtwin.report.html_parts import figure_html, table_html
from v2gtwin.report.network_services import (
    fmt_secure,
    ignores_network_note,
    network_battery_part,
    secure_first,
    secure_label,
)
from v2gtwin.report.surprises import regulation_bid_vs_offered, why_html
from v2gtwin.study_result import StudyResult

__all__ = ["path_verdict_rows", "services_section"]


def _network_services_part(result: StudyResult, services: dict[str, Any]) -> str:
    """Each service unconstrained, network-secure and the difference (empty when the fleet is not on a
    network)."""
    rows = [] if result.markets is None else tabulate_secure_figures(services, result.markets.summary())
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
        + table_html(("service", "unconstrained", "network-secure", "difference"), body)
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


def services_section(result: StudyResult) -> str:
    sv, spec, fl = result.services, result.scenario.frequency, result.fleet
    assert sv is not None and fl is not None  # render_html calls it only then
    tg = result.scenario.time
    event_step = tg.step_at(spec.event_hour, "frequency.event_hour")
    event_clock = tg.clock_label(event_step)
    at_event = Clock.of(tg).after(event_step * tg.dt_h)
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
        + table_html(("quantity", "value"), rows)
        + why_html(regulation_bid_vs_offered(result))
        + f'<p class="muted">System: {spec.system_mw:g} MW, H = {spec.h_s:g} s, R = {spec.r_pu:g}, load damping '
        f"{spec.load_damping_pu:g} %/%; EVs on the IEEE 1547-2018 default droop (deadband {spec.ev_deadband_hz:g} "
        f"Hz, {spec.ev_droop_pu * 100:g} %), event in the step starting {event_clock}.</p>"
        + figure_html(
            to_png_base64(fig_frequency_event(sv, spec.step_mw, at_event)),
            "Frequency after the load step (RK4, every EV modelled), and the fleet's response.",
        )
        + figure_html(to_png_base64(fig_agc(sv, at_event)), "Two-area AGC with and without the fleet as a participant.")
        + "<h3>Regulation (PJM performance score)</h3>"
        + table_html(
            ("allocation", "capacity [kW]", "accuracy", "delay", "precision", "score", "throughput [kWh]"), reg_rows
        )
        + (
            ""
            if reg_secure is None
            else '<p class="muted">The scores are of the unconstrained capacity; the network carries the '
            "network-secure capacity (the one sold).</p>"
        )
        + figure_html(
            to_png_base64(fig_regulation(sv, at_event)),
            "Signal and response, tracking error and the fleet's headroom, first 20 minutes.",
        )
        + figure_html(
            to_png_base64(fig_reserve_dr(fl, sv, Clock.of(tg))),
            "Contingency reserve over the day (top) and the demand-response event with its rebound (bottom)"
            + ("; black: network-secure." if sv.reserve.reserve_secure_kw is not None else "."),
        )
        + "<h3>Under-frequency cascade</h3>"
        + table_html(("mode", "nadir [Hz]", "UFLS stages", "load shed [MW]", "DER lost [MW]"), cas_rows)
        + f'<p class="muted">{fleet_note}</p>'
        + f'<p class="muted">Generation loss {spec.cascade_loss_mw:g} MW in a {spec.system_mw:g} MW system with '
        f"H = {spec.cascade_h_s:g} s; legacy DERs trip at 59.3 Hz / 0.16 s, IEEE 1547-2018 ones ride through to "
        f"58.5 Hz / 300 s; staggered ramp-down at {spec.ramp_pct_per_s:g} %/s; random delays up to "
        f"{spec.random_delay_max_s:g} s. UFLS stages (illustrative): 59.0, 58.7, 58.4 Hz.</p>"
        + figure_html(
            to_png_base64(fig_cascade(sv, at_event)), "Frequency in the cascade event, by disconnection mode."
        )
        + _network_services_part(result, s)
        + network_battery_part(result)
    )
