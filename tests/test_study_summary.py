"""Key indicators: pass/fail against hand-set limits on hand-built results, sections that are None, and the
scenario hash."""

from __future__ import annotations

import hashlib
import json
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from v2gtwin.scenario import parse_scenario
from v2gtwin.study_summary import calc_kpis, calc_scenario_hash, summary_json


def _result(scenario_data: dict[str, Any], **sections: Any) -> Any:
    """A stand-in StudyResult: the scenario and the given sections, every other section None."""
    names = ("fleet", "feeder", "services", "markets", "network", "cyber_path", "compliance", "resilience", "battery")
    base: dict[str, Any] = dict.fromkeys(names) | {"failures": {}, "skipped": {}}
    return SimpleNamespace(scenario=parse_scenario(scenario_data), **(base | sections))


def _feeder(v_min: list[float], scale: float = 1.2) -> SimpleNamespace:
    return SimpleNamespace(
        timeseries=SimpleNamespace(v_min_fleet_pu=np.array(v_min)), fleet_hosting=SimpleNamespace(scale=scale)
    )


def _by_key(result: Any) -> dict[str, Any]:
    return {k.key: k for k in calc_kpis(result)}


def test_voltage_fails_when_the_limit_is_above_the_minimum() -> None:
    # The day's lowest voltage is 0.951 pu (the minimum of the hand-set series 0.97, 0.951, 0.96).
    fd = _feeder([0.97, 0.951, 0.96])
    ok = _by_key(_result({"feeder": {"v_min_pu": 0.95}}, feeder=fd))["v_min_pu"]
    bad = _by_key(_result({"feeder": {"v_min_pu": 0.96}}, feeder=fd))["v_min_pu"]
    assert ok.value == pytest.approx(0.951) and ok.limit == 0.95 and ok.passed is True
    assert bad.value == pytest.approx(0.951) and bad.limit == 0.96 and bad.passed is False


def test_voltage_exactly_on_the_limit_passes() -> None:
    # The lowest voltage 0.95 pu equals the limit 0.95 pu: a lower limit is met on the limit (>=, not >).
    k = _by_key(_result({"feeder": {"v_min_pu": 0.95}}, feeder=_feeder([0.95])))["v_min_pu"]
    assert (k.value, k.limit, k.passed) == (0.95, 0.95, True)


def _network(rows: list[dict[str, Any]]) -> SimpleNamespace:
    return SimpleNamespace(summary=lambda: {"feeders": rows})


def test_network_voltage_and_thermal_over_every_feeder() -> None:
    rows = [
        {"n_steps_collapsed": 0, "v_min_uncontrolled_pu": 0.96, "branch_loading_max_pu": 0.7},
        {"n_steps_collapsed": 0, "v_min_uncontrolled_pu": 0.93, "branch_loading_max_pu": 1.2},
        {"n_steps_collapsed": 0, "v_min_uncontrolled_pu": 0.97, "branch_loading_max_pu": None},  # no rating
    ]
    k = _by_key(_result({}, network=_network(rows)))
    # Lowest voltage: min(0.96, 0.93, 0.97) = 0.93 pu, below the feeder limit 0.95 pu: FAIL.
    assert (k["v_min_pu"].value, k["v_min_pu"].limit, k["v_min_pu"].passed) == (0.93, 0.95, False)
    # Highest loading: 100 x max(0.7, 1.2) = 120 % against 100 %: FAIL (the unrated feeder is left out).
    t = k["branch_loading_max_pct"]
    assert (t.value, t.limit, t.passed) == (pytest.approx(120.0), 100.0, False)
    # Both feeders within: 0.96 pu >= 0.95 and 100 x 0.7 = 70 % <= 100 %: PASS.
    k = _by_key(_result({}, network=_network(rows[:1])))
    assert (k["v_min_pu"].passed, k["branch_loading_max_pct"].value, k["branch_loading_max_pct"].passed) == (
        True,
        pytest.approx(70.0),
        True,
    )


def test_network_voltage_collapse_fails_without_a_value() -> None:
    # 3 + 2 = 5 steps without a power-flow solution: no voltage to report, and the indicator fails.
    rows = [
        {"n_steps_collapsed": 3, "v_min_uncontrolled_pu": 0.99, "branch_loading_max_pu": 0.5},
        {"n_steps_collapsed": 2, "v_min_uncontrolled_pu": 0.99, "branch_loading_max_pu": 0.5},
    ]
    k = _by_key(_result({}, network=_network(rows)))["v_min_pu"]
    assert (k.value, k.passed) == (None, False)
    assert "5 steps" in k.note


def test_hosting_scale_is_a_lower_limit() -> None:
    # The feeder carries 0.8 x the fleet's uncontrolled charging: below 1, so it fails; 1.5 passes.
    assert _by_key(_result({}, feeder=_feeder([0.97], 0.8)))["fleet_hosting_scale"].passed is False
    assert _by_key(_result({}, feeder=_feeder([0.97], 1.5)))["fleet_hosting_scale"].passed is True


