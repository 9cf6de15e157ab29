"""The rest of the OCPP message set, over real websockets on loopback with stations built on the `ocpp`
package's client classes (2.0.1 and 2.1): Authorize, TransactionEvent, NotifyEVChargingNeeds, the CSMS-initiated
calls, V2X set-points only where the EV declared V2X, and the set-point profiles checked against the OCPP JSON
schemas of both versions."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ocpp import v21, v201
from ocpp.messages import get_validator
from ocpp.routing import on
from websockets.asyncio.client import connect

from v2gtwin.cyber.csms.payloads import set_point_frame
from v2gtwin.cyber.csms.server import SUBPROTOCOL, SUBPROTOCOL_21, Csms, build_set_point_request
from v2gtwin.cyber.csms.store import Store

from .helpers import run, station_session


def _received(station: Any, name: str, kwargs: dict[str, Any]) -> None:
    station.received.append((name, kwargs))


class Station201(v201.ChargePoint):  # type: ignore[misc]
    received: list[tuple[str, dict[str, Any]]]

    @on("SetChargingProfile")  # type: ignore[untyped-decorator,unused-ignore]
    async def on_profile(self, **kw: Any) -> Any:
        _received(self, "SetChargingProfile", kw)
        return v201.call_result.SetChargingProfile(status="Accepted")

    @on("ClearChargingProfile")  # type: ignore[untyped-decorator,unused-ignore]
    async def on_clear(self, **kw: Any) -> Any:
        _received(self, "ClearChargingProfile", kw)
        return v201.call_result.ClearChargingProfile(status="Accepted")

    @on("GetCompositeSchedule")  # type: ignore[untyped-decorator,unused-ignore]
    async def on_composite(self, duration: int, evse_id: int, **kw: Any) -> Any:
        _received(self, "GetCompositeSchedule", {"duration": duration, "evse_id": evse_id, **kw})
        return v201.call_result.GetCompositeSchedule(
            status="Accepted",
            schedule={
                "evse_id": evse_id,
                "duration": duration,
                "schedule_start": "2026-11-25T20:00:00Z",
                "charging_rate_unit": "W",
                "charging_schedule_period": [{"start_period": 0, "limit": 7400.0}],
            },
        )

    @on("RequestStartTransaction")  # type: ignore[untyped-decorator,unused-ignore]
    async def on_start(self, **kw: Any) -> Any:
        _received(self, "RequestStartTransaction", kw)
        return v201.call_result.RequestStartTransaction(status="Accepted", transaction_id="TX-REMOTE")

    @on("RequestStopTransaction")  # type: ignore[untyped-decorator,unused-ignore]
    async def on_stop(self, **kw: Any) -> Any:
        _received(self, "RequestStopTransaction", kw)
        return v201.call_result.RequestStopTransaction(status="Accepted")


class Station21(v21.ChargePoint):  # type: ignore[misc]
    received: list[tuple[str, dict[str, Any]]]

    @on("SetChargingProfile")  # type: ignore[untyped-decorator,unused-ignore]
    async def on_profile(self, **kw: Any) -> Any:
        _received(self, "SetChargingProfile", kw)
        return v21.call_result.SetChargingProfile(status="Accepted")


def test_authorize_and_a_transaction_with_meter_values(db_url: str) -> None:
    store = Store(db_url)

    async def scenario():  # type: ignore[no-untyped-def]
        async with Csms(store, port=0, allowed_id_tokens={"RFID-OK"}) as csms:

            async def body(st):  # type: ignore[no-untyped-def]
                call = v201.call
                ok = await st.call(call.Authorize(id_token={"id_token": "RFID-OK", "type": "ISO14443"}))
                bad = await st.call(call.Authorize(id_token={"id_token": "RFID-NO", "type": "ISO14443"}))
                tx = {"transaction_id": "TX-1", "charging_state": "Charging"}
                mv = [
                    {
                        "timestamp": "2026-11-25T20:15:00Z",
                        "sampled_value": [{"value": 1850.0, "measurand": "Energy.Active.Import.Register"}],
                    }
                ]
                started = await st.call(
                    call.TransactionEvent(
                        event_type="Started",
                        timestamp="2026-11-25T20:00:00Z",
                        trigger_reason="Authorized",
                        seq_no=0,
                        transaction_info=tx,
                        evse={"id": 1, "connector_id": 1},
                        id_token={"id_token": "RFID-OK", "type": "ISO14443"},
                    )
                )
                await st.call(
                    call.TransactionEvent(
                        event_type="Updated",
                        timestamp="2026-11-25T20:15:00Z",
                        trigger_reason="MeterValuePeriodic",
                        seq_no=1,
                        transaction_info=tx,
                        meter_value=mv,
                        evse={"id": 1},
                    )
                )
                mid = store.transaction(st.id, "TX-1")
                await st.call(
                    call.TransactionEvent(
                        event_type="Ended",
                        timestamp="2026-11-25T21:00:00Z",
                        trigger_reason="EVCommunicationLost",
                        seq_no=2,
                        transaction_info={**tx, "stopped_reason": "EVDisconnected"},
                    )
                )
                return ok, bad, started, mid

            return await station_session(csms, "CS-TX", Station201, body)

    ok, bad, started, mid = run(scenario())
    assert ok.id_token_info["status"] == "Accepted"
    assert bad.id_token_info["status"] == "Unknown"
    assert started.id_token_info["status"] == "Accepted"
    # The Updated event and its value were committed before the station had its answer.
    assert mid is not None and mid.state == "Updated" and mid.evse_id == 1 and mid.id_token == "RFID-OK"
    assert store.count_meter_values("CS-TX") == 1
    tx = store.transaction("CS-TX", "TX-1")
    assert tx is not None and tx.state == "Ended" and tx.stopped_reason == "EVDisconnected"
    assert tx.started == "2026-11-25T20:00:00Z" and tx.ended == "2026-11-25T21:00:00Z" and tx.last_seq_no == 2


def test_csms_initiated_calls(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'csms.sqlite'}")

    async def scenario():  # type: ignore[no-untyped-def]
        async with Csms(store, port=0) as csms:

            async def body(st):  # type: ignore[no-untyped-def]
                out = {
                    "start": await csms.request_start_transaction(st.id, "AGG-1", remote_start_id=42),
                    "composite": await csms.get_composite_schedule(st.id, duration_s=3600),
                    "clear": await csms.clear_charging_profile(st.id, profile_id=1),
                    "stop": await csms.request_stop_transaction(st.id, "TX-REMOTE"),
                }
                return out, st.received

            return await station_session(csms, "CS-CALLS", Station201, body)

    out, received = run(scenario())
    assert {k: v.status for k, v in out.items()} == dict.fromkeys(out, "Accepted")
    assert out["start"].transaction_id == "TX-REMOTE"
    assert out["composite"].schedule["charging_schedule_period"][0]["limit"] == 7400.0
    by = dict(received)
    assert by["RequestStartTransaction"]["id_token"] == {"id_token": "AGG-1", "type": "Central"}
    assert by["RequestStartTransaction"]["remote_start_id"] == 42
    assert by["GetCompositeSchedule"]["duration"] == 3600 and by["GetCompositeSchedule"]["charging_rate_unit"] == "W"
    assert by["ClearChargingProfile"]["charging_profile_id"] == 1
    assert by["RequestStopTransaction"]["transaction_id"] == "TX-REMOTE"


def test_calls_to_an_absent_station_are_refused(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'csms.sqlite'}")

    async def scenario() -> None:
        async with Csms(store, port=0) as csms:
            with pytest.raises(LookupError, match="NOPE"):
                await csms.request_stop_transaction("NOPE", "TX")

    run(scenario())


def test_meter_values_keep_their_units_with_ocpps_defaults(db_url: str) -> None:
    """The unit a station sends is kept; when it sends none, OCPP's default for the measurand (OCPP 2.0.1 Part 2:
    "Wh" for Energy measurands — the schema's own default — W for power, Percent for SoC, A, V, Hz); the
    measurand defaults to Energy.Active.Import.Register; a multiplier (power of ten) is applied."""
    store = Store(db_url)
    sampled = [
        {"value": 12.5},  # no measurand, no unit: Energy.Active.Import.Register in Wh
        {"value": 7.2, "measurand": "Power.Active.Import", "unit_of_measure": {"unit": "kW"}},
        {"value": 7200.0, "measurand": "Power.Active.Export"},
        {"value": 55.0, "measurand": "SoC"},
        {"value": 16.0, "measurand": "Current.Import"},
        {"value": 230.0, "measurand": "Voltage"},
        {"value": 50.0, "measurand": "Frequency"},
        {"value": 1.5, "measurand": "Energy.Active.Net", "unit_of_measure": {"unit": "Wh", "multiplier": 3}},
    ]

    async def scenario() -> None:
        async with Csms(store, port=0) as csms:

            async def body(st: Any) -> None:
                mv = [{"timestamp": "2026-11-25T20:00:00Z", "sampled_value": sampled}]
                await st.call(v201.call.MeterValues(evse_id=1, meter_value=mv))

            await station_session(csms, "CS-U", Station201, body)

    run(scenario())
    rows = [(r.measurand, r.value, r.unit) for r in store.meter_values("CS-U")]
    assert rows == [
        ("Energy.Active.Import.Register", 12.5, "Wh"),
        ("Power.Active.Import", 7.2, "kW"),
        ("Power.Active.Export", 7200.0, "W"),
        ("SoC", 55.0, "Percent"),
        ("Current.Import", 16.0, "A"),
        ("Voltage", 230.0, "V"),
        ("Frequency", 50.0, "Hz"),
        ("Energy.Active.Net", 1500.0, "Wh"),  # 1.5 x 10^3
    ]


def test_transaction_events_apply_in_seq_no_order_whatever_their_arrival(db_url: str) -> None:
    """Events arrive Started (0), Ended (2), a late Updated (1), and Ended again (a retransmission): the
    transaction stays Ended with the Ended event's time and reason, every event is recorded once, in seqNo
    order."""
    store = Store(db_url)
    tx = {"transaction_id": "TX-9", "charging_state": "Charging"}

    def event(kind: str, seq_no: int, minute: int, **extra: Any) -> Any:
        return v201.call.TransactionEvent(
            event_type=kind,
            timestamp=f"2026-11-25T20:{minute:02d}:00Z",
            trigger_reason="MeterValuePeriodic",
            seq_no=seq_no,
            transaction_info={**tx, **extra},
            evse={"id": 2},
        )

    async def scenario():  # type: ignore[no-untyped-def]
        async with Csms(store, port=0) as csms:

            async def body(st: Any) -> Any:
                await st.call(event("Started", 0, 0))
                await st.call(event("Ended", 2, 30, stopped_reason="EVDisconnected"))
                await st.call(event("Updated", 1, 15))  # late
                late = store.transaction("CS-SEQ", "TX-9")
                await st.call(event("Ended", 2, 30, stopped_reason="EVDisconnected"))  # retransmitted
                return late

            return await station_session(csms, "CS-SEQ", Station201, body)

    late = run(scenario())
    assert late is not None and late.state == "Ended"  # the late Updated did not reopen it
    final = store.transaction("CS-SEQ", "TX-9")
    assert final is not None
    assert (final.state, final.started, final.ended, final.stopped_reason, final.last_seq_no, final.evse_id) == (
        "Ended",
        "2026-11-25T20:00:00Z",
        "2026-11-25T20:30:00Z",
        "EVDisconnected",
        2,
        2,
    )
    events = store.transaction_events("CS-SEQ", "TX-9")
    assert [(e.seq_no, e.event_type) for e in events] == [(0, "Started"), (1, "Updated"), (2, "Ended")]


def test_nothing_is_sent_to_a_station_before_its_boot_is_accepted(tmp_path: Path) -> None:
    """OCPP 2.0.1 Part 2, B01: the CSMS sends no request to a station before it accepted its BootNotification.
    A connected station that has not booted is neither dispatched nor called; once booted, it is."""
    store = Store(f"sqlite:///{tmp_path / 'csms.sqlite'}")

    async def scenario():  # type: ignore[no-untyped-def]
        async with Csms(store, port=0) as csms:

            async def body(st):  # type: ignore[no-untyped-def]
                before = await csms.dispatch({"CS-NB": 3000.0}, timeout_s=2)
                with pytest.raises(LookupError, match="has not booted"):
                    await csms.clear_charging_profile("CS-NB", profile_id=1)
                received_before = list(st.received)
                await st.call(
                    v201.call.BootNotification(charging_station={"model": "M", "vendor_name": "V"}, reason="PowerUp")
                )
                after = await csms.dispatch({"CS-NB": 3000.0}, timeout_s=2)
                return before, received_before, after, [name for name, _ in st.received]

            return await station_session(csms, "CS-NB", Station201, body, boot=False)

    before, received_before, after, received = run(scenario())
    assert before["CS-NB"]["status"] == "not booted" and before["CS-NB"]["attempts"] == 0
    assert received_before == []
    assert after["CS-NB"]["status"] == "Accepted" and received == ["SetChargingProfile"]
    # A booted station stays booted for the store: a later central-system process may send it requests.
    assert store.booted_station_ids() == {"CS-NB"}


def test_dispatch_refuses_non_finite_set_points_before_sending_anything(tmp_path: Path) -> None:
    from v2gtwin.errors import DataError

    store = Store(f"sqlite:///{tmp_path / 'csms.sqlite'}")

    async def scenario() -> None:
        async with Csms(store, port=0) as csms:
            for bad in (math.nan, math.inf, -math.inf):
                with pytest.raises(DataError, match=r"'B'.*not a finite number of W"):
                    await csms.dispatch({"A": 1000.0, "B": bad})

    run(scenario())
    assert store.profile_records() == []
    for bad in (math.nan, math.inf):
        with pytest.raises(DataError, match="set_point_w"):
            build_set_point_request(bad, True)
        with pytest.raises(DataError, match="set_point_w"):
            set_point_frame(bad, True)


def _needs(bidirectional: bool) -> dict[str, Any]:
    mode = "AC_BPT" if bidirectional else "AC_three_phase"
    return {
        "requested_energy_transfer": mode,
        "available_energy_transfer": [mode],
        "departure_time": "2026-11-26T07:30:00Z",
        "ac_charging_parameters": {
            "energy_amount": 30000,
            "ev_min_current": 6,
            "ev_max_current": 32,
            "ev_max_voltage": 400,
        },
    }


def test_v2x_set_points_only_where_the_ev_declared_v2x(db_url: str) -> None:
    store = Store(db_url)

    async def scenario():  # type: ignore[no-untyped-def]
        async with Csms(store, port=0) as csms:

            async def v2x_station(st):  # type: ignore[no-untyped-def]
                ans = await st.call(v21.call.NotifyEVChargingNeeds(evse_id=1, charging_needs=_needs(True)))

                async def other(st201):  # type: ignore[no-untyped-def]
                    await st201.call(
                        v201.call.NotifyEVChargingNeeds(
                            evse_id=1, charging_needs={"requested_energy_transfer": "AC_three_phase"}
                        )
                    )
                    res = await csms.dispatch({"V2X-21": -5000.0, "PLAIN-201": -5000.0, "GONE": 3000.0})
                    res2 = await csms.dispatch({"PLAIN-201": 3000.0}, profile_id=2)
                    return res, res2, st201.received

                res, res2, received201 = await station_session(csms, "PLAIN-201", Station201, other)
                return ans, res, res2, st.received, received201

            return await station_session(csms, "V2X-21", Station21, v2x_station, SUBPROTOCOL_21)

    ans, res, res2, received21, received201 = run(scenario())
    assert ans.status == "Accepted"
    assert res["V2X-21"]["status"] == "Accepted"
    assert res["PLAIN-201"]["status"] == "not V2X"
    assert res["GONE"]["status"] == "not connected"
    assert res2["PLAIN-201"]["status"] == "Accepted"
    # The 2.1 station received (and its own v21 schema validation accepted) a discharge set-point.
    period = received21[0][1]["charging_profile"]["charging_schedule"][0]["charging_schedule_period"][0]
    assert period["operation_mode"] == "CentralSetpoint"
    assert period["setpoint"] == -5000.0 and period["discharge_limit"] == -5000.0
    assert [name for name, _ in received201] == ["SetChargingProfile"]
    ev = store.evse("V2X-21", 1)
    assert ev is not None and ev.v2x and ev.energy_amount_wh == 30000 and ev.departure_time.startswith("2026-11-26")
    ev201 = store.evse("PLAIN-201", 1)
    assert ev201 is not None and not ev201.v2x
    recs = store.profile_records()
    assert [(r.station_id, r.setpoint_w, r.status) for r in recs] == [
        ("V2X-21", -5000.0, "Accepted"),
        ("PLAIN-201", 3000.0, "Accepted"),
    ]
    assert all(r.latency_s is not None and r.latency_s > 0 for r in recs)


@settings(max_examples=200, deadline=None)
@given(
    set_point=st.floats(-1e6, 1e6, allow_nan=False),
    profile_id=st.integers(1, 2**31 - 1),
    duration_s=st.none() | st.integers(1, 86_400),
)
def test_set_point_profiles_are_valid_ocpp(set_point: float, profile_id: int, duration_s: int | None) -> None:
    """Dispatch builds its requests with build_set_point_request and sends them without validating each frame;
    every shape it can return is valid against the OCPP JSON schemas (the `ocpp` package's copies) of the
    versions it is sent on."""
    for version, v2x in (("2.0.1", False), ("2.1", False), ("2.1", True)):
        if round(set_point, 1) < 0 and not v2x:
            with pytest.raises(ValueError, match="V2X"):
                build_set_point_request(set_point, v2x, profile_id)
            with pytest.raises(ValueError, match="V2X"):
                set_point_frame(set_point, v2x, profile_id)
            continue
        start = None if duration_s is None else "2026-11-27T19:55:00Z"
        request = build_set_point_request(set_point, v2x, profile_id, 1, duration_s, start)
        get_validator(2, "SetChargingProfile", version).validate(request)
        schedule = request["chargingProfile"]["chargingSchedule"][0]
        assert schedule.get("duration") == duration_s and schedule.get("startSchedule") == start
        # The template dispatch sends writes exactly the JSON text of the validated request.
        frame = set_point_frame(set_point, v2x, profile_id, 1, duration_s, start)
        assert frame == json.dumps(request, separators=(",", ":"))


def test_an_answer_that_breaks_the_schema_is_caught_although_the_request_skipped_validation(tmp_path: Path) -> None:
    """Dispatch skips validating its own (pre-validated) requests, never the stations' answers."""

    store = Store(f"sqlite:///{tmp_path / 'csms.sqlite'}")

    async def scenario():  # type: ignore[no-untyped-def]
        async with (
            Csms(store, port=0) as csms,
            connect(f"ws://127.0.0.1:{csms.port}/RAW-1", subprotocols=[SUBPROTOCOL]) as ws,
        ):
            await ws.send(
                '[2,"b-1","BootNotification",{"chargingStation":{"model":"M","vendorName":"V"},"reason":"PowerUp"}]'
            )
            assert json.loads(await ws.recv())[2]["status"] == "Accepted"

            async def answer() -> None:
                msg = json.loads(await ws.recv())
                await ws.send(json.dumps([3, msg[1], {"status": "Maybe"}]))

            task = asyncio.create_task(answer())
            res = await csms.dispatch({"RAW-1": 1000.0}, retries=0, timeout_s=5)
            await task
            return res

    res = run(scenario())
    assert res["RAW-1"]["status"] == "invalid answer"
