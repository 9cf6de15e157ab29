"""The report's feeder section: power flows, hosting capacity, loss-aware charging, operating envelopes."""

from __future__ import annotations

import html
import math

from v2gtwin.report.figures import Clock, fig_dispatch, fig_feeder_vmin, fig_hosting, fig_voltage_profile, to_png_base64
from v2gtwin.report.html_parts import figure_html, table_html
from v2gtwin.report.network_figures import fig_envelope_heatmap
from v2gtwin.report.network_section import base_load_text, feeder_notes_part, network_table_part, ratings_text
from v2gtwin.report.surprises import loss_aware_vs_uniform, why_html
from v2gtwin.study_result import StudyResult

__all__ = ["feeder_section"]


def feeder_section(result: StudyResult) -> str:
    fd, fl = result.feeder, result.fleet
    assert fd is not None and fl is not None  # render_html calls it only then
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
        + table_html(("quantity", "value"), rows)
        + f'<p class="muted">{base_load_text(result)} '
        "Exact AC power flow (backward/forward sweep, validated against pandapower). "
        f"Volt-var: IEEE 1547-2018 Category {spec.voltvar_curve} default curve, {spec.voltvar_priority} priority, "
        f"inverters rated {spec.s_over_p:g} kVA per kW of charger, {ts.voltvar_iterations} fixed-point "
        "iterations.</p>"
        + feeder_notes_part(result)
        + figure_html(
            to_png_base64(fig_feeder_vmin(fl, fd, spec.v_min_pu, Clock.of(result.scenario.time))),
            "Lowest bus voltage per step, with the aggregate EV charging shaded.",
        )
        + figure_html(
            to_png_base64(fig_voltage_profile(fd, clock(fd.timeseries.worst_step))),
            "Voltage of every bus at the step with the lowest voltage along each path from the substation to a "
            "feeder end, against the electrical distance from the substation (sum of the branch impedances).",
        )
        + figure_html(
            to_png_base64(fig_hosting(fd)),
            "Largest EV charging power each bus can host alone (exact AC, bisection from a LinDistFlow "
            "estimate) on a linear scale, and what volt-var on that EV's inverter adds (bottom).",
        )
        + "<h3>Loss-aware charging</h3>"
        + table_html(
            ("policy", "feeder losses [kWh]", "due to EVs [kWh]", "EV energy [kWh]", "lowest voltage [pu]"),
            drows,
        )
        + '<p class="muted">uniform: every EV at its flat rate; random / loss_aware: the same aggregate per step '
        "given to EVs in random order / lowest loss sensitivity first; loss_optimal: least LinDistFlow losses "
        '(Frank-Wolfe on the marginal loss sensitivities, free to move charging in time). "Due to EVs" '
        f"subtracts the base load's own losses ({d.losses_base_kwh:,.1f} kWh).</p>"
        + why_html(loss_aware_vs_uniform(result))
        + figure_html(
            to_png_base64(fig_dispatch(fl, fd, Clock.of(result.scenario.time))),
            "Aggregate EV charging of the uniform policy, and each other policy's difference from it.",
        )
        + network_table_part(result)
        + _envelope_part(result)
    )


def _envelope_part(result: StudyResult) -> str:
    """The network's dynamic operating envelopes as a heat map (empty when the fleet is not on a network)."""
    envs = () if result.feeder is None else result.feeder.envelopes
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
        Clock.of(tg),
        tg.dt_s,
    )
    return (
        "<h3>Dynamic operating envelopes</h3>"
        + f'<p class="muted">Largest EV import and export at each bus and step that keep every voltage within '
        f"[{e0.v_min_pu:g}, {e0.v_max_pu:g}] pu and every branch within its rating, given the base load; "
        f"allocation among buses: {html.escape(' / '.join(sorted({str(e.rule) for e in envs})))}; "
        f"{len(envs)} feeder(s), exact-AC violations of the allocated envelopes: "
        f"{sum(int(e.ac_violations) for e in envs)}. {html.escape(ratings_text(result))}</p>"
        + figure_html(to_png_base64(fig), "Operating envelopes, bus x time: import (left) and export (right) limits.")
    )
