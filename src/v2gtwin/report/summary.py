"""The report's frame: the header (run date, version, scenario hash), the summary of key indicators with
pass/fail, the table of contents, each section's wrapper (anchor, key numbers, assumptions, method) and the box
that stands in for a section whose steps did not run."""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from v2gtwin import __version__
from v2gtwin.report.assumptions import method_part
from v2gtwin.study_result import StudyResult
from v2gtwin.study_summary import Kpi

__all__ = ["SUMMARY_CSS", "Section", "header_html", "kpi_value_text", "render_section", "summary_html", "toc_html"]

logger = logging.getLogger(__name__)

SUMMARY_CSS = """
nav#toc ol{columns:2;margin:.3em 0}.pass{color:#0a6b1f;font-weight:600}.fail{color:#b00020;font-weight:600}
.nolimit{color:#666}.skipped{border:2px solid #8a6d00;background:#fff8e1;padding:.5em 1em;margin:1em 0}
.failed{border:2px solid #b00020;background:#fdecea;padding:.5em 1em;margin:1em 0}
.assumptions,.method{background:#f7f7f9;border-left:3px solid #bbb;padding:.2em 1em;margin:1em 0;font-size:.92em}
h4{margin:.5em 0 .2em}.why{border-left:3px solid #e0a800;padding-left:.8em}code.hash{font-size:.85em}
header.meta,footer.meta{color:#555;font-size:.9em}footer.meta{border-top:1px solid #ccc;margin-top:3em}
tr.kpi td:nth-child(3){white-space:nowrap}
"""


@dataclass(frozen=True)
class Section:
    """One section of the report.

    Attributes
    ----------
    anchor : its id (the table of contents links to it; key indicators name it).
    title : its title in the table of contents and in the box that stands in for it.
    render : draws it from the result (only called when every attribute in ``reads`` is set).
    reads : the result's sections it needs (None there: the stand-in box).
    steps : the study steps behind it, whose failure or skip the box reports.
    absent : why the section is left out when the scenario turns it off (None: it is always part of a study).
    """

    anchor: str
    title: str
    render: Callable[[StudyResult], str]
    reads: tuple[str, ...]
    steps: tuple[str, ...]
    absent: Callable[[StudyResult], str | None] | None = None


def _fmt(value: float, unit: str) -> str:
    """A key indicator's value for people, in its unit."""
    spec = {"pu": ".4g", "%": ".1f", "kW": ",.0f", "kWh": ",.1f", "Hz": ".3f"}.get(unit)
    if spec is not None:
        return format(value, spec)
    if unit == "-":
        return f"{value:,.0f}" if float(value).is_integer() else f"{value:.3g}"
    return f"{value:,.2f}"  # an amount of money


def kpi_value_text(k: Kpi) -> str:
    """'0.9527 pu', or 'not computed' with why."""
    if k.value is None:
        return "not computed" + (f" ({k.note})" if k.note else "")
    return f"{_fmt(k.value, k.unit)} {k.unit}".rstrip(" -")


def _limit_text(k: Kpi) -> str:
    if k.limit is None:
        return "—"
    return f"{'≤' if k.limit_kind == 'upper' else '≥'} {_fmt(k.limit, k.unit)} {k.unit}".rstrip(" -")


def _verdict(k: Kpi) -> str:
    if k.passed is None:
        return '<span class="nolimit">no limit</span>' if k.limit is None else '<span class="nolimit">—</span>'
    return '<span class="pass">PASS</span>' if k.passed else '<span class="fail">FAIL</span>'


def _note(k: Kpi) -> str:
    """A valued indicator's note, small under its value (a missing value already says why)."""
    return f'<br><span class="muted">{html.escape(k.note)}</span>' if k.note and k.value is not None else ""


def _passed_attr(k: Kpi) -> str:
    return "" if k.passed is None else str(k.passed).lower()


def _kpi_rows(kpis: Sequence[Kpi], link: bool) -> str:
    head = "<tr><th>indicator</th><th>value</th><th>limit</th><th>verdict</th>" + ("<th>section</th>" if link else "")
    rows = "".join(
        f'<tr class="kpi" data-key="{html.escape(k.key)}" data-passed="{_passed_attr(k)}">'
        f"<td>{html.escape(k.label)}</td><td>{html.escape(kpi_value_text(k))}{_note(k)}</td>"
        f"<td>{html.escape(_limit_text(k))}</td><td>{_verdict(k)}</td>"
        + (f'<td><a href="#{html.escape(k.section)}">{html.escape(k.section)}</a></td>' if link else "")
        + "</tr>"
        for k in kpis
    )
    return f"<table>{head}</tr>{rows}</table>"


