"""The store reads behind the HTTP API's routes: plain SQL through SQLAlchemy Core (no ORM objects: 10,000
stations are read in tens of milliseconds), run in a worker thread by the API. Times are ISO 8601 UTC text."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from v2gtwin.cyber.csms.store import Evse, MeterValue, Station, Store, Transaction

__all__ = ["iso_utc", "meter_value_page", "parse_time", "station_rows", "transaction_rows"]

#: Rows a meter-value page reads at most while looking for ``limit`` matches of a time filter (the page then
#: ends early, with its cursor: follow ``next_cursor`` until it is null).
SCAN_MAX_ROWS = 50_000


def iso_utc(t: dt.datetime | None) -> str | None:
    """A stored time as ISO 8601 UTC with milliseconds and ``Z`` (SQLite returns it without its zone: it was
    written in UTC)."""
    if t is None:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str) -> dt.datetime | None:
    """An ISO 8601 time as an aware datetime (a time without zone is taken as UTC); None when unreadable."""
    try:
        t = dt.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)


def station_rows(store: Store) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """Every station (id, status, connected, last_seen, vendor, model) and each station's EVSEs (id, status,
    v2x, departure_time, energy_amount_wh), by station id."""
    with store.engine.connect() as conn:
        stations = [
            {
                "station_id": r.station_id,
                "status": r.status,
                "connected": bool(r.connected),
                "last_seen": iso_utc(r.last_seen),
                "vendor": r.vendor,
                "model": r.model,
            }
            for r in conn.execute(
                select(
                    Station.station_id,
                    Station.status,
                    Station.connected,
                    Station.last_seen,
                    Station.vendor,
                    Station.model,
                ).order_by(Station.station_id)
            )
        ]
        evses: dict[str, list[dict[str, Any]]] = {}
        for r in conn.execute(
            select(
                Evse.station_id, Evse.evse_id, Evse.status, Evse.v2x, Evse.departure_time, Evse.energy_amount_wh
            ).order_by(Evse.station_id, Evse.evse_id)
        ):
            evses.setdefault(r.station_id, []).append(
                {
                    "evse_id": r.evse_id,
                    "status": r.status,
                    "v2x": bool(r.v2x),
                    "departure_time": r.departure_time or None,
                    "energy_amount_wh": r.energy_amount_wh,
                }
            )
    return stations, evses


def transaction_rows(store: Store, active: bool | None, station_id: str | None) -> list[dict[str, Any]]:
    """Transactions as the stations reported them (``active``: True only those not Ended, False only Ended)."""
    q = select(Transaction).order_by(Transaction.station_id, Transaction.started)
    if active is True:
        q = q.where(Transaction.state != "Ended")
    elif active is False:
        q = q.where(Transaction.state == "Ended")
    if station_id is not None:
        q = q.where(Transaction.station_id == station_id)
    with store.engine.connect() as conn:
        return [
            {
                "station_id": r.station_id,
                "transaction_id": r.transaction_id,
                "evse_id": r.evse_id,
                "state": r.state,
                "started": r.started or None,
                "ended": r.ended or None,
                "stopped_reason": r.stopped_reason or None,
                "id_token": r.id_token or None,
            }
            for r in conn.execute(q)
        ]


def meter_value_page(
    store: Store,
    *,
    station_id: str | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
    limit: int,
    cursor: int,
    measurand: str | None = None,
) -> dict[str, Any]:
    """One page of stored meter values in storage order (``id`` ascending) after ``cursor``: those of
    ``station_id`` (all stations when None) whose timestamp ``t`` has ``since <= t < until``.

    The stations' timestamps are text as sent, in any ISO 8601 offset, so the time filter reads each one
    (exactly, not by comparing text); a value whose timestamp cannot be read matches no time filter and is
    counted in ``unreadable_timestamps``. A page holds at most ``limit`` items and reads at most
    :data:`SCAN_MAX_ROWS` rows; ``next_cursor`` is None when nothing is left after it.
    """
    base = select(
        MeterValue.id,
        MeterValue.station_id,
        MeterValue.evse_id,
        MeterValue.timestamp,
        MeterValue.measurand,
        MeterValue.value,
        MeterValue.unit,
    ).order_by(MeterValue.id)
    if station_id is not None:
        base = base.where(MeterValue.station_id == station_id)
    if measurand is not None:
        base = base.where(MeterValue.measurand == measurand)
    filtered = since is not None or until is not None
    items: list[dict[str, Any]] = []
    unreadable = scanned = 0
    last_id = cursor
    more = True
    chunk = limit + 1 if not filtered else 5000
    with store.engine.connect() as conn:
        while len(items) < limit and scanned < SCAN_MAX_ROWS:
            rows = conn.execute(base.where(MeterValue.id > last_id).limit(chunk)).all()
            if not rows:
                more = False
                break
            for r in rows:
                if len(items) == limit:
                    break  # r is left for the next page
                last_id = r.id
                scanned += 1
                if filtered:
                    t = parse_time(r.timestamp)
                    if t is None:
                        unreadable += 1
                        continue
                    if (since is not None and t < since) or (until is not None and t >= until):
                        continue
                items.append(
                    {
                        "id": r.id,
                        "station_id": r.station_id,
                        "evse_id": r.evse_id,
                        "timestamp": r.timestamp,
                        "measurand": r.measurand,
                        "value": r.value,
                        "unit": r.unit,
                    }
                )
            if len(rows) < chunk and len(items) < limit:
                more = False
                break
        if more and len(items) == limit:
            # Anything after the last item returned?
            more = conn.execute(base.where(MeterValue.id > last_id).limit(1)).first() is not None
    return {
        "items": items,
        "next_cursor": str(last_id) if more else None,
        "unreadable_timestamps": unreadable,
    }
