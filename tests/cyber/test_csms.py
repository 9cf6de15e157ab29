"""The central system against a station built on the `ocpp` package's client classes, over real websockets on
loopback: boot, heartbeat, status, meter values stored before they are acknowledged, refusals."""

from __future__ import annotations

import asyncio
from pathlib import Path

import websockets
from ocpp.v201 import ChargePoint, call
from ocpp.v201.enums import RegistrationStatusEnumType
from websockets.asyncio.client import connect

from v2gtwin.cyber.csms.server import SUBPROTOCOL, Csms
from v2gtwin.cyber.csms.store import Store

from .helpers import run, station_session


class Station(ChargePoint):  # type: ignore[misc]
    pass


def test_boot_heartbeat_status_and_durable_meter_values(db_url: str) -> None:
    store = Store(db_url)

    async def scenario():  # type: ignore[no-untyped-def]
        async with Csms(store, port=0) as csms:

            async def body(st):  # type: ignore[no-untyped-def]
                boot = await st.call(
                    call.BootNotification(
                        charging_station={"model": "WallBox", "vendor_name": "Acme"}, reason="PowerUp"
                    )
                )
                hb = await st.call(call.Heartbeat())
                await st.call(
                    call.StatusNotification(
                        timestamp="2026-11-25T20:00:00Z", connector_status="Occupied", evse_id=1, connector_id=1
                    )
                )
                # When the answer to MeterValues arrives, the values are already in the database.
                await st.call(
                    call.MeterValues(
                        evse_id=1,
                        meter_value=[
                            {
                                "timestamp": "2026-11-25T20:00:00Z",
                                "sampled_value": [
                                    {"value": 1234.5, "measurand": "Energy.Active.Import.Register"},
                                    {"value": 7200.0, "measurand": "Power.Active.Import"},
                                ],
                            }
                        ],
                    )
                )
                stored_at_ack = store.count_meter_values("CS-001")
                return boot, hb, stored_at_ack

            return await station_session(csms, "CS-001", Station, body)

    boot, hb, stored = run(scenario())
    assert boot.status == RegistrationStatusEnumType.accepted and boot.interval > 0
    assert hb.current_time.endswith("Z")
    assert stored == 2
    st = store.station("CS-001")
    assert st is not None and st.vendor == "Acme" and st.status == "Occupied"
    # A new store on the same database (as after a restart) still has them.
    assert Store(db_url).count_meter_values() == 2


def test_refuses_missing_subprotocol_and_bad_station_id(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'csms.sqlite'}")

    async def scenario():  # type: ignore[no-untyped-def]
        async with Csms(store, port=0) as csms:
            codes = []
            for path, protos in (("/CS-1", None), ("/bad%20id!", [SUBPROTOCOL])):
                try:
                    async with connect(f"ws://127.0.0.1:{csms.port}{path}", subprotocols=protos) as ws:
                        await ws.recv()
                except websockets.exceptions.ConnectionClosed as exc:
                    codes.append(exc.rcvd.code if exc.rcvd else None)
                except websockets.exceptions.InvalidStatus as exc:  # refused at the handshake
                    codes.append(exc.response.status_code)
            return codes

    # No ocpp2.0.1 subprotocol: refused at the handshake (HTTP 400); a bad station id: closed with 1008.
    assert run(scenario()) == [400, 1008]


def test_newer_connection_replaces_older(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'csms.sqlite'}")

    async def scenario():  # type: ignore[no-untyped-def]
        async with Csms(store, port=0) as csms:
            first = await connect(f"ws://127.0.0.1:{csms.port}/CS-9", subprotocols=[SUBPROTOCOL])
            await asyncio.sleep(0.1)
            second = await connect(f"ws://127.0.0.1:{csms.port}/CS-9", subprotocols=[SUBPROTOCOL])
            try:
                await asyncio.wait_for(first.recv(), timeout=5)
            except websockets.exceptions.ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd else None
            await second.close()
            return code

    assert run(scenario()) == 1000


def test_schema_violation_gets_a_callerror_and_the_server_keeps_serving(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'csms.sqlite'}")

    async def scenario():  # type: ignore[no-untyped-def]
        async with Csms(store, port=0) as csms:
            async with connect(f"ws://127.0.0.1:{csms.port}/CS-2", subprotocols=[SUBPROTOCOL]) as ws:
                await ws.send('[2, "m1", "BootNotification", {"reason": "NotAReason"}]')
                reply = await asyncio.wait_for(ws.recv(), timeout=5)

            async def body(st):  # type: ignore[no-untyped-def]
                return await st.call(call.Heartbeat())

            hb = await station_session(csms, "CS-3", Station, body)
            return reply, hb

    reply, hb = run(scenario())
    assert reply.startswith("[4,") and '"m1"' in reply
    assert hb.current_time


