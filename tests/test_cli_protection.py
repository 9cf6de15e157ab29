"""`v2gtwin protection faults|coordination`: wiring (the scenario's feeder, fleet and [protection] section),
JSON outputs and the one-line error paths (k out of range, a device that can never trip, an unknown bus)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.cli_helpers import assert_one_line_error, run_cli
from v2gtwin.scenario import DEFAULT_SCENARIO


def test_faults_json_at_the_source_bus_is_the_closed_form(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "protection", "faults", "--json", "--s-sc-mva", "50")
    assert code == 0, err
    data = json.loads(out)
    assert data["summary"]["s_sc_mva"] == 50 and data["summary"]["feeder"] == "ieee33"
    buses = data["buses"]
    assert [b["bus"] for b in buses] == [str(i) for i in range(1, 34)]
    # Without V2G at the source bus: S''k / (sqrt(3) U_n) = 50 MVA / (sqrt(3) x 12.66 kV) = 2280.2 A.
    assert buses[0]["i_fault_base_a"] == pytest.approx(50e3 / (math.sqrt(3) * 12.66), rel=1e-9)
    assert all(b["i_fault_v2g_a"] >= b["i_fault_base_a"] for b in buses)  # IEC 60909: V2G adds magnitude
    # Devices: without V2G the relay at the head of lateral 19 carries the whole fault current of its buses
    # (19-22) and nothing for any other fault (loads are neglected, IEC 60909).
    (r19,) = [d for d in data["devices"] if d["bus"] == "19"]
    for k, fb in enumerate(r19["fault_bus"]):
        expected = buses[k]["i_fault_base_a"] if fb in {"19", "20", "21", "22"} else 0.0
        assert r19["i_base_a"][k] == pytest.approx(expected, rel=1e-12)


def test_faults_without_v2g_chargers_equals_the_grid_alone(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text("[protection]\nv2g_share = 0.0\n")
    code, out, err = run_cli(capsys, "protection", "faults", "--json", "-s", str(path))
    assert code == 0, err
    data = json.loads(out)
    assert data["summary"]["n_aggregators"] == 0
    assert all(b["i_fault_v2g_a"] == b["i_fault_base_a"] for b in data["buses"])


def test_coordination_json_and_text(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "protection", "coordination", "--json")
    assert code == 0, err
    data = json.loads(out)
    s = data["summary"]
    assert s["default_scheme"] is True and s["n_devices"] == 4
    assert [d["bus"] for d in data["devices"]] == ["2", "19", "23", "26"]
    assert s["coordinated_base"] is True  # the default scheme is coordinated without V2G by construction
    assert all(p["cti_base_s"] >= DEFAULT_SCENARIO.protection.cti_margin_s for p in data["pairs"])
    assert set(data["scale_search"]) >= {"scale", "s_rated_kva", "first_issue", "evaluations"}
    code, out, err = run_cli(capsys, "protection", "coordination")
    assert code == 0, err
    assert "pairs (CTI" in out and "R2 (head) / R19" in out


def test_k_out_of_range_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "protection", "faults", "--k", "3.5")
    assert_one_line_error(code, err)
    assert "protection.k" in err and "<= 3.0" in err


def test_device_that_cannot_trip_is_named(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        "[[protection.devices]]\nlabel = 'HEAD'\nbus = '2'\npickup_a = 400.0\ntds = 0.2\n"
        "[[protection.devices]]\nlabel = 'STUCK'\nbus = '19'\npickup_a = 90000.0\ntds = 0.1\n"
    )
    code, _, err = run_cli(capsys, "protection", "coordination", "-s", str(path))
    assert_one_line_error(code, err)
    assert "device STUCK" in err and "can never trip" in err


def test_unknown_device_bus_is_named(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text("[[protection.devices]]\nlabel = 'X'\nbus = '99'\npickup_a = 400.0\ntds = 0.2\n")
    code, _, err = run_cli(capsys, "protection", "coordination", "-s", str(path))
    assert_one_line_error(code, err)
    assert "device X" in err and "'99'" in err


def test_aggregators_placed_by_hand(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # One 1,000 kVA aggregator at bus 18, k = 2: at its own bus IEC 60909 adds its whole current,
    # 2 x 1000 / (sqrt(3) x 12.66) = 91.21 A, to the grid's.
    path = tmp_path / "s.toml"
    path.write_text("[protection]\nk = 2.0\n[[protection.aggregators]]\nbus = '18'\ns_rated_kva = 1000.0\n")
    code, out, err = run_cli(capsys, "protection", "faults", "--json", "-s", str(path))
    assert code == 0, err
    data = json.loads(out)
    assert data["summary"]["n_aggregators"] == 1 and data["summary"]["s_v2g_kva"] == 1000.0
    (b18,) = [b for b in data["buses"] if b["bus"] == "18"]
    assert b18["i_fault_v2g_part_a"] == pytest.approx(2000.0 / (math.sqrt(3) * 12.66), rel=1e-9)
    path.write_text("[[protection.aggregators]]\nbus = '77'\ns_rated_kva = 1000.0\n")
    code, _, err = run_cli(capsys, "protection", "faults", "-s", str(path))
    assert_one_line_error(code, err)
    assert "protection.aggregators: bus '77'" in err
