"""The report's resilience section: the critical facility through the scenario's outage, with and without the V2G
fleet nearby (Q(t) with T_r and M_D marked), and M_D against fleet size. Reads the study result only."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure

from v2gtwin.report.figure_layout import Clock, place_legend, set_clock_axis
from v2gtwin.report.figures import to_png_base64

if TYPE_CHECKING:
    from v2gtwin.grid.resilience_analysis import ResilienceAnalysis
    from v2gtwin.study import StudyResult

__all__ = ["fig_resilience_q", "fig_resilience_sweep", "resilience_section"]

_W, _H = 8.0, 3.4


def fig_resilience_q(res: ResilienceAnalysis, clock: Clock | None = None) -> Figure:
    """Q(t) with and without V2G over the outage (left: its first minutes; right: the whole outage), with T_r
    marked and the area 1 - Q (M_D) shaded; ``clock``: when the outage starts (local time on both axes; without
    it, the outage's start hour undated)."""
    fig = Figure(figsize=(_W, _H))
    axes = fig.subplots(1, 2, width_ratios=(1, 2))
    w, wo = res.with_v2g, res.without_v2g
    mw, mwo = res.metrics_with, res.metrics_without
    t_s = w.t_s
    edges = np.append(t_s, t_s[-1] + w.dt_s) if t_s.size else t_s
    first = min(edges[-1], max(120.0, 3 * max(mw.t_r_s if mw.recovered_by == "microgrid" else 0.0, 30.0)))
    c = clock if clock is not None else Clock(res.spec.outage_start_hour)
    for ax, limit in ((axes[0], first), (axes[1], float(edges[-1]))):
        scale = 1.0 if limit <= 600 else 60.0
        x = edges / scale
        for series, m, colour, name in ((wo.q, mwo, "tab:red", "without V2G"), (w.q, mw, "tab:blue", "with V2G")):
            q = np.append(series, series[-1])
            ax.step(x, q, where="post", color=colour, lw=1.4, label=f"{name}: M_D = {m.m_d_h:.3g} h")
            ax.fill_between(x, q, 1.0, step="post", color=colour, alpha=0.12)
            if m.recovered_by == "microgrid" and m.t_r_s <= limit:
                ax.axvline(m.t_r_s / scale, color=colour, ls=":", lw=1)
        ax.axhline(mw.level, color="k", ls="--", lw=0.8)
        ax.set_ylim(-0.02, 1.05)
        set_clock_axis(ax, limit / scale, c.start_clock_h, x_unit_s=scale, start=c.start, max_ticks=6)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("Q = served / critical load")
    axes[0].set_title("first moments (T_r dotted)", fontsize=9)
    axes[1].set_title("whole outage (level dashed)", fontsize=9)
    place_legend(axes[1])
    return fig


def fig_resilience_sweep(res: ResilienceAnalysis) -> Figure:
    """M_D and T_r against the number of EVs near the facility."""
    fig = Figure(figsize=(_W, _H))
    ax = fig.add_subplot()
    n = np.asarray(res.sweep_n_evs, dtype=float)
    ax.plot(n, [m.m_d_h for m in res.sweep], "o-", color="tab:blue", label="M_D")
    ax.set_xlabel("EVs near the facility")
    ax.set_ylabel("M_D = integral of (1 - Q) dt [h]")
    ax.grid(alpha=0.3)
    ax2 = ax.twinx()
    ax2.plot(n, [m.t_r_s / 60.0 for m in res.sweep], "s--", color="tab:orange", label="T_r")
    ax2.set_ylabel("T_r [min] (the grid's return when not reached)")
    ax.set_title("Loss of resilience and recovery time against fleet size")
    place_legend(ax)
    return fig


def _figure(fig: Figure, caption: str) -> str:
    return (
        f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{to_png_base64(fig)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def resilience_section(result: StudyResult) -> str:
    """The HTML section (empty when the study did not run the resilience step)."""
    res = result.resilience
    if res is None:
        return ""
    s = res.summary()
    w, wo = s["with_v2g"], s["without_v2g"]
    tg = result.scenario.time
    outage = Clock.of(tg).after((res.spec.outage_start_hour - tg.start_hour) % 24.0)

    def tr(c: dict[str, object]) -> str:
        return f"{c['t_r_s']:,.0f}" + (" (grid's return)" if c["recovered_by"] == "grid" else "")

    rows = [
        ("EVs near the facility (V2G-capable, plugged in at the start)", f"{w['n_evs']} ({s['n_v2g_at_start']})"),
        ("T_r, time to reach Q >= level [s]", tr(w), tr(wo)),
        ("M_D = integral of (1 - Q) dt over the outage [h]", f"{w['m_d_h']:.4g}", f"{wo['m_d_h']:.4g}"),
        ("time below the level [s]", f"{w['t_below_level_s']:,.0f}", f"{wo['t_below_level_s']:,.0f}"),
        ("lowest Q", f"{w['q_min']:.3f}", f"{wo['q_min']:.3f}"),
        ("energy from V2G [kWh]", f"{w['energy_v2g_kwh']:,.1f}", "0"),
        ("critical energy not served [kWh]", f"{w['energy_unserved_kwh']:,.1f}", f"{wo['energy_unserved_kwh']:,.1f}"),
    ]
    head = "<tr><th>quantity</th><th>with V2G</th><th>without V2G</th></tr>"
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in (row if len(row) == 3 else (*row, ""))) + "</tr>"
        for row in rows
    )
    n_min = s["n_evs_min_holding"]
    spec = res.spec
    cap = "none" if s["v2g_cap_kw"] is None else f"{s['v2g_cap_kw']:,.0f} kW ({s['cap_source']})"
    notes = " ".join(html.escape(n) + "." for n in s["notes"])
    return (
        "<h2>Resilience of a critical facility</h2>"
        f"<table>{head}{body}</table>"
        f'<p class="muted">Outage from {s["outage_start_clock"]} for {spec.outage_duration_h:g} h at bus '
        f"{html.escape(spec.facility_bus)}; critical load {spec.critical_peak_kw:g} kW peak ({spec.critical_shape}); "
        f"generator {spec.gen_kw:g} kW after {spec.gen_start_delay_s:g} s; battery {spec.battery_kw:g} kW / "
        f"{spec.battery_kwh:g} kWh; PV {spec.pv_peak_kw:g} kW peak. V2G: delay {spec.v2g_delay_s:g} s, time "
        f"constant {spec.v2g_tau_s:g} s, ramp "
        + ("unlimited" if spec.v2g_ramp_kw_per_s is None else f"{spec.v2g_ramp_kw_per_s:g} kW/s")
        + f", cap {cap}. Acceptable level {spec.acceptable_level:g}; simulation step {spec.dt_sim_s:g} s. "
        "Metrics of Bruneau et al.'s resilience triangle (Earthquake Spectra 19(4), 2003). "
        + (
            "No swept fleet size holds the level to the end of the outage. "
            if n_min is None
            else f"Smallest swept fleet that reaches the level and holds it to the end: {n_min} EVs. "
        )
        + f"{notes}</p>"
        + _figure(
            fig_resilience_q(res, outage), "Performance Q(t) with and without V2G; T_r dotted, 1 - Q shaded (M_D)."
        )
        + _figure(fig_resilience_sweep(res), "M_D and T_r against the number of EVs near the facility.")
    )
