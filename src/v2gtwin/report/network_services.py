"""The report's network parts of the services and markets sections: each figure network-secure first with the
unconstrained one beside it, the schedule sold within the network, and the network-secure virtual battery."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from v2gtwin.report.battery_figures import fig_network_battery
from v2gtwin.report.figure_layout import Clock
from v2gtwin.report.figures import to_png_base64

if TYPE_CHECKING:
    from v2gtwin.study import StudyResult

__all__ = [
    "fmt_secure",
    "ignores_network_note",
    "network_battery_part",
    "network_schedule_note",
    "network_schedule_rows",
    "secure_first",
    "secure_label",
]


def _figure(fig_b64: str, caption: str) -> str:
    return (
        f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{fig_b64}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def fmt_secure(x: float, unit: str) -> str:
    """A figure of the services-within-the-network table: counts as integers, others to 0.1 (no "-0.0")."""
    if unit == "count":
        return f"{round(x):,d}"
    return f"{round(float(x), 1) + 0.0:,.1f}"


def secure_first(d: dict[str, Any], names: Sequence[str], unit: str = "kw", fmt: str = ",.0f") -> str:
    """Figures ``names`` of a summary ``d`` joined by " / ": the network-secure values, with the unconstrained
    ones beside them in brackets, when ``d`` carries them; the plain values otherwise."""
    plain = " / ".join(format(d[f"{n}_{unit}"], fmt) for n in names)
    if not all(d.get(f"{n}_secure_{unit}") is not None for n in names):
        return plain
    return " / ".join(format(d[f"{n}_secure_{unit}"], fmt) for n in names) + f" (unconstrained {plain})"


def secure_label(d: dict[str, Any], names: Sequence[str], unit: str = "kw") -> str:
    """ " network-secure (unconstrained)" when ``d`` carries the network-secure figures ``names``, else ""."""
    return " network-secure (unconstrained)" if all(d.get(f"{n}_secure_{unit}") is not None for n in names) else ""


def ignores_network_note(result: StudyResult) -> str:
    """With the fleet on a network and ``network_secure = false``: a sentence saying the services ignore it."""
    net = result.scenario.network
    if net is None or net.secure:
        return ""
    return (
        '<p class="muted"><b>network_secure = false:</b> the figures of this section ignore the feeders\' '
        "operating envelopes shown in the feeder section; the network may not carry them.</p>"
    )


def network_battery_part(result: StudyResult) -> str:
    """The fleet's outer, inner and network-secure virtual batteries and their gaps (empty without them)."""
    nb = result.network_battery
    if nb is None or result.fleet is None:
        return ""
    s, tg = nb.summary(), result.scenario.time
    names = (
        ("p_max_peak_kw", "largest charging power [kW]"),
        ("p_discharge_peak_kw", "largest discharging power [kW]"),
        ("e_charge_max_kwh", "energy the charging bound delivers over the day [kWh]"),
        ("energy_flexible_kwh", "widest energy band [kWh]"),
    )
    f = s["fleet"]
    gaps = f["gaps"]
    body = [
        (
            label,
            f"{f['outer'][key]:,.0f}",
            f"{f['inner'][key]:,.0f}",
            f"{f['network_secure'][key]:,.0f}",
            f"{gaps['outer_minus_inner'][key]:,.0f}",
            f"{gaps['inner_minus_network_secure'][key]:,.0f}",
        )
        for key, label in names
    ]
    fig = fig_network_battery(
        result.fleet.time_h,
        {kind: nb.fleet_band_kw(kind) for kind in ("outer", "inner", "network_secure")},
        [tg.clock_label(k) for k in range(tg.n_steps)],
        clock=Clock.of(tg),
    )
    return (
        "<h3>The network-secure virtual battery</h3>"
        + _table(("fleet, feeders summed", "outer", "inner", "network-secure", "outer − inner", "inner − secure"), body)
        + f'<p class="muted">{s["n_evs"]:,} EVs with reachable targets ({s["n_dropped"]} left out); each bus\'s EVs '
        "one inner battery (Zhao et al. 2017), its power clipped to the bus's operating envelope; per feeder in "
        f"results.json (network_battery). Bus-steps where the fixed EVs alone exceed the envelope: "
        f"{s['n_fixed_over_envelope']:,}. The reserve, regulation, demand-response, V2G-offer and bid figures are "
        "each EV's own capability clipped per bus to the envelope (the rule above): each EV keeps a share of its own "
        "change, so they disaggregate too; the day-ahead schedule sold is solved on per-bus inner batteries within "
        "the feeders' limits.</p>"
        + _figure(to_png_base64(fig), "Fleet power band of each virtual battery over the day (shaded: network-secure).")
    )


def network_schedule_rows(ns: dict[str, Any] | None, cur: str) -> list[tuple[str, str]]:
    """The markets table's rows of the schedule sold within the network (none without it)."""
    if ns is None:
        return []
    per = f"[{cur} per {ns['horizon_h']:g} h]"
    cap = "no import cap" if ns.get("import_cap_kw") is None else f"import cap {ns['import_cap_kw']:,.0f} kW"
    blind = ns.get("fleet_wide_ac_violations")
    return [
        (
            f"Schedule sold: network-secure, {ns['n_feeders']} feeders, {cap}: cost {per}",
            f"{ns['cost_network_secure_per_horizon']:,.1f}",
        ),
        (
            "... exact-AC violations (bus- and branch-steps beyond the base load's) / peak fleet power [kW]",
            f"{ns['ac_violations']:,d} / {ns['p_peak_kw']:,.0f}",
        ),
        (
            f"... the same per-bus batteries and cap without the network limits: cost {per} / exact-AC violations",
            f"{ns['cost_unconstrained_per_horizon']:,.1f} / {ns['ac_violations_unconstrained']:,d}",
        ),
        (
            "... fleet-wide network-blind schedule (below) through every feeder's exact AC: violations",
            f"{ns['fleet_wide_note']}" if blind is None else f"{blind:,d}",
        ),
    ]


def network_schedule_note(ns: dict[str, Any] | None) -> str:
    """Why the schedule costs differ (none without a network schedule)."""
    if ns is None:
        return ""
    rule = ns.get("import_cap_rule") or "no import cap"
    return (
        '<p class="muted">The schedule sold is the network-secure one: each bus\'s EVs as an inner virtual '
        "battery (Zhao et al. 2017), each feeder's linearised voltage and thermal limits as constraints, checked "
        f"by the exact power flow, and the import cap ({html.escape(rule)}). The fleet-wide schedules below it "
        "ignore the network: the per-EV LP and the outer battery are lower bounds on cost, the inner battery groups "
        "EVs by plug-in window (not by bus) under the whole-fleet cap. The costs differ by the grouping (window "
        "classes against per-bus batteries), the cap (whole fleet against its split among feeders) and the "
        "network rows.</p>"
    )
