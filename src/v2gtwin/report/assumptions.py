"""Per report section: its assumptions and limitations (each stated from the scenario and the result, so that it
holds for the study at hand) and its method note with the documentation page that explains it.

The report is one file that opens offline, so each section carries a short method note of its own and names its
documentation page (``docs/<area>.md`` in the v2gtwin source); the page is also linked by its path relative to a
report written into the source tree's ``out/`` folder (``make study``), where that link opens.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from v2gtwin.study_result import StudyResult

__all__ = ["DOCS", "METHODS", "assumptions_of", "method_part"]

#: Documentation pages of each section: (path in the source tree, page title).
DOCS: dict[str, tuple[tuple[str, str], ...]] = {
    "fleet": (("docs/fleet.md", "The EV fleet: model, envelope and synthetic sessions"),),
    "feeder": (
        ("docs/feeder.md", "Distribution feeder: power flow, hosting capacity, losses, volt-var"),
        ("docs/network.md", "A network of feeders and operating envelopes"),
    ),
    "protection": (("docs/protection.md", "Fault currents and relay coordination"),),
    "services": (("docs/frequency.md", "Frequency response, AGC, reserve, DR and cascades"),),
    "markets": (("docs/markets.md", "Markets, pricing, bids and schedules"),),
    "battery": (("docs/battery.md", "Battery degradation and validation experiments"),),
    "resilience": (("docs/resilience.md", "Resilience of a critical facility"),),
    "cyber-path": (
        ("docs/cyber.md", "Command path: latency, reliability, Plug & Charge"),
        ("docs/cyber_network.md", "The command path on a real network"),
    ),
    "ocpp": (("docs/csms.md", "The OCPP central system"),),
    "compliance": (("docs/compliance.md", "Compliance rules and the asset register"),),
    "run": (),
}

#: One or two sentences on how each section is computed.
METHODS: dict[str, str] = {
    "fleet": "Each EV is simulated step by step (structure of arrays); the envelope sums each plugged-in EV's "
    "power box and energy band.",
    "feeder": "Exact AC power flow of the balanced equivalent (backward/forward sweep, checked against "
    "pandapower) at every step; hosting capacity by bisection on the exact power flow.",
    "protection": "IEC 60909 three-phase short-circuit currents (checked against pandapower) with the V2G "
    "inverters adding k times their rated current; relay curves of IEC 60255-151 and IEEE C37.112.",
    "services": "Swing equation of a lumped system with governor droop and every plugged-in EV's droop (RK4); a "
    "two-area AGC loop; the PJM performance score on a regulation signal.",
    "markets": "Linear programmes (HiGHS) for the schedules, a second-order cone programme (Clarabel) for the "
    "robust schedule, the newsvendor fractile for the bid.",
    "battery": "Published calendar and cycle ageing models on each EV's SoC trajectory (rainflow cycle count).",
    "resilience": "Energy balance of the facility's microgrid (generator, battery, PV, V2G) through the outage.",
    "cyber-path": "Segment delay distributions convolved on a grid, with retries, checked by Monte Carlo.",
    "ocpp": "A real OCPP central system and simulated stations on loopback exchanging OCPP messages.",
    "compliance": "Rule tables with their clause citations applied to the study's own inverters.",
    "run": "",
}


def _fleet(result: StudyResult) -> list[str]:
    sc = result.scenario
    src = sc.fleet.source
    if src == "synthetic":
        first = (
            f"EV sessions are synthetic: seeded draws (seed {sc.seed}); workplace parameters fitted to ACN-Data "
            "sessions, home sessions an assumed evening-arrival / morning-departure commuter pattern."
        )
    elif src == "acn":
        first = f"EV sessions are real ACN-Data sessions (site {sc.fleet.acn_site}, {sc.fleet.acn_date})."
    elif src == "csv":
        first = f"EV sessions from the user's file fleet.sessions_csv = {sc.fleet.sessions_csv}."
    else:
        first = f"EV sessions from the fleet source '{src}'."
    return [
        first,
        "Uncontrolled charging (the baseline of every comparison): each EV at its charger's full power from "
        "arrival until its target.",
        "Battery classes, the V2G share and the charging and discharging efficiencies are scenario assumptions, "
        "not measurements.",
    ]


def _feeder(result: StudyResult) -> list[str]:
    sc = result.scenario
    out = [
        "Balanced single-phase (positive-sequence) equivalent of the feeder: no phase unbalance, no "
        "transformers, voltage regulators or capacitors.",
    ]
    if named := _file_field(sc.feeder, "base_load_csv"):
        out.append(f"Base load from {named}.")
    elif sc.network is None:
        out.append("The base load of every bus follows one daily shape, the IEEE RTS-79 winter weekday.")
    else:
        out.append("Each feeder's base load follows its own daily profile (the feeder table names it).")
    if sc.network is None and sc.feeder.ampacity_a is None:
        out.append("No branch rating is set ([feeder] ampacity_a): branch loading is not judged in this study.")
    return out


def _services(result: StudyResult) -> list[str]:
    f = result.scenario.frequency
    return [
        f"Lumped {f.system_mw:g} MW system: one inertia constant and one governor droop, no network inside it.",
        "The regulation signal is synthetic (RegD-like, seeded): no PJM signal ships with v2gtwin.",
        "The UFLS stages of the cascade (59.0, 58.7, 58.4 Hz) are illustrative.",
    ]


def _file_field(spec: Any, name: str) -> str | None:
    """``"name = value"`` when the scenario section ``spec`` names a data file in its field ``name`` (the user's
    own CSV data, docs/data_in.md), else None."""
    value = getattr(spec, name, None)
    return f"{name} = {value}" if value else None


def _markets(result: StudyResult) -> list[str]:
    sc = result.scenario
    m = sc.markets
    named = _file_field(m, "price_csv")
    out = [
        f"Energy prices from {named}."
        if named
        else f"Energy prices are synthetic: {m.price_base_per_mwh:g} + ({m.price_peak_per_mwh:g} − "
        f"{m.price_base_per_mwh:g}) {sc.currency}/MWh × the squared normalised RTS-79 load shape, not market data.",
    ]
    if result.fleet is not None and int(result.fleet.summary["n_evs"]) > m.schedule_max_evs:
        out.append(
            f"The per-EV schedule runs on a seeded sample of {m.schedule_max_evs:,} EVs "
            "(markets.schedule_max_evs), not on every EV."
        )
    if result.markets is not None:
        out.append(f"V2G degradation cost: {result.markets.schedule.degradation_source} (docs/battery.md).")
    return out


def _battery(result: StudyResult) -> list[str]:
    b = result.scenario.battery
    return [
        f"One battery temperature over the day ({b.temp_c:g} °C, battery.temp_c).",
        f"Cell chemistry drawn per EV: LFP share {b.lfp_share:g} (an assumption).",
    ]


def _resilience(result: StudyResult) -> list[str]:
    return [
        "On-site PV follows a clear equinox day (an assumption), the critical load its scenario shape.",
        "The EVs near the facility are a seeded share of the fleet (resilience.fleet_share); each helps only while "
        "plugged in.",
    ]


def _cyber_path(result: StudyResult) -> list[str]:
    if result.cyber_path is None:
        return []
    segs = result.cyber_path.summary()["segments"]
    unverified = [f"{s['name']}: {s['source']}" for s in segs if "unverified" in str(s.get("source", ""))]
    return (["Figures of the path marked unverified are assumptions:", *unverified] if unverified else []) + [
        "Delays of the segments are independent of each other."
    ]


def _ocpp(result: StudyResult) -> list[str]:
    return ["Stations are simulated on loopback: latencies are a lower bound for a real cellular path."]


def _compliance(result: StudyResult) -> list[str]:
    return [
        "Only the study's own inverters (its V2G groups) are audited, against IEEE 1547-2018; meters and market "
        "enrolments need an asset register (v2gtwin comply)."
    ]


def _protection(result: StudyResult) -> list[str]:
    return [
        "Bolted three-phase faults on the balanced equivalent only; fuses are not modelled.",
        "Grid short-circuit data stand in as the notes above say when the scenario does not give them.",
    ]


_ASSUMPTIONS: dict[str, Callable[[StudyResult], list[str]]] = {
    "fleet": _fleet,
    "feeder": _feeder,
    "protection": _protection,
    "services": _services,
    "markets": _markets,
    "battery": _battery,
    "resilience": _resilience,
    "cyber-path": _cyber_path,
    "ocpp": _ocpp,
    "compliance": _compliance,
}


def assumptions_of(anchor: str, result: StudyResult) -> list[str]:
    """The assumptions and limitations of the section ``anchor`` (empty for a section without any)."""
    fn = _ASSUMPTIONS.get(anchor)
    return [] if fn is None else fn(result)


def method_part(anchor: str, result: StudyResult, *, assumptions: bool = True) -> str:
    """The section's "Assumptions and limitations" list (``assumptions=False``: left out, for a section that was
    not computed) and its "Method" note with its documentation pages."""
    items = assumptions_of(anchor, result) if assumptions else []
    out = ""
    if items:
        li = "".join(f"<li>{html.escape(s)}</li>" for s in items)
        out += f'<div class="assumptions"><h4>Assumptions and limitations</h4><ul>{li}</ul></div>'
    docs = DOCS.get(anchor, ())
    if METHODS.get(anchor) or docs:
        links = "; ".join(
            f'<a href="../{html.escape(path)}">{html.escape(path)}</a> ({html.escape(title)})' for path, title in docs
        )
        out += (
            f'<div class="method"><h4>Method</h4><p>{html.escape(METHODS.get(anchor, ""))}'
            + (f" Method page{'s' if len(docs) > 1 else ''} in the v2gtwin source: {links}." if docs else "")
            + "</p></div>"
        )
    return out