def test_csms_does_not_import_the_numeric_stack() -> None:
    import subprocess
    import sys

    code = (
        "import sys, v2gtwin.cyber.csms.server; "
        "print(sorted(m for m in ('numpy', 'pandas', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_dispatch_reaches_simulated_stations_and_they_obey(db_url: str) -> None:
    from v2gtwin.cyber.csms.simulator import run_station

    store = Store(db_url)

    async def scenario():  # type: ignore[no-untyped-def]
        async with Csms(store, port=0) as csms:
            stop = asyncio.Event()
            readies = [asyncio.Event() for _ in range(6)]
            tasks = [
                asyncio.create_task(
                    run_station(f"ws://127.0.0.1:{csms.port}", f"SIM-{k}", reports=2, ready=readies[k], stop=stop)
                )
                for k in range(6)
            ]
            try:
                await asyncio.gather(*(r.wait() for r in readies))
                limits = {f"SIM-{k}": 1000.0 * (k + 1) for k in range(6)} | {"SIM-absent": 500.0}
                result = await csms.dispatch(limits, timeout_s=5.0)
                stop.set()
                stations = await asyncio.gather(*tasks)
                return result, stations
            finally:
                stop.set()

    result, stations = run(scenario())
    assert all(result[f"SIM-{k}"]["status"] == "Accepted" for k in range(6))
    assert result["SIM-absent"]["status"] == "not connected"
    # Each exchange's latency lies within the fan-out that contains it (no timing bound: shared machines).
    assert all(0 < result[f"SIM-{k}"]["latency_s"] <= result[f"SIM-{k}"]["settled_s"] for k in range(6))
    assert [s.limit_w for s in stations] == [1000.0 * (k + 1) for k in range(6)]
    assert store.count_meter_values() == 6 * 2 * 3  # 6 stations x 2 reports x 3 sampled values


def test_dispatch_command_with_simulated_station_fleet(tmp_path: Path) -> None:
    import json
    import socket
    import subprocess
    import sys

    from v2gtwin.cyber.csms.simulator import run_fleet

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    csv = tmp_path / "sp.csv"
    csv.write_text("station_id,limit_w\n" + "".join(f"SIM-{k:05d},{1000 * (k + 1)}\n" for k in range(8)))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "v2gtwin.cli",
            "csms",
            "dispatch",
            str(csv),
            "--port",
            str(port),
            "--db",
            f"sqlite:///{tmp_path / 'db.sqlite'}",
            "--wait",
            "20",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    import time

    for _ in range(200):  # wait until the server listens
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)

    fleet = run(run_fleet(f"ws://127.0.0.1:{port}", 8, reports=0, hold_s=2.0))
    out, err = proc.communicate(timeout=30)
    data = json.loads(out)
    assert proc.returncode == 0, err
    assert data["accepted"] == 8 and data["latency_p99_s"] > 0
    assert sorted(s.limit_w for s in fleet) == [1000.0 * (k + 1) for k in range(8)]


