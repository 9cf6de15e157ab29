"""The report of a recorded closed-loop run (``v2gtwin live report RUN``): the study report's format (one
self-contained HTML file, figures embedded, and ``results.json``), built from the run's records only."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import matplotlib.dates as mdates
from matplotlib.figure import Figure

from v2gtwin import __version__
from v2gtwin.errors import V2GTwinError
from v2gtwin.jsonout import dumps_strict
from v2gtwin.live_state import parse_utc
from v2gtwin.report import _atomic_write, prepare_out_dir
from v2gtwin.report.figures import to_png_base64
from v2gtwin.report.html_parts import CSS, figure_html, table_html
from v2gtwin.report.summary import header_html
from v2gtwin.scenario import Scenario, parse_scenario
from v2gtwin.study_summary import calc_scenario_hash

__all__ = ["fig_live_energy", "fig_live_latency", "render_live_html", "write_live_report"]


_QUANTILES = ("p50", "p99", "max")


def _num(v: Any, fmt: str = ",.2f") -> str:
    return "-" if v is None else format(v, fmt)


def _clock(t_utc: Any, cycle: int) -> float:
    """A cycle's start (UTC) as a matplotlib date number for the time axis (an unreadable time: an error)."""
    try:
        return float(mdates.date2num(parse_utc(str(t_utc), f"cycle {cycle} t_utc").replace(tzinfo=None)))
    except V2GTwinError:
        raise V2GTwinError(f"cycle {cycle}: t_utc = {t_utc!r} is not an ISO-8601 time (a damaged record)") from None


def _time_axis(ax: Any) -> None:
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))


def _live_header(meta: Mapping[str, Any], scenario: Scenario | None) -> str:
    """The study report's header line (version, run date, scenario name, seed and sha256) for a live run."""
    started = str(meta.get("started_utc", ""))
    try:
        when = parse_utc(started, "started_utc")
    except V2GTwinError:
        when = datetime.now(UTC)
    if scenario is None:
        return f"v2gtwin {html.escape(__version__)} · run {html.escape(started)} UTC · scenario not recorded"
    return header_html(cast(Any, SimpleNamespace(scenario=scenario)), calc_scenario_hash(scenario), when)


_ASSUMED_LABELS = {
    "n_capacity_assumed": "EVs without a reported capacity (the scenario's mean class capacity assumed)",
    "n_soc_assumed": "EVs without a SoC reading (arrival SoC assumed)",
    "n_past_departure": "EVs still plugged in after their departure time (one step)",
    "n_departure_assumed": "EVs without a departure time (stay to the horizon's end)",
    "n_departure_beyond_horizon": "EVs leaving after the horizon (request scaled)",
    "n_target_cut": "EVs whose target was out of reach (cut to full power)",
    "n_needs_unmatched": "needs of stations not connected (left out)",
    "n_needs_incomplete": "needs without an energy request (left out)",
}


def _assumptions_part(records: Sequence[Mapping[str, Any]]) -> str:
    """What the plans assumed, as the largest count over the run's cycles (from each cycle's ``plan.assumed``)."""
    assumed = [(r.get("plan") or {}).get("assumed") or {} for r in records]
    rows = []
    for key, label in _ASSUMED_LABELS.items():
        vals = [int(a[key]) for a in assumed if a.get(key) is not None]
        if vals:
            rows.append((label, f"{max(vals)} (in {sum(1 for v in vals if v)} of {len(vals)} cycles)"))
    cap = [float(a["capacity_assumed_kwh"]) for a in assumed if a.get("capacity_assumed_kwh") is not None]
    if cap:
        rows.append(("capacity assumed [kWh]", _num(cap[0], ",.1f")))
    if not rows:
        return ""
    return (
        '<div class="assumptions"><h4>Assumptions of the plans</h4><p class="muted">What OCPP did not say and the '
        "loop assumed, largest count over the cycles.</p>"
        + table_html(("assumption", "EVs, most in a cycle"), rows)
        + "</div>"
    )


