"""The path decides what may be sold: a service whose deadline the command path misses more often than the
scenario's threshold is not sold (the regulation bid is 0 kW) or, for reserve and DR, marked as not deliverable,
in the study (results.json and report) and in ``v2gtwin bid``."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest

from tests.cli_helpers import run_cli
from v2gtwin.cyber.path_analysis import SERVICE_REGULATION
from v2gtwin.markets.analysis import run_bid_analysis, summarize_bid
from v2gtwin.report import write_report
from v2gtwin.scenario import parse_scenario
from v2gtwin.study import StudyChain

NBIOT = {"fleet": {"n_evs": 300}, "time": {"n_steps": 48, "dt_s": 1800}, "cyber": {"path": "nbiot", "n_stations": 0}}


def _check_regulation_verdict(v: dict[str, object], n_mc: int, p_miss_mc: float) -> None:
    # NB-IoT misses the 2-s AGC deadline about a quarter of the time: the convolution's P(miss) agrees with the
    # Monte Carlo estimate (an independent method) within 4 standard errors and is far above the 1 % threshold.
    p = float(v["p_miss"])  # type: ignore[arg-type]
    se = math.sqrt(p_miss_mc * (1 - p_miss_mc) / n_mc)
    assert abs(p - p_miss_mc) < 4 * se
    assert p > 0.1 > float(v["deadline_miss_max"])  # type: ignore[arg-type]
    assert v["deliverable"] is False and v["deadline_s"] == 2.0 and v["path"] == "NB-IoT"


def test_study_over_nbiot_does_not_sell_regulation(tmp_path: Path) -> None:
    sc = parse_scenario(NBIOT)
    result = StudyChain(sc).run()
    cp = result.cyber_path
    assert cp is not None
    # The AGC loop and the regulation run are delayed by the path's landed delays (NB-IoT: about 1.6 s mean):
    # the mean fed is that of the Monte Carlo samples, and delayed and undelayed runs differ.
    ag = result.services.agc
    assert ag.delay_mean_s == pytest.approx(float(cp.samples_s.mean()), rel=1e-12) and ag.delay_mean_s > 1.0
    assert ag.regulation_without_delay is not None
    for alloc, r in ag.regulation.items():
        assert r.score.composite < ag.regulation_without_delay[alloc].score.composite
    assert ag.agc.restore_s != ag.restore_without_delay_s
    bid = summarize_bid(result.markets.bid)
    _check_regulation_verdict(bid["path"], cp.n_samples, cp.p_miss_mc(2.0))
    # Not sold: bid 0 kW, so the hour's profit p b - lambda E(b - A)+ is 0 (b = 0, A >= 0).
    assert bid["bid_kw"] == 0.0 and bid["expected_profit_per_h"] == 0.0
    # The bid the path forbids is the one the same scenario gives without a path (independent run).
    free = run_bid_analysis(sc, degradation_per_mwh=result.markets.bid.degradation_per_mwh)
    assert bid["path"]["bid_if_deliverable_kw"] == pytest.approx(free.bid.bid_kw) and free.bid.bid_kw > 0
    # Reserve (10 min) and DR (hours) are met over NB-IoT: marked deliverable, no note.
    summary = result.services.summary()
    for key in ("reserve", "dr"):
        v = summary[key]["path"]
        assert v["deliverable"] is True and v["p_miss"] < v["deadline_miss_max"] and "note" not in summary[key]["path"]
    assert summary["reserve"]["path"]["deadline_s"] == sc.frequency.reserve_lead_min * 60.0
    paths = write_report(result, tmp_path / "out")
    data = json.loads(paths["results"].read_text())
    assert data["markets"]["summary"]["bid"]["bid_kw"] == 0.0
    assert data["services"]["summary"]["reserve"]["path"]["deliverable"] is True
    html = paths["report"].read_text()
    assert "Regulation bid over the command path (NB-IoT)" in html
    assert "NOT deliverable over this path: not sold" in html
    # A reserve the path cannot deliver is marked so in results and report (the same rows, verdict flipped).
    flipped = dataclasses.replace(
        result.services,
        path_verdicts={"reserve": summary["reserve"]["path"] | {"deliverable": False}},
    )
    assert flipped.summary()["reserve"]["path"]["note"] == "not deliverable over this path: not sold"


def test_cli_bid_over_nbiot_is_zero_as_in_the_study(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    toml = tmp_path / "nbiot.toml"
    toml.write_text('[cyber]\npath = "nbiot"\n')
    code, out, _ = run_cli(capsys, "bid", "-s", str(toml), "--json")
    assert code == 0
    got = json.loads(out)
    assert got["bid_kw"] == 0.0 and got["expected_profit_per_h"] == 0.0 and got["bid_normal_fit_kw"] == 0.0
    v = got["path"]
    assert v["service"] == SERVICE_REGULATION and v["deliverable"] is False and v["p_miss"] > 0.1
    assert v["bid_if_deliverable_kw"] > 0
    code, out, _ = run_cli(capsys, "bid", "--json")  # the default LTE path meets the 2-s deadline: sold
    got = json.loads(out)
    assert code == 0 and got["path"]["deliverable"] is True and "bid_if_deliverable_kw" not in got["path"]
    assert got["bid_kw"] > 0 and got["path"]["p_miss"] < got["path"]["deadline_miss_max"]
