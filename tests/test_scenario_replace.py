"""Tests of the scenario's calendar (TimeGrid.start_date, time_zone, index) and of Scenario.replace."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pandas as pd
import pytest

from v2gtwin.errors import ScenarioError
from v2gtwin.scenario import DEFAULT_SCENARIO, TimeGrid


def test_index_starts_at_the_local_start_and_steps_by_dt() -> None:
    t = TimeGrid(dt_s=900.0, n_steps=4, start_hour=18.5, start_date="2024-07-01", time_zone="Europe/Berlin")
    idx = t.index()
    # 18:30 CEST (UTC+2) on 1 July 2024 = 16:30 UTC; then every 15 min.
    assert str(idx.tz) == "Europe/Berlin"
    assert idx[0] == pd.Timestamp("2024-07-01 16:30", tz="UTC")
    assert list(idx.tz_convert("UTC").strftime("%H:%M")) == ["16:30", "16:45", "17:00", "17:15"]
    assert idx.freq == pd.Timedelta(minutes=15)
    assert idx.name == "time" and len(idx) == 4


def test_index_across_a_daylight_saving_change_keeps_fixed_steps_in_absolute_time() -> None:
    # New York springs forward at 02:00 on 9 March 2025 (EST -5 h -> EDT -4 h). Start 00:00 EST, hourly steps:
    # the third step is 2 absolute hours later = 03:00 EDT (02:00 local does not exist).
    t = TimeGrid(dt_s=3600.0, n_steps=4, start_hour=0.0, start_date="2025-03-09", time_zone="America/New_York")
    local = t.index().strftime("%H:%M %z")
    assert list(local) == ["00:00 -0500", "01:00 -0500", "03:00 -0400", "04:00 -0400"]


def test_default_calendar_is_a_valid_winter_weekday_in_utc() -> None:
    t = DEFAULT_SCENARIO.time
    assert t.time_zone == "UTC"
    assert dt.date.fromisoformat(t.start_date).weekday() < 5  # Monday..Friday
    assert t.index()[0].tzinfo is not None
    assert t.start_datetime() == dt.datetime(2025, 1, 15, 12, tzinfo=zoneinfo.ZoneInfo("UTC"))


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"time_zone": "Mars/Olympus"}, "time.time_zone: unknown IANA time zone 'Mars/Olympus'"),
        ({"start_date": "2025-02-30"}, "time.start_date: not a calendar date"),
        ({"start_date": "15.01.2025"}, "time.start_date"),
        # 02:30 on 9 March 2025 is skipped in New York; 01:30 on 2 November 2025 happens twice.
        ({"time_zone": "America/New_York", "start_date": "2025-03-09", "start_hour": 2.5}, "does not exist"),
        ({"time_zone": "America/New_York", "start_date": "2025-11-02", "start_hour": 1.5}, "exists twice"),
    ],
)
def test_bad_calendar_is_a_one_line_scenario_error(changes: dict[str, object], needle: str) -> None:
    with pytest.raises(ScenarioError) as exc:
        DEFAULT_SCENARIO.replace(time=changes)
    msg = str(exc.value)
    assert needle in msg and "\n" not in msg


def test_replace_merges_a_section_and_keeps_the_rest() -> None:
    s = DEFAULT_SCENARIO.replace(fleet={"n_evs": 10_000}, seed=7)
    assert s.fleet.n_evs == 10_000 and s.seed == 7
    assert s.fleet.soc_target_pu == DEFAULT_SCENARIO.fleet.soc_target_pu
    assert s.feeder == DEFAULT_SCENARIO.feeder and s.network == DEFAULT_SCENARIO.network
    assert DEFAULT_SCENARIO.fleet.n_evs == 1000  # the original is unchanged
    assert DEFAULT_SCENARIO.replace(network=None).network is None


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"fleet": {"n_evs": 0}}, "Scenario.replace: fleet.n_evs: Input should be greater than or equal to 1; got 0"),
        ({"fleet": {"nevs": 3}}, "fleet.nevs: unknown key 'nevs'; allowed keys: acn_date"),
        ({"fleets": {"n_evs": 3}}, "fleets: unknown key 'fleets'"),
        ({"feeder": {"v_min_pu": 1.2}}, "feeder.v_min_pu"),
        # A check across fields still runs: soc_min <= soc_target <= soc_max.
        ({"fleet": {"soc_target_pu": 0.1}}, "soc_min_pu <= soc_target_pu"),
    ],
)
def test_replace_validates_like_a_file(changes: dict[str, object], needle: str) -> None:
    with pytest.raises(ScenarioError) as exc:
        DEFAULT_SCENARIO.replace(**changes)
    assert needle in str(exc.value) and "\n" not in str(exc.value)


def test_model_copy_with_update_is_validated_like_replace() -> None:
    # pydantic's own model_copy(update=...) would leave fleet the dict {"n_evs": 10} and fail later.
    s = DEFAULT_SCENARIO.model_copy(update={"fleet": {"n_evs": 10}})
    assert s.fleet.n_evs == 10 and s.fleet.soc_target_pu == DEFAULT_SCENARIO.fleet.soc_target_pu
    with pytest.raises(ScenarioError, match=r"Scenario\.replace: fleet\.n_evs"):
        DEFAULT_SCENARIO.model_copy(update={"fleet": {"n_evs": 0}})
    assert DEFAULT_SCENARIO.model_copy() == DEFAULT_SCENARIO