_METHOD = (
    "Every interval the loop read the central system's stations and charging needs through its API, built the "
    "live fleet (each need's request tracked in energy since first seen), computed the envelope and, with a "
    "network, the feeders' operating envelopes, re-solved the scenario's schedule for the rest of the horizon "
    "from the current state and sent its first step as set-points (model predictive control). Method page in the "
    "v2gtwin source: docs/operation.md (the closed loop)."
)


def fig_live_energy(summary: Mapping[str, Any]) -> Figure:
    """Planned and delivered energy per cycle [kWh], and their difference."""
    rows = summary["cycles"]
    k = [_clock(r["t_utc"], r["cycle"]) for r in rows]
    fig = Figure(figsize=(8.0, 3.4))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(k, [r["e_planned_kwh"] for r in rows], "o-", label="planned (set-points x interval)")
    ax.plot(
        k,
        [float("nan") if r["e_delivered_kwh"] is None else r["e_delivered_kwh"] for r in rows],
        "s--",
        label="delivered (stations' reported power)",
    )
    ax.set_xlabel("cycle start [UTC]")
    _time_axis(ax)
    ax.set_ylabel("energy per interval [kWh]")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return fig


def fig_live_latency(records: Sequence[Mapping[str, Any]]) -> Figure:
    """Each acknowledged set-point's latency per cycle [s]."""
    fig = Figure(figsize=(8.0, 3.0))
    ax = fig.add_subplot(1, 1, 1)
    for rec in records:
        lat = [r["latency_s"] for r in rec.get("results") or [] if r.get("latency_s") is not None]
        ax.plot([_clock(rec.get("t_utc"), rec["cycle"])] * len(lat), lat, ".", color="C0", alpha=0.5)
    ax.set_xlabel("cycle start [UTC]")
    _time_axis(ax)
    ax.set_ylabel("set-point latency [s]")
    ax.grid(alpha=0.3)
    return fig


def render_live_html(meta: Mapping[str, Any], records: Sequence[Mapping[str, Any]], summary: Mapping[str, Any]) -> str:
    """The run's HTML page in the study report's format: the header and footer line (version, run date, scenario
    name, seed, sha256), the run, planned against delivered, latencies, the plans' assumptions and the method note
    (with a regulation section when ``summary`` has ``regulation`` ticks)."""
    scenario = _scenario_of(meta)
    currency = summary.get("currency") or (scenario.currency if scenario is not None else "")
    costs = [(r.get("plan") or {}).get("cost_per_horizon") for r in records]
    costs_f = [float(c) for c in costs if c is not None]
    head = [
        ("server", str(meta.get("server", ""))),
        ("started (UTC)", str(meta.get("started_utc", ""))),
        ("interval [s]", _num(summary["interval_s"], ",.0f")),
        ("cycles (failed)", f"{summary['n_cycles']} ({summary['n_cycles_failed']})"),
        ("cycles longer than the interval", str(summary.get("n_cycles_overran", 0))),
        ("set-points acknowledged / not", f"{summary['n_acknowledged']} / {summary['n_not_acknowledged']}"),
        ("latency p50 / p99 / max [s]", " / ".join(_num(summary[f"latency_{q}_s"], ".3f") for q in _QUANTILES)),
        ("largest |delivered - planned| per interval [kWh]", _num(summary["e_deviation_max_kwh"], ",.3f")),
        (
            f"planned cost of the horizon, first / last cycle [{currency}]",
            f"{_num(costs_f[0] if costs_f else None)} / {_num(costs_f[-1] if costs_f else None)}",
        ),
    ]
    rows = [
        (
            str(r["cycle"]),
            str(r["t_utc"]),
            str(r["n_evs"]),
            _num(r["p_set_total_kw"]),
            _num(r["e_planned_kwh"]),
            _num(r["e_delivered_kwh"]),
            _num(r["e_deviation_kwh"]),
            str(r["n_acknowledged"]),
            _num(r["solve_s"], ".3f"),
            _num(r.get("cycle_s"), ".3f") + (" (over the interval)" if r.get("overran") else ""),
            "; ".join(x for x in (r.get("delivered_note"), r["error"]) if x),
        )
        for r in summary["cycles"]
    ]
    body = (
        "<h2>Run</h2>"
        + table_html(("quantity", "value"), head)
        + "<h2>Planned against delivered</h2>"
        + '<p class="muted">Planned: the set-points sent in a cycle held for the interval. Delivered: the power '
        "the same stations report at the next cycle (their meters' latest reading) held for the interval, counted "
        "only for readings taken after the set-points were acknowledged (a reading from before is the power before "
        "the set-point: left out, with a note). The last cycle has no next reading.</p>"
        + figure_html(to_png_base64(fig_live_energy(summary)), "Energy per interval, planned and delivered.")
        + table_html(
            (
                "cycle",
                "time (UTC)",
                "EVs",
                "set-points [kW]",
                "planned [kWh]",
                "delivered [kWh]",
                "deviation [kWh]",
                "acknowledged",
                "model [s]",
                "cycle [s]",
                "note / error",
            ),
            rows,
        )
        + "<h2>Latencies</h2>"
        + figure_html(
            to_png_base64(fig_live_latency(records)), "Set-point latency (send to acknowledgement) per cycle."
        )
        + _regulation_part(summary.get("regulation"))
        + _assumptions_part(records)
        + f'<div class="method"><h4>Method</h4><p>{html.escape(_METHOD)}</p></div>'
    )
    line = _live_header(meta, scenario)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>v2gtwin live run</title><style>{CSS}</style></head><body>"
        f'<h1>Closed-loop run</h1><header class="meta"><p>{line}</p>'
        f"<p>server {html.escape(str(meta.get('server', '')))}"
        f" · interval {_num(summary['interval_s'], ',.0f')} s · currency {html.escape(currency)}</p></header>"
        + body
        + f'<footer class="meta"><p>{line}</p></footer></body></html>'
    )


