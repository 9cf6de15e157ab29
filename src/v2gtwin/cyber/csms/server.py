"""OCPP 2.0.1 / 2.1 central system server: the `ocpp` package's message layer (routing and JSON-schema
validation of every incoming frame, compiled: see :mod:`v2gtwin.cyber.csms.validation`) on the `websockets`
asyncio server.

Stations connect at ``ws://HOST:PORT/<station_id>`` with subprotocol ``ocpp2.0.1`` or ``ocpp2.1`` (2.1 preferred
when a station offers both); connections without either, or with a station id outside ``[A-Za-z0-9._:-]{1,48}``,
are refused. A newer connection of the same station replaces the older one (which is closed). MeterValues and
TransactionEvent are answered only after what they carry is committed to the store.

V2X: a station on OCPP 2.1 whose EV declares a bidirectional energy transfer (``AC_BPT``, ``DC_BPT``, ... in
NotifyEVChargingNeeds) can be sent a negative set-point: the 2.1 ``ChargingSchedulePeriod`` fields
``operationMode = CentralSetpoint``, ``setpoint`` and ``dischargeLimit`` (from the ``ocpp`` package's ``v21``
schemas). OCPP 2.0.1 has no discharge; a negative set-point for a station without declared V2X is not sent.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import json
import logging
import math
import re
import time
from collections.abc import Callable, Sequence
from http import HTTPStatus
from typing import Any

import jsonschema
from ocpp import v21, v201
from ocpp.exceptions import FormatViolationError, OCPPError
from ocpp.exceptions import ProtocolError as OCPPProtocolError
from ocpp.messages import CallError, MessageType, unpack
from ocpp.routing import after, on
from ocpp.v201 import call_result
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import NegotiationError
from websockets.typing import Subprotocol

from v2gtwin.cyber.csms.gcpause import gc_paused
from v2gtwin.cyber.csms.inventory import DerControlHandlers, InventoryHandlers, InventoryRequests, request_inventory
from v2gtwin.cyber.csms.live_state import ev_power_limits_w
from v2gtwin.cyber.csms.payloads import build_set_point_request, meter_rows, set_point_frame
from v2gtwin.cyber.csms.store import Op, Store, ValueBatch
from v2gtwin.cyber.csms.tls import server_ssl_context
from v2gtwin.cyber.csms.validation import CompiledValidation, get_validator
from v2gtwin.errors import DataError

__all__ = ["SUBPROTOCOL", "SUBPROTOCOLS", "Csms", "StationHandler", "StationHandler21", "build_set_point_request"]

logger = logging.getLogger(__name__)

SUBPROTOCOL = "ocpp2.0.1"
SUBPROTOCOL_21 = "ocpp2.1"
SUBPROTOCOLS = (SUBPROTOCOL_21, SUBPROTOCOL)
STATION_ID = re.compile(r"^[A-Za-z0-9._:-]{1,48}$")
HEARTBEAT_INTERVAL_S = 300
_BIDIRECTIONAL = ("AC_BPT", "AC_BPT_DER", "DC_BPT", "DC_ACDP_BPT")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _enum(value: Any) -> str:
    return str(getattr(value, "value", value))


class _Handlers:
    """The handlers of the messages a station sends, shared by the 2.0.1 and the 2.1 station classes (the
    response classes are the 2.0.1 ones: their fields are the same in 2.1, and each answer is validated
    against the schema of the connection's own version)."""

    id: str
    version: str

    def __init__(self, station_id: str, connection: Any, store: Store, csms: Csms | None = None) -> None:
        super().__init__(station_id, connection)  # type: ignore[call-arg]  # the version's ChargePoint
        self.store = store
        self.csms = csms
        self.v2x = False  # the EV declared a bidirectional transfer (NotifyEVChargingNeeds)
        self.p_limits_w: tuple[float | None, float] = (None, 0.0)  # the EV's declared (max, min) power [W]

    async def _commit(self, ops: Sequence[Op] = (), values: Sequence[ValueBatch] = ()) -> None:
        """Commit before returning: through the central system's group-commit writer when there is one."""
        if self.csms is not None:
            await self.csms.commit(ops, values)
        else:
            await asyncio.to_thread(self.store.apply, ops, values)

    async def call_prebuilt(self, action: str, frame_payload: str, timeout_s: float) -> dict[str, Any]:
        """Send a CALL whose payload (JSON text, wire format) comes from a builder the tests validate, and return
        the answer's payload (camelCase) after validating it against the response schema.

        The cheap path for the frames the central system builds itself: no dataclass round trip and no request
        validation (about 0.4 ms of CPU per SetChargingProfile through ``ChargePoint.call``, measured with
        cProfile at 10,000 stations). It keeps the ``ocpp`` package's one-call-at-a-time lock and its response
        queue (``_call_lock``, ``_send``, ``_response_queue``: internals of the pinned ocpp 2.1.0, exercised by
        the dispatch tests). A CALLERROR is raised as the package's exception."""
        unique_id = str(self._unique_id_generator())  # type: ignore[attr-defined]
        frame = f'[2,"{unique_id}","{action}",{frame_payload}]'
        async with self._call_lock:  # type: ignore[attr-defined]
            await self._send(frame)  # type: ignore[attr-defined]
            # The answer, matched by its id (answers to earlier, timed-out calls are dropped); asyncio.timeout
            # rather than wait_for: no extra task per call.
            async with asyncio.timeout(timeout_s):
                while True:
                    response = await self._response_queue.get()  # type: ignore[attr-defined]
                    if response.unique_id == unique_id:
                        break
                    logger.info("%s: dropped an answer to an earlier call (%s)", self.id, response.unique_id)
        if response.message_type_id == MessageType.CallError:
            raise response.to_exception()
        get_validator(MessageType.CallResult, action, self.version.removeprefix("ocpp")).validate(response.payload)
        return dict(response.payload)

    async def route_message(self, raw_msg: str | bytes) -> None:
        """The package's routing, except that no malformed frame goes unanswered: a frame that is not an OCPP-J
        message (not JSON, not a list, unknown message type, missing or ill-typed elements) gets a CALLERROR
        with the frame's message id, or ``"-1"`` when that cannot be read (OCPP 2.0.1 Part 4, CALLERROR), where
        the package would only log it. A CALLRESULT or CALLERROR from the station is never answered (OCPP-J);
        one that answers no pending call is dropped by the next call."""
        if self.csms is not None:
            self.csms.touch(self.id)  # last_seen, written at most once per last_seen_every_s
        try:
            try:
                msg = unpack(raw_msg)
            except RecursionError:  # JSON nested deeper than Python's parser goes
                raise FormatViolationError(details={"cause": "JSON nested too deeply"}) from None
            if msg.message_type_id == MessageType.Call and not (
                isinstance(msg.unique_id, str) and isinstance(msg.action, str) and isinstance(msg.payload, dict)
            ):
                raise OCPPProtocolError(details={"cause": "uniqueId and action must be strings, payload an object"})
        except OCPPError as exc:
            await self._send(_call_error(raw_msg, exc))  # type: ignore[attr-defined]
            return
        if msg.message_type_id == MessageType.Call:
            try:
                await self._handle_call(msg)  # type: ignore[attr-defined]
            except OCPPError as error:
                logger.info("%s: %s refused: %s", self.id, msg.action, error)
                await self._send(msg.create_call_error(error).to_json())  # type: ignore[attr-defined]
        else:
            self._response_queue.put_nowait(msg)  # type: ignore[attr-defined]

    @on("BootNotification")  # type: ignore[untyped-decorator,unused-ignore]
    async def on_boot(self, charging_station: dict[str, Any], reason: str, **_: Any) -> Any:
        vendor, model = charging_station.get("vendor_name", ""), charging_station.get("model", "")
        firmware, serial = charging_station.get("firmware_version", ""), charging_station.get("serial_number", "")
        await self._commit([Store.op_upsert_station(self.id, vendor, model, firmware=firmware, serial_number=serial)])
        return call_result.BootNotification(current_time=_now(), interval=HEARTBEAT_INTERVAL_S, status="Accepted")

    @after("BootNotification")  # type: ignore[untyped-decorator,unused-ignore]
    def after_boot(self, **_: Any) -> None:
        """Runs once the Accepted answer is sent: from now on the central system may send this station requests
        (OCPP 2.0.1 Part 2, B01: no CSMS-initiated request before the station's boot was accepted)."""
        if self.csms is not None:
            self.csms.booted.add(self.id)
            if self.csms.inventory_on_boot:  # device model and DER controls, in a task of its own (see inventory)
                self.csms.spawn(request_inventory(self.csms, self.id))

    @on("Heartbeat")  # type: ignore[untyped-decorator,unused-ignore]
    async def on_heartbeat(self, **_: Any) -> Any:
        return call_result.Heartbeat(current_time=_now())

    @on("StatusNotification")  # type: ignore[untyped-decorator,unused-ignore]
    async def on_status(self, connector_status: str, evse_id: int = 0, **_: Any) -> Any:
        status = _enum(connector_status)
        station = Store.op_upsert_station(self.id, status=status)
        await self._commit([station, Store.op_upsert_evse(self.id, int(evse_id), status=status)])
        return call_result.StatusNotification()

    @on("Authorize")  # type: ignore[untyped-decorator,unused-ignore]
    async def on_authorize(self, id_token: dict[str, Any], **_: Any) -> Any:
        status = self.csms.authorize(id_token) if self.csms is not None else "Accepted"
        return call_result.Authorize(id_token_info={"status": status})

    @on("NotifyEVChargingNeeds")  # type: ignore[untyped-decorator,unused-ignore]
    async def on_charging_needs(self, charging_needs: dict[str, Any], evse_id: int, **_: Any) -> Any:
        modes = [_enum(m) for m in charging_needs.get("available_energy_transfer") or []]
        requested = _enum(charging_needs.get("requested_energy_transfer", ""))
        v2x = any(m in _BIDIRECTIONAL for m in [requested, *modes])
        params = charging_needs.get("ac_charging_parameters") or charging_needs.get("dc_charging_parameters") or {}
        energy = params.get("energy_amount")
        self.v2x = v2x
        self.p_limits_w = ev_power_limits_w(charging_needs, v2x)
        op = Store.op_upsert_evse(
            self.id,
            int(evse_id),
            v2x=v2x,
            energy_transfer=requested,
            departure_time=str(charging_needs.get("departure_time", "")),
            energy_amount_wh=float(energy) if energy is not None else None,
        )
        await self._commit([op])
        return call_result.NotifyEVChargingNeeds(status="Accepted")

    @on("MeterValues")  # type: ignore[untyped-decorator,unused-ignore]
    async def on_meter_values(self, evse_id: int, meter_value: list[dict[str, Any]], **_: Any) -> Any:
        await self._commit(values=[(self.id, int(evse_id), meter_rows(meter_value))])
        return call_result.MeterValues()

    @on("TransactionEvent")  # type: ignore[untyped-decorator,unused-ignore]
    async def on_transaction_event(
        self,
        event_type: str,
        timestamp: str,
        seq_no: int,
        transaction_info: dict[str, Any],
        evse: dict[str, Any] | None = None,
        id_token: dict[str, Any] | None = None,
        meter_value: list[dict[str, Any]] | None = None,
        **_: Any,
    ) -> Any:
        evse_id = int(evse["id"]) if evse else None
        op = Store.op_transaction_event(
            self.id,
            str(transaction_info["transaction_id"]),
            _enum(event_type),
            str(timestamp),
            int(seq_no),
            evse_id,
            str(id_token["id_token"]) if id_token else None,
            _enum(transaction_info.get("stopped_reason", "")) or None,
        )
        # The event and its values in the same transaction, committed before the answer.
        await self._commit([op], [(self.id, evse_id or 0, meter_rows(meter_value))] if meter_value else [])
        if id_token:
            status = self.csms.authorize(id_token) if self.csms is not None else "Accepted"
            return call_result.TransactionEvent(id_token_info={"status": status})
        return call_result.TransactionEvent()


class StationHandler(CompiledValidation, InventoryHandlers, _Handlers, v201.ChargePoint):
    """One station connected with OCPP 2.0.1."""

    version = SUBPROTOCOL
    calls: Any = v201.call


class StationHandler21(CompiledValidation, InventoryHandlers, DerControlHandlers, _Handlers, v21.ChargePoint):
    """One station connected with OCPP 2.1 (V2X set-points possible once its EV declares them)."""

    version = SUBPROTOCOL_21
    calls: Any = v21.call


def _prefer_21(_connection: ServerConnection, offered: Sequence[str]) -> Subprotocol:
    """OCPP 2.1 when the station offers it, else 2.0.1; the handshake is refused (HTTP 400) when it offers
    neither."""
    for p in SUBPROTOCOLS:
        if p in offered:
            return Subprotocol(p)
    raise NegotiationError(f"subprotocol {' or '.join(SUBPROTOCOLS)} required")


def _call_error(raw_msg: str | bytes, exc: OCPPError) -> str:
    """The CALLERROR for a frame that could not be read as an OCPP-J message: its message id when the frame is
    a JSON list with a string in second place, else "-1"."""
    unique_id = "-1"
    with contextlib.suppress(ValueError, TypeError, RecursionError):
        frame = json.loads(raw_msg)
        if isinstance(frame, list) and len(frame) > 1 and isinstance(frame[1], str) and len(frame[1]) <= 36:
            unique_id = frame[1]
    return CallError(unique_id, exc.code, exc.description, exc.details or {}).to_json()


class Csms:
    """The central system: accepts stations, routes their messages, keeps the latest connection per station.

    Parameters
    ----------
    store : the durable store. host, port : where to listen (127.0.0.1 by default; port 0 picks a free one).
    max_message_bytes : largest accepted frame; larger ones close that connection (1009).
    allowed_id_tokens : the id tokens Authorize / TransactionEvent accept; None accepts every token (the
    aggregator usually leaves authorisation to the e-mobility provider).
    last_seen_every_s : a connected station's ``last_seen`` in the store is rewritten at most this often [s] (on
    its traffic, in the next group commit: one bulk UPDATE for all the stations due, never a write per message);
    connection and disconnection always write it.
    inventory_on_boot : once a station's boot is accepted, ask it for its device model (GetBaseReport) and, on
    OCPP 2.1, its DER controls (GetDERControl), and store the reports (:mod:`v2gtwin.cyber.csms.inventory`).
    Off by default here (a station that does not answer would hold its call lock for the request's time-out);
    ``v2gtwin csms serve`` turns it on.
    """

    def __init__(
        self,
        store: Store,
        host: str = "127.0.0.1",
        port: int = 9000,
        max_message_bytes: int = 65536,
        *,
        security_profile: int = 0,
        certfile: str | None = None,
        keyfile: str | None = None,
        cafile: str | None = None,
        allowed_id_tokens: set[str] | None = None,
        last_seen_every_s: float = 60.0,
        inventory_on_boot: bool = False,
    ):
        if not (math.isfinite(last_seen_every_s) and last_seen_every_s >= 0):
            raise DataError(f"last_seen_every_s: a finite number of seconds >= 0; got {last_seen_every_s!r}")
        if security_profile not in (0, 1, 2, 3):
            raise DataError(f"security_profile: 0 (none, development), 1, 2 or 3; got {security_profile}")
        if security_profile >= 2 and not (certfile and keyfile):
            raise DataError(
                "certfile, keyfile: security profiles 2 and 3 need the server certificate and key (csms pki)"
            )
        if security_profile == 3 and not cafile:
            raise DataError("cafile: security profile 3 needs the CA that signs the station certificates")
        self.security_profile = security_profile
        # Now: a missing or bad key or certificate is an error here, not at listening time.
        self._ssl = server_ssl_context(security_profile, certfile, keyfile, cafile)
        self._server_cert = (certfile, keyfile)
        self.store = store
        self.host = host
        self.port = port
        self.max_message_bytes = max_message_bytes
        self.allowed_id_tokens = allowed_id_tokens
        self.stations: dict[str, StationHandler | StationHandler21] = {}
        self._connections: dict[str, ServerConnection] = {}
        self._server: Any = None
        self._pending: list[tuple[Sequence[Op], Sequence[ValueBatch], asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self.committed_values = 0  # meter values committed by this process (for monitoring and benchmarks)
        # Bumped after every commit that changed more than meter values (stations, EVSEs, transactions,
        # last_seen): readers may keep what they read of those tables while it stays the same (the HTTP API).
        self.store_version = 0
        # Stations whose BootNotification was accepted (by this process, or recorded in the store by an earlier
        # run: a station boots once per power-up, not per connection): the only ones sent requests.
        self.booted: set[str] = set()
        # Stations that were connected during this run and are not now (shown as such by `csms serve`).
        self.disconnected: set[str] = set()
        self._wake: asyncio.Event | None = None
        self.last_seen_every_s = last_seen_every_s
        self._seen_written: dict[str, float] = {}  # station -> monotonic time its last_seen was last queued
        self._seen: dict[str, dt.datetime] = {}  # last_seen values queued for the next group commit
        self.inventory_on_boot = inventory_on_boot
        self.inventory = InventoryRequests()  # the report requests sent and the reports awaited
        self._tasks: set[asyncio.Task[Any]] = set()
        # Called with each message's meter values once they are committed (the HTTP API's live state).
        self.value_listeners: list[Callable[[Sequence[ValueBatch]], None]] = []

    def api_ssl_context(self) -> Any:
        """The HTTP API's TLS context: the server's own certificate when the OCPP side runs security profile 2
        or 3 (no client certificate: the API authenticates by token); None (plain HTTP) below."""
        if self.security_profile < 2:
            return None
        return server_ssl_context(2, *self._server_cert, None)

    def spawn(self, coro: Any) -> None:
        """Run a coroutine in a task the central system keeps (and cancels when it stops); its failure is logged
        (info), never left unretrieved."""

        async def guarded() -> None:
            try:
                await coro
            except Exception as exc:  # e.g. the station went away before its inventory was asked
                logger.info("%s failed: %r", getattr(coro, "__name__", "task"), exc)

        task = asyncio.get_running_loop().create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def inventory_status(self) -> dict[str, dict[str, str]]:
        """Station -> report request -> the station's answer (Accepted, NotSupported, timeout, error...)."""
        return self.inventory.status

    def inventory_complete(self, station_id: str) -> bool:
        """The station answered every report request and sent the last part of every report it accepted."""
        return self.inventory.complete(station_id)

    def authorize(self, id_token: dict[str, Any]) -> str:
        """AuthorizationStatus of an id token: Accepted, or Unknown when not among ``allowed_id_tokens``."""
        if self.allowed_id_tokens is None or str(id_token.get("id_token", "")) in self.allowed_id_tokens:
            return "Accepted"
        return "Unknown"

    def touch(self, station_id: str) -> None:
        """A station's traffic: queue its ``last_seen`` for the next group commit when the last one queued is at
        least ``last_seen_every_s`` old (a clock read and a dict look-up per message otherwise)."""
        now = time.monotonic()
        if now - self._seen_written.get(station_id, -math.inf) >= self.last_seen_every_s:
            self._seen_written[station_id] = now
            self._seen[station_id] = dt.datetime.now(dt.UTC)
            if self._wake is not None:
                self._wake.set()

    async def commit(self, ops: Sequence[Op] = (), values: Sequence[ValueBatch] = ()) -> None:
        """Queue store changes for the group-commit writer and wait until they are committed."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((ops, values, fut))
        if self._wake is not None:
            self._wake.set()
        await fut
        if values:
            for listener in self.value_listeners:
                listener(values)

    async def _write_loop(self) -> None:
        """Commit whatever has queued up in one transaction (group commit: one fsync for every message that
        arrived meanwhile), then release every waiting acknowledgement. When a batch fails, its messages are
        committed one by one, so that one bad message fails alone and nothing unstored is acknowledged."""
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending or self._seen:
                batch, self._pending = self._pending, []
                seen, self._seen = self._seen, {}
                ops = [op for o, _, _ in batch for op in o]
                values = [v for _, vs, _ in batch for v in vs]
                try:
                    await asyncio.to_thread(self.store.apply, [*ops, Store.op_seen(seen)] if seen else ops, values)
                except Exception:
                    if seen:  # last_seen alone; nobody waits for it, a failure is logged
                        try:
                            await asyncio.to_thread(self.store.apply, [Store.op_seen(seen)])
                        except Exception as exc:
                            logger.warning("last_seen of %d stations not written: %r", len(seen), exc)
                    for o, vs, fut in batch:
                        try:
                            await asyncio.to_thread(self.store.apply, o, vs)
                        except Exception as exc:  # that handler answers with an error, nothing acknowledged
                            if not fut.done():
                                fut.set_exception(exc)
                        else:
                            self.committed_values += sum(len(rows) for _, _, rows in vs)
                            if not fut.done():
                                fut.set_result(None)
                    self.store_version += 1
                    continue
                self.committed_values += sum(len(rows) for _, _, rows in values)
                if ops or seen:
                    self.store_version += 1
                for *_, fut in batch:
                    if not fut.done():
                        fut.set_result(None)

    async def _handler(self, connection: ServerConnection) -> None:
        path = connection.request.path if connection.request is not None else "/"
        station_id = path.strip("/")
        if connection.subprotocol not in SUBPROTOCOLS:
            await connection.close(1002, f"subprotocol {' or '.join(SUBPROTOCOLS)} required")
            return
        if not STATION_ID.match(station_id):
            await connection.close(1008, "invalid station id")
            return
        if self.security_profile == 3:
            ssl_obj = connection.transport.get_extra_info("ssl_object") if connection.transport else None
            cert = ssl_obj.getpeercert() if ssl_obj is not None else None
            cn = dict(x[0] for x in cert.get("subject", ())).get("commonName") if cert else None
            if cn != station_id:
                await connection.close(1008, "client certificate does not belong to this station")
                return
        older = self._connections.get(station_id)
        if older is not None:
            await older.close(1000, "replaced by a newer connection")
        cls = StationHandler21 if connection.subprotocol == SUBPROTOCOL_21 else StationHandler
        handler = cls(station_id, connection, self.store, self)
        self._connections[station_id] = connection
        self.stations[station_id] = handler
        self.disconnected.discard(station_id)
        self._seen_written[station_id] = time.monotonic()  # the connection op writes last_seen
        try:
            await self.commit([Store.op_connection(station_id, True)])  # once per connection, group-committed
            await handler.start()
        except Exception as exc:  # the connection ended (closed, reset, oversize frame): keep serving others
            logger.info("station %s disconnected: %s", station_id, exc)
        finally:
            if self._connections.get(station_id) is connection:
                del self._connections[station_id]
                del self.stations[station_id]
                self.disconnected.add(station_id)
                self._seen_written.pop(station_id, None)
                await self._record_disconnection(station_id)

    async def _record_disconnection(self, station_id: str) -> None:
        """The store records the end of a station's connection (``connected`` false, ``disconnected_at``)."""
        try:
            await self.commit([Store.op_connection(station_id, False)])
        except Exception as exc:  # the database failed: said, and the other stations are still served
            logger.warning("station %s: disconnection not recorded: %r", station_id, exc)

    async def dispatch(
        self,
        set_points_w: dict[str, float],
        *,
        timeout_s: float = 10.0,
        retries: int = 1,
        profile_id: int = 1,
        duration_s: int | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Send each station a TxDefaultProfile holding it at ``set_points_w[station]`` [W], all at once
        (negative: discharge, for V2X stations on OCPP 2.1; see :func:`build_set_point_request`).

        Returns, per station, ``status`` ('Accepted', 'Rejected', 'timeout', 'not connected', 'disconnected'
        (was connected during this run, is not now), 'not booted' (no BootNotification accepted yet: nothing is
        sent), 'not V2X', 'invalid answer', 'error'), ``latency_s`` of
        the exchange that settled it, ``settled_s`` (time from the start of the whole fan-out to this station's
        outcome) and the number of ``attempts``; every profile sent is recorded in the store with its outcome.
        Each station gets its own frame (:func:`~v2gtwin.cyber.csms.payloads.set_point_frame`). Each call runs in
        its own task, never inside a handler of that station's own message (the ocpp package would deadlock).
        The cyclic garbage collector is paused until the last answer is in
        (:func:`~v2gtwin.cyber.csms.gcpause.gc_paused`).

        ``duration_s``: the profiles' schedule lasts that long from now (``startSchedule`` + ``duration``), after
        which each station falls back to its default; None: held until replaced.

        Raises :class:`~v2gtwin.errors.DataError`, before anything is sent, when a set-point is not finite.
        """
        sent_at = dt.datetime.now(dt.UTC)
        start_iso = sent_at.isoformat(timespec="seconds").replace("+00:00", "Z") if duration_s is not None else None
        loop = asyncio.get_running_loop()
        t_start = loop.time()

        bad = [(sid, w) for sid, w in set_points_w.items() if not math.isfinite(w)]
        if bad:
            raise DataError(f"set_points_w[{bad[0][0]!r}]: {bad[0][1]!r} is not a finite number of W")

        async def one(station_id: str, set_point_w: float) -> tuple[str, dict[str, Any]]:
            sid, out = await one_call(station_id, set_point_w)
            out["settled_s"] = loop.time() - t_start
            return sid, out

        async def one_call(station_id: str, set_point_w: float) -> tuple[str, dict[str, Any]]:
            handler = self.stations.get(station_id)
            if handler is None:
                status = "disconnected" if station_id in self.disconnected else "not connected"
                return station_id, {"status": status, "latency_s": None, "attempts": 0}
            if station_id not in self.booted:
                return station_id, {"status": "not booted", "latency_s": None, "attempts": 0}
            v2x = handler.v2x and handler.version == SUBPROTOCOL_21
            if round(set_point_w, 1) < 0 and not v2x:
                return station_id, {"status": "not V2X", "latency_s": None, "attempts": 0}
            frame = set_point_frame(set_point_w, v2x, profile_id, 1, duration_s, start_iso)  # its own frame
            return station_id, await self._prebuilt_with_retries(
                handler, "SetChargingProfile", frame, timeout_s, retries
            )

        with gc_paused():
            results = dict(await asyncio.gather(*(one(sid, sp) for sid, sp in set_points_w.items())))
        records = [
            {
                "station_id": sid,
                "profile_id": profile_id,
                "purpose": "TxDefaultProfile",
                "setpoint_w": float(set_points_w[sid]),
                "sent_at": sent_at,
                "status": r["status"],
                "latency_s": r["latency_s"],
                "attempts": r["attempts"],
            }
            for sid, r in results.items()
            if r["attempts"] > 0
        ]
        if records:
            await asyncio.to_thread(self.store.add_profile_records, records)
        return results

    async def _prebuilt_with_retries(
        self, handler: Any, action: str, frame_payload: str, timeout_s: float, retries: int
    ) -> dict[str, Any]:
        """One pre-built call with a timeout and retries; the outcome as dispatch reports it."""
        loop = asyncio.get_running_loop()
        last = "error"
        for attempt in range(1, retries + 2):
            t0 = loop.time()
            try:
                answer = await handler.call_prebuilt(action, frame_payload, timeout_s)
                return {"status": str(answer["status"]), "latency_s": loop.time() - t0, "attempts": attempt}
            except TimeoutError:
                last = "timeout"
            except jsonschema.ValidationError as exc:  # an answer that breaks the schema is not retried
                logger.info("invalid answer from %s: %s", handler.id, exc.message)
                return {"status": "invalid answer", "latency_s": None, "attempts": attempt}
            except Exception as exc:  # connection lost mid-call, CALLERROR: recorded, others continue
                logger.info("%s to %s failed: %s", action, handler.id, exc)
                last = "error"
        return {"status": last, "latency_s": None, "attempts": retries + 1}

    async def send(self, station_id: str, action: str, *, timeout_s: float = 10.0, **fields: Any) -> Any:
        """Send one CSMS-initiated call (``action`` a class name of ``ocpp.v201.call``/``v21.call``, fields in
        snake_case) to a connected station and return its answer (the ``ocpp`` package's dataclass).

        Raises LookupError when the station is not connected or has not booted, and TimeoutError when it does not
        answer."""
        handler = self.stations.get(station_id)
        if handler is None:
            raise LookupError(f"station {station_id!r} is not connected")
        if station_id not in self.booted:
            raise LookupError(f"station {station_id!r} has not booted (no BootNotification accepted yet)")
        request = getattr(handler.calls, action)(**fields)
        return await asyncio.wait_for(handler.call(request), timeout_s)

    async def clear_charging_profile(self, station_id: str, profile_id: int | None = None, **kw: Any) -> Any:
        """ClearChargingProfile (one profile by id, or all the station has from this CSMS)."""
        return await self.send(station_id, "ClearChargingProfile", charging_profile_id=profile_id, **kw)

    async def get_composite_schedule(self, station_id: str, duration_s: int, evse_id: int = 1, **kw: Any) -> Any:
        """GetCompositeSchedule in W for the next ``duration_s`` seconds."""
        return await self.send(
            station_id, "GetCompositeSchedule", duration=int(duration_s), evse_id=evse_id, charging_rate_unit="W", **kw
        )

    async def request_start_transaction(
        self, station_id: str, id_token: str, remote_start_id: int, evse_id: int = 1, **kw: Any
    ) -> Any:
        """RequestStartTransaction for ``id_token`` (type Central) on an EVSE."""
        return await self.send(
            station_id,
            "RequestStartTransaction",
            id_token={"id_token": id_token, "type": "Central"},
            remote_start_id=int(remote_start_id),
            evse_id=evse_id,
            **kw,
        )

    async def request_stop_transaction(self, station_id: str, transaction_id: str, **kw: Any) -> Any:
        """RequestStopTransaction of a running transaction."""
        return await self.send(station_id, "RequestStopTransaction", transaction_id=transaction_id, **kw)

    async def _check_basic_auth(self, connection: ServerConnection, request: Any) -> Any:
        """Security profiles 1 and 2: HTTP Basic with the station id as user name (401 otherwise). The scrypt
        check (about 30 ms of CPU) runs in a worker thread, so a reconnect storm does not stall the event loop
        (hashlib's scrypt releases the GIL: two checks run at once on two cores)."""
        if self.security_profile not in (1, 2):
            return None
        station_id = request.path.strip("/")
        header = request.headers.get("Authorization", "")
        try:
            kind, _, b64 = header.partition(" ")
            user, _, password = base64.b64decode(b64, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            kind, user, password = "", "", ""
        if (
            kind != "Basic"
            or user != station_id
            or not await asyncio.to_thread(self.store.check_password, station_id, password)
        ):
            return connection.respond(HTTPStatus.UNAUTHORIZED, "authentication failed\n")
        return None

    async def start(self) -> None:
        """Start listening (returns once the socket is bound; the actual port is in :attr:`port`)."""
        self.booted |= await asyncio.to_thread(self.store.booted_station_ids)
        # No connection survives a restart: stations a killed predecessor left marked connected are not.
        await asyncio.to_thread(self.store.mark_all_disconnected)
        self._wake = asyncio.Event()
        self._writer = asyncio.create_task(self._write_loop())
        self._server = await serve(
            self._handler,
            self.host,
            self.port,
            subprotocols=[Subprotocol(p) for p in SUBPROTOCOLS],
            select_subprotocol=_prefer_21,
            max_size=self.max_message_bytes,
            compression=None,
            process_request=self._check_basic_auth,
            ssl=self._ssl,
        )
        self.port = self._server.sockets[0].getsockname()[1] if self._server.sockets else self.port

    async def stop(self) -> None:
        """Close every connection and the listening socket."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._writer is not None:
            self._writer.cancel()
        for task in list(self._tasks):
            task.cancel()

    async def __aenter__(self) -> Csms:
        """``async with Csms(store, port=0) as csms:`` starts it and stops it on the way out."""
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
