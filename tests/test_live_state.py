"""The live state -> fleet arrays, against hand-computed values; the plan's set-points against the EVs' limits and
targets; the run folder's records and their errors."""

from __future__ import annotations

import datetime as dt
import json
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from v2gtwin.errors import DataError, V2GTwinError
from v2gtwin.fleet import Fleet
from v2gtwin.live import CYCLES_FILE, read_run, run_loop, summarize_regulation, summarize_run
from v2gtwin.live_plan import NetworkSlots, calc_must_charge_peak_kw, clip_to_station_limits, plan_cycle
from v2gtwin.live_state import NeedEntry, build_live_fleet, calc_live_time_grid, read_live_state, update_need_book
from v2gtwin.scenario import FleetSpec, Scenario

NOW = dt.datetime(2026, 11, 27, 18, 0, tzinfo=dt.UTC)


def _iso(hours: float) -> str:
    return (NOW + dt.timedelta(hours=hours)).isoformat().replace("+00:00", "Z")


def _evse(soc: float | None, p_max: float, p_min: float) -> dict[str, Any]:
    return {"evse_id": 1, "status": "Occupied", "p_kw": 0.0, "soc_pu": soc, "p_max_kw": p_max, "p_min_kw": p_min}


STATIONS = {
    "stations": [
        {"station_id": "A", "connected": True, "evses": [_evse(0.5, 11.0, -11.0)]},
        {"station_id": "B", "connected": True, "evses": [_evse(None, 7.2, 0.0)]},
        {"station_id": "C", "connected": True, "evses": [_evse(0.2, 11.0, 0.0)]},
        {"station_id": "D", "connected": False, "evses": [_evse(0.4, 11.0, 0.0)]},
    ]
}
NEEDS = {
    "needs": [
        {"station_id": "A", "evse_id": 1, "departure_time": _iso(3), "e_request_kwh": 10.0, "soc_pu": None,
         "p_max_kw": 7.4, "p_min_kw": -7.4, "v2x": True, "capacity_kwh": 50.0},
        {"station_id": "B", "evse_id": 1, "departure_time": _iso(50), "e_request_kwh": 19.95, "soc_pu": None,
         "p_max_kw": None, "p_min_kw": None, "v2x": False},
        {"station_id": "C", "evse_id": 1, "departure_time": _iso(-1 / 6), "e_request_kwh": 30.0, "soc_pu": None,
         "p_max_kw": 11.0, "p_min_kw": 0.0, "v2x": False, "capacity_kwh": 60.0},
        {"station_id": "D", "evse_id": 1, "departure_time": _iso(5), "e_request_kwh": 5.0, "soc_pu": None,
         "p_max_kw": 11.0, "p_min_kw": 0.0, "v2x": False},
    ]
}  # fmt: skip


