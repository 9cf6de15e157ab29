"""What a station says it is: after its boot the central system asks for its device model (GetBaseReport, both
versions) and, on OCPP 2.1, its DER controls (GetDERControl), and stores the reports; the simulated stations
answer with their own settings. Every frame is checked against the ``ocpp`` package's own schemas."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from ocpp import v21, v201
from ocpp.messages import MessageType, get_validator
from ocpp.routing import after, on

from v2gtwin.cyber.csms.inventory import der_control_rows, report_rows
from v2gtwin.cyber.csms.server import SUBPROTOCOL_21, Csms
from v2gtwin.cyber.csms.sim_report import SimSettings, der_control_lists, device_model_report
from v2gtwin.cyber.csms.simulator import SimEV, run_station
from v2gtwin.cyber.csms.store import Store

from .helpers import run, station_session


def _validate(action: str, payload: dict[str, Any], version: str, kind: int = MessageType.Call) -> None:
    """The ``ocpp`` package's validator of ``action`` (raises jsonschema.ValidationError when invalid)."""
    get_validator(kind, action, version).validate(payload)


@pytest.mark.parametrize("version", ["2.0.1", "2.1"])
def test_the_simulated_reports_validate_against_the_package_schemas(version: str) -> None:
    data = device_model_report(SimSettings(), 7400.0, 3600.0)
    _validate(
        "NotifyReport", {"requestId": 1, "generatedAt": "2026-11-27T12:00:00Z", "seqNo": 0, "reportData": data}, version
    )
    _validate("GetBaseReport", {"requestId": 1, "reportBase": "FullInventory"}, version)
    if version == "2.1":
        _validate("ReportDERControl", {"requestId": 2, **der_control_lists(SimSettings())}, version)
        _validate("GetDERControl", {"requestId": 2, "isDefault": True}, version)
        _validate("GetDERControl", {"status": "Accepted"}, version, MessageType.CallResult)


def test_the_schema_check_can_fail() -> None:
    """The same validator refuses a curve without its yUnit (so the test above can fail)."""
    import jsonschema

    lists = der_control_lists(SimSettings())
    del lists["curve"][0]["curve"]["yUnit"]
    with pytest.raises(jsonschema.ValidationError):
        _validate("ReportDERControl", {"requestId": 2, **lists}, "2.1")


def _wait_inventory(csms: Csms, ids: list[str]):  # type: ignore[no-untyped-def]
    async def wait() -> None:
        while not all(csms.inventory_complete(s) for s in ids):
            await asyncio.sleep(0.05)

    return wait()


def test_simulated_stations_report_their_settings_and_the_store_keeps_them(db_url: str) -> None:
    """A 2.1 V2X station with one non-default setting and a 2.0.1 station: boot data (firmware, serial number),
    the device model and the DER controls in the store are the stations' own settings."""
    store = Store(db_url)
    odd = dataclasses.replace(SimSettings(), uf2_hz=59.3, firmware="2.4.1", serial_number="SN-77", vv_q1_pct=30.0)

    async def scenario() -> dict[str, dict[str, str]]:
        async with Csms(store, port=0, inventory_on_boot=True) as csms:
            url, stop = f"ws://127.0.0.1:{csms.port}", asyncio.Event()
            tasks = [
                asyncio.create_task(
                    run_station(url, "V2X-1", ev=SimEV(v2x=True, p_max_w=9600.0), stop=stop, settings=odd)
                ),
                asyncio.create_task(run_station(url, "AC-1", ev=SimEV(v2x=False, p_max_w=7400.0), stop=stop)),
            ]
            await _wait_inventory(csms, ["V2X-1", "AC-1"])
            stop.set()
            await asyncio.gather(*tasks)
            return csms.inventory_status

    status = run(scenario(), 60)
    # The 2.0.1 station is not asked for DER controls (OCPP 2.0.1 has none).
    assert status == {
        "V2X-1": {"GetBaseReport": "Accepted", "GetDERControl": "Accepted"},
        "AC-1": {"GetBaseReport": "Accepted"},
    }
    st = store.station("V2X-1")
    assert st is not None and (st.firmware, st.serial_number) == ("2.4.1", "SN-77")
    power = {v.station_id: v for v in store.reported_variables() if v.variable == "Power"}
    assert (power["V2X-1"].max_limit, power["V2X-1"].unit, power["V2X-1"].evse_id) == (9600.0, "W", 1)
    assert power["AC-1"].max_limit == 7400.0
    controls = {c.control_type: json.loads(c.body_json) for c in store.der_controls("V2X-1")}
    assert set(controls) == {"HVMustTrip", "LVMustTrip", "HFMustTrip", "LFMustTrip", "VoltVar", "FreqDroop"}
    assert {(p["x"], p["y"]) for p in controls["LFMustTrip"]["curve"]["curveData"]} == {(0.16, 59.3), (300.0, 58.5)}
    assert controls["VoltVar"]["curve"]["curveData"][0] == {"x": 92.0, "y": 30.0}
    assert controls["FreqDroop"]["freqDroop"]["overFreq"] == pytest.approx(60.036)
    assert store.der_controls("AC-1") == []


