"""The report's compliance section: the IEEE 1547-2018 audit of the study's own V2G inverters (the settings the
frequency, cascade and feeder steps simulate), its findings and remediation plan. Reads the study result only."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING

from v2gtwin.compliance.findings import SOURCE_NOTE

if TYPE_CHECKING:
    from v2gtwin.study import StudyResult

__all__ = ["compliance_section"]

_ORDER = {"fail": 0, "warning": 1, "not-assessed": 2, "pass": 3}


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def compliance_section(result: StudyResult) -> str:
    """The HTML section (empty when the study did not run the compliance step)."""
    audit = result.compliance
    if audit is None:
        return ""
    d = audit.to_dict()
    counts = d["counts"]
    units = {f.asset: f.units for f in audit.findings}
    rows = [
        (
            f.status,
            f.rule,
            f"{f.asset} ({units[f.asset]:,} units)",
            f.evidence,
            f.citation + ("" if f.corroborated else " *"),
        )
        for f in sorted(audit.findings, key=lambda f: (_ORDER[f.status], f.rule, f.asset))
        if f.status != "pass"
    ]
    passed = [f for f in audit.findings if f.status == "pass"]
    pass_rules = {f.rule for f in passed}
    rem = d["remediation"]
    plan = [
        (
            a["action"],
            a["description"],
            str(a["n_assets"]),
            f"{a['units']:,}",
            "-" if a["cost"] is None else f"{a['cost']:,.0f} {rem['currency']}",
        )
        for a in rem["actions"]
    ]
    notes = "".join(f"<p>{html.escape(n)}</p>" for n in audit.notes)
    return (
        "<h2>Compliance (IEEE 1547-2018) of the study's own inverters</h2>"
        "<p>The study's V2G inverters are audited with the trip, frequency-droop and volt-var settings the frequency, "
        "cascade and feeder steps simulate: the same IEEE 1547-2018 table of defaults and allowed ranges feeds both "
        "(docs/compliance.md lists every rule and its source). "
        f"Findings: {counts['fail']} fail, {counts['warning']} warning, {counts['not-assessed']} not assessed, "
        f"{counts['pass']} pass.</p>"
        + notes
        + _table(("status", "rule", "asset", "evidence", "citation"), rows)
        + f'<p class="muted">{len(passed)} passing findings not listed ({", ".join(sorted(pass_rules))}). '
        "* rests on a value only one (secondary) source gives. "
        + html.escape(SOURCE_NOTE)
        + "</p>"
        + "<h3>Remediation plan</h3>"
        + (_table(("action", "what", "assets", "units", "cost"), plan) if plan else "<p>Nothing to remediate.</p>")
    )
