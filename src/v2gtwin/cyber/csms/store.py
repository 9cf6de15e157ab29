"""Durable store of the central system: SQLAlchemy, SQLite in WAL mode by default, or PostgreSQL.

Changes are functions of a session (the ``op_*`` builders) applied in one transaction by :meth:`Store.apply`;
the central system acknowledges a station's message only after the transaction holding its changes is
committed: with SQLite, synced to the write-ahead log (``synchronous=FULL``); with PostgreSQL, the commit
returned with ``synchronous_commit`` on (the server's default, checked at start: its WAL record flushed to
disk).

The same tables and operations on both dialects: times are stored with their zone and read back as aware UTC
datetimes on both (SQLite keeps them without zone: :class:`UtcDateTime`); row ids are 64-bit on PostgreSQL;
the time strings stations send are kept as sent, of any length (``Text``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    create_engine,
    event,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

from v2gtwin.errors import DataError

__all__ = [
    "DerControlRecord",
    "Evse",
    "MeterValue",
    "ProfileRecord",
    "ReportedVariable",
    "Station",
    "Store",
    "Transaction",
    "TransactionEventRecord",
]

logger = logging.getLogger(__name__)

Op = Callable[[Session], None]  # one change to apply inside a transaction
ValueBatch = tuple[str, int, list[tuple[str, str, float, str]]]  # station id, EVSE id, (time, measurand, value, unit)


class UtcDateTime(TypeDecorator[dt.datetime]):
    """A time with zone (``TIMESTAMP WITH TIME ZONE`` on PostgreSQL), written as UTC and read back as an aware
    UTC datetime on every dialect (SQLite stores it without zone: it is read as the UTC it was written in)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("a time without zone cannot be stored: pass an aware datetime")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


# A row id: 64-bit on PostgreSQL (a 32-bit SERIAL ends after 2**31 rows, five days at 5,000 meter values per
# second); SQLite's INTEGER PRIMARY KEY is its 64-bit rowid already (and only that spelling autoincrements).
RowId = BigInteger().with_variant(Integer(), "sqlite")


class _Base(DeclarativeBase):
    pass


class Station(_Base):
    """A charging station that has booted.

    ``status`` is the last connector status the station reported (it is the station's word, kept as sent);
    ``connected`` whether it is connected to the central system now; ``last_seen`` its last traffic (written at
    most once per ``Csms(last_seen_every_s=...)`` while connected, and at connection and disconnection);
    ``disconnected_at`` when its last connection ended (None while connected or never connected).
    ``firmware`` and ``serial_number``: BootNotification's ``chargingStation.firmwareVersion`` and
    ``serialNumber`` (empty when the station sent none)."""

    __tablename__ = "stations"
    station_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    vendor: Mapped[str] = mapped_column(String(64), default="")
    model: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(32), default="")
    last_seen: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    connected: Mapped[bool] = mapped_column(Boolean, default=False)
    disconnected_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    password_hash: Mapped[str] = mapped_column(String(200), default="")
    firmware: Mapped[str] = mapped_column(String(50), default="")
    serial_number: Mapped[str] = mapped_column(String(25), default="")


class ReportedVariable(_Base):
    """One attribute of one variable of a station's device model, as its latest NotifyReport gave it (OCPP
    2.0.1 Part 2, B07 Get Base Report / NotifyReportRequest ``reportData``). A newer report of the same
    component, variable and attribute replaces the row.

    ``component`` / ``component_instance`` / ``evse_id`` / ``connector_id`` name the component (``evse_id`` 0
    and ``connector_id`` 0: not on an EVSE / connector); ``variable`` / ``variable_instance`` the variable;
    ``attribute`` the attribute type (Actual, Target, MinSet, MaxSet); ``value`` the value as reported (text, up
    to 2,500 characters in OCPP 2.1; None when the station reported the attribute without a value).
    ``unit``, ``data_type``, ``min_limit``, ``max_limit``: the variable's characteristics when reported.
    ``received_at``: when the central system stored it."""

    __tablename__ = "reported_variables"
    station_id: Mapped[str] = mapped_column(ForeignKey("stations.station_id"), primary_key=True)
    component: Mapped[str] = mapped_column(String(50), primary_key=True)
    component_instance: Mapped[str] = mapped_column(String(50), primary_key=True, default="")
    evse_id: Mapped[int] = mapped_column(Integer, primary_key=True, default=0)
    connector_id: Mapped[int] = mapped_column(Integer, primary_key=True, default=0)
    variable: Mapped[str] = mapped_column(String(50), primary_key=True)
    variable_instance: Mapped[str] = mapped_column(String(50), primary_key=True, default="")
    attribute: Mapped[str] = mapped_column(String(16), primary_key=True, default="Actual")
    value: Mapped[str | None] = mapped_column(Text, nullable=True)
    unit: Mapped[str] = mapped_column(String(16), default="")
    data_type: Mapped[str] = mapped_column(String(20), default="")
    min_limit: Mapped[float | None] = mapped_column(Float, nullable=True)
    max_limit: Mapped[float | None] = mapped_column(Float, nullable=True)
    received_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())


