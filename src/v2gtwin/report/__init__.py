"""The study report: one self-contained HTML file (figures embedded) and results.json.

Reads :class:`~v2gtwin.study.StudyResult` only.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Sequence
from pathlib import Path

from v2gtwin import __version__
from v2gtwin.errors import V2GTwinError
from v2gtwin.report.figures import (
    fig_arrivals,
    fig_dispatch,
    fig_energy_envelope,
    fig_feeder_vmin,
    fig_hosting,
    fig_power_envelope,
    fig_soc,
    fig_voltage_profile,
    format_clock,
    to_png_base64,
)
from v2gtwin.study import StudyResult

__all__ = ["render_html", "write_report"]

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
    peak_clock = format_clock(f.clock_h[int(f.summary.get("p_peak_step", 0))]) if f.clock_h.size else "-"
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
    rows = [
        ("lowest voltage, base load only [pu]", f"{s['v_min_base_pu']:.4f}"),
        ("lowest voltage with uncontrolled EV charging [pu]", f"{s['v_min_fleet_pu']:.4f}"),
        (
            f"... with volt-var (curve {spec.voltvar_curve}) on the EV inverters [pu]",
            f"{s['v_min_voltvar_pu']:.4f}",
        ),
        ("fleet hosting: largest scaling of the uncontrolled charging", f"{fh.scale:.3f}"),
        ("... binding constraint", f"{fh.binding} (step {fh.binding_step})"),
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
        + f'<p class="muted">Base load: the feeder\'s nominal loads x {spec.peak_load_scale:g} x the IEEE RTS-79 '
        "winter-weekday daily shape. Exact AC power flow (backward/forward sweep, validated against pandapower). "
        f"Volt-var: IEEE 1547-2018 Category {spec.voltvar_curve} default curve, {spec.voltvar_priority} priority, "
        f"inverters rated {spec.s_over_p:g} kVA per kW of charger, {ts.voltvar_iterations} fixed-point "
        "iterations.</p>"
        + _figure(
            to_png_base64(fig_feeder_vmin(fl, fd, spec.v_min_pu)),
            "Lowest bus voltage per step, with the aggregate EV charging shaded.",
        )
        + _figure(
            to_png_base64(fig_voltage_profile(fd)),
            "Voltage of every bus at the step with the lowest voltage.",
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
        f"subtracts the base load's own losses ({d.losses_base_kwh:,.1f} kWh).</p>"
        + _figure(to_png_base64(fig_dispatch(fl, fd)), "Aggregate EV charging of each policy.")
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
        f"{t.start_hour:g} h local time · fleet source: {html.escape(s.fleet.source)} · feeder: "
        f"{html.escape(s.feeder.name)}</p>"
        + _fleet_section(result)
        + _feeder_section(result)
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


def write_report(result: StudyResult, out_dir: str | Path) -> dict[str, Path]:
    """Write ``report.html`` and ``results.json`` into ``out_dir`` (created if needed).

    Files are written to a temporary name and renamed, so an earlier report is replaced only by a
    complete new one.
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise V2GTwinError(f"--out {out}: cannot create the output folder ({exc.strerror})") from None
    if not out.is_dir():
        raise V2GTwinError(f"--out {out}: not a folder")
    html_text = render_html(result)
    json_text = json.dumps(result.to_dict(), indent=1)
    paths = {"report": out / "report.html", "results": out / "results.json"}
    try:
        _atomic_write(paths["results"], json_text)
        _atomic_write(paths["report"], html_text)
    except OSError as exc:
        raise V2GTwinError(f"--out {out}: cannot write the report ({exc.strerror})") from None
    return paths