def test_state_to_fleet_by_hand() -> None:
    state = read_live_state(STATIONS, NEEDS, NOW)
    assert state.station_id == ("A", "B", "C") and state.n_needs_unmatched == 1  # D is not connected
    book = update_need_book({}, state)
    spec = FleetSpec()  # classes 40/60/75/100 kWh at 0.2/0.35/0.3/0.15: mean 8 + 21 + 22.5 + 15 = 66.5 kWh
    grid = calc_live_time_grid(state.t_utc, state.departure_s, 900.0, 96, "UTC")
    assert grid.n_steps == 96  # B leaves in 50 h = 200 steps, cut at the 96-step horizon
    fleet, notes = build_live_fleet(state, book, spec, grid)
    # A: limits min(11, 7.4) = 7.4 kW and discharge min(11, 7.4) = 7.4 kW; leaves in 3 h = step 12; target
    # 0.5 + 10 / 50 = 0.7 (reach 0.5 + 7.4 * 0.95 * 0.25 * 12 / 50 = 0.9218: not cut).
    # B: no SoC, no capacity: 66.5 kWh, arrives at 0.8 - 19.95 / 66.5 = 0.5, target 0.8; beyond the horizon: keeps
    # 96 * 900 / 180000 = 0.48 of its 0.3: target 0.5 + 0.144 = 0.644; no discharge (no V2X).
    # C: 10 min past its departure: one step; target 0.2 + 30 / 60 = 0.7 cut to 0.2 + 11 * 0.95 * 0.25 / 60.
    c_reach = 0.2 + 11 * 0.95 * 0.25 / 60
    np.testing.assert_allclose(fleet.capacity_kwh, [50.0, 66.5, 60.0])
    np.testing.assert_allclose(fleet.soc0_pu, [0.5, 0.5, 0.2])
    np.testing.assert_allclose(fleet.soc_target_pu, [0.7, 0.644, c_reach], rtol=1e-12)
    np.testing.assert_allclose(fleet.p_charge_max_kw, [7.4, 7.2, 11.0])
    np.testing.assert_allclose(fleet.p_discharge_max_kw, [7.4, 0.0, 0.0])
    np.testing.assert_array_equal(fleet.departure_step, [12, 96, 1])
    np.testing.assert_array_equal(fleet.arrival_step, [0, 0, 0])
    assert notes.n_capacity_assumed == 1 and notes.capacity_assumed_kwh == pytest.approx(66.5)
    assert (notes.n_soc_assumed, notes.n_past_departure, notes.n_departure_beyond_horizon) == (1, 1, 1)
    assert notes.n_target_cut == 1
    assert notes.e_target_cut_kwh == pytest.approx((0.7 - c_reach) * 60)
    # Remaining: 0.2 * 50 + 0.144 * 66.5 + (c_reach - 0.2) * 60 = 10 + 9.576 + 2.6125
    assert notes.e_request_remaining_kwh == pytest.approx(22.1885)


@pytest.mark.parametrize(
    ("t_utc", "zone", "date", "hour"),
    [
        # 18:00 UTC in Berlin in November (CET, UTC+1): 19:00 the same day.
        (NOW, "Europe/Berlin", "2026-11-27", 19.0),
        # 23:30 UTC in Tokyo (JST, UTC+9, no daylight saving): 08:30 the next day.
        (dt.datetime(2026, 11, 27, 23, 30, tzinfo=dt.UTC), "Asia/Tokyo", "2026-11-28", 8.5),
    ],
)
def test_live_time_grid_uses_the_scenario_zone_not_the_machine(
    monkeypatch: pytest.MonkeyPatch, t_utc: dt.datetime, zone: str, date: str, hour: float
) -> None:
    # The process runs in a third zone (Los Angeles, UTC-8 in November): its clock must not leak into the grid.
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    time.tzset()
    try:
        grid = calc_live_time_grid(t_utc, np.array([3600.0]), 900.0, 96, zone)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert (grid.start_date, grid.start_hour, grid.time_zone) == (date, hour, zone)
    assert grid.start_datetime() == t_utc and grid.n_steps == 4  # 1 h of 15 min steps


def test_live_time_grid_in_a_repeated_hour_takes_the_fixed_offset_zone() -> None:
    # New York, 2026-11-01: clocks go back from 02:00 EDT (UTC-4) to 01:00 EST (UTC-5), so 01:30 happens twice:
    # 05:30 UTC is the first (EDT, IANA Etc/GMT+4: POSIX sign), 06:30 UTC the second (EST, Etc/GMT+5).
    for t_utc, zone in [
        (dt.datetime(2026, 11, 1, 5, 30, tzinfo=dt.UTC), "Etc/GMT+4"),
        (dt.datetime(2026, 11, 1, 6, 30, tzinfo=dt.UTC), "Etc/GMT+5"),
    ]:
        grid = calc_live_time_grid(t_utc, np.array([3600.0]), 900.0, 96, "America/New_York")
        assert (grid.start_date, grid.start_hour, grid.time_zone) == ("2026-11-01", 1.5, zone)
        assert grid.start_datetime() == t_utc
    # An hour later (07:30 UTC = 02:30 EST) the clock is unambiguous again: the scenario's own zone.
    later = calc_live_time_grid(dt.datetime(2026, 11, 1, 7, 30, tzinfo=dt.UTC), np.array([3600.0]), 900.0, 96,
                                "America/New_York")  # fmt: skip
    assert (later.start_hour, later.time_zone) == (2.5, "America/New_York")


