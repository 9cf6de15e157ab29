"""`v2gtwin market compare`, `market stackelberg` and `bid`: the same dicts as the study's results.json, the
currency stated, a given availability, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from scipy import stats

from tests.cli_helpers import assert_one_line_error, run_cli
from v2gtwin.scenario import load_scenario
from v2gtwin.study import MarketsSection, StudyChain

SMALL_TOML = "[fleet]\nn_evs = 120\n[time]\nn_steps = 24\ndt_s = 3600\n[markets]\nbid_days = 5\n"


def test_cli_prints_the_study_sections(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The study's markets sections, from the study's own steps (schedule and robust stubbed: not this area's).
    path = tmp_path / "s.toml"
    path.write_text('currency = "EUR"\n' + SMALL_TOML)
    chain = StudyChain(load_scenario(path))
    for step in ("build_fleet", "envelope", "uncontrolled", "cyber_path", "battery_cost", "markets"):
        getattr(chain, step)()
    assert chain.markets_ is not None
    stub = SimpleNamespace(summary=lambda: {})
    study: dict[str, Any] = MarketsSection(*chain.markets_, stub, stub).summary()  # type: ignore[arg-type]
    for args, section in [
        (["market", "compare"], "market"),
        (["market", "stackelberg"], "stackelberg"),
        (["bid"], "bid"),
    ]:
        code, out, err = run_cli(capsys, *args, "-s", str(path), "--json")
        assert code == 0, err
        printed = json.loads(out)
        assert printed.pop("currency") == "EUR"
        assert printed == json.loads(json.dumps(study[section]))


def test_bid_with_a_given_availability(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # N(2000, 400) kW, payment 20 and penalty 60 per MW-h: fractile 0.25, b* = 2000 + 400 Phi^-1(0.25) = 1730.2 kW
    # (no battery wear: a flat degradation cost of 0; tests/battery/test_cost.py checks the bid with wear).
    path = tmp_path / "s.toml"
    path.write_text('[battery]\ndegradation_cost = "flat"\n[markets]\ndegradation_per_mwh = 0.0\n')
    code, out, err = run_cli(
        capsys, "bid", "-s", str(path), "--price", "20", "--availability", "normal:2000,400", "--json"
    )
    assert code == 0, err
    d = json.loads(out)
    assert d["bid_kw"] == pytest.approx(2000 + 400 * stats.norm.ppf(0.25), rel=1e-9)
    assert d["currency"] == "USD" and d["availability_kind"] == "normal" and d["n_days"] is None


@pytest.mark.parametrize(
    ("spec", "words"),
    [("normal:1", "normal takes 2 values"), ("poisson:3", "expected normal:MEAN,SD"), ("beta:5,1,4", "scale_kw")],
)
def test_bid_malformed_availability(capsys: pytest.CaptureFixture[str], spec: str, words: str) -> None:
    code, _, err = run_cli(capsys, "bid", "--availability", spec)
    assert_one_line_error(code, err)
    assert "--availability" in err and words in err


def test_currency_and_offer_hour_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('currency = "usd"\n')
    code, _, err = run_cli(capsys, "market", "stackelberg", "-s", str(bad))
    assert_one_line_error(code, err)
    assert "currency" in err
    # An hourly horizon from noon of 4 h does not reach the 18:00 offer.
    bad.write_text("[time]\nn_steps = 4\ndt_s = 3600\n[fleet]\nn_evs = 20\n")
    code, _, err = run_cli(capsys, "market", "compare", "-s", str(bad))
    assert_one_line_error(code, err)
    assert "markets.v2g_offer_hour = 18 h lies outside the horizon" in err