class DerControlRecord(_Base):
    """One DER control a station reported (OCPP 2.1 ReportDERControlRequest, answering GetDERControl): its id,
    type (``DERControlEnumType``: HVMustTrip, VoltVar, FreqDroop, ...), whether it is a default control and
    whether a higher-priority one supersedes it, its priority (0 highest) and the whole control as received
    (``body_json``: the wire-format JSON object of the curve, freqDroop, enterService... element). A newer
    report of the same control id and type replaces the row."""

    __tablename__ = "der_controls"
    station_id: Mapped[str] = mapped_column(ForeignKey("stations.station_id"), primary_key=True)
    control_type: Mapped[str] = mapped_column(String(32), primary_key=True)
    control_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    is_default: Mapped[bool] = mapped_column(Boolean, default=True)
    is_superseded: Mapped[bool] = mapped_column(Boolean, default=False)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    body_json: Mapped[str] = mapped_column(Text)
    received_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())


class MeterValue(_Base):
    """One sampled value reported by a station."""

    __tablename__ = "meter_values"
    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    station_id: Mapped[str] = mapped_column(ForeignKey("stations.station_id"), index=True)
    evse_id: Mapped[int] = mapped_column(Integer)
    timestamp: Mapped[str] = mapped_column(Text)
    measurand: Mapped[str] = mapped_column(String(64))
    value: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(20), default="")  # as sent, or OCPP's default for the measurand


class Evse(_Base):
    """One EVSE of a station: its last status and what the EV plugged into it declared (NotifyEVChargingNeeds)."""

    __tablename__ = "evses"
    station_id: Mapped[str] = mapped_column(ForeignKey("stations.station_id"), primary_key=True)
    evse_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(32), default="")
    v2x: Mapped[bool] = mapped_column(Boolean, default=False)
    energy_transfer: Mapped[str] = mapped_column(String(32), default="")
    departure_time: Mapped[str] = mapped_column(Text, default="")
    energy_amount_wh: Mapped[float | None] = mapped_column(Float, nullable=True)
    updated: Mapped[dt.datetime] = mapped_column(UtcDateTime())


class Transaction(_Base):
    """A charging transaction as the station reported it (TransactionEvent Started / Updated / Ended)."""

    __tablename__ = "transactions"
    station_id: Mapped[str] = mapped_column(ForeignKey("stations.station_id"), primary_key=True)
    transaction_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    evse_id: Mapped[int] = mapped_column(Integer, default=0)
    id_token: Mapped[str] = mapped_column(String(255), default="")
    state: Mapped[str] = mapped_column(String(16), default="")
    started: Mapped[str] = mapped_column(Text, default="")
    ended: Mapped[str] = mapped_column(Text, default="")
    stopped_reason: Mapped[str] = mapped_column(String(32), default="")
    last_seq_no: Mapped[int] = mapped_column(Integer, default=-1)


