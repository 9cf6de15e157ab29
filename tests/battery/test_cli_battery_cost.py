"""`v2gtwin battery cost`: JSON keys as documented, the flat switch, bad input as one line."""

from __future__ import annotations

import json

import pytest

from tests.cli_helpers import assert_one_line_error, run_cli


def test_battery_cost_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "battery", "cost", "--json")
    assert code == 0
    d = json.loads(out)
    assert d["source"] == "model" and d["currency"] == "USD" and d["n_evs"] == 1000
    assert d["years"] == 10 and isinstance(d["years"], int)  # an int, as in battery fade's JSON
    assert {r["chemistry"] for r in d["table"]} == {"nmc", "lfp"} and len(d["table"]) == 10
    assert d["cost_p10_per_mwh"] <= d["cost_median_per_mwh"] <= d["cost_p90_per_mwh"]


def test_battery_cost_flat_is_the_placeholder(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "battery", "cost", "--flat", "--json")
    assert code == 0
    d = json.loads(out)
    assert d["source"] == "flat" and d["cost_median_per_mwh"] == d["flat_per_mwh"] == 30.0


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--temp-c", "99"], "--temp-c"),
        (["--temp-c", "-5"], "--temp-c"),
        (["--years", "0"], "--years"),
        (["--years", "31"], "--years"),
    ],
)
def test_battery_cost_bad_input(capsys: pytest.CaptureFixture[str], args: list[str], field: str) -> None:
    code, _, err = run_cli(capsys, "battery", "cost", *args)
    assert_one_line_error(code, err)
    assert field in err
