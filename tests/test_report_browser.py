"""The report in a real browser (headless Chromium over the DevTools protocol, without network), and the browser
helper itself on a page with known faults."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.browser import open_page, require_browser
from v2gtwin import __version__
from v2gtwin.report import SECTIONS, write_report
from v2gtwin.report.assumptions import DOCS
from v2gtwin.report.summary import header_html
from v2gtwin.scenario import parse_scenario
from v2gtwin.study import StudyChain
from v2gtwin.study_summary import calc_scenario_hash

# A 1x1 GIF (the smallest valid image) and a page with four known faults: a console.error, an uncaught
# exception, an image from the internet (the browser has no network) and a hidden element.
_GIF = "data:image/gif;base64,R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw=="
_FAULTY = f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>faults</title></head><body>
<h2 id="shown">shown</h2><div id="hidden" style="display:none">hidden</div>
<img id="local" src="{_GIF}"><img id="remote" src="https://example.com/x.png">
<script>console.error("boom"); setTimeout(() => {{ throw new Error("late"); }}, 0);</script></body></html>"""


def test_helper_sees_console_errors_failed_loads_and_hidden_elements(tmp_path: Path) -> None:
    require_browser()
    page = tmp_path / "faulty.html"
    page.write_text(_FAULTY, encoding="utf-8")
    shot = tmp_path / "faulty.png"
    r = open_page(page, selectors=("#shown", "#hidden", "#absent"), screenshot=shot, expression="6 * 7")
    assert r.title == "faults" and r.value == 42
    assert r.elements == {
        "#shown": {"count": 1, "visible": 1},
        "#hidden": {"count": 1, "visible": 0},
        "#absent": {"count": 0, "visible": 0},
    }
    errors = " | ".join(r.console_errors)
    assert "boom" in errors and "late" in errors and "example.com" in errors
    sizes = [(i["natural_width"], i["natural_height"]) for i in r.images]
    assert sizes == [(1, 1), (0, 0)]  # the GIF is 1x1; the remote image never loaded
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- the study's report -----------------------------------------------------------------------------------------
# One cheap study (200 EVs, 24 hourly steps, no OCPP dispatch) and its report, shared by the tests of this module.
SMALL = {"fleet": {"n_evs": 200}, "time": {"n_steps": 24, "dt_s": 3600}, "cyber": {"n_stations": 0}}
RUN_DATE = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _computed(result: Any) -> list[Any]:
    """The report's sections whose result sections are all present (the study computed them); not "Run"."""
    return [s for s in SECTIONS if s.reads and all(getattr(result, n, None) is not None for n in s.reads)]


def test_every_method_page_exists() -> None:
    # Each section names its documentation pages by their path in the source tree; each must be there.
    root = Path(__file__).resolve().parents[1]
    paths = [path for pages in DOCS.values() for path, _ in pages]
    assert len(paths) >= 10
    assert [p for p in paths if not (root / p).is_file()] == []


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path, str]:
    result = StudyChain(parse_scenario(SMALL)).run()
    out = tmp_path_factory.mktemp("report")
    paths = write_report(result, out)
    return result, out, paths["report"].read_text(encoding="utf-8")


@pytest.mark.slow
def test_report_opens_in_chromium_without_errors(report: tuple[Any, Path, str]) -> None:
    require_browser()
    result, out, page = report
    anchors = [f"#{s.anchor}" for s in SECTIONS]
    shot = out / "report.png"
    # Every computed section (all its result sections present) states its assumptions and its method note.
    computed = [s.anchor for s in _computed(result)]
    notes = [f"#{a} .method" for a in computed] + [f"#{a} .assumptions li" for a in computed]
    r = open_page(out / "report.html", selectors=("#summary", "#toc", *anchors, *notes), screenshot=shot)
    print(f"screenshot of the report: {shot}")
    assert r.console_errors == []
    assert r.title.startswith("v2gtwin study")
    for sel, seen in r.elements.items():
        if sel.endswith(" li"):  # one or more assumptions, every one shown
            assert seen["count"] >= 1 and seen["visible"] == seen["count"], sel
        else:
            assert seen == {"count": 1, "visible": 1}, sel
    n_img = page.count("<img ")
    assert n_img >= 10 and len(r.images) == n_img
    for img in r.images:  # every figure decoded (an image that fails to load has natural size 0) and shown
        assert img["complete"] and img["natural_width"] > 0 and img["natural_height"] > 0 and img["visible"], img
    assert shot.stat().st_size > 10_000