class TransactionEventRecord(_Base):
    """One TransactionEvent as received (a retransmission with the same ``seq_no`` is recorded once)."""

    __tablename__ = "transaction_events"
    station_id: Mapped[str] = mapped_column(ForeignKey("stations.station_id"), primary_key=True)
    transaction_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    seq_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_type: Mapped[str] = mapped_column(String(16))
    timestamp: Mapped[str] = mapped_column(Text)
    evse_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    id_token: Mapped[str] = mapped_column(String(255), default="")
    stopped_reason: Mapped[str] = mapped_column(String(32), default="")


class ProfileRecord(_Base):
    """A charging profile sent to a station, and how the station answered."""

    __tablename__ = "charging_profiles"
    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    station_id: Mapped[str] = mapped_column(ForeignKey("stations.station_id"), index=True)
    profile_id: Mapped[int] = mapped_column(Integer)
    purpose: Mapped[str] = mapped_column(String(32))
    setpoint_w: Mapped[float] = mapped_column(Float)
    sent_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    status: Mapped[str] = mapped_column(String(32))
    latency_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=1)


class Store:
    """The CSMS database.

    Parameters
    ----------
    url : SQLAlchemy URL; default an SQLite file ``csms.sqlite`` (WAL journal, synchronous=FULL); PostgreSQL as
        ``postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE`` (driver psycopg 3).

    Raises
    ------
    DataError : a PostgreSQL server running with ``fsync`` off (a commit would not survive a crash of the
        machine, and the central system acknowledges what is committed).
    """

    def __init__(self, url: str = "sqlite:///csms.sqlite") -> None:
        self.engine = create_engine(url)
        if self.engine.dialect.name == "sqlite":

            @event.listens_for(self.engine, "connect")
            def _pragmas(conn: Any, _record: Any) -> None:
                cur = conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=FULL")
                cur.close()

        elif self.engine.dialect.name == "postgresql":

            @event.listens_for(self.engine, "connect")
            def _durable(conn: Any, _record: Any) -> None:
                # A commit returns only once its WAL record is flushed (a server or role may default to off).
                cur = conn.cursor()
                cur.execute("SHOW synchronous_commit")
                if cur.fetchone()[0] == "off":
                    cur.execute("SET synchronous_commit = on")
                conn.commit()
                cur.close()

            with self.engine.connect() as conn:
                if conn.execute(text("SHOW fsync")).scalar() != "on":
                    self.engine.dispose()
                    raise DataError(
                        "the PostgreSQL server runs with fsync off: committed (acknowledged) data would not "
                        "survive a crash; set fsync = on"
                    )

        _Base.metadata.create_all(self.engine)
        self._add_connection_columns()
        self._session = sessionmaker(self.engine, expire_on_commit=False)

    def _add_connection_columns(self) -> None:
        """A database made before the ``connected``, ``disconnected_at``, ``firmware`` and ``serial_number``
        columns existed gets them (create_all adds tables, not columns)."""
        have = {c["name"] for c in inspect(self.engine).get_columns("stations")}
        timestamp = DateTime(timezone=True).compile(dialect=self.engine.dialect)
        added = {
            "connected": "BOOLEAN NOT NULL DEFAULT FALSE",
            "disconnected_at": f"{timestamp} NULL",
            "firmware": "VARCHAR(50) NOT NULL DEFAULT ''",
            "serial_number": "VARCHAR(25) NOT NULL DEFAULT ''",
        }
        with self.engine.begin() as conn:
            for name, ddl in added.items():
                if name not in have:
                    logger.info("stations: adding column %s", name)
                    conn.execute(text(f"ALTER TABLE stations ADD COLUMN {name} {ddl}"))

    def apply(self, ops: Sequence[Op] = (), values: Sequence[ValueBatch] = ()) -> None:
        """Run ``ops`` (functions of a session, from the ``op_*`` builders) and insert ``values`` (station id,
        EVSE id, rows) in ONE transaction, committed before returning — the group commit of the central system,
        which acknowledges the messages behind them only afterwards."""
        with self._session.begin() as s:
            for op in ops:
                op(s)
            if values:
                self._insert_values(s, values)

    def _insert_values(self, s: Session, values: Sequence[ValueBatch]) -> None:
        sids = {sid for sid, _, _ in values}
        known = {x for (x,) in s.execute(select(Station.station_id).where(Station.station_id.in_(sids)))}
        now = dt.datetime.now(dt.UTC)
        for sid in sids - known:
            if s.get(Station, sid) is None:  # added earlier in this transaction by a boot op
                s.add(Station(station_id=sid, last_seen=now))
        s.flush()
        rows = [
            {"station_id": sid, "evse_id": evse, "timestamp": t, "measurand": m, "value": v, "unit": u}
            for sid, evse, batch in values
            for t, m, v, u in batch
        ]
        if rows:
            s.execute(insert(MeterValue), rows)

    @staticmethod
    def op_upsert_station(
        station_id: str,
        vendor: str = "",
        model: str = "",
        status: str | None = None,
        firmware: str = "",
        serial_number: str = "",
    ) -> Op:
        """A station's boot (vendor, model, firmware and serial number as BootNotification gives them: a boot
        replaces all four) or status."""

        def op(s: Session) -> None:
            now = dt.datetime.now(dt.UTC)
            st = s.get(Station, station_id)
            if st is None:
                s.add(
                    Station(
                        station_id=station_id,
                        vendor=vendor,
                        model=model,
                        status=status or "",
                        last_seen=now,
                        firmware=firmware,
                        serial_number=serial_number,
                    )
                )
                s.flush()
                return
            st.last_seen = now
            if vendor:
                st.vendor, st.model = vendor, model
                st.firmware, st.serial_number = firmware, serial_number
            if status is not None:
                st.status = status

        return op

    @classmethod
    def op_connection(cls, station_id: str, connected: bool) -> Op:
        """A station's connection opened (``connected``) or ended: the flag, ``last_seen`` now and, when it
        ended, ``disconnected_at`` now."""

        def op(s: Session) -> None:
            now = dt.datetime.now(dt.UTC)
            cls._ensure_station(s, station_id)
            st = s.get(Station, station_id)
            assert st is not None
            st.connected, st.last_seen = connected, now
            st.disconnected_at = None if connected else now

        return op

    @staticmethod
    def op_seen(last_seen: dict[str, dt.datetime]) -> Op:
        """Stations' latest traffic (station id -> time): one bulk UPDATE of ``last_seen`` by primary key;
        stations not in the table yet are left out (their connection op adds them)."""

        def op(s: Session) -> None:
            known = set(s.scalars(select(Station.station_id).where(Station.station_id.in_(list(last_seen)))))
            rows = [{"station_id": sid, "last_seen": t} for sid, t in last_seen.items() if sid in known]
            if rows:
                s.execute(update(Station), rows)

        return op

    def mark_all_disconnected(self) -> None:
        """Every station marked connected is marked disconnected, now (at start: a central system that stopped
        without closing its connections, killed or crashed, left them marked connected)."""
        with self._session.begin() as s:
            now = dt.datetime.now(dt.UTC)
            s.execute(update(Station).where(Station.connected.is_(True)).values(connected=False, disconnected_at=now))

    def set_password(self, station_id: str, password: str) -> None:
        """Provision a station's HTTP Basic password (security profiles 1 and 2); at least 16 characters
        (OCPP 2.0.1 Part 2). Stored as a salted scrypt hash."""
        if len(password) < 16:
            raise ValueError("password: OCPP requires at least 16 characters")
        salt = os.urandom(16)
        digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
        with self._session.begin() as s:
            st = s.get(Station, station_id)
            if st is None:
                st = Station(station_id=station_id, last_seen=dt.datetime.now(dt.UTC))
                s.add(st)
            st.password_hash = salt.hex() + "$" + digest.hex()

    def check_password(self, station_id: str, password: str) -> bool:
        """True when the password matches the station's provisioned one (constant-time comparison)."""
        st = self.station(station_id)
        if st is None or "$" not in (st.password_hash or ""):
            return False
        salt_hex, digest_hex = st.password_hash.split("$", 1)
        digest = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt_hex), n=2**14, r=8, p=1)
        return hmac.compare_digest(digest.hex(), digest_hex)

    def count_meter_values(self, station_id: str | None = None) -> int:
        """Number of stored meter values (of one station, or all)."""
        with Session(self.engine) as s:
            q = select(func.count(MeterValue.id))
            if station_id is not None:
                q = q.where(MeterValue.station_id == station_id)
            return int(s.scalar(q) or 0)

    def meter_values(self, station_id: str) -> list[MeterValue]:
        """A station's stored meter values (value in ``unit``), oldest first."""
        with Session(self.engine) as s:
            q = select(MeterValue).where(MeterValue.station_id == station_id).order_by(MeterValue.id)
            return list(s.scalars(q))

    def station(self, station_id: str) -> Station | None:
        """A station's record."""
        with Session(self.engine) as s:
            return s.get(Station, station_id)

    @staticmethod
    def _ensure_station(s: Session, station_id: str) -> None:
        if s.get(Station, station_id) is None:
            s.add(Station(station_id=station_id, last_seen=dt.datetime.now(dt.UTC)))
            s.flush()

    @classmethod
    def op_upsert_evse(cls, station_id: str, evse_id: int, **fields: Any) -> Op:
        """An EVSE's status or its EV's charging needs (``status``, ``v2x``, ``energy_transfer``,
        ``departure_time``, ``energy_amount_wh``)."""

        def op(s: Session) -> None:
            cls._ensure_station(s, station_id)
            ev = s.get(Evse, (station_id, evse_id))
            if ev is None:
                ev = Evse(station_id=station_id, evse_id=evse_id, updated=dt.datetime.now(dt.UTC))
                s.add(ev)
            for key, value in fields.items():
                if value is not None:
                    setattr(ev, key, value)
            ev.updated = dt.datetime.now(dt.UTC)
            s.flush()

        return op

    @classmethod
    def op_transaction_event(
        cls,
        station_id: str,
        transaction_id: str,
        event_type: str,
        timestamp: str,
        seq_no: int,
        evse_id: int | None = None,
        id_token: str | None = None,
        stopped_reason: str | None = None,
    ) -> Op:
        """One TransactionEvent: recorded, then its transaction's record rebuilt from all its events in ``seq_no``
        order, so the order of arrival does not matter: ``state`` is that of the last event, except that an
        Ended transaction stays Ended (a late Updated does not reopen it); ``started`` is the Started event's
        time (else the first event's), ``ended`` and ``stopped_reason`` the Ended event's; ``evse_id`` and
        ``id_token`` the last ones given."""

        def op(s: Session) -> None:
            cls._ensure_station(s, station_id)
            key = (station_id, transaction_id, seq_no)
            if s.get(TransactionEventRecord, key) is None:
                s.add(
                    TransactionEventRecord(
                        station_id=station_id,
                        transaction_id=transaction_id,
                        seq_no=seq_no,
                        event_type=event_type,
                        timestamp=timestamp,
                        evse_id=evse_id,
                        id_token=id_token or "",
                        stopped_reason=stopped_reason or "",
                    )
                )
                s.flush()
            events = list(
                s.scalars(
                    select(TransactionEventRecord)
                    .where(
                        TransactionEventRecord.station_id == station_id,
                        TransactionEventRecord.transaction_id == transaction_id,
                    )
                    .order_by(TransactionEventRecord.seq_no)
                )
            )
            tx = s.get(Transaction, (station_id, transaction_id))
            if tx is None:
                tx = Transaction(station_id=station_id, transaction_id=transaction_id)
                s.add(tx)
            ended = [e for e in events if e.event_type == "Ended"]
            started = [e for e in events if e.event_type == "Started"]
            tx.state = "Ended" if ended else events[-1].event_type
            tx.started = (started[0] if started else events[0]).timestamp
            tx.ended = ended[0].timestamp if ended else ""
            tx.stopped_reason = ended[0].stopped_reason if ended else ""
            tx.last_seq_no = events[-1].seq_no
            evse_ids = [e.evse_id for e in events if e.evse_id is not None]
            tx.evse_id = evse_ids[-1] if evse_ids else 0
            tokens = [e.id_token for e in events if e.id_token]
            tx.id_token = tokens[-1] if tokens else ""
            s.flush()

        return op

    def transaction_events(self, station_id: str, transaction_id: str) -> list[TransactionEventRecord]:
        """A transaction's events as recorded, in ``seq_no`` order."""
        with Session(self.engine) as s:
            q = (
                select(TransactionEventRecord)
                .where(
                    TransactionEventRecord.station_id == station_id,
                    TransactionEventRecord.transaction_id == transaction_id,
                )
                .order_by(TransactionEventRecord.seq_no)
            )
            return list(s.scalars(q))

    def booted_station_ids(self) -> set[str]:
        """Stations whose BootNotification was accepted (a boot records the vendor, which OCPP requires)."""
        with Session(self.engine) as s:
            return set(s.scalars(select(Station.station_id).where(Station.vendor != "")))

    def add_profile_records(self, rows: list[dict[str, Any]]) -> None:
        """Record charging profiles sent (one transaction): dicts with the :class:`ProfileRecord` fields."""
        with self._session.begin() as s:
            sids = {r["station_id"] for r in rows}
            known = {x for (x,) in s.execute(select(Station.station_id).where(Station.station_id.in_(sids)))}
            for sid in sids - known:
                self._ensure_station(s, sid)
            s.execute(insert(ProfileRecord), rows)

    def evse(self, station_id: str, evse_id: int) -> Evse | None:
        """An EVSE's record."""
        with Session(self.engine) as s:
            return s.get(Evse, (station_id, evse_id))

    def transaction(self, station_id: str, transaction_id: str) -> Transaction | None:
        """A transaction's record."""
        with Session(self.engine) as s:
            return s.get(Transaction, (station_id, transaction_id))

    def profile_records(self, station_id: str | None = None) -> list[ProfileRecord]:
        """Charging profiles sent (of one station, or all), oldest first."""
        with Session(self.engine) as s:
            q = select(ProfileRecord).order_by(ProfileRecord.id)
            if station_id is not None:
                q = q.where(ProfileRecord.station_id == station_id)
            return list(s.scalars(q))

    @classmethod
    def op_reported_variables(cls, station_id: str, rows: Sequence[dict[str, Any]]) -> Op:
        """Part of a station's device-model report (NotifyReport): each row a dict with the
        :class:`ReportedVariable` fields but ``station_id`` and ``received_at``; a row replaces the stored one of
        the same component, variable and attribute."""

        def op(s: Session) -> None:
            cls._ensure_station(s, station_id)
            now = dt.datetime.now(dt.UTC)
            for row in rows:
                s.merge(ReportedVariable(station_id=station_id, received_at=now, **row))
            s.flush()

        return op

    @classmethod
    def op_der_controls(cls, station_id: str, rows: Sequence[dict[str, Any]]) -> Op:
        """Part of a station's DER control report (ReportDERControl): each row a dict with the
        :class:`DerControlRecord` fields but ``station_id`` and ``received_at``; a row replaces the stored one of
        the same control type and id."""

        def op(s: Session) -> None:
            cls._ensure_station(s, station_id)
            now = dt.datetime.now(dt.UTC)
            for row in rows:
                s.merge(DerControlRecord(station_id=station_id, received_at=now, **row))
            s.flush()

        return op

    def stations(self) -> list[Station]:
        """Every station's record, by station id."""
        with Session(self.engine) as s:
            return list(s.scalars(select(Station).order_by(Station.station_id)))

    def reported_variables(self, station_id: str | None = None) -> list[ReportedVariable]:
        """The device-model attributes stations reported (of one station, or all), by station and component."""
        with Session(self.engine) as s:
            q = select(ReportedVariable).order_by(
                ReportedVariable.station_id, ReportedVariable.component, ReportedVariable.variable
            )
            if station_id is not None:
                q = q.where(ReportedVariable.station_id == station_id)
            return list(s.scalars(q))

    def der_controls(self, station_id: str | None = None) -> list[DerControlRecord]:
        """The DER controls stations reported (of one station, or all), by station, type and id."""
        with Session(self.engine) as s:
            q = select(DerControlRecord).order_by(
                DerControlRecord.station_id, DerControlRecord.control_type, DerControlRecord.control_id
            )
            if station_id is not None:
                q = q.where(DerControlRecord.station_id == station_id)
            return list(s.scalars(q))
