"""The store on PostgreSQL as on SQLite: times with zone, time strings of any length, 64-bit row ids, a database
from before the connection columns, and every PostgreSQL connection committing synchronously — each checked
against a real PostgreSQL server (tests/cyber/conftest.py starts it) and, where it applies, SQLite."""

from __future__ import annotations

import asyncio
import datetime as dt

import psycopg
import pytest
from sqlalchemy import Engine, create_engine, event, insert, text
from sqlalchemy.exc import StatementError

from v2gtwin.cyber.csms.pg_local import SUPERUSER, LocalPostgres
from v2gtwin.cyber.csms.server import Csms
from v2gtwin.cyber.csms.simulator import run_fleet
from v2gtwin.cyber.csms.store import MeterValue, Store
from v2gtwin.errors import DataError


def _conninfo(server: LocalPostgres, url: str) -> str:
    return f"host=127.0.0.1 port={server.port} user={SUPERUSER} dbname={url.rsplit('/', 1)[1]}"


def _column_types(engine: Engine, table: str) -> dict[str, str]:
    """PostgreSQL's own record of a table's column types (information_schema, the current schema)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = :t"
            ),
            {"t": table},
        )
        return {name: kind for name, kind in rows}


def test_times_come_back_as_aware_utc_and_time_strings_keep_their_length(db_url: str) -> None:
    """A time written with a +02:00 offset reads back as the same instant in UTC, with its zone, on both
    databases; a naive time is refused (it would mean the server's local zone on PostgreSQL); the time strings a
    station sends are stored as sent, however long (a 64-character one here: OCPP's date-time has no maximum
    length, and its format is not checked)."""
    store = Store(db_url)
    store.apply([Store.op_upsert_station("CS-T", "V", "M")])
    written = dt.datetime(2026, 11, 25, 20, 0, 0, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    store.apply([Store.op_seen({"CS-T": written})])
    seen = store.station("CS-T").last_seen  # type: ignore[union-attr]
    # 20:00:00.123456+02:00 is 18:00:00.123456 UTC.
    assert seen == dt.datetime(2026, 11, 25, 18, 0, 0, 123456, tzinfo=dt.UTC) and seen.utcoffset() == dt.timedelta(0)
    with pytest.raises(StatementError, match="without zone"):
        store.apply([Store.op_seen({"CS-T": dt.datetime(2026, 11, 25, 20, 0)})])
    long_time = "2026-11-25T20:00:00." + "1" * 38 + "+00:00"
    assert len(long_time) == 64
    store.apply(
        [Store.op_upsert_evse("CS-T", 1, departure_time=long_time)],
        [("CS-T", 1, [(long_time, "Energy.Active.Import.Register", 5.0, "Wh")])],
    )
    assert store.meter_values("CS-T")[0].timestamp == long_time
    assert store.evse("CS-T", 1).departure_time == long_time  # type: ignore[union-attr]
    store.engine.dispose()


def test_meter_value_ids_are_64_bit_on_postgresql(pg_server: LocalPostgres) -> None:
    """A meter value with id 2**31 (one past PostgreSQL's 4-byte integer maximum, 2,147,483,647: PostgreSQL
    manual, 8.1.1 Integer Types) is stored and read back; the column is bigint."""
    store = Store(pg_server.create_schema())
    store.apply([Store.op_upsert_station("CS-I", "V", "M")])
    with store.engine.begin() as conn:
        conn.execute(
            insert(MeterValue).values(
                id=2**31, station_id="CS-I", evse_id=1, timestamp="t", measurand="m", value=1.0, unit=""
            )
        )
    assert _column_types(store.engine, "meter_values")["id"] == "bigint"
    assert [v.id for v in store.meter_values("CS-I")] == [2**31]
    store.engine.dispose()


def test_a_postgresql_database_from_before_the_connection_columns_gets_them(pg_server: LocalPostgres) -> None:
    """A stations table made without ``connected``, ``disconnected_at``, ``firmware`` and ``serial_number``
    (written here in plain SQL, as earlier versions made it) is opened: the columns are added with PostgreSQL's
    own types, the old station reads as not connected, and a boot then fills them."""
    url = pg_server.create_schema()
    old = create_engine(url)
    with old.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE stations (station_id VARCHAR(64) PRIMARY KEY, vendor VARCHAR(64), model VARCHAR(64), "
                "status VARCHAR(32), last_seen TIMESTAMP WITH TIME ZONE, password_hash VARCHAR(200))"
            )
        )
        conn.execute(
            text("INSERT INTO stations VALUES ('OLD-1', 'Acme', 'W', 'Occupied', '2026-01-01 00:00:00+00', '')")
        )
    assert "connected" not in _column_types(old, "stations")
    store = Store(url)
    row = store.station("OLD-1")
    assert row is not None and row.connected is False and row.disconnected_at is None and row.status == "Occupied"
    assert row.last_seen == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    types = _column_types(old, "stations")
    old.dispose()
    assert types["connected"] == "boolean" and types["disconnected_at"] == "timestamp with time zone"
    assert types["firmware"] == "character varying" and types["serial_number"] == "character varying"
    store.apply([Store.op_upsert_station("OLD-1", "Acme", "W2", firmware="1.2", serial_number="SN9")])
    store.apply([Store.op_connection("OLD-1", True)])
    row = store.station("OLD-1")
    assert row is not None and (row.model, row.firmware, row.serial_number, row.connected) == ("W2", "1.2", "SN9", True)
    store.engine.dispose()


def test_every_postgresql_connection_commits_synchronously(pg_server: LocalPostgres) -> None:
    """A database whose sessions default to ``synchronous_commit = off`` (ALTER DATABASE ... SET; a plain
    connection to it shows off): every connection the store's pool hands out while stations stream meter values
    runs with it on, so a commit returns only once its WAL record is on disk."""
    url = pg_server.create_database()
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(_conninfo(pg_server, url), autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    with psycopg.connect(_conninfo(pg_server, url)) as conn:
        assert conn.execute("SHOW synchronous_commit").fetchone() == ("off",)  # the database's default
    store = Store(url)
    seen: list[tuple[int, str]] = []

    @event.listens_for(store.engine, "checkout")
    def _checked_out(dbapi_conn, _record, _proxy) -> None:  # type: ignore[no-untyped-def]
        seen.append((id(dbapi_conn), dbapi_conn.execute("SHOW synchronous_commit").fetchone()[0]))

    async def scenario() -> None:
        async with Csms(store, port=0) as csms:
            await run_fleet(f"ws://127.0.0.1:{csms.port}", 5, reports=2)

    with store.engine.connect():  # a reader holds one connection: the writer's worker threads need others
        asyncio.run(asyncio.wait_for(scenario(), 60))
    assert store.count_meter_values() == 5 * 2 * 3
    assert len(seen) > 5 and len({c for c, _ in seen}) >= 2
    assert {mode for _, mode in seen} == {"on"}
    store.engine.dispose()


def test_a_server_running_without_fsync_is_refused(pg_server: LocalPostgres) -> None:
    """With ``fsync = off`` (set for this server through ALTER SYSTEM and a reload, then reset) the store refuses
    to open: a commit — and so an acknowledgement — would not survive a crash of the machine."""
    import time

    admin = f"host=127.0.0.1 port={pg_server.port} user={SUPERUSER} dbname=postgres"

    def set_fsync(value: str) -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"ALTER SYSTEM SET fsync = {value}")
            conn.execute("SELECT pg_reload_conf()")
        for _ in range(200):  # the postmaster rereads its configuration on its own time
            with psycopg.connect(admin) as conn:
                if conn.execute("SHOW fsync").fetchone() == (value,):
                    return
            time.sleep(0.05)
        raise AssertionError(f"fsync did not become {value}")

    url = pg_server.create_schema()
    set_fsync("off")
    try:
        with pytest.raises(DataError, match="fsync off"):
            Store(url)
    finally:
        set_fsync("on")
    Store(url).engine.dispose()  # the same database opens once fsync is back on