class _ReportingStation(v201.ChargePoint):
    """The test's own 2.0.1 station: answers GetBaseReport and sends its report in two parts (tbc)."""

    @on("GetBaseReport")  # type: ignore[untyped-decorator,unused-ignore]
    def on_get_base_report(self, request_id: int, report_base: str, **_: Any) -> Any:
        self.received.append(("GetBaseReport", report_base))  # type: ignore[attr-defined]
        return v201.call_result.GetBaseReport(status="Accepted")

    @after("GetBaseReport")  # type: ignore[untyped-decorator,unused-ignore]
    async def after_get_base_report(self, request_id: int, **_: Any) -> None:
        self.parts = asyncio.ensure_future(self._parts(request_id))

    async def _parts(self, request_id: int) -> None:
        first = [_item("ChargingStation", None, "VendorName", "Acme")]
        second = [
            _item("EVSE", 1, "Power", "0", unit="W", maxLimit=22000.0),
            _item("EVSE", 2, "Power", "0", unit="W", maxLimit=22000.0),
        ]
        self.answers = [
            await self.call(
                v201.call.NotifyReport(
                    request_id=request_id, generated_at="2026-11-27T12:00:00Z", seq_no=0, report_data=first, tbc=True
                )
            ),
            await self.call(
                v201.call.NotifyReport(
                    request_id=request_id, generated_at="2026-11-27T12:00:00Z", seq_no=1, report_data=second
                )
            ),
        ]


def _item(component: str, evse: int | None, variable: str, value: str, **chars: Any) -> dict[str, Any]:
    comp: dict[str, Any] = {"name": component, **({"evse": {"id": evse}} if evse else {})}
    return {
        "component": comp,
        "variable": {"name": variable},
        "variableAttribute": [{"type": "Actual", "value": value}],
        "variableCharacteristics": {"dataType": "decimal" if chars else "string", "supportsMonitoring": False, **chars},
    }


def test_a_report_in_two_parts_is_complete_only_after_its_last_part(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'csms.sqlite'}")

    async def scenario():  # type: ignore[no-untyped-def]
        async with Csms(store, port=0, inventory_on_boot=True) as csms:

            async def body(st):  # type: ignore[no-untyped-def]
                await _wait_inventory(csms, ["CS-R"])
                await st.parts
                return st.received, csms.inventory_status["CS-R"]

            return await station_session(csms, "CS-R", _ReportingStation, body)

    received, status = run(scenario())
    assert received == [("GetBaseReport", "FullInventory")] and status == {"GetBaseReport": "Accepted"}
    rows = {(v.component, v.evse_id, v.variable): (v.value, v.max_limit) for v in store.reported_variables("CS-R")}
    assert rows == {
        ("ChargingStation", 0, "VendorName"): ("Acme", None),
        ("EVSE", 1, "Power"): ("0", 22000.0),
        ("EVSE", 2, "Power"): ("0", 22000.0),
    }


class _NoReportStation(v21.ChargePoint):
    """The test's own 2.1 station that supports neither report."""

    @on("GetBaseReport")  # type: ignore[untyped-decorator,unused-ignore]
    def on_get_base_report(self, **_: Any) -> Any:
        return v21.call_result.GetBaseReport(status="NotSupported")

    @on("GetDERControl")  # type: ignore[untyped-decorator,unused-ignore]
    def on_get_der_control(self, **_: Any) -> Any:
        return v21.call_result.GetDERControl(status="NotSupported")


def test_a_station_that_cannot_report_is_recorded_as_such(tmp_path: Path) -> None:
    """NotSupported for both requests: recorded, nothing stored, nothing awaited, the station still served."""
    store = Store(f"sqlite:///{tmp_path / 'csms.sqlite'}")

    async def scenario():  # type: ignore[no-untyped-def]
        async with Csms(store, port=0, inventory_on_boot=True) as csms:

            async def body(st):  # type: ignore[no-untyped-def]
                await _wait_inventory(csms, ["CS-N"])
                hb = await st.call(v21.call.Heartbeat())
                return csms.inventory_status["CS-N"], hb

            return await station_session(csms, "CS-N", _NoReportStation, body, SUBPROTOCOL_21)

    status, hb = run(scenario())
    assert status == {"GetBaseReport": "NotSupported", "GetDERControl": "NotSupported"} and hb.current_time
    assert store.reported_variables("CS-N") == [] and store.der_controls("CS-N") == []