def test_need_book_tracks_the_request_in_energy() -> None:
    state = read_live_state(STATIONS, NEEDS, NOW)
    book = update_need_book({}, state, 0.95, 0.95)
    later = json.loads(json.dumps(STATIONS))
    later["stations"][0]["evses"][0] |= {"soc_pu": 0.576, "p_kw": 4.0}  # A held 4 kW for 15 min
    later["stations"][1]["evses"][0]["p_kw"] = 7.2  # B (no SoC, capacity assumed 66.5 kWh) held 7.2 kW
    s2 = read_live_state(later, NEEDS, NOW + dt.timedelta(minutes=15))
    b2 = update_need_book(book, s2, 0.95, 0.95)
    # A: stored 4 x 0.25 h x 0.95 = 0.95 kWh of its 10; first SoC kept.
    assert b2[s2.key[0]].soc_first_pu == 0.5 and b2[s2.key[0]].e_stored_kwh == pytest.approx(0.95)
    grid = calc_live_time_grid(s2.t_utc, s2.departure_s, 900.0, 96, "UTC")
    fleet, notes = build_live_fleet(s2, b2, FleetSpec(), grid)
    # Target = SoC now + what is left of the request: 0.576 + (10 - 0.95) / 50 = 0.757 (energy, not SoC, tracked)
    assert fleet.soc0_pu[0] == 0.576 and fleet.soc_target_pu[0] == pytest.approx(0.757)
    assert fleet.departure_step[0] == 11  # 2 h 45 min left = 11 steps
    # B: stored 7.2 x 0.25 x 0.95 = 1.71 kWh; assumed arrival SoC 0.5 (19.95 / 66.5 below 0.8), now 0.5 + 1.71 /
    # 66.5; the energy left in the horizon is (19.95 - 1.71) x (96 x 900 / (50 h - 15 min) = 179100 s) = 8.799 kWh
    # whatever capacity is assumed.
    b_left = (fleet.soc_target_pu[1] - fleet.soc0_pu[1]) * fleet.capacity_kwh[1]
    assert fleet.soc0_pu[1] == pytest.approx(0.5 + 1.71 / 66.5)
    assert b_left == pytest.approx((19.95 - 1.71) * 96 * 900 / 179100)
    assert notes.n_soc_assumed == 1


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [("e_request_kwh", -1.0, "e_request_kwh"), ("departure_time", "tomorrow", "departure_time"),
     ("e_request_kwh", "nan", "e_request_kwh")],
)  # fmt: skip
def test_bad_needs_name_the_field(field: str, value: Any, match: str) -> None:
    needs = json.loads(json.dumps(NEEDS))
    needs["needs"][0][field] = value
    with pytest.raises(DataError, match=match):
        read_live_state(STATIONS, needs, NOW)


def test_plan_meets_targets_within_limits() -> None:
    state = read_live_state(STATIONS, NEEDS, NOW)
    plan = plan_cycle(Scenario(), state, update_need_book({}, state))
    assert plan.schedule is not None
    p = plan.schedule.p_kw
    f = plan.fleet
    # Limits: -p_discharge <= p <= p_charge, nothing after departure.
    assert (p <= f.p_charge_max_kw + 1e-6).all() and (p >= -f.p_discharge_max_kw - 1e-6).all()
    for i in range(f.n):
        assert np.abs(p[f.departure_step[i] :, i]).max(initial=0.0) < 1e-6
    # Energy stored by departure reaches the target: sum(eta_c p+ + p- / eta_d) dt_h >= (target - soc0) C.
    stored = (np.where(p > 0, 0.95 * p, p / 0.95) * 0.25).sum(axis=0)
    need = (f.soc_target_pu - f.soc0_pu) * f.capacity_kwh
    assert (stored >= need - 1e-4).all()
    # C can only charge flat out in its one step: 11 kW.
    assert plan.p_set_kw[2] == pytest.approx(11.0, abs=1e-4)
    np.testing.assert_allclose(plan.p_set_kw, p[0], atol=1e-9)  # no clip without a network


