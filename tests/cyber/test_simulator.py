"""Simulated stations: EVs whose power and state of charge follow the central system's set-points (V2X on
OCPP 2.1 included), and a reconnect storm — every station dropped at once comes back and is dispatched again."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from v2gtwin.cyber.csms.server import Csms
from v2gtwin.cyber.csms.simulator import SimEV, run_station
from v2gtwin.cyber.csms.store import Store

from .helpers import run


def test_power_and_soc_follow_the_set_points_v2x_included(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'csms.sqlite'}")
    evs = {
        "EV-PLAIN": SimEV(capacity_kwh=50.0, soc0_pu=0.5, p_max_w=7400.0, v2x=False, efficiency=1.0),
        "EV-V2X": SimEV(capacity_kwh=50.0, soc0_pu=0.5, p_max_w=11000.0, v2x=True, efficiency=0.9),
    }

    async def scenario():  # type: ignore[no-untyped-def]
        async with Csms(store, port=0) as csms:
            url = f"ws://127.0.0.1:{csms.port}"
            stop = asyncio.Event()
            ready = {k: asyncio.Event() for k in evs}
            try:
                tasks = {
                    k: asyncio.create_task(run_station(url, k, ev=ev, reports=0, ready=ready[k], stop=stop))
                    for k, ev in evs.items()
                }
                await asyncio.gather(*(r.wait() for r in ready.values()))
                res = await csms.dispatch({"EV-PLAIN": 3600.0, "EV-V2X": -9000.0})
                stop.set()
                stations = {k: await t for k, t in tasks.items()}
                return res, stations
            finally:
                stop.set()

    res, st = run(scenario(), 60)
    assert res["EV-PLAIN"]["status"] == res["EV-V2X"]["status"] == "Accepted"
    plain, v2x = st["EV-PLAIN"], st["EV-V2X"]
    assert plain.power_w() == 3600.0 and v2x.power_w() == -9000.0
    # One hour at the set-point: SoC by hand (discharge draws 9 kWh / 0.9 from the battery).
    asyncio.run(_advance(plain, v2x))
    assert plain.soc_pu == pytest.approx(0.5 + 3.6 / 50.0)
    assert v2x.soc_pu == pytest.approx(0.5 - 9.0 / 0.9 / 50.0)
    ev = store.evse("EV-V2X", 1)
    assert ev is not None and ev.v2x and ev.energy_amount_wh == pytest.approx(0.3 * 50_000)


async def _advance(*stations) -> None:  # type: ignore[no-untyped-def]
    async def noop(*_a, **_k):  # type: ignore[no-untyped-def]
        return None

    for s in stations:
        s.call = noop  # the connection is closed: advance the model without sending
        await s.report(3600.0)


def test_reconnect_storm_every_station_comes_back_and_is_dispatched(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'csms.sqlite'}")
    n = 40

    async def scenario():  # type: ignore[no-untyped-def]
        async with Csms(store, port=0) as csms:
            url = f"ws://127.0.0.1:{csms.port}"
            stop = asyncio.Event()
            ready = [asyncio.Event() for _ in range(n)]
            try:
                tasks = [
                    asyncio.create_task(
                        run_station(url, f"STORM-{k}", reports=1, ready=ready[k], stop=stop, backoff_s=0.05)
                    )
                    for k in range(n)
                ]
                await asyncio.gather(*(r.wait() for r in ready))
                assert len(csms.stations) == n
                # The storm: every connection dropped at once; every station reconnects (with back-off and jitter).
                old = dict(csms._connections)
                await asyncio.gather(*(c.close(1012, "service restart") for c in old.values()))
                for _ in range(300):
                    if len(csms.stations) == n and all(csms._connections[k] is not old[k] for k in old):
                        break
                    await asyncio.sleep(0.05)
                res = await csms.dispatch({f"STORM-{k}": 2000.0 for k in range(n)}, timeout_s=10)
                stop.set()
                stations = await asyncio.gather(*tasks)
                return res, stations
            finally:
                stop.set()

    res, stations = run(scenario(), 60)
    assert all(r["status"] == "Accepted" for r in res.values()), res
    assert [s.limit_w for s in stations] == [2000.0] * n
    # Every station booted twice (the second boot after the storm), nothing was lost of what was acknowledged.
    assert store.count_meter_values() == n * 3


def test_a_profile_the_short_path_cannot_read_is_validated_and_refused(tmp_path: Path) -> None:
    """The simulated station's short path takes well-formed SetChargingProfile frames only: one that breaks the
    schema goes to the ``ocpp`` package, which answers a CALLERROR, and the EV keeps its set-point; a profile
    sent through the package's own ``ChargePoint.call`` (``Csms.send``) is obeyed like the dispatch's."""
    from ocpp.exceptions import OCPPError

    store = Store(f"sqlite:///{tmp_path / 'csms.sqlite'}")

    async def scenario():  # type: ignore[no-untyped-def]
        stop, ready = asyncio.Event(), asyncio.Event()
        live: dict = {}
        ev = SimEV(p_max_w=7400.0)
        async with Csms(store, port=0) as csms:
            url = f"ws://127.0.0.1:{csms.port}"
            try:
                task = asyncio.create_task(
                    run_station(url, "SIM-X", ev=ev, reports=0, ready=ready, stop=stop, registry=live)
                )
                await ready.wait()
                handler = csms.stations["SIM-X"]
                bad = '{"evseId":1,"chargingProfile":{"id":1,"stackLevel":0}}'  # no purpose, kind or schedule
                with pytest.raises(OCPPError):
                    await handler.call_prebuilt("SetChargingProfile", bad, 10.0)
                before = (live["SIM-X"].limit_w, len(live["SIM-X"].profiles))
                profile = {
                    "id": 2,
                    "stack_level": 0,
                    "charging_profile_purpose": "TxDefaultProfile",
                    "charging_profile_kind": "Absolute",
                    "charging_schedule": [
                        {
                            "id": 2,
                            "charging_rate_unit": "W",
                            "charging_schedule_period": [{"start_period": 0, "limit": 2500.0}],
                        }
                    ],
                }
                answer = await csms.send("SIM-X", "SetChargingProfile", evse_id=1, charging_profile=profile)
                stop.set()
                return before, answer, await task
            finally:
                stop.set()

    before, answer, station = run(scenario(), 60)
    # 7.4 kW nominal declares round(7400 / 692.82) = 11 A and draws sqrt(3) * 400 * 11 = 7,621.0 W
    assert before[0] == pytest.approx(3**0.5 * 400 * 11) and before[1] == 0
    assert answer.status == "Accepted"
    assert station.limit_w == 2500.0 and len(station.profiles) == 1
    assert station.profiles[0]["chargingSchedule"][0]["chargingSchedulePeriod"][0]["limit"] == 2500.0


def test_freeze_gc_moves_the_connected_fleet_out_of_the_collector(tmp_path: Path) -> None:
    import gc

    from v2gtwin.cyber.csms.simulator import run_fleet

    store = Store(f"sqlite:///{tmp_path / 'csms.sqlite'}")

    async def scenario(freeze: bool) -> int:
        async with Csms(store, port=0) as csms:
            await run_fleet(f"ws://127.0.0.1:{csms.port}", 3, prefix=f"F{freeze:d}", reports=1, freeze_gc=freeze)
        return gc.get_freeze_count()

    try:
        gc.unfreeze()
        assert run(scenario(False), 60) == 0
        assert run(scenario(True), 60) > 1000  # the stations, their connections and everything alive then
    finally:
        gc.unfreeze()


def test_both_paths_of_a_simulated_station_apply_the_same_profile() -> None:
    """The short path (a text frame) and the ``ocpp`` package's path (the same frame as bytes, which the short
    path leaves alone: routed, schema-validated, keys converted) hold the EV at the same set-point, keep the
    profile in wire format and answer the same."""
    import json

    from v2gtwin.cyber.csms.simulator import SimStation

    class Wire:
        def __init__(self) -> None:
            self.sent: list[str] = []

        async def send(self, frame: str) -> None:
            self.sent.append(frame)

    period = {"startPeriod": 0, "limit": 2500.0}
    profile = {
        "id": 3,
        "stackLevel": 0,
        "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Absolute",
        "chargingSchedule": [{"id": 3, "chargingRateUnit": "W", "chargingSchedulePeriod": [period]}],
    }
    frame = json.dumps([2, "u-1", "SetChargingProfile", {"evseId": 1, "chargingProfile": profile}])
    out = []
    for raw in (frame, frame.encode()):
        wire = Wire()
        st = SimStation("SIM-U", wire, SimEV(p_max_w=7400.0))
        asyncio.run(st.route_message(raw))
        out.append((st.limit_w, st.profiles, [json.loads(f) for f in wire.sent]))
    assert out[0] == out[1] == (2500.0, [profile], [[3, "u-1", {"status": "Accepted"}]])


def test_the_meter_values_frame_a_simulated_station_sends_states_each_unit() -> None:
    """What goes on the wire: every sampled value of a MeterValues frame carries ``unitOfMeasure.unit``, the
    unit of its measurand (OCPP 2.0.1 Part 2, 2.47 SampledValueType and 2.51 UnitOfMeasureType: energy in Wh,
    power in W, state of charge in Percent). The frame is read as sent, before any default could fill in."""
    import json
    from typing import Any

    from v2gtwin.cyber.csms.simulator import SimStation

    class LoopbackWire:
        """Records each frame sent and answers each CALL with an empty CALLRESULT (MeterValues.conf)."""

        def __init__(self) -> None:
            self.sent: list[list[Any]] = []
            self.station: SimStation | None = None

        async def send(self, frame: str) -> None:
            msg = json.loads(frame)
            self.sent.append(msg)
            if msg[0] == 2 and self.station is not None:
                await self.station.route_message(json.dumps([3, msg[1], {}]))

    wire = LoopbackWire()
    st = SimStation("SIM-U", wire, SimEV(soc0_pu=0.5, p_max_w=7400.0, efficiency=1.0, capacity_kwh=50.0))
    wire.station = st
    asyncio.run(asyncio.wait_for(st.report(3600.0), 10))
    [(kind, _, action, payload)] = wire.sent
    assert (kind, action) == (2, "MeterValues")
    sampled = [v for mv in payload["meterValue"] for v in mv["sampledValue"]]
    units = {v["measurand"]: v["unitOfMeasure"]["unit"] for v in sampled if "unitOfMeasure" in v}
    assert len(sampled) == 3 and units == {"Energy.Active.Net": "Wh", "Power.Active.Import": "W", "SoC": "Percent"}
    # The values in those units, by hand: 7.4 kW nominal declares 11 A and draws sqrt(3) * 400 * 11 = 7,621.0 W;
    # one hour of it is 7,621.0 Wh; 0.5 + 7.621 / 50 = 0.6524 -> 65.2 %.
    values = {v["measurand"]: v["value"] for v in sampled}
    assert values == {"Energy.Active.Net": 7621.0, "Power.Active.Import": 7621.0, "SoC": 65.2}


def test_a_closed_station_is_shown_disconnected(tmp_path: Path) -> None:
    """The central system counts a station that went away as disconnected, not connected, and stores the units
    the station sent."""
    store = Store(f"sqlite:///{tmp_path / 'csms.sqlite'}")

    async def scenario():  # type: ignore[no-untyped-def]
        async with Csms(store, port=0) as csms:
            await run_station(f"ws://127.0.0.1:{csms.port}", "SIM-U", ev=SimEV(soc0_pu=0.5), reports=1)
            for _ in range(100):  # the server notices the close
                if "SIM-U" not in csms.stations:
                    break
                await asyncio.sleep(0.02)
            res = await csms.dispatch({"SIM-U": 1000.0, "NEVER": 1000.0})
            return set(csms.stations), set(csms.disconnected), res

    connected, disconnected, res = run(scenario())
    assert connected == set() and disconnected == {"SIM-U"}
    assert res["SIM-U"]["status"] == "disconnected" and res["NEVER"]["status"] == "not connected"
    units = {r.measurand: r.unit for r in store.meter_values("SIM-U")}
    assert units == {"Energy.Active.Net": "Wh", "Power.Active.Import": "W", "SoC": "Percent"}
