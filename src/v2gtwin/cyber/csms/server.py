"""OCPP 2.0.1 central system server: the `ocpp` package's message layer (routing and JSON-schema validation
of every incoming frame) on the `websockets` asyncio server.

Stations connect at ``ws://HOST:PORT/<station_id>`` with subprotocol ``ocpp2.0.1``; connections without it, or
with a station id outside ``[A-Za-z0-9._:-]{1,48}``, are refused. A newer connection of the same station
replaces the older one (which is closed). MeterValues and TransactionEvent are answered only after their
values are committed to the store.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import logging
import re
import ssl
from http import HTTPStatus
from typing import Any

from ocpp.routing import on
from ocpp.v201 import ChargePoint, call, call_result
from ocpp.v201.enums import Action, RegistrationStatusEnumType
from websockets.asyncio.server import ServerConnection, serve
from websockets.typing import Subprotocol

from v2gtwin.cyber.csms.store import Store

__all__ = ["SUBPROTOCOL", "Csms", "StationHandler"]

logger = logging.getLogger(__name__)

SUBPROTOCOL = "ocpp2.0.1"
STATION_ID = re.compile(r"^[A-Za-z0-9._:-]{1,48}$")
HEARTBEAT_INTERVAL_S = 300


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class StationHandler(ChargePoint):
    """One connected station: the handlers of the messages it sends."""

    def __init__(self, station_id: str, connection: Any, store: Store, csms: Csms | None = None) -> None:
        super().__init__(station_id, connection)
        self.store = store
        self.csms = csms

    async def _store_values(self, evse_id: int, rows: list[tuple[str, str, float, str]]) -> None:
        """Commit before returning: through the central system's group-commit writer when there is one."""
        if self.csms is not None:
            await self.csms.commit_meter_values(self.id, evse_id, rows)
        else:
            await asyncio.to_thread(self.store.add_meter_values, self.id, evse_id, rows)

    @on(Action.boot_notification)  # type: ignore[untyped-decorator,unused-ignore]
    async def on_boot(self, charging_station: dict[str, Any], reason: str, **_: Any) -> Any:
        await asyncio.to_thread(
            self.store.upsert_station,
            self.id,
            charging_station.get("vendor_name", ""),
            charging_station.get("model", ""),
        )
        return call_result.BootNotification(
            current_time=_now(), interval=HEARTBEAT_INTERVAL_S, status=RegistrationStatusEnumType.accepted
        )

    @on(Action.heartbeat)  # type: ignore[untyped-decorator,unused-ignore]
    async def on_heartbeat(self, **_: Any) -> Any:
        return call_result.Heartbeat(current_time=_now())

    @on(Action.status_notification)  # type: ignore[untyped-decorator,unused-ignore]
    async def on_status(self, connector_status: str, **_: Any) -> Any:
        await asyncio.to_thread(self.store.upsert_station, self.id, status=str(connector_status))
        return call_result.StatusNotification()

    @on(Action.meter_values)  # type: ignore[untyped-decorator,unused-ignore]
    async def on_meter_values(self, evse_id: int, meter_value: list[dict[str, Any]], **_: Any) -> Any:
        await self._store_values(int(evse_id), _rows(meter_value))
        return call_result.MeterValues()

    @on(Action.transaction_event)  # type: ignore[untyped-decorator,unused-ignore]
    async def on_transaction_event(
        self, evse: dict[str, Any] | None = None, meter_value: list[dict[str, Any]] | None = None, **_: Any
    ) -> Any:
        if meter_value:
            await self._store_values(int((evse or {}).get("id", 0)), _rows(meter_value))
        return call_result.TransactionEvent()


def _rows(meter_value: list[dict[str, Any]]) -> list[tuple[str, str, float, str]]:
    rows = []
    for mv in meter_value:
        ts = str(mv.get("timestamp", ""))
        for sv in mv.get("sampled_value", []):
            unit = (sv.get("unit_of_measure") or {}).get("unit", "Wh")
            rows.append((ts, str(sv.get("measurand", "Energy.Active.Import.Register")), float(sv["value"]), unit))
    return rows