def _scenario_of(meta: Mapping[str, Any]) -> Scenario | None:
    """The run's scenario from ``run.json`` (None when it is not there or does not read: the header says so)."""
    import tomllib

    text = meta.get("scenario_toml")
    if not isinstance(text, str):
        return None
    try:
        return parse_scenario(tomllib.loads(text), "run.json")
    except (V2GTwinError, ValueError):
        return None


def _regulation_part(reg: Mapping[str, Any] | None) -> str:
    if not reg or not reg.get("n_ticks"):
        return ""
    rows = [
        ("ticks sent (failed)", f"{reg['n_ticks']} ({reg['n_ticks_failed']})"),
        ("band, smallest / largest [kW]", f"{_num(reg['capacity_min_kw'])} / {_num(reg['capacity_max_kw'])}"),
        ("share of the requested injection allocated", _num(reg["allocated_share"], ".3f")),
        ("slowest acknowledgement [s]", _num(reg["latency_max_s"], ".3f")),
    ]
    return (
        "<h2>Regulation</h2>"
        '<p class="muted">Every 2 s between cycles: the signal times the fleet\'s symmetric band around the '
        "cycle's set-points, allocated across the EVs and sent.</p>" + table_html(("quantity", "value"), rows)
    )


def write_live_report(
    meta: Mapping[str, Any],
    records: Sequence[Mapping[str, Any]],
    out_dir: str | Path,
    ticks: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Path]:
    """Write ``report.html`` and ``results.json`` (the run's summary, :func:`v2gtwin.live.summarize_run`) into
    ``out_dir``, each written to a temporary name and renamed."""
    from v2gtwin.live import summarize_regulation, summarize_run

    out = prepare_out_dir(out_dir)
    summary = summarize_run(records, float(meta.get("interval_s", 300.0)))
    scenario = _scenario_of(meta)
    if scenario is not None:
        summary |= {"currency": scenario.currency, "scenario_hash": calc_scenario_hash(scenario)}
    if ticks:
        summary["regulation"] = summarize_regulation(ticks)
    paths = {"report": out / "report.html", "results": out / "results.json"}
    try:
        _atomic_write(paths["results"], dumps_strict(summary))
        _atomic_write(paths["report"], render_live_html(meta, records, summary))
    except OSError as exc:
        raise V2GTwinError(f"--out {out}: cannot write the report ({exc.strerror})") from None
    return paths