def test_must_charge_peak_by_hand() -> None:
    # EV 1: e0 10, target 20 kWh, 4 kW, eta 0.8, 1 h steps, leaves at step 5: 3.2 kWh stored per step; as late as
    # possible e(k) = max(10, 20 - 3.2 (5 - k)) = 10, 10, 10.4, 13.6, 16.8, 20 for k = 0..5 -> grid power in steps
    # 0..4: 0, 0.4 / 0.8 = 0.5, 4, 4, 4 kW. EV 2: e0 0, target 2, 10 kW (8 kWh stored per step), leaves at step 2:
    # e = 0, 0, 2 -> 2 / 0.8 = 2.5 kW in step 1, beside EV 1's 0.5 kW: 3.0 kW. The peak is EV 1's 4 kW.
    f = Fleet(
        capacity_kwh=np.array([100.0, 100.0]), soc0_pu=np.array([0.1, 0.0]), soc_target_pu=np.array([0.2, 0.02]),
        soc_min_pu=np.zeros(2), soc_max_pu=np.ones(2), p_charge_max_kw=np.array([4.0, 10.0]),
        p_discharge_max_kw=np.zeros(2), eta_charge=np.full(2, 0.8), eta_discharge=np.full(2, 0.8),
        arrival_step=np.zeros(2, dtype=int), departure_step=np.array([5, 2]), bus=np.zeros(2, dtype=int),
        kind=np.zeros(2, dtype=int), dt_s=3600.0, n_steps=6,
    )  # fmt: skip
    assert calc_must_charge_peak_kw(f) == pytest.approx(4.0)
    # EV 2 leaving one step later (step 3) puts its 2.5 kW in step 2, on EV 1's 4 kW: peak 6.5 kW.
    assert calc_must_charge_peak_kw(f.replace(departure_step=np.array([5, 3]))) == pytest.approx(6.5)
    # EVs due from step 0: A (4 kW, 3.2 kWh stored per step) needs 16.4 - 10 = 6.4 kWh by step 2: e = max(10,
    # 16.4 - 3.2 (2 - k)) = 10, 13.2, 16.4 -> 4 kW in steps 0 and 1; C (10 kW) needs 2 kWh by step 1: e = 0, 2 ->
    # 2.5 kW in step 0, beside A: peak 4 + 2.5 = 6.5 kW in step 0. (Counting one step less to departure would move
    # both one step earlier, before step 0: A would charge in step 0 only and C not at all, a peak of 4 kW.)
    due = f.replace(
        soc0_pu=np.array([0.1, 0.0]), soc_target_pu=np.array([0.164, 0.02]), departure_step=np.array([2, 1]), n_steps=3
    )
    assert calc_must_charge_peak_kw(due) == pytest.approx(6.5)


def test_station_clip_counted() -> None:
    state = read_live_state(STATIONS, NEEDS, NOW)
    out, n = clip_to_station_limits(np.array([8.0, -1.0, 5.0]), state)
    np.testing.assert_allclose(out, [7.4, 0.0, 5.0])  # A above 7.4 kW, B cannot discharge
    assert n == 2


def test_network_slots_stable_hash() -> None:
    slots = NetworkSlots(np.array([0, 1, 1, 2]), np.array([5, 6, 7, 8]))
    f, b = slots.place(("CS-1", "CS-2"))
    k = [zlib.crc32(b"CS-1") % 4, zlib.crc32(b"CS-2") % 4]
    np.testing.assert_array_equal(f, slots.ev_feeder[k])
    np.testing.assert_array_equal(b, slots.ev_bus[k])


class _FlakyClient:
    """Answers reads; the first POST fails as an unreachable server would."""

    def __init__(self) -> None:
        self.posts = 0

    def stations(self) -> list[dict[str, Any]]:
        return list(STATIONS["stations"])

    def charging_needs(self) -> list[dict[str, Any]]:
        return list(NEEDS["needs"])

    def post_setpoints(
        self, setpoints: list[Any], timeout_s: float = 10.0, duration_s: int | None = None
    ) -> list[dict[str, Any]]:
        self.posts += 1
        if self.posts == 1:
            raise V2GTwinError("POST /api/v1/setpoints: no answer")
        ok = {"status": "Accepted", "latency_s": 0.01, "error": None}
        return [{"station_id": s["station_id"]} | ok for s in setpoints]