@pytest.mark.slow
def test_every_toc_anchor_resolves_and_every_section_is_listed(report: tuple[Any, Path, str]) -> None:
    _, _, page = report
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids)), "duplicate ids"
    toc = re.search(r'<nav id="toc">(.*?)</nav>', page, re.S)
    assert toc is not None
    targets = re.findall(r'href="#([^"]+)"', toc.group(1))
    assert targets == ["summary", *(s.anchor for s in SECTIONS)]
    assert set(re.findall(r'href="#([^"]+)"', page)) <= set(ids)  # every in-page link, the summary's too
    assert "could not be drawn" not in page
    # Without a browser too: each computed section carries its assumptions list and its method note.
    result = report[0]
    for sec in _computed(result):
        body = re.search(rf'<section id="{re.escape(sec.anchor)}"(.*?)</section>', page, re.S)
        assert body is not None, sec.anchor
        assert '<div class="assumptions"><h4>Assumptions and limitations</h4><ul><li>' in body.group(1), sec.anchor
        assert '<div class="method"><h4>Method</h4>' in body.group(1), sec.anchor
    assert len(_computed(result)) >= 6


@pytest.mark.slow
def test_report_is_self_contained(report: tuple[Any, Path, str]) -> None:
    _, _, page = report
    # No script, style, font or image from outside: every src is inline data, no external stylesheet or import.
    assert re.findall(r'\bsrc="(?!data:)([^"]*)"', page) == []
    assert re.findall(r"url\(\s*['\"]?(?!data:)", page) == []
    assert "<link" not in page and "@import" not in page and "<script src" not in page


@pytest.mark.slow
def test_header_and_results_json_carry_date_version_and_hash(report: tuple[Any, Path, str]) -> None:
    result, out, page = report
    digest = calc_scenario_hash(result.scenario)
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert page.count(digest) == 2  # header and footer
    assert f"v2gtwin {__version__}" in page and re.search(r"run \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", page)
    assert "run 2026-01-02 03:04:05 UTC" in header_html(result, digest, RUN_DATE)
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert data["scenario_hash"] == digest
    kpis = {k["key"]: k for k in data["summary_kpis"]}
    # The indicator is the day's lowest voltage of the feeder's own series, judged against [feeder] v_min_pu.
    v = kpis["v_min_pu"]
    assert v["value"] == pytest.approx(float(result.feeder.timeseries.v_min_fleet_pu.min()))
    assert v["limit"] == result.scenario.feeder.v_min_pu and v["passed"] == (v["value"] >= v["limit"])


#: Numeric columns of the study's tables that carry no unit: counts, indices, probabilities, efficiencies, time
#: dial settings, the long tables' ``value`` (its unit is in ``quantity``) and study_steps' ``seconds``.
UNITLESS_COLUMNS = {
    "value", "n_ufls_stages", "units", "p_miss", "p_miss_mc", "arrival_step", "departure_step", "bus",
    "eta_charge", "eta_discharge", "arrivals", "departures", "n_plugged", "n_reserve_available", "tds",
    "proposed_tds", "omega", "cap_violation_rate_mc_day", "violation_prob_promised_at_most", "violation_rate_mc",
    "violation_rate_mc_any_day", "violation_rate_mc_max_constraint", "violation_rate_observed", "seconds",
}  # fmt: skip
UNIT_SUFFIX = re.compile(r"_(kw|kwh|kvar|kva|pu|pct|s|h|hz|a|per_mwh|per_h|per_horizon|per_day)$")


@pytest.mark.slow
def test_every_numeric_table_column_names_its_unit(report: tuple[Any, Path, str]) -> None:
    # Every table of the real study: a numeric column (not a flag) ends in its unit or is a listed unitless one.
    frames = report[0].to_frames()
    assert len(frames) >= 20
    bad = [
        f"{name}.{col}"
        for name, df in frames.items()
        for col in df.columns
        if pd.api.types.is_numeric_dtype(df[col])
        and not pd.api.types.is_bool_dtype(df[col])
        and col not in UNITLESS_COLUMNS
        and not UNIT_SUFFIX.search(str(col))
    ]
    assert bad == []
