"""Orchestrator and report: wiring, files, and that an earlier report survives a failed write."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from tests.report.figure_checks import figure_problems, record_figures
from v2gtwin.errors import V2GTwinError
from v2gtwin.report import write_report
from v2gtwin.scenario import parse_scenario
from v2gtwin.study import StudyChain, build_fleet

SMALL = parse_scenario({"fleet": {"n_evs": 300}, "time": {"n_steps": 48, "dt_s": 1800}})


def test_chain_runs_steps_in_order_and_reports_progress() -> None:
    seen: list[str] = []
    result = StudyChain(SMALL, on_step=lambda name, i, n: seen.append(name)).run()
    assert seen == list(StudyChain.STEPS)
    f = result.fleet
    assert f.p_uncontrolled_kw.shape == (48,)
    # Wiring: series agree with the fleet they came from.
    fleet = build_fleet(SMALL)
    assert f.arrivals.sum() == np.sum(fleet.arrival_step < fleet.departure_step)
    assert f.summary["n_evs"] == 300
    assert np.all(f.p_uncontrolled_kw <= f.p_max_kw + 1e-9)


def test_report_is_self_contained_html_and_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = StudyChain(SMALL).run()
    figures = record_figures(monkeypatch)
    paths = write_report(result, tmp_path / "out")
    html = paths["report"].read_text()
    assert html.startswith("<!DOCTYPE html>")
    # 22 + the battery section's fade + the command path's CDF + the TLS handshake breakdown
    assert len(re.findall(r'src="data:image/png;base64,', html)) == 25
    # Every figure: no data under a legend, clock time on time axes, the currency on money axes.
    assert len(figures) == 25
    assert [p for fig in figures for p in figure_problems(fig, SMALL.currency)] == []
    assert "TLS handshake time on the path's links" in html
    assert "Command path: latency and reliability against service deadlines" in html
    assert "Control path: OCPP central system" in html
    assert "Battery health" in html
    assert "Protection: fault currents and relay coordination" in html
    assert "Resilience of a critical facility" in html
    # Opens offline: nothing is loaded from elsewhere.
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
    data = json.loads(paths["results"].read_text())
    assert data["scenario"]["fleet"]["n_evs"] == 300
    assert len(data["fleet"]["p_uncontrolled_kw"]) == 48
    # The compliance step audits the study's own V2G inverters; the legacy group fails on purpose.
    assert "Compliance (IEEE 1547-2018) of the study's own inverters" in html
    legacy = [f for f in data["compliance"]["findings"] if f["asset"] == "V2G-legacy"]
    assert {"rule": "IEEE1547-TRIP-UF1", "status": "fail"}.items() <= next(
        f for f in legacy if f["rule"] == "IEEE1547-TRIP-UF1"
    ).items()
    assert data["cyber"]["profiles_acknowledged"] == data["cyber"]["n_stations"] > 0
    # The command path (default LTE, 3 attempts): P(land) = 1 - (1 - 0.995 x 0.999)^3.
    assert data["cyber_path"]["p_land"] == pytest.approx(1 - (1 - 0.995 * 0.999) ** 3, abs=1e-9)
    # The protection step: the 33-bus default scheme (head relay and the relays of laterals 19, 23, 26).
    assert [d["bus"] for d in data["protection"]["devices"]] == ["2", "19", "23", "26"]
    assert len(data["protection"]["faults"]) == 33
    # The resilience section: the scenario's share of the 300 EVs near the facility, Q(t) per simulation step.
    res = data["resilience"]
    assert res["summary"]["with_v2g"]["n_evs"] == round(300 * SMALL.resilience.fleet_share)
    assert len(res["series"]["q_with_v2g"]) == round(
        SMALL.resilience.outage_duration_h * 3600 / SMALL.resilience.dt_sim_s
    )
    # Buses carry Baran & Wu's numbers: the day's lowest voltage is at the end of the main trunk, their bus 18
    # (pandapower's index 17), as in their base case.
    assert data["feeder"]["summary"]["v_min_fleet_bus"] == "18"
    assert re.search(r"<td>0\.9\d{3} at bus 18</td>", html)


def test_failed_write_keeps_the_earlier_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    result = StudyChain(SMALL).run()
    write_report(result, out)
    before = (out / "report.html").read_text()

    import v2gtwin.report as report

    def boom(_: object) -> str:
        raise RuntimeError("figure failed")

    monkeypatch.setattr(report, "render_html", boom)
    with pytest.raises(RuntimeError):
        write_report(result, out)
    assert (out / "report.html").read_text() == before
    assert not list(out.glob(".*.tmp"))


def test_out_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("keep me")
    with pytest.raises(V2GTwinError, match="--out"):
        write_report(StudyChain(SMALL).run(), target)
    assert target.read_text() == "keep me"


def test_fleet_share_puts_a_sample_of_the_fleet_on_the_feeder() -> None:
    scen = parse_scenario(
        {"fleet": {"n_evs": 400}, "time": {"n_steps": 48, "dt_s": 1800}, "feeder": {"fleet_share": 0.25}}
    )
    chain = StudyChain(scen)
    for step in ("build_fleet", "envelope", "uncontrolled", "feeder"):
        getattr(chain, step)()
    assert chain.feeder_fleet is not None and chain.feeder_fleet.n == 100
    assert chain.p_ev_bus_kw is not None and chain.uncontrolled_ is not None
    # The feeder's EV load is that of the sampled EVs: their count times ~their mean power.
    assert 0.1 < chain.p_ev_bus_kw.sum() / chain.uncontrolled_.p_kw.sum() < 0.4


def test_results_json_is_strict_nan_is_an_error_documented_missing_is_null(tmp_path: Path) -> None:
    import dataclasses
    import math

    from v2gtwin.jsonout import NonFiniteOutputError

    result = StudyChain(SMALL).run()
    out = tmp_path / "out"
    # A NaN where a number is required: the writer refuses and writes nothing (no earlier file to keep here).
    bad_fleet = dataclasses.replace(result.fleet, summary=result.fleet.summary | {"p_peak_kw": math.nan})
    with pytest.raises(NonFiniteOutputError, match=r"fleet\.summary\.p_peak_kw"):
        write_report(dataclasses.replace(result, fleet=bad_fleet), out)
    assert not (out / "results.json").exists()
    # The AGC restoration time is documented as possibly missing (frequency never back in its band): null.
    agc = result.services.agc
    never = dataclasses.replace(agc, agc=dataclasses.replace(agc.agc, restore_s=math.inf))
    services = dataclasses.replace(result.services, agc=never)
    paths = write_report(dataclasses.replace(result, services=services), out)
    text = paths["results"].read_text()
    assert "NaN" not in text and "Infinity" not in text
    data = json.loads(text)
    assert data["services"]["summary"]["agc"]["restore_s"] is None
    assert isinstance(data["fleet"]["summary"]["n_evs"], int)


def test_fleet_section_json_holds_per_step_series_only_even_when_n_evs_equals_n_steps() -> None:
    from v2gtwin.fleet import calc_envelope, run_uncontrolled
    from v2gtwin.study import build_fleet_section

    scen = parse_scenario({"fleet": {"n_evs": 24}, "time": {"n_steps": 24, "dt_s": 3600}})
    fleet = build_fleet(scen)
    section = build_fleet_section(scen, fleet, calc_envelope(fleet), run_uncontrolled(fleet))
    data = section.to_dict(series=True)
    # Per-EV arrays (SoC at arrival / departure) have 24 entries too, but are not series over the steps.
    assert "soc_arrival_pu" not in data and "soc_departure_pu" not in data
    assert len(data["p_uncontrolled_kw"]) == 24 and "summary" in data


def test_infeasible_robust_radius_keeps_the_study_going(tmp_path: Path) -> None:
    # Omega = 50 standard deviations of net load above the mean cannot stay under a cap of 1.2 x the mean peak
    # (the fleet of 300 EVs discharges far less than 50 sd of the feeder's load); Omega = 0 can.
    scen = parse_scenario(
        SMALL.model_dump(mode="json", exclude_none=True)
        | {"markets": {"robust_omegas": [0.0, 50.0], "robust_cap_share": 1.2}, "currency": "EUR"}
    )
    result = StudyChain(scen).run()
    paths = write_report(result, tmp_path / "out")
    html = paths["report"].read_text()
    robust = json.loads(paths["results"].read_text())["markets"]["summary"]["robust"]
    assert robust["radii"]["omega_50"]["feasible"] is False and robust["n_radii_feasible"] == 1
    assert "infeasible: robust schedule is infeasible at Omega = 50" in html
    # Every money label names the scenario's currency, none the placeholder.
    assert "[currency" not in html and "[EUR per 24 h]" in html