class Csms:
    """The central system: accepts stations, routes their messages, keeps the latest connection per station.

    Parameters
    ----------
    store : the durable store. host, port : where to listen (127.0.0.1 by default; port 0 picks a free one).
    max_message_bytes : largest accepted frame; larger ones close that connection (1009).
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
    ):
        if security_profile not in (0, 1, 2, 3):
            raise ValueError(f"security_profile: 0 (none, development), 1, 2 or 3; got {security_profile}")
        if security_profile >= 2 and not (certfile and keyfile):
            raise ValueError("security profiles 2 and 3 need the server certificate and key (csms pki init)")
        if security_profile == 3 and not cafile:
            raise ValueError("security profile 3 needs the CA that signs the station certificates")
        self.security_profile = security_profile
        self._tls = (certfile, keyfile, cafile)
        self.store = store
        self.host = host
        self.port = port
        self.max_message_bytes = max_message_bytes
        self.stations: dict[str, StationHandler] = {}
        self._connections: dict[str, ServerConnection] = {}
        self._server: Any = None
        self._pending: list[tuple[str, int, list[tuple[str, str, float, str]], asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None

    async def commit_meter_values(self, station_id: str, evse_id: int, rows: list[tuple[str, str, float, str]]) -> None:
        """Queue values for the group-commit writer and wait until they are committed."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((station_id, evse_id, rows, fut))
        if self._wake is not None:
            self._wake.set()
        await fut

    async def _write_loop(self) -> None:
        """Commit whatever has queued up in one transaction, then release every waiting acknowledgement."""
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    await asyncio.to_thread(self.store.add_meter_batches, [(s, e, r) for s, e, r, _ in batch])
                except Exception as exc:  # the waiting handlers answer with an error, nothing is acknowledged
                    for *_, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    continue
                for *_, fut in batch:
                    if not fut.done():
                        fut.set_result(None)

    async def _handler(self, connection: ServerConnection) -> None:
        path = connection.request.path if connection.request is not None else "/"
        station_id = path.strip("/")
        if connection.subprotocol != SUBPROTOCOL:
            await connection.close(1002, f"subprotocol {SUBPROTOCOL} required")
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
        handler = StationHandler(station_id, connection, self.store, self)
        self._connections[station_id] = connection
        self.stations[station_id] = handler
        try:
            await handler.start()
        except Exception as exc:  # the connection ended (closed, reset, oversize frame): keep serving others
            logger.info("station %s disconnected: %s", station_id, exc)
        finally:
            if self._connections.get(station_id) is connection:
                del self._connections[station_id]
                del self.stations[station_id]

    async def dispatch(
        self, limits_w: dict[str, float], *, timeout_s: float = 10.0, retries: int = 1
    ) -> dict[str, dict[str, Any]]:
        """Send each station a TxDefaultProfile capping its charging at ``limits_w[station]`` [W], all at once.

        Returns, per station, ``status`` ('Accepted', 'Rejected', 'timeout', 'not connected', 'error'),
        ``latency_s`` of the exchange that settled it and the number of ``attempts``. Each call runs in its own
        task, never inside a handler of that station's own message (the ocpp package would deadlock).
        """

        async def one(station_id: str, limit_w: float) -> tuple[str, dict[str, Any]]:
            handler = self.stations.get(station_id)
            if handler is None:
                return station_id, {"status": "not connected", "latency_s": None, "attempts": 0}
            profile = {
                "id": 1,
                "stack_level": 0,
                "charging_profile_purpose": "TxDefaultProfile",
                "charging_profile_kind": "Absolute",
                "charging_schedule": [
                    {
                        "id": 1,
                        "charging_rate_unit": "W",
                        "charging_schedule_period": [{"start_period": 0, "limit": round(float(limit_w), 1)}],
                    }
                ],
            }
            for attempt in range(1, retries + 2):
                t0 = asyncio.get_running_loop().time()
                try:
                    res = await asyncio.wait_for(
                        handler.call(call.SetChargingProfile(evse_id=1, charging_profile=profile)), timeout_s
                    )
                    return station_id, {
                        "status": str(getattr(res.status, "value", res.status)),
                        "latency_s": asyncio.get_running_loop().time() - t0,
                        "attempts": attempt,
                    }
                except TimeoutError:
                    last = "timeout"
                except Exception as exc:  # connection lost mid-call: recorded, others continue
                    logger.info("dispatch to %s failed: %s", station_id, exc)
                    last = "error"
            return station_id, {"status": last, "latency_s": None, "attempts": retries + 1}

        results = await asyncio.gather(*(one(sid, lim) for sid, lim in limits_w.items()))
        return dict(results)

    def _check_basic_auth(self, connection: ServerConnection, request: Any) -> Any:
        """Security profiles 1 and 2: HTTP Basic with the station id as user name (401 otherwise)."""
        if self.security_profile not in (1, 2):
            return None
        station_id = request.path.strip("/")
        header = request.headers.get("Authorization", "")
        try:
            kind, _, b64 = header.partition(" ")
            user, _, password = base64.b64decode(b64, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            kind, user, password = "", "", ""
        if kind != "Basic" or user != station_id or not self.store.check_password(station_id, password):
            return connection.respond(HTTPStatus.UNAUTHORIZED, "authentication failed\n")
        return None

    def _ssl_context(self) -> ssl.SSLContext | None:
        if self.security_profile < 2:
            return None
        certfile, keyfile, cafile = self._tls
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.options |= ssl.OP_NO_COMPRESSION
        ctx.load_cert_chain(certfile, keyfile)  # type: ignore[arg-type]
        if self.security_profile == 3:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(cafile)
        return ctx

    async def start(self) -> None:
        """Start listening (returns once the socket is bound; the actual port is in :attr:`port`)."""
        self._wake = asyncio.Event()
        self._writer = asyncio.create_task(self._write_loop())
        self._server = await serve(
            self._handler,
            self.host,
            self.port,
            subprotocols=[Subprotocol(SUBPROTOCOL)],
            max_size=self.max_message_bytes,
            process_request=self._check_basic_auth,
            ssl=self._ssl_context(),
        )
        self.port = self._server.sockets[0].getsockname()[1] if self._server.sockets else self.port

    async def stop(self) -> None:
        """Close every connection and the listening socket."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._writer is not None:
            self._writer.cancel()

    async def serve_forever(self) -> None:
        """Start and serve until cancelled."""
        await self.start()
        try:
            await asyncio.Future()
        finally:
            await self.stop()
