"""`v2gtwin network envelope`: wiring (the scenario's feeders, base loads and fleet), outputs and error paths."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.cli_helpers import assert_one_line_error, run_cli
from v2gtwin.scenario import DEFAULT_SCENARIO


def test_envelope_json_and_csv(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "env.csv"
    code, out, err = run_cli(capsys, "network", "envelope", "--json", "--csv", str(path))
    assert code == 0, err
    data = json.loads(out)
    # The default scenario's network: the 33-bus feeder and three synthetic 60-bus feeders.
    feeders = data["feeders"]
    n_steps, n_bus = DEFAULT_SCENARIO.time.n_steps, [33, 60, 60, 60]
    assert data["n_steps"] == n_steps
    assert [f["feeder"] for f in feeders] == ["ieee33", "synthetic60-1", "synthetic60-2", "synthetic60-3"]
    for feeder, nb in zip(feeders, n_bus, strict=True):
        assert feeder["rule"] == "equal_per_ev" and feeder["simultaneous"] is True
        assert feeder["ac_violations"] == 0
        assert (feeder["v_min_pu"], feeder["v_max_pu"]) == (0.95, 1.05)
        assert len(feeder["buses"]) == nb and len(feeder["p_import_max_total_kw"]) == n_steps
        assert all(len(b["p_import_max_lowest_clock"]) == 5 for b in feeder["buses"])  # "HH:MM"
    # Every EV of the scenario's fleet, on whichever feeder it charges, weighs in once.
    assert sum(b["weight"] for f in feeders for b in f["buses"]) == DEFAULT_SCENARIO.fleet.n_evs
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == n_steps * sum(n_bus)
    assert set(rows[0]) >= {"step", "clock", "bus", "p_import_max_kw", "p_export_max_kw", "binding_import", "feeder"}
    # The per-bus table's lowest import of bus 18 of the 33-bus feeder is the least of that bus's rows in the CSV.
    lowest = min(float(r["p_import_max_kw"]) for r in rows if r["bus"] == "18" and r["feeder"] == "ieee33")
    (bus18,) = [b for b in feeders[0]["buses"] if b["bus"] == "18"]
    assert bus18["p_import_max_lowest_kw"] == pytest.approx(lowest, rel=1e-12)


def test_envelope_text_per_bus_max_says_it_is_optimistic(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "network", "envelope", "--rule", "per_bus_max")
    assert code == 0, err
    assert out.count("rule") >= 4  # one block per feeder of the default network
    assert "NOT feasible for all buses at once" in out
    assert "lowest limit of the day per bus [kW]" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--rule", "greedy"), "--rule: must be one of equal_per_ev"),
        (("--v-min", "1.06", "--v-max", "1.05"), "--v-min, --v-max"),
        (("--csv", "/nonexistent-dir/env.csv"), "--csv /nonexistent-dir/env.csv: cannot write"),
    ],
)
def test_envelope_bad_input(capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str) -> None:
    code, _, err = run_cli(capsys, "network", "envelope", *args)
    assert_one_line_error(code, err)
    assert message in err


def test_feeder_hosting_export_side(capsys: pytest.CaptureFixture[str]) -> None:
    # Wiring of the export direction: the scenario's v_max_pu and the direction reach the result; the export
    # hosting at the end of the main feeder (bus 18) is bound by the voltage there (over-voltage).
    code, out, err = run_cli(capsys, "feeder", "hosting", "--direction", "export", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["direction"] == "export" and data["v_max_pu"] == DEFAULT_SCENARIO.feeder.v_max_pu == 1.05
    (bus18,) = [n for n in data["nodes"] if n["bus"] == "18"]
    assert bus18["direction"] == "export" and bus18["binding"] == "voltage at bus 18"
    code, _, err = run_cli(capsys, "feeder", "hosting", "--direction", "both")
    assert_one_line_error(code, err)
    assert "--direction: must be import or export" in err


def test_scenario_v_max_pu_range() -> None:
    from v2gtwin.errors import ScenarioError
    from v2gtwin.scenario import parse_scenario

    assert parse_scenario({"feeder": {"v_max_pu": 1.1}}).feeder.v_max_pu == 1.1
    # Below 1 pu it could meet v_min_pu (< 1 pu by its own range): refused, naming the field and range.
    with pytest.raises(ScenarioError, match=r"feeder\.v_max_pu") as exc:
        parse_scenario({"feeder": {"v_max_pu": 0.99}}, "x.toml")
    assert "\n" not in str(exc.value)


def test_envelope_per_bus_max_csv_names_the_rule_and_json_has_every_step(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "env.csv"
    code, out, err = run_cli(capsys, "network", "envelope", "--rule", "per_bus_max", "--json", "--csv", str(path))
    assert code == 0, err
    data = json.loads(out)
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    # Every row says which rule made it and that per_bus_max limits do not hold at all buses at once.
    assert {r["rule"] for r in rows} == {"per_bus_max"} and {r["simultaneous"] for r in rows} == {"False"}
    # The per-step values per bus in --json are the CSV's rows (bus 18 of the 33-bus feeder, every step).
    f0 = data["feeders"][0]
    assert f0["simultaneous"] is False and len(f0["p_import_max_kw"]["18"]) == DEFAULT_SCENARIO.time.n_steps
    csv18 = [float(r["p_export_max_kw"]) for r in rows if r["bus"] == "18" and r["feeder"] == "ieee33"]
    assert f0["p_export_max_kw"]["18"] == pytest.approx(csv18, rel=1e-12)
