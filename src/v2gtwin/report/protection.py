"""The report's protection section: fault current by bus with and without V2G, a time-current plot of the
relay pairs V2G affects, and the fleet size at which coordination first fails. Reads the study's
:class:`~v2gtwin.grid.protection.analysis.ProtectionAnalysis` only."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure

from v2gtwin.report.figure_layout import place_legend

if TYPE_CHECKING:
    from v2gtwin.grid.protection.analysis import ProtectionAnalysis

__all__ = ["break_between_laterals", "fig_fault_by_bus", "fig_time_current", "protection_section"]

_W, _H = 8.0, 3.4


def _bus_order(labels: np.ndarray) -> np.ndarray:
    """Numbered buses in their number order (Baran & Wu's 1-33), others in feeder order."""
    if all(str(b).isdigit() for b in labels):
        return np.argsort([int(str(b)) for b in labels], kind="stable")
    return np.arange(labels.size)


def break_between_laterals(
    order: np.ndarray, parent: np.ndarray | None, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Line points (x, y) for ``y`` in plotting order (x = position in ``order``), with a NaN point inserted
    (a break in the line) before every bus that is not fed by the bus plotted just before it: the line runs
    along branches and never joins the end of one lateral to the start of the next."""
    x = np.arange(order.size, dtype=float)
    yy = np.asarray(y, dtype=float)[order]
    if parent is None or order.size < 2:
        return x, yy
    jump = np.flatnonzero(parent[order[1:]] != order[:-1]) + 1
    return np.insert(x, jump, np.nan), np.insert(yy, jump, np.nan)


def fig_fault_by_bus(an: ProtectionAnalysis) -> Figure:
    """Three-phase fault current at every bus, without and with the V2G aggregators (lines along branches,
    markers at every bus)."""
    fig = Figure(figsize=(_W, _H))
    ax = fig.add_subplot()
    order = _bus_order(an.bus_labels)
    x = np.arange(order.size)
    for res, color, label in (
        (an.faults_base, "tab:gray", "without V2G"),
        (an.faults_v2g, "tab:red", "with V2G (all plugged in)"),
    ):
        xl, yl = break_between_laterals(order, an.parent, res.i_fault_a / 1e3)
        ax.plot(xl, yl, "-", color=color)
        ax.plot(x, res.i_fault_a[order] / 1e3, "o", color=color, ms=3, label=label)
    if order.size <= 40:
        ax.set_xticks(x, [str(b) for b in an.bus_labels[order]], fontsize=7)
    ax.set_xlabel("bus")
    ax.set_ylabel("fault current [kA]")
    ax.grid(alpha=0.3)
    ax.set_title(f"Three-phase fault current by bus ({an.options.combination} combination)")
    place_legend(ax)
    return fig


def fig_time_current(an: ProtectionAnalysis, max_devices: int = 8) -> Figure:
    """Time-current curves of the devices V2G affects (else all, up to ``max_devices``), with the fault currents
    of their pairs without (dashed) and with V2G (solid) and their back-feed currents (dotted)."""
    fig = Figure(figsize=(_W, 4.2))
    ax = fig.add_subplot()
    affected = an.affected_devices()
    shown = affected[:max_devices] if affected else list(range(min(an.scheme.n, max_devices)))
    heads = [j for j in range(an.scheme.n) if an.scheme.upstream[j] < 0]
    shown = sorted(set(shown) | set(heads[:1]))
    colors = [f"C{k}" for k in range(10)]
    curves = an.tcc_points()
    for k, j in enumerate(shown):
        label, i, t = curves[j]
        c = colors[k % 10]
        ax.loglog(
            i, t, color=c, lw=2.0 if j in affected else 1.0, label=label + (" (affected)" if j in affected else "")
        )
        for pk in np.flatnonzero(an.v2g.down == j):
            ax.axvline(an.base.i_down_a[pk], color=c, ls="--", lw=0.8)
            ax.axvline(an.v2g.i_down_a[pk], color=c, ls="-", lw=0.8)
        if an.v2g.i_backfeed_a[j] > 0:
            ax.axvline(an.v2g.i_backfeed_a[j], color=c, ls=":", lw=1.0)
    ax.set_xlabel("current [A]")
    ax.set_ylabel("operating time [s]")
    ax.set_ylim(0.01, 100.0)
    ax.grid(alpha=0.3, which="both")
    ax.set_title("Time-current curves; pair fault currents without (--) / with (-) V2G, back-feed (:)")
    place_legend(ax, fontsize=7)
    return fig


def protection_section(an: ProtectionAnalysis | None) -> str:
    """The HTML of the protection section ('' when the study did not run it)."""
    if an is None:
        return ""
    from v2gtwin.report.figures import to_png_base64

    s = an.summary()
    issues_b, issues_v = s["issues_base"], s["issues_v2g"]

    def issues(d: dict[str, int]) -> str:
        return ", ".join(f"{v} {k}" for k, v in d.items() if v) or "none"

    if s["failing_scale"] is None:
        fails = f"not up to {an.scale.scale_max:g} x the fleet"
    else:
        fails = (
            f"{s['failing_scale']:.3g} x the fleet ({s['failing_s_v2g_kva']:,.0f} kVA of V2G): "
            f"{issues(s['failing_issue'])}"
        )
    rows = [
        ("grid short-circuit power, R/X, c", f"{s['s_sc_mva']:g} MVA, {s['r_over_x']:g}, {s['c_factor']:g}"),
        (
            "V2G aggregators (rating, k, ride-through)",
            f"{s['n_aggregators']} ({s['s_v2g_kva']:,.0f} kVA, k = "
            f"{s['k'] if s['k'] is not None else '-'}, {s['t_ride_through_s']:g} s)",
        ),
        (
            "largest / smallest fault current without V2G [A]",
            f"{s['i_fault_max_base_a']:,.0f} / {s['i_fault_min_base_a']:,.0f}",
        ),
        ("largest rise with V2G", f"{s['i_fault_rise_max_pct']:.1f} % at bus {s['i_fault_rise_max_bus']}"),
        ("devices", f"{s['n_devices']} ({'default scheme' if s['default_scheme'] else 'from the scenario'})"),
        ("issues without V2G", issues(issues_b)),
        ("issues with V2G", issues(issues_v)),
        ("proposed settings restore coordination", "yes" if s["proposal_restores"] else "no"),
        ("coordination first fails at", fails),
    ]
    body = "".join(f"<tr><td>{html.escape(a)}</td><td>{html.escape(b)}</td></tr>" for a, b in rows)
    dev_rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(c)}</td>"
            for c in (
                d["device"],
                d["bus"],
                d["curve"],
                f"{d['pickup_a']:,.0f}",
                f"{d['tds']:.2f}",
                f"{d['i_backfeed_v2g_a']:,.0f}",
                "yes" if d["sympathetic_v2g"] else "no",
                "yes" if d["blinded_v2g"] else "no",
                "none"
                if d["proposed_pickup_a"] is None
                else f"{d['proposed_pickup_a']:,.0f} A, {d['proposed_tds']:.2f}",
            )
        )
        + "</tr>"
        for d in an.device_table()
    )
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "device",
            "bus",
            "curve",
            "pickup [A]",
            "time dial",
            "back-feed [A]",
            "sympathetic",
            "blinded",
            "proposal",
        )
    )
    return (
        "<h2>Protection: fault currents and relay coordination</h2>"
        f"<table><tr><th>quantity</th><th>value</th></tr>{body}</table>"
        f"<table><tr>{head}</tr>{dev_rows}</table>"
        + "".join(f'<p class="muted">Note: {html.escape(n)}</p>' for n in s["notes"])
        + '<p class="muted">Three-phase bolted faults by IEC 60909 superposition '
        "(equivalent source c U<sub>n</sub>/√3, loads neglected), the V2G aggregators as current sources of "
        "k × rated current for their ride-through time "
        "(every V2G charger plugged in: the worst case). Coordination time intervals at the downstream zone's "
        f"largest fault current, margin {an.options.cti_margin_s:g} s; blinding: slower than {an.options.t_max_s:g} s "
        "in a device's zone or backup zone. The fleet-size search scales every aggregator's rating. Method: "
        "docs/protection.md.</p>"
        + _img(to_png_base64(fig_fault_by_bus(an)), "Fault current by bus without and with V2G.")
        + _img(
            to_png_base64(fig_time_current(an)),
            "Time-current curves of the relays V2G affects, with the fault and back-feed currents that matter.",
        )
    )


def _img(b64: str, caption: str) -> str:
    return (
        f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{b64}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )
