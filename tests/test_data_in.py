"""Tests of v2gtwin.data_in: prices, base load and sessions from CSV files, every error path on one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.cli_helpers import assert_one_line_error, run_cli
from v2gtwin.data_in import read_base_load_csv, read_price_csv, read_sessions_csv, spread_base_load
from v2gtwin.errors import DataError
from v2gtwin.fleet import run_uncontrolled
from v2gtwin.scenario import FleetSpec, TimeGrid, load_scenario

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

#: Four 15-min steps from 12:00 local time in Berlin on 15 January 2025 (CET, UTC+1).
TIME = TimeGrid(dt_s=900.0, n_steps=4, start_hour=12.0, start_date="2025-01-15", time_zone="Europe/Berlin")

PRICES_OK = (
    "time,price_per_mwh\n2025-01-15T12:00,40\n2025-01-15T12:15,-5.5\n2025-01-15T12:30,120\n2025-01-15T12:45,60\n"
)


def _write(tmp_path: Path, text: str, name: str = "f.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_prices_read_one_value_per_step(tmp_path: Path) -> None:
    assert read_price_csv(_write(tmp_path, PRICES_OK), TIME).tolist() == [40.0, -5.5, 120.0, 60.0]


def test_times_with_a_utc_offset_are_the_same_instants(tmp_path: Path) -> None:
    # 12:00 in Berlin (CET, UTC+1) is 11:00Z.
    text = "time,price_per_mwh\n" + "".join(f"2025-01-15T11:{m:02d}:00Z,{m}\n" for m in (0, 15, 30, 45))
    assert read_price_csv(_write(tmp_path, text), TIME).tolist() == [0.0, 15.0, 30.0, 45.0]


def test_base_load_total_spreads_over_buses_and_sums_back(tmp_path: Path) -> None:
    text = PRICES_OK.replace("price_per_mwh", "p_kw").replace("-5.5", "5")
    p_total = read_base_load_csv(_write(tmp_path, text), TIME)
    p, q = spread_base_load(p_total, np.array([0.0, 100.0, 300.0]), np.array([0.0, 50.0, 30.0]))
    # Step 0: 40 kW split 1:3 -> 10, 30 kW; q at each bus's nominal ratio 0.5 and 0.1 -> 5, 3 kvar.
    assert p[0].tolist() == [0.0, 10.0, 30.0]
    assert q[0].tolist() == pytest.approx([0.0, 5.0, 3.0])
    assert p.sum(axis=1).tolist() == pytest.approx([40.0, 5.0, 120.0, 60.0])


PRICE_CASES = pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "empty price file"),
        ("time,price_per_mwh\n", "header but no rows"),
        ("time,price\n2025-01-15T12:00,1\n", "column 'price' has another unit or no unit; expected 'price_per_mwh'"),
        ("time,p_kw\n2025-01-15T12:00,1\n", "missing column 'price_per_mwh'"),
        (PRICES_OK.replace("time,price_per_mwh", "time,price_per_mwh,note").replace("\n2", ",x\n2"), "unknown column"),
        (PRICES_OK.replace("2025-01-15T12:30", "yesterday"), "line 4: time = 'yesterday' is not an ISO 8601"),
        (PRICES_OK.replace("120", "abc"), "line 4: price_per_mwh = 'abc' is not a finite number"),
        (PRICES_OK.replace("120", "inf"), "line 4: price_per_mwh = 'inf' is not a finite number"),
        (PRICES_OK.replace("2025-01-15T12:30,120\n", ""), "line 4: gap of 1 step(s) before"),
        (PRICES_OK.replace("12:15", "12:10"), "line 3: time step 600 s, but the scenario's dt_s is 900 s"),
        (PRICES_OK.replace("12:30", "12:15"), "line 4: time 2025-01-15T12:15:00+01:00 repeats or goes back"),
        (PRICES_OK.replace("2025-01-15T12:45,60\n", ""), "3 rows cover 3 of the horizon's 4 steps"),
        (PRICES_OK + "2025-01-15T13:00,1\n", "line 6: time = 2025-01-15T13:00:00+01:00 is outside the horizon"),
        (PRICES_OK.replace("T12:", "T13:"), "line 2: time = 2025-01-15T13:00:00+01:00 is outside the horizon"),
    ],
)


@PRICE_CASES
def test_bad_price_file_is_one_line_naming_file_line_and_column(tmp_path: Path, text: str, needle: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(DataError) as exc:
        read_price_csv(path, TIME)
    msg = str(exc.value)
    assert msg.startswith(str(path)) and needle in msg and "\n" not in msg, msg


def test_negative_base_load_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, PRICES_OK.replace("price_per_mwh", "p_kw"))
    with pytest.raises(DataError, match=r"line 3: p_kw = -5.5 is negative"):
        read_base_load_csv(path, TIME)


SESSIONS = (
    "arrival_time,departure_time,e_session_kwh,p_charge_max_kw,capacity_kwh,v2g,bus\n"
    "2025-01-15T12:00,2025-01-15T13:00,12,4,40,1,3\n"
    "2025-01-15T12:15,2025-01-15T12:45,1.5,4,10,0,5\n"
    "2025-01-15T12:30,2025-01-15T13:00,3,8,20,1,7\n"
)


def test_sessions_fleet_has_the_files_times_and_energy(tmp_path: Path) -> None:
    spec = FleetSpec(source="csv", sessions_csv=str(_write(tmp_path, SESSIONS)), eta_charge=1.0)
    fleet = read_sessions_csv(spec.sessions_csv or "", spec, TIME, 33, np.random.default_rng(0))
    assert fleet.arrival_step.tolist() == [0, 1, 2]  # 12:00, 12:15, 12:30 = steps 0, 1, 2
    assert fleet.departure_step.tolist() == [4, 3, 4]  # 13:00 = the horizon's end (step 4), 12:45 = step 3
    # Energy the battery takes in = capacity x (target - arrival SoC): the file's 12, 1.5, 3 kWh.
    assert (fleet.capacity_kwh * (fleet.soc_target_pu - fleet.soc0_pu)).tolist() == pytest.approx([12.0, 1.5, 3.0])
    assert fleet.p_discharge_max_kw.tolist() == [4.0, 0.0, 8.0] and fleet.bus.tolist() == [3, 5, 7]
    # Uncontrolled charging delivers the sessions' energy where the stay allows it (eta = 1): by hand,
    # EV0 4 kW x 4 steps (4 of its 12 kWh), EV1 4 then 2 kW (1.5 kWh), EV2 8 then 4 kW (3 kWh).
    p = run_uncontrolled(fleet).p_kw
    assert p.sum(axis=1).tolist() == pytest.approx([4.0, 8.0, 14.0, 8.0])
    assert (p.sum(axis=0) * TIME.dt_h).tolist() == pytest.approx([4.0, 1.5, 3.0])


SESSION_CASES = pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (("e_session_kwh", "energy"), "column 'energy' has another unit or no unit; expected 'e_session_kwh'"),
        (("p_charge_max_kw", "p_max_w"), "column 'p_max_w' has another unit or no unit; expected 'p_charge_max_kw'"),
        ((",bus\n", ",bus,colour\n"), "unknown column 'colour'"),
        (("12:15,2025-01-15T12:45", "12:15,2025-01-15T12:15"), "line 3: departure_time 2025-01-15T12:15 is not after"),
        (
            ("12:30,2025-01-15T13:00", "12:20,2025-01-15T13:00"),
            "line 4: arrival_time = 2025-01-15T12:20:00+01:00 is not a step start",
        ),
        (
            ("12:30,2025-01-15T13:00", "12:30,2025-01-15T13:15"),
            "line 4: departure_time = 2025-01-15T13:15:00+01:00 is outside the horizon",
        ),
        ((",12,4,40,", ",-1,4,40,"), "line 2: e_session_kwh = -1 must be > 0"),
        ((",12,4,40,", ",35,4,40,"), "line 2: e_session_kwh = 35 does not fit in the battery"),
        ((",1.5,4,10,0,5", ",1.5,4,10,2,5"), "line 3: v2g = '2' must be 0 or 1"),
        ((",1.5,4,10,0,5", ",1.5,4,10,0,33"), "line 3: bus = '33' must be an integer in 1..32"),
        ((",1.5,4,10,0,5", ",1.5,four,10,0,5"), "line 3: p_charge_max_kw = 'four' is not a finite number"),
    ],
)


@SESSION_CASES
def test_bad_sessions_file_is_one_line(tmp_path: Path, edit: tuple[str, str], needle: str) -> None:
    text = SESSIONS.replace(*edit)
    assert text != SESSIONS
    path = _write(tmp_path, text)
    spec = FleetSpec(source="csv", sessions_csv=str(path))
    with pytest.raises(DataError) as exc:
        read_sessions_csv(str(path), spec, TIME, 33, np.random.default_rng(0))
    assert needle in str(exc.value) and "\n" not in str(exc.value), str(exc.value)


def test_example_scenario_reads_its_three_files() -> None:
    scen = load_scenario(EXAMPLES / "own_data.toml")
    assert scen.fleet.source == "csv" and scen.time.time_zone == "America/Los_Angeles"
    prices = read_price_csv(scen.markets.price_csv or "", scen.time)
    # The file's first and last rows (examples/data/prices.csv): 33.32 at 12:00, and the 96th row.
    last = (EXAMPLES / "data" / "prices.csv").read_text().strip().splitlines()[-1]
    assert prices[0] == 33.32 and prices[-1] == float(last.split(",")[1]) and prices.size == 96


def _scenario_with(tmp_path: Path, section: str, key: str, csv_text: str, extra: str = "") -> Path:
    _write(tmp_path, csv_text, "data.csv")
    toml = tmp_path / "s.toml"
    toml.write_text(
        '[time]\nstart_date = "2025-01-15"\ntime_zone = "UTC"\n'
        f'{extra}[{section}]\n{key} = "data.csv"\n' + ('source = "csv"\n' if section == "fleet" else "")
    )
    return toml


@pytest.mark.parametrize(
    ("section", "key", "text", "needle"),
    [
        ("markets", "price_csv", "time,price_eur_per_mwh\n2025-01-15T12:00,1\n", "column 'price_eur_per_mwh'"),
        ("feeder", "base_load_csv", "time,p_mw\n2025-01-15T12:00,1\n", "column 'p_mw' has another unit"),
        ("fleet", "sessions_csv", "arrival_time\n2025-01-15T12:00\n", "missing column 'departure_time'"),
    ],
)
def test_bad_csv_through_the_cli_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], section: str, key: str, text: str, needle: str
) -> None:
    toml = _scenario_with(tmp_path, section, key, text)
    code, _, err = run_cli(capsys, "scenario", "validate", str(toml))
    assert_one_line_error(code, err)
    assert needle in err and "data.csv" in err


def test_missing_csv_and_base_load_with_network_are_scenario_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    toml = tmp_path / "s.toml"
    toml.write_text('[markets]\nprice_csv = "nowhere.csv"\n')
    code, _, err = run_cli(capsys, "scenario", "validate", str(toml))
    assert_one_line_error(code, err)
    assert "markets.price_csv: no such price CSV file" in err
    net = '[[network.feeders]]\nsource = "ieee33"\n'
    toml = _scenario_with(tmp_path, "feeder", "base_load_csv", PRICES_OK.replace("price_per_mwh", "p_kw"), net)
    code, _, err = run_cli(capsys, "scenario", "validate", str(toml))
    assert_one_line_error(code, err)
    assert "feeder.base_load_csv: not used with [network]" in err


#: A scenario on the tests' 4-step horizon (12:00-13:00 in Berlin): every clock time of the scenario moved into it.
FOUR_STEPS = """
[time]
n_steps = 4
start_date = "2025-01-15"
time_zone = "Europe/Berlin"
[frequency]
event_hour = 12.0
dr_notify_hour = 12.0
dr_start_hour = 12.25
dr_end_hour = 12.5
[resilience]
outage_start_hour = 12.0
outage_duration_h = 0.5
"""


@PRICE_CASES
def test_every_bad_price_file_through_the_cli_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, needle: str
) -> None:
    _write(tmp_path, text, "prices.csv")
    toml = tmp_path / "s.toml"
    toml.write_text(FOUR_STEPS + '[markets]\nv2g_offer_hour = 12.0\nprice_csv = "prices.csv"\n')
    code, _, err = run_cli(capsys, "scenario", "validate", str(toml))
    assert_one_line_error(code, err)
    assert needle in err and "prices.csv" in err, err


@SESSION_CASES
def test_every_bad_sessions_file_through_the_cli_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: tuple[str, str], needle: str
) -> None:
    _write(tmp_path, SESSIONS.replace(*edit), "sessions.csv")
    toml = tmp_path / "s.toml"
    toml.write_text(
        FOUR_STEPS + '[markets]\nv2g_offer_hour = 12.0\n[fleet]\nsource = "csv"\nsessions_csv = "sessions.csv"\n'
    )
    code, _, err = run_cli(capsys, "scenario", "validate", str(toml))
    assert_one_line_error(code, err)
    assert needle in err and "sessions.csv" in err, err


def test_a_good_file_on_the_four_step_horizon_validates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path, SESSIONS, "sessions.csv")
    _write(tmp_path, PRICES_OK, "prices.csv")
    toml = tmp_path / "s.toml"
    toml.write_text(
        FOUR_STEPS + '[markets]\nv2g_offer_hour = 12.0\nprice_csv = "prices.csv"\n'
        '[fleet]\nsource = "csv"\nsessions_csv = "sessions.csv"\n'
    )
    code, out, err = run_cli(capsys, "scenario", "validate", str(toml))
    assert code == 0 and "ok" in out, err  # the cases above fail for their fault alone


def test_validate_reports_the_files_session_count(capsys: pytest.CaptureFixture[str]) -> None:
    # examples/data/sessions.csv: a header and 40 rows (wc -l gives 41); the old line said "1000 EVs" (fleet.n_evs,
    # not used when fleet.source = "csv").
    path = EXAMPLES / "own_data.toml"
    n_rows = len((EXAMPLES / "data" / "sessions.csv").read_text().strip().splitlines()) - 1
    code, out, err = run_cli(capsys, "scenario", "validate", str(path))
    assert code == 0, err
    assert f"ok ({n_rows} sessions from " in out and n_rows == 40 and "1000 EVs" not in out


def test_binary_price_file_is_not_a_text_csv(tmp_path: Path) -> None:
    # A gzip header and NUL bytes (what a spreadsheet or archive looks like): the old message was "header but no rows".
    path = tmp_path / "prices.csv"
    path.write_bytes(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03time,price\x00\x00\x01\x02")
    with pytest.raises(DataError) as exc:
        read_price_csv(path, TIME)
    assert str(exc.value) == f"{path}: not a text CSV file (binary content); expected a UTF-8 price CSV file"


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_scenario_value_is_not_a_finite_number(value: str) -> None:
    # The old message for nan was "Input should be less than or equal to 3; got nan" (pydantic compares nan).
    from v2gtwin.errors import ScenarioError
    from v2gtwin.scenario import DEFAULT_SCENARIO

    with pytest.raises(ScenarioError) as exc:
        DEFAULT_SCENARIO.replace(feeder={"peak_load_scale": float(value)})
    msg = str(exc.value)
    assert "feeder.peak_load_scale" in msg and "finite number" in msg and "less than" not in msg, msg