def test_malformed_answer_is_recorded() -> None:
    from v2gtwin.live import run_cycle

    class Odd(_FlakyClient):
        def stations(self) -> list[dict[str, Any]]:
            return [{"station_id": "A", "connected": True, "evses": [{"evse_id": "one"}]}]  # not a number

    kept = {"k": NeedEntry(0.5, 0.0, 0.0)}
    rec, book, plan = run_cycle(Odd(), Scenario(), kept, cycle=3, t_utc=NOW)
    assert rec["stage"] == "plan" and rec["error"].startswith("ValueError") and plan is None and book == kept


def test_error_in_a_cycle_is_recorded_and_the_loop_goes_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    times = iter([NOW, NOW, NOW + dt.timedelta(minutes=15)])
    recs = run_loop(
        _FlakyClient(), Scenario(), interval_s=900, cycles=2, record_dir=tmp_path / "run",
        clock=lambda: next(times), wait=lambda s: None,
    )  # fmt: skip
    assert recs[0]["error"] == "POST /api/v1/setpoints: no answer" and recs[0]["stage"] == "send"
    assert recs[1]["error"] is None and len(recs[1]["results"]) == 3
    meta, on_disk = read_run(tmp_path / "run")
    assert [r["cycle"] for r in on_disk] == [0, 1] and meta["interval_s"] == 900
    s = summarize_run(on_disk, 900)
    # Cycle 0's POST failed: no acknowledgement, nothing counted as delivered, said in its note.
    assert s["cycles"][0]["e_delivered_kwh"] is None and "no acknowledgement" in s["cycles"][0]["delivered_note"]
    # The CLI's replay of the run: both cycles planned again from their inputs, the same set-points.
    from v2gtwin.cli import main

    assert main(["live", "replay", str(tmp_path / "run"), "--json"]) == 0
    replayed = json.loads(capsys.readouterr().out)
    assert replayed["n_replayed"] == 2 and replayed["max_setpoint_diff_kw"] <= 1e-3
    with (tmp_path / "run" / CYCLES_FILE).open("a") as fh:
        fh.write('{"cycle": 2, "t_u')  # a torn last line
    with pytest.raises(DataError, match="line 3"):
        read_run(tmp_path / "run")
    with pytest.raises(DataError, match="already holds a run"):
        run_loop(_FlakyClient(), Scenario(), cycles=1, record_dir=tmp_path / "run", wait=lambda s: None)


def _two_evs() -> Fleet:
    return Fleet(
        capacity_kwh=np.array([60.0, 60.0]), soc0_pu=np.array([0.5, 0.5]), soc_target_pu=np.array([0.6, 0.6]),
        soc_min_pu=np.full(2, 0.2), soc_max_pu=np.ones(2), p_charge_max_kw=np.array([7.0, 7.0]),
        p_discharge_max_kw=np.array([7.0, 0.0]), eta_charge=np.full(2, 0.95), eta_discharge=np.full(2, 0.95),
        arrival_step=np.zeros(2, dtype=int), departure_step=np.array([4, 4]), bus=np.zeros(2, dtype=int),
        kind=np.zeros(2, dtype=int), dt_s=900.0, n_steps=4,
    )  # fmt: skip


@pytest.mark.parametrize("allocation", ["pro_rata", "soc_aware"])
def test_regulation_tick_by_hand(allocation: str) -> None:
    from v2gtwin.live_regulation import calc_regulation_capacity_kw, calc_regulation_setpoints

    f = _two_evs()
    p0 = np.array([2.0, 5.0])
    # Band: up (more injection) (2 + 7) + (5 + 0) = 14 kW, down (7 - 2) + (7 - 5) = 7 kW: 7 kW.
    cap = calc_regulation_capacity_kw(f, p0)
    assert cap == pytest.approx(7.0)
    # +0.5: inject 3.5 kW, shared by the room to inject, 9 and 5 kW (equal SoC: SoC-aware weights alike):
    # 3.5 x 9 / 14 = 2.25 and 1.25 -> set-points -0.25 and 3.75 kW.
    t = calc_regulation_setpoints(f, p0, 0.5, cap, allocation)
    np.testing.assert_allclose(t.p_set_kw, [-0.25, 3.75], atol=1e-9)
    assert t.target_kw == pytest.approx(3.5) and t.allocated_kw == pytest.approx(3.5)
    # -1: absorb 7 kW, exactly the room to charge more (5 and 2 kW): both to 7 kW.
    t = calc_regulation_setpoints(f, p0, -1.0, cap, allocation)
    np.testing.assert_allclose(t.p_set_kw, [7.0, 7.0], atol=1e-9)
    with pytest.raises(DataError, match="signal_pu"):
        calc_regulation_setpoints(f, p0, float("nan"), cap)


