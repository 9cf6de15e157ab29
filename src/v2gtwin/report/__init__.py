"""The study report: one self-contained HTML file (figures embedded) and results.json.

Reads :class:`~v2gtwin.study.StudyResult` only.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

from v2gtwin import __version__
from v2gtwin.errors import V2GTwinError
from v2gtwin.report.figures import (
    fig_arrivals,
    fig_energy_envelope,
    fig_power_envelope,
    fig_soc,
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
