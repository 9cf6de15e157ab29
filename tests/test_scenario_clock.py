"""Scenario-level check of the clock-time fields: each lies in the horizon, and the DR event is in step order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_helpers import assert_one_line_error, run_cli
from v2gtwin.errors import ScenarioError
from v2gtwin.scenario import parse_scenario


@pytest.mark.parametrize(
    ("data", "field"),
    [
        # 24 steps of 900 s from 12:00: the horizon is 12:00-18:00; the default event hour 20 lies outside.
        ({"time": {"n_steps": 24}}, "frequency.event_hour"),
        # Same horizon, the events moved inside: the default DR end 19:00 is still outside.
        ({"time": {"n_steps": 24}, "frequency": {"event_hour": 13.0}}, "frequency.dr_end_hour"),
        # ... and the default V2G offer hour 18:00 is the first instant after the horizon (step 24 of 24).
        (
            {
                "time": {"n_steps": 24},
                "frequency": {"event_hour": 13.0, "dr_notify_hour": 14.0, "dr_start_hour": 15.0, "dr_end_hour": 16.0},
            },
            "markets.v2g_offer_hour",
        ),
        # 11:30 in a 12:00-18:00 horizon: outside (it would be 23.5 h after the start).
        ({"time": {"n_steps": 24}, "frequency": {"event_hour": 11.5}}, "frequency.event_hour"),
    ],
)
def test_a_clock_time_outside_the_horizon_is_refused(data: dict, field: str) -> None:
    with pytest.raises(ScenarioError, match=field.replace(".", r"\.")) as err:
        parse_scenario(data, "s.toml")
    assert "outside the horizon" in str(err.value) and "\n" not in str(err.value)


def test_a_notice_after_the_start_in_horizon_order_is_refused() -> None:
    # Horizon from 12:00: 11:00 is step 92 (23 h x 4), after the 17:00 start (step 20), though 11 < 17.
    with pytest.raises(ScenarioError, match=r"dr_notify_hour.*steps 92, 20, 28"):
        parse_scenario({"frequency": {"dr_notify_hour": 11.0}}, "s.toml")


def test_the_event_hour_late_in_a_noon_to_noon_horizon_is_accepted() -> None:
    # 11:30 is step 94 of 96 (23.5 h x 4) in the default horizon.
    scen = parse_scenario({"frequency": {"event_hour": 11.5}})
    assert scen.time.step_at(scen.frequency.event_hour) == 94


def test_tou_hours_are_not_horizon_clock_times() -> None:
    # The TOU block marks the market's own 24-hour day; it is valid with a 6-hour horizon.
    data = {
        "time": {"n_steps": 24},
        "frequency": {"event_hour": 13.0, "dr_notify_hour": 14.0, "dr_start_hour": 15.0, "dr_end_hour": 16.0},
        "markets": {"v2g_offer_hour": 17.0, "tou_peak_start_hour": 19, "tou_peak_end_hour": 22},
        "resilience": {"outage_start_hour": 16.0, "outage_duration_h": 2.0},
    }
    assert parse_scenario(data).markets.tou_peak_start_hour == 19


def test_scenario_validate_refuses_what_a_run_refuses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.toml"
    path.write_text("[time]\nn_steps = 24\n")
    code, _, err = run_cli(capsys, "scenario", "validate", str(path))
    assert_one_line_error(code, err)
    assert "frequency.event_hour" in err and "(top level)" not in err


def test_a_dr_event_over_midnight_is_accepted_and_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Notice 22:00, start 23:00, end 01:00 in the default 12:00 + 24 h horizon of 900 s steps:
    # steps (22-12) x 4 = 40, (23-12) x 4 = 44, (25-12) x 4 = 52: in order, though the end hour 1 < 23.
    path = tmp_path / "s.toml"
    path.write_text("[fleet]\nn_evs = 200\n[frequency]\ndr_notify_hour = 22\ndr_start_hour = 23\ndr_end_hour = 1\n")
    code, out, err = run_cli(capsys, "scenario", "validate", str(path))
    assert code == 0, err
    code, out, err = run_cli(capsys, "frequency", "dr", "-s", str(path), "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["event_clock"] == {"notify": "22:00", "start": "23:00", "end": "01:00 +1d"}
    # Two hours of event: the fleet shifts energy (a reduction > 0), which an empty event could not.
    assert data["reduction_mean_kw"] > 0 and data["energy_shifted_kwh"] == pytest.approx(
        data["reduction_mean_kw"] * 2.0, rel=1e-9
    )  # energy = mean reduction x 2 h
