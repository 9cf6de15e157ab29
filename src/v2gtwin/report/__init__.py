"""The study report: one self-contained HTML file (figures embedded) and results.json.

Reads :class:`~v2gtwin.study.StudyResult` only. The page: a header (run date, version, scenario hash), the summary
of key indicators with pass/fail against the scenario's limits, a table of contents, then one section per area,
each with its figures, tables, key numbers, assumptions and limitations, and method note; the same header line
closes it. The sections are drawn by the ``sections_*`` modules and the area modules beside them.
"""

from __future__ import annotations

import html
import os
from datetime import UTC, datetime
from pathlib import Path

from v2gtwin.errors import V2GTwinError
from v2gtwin.jsonout import dumps_strict
from v2gtwin.report.battery_health import battery_health_section
from v2gtwin.report.compliance import compliance_section
from v2gtwin.report.cyber_path import cyber_path_section
from v2gtwin.report.html_parts import CSS
from v2gtwin.report.network_section import grid_label
from v2gtwin.report.protection import protection_section
from v2gtwin.report.resilience import resilience_section
from v2gtwin.report.sections_feeder import feeder_section
from v2gtwin.report.sections_fleet import fleet_section
from v2gtwin.report.sections_markets import markets_section
from v2gtwin.report.sections_ocpp import ocpp_section
from v2gtwin.report.sections_services import path_verdict_rows, services_section
from v2gtwin.report.summary import SUMMARY_CSS, Section, header_html, render_section, summary_html, toc_html
from v2gtwin.study import StudyResult
from v2gtwin.study_summary import calc_kpis, calc_scenario_hash, summary_json

__all__ = ["SECTIONS", "path_verdict_rows", "prepare_out_dir", "render_html", "write_report"]


def _run_section(result: StudyResult) -> str:
    timing = ", ".join(f"{k} {v:.2f} s" for k, v in result.timings_s.items())
    total = sum(result.timings_s.values())
    return f'<h2>Run</h2><p class="muted">Step timings ({total:.1f} s in all): {html.escape(timing)}.</p>'


#: The report's sections in order (anchor, title, drawing function, the result sections and steps behind it).
SECTIONS: tuple[Section, ...] = (
    Section("fleet", "Fleet", fleet_section, ("fleet",), ("build_fleet", "envelope", "uncontrolled")),
    Section("feeder", "Feeder", feeder_section, ("feeder", "fleet"), ("network", "feeder", "hosting", "losses")),
    Section("protection", "Protection", lambda r: protection_section(r.protection), ("protection",), ("protection",)),
    Section(
        "services",
        "Bulk-grid services",
        services_section,
        ("services", "fleet"),
        ("frequency", "cyber_path", "agc", "reserve", "cascade"),
    ),
    Section(
        "markets",
        "Markets and scheduling",
        markets_section,
        ("markets", "fleet"),
        ("battery_cost", "markets", "schedule"),
    ),
    Section("battery", "Battery health", battery_health_section, ("battery",), ("battery_cost", "battery")),
    Section("resilience", "Resilience of a critical facility", resilience_section, ("resilience",), ("resilience",)),
    Section("cyber-path", "Command path", cyber_path_section, ("cyber_path",), ("cyber_path",)),
    Section(
        "ocpp",
        "Control path: OCPP central system",
        ocpp_section,
        ("cyber",),
        ("cyber",),
        absent=lambda r: (
            "cyber.n_stations = 0 (no dispatch through the central system)"
            if r.scenario.cyber.n_stations == 0
            else None
        ),
    ),
    Section("compliance", "Compliance", compliance_section, ("compliance",), ("compliance",)),
    Section("run", "Run", _run_section, (), ()),
)


def render_html(result: StudyResult, run_date: datetime | None = None) -> str:
    """The whole report as one self-contained HTML string (opens offline).

    Parameters
    ----------
    result : the study's result (any section may be None: a box says why in its place).
    run_date : the run's date and time (default: now) [UTC].
    """
    s = result.scenario
    t = s.time
    when = run_date or datetime.now(UTC)
    kpis = calc_kpis(result)
    meta = header_html(result, calc_scenario_hash(s), when)
    drawing_failed: list[str] = []
    body = "".join(render_section(sec, result, kpis, drawing_failed) for sec in SECTIONS)
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>v2gtwin study: {html.escape(s.name)}</title><style>{CSS}{SUMMARY_CSS}</style></head><body>"
        f"<h1>v2gtwin study: {html.escape(s.name)}</h1>"
        f'<header class="meta"><p>{meta}</p><p>{t.n_steps} steps of {t.dt_s:g} s from {t.start_hour:g} h local '
        f"time · fleet source: {html.escape(s.fleet.source)} · {html.escape(grid_label(result))} · currency "
        f"{html.escape(s.currency)}</p></header>"
        + summary_html(result, kpis, drawing_failed)
        + toc_html(SECTIONS)
        + body
        + f'<footer class="meta"><p>{meta}</p></footer>'
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
    # results.json first: a non-finite value is an error before the figures are drawn (seconds of work).
    json_text = dumps_strict(result.to_dict() | summary_json(result))
    html_text = render_html(result)
    paths = {"report": out / "report.html", "results": out / "results.json"}
    try:
        _atomic_write(paths["results"], json_text)
        _atomic_write(paths["report"], html_text)
    except OSError as exc:
        raise V2GTwinError(f"--out {out}: cannot write the report ({exc.strerror})") from None
    return paths
