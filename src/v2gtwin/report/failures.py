"""The report's account of steps that did not run: a box at the top listing every failed and skipped step, and
in place of a section whose steps did not all run, a box saying which step failed and why."""

from __future__ import annotations

import html
from collections.abc import Callable

from v2gtwin.study import StudyChain, StudyResult
from v2gtwin.study_graph import NOT_ASKED

__all__ = ["FAILURE_CSS", "failures_part", "section_or_box"]

#: Style of the boxes (added to the report's stylesheet).
FAILURE_CSS = (
    ".failed{border:2px solid #b00020;background:#fdecea;padding:.5em 1em;margin:1em 0}"
    ".skipped{border:2px solid #8a6d00;background:#fff8e1;padding:.5em 1em;margin:1em 0}"
)


def _why(result: StudyResult, sections: tuple[str, ...]) -> list[str]:
    """One line per step behind ``sections`` that did not run: ``step: why``."""
    steps = dict.fromkeys(s for sec in sections for s in StudyChain.SECTION_STEPS.get(sec, ()))
    lines = [f"{s} failed: {result.failures[s]}" for s in steps if s in result.failures]
    return lines + [f"{s} did not run: {result.skipped[s]}" for s in steps if s in result.skipped]


def failures_part(result: StudyResult) -> str:
    """A box listing the failed steps and the steps skipped because of them (empty when every step asked for
    ran); steps not asked for are named in one line."""
    if result.ok and all(why == NOT_ASKED for why in result.skipped.values()):
        if not result.skipped:
            return ""
        names = ", ".join(result.skipped)
        return f'<p class="muted">Steps not asked for (their sections are left out): {html.escape(names)}.</p>'
    items = [f"<li><b>{html.escape(s)}</b> failed: {html.escape(why)}</li>" for s, why in result.failures.items()]
    items += [
        f"<li>{html.escape(s)} skipped: {html.escape(why)}</li>"
        for s, why in result.skipped.items()
        if why != NOT_ASKED
    ]
    return (
        f'<div class="failed" id="study-failures"><b>{len(result.failures)} step(s) of this study failed</b>; '
        "the sections they feed are replaced by a note, every other section is complete."
        f"<ul>{''.join(items)}</ul></div>"
    )


def section_or_box(
    result: StudyResult, title: str, render: Callable[[StudyResult], str], reads: tuple[str, ...]
) -> str:
    """``render(result)`` when every result section in ``reads`` is there, else a box under ``title`` naming
    the steps behind the missing sections and why they did not run."""
    missing = tuple(sec for sec in reads if getattr(result, sec) is None)
    if not missing:
        return render(result)
    lines = _why(result, missing)
    css = "failed" if any("failed" in line for line in lines) else "skipped"
    body = "".join(f"<li>{html.escape(line)}</li>" for line in lines) or "<li>not computed</li>"
    return f'<h2>{html.escape(title)}</h2><div class="{css}">Not computed:<ul>{body}</ul></div>'
