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
from v2gtwin.live import CYCLES_FILE, read_run, run_loop, summarize_run
from v2gtwin.live_plan import NetworkSlots, calc_must_charge_peak_kw, clip_to_station_limits, plan_cycle
from v2gtwin.live_state import build_live_fleet, calc_live_time_grid, read_live_state, update_need_book
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


def test_need_book_keeps_the_first_soc() -> None:
    state = read_live_state(STATIONS, NEEDS, NOW)
    book = update_need_book({}, state)
    later = json.loads(json.dumps(STATIONS))
    later["stations"][0]["evses"][0]["soc_pu"] = 0.6  # A charged 0.1 pu = 5 kWh of its 10
    s2 = read_live_state(later, NEEDS, NOW + dt.timedelta(minutes=15))
    b2 = update_need_book(book, s2)
    assert b2[s2.key[0]] == 0.5
    grid = calc_live_time_grid(s2.t_utc, s2.departure_s, 900.0, 96, "UTC")
    fleet, _ = build_live_fleet(s2, b2, FleetSpec(), grid)
    assert fleet.soc0_pu[0] == 0.6 and fleet.soc_target_pu[0] == pytest.approx(0.7)  # still 0.5 + 10 / 50
    assert fleet.departure_step[0] == 11  # 2 h 45 min left = 11 steps


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

    def post_setpoints(self, setpoints: list[Any], timeout_s: float = 10.0) -> list[dict[str, Any]]:
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

    rec, book, plan = run_cycle(Odd(), Scenario(), {"k": 0.5}, cycle=3, t_utc=NOW)
    assert rec["stage"] == "plan" and rec["error"].startswith("ValueError") and plan is None and book == {"k": 0.5}


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
    # Cycle 0's set-points against cycle 1's reported power (0 kW at every station) over 0.25 h.
    planned = sum(x["p_kw"] for x in on_disk[0]["setpoints"]) * 0.25
    assert s["cycles"][0]["e_deviation_kwh"] == pytest.approx(0.0 - planned)
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
    assert "Regulation" in (tmp_path / "run" / "report" / "report.html").read_text()


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