def test_loop_with_regulation_sends_ticks(tmp_path: Path) -> None:
    client = _FlakyClient()
    client.posts = 1  # every POST answers
    run_loop(
        client, Scenario(), interval_s=10, cycles=2, record_dir=tmp_path / "run", clock=lambda: NOW,
        wait=lambda s: None, regulation=True,
    )  # fmt: skip
    ticks = [json.loads(x) for x in (tmp_path / "run" / "regulation.jsonl").read_text().splitlines()]
    # 10 s interval: ticks at 2, 4, 6, 8 s (the last 2 s belong to the next cycle); none after the last cycle.
    assert [t["tick"] for t in ticks] == [0, 1, 2, 3] and {t["cycle"] for t in ticks} == {0}
    assert all(t["error"] is None and t["n_acknowledged"] == 3 for t in ticks)
    assert client.posts == 1 + 2 + 4  # the first answer was used up by the setting above; 2 cycles; 4 ticks
    from v2gtwin.cli import main

    assert main(["live", "report", str(tmp_path / "run"), "--json"]) == 0
    reg = json.loads((tmp_path / "run" / "report" / "results.json").read_text())["regulation"]
    assert reg["n_ticks"] == 4 and reg["n_ticks_failed"] == 0
    page = (tmp_path / "run" / "report" / "report.html").read_text()
    assert "Regulation" in page
    # The study report's format: header and footer line with the scenario's sha256 (the scenario recorded as TOML
    # reads back to the same scenario, so the same hash as the study's), currency, the plans' assumptions (B
    # reports no capacity: 1 EV with 66.5 kWh assumed in both cycles), the method note and its page.
    from v2gtwin.study_summary import calc_scenario_hash

    results = json.loads((tmp_path / "run" / "report" / "results.json").read_text())
    h = calc_scenario_hash(Scenario())
    assert results["scenario_hash"] == h and page.count(h) == 2 and results["currency"] == Scenario().currency
    assert "1 (in 2 of 2 cycles)" in page and "capacity assumed [kWh]</td><td>66.5" in page
    assert "docs/operation.md" in page and f"currency {Scenario().currency}" in page


def test_regulation_tick_error_is_recorded_and_ticks_go_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import v2gtwin.live_regulation as reg_mod

    real = reg_mod.calc_regulation_setpoints
    calls = {"n": 0}

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise DataError("signal_pu = nan: must be finite")
        return real(*args, **kwargs)

    monkeypatch.setattr(reg_mod, "calc_regulation_setpoints", flaky)
    client = _FlakyClient()
    client.posts = 1
    recs = run_loop(
        client, Scenario(), interval_s=10, cycles=2, record_dir=tmp_path / "run", clock=lambda: NOW,
        wait=lambda s: None, regulation=True,
    )  # fmt: skip
    ticks = [json.loads(x) for x in (tmp_path / "run" / "regulation.jsonl").read_text().splitlines()]
    # Tick 1 failed (recorded, nothing sent for it); ticks 0, 2, 3 were sent; the second cycle ran.
    assert [t["tick"] for t in ticks] == [0, 1, 2, 3] and len(recs) == 2
    assert ticks[1]["error"] == "signal_pu = nan: must be finite" and ticks[1]["target_kw"] is None
    assert [t["error"] is None for t in ticks] == [True, False, True, True]
    assert client.posts == 1 + 2 + 3
    assert summarize_regulation(ticks)["n_ticks_failed"] == 1