def test_get_der_control_of_one_type_and_a_station_without_der_controls() -> None:
    lists = der_control_lists(SimSettings(), "VoltVar")
    assert [c["curveType"] for c in lists["curve"]] == ["VoltVar"] and "freqDroop" not in lists
    assert list(der_control_lists(SimSettings(), "FreqDroop")) == ["freqDroop"]
    assert der_control_lists(dataclasses.replace(SimSettings(), der_controls=False)) == {}


def test_rows_from_the_package_snake_case_payloads() -> None:
    """What the handlers store, from the snake_case dicts the ``ocpp`` package hands them (written by hand)."""
    rows = report_rows(
        [
            {
                "component": {"name": "EVSE", "evse": {"id": 2, "connector_id": 1}},
                "variable": {"name": "Power", "instance": "Offered"},
                "variable_attribute": [{"type": "MaxSet", "value": "11000"}, {"value": "5000"}],
                "variable_characteristics": {"unit": "W", "data_type": "decimal", "max_limit": 22000},
            }
        ]
    )
    assert [(r["evse_id"], r["connector_id"], r["variable_instance"], r["attribute"], r["value"]) for r in rows] == [
        (2, 1, "Offered", "MaxSet", "11000"),
        (2, 1, "Offered", "Actual", "5000"),  # an attribute without a type is Actual (OCPP's default)
    ]
    assert rows[0]["max_limit"] == 22000.0 and rows[0]["unit"] == "W"
    drows = der_control_rows(
        {
            "freq_droop": [
                {
                    "id": "fd1",
                    "is_default": True,
                    "is_superseded": False,
                    "freq_droop": {
                        "priority": 3,
                        "over_freq": 60.1,
                        "under_freq": 59.9,
                        "over_droop": 0.04,
                        "under_droop": 0.04,
                        "response_time": 2,
                    },
                }
            ]
        }
    )
    assert drows[0]["control_type"] == "FreqDroop" and drows[0]["priority"] == 3
    assert json.loads(drows[0]["body_json"])["freqDroop"]["overFreq"] == 60.1  # stored in wire format


def test_a_database_from_before_the_firmware_columns_gets_them(tmp_path: Path) -> None:
    """A stations table without ``firmware`` / ``serial_number`` (written with sqlite3 alone) is opened, the
    columns added (empty for the old station) and the new tables created."""
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as con:
        con.execute(
            "CREATE TABLE stations (station_id VARCHAR(64) PRIMARY KEY, vendor VARCHAR(64), model VARCHAR(64), "
            "status VARCHAR(32), last_seen DATETIME, password_hash VARCHAR(200))"
        )
        con.execute("INSERT INTO stations VALUES ('OLD-1', 'Acme', 'W', 'Occupied', '2026-01-01 00:00:00', '')")
    con.close()
    store = Store(f"sqlite:///{path}")
    row = store.station("OLD-1")
    assert row is not None and row.firmware == "" and row.serial_number == ""
    assert store.reported_variables() == [] and store.der_controls() == []


def test_the_central_system_refuses_a_report_that_breaks_the_schema(tmp_path: Path) -> None:
    """A ReportDERControl whose curve lacks its ``yUnit`` (sent without the station's own validation) gets a
    CALLERROR and nothing is stored; the valid one after it is stored."""
    from ocpp.exceptions import OCPPError

    store = Store(f"sqlite:///{tmp_path / 'csms.sqlite'}")
    bad = der_control_lists(SimSettings(), "VoltVar")
    del bad["curve"][0]["curve"]["yUnit"]

    async def scenario():  # type: ignore[no-untyped-def]
        async with Csms(store, port=0) as csms:

            async def body(st):  # type: ignore[no-untyped-def]
                with pytest.raises(OCPPError):
                    await st.call(
                        v21.call.ReportDERControl(request_id=7, **bad), suppress=False, skip_schema_validation=True
                    )
                stored_after_bad = len(store.der_controls("CS-V"))
                good = der_control_lists(SimSettings(), "VoltVar")
                await st.call(v21.call.ReportDERControl(request_id=8, **good), suppress=False)
                return stored_after_bad

            return await station_session(csms, "CS-V", v21.ChargePoint, body, SUBPROTOCOL_21)

    assert run(scenario()) == 0
    assert [c.control_type for c in store.der_controls("CS-V")] == ["VoltVar"]