def summary_html(result: StudyResult, kpis: Sequence[Kpi], drawing_failed: Sequence[str] = ()) -> str:
    """The summary at the top: counts of passed and failed indicators, the failed and skipped steps, the table."""
    n_pass = sum(k.passed is True for k in kpis)
    n_fail = sum(k.passed is False for k in kpis)
    failures: dict[str, str] = getattr(result, "failures", {}) or {}
    skipped: dict[str, str] = getattr(result, "skipped", {}) or {}
    verdict = (
        f'<span class="fail">{n_fail} FAIL</span>' if n_fail else '<span class="pass">every limit met</span>'
    ) + f" · {n_pass} pass · {len(kpis) - n_pass - n_fail} without a limit or a value"
    steps = ""
    if failures or skipped:
        items = [f"<li><b>{html.escape(s)}</b> failed: {html.escape(w)}</li>" for s, w in failures.items()]
        items += [f"<li>{html.escape(s)} did not run: {html.escape(w)}</li>" for s, w in skipped.items()]
        css = "failed" if failures else "skipped"
        steps = f'<div class="{css}" id="study-failures">Steps not completed:<ul>{"".join(items)}</ul></div>'
    if drawing_failed:
        li = "".join(f"<li>{html.escape(s)}</li>" for s in drawing_failed)
        steps += f'<div class="failed">Sections that could not be drawn:<ul>{li}</ul></div>'
    return (
        '<section id="summary"><h2>Summary</h2>'
        f"<p>{verdict}. Each indicator is judged against the scenario's limit; the last column links to the "
        "section that explains it.</p>" + steps + _kpi_rows(kpis, link=True) + "</section>"
    )


def toc_html(sections: Sequence[Section]) -> str:
    items = '<li><a href="#summary">Summary</a></li>' + "".join(
        f'<li><a href="#{html.escape(s.anchor)}">{html.escape(s.title)}</a></li>' for s in sections
    )
    return f'<nav id="toc"><h2>Contents</h2><ol>{items}</ol></nav>'


def header_html(result: StudyResult, scenario_hash: str, run_date: datetime) -> str:
    """Run date (UTC), v2gtwin version and the scenario's hash, at the top and the bottom of the report."""
    s = result.scenario
    return (
        f"v2gtwin {html.escape(__version__)} · run {run_date.strftime('%Y-%m-%d %H:%M:%S')} UTC · scenario "
        f'"{html.escape(s.name)}", seed {s.seed}, sha256 <code class="hash">{scenario_hash}</code>'
    )


def _missing_box(section: Section, result: StudyResult) -> str:
    """Stands in for a section whose result is None: which of its steps failed or did not run, and why."""
    failures: dict[str, str] = getattr(result, "failures", {}) or {}
    skipped: dict[str, str] = getattr(result, "skipped", {}) or {}
    lines = [f"{s} failed: {failures[s]}" for s in section.steps if s in failures]
    lines += [f"{s} did not run: {skipped[s]}" for s in section.steps if s in skipped]
    if not lines and section.absent is not None and (why := section.absent(result)):
        return f'<p class="muted">Not part of this study: {html.escape(why)}.</p>'
    body = "".join(f"<li>{html.escape(x)}</li>" for x in lines) or "<li>its steps did not produce a result</li>"
    css = "failed" if any("failed" in x for x in lines) else "skipped"
    return f'<div class="{css}">Not computed:<ul>{body}</ul></div>'


def render_section(section: Section, result: StudyResult, kpis: Sequence[Kpi], drawing_failed: list[str]) -> str:
    """The section inside its anchor: its content (or the stand-in box), its key numbers, its assumptions and
    method. A section that raises while drawing is replaced by a box naming the error (and listed in
    ``drawing_failed``, which the summary shows): the rest of the report is still written."""
    mine = [k for k in kpis if k.section == section.anchor]
    missing = any(getattr(result, name, None) is None for name in section.reads)
    if missing:
        body = f"<h2>{html.escape(section.title)}</h2>" + _missing_box(section, result)
    else:
        try:
            body = section.render(result)
        except Exception as exc:
            logger.exception("report section %s could not be drawn", section.anchor)
            msg = f"{section.title}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            drawing_failed.append(msg)
            body = (
                f'<h2>{html.escape(section.title)}</h2><div class="failed">This section could not be drawn: '
                f"{html.escape(msg)}</div>"
            )
        if not body.lstrip().startswith("<h2"):
            body = f"<h2>{html.escape(section.title)}</h2>" + (body or "")
    key_numbers = "<h4>Key numbers</h4>" + _kpi_rows(mine, link=False) if mine else ""
    return (
        f'<section id="{html.escape(section.anchor)}" class="study-section">'
        + body
        + key_numbers
        + method_part(section.anchor, result, assumptions=not missing)
        + "</section>"
    )