@pytest.mark.slow
def test_network_clip_keeps_the_feeder_within_limits() -> None:
    """40 EVs charging flat out (targets out of reach) on one weak 12-bus feeder: the set-points cut by the operating
    envelope keep every voltage >= 0.95 pu in the exact power flow; the uncut ones would not."""
    from v2gtwin.grid.feeder import run_powerflow
    from v2gtwin.grid.network import build_network
    from v2gtwin.live_plan import calc_network_slots
    from v2gtwin.scenario import TimeGrid
    from v2gtwin.scenario_network import NetworkFeederSpec, NetworkSpec

    feeder = NetworkFeederSpec(source="synthetic", n_bus=12, total_load_kw=400.0, v_min_base_pu=0.955)
    scen = Scenario(fleet={"n_evs": 40}, network=NetworkSpec(feeders=(feeder,)))  # type: ignore[arg-type]
    ids = [f"N{i}" for i in range(40)]
    stations = {"stations": [{"station_id": s, "connected": True, "evses": [_evse(0.1, 11.0, 0.0)]} for s in ids]}
    needs = {
        "needs": [
            {"station_id": s, "evse_id": 1, "departure_time": _iso(1), "e_request_kwh": 50.0, "v2x": False} for s in ids
        ]
    }
    state = read_live_state(stations, needs, NOW)
    slots = calc_network_slots(scen)
    assert slots is not None
    plan = plan_cycle(scen, state, update_need_book({}, state), slots)
    assert plan.notes.n_target_cut == 40 and plan.p_planned_kw == pytest.approx(np.full(40, 11.0), abs=1e-3)
    assert plan.n_clipped_network > 0 and plan.network_cut_kw > 0 and plan.n_bus_binding > 0
    # The exact power flow at the cycle's step, the EVs at their buses, with and without the cut.
    now = TimeGrid(dt_s=900.0, n_steps=1, start_hour=plan.time.start_hour)
    one_step = plan.fleet.replace(n_steps=1, departure_step=np.ones(40, dtype=int))
    net = build_network(scen.network, one_step, now, scen.seed)  # type: ignore[arg-type]
    _, bus = slots.place(state.station_id)
    f0 = net.feeders[0]

    def v_min(p_ev: np.ndarray) -> float:
        p = net.p_base_kw[0] + np.bincount(bus, weights=p_ev, minlength=f0.n_bus)[None, :]
        return float(run_powerflow(f0, p, net.q_base_kvar[0], on_nonconvergence="nan").v_pu.min())

    assert v_min(plan.p_set_kw) >= 0.95 - 1e-6
    assert not v_min(plan.p_planned_kw) >= 0.95  # uncut: below the limit (or no solution at all)


def test_delivered_counts_only_readings_after_the_acknowledgement() -> None:
    def stations(at_a: str | None, at_b: str) -> list[dict[str, Any]]:
        return [
            {"station_id": "A", "evses": [{"evse_id": 1, "p_kw": 7.0, "measured_at": at_a}]},
            {"station_id": "B", "evses": [{"evse_id": 1, "p_kw": 3.0, "measured_at": at_b}]},
        ]

    sp = [{"station_id": "A", "evse_id": 1, "p_kw": 6.0}, {"station_id": "B", "evse_id": 1, "p_kw": 4.0}]
    rec0 = {
        "cycle": 0,
        "t_utc": "2026-11-27T18:00:00Z",
        "acked_utc": "2026-11-27T18:00:36.400Z",
        "cycle_s": 36.4,
        "setpoints": sp,
        "results": [],
        "error": None,
    }
    # A's reading (18:00:20) is from before the acknowledgement (18:00:36.4, less 1 s): left out; B's (18:00:37)
    # counts: planned 4 kW x 0.25 h = 1.0 kWh, delivered 3 x 0.25 = 0.75 kWh, deviation -0.25 kWh.
    rec1 = {
        "cycle": 1,
        "t_utc": "2026-11-27T18:15:00Z",
        "cycle_s": 1.0,
        "inputs": {"stations": stations("2026-11-27T18:00:20Z", "2026-11-27T18:00:37Z"), "needs": []},
    }
    s = summarize_run([rec0, rec1], 15.0 * 60)
    row = s["cycles"][0]
    assert (row["e_planned_kwh"], row["e_delivered_kwh"]) == (pytest.approx(1.0), pytest.approx(0.75))
    assert (
        row["e_deviation_kwh"] == pytest.approx(-0.25) and "1 station(s) had no reading after" in row["delivered_note"]
    )
    assert not row["overran"] and s["n_cycles_overran"] == 0
    # On a 15 s interval the 36.4 s cycle overran; with 30 s settling B's reading is early too: nothing counted.
    s = summarize_run([rec0, rec1], 15.0, settle_s=30.0)
    assert s["cycles"][0]["overran"] and s["n_cycles_overran"] == 1 and s["cycles"][0]["e_delivered_kwh"] is None
    assert "2 station(s)" in s["cycles"][0]["delivered_note"]