def test_schedule_peak_against_the_import_cap() -> None:
    def markets(p_total: list[float], cap: float) -> SimpleNamespace:
        ind = SimpleNamespace(p_total_kw=np.array(p_total), cost_per_horizon=12.5)
        return SimpleNamespace(schedule=SimpleNamespace(import_cap_kw=cap, individual=ind))

    # Peak 100 kW against a cap of 100 kW: on the cap, within. 100.5 kW is 0.5 % above: fails.
    on = _by_key(_result({}, markets=markets([20.0, 100.0, -5.0], 100.0)))["p_schedule_import_max_kw"]
    above = _by_key(_result({}, markets=markets([20.0, 100.5], 100.0)))["p_schedule_import_max_kw"]
    assert (on.value, on.passed) == (100.0, True)
    assert (above.value, above.passed) == (100.5, False)


def test_deadline_and_compliance_against_the_scenario() -> None:
    rows = [
        # A service that needs no path is not judged: its 0.5 would fail both limits below if it were.
        {"needs_path": False, "p_miss": 0.5},
        {"needs_path": True, "p_miss": 0.004},
        {"needs_path": True, "p_miss": 0.02},
    ]
    path = SimpleNamespace(service_rows=lambda: rows)
    audit = SimpleNamespace(counts={"fail": 0, "warning": 3, "not-assessed": 1, "pass": 9})
    k = _by_key(_result({"cyber": {"deadline_miss_max": 0.05}}, cyber_path=path, compliance=audit))
    # Worst P(miss) 0.02 against 0.05: passes; no failed findings against 0: passes.
    assert (k["deadline_miss_max_pu"].value, k["deadline_miss_max_pu"].passed) == (0.02, True)
    assert (k["n_compliance_fail"].value, k["n_compliance_fail"].passed) == (0.0, True)
    k = _by_key(_result({"cyber": {"deadline_miss_max": 0.01}}, cyber_path=path))
    assert k["deadline_miss_max_pu"].passed is False


def test_every_section_none_gives_none_values_and_says_why() -> None:
    res = _result({}, failures={"feeder": "ConvergenceError: no solution"}, skipped={"schedule": "not asked for"})
    k = _by_key(res)
    assert k["n_steps_failed"].value == 1.0 and k["n_steps_failed"].passed is False
    assert k["v_min_pu"].value is None and k["v_min_pu"].passed is None
    assert "ConvergenceError" in k["v_min_pu"].note
    assert "not asked for" in k["p_schedule_import_max_kw"].note
    # Strict JSON: nothing non-finite, every indicator serialisable.
    json.dumps(summary_json(res), allow_nan=False)


def test_scenario_hash_is_sha256_of_the_canonical_json() -> None:
    a = parse_scenario({"fleet": {"n_evs": 300}})
    b = parse_scenario({"fleet": {"n_evs": 300}})
    c = parse_scenario({"fleet": {"n_evs": 301}})
    text = json.dumps(a.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert calc_scenario_hash(a) == hashlib.sha256(text.encode()).hexdigest()
    assert calc_scenario_hash(a) == calc_scenario_hash(b)
    assert calc_scenario_hash(a) != calc_scenario_hash(c)


def test_resilience_indicator_is_the_unserved_energy_with_v2g() -> None:
    summary = {"with_v2g": {"energy_unserved_kwh": 0.9}, "without_v2g": {"energy_unserved_kwh": 120.0}}
    res = _result({}, resilience=SimpleNamespace(summary=lambda: summary))
    k = _by_key(res)["energy_unserved_v2g_kwh"]
    assert (k.value, k.unit, k.limit, k.passed, k.section) == (0.9, "kWh", None, None, "resilience")


def test_battery_fade_against_the_end_of_life() -> None:
    # Mean fade 0.23 pu after 10 years against the end of life 0.2 pu: FAIL; against 0.25: PASS.
    by_year = {"year_1": {"q_loss_mean_pu": 0.06}, "year_10": {"q_loss_mean_pu": 0.23}}
    bh = SimpleNamespace(summary=lambda: {"fade_v2g": {"years": 10, "by_year": by_year}})
    k = _by_key(_result({"battery": {"years": 10, "eol_fade_pu": 0.2}}, battery=bh))["q_loss_v2g_mean_pu"]
    assert (k.value, k.limit, k.passed) == (0.23, 0.2, False)
    k = _by_key(_result({"battery": {"years": 10, "eol_fade_pu": 0.25}}, battery=bh))["q_loss_v2g_mean_pu"]
    assert k.passed is True


def test_missing_names_the_sections_steps_that_did_not_run() -> None:
    """hosting ran but losses (the feeder section's other step) failed: the note names losses, not hosting
    (the old note said "step hosting not run")."""
    res = _result(
        {},
        failures={"losses": "RuntimeError: boom"},
        timings_s={
            "build_fleet": 0.1,
            "uncontrolled": 0.1,
            "network": 0.1,
            "feeder": 0.1,
            "hosting": 0.1,
            "losses": 0.1,
        },
    )
    note = _by_key(res)["fleet_hosting_scale"].note
    assert note == "step losses failed: RuntimeError: boom"