def test_the_garbage_collector_pause_is_reentrant_and_restores_the_prior_state() -> None:
    """Overlapping fan-outs: the collector resumes when the last one ends, and stays off if it was off."""
    import gc

    from v2gtwin.cyber.csms.gcpause import gc_paused

    assert gc.isenabled()
    try:
        with gc_paused():
            assert not gc.isenabled()
            with gc_paused():
                assert not gc.isenabled()
            assert not gc.isenabled()  # the outer fan-out is still in flight
        assert gc.isenabled()
        gc.disable()
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_disconnection_and_last_seen_reach_the_store(db_url: str) -> None:
    """Connect, boot, report, disconnect: the stations table says disconnected, with the time, and last_seen
    follows the traffic (written at most once per last_seen_every_s; 0 here: on every message). Reference: the
    wall clock read by the test around each step."""
    import datetime as dt

    store = Store(db_url)

    def utc() -> dt.datetime:  # the store gives back aware UTC times on both databases
        return dt.datetime.now(dt.UTC)

    async def until(cond, what: str) -> None:  # type: ignore[no-untyped-def]
        for _ in range(250):
            if cond():
                return
            await asyncio.sleep(0.02)
        raise AssertionError(what)

    async def scenario():  # type: ignore[no-untyped-def]
        async with Csms(store, port=0, last_seen_every_s=0.0) as csms:
            seen = {}

            async def body(st):  # type: ignore[no-untyped-def]
                row = store.station("CS-9")
                seen["after boot"] = (row.connected, row.disconnected_at, row.last_seen)
                await asyncio.sleep(0.05)
                t_hb = utc()
                await st.call(call.Heartbeat())  # stores nothing itself: only last_seen, in the next commit
                await until(lambda: store.station("CS-9").last_seen >= t_hb, "heartbeat's last_seen not written")
                await st.call(
                    call.MeterValues(
                        evse_id=1,
                        meter_value=[{"timestamp": "2026-11-25T20:00:00Z", "sampled_value": [{"value": 7.0}]}],
                    )
                )
                seen["before disconnect"] = utc()

            await station_session(csms, "CS-9", Station, body)
            await until(lambda: not store.station("CS-9").connected, "disconnection not recorded")
            return seen

    t_start = utc()
    seen = run(scenario())
    t_end = utc()
    assert seen["after boot"][0] is True and seen["after boot"][1] is None
    boot_seen = seen["after boot"][2]
    row = store.station("CS-9")
    assert row.connected is False and row.status == ""
    assert seen["before disconnect"] <= row.disconnected_at <= t_end
    assert t_start <= boot_seen < row.last_seen <= t_end


def test_last_seen_is_written_at_most_once_per_interval_and_a_restart_clears_connected(db_url: str) -> None:
    """With last_seen_every_s=3600 three heartbeats leave last_seen at the connection's time; a central system
    that starts finds no station still marked connected by a predecessor that was killed."""
    store = Store(db_url)

    async def scenario():  # type: ignore[no-untyped-def]
        async with Csms(store, port=0, last_seen_every_s=3600.0) as csms:

            async def body(st):  # type: ignore[no-untyped-def]
                first = store.station("CS-8").last_seen
                for _ in range(3):
                    await st.call(call.Heartbeat())
                    await asyncio.sleep(0.05)
                await st.call(call.MeterValues(evse_id=1, meter_value=[_one_value()]))  # a commit happens
                return first, store.station("CS-8").last_seen, store.station("CS-8").connected

            return await station_session(csms, "CS-8", Station, body)

    first, later, connected = run(scenario())
    assert connected is True and later == first
    store.apply([Store.op_connection("CS-8", True)])  # as a killed central system leaves it

    async def restart():  # type: ignore[no-untyped-def]
        async with Csms(store, port=0):
            return store.station("CS-8").connected

    assert run(restart()) is False


def _one_value() -> dict:  # type: ignore[type-arg]
    return {"timestamp": "2026-11-25T20:00:00Z", "sampled_value": [{"value": 7.0}]}


def test_a_database_from_before_the_connection_columns_gets_them(tmp_path: Path) -> None:
    """A stations table made without `connected` / `disconnected_at` (as earlier versions made it, written here
    with the sqlite3 module alone) is opened, the columns added: the old station reads as not connected."""
    import sqlite3

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as con:
        con.execute(
            "CREATE TABLE stations (station_id VARCHAR(64) PRIMARY KEY, vendor VARCHAR(64), model VARCHAR(64), "
            "status VARCHAR(32), last_seen DATETIME, password_hash VARCHAR(200))"
        )
        con.execute("INSERT INTO stations VALUES ('OLD-1', 'Acme', 'W', 'Occupied', '2026-01-01 00:00:00', '')")
    con.close()
    row = Store(f"sqlite:///{path}").station("OLD-1")
    assert row is not None and row.connected is False and row.disconnected_at is None and row.status == "Occupied"


def test_stopping_the_central_system_records_its_stations_disconnected(tmp_path: Path) -> None:
    """stop() closes every connection; the writer is still running while the handlers end, so each station's
    disconnection is committed (not lost with the process)."""
    store = Store(f"sqlite:///{tmp_path / 'csms.sqlite'}")

    async def scenario():  # type: ignore[no-untyped-def]
        csms = Csms(store, port=0)
        await csms.start()

        async def body(st):  # type: ignore[no-untyped-def]
            during = store.station("CS-7").connected
            await csms.stop()
            return during

        return await station_session(csms, "CS-7", Station, body)

    assert run(scenario()) is True
    row = store.station("CS-7")
    assert row.connected is False and row.disconnected_at is not None