def test_bad_files_and_options_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from v2gtwin.cli import main
    from v2gtwin.cyber.api_client import ApiClient, ApiError

    # --record naming an existing file, not a folder.
    (tmp_path / "afile").write_text("x")
    with pytest.raises(DataError, match=r"--record .*afile: a file, not a folder"):
        run_loop(_FlakyClient(), Scenario(), cycles=1, record_dir=tmp_path / "afile", wait=lambda s: None)
    # A run folder whose cycles.jsonl is binary: live report and replay say so in one line (exit 2).
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"interval_s": 900, "scenario_toml": ""}))
    (run / "cycles.jsonl").write_bytes(b"\xff\xfe\x00binary")
    for cmd in ("report", "replay"):
        assert main(["live", cmd, str(run)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "cycles.jsonl: not text" in err, err
    # --cafile missing or not a PEM certificate, for the client and the CLI.
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    for name, msg in (("none.pem", "no such file"), ("junk.pem", "not a readable PEM CA certificate")):
        with pytest.raises(ApiError, match=f"--cafile .*{name}: {msg}"):
            ApiClient("https://127.0.0.1:9", None, cafile=str(tmp_path / name))
        assert main(["live", "--server", "https://127.0.0.1:9", "--cafile", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--cafile" in err and msg in err, err


def test_cli_exits_1_when_a_cycle_failed(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import v2gtwin.cyber.api_client as api_client
    from v2gtwin.cli import main

    # The first POST fails (no answer): cycle 0 has an error, cycle 1 is acknowledged; the run goes on, exit 1.
    monkeypatch.setattr(api_client, "ApiClient", lambda *a, **k: _FlakyClient())
    assert main(["live", "--server", "http://127.0.0.1:9", "--cycles", "2", "--interval-s", "1", "--json"]) == 1
    out = capsys.readouterr()
    lines = [json.loads(x) for x in out.out.splitlines()]
    assert [x["error"] is None for x in lines] == [False, True]
    assert "1 of 2 cycles failed" in out.err


def test_resume_keeps_each_need_s_energy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from v2gtwin.cli import main
    from v2gtwin.live import rebuild_need_book, replay_run

    client = _FlakyClient()
    client.posts = 1
    run_loop(client, Scenario(), cycles=1, record_dir=tmp_path / "r1", clock=lambda: NOW, wait=lambda s: None)
    # The loop restarts 15 min later; A has held 4 kW: 4 x 0.25 h x 0.95 = 0.95 kWh stored, SoC read 0.576.
    later = json.loads(json.dumps(STATIONS))
    later["stations"][0]["evses"][0] |= {"soc_pu": 0.576, "p_kw": 4.0}

    class Later(_FlakyClient):
        def stations(self) -> list[dict[str, Any]]:
            return list(later["stations"])

    t1 = NOW + dt.timedelta(minutes=15)
    book0 = rebuild_need_book(read_run(tmp_path / "r1")[1], Scenario())
    key_a = next(k for k in book0 if k.startswith("A|"))
    assert book0[key_a] == NeedEntry(0.5, 0.0, NOW.timestamp())
    c2 = Later()
    c2.posts = 1
    run_loop(c2, Scenario(), cycles=1, record_dir=tmp_path / "r2", clock=lambda: t1, wait=lambda s: None,
             resume=tmp_path / "r1")  # fmt: skip
    # The resumed run plans A for 10 - 0.95 = 9.05 kWh more: target 0.576 + 9.05 / 50 = 0.757 (a fresh book: 0.776).
    plan = replay_run(tmp_path / "r2").plans[0]
    assert plan is not None and plan.fleet.soc_target_pu[0] == pytest.approx(0.757)
    assert json.loads((tmp_path / "r2" / "run.json").read_text())["resumed_from"] == str((tmp_path / "r1").resolve())
    assert main(["live", "--server", "http://127.0.0.1:9", "--resume", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--resume" in err, err
