"""The central system's HTTP API and dashboard (FastAPI), served in the central system's own process and event
loop by :class:`~v2gtwin.cyber.csms.api_server.ApiServer`.

Routes under ``/api/v1`` (JSON), every one behind a bearer token (:mod:`v2gtwin.cyber.csms.tokens`; reads may be
opened with ``open_reads``): stations and their state, transactions, meter values (paged, time-filtered),
the EVs' charging needs, set-points (the same :meth:`Csms.dispatch` as ``v2gtwin csms dispatch``, with its
records in the store), the dashboard's data and its event stream. ``/openapi.json`` is the OpenAPI document
(with the bearer security scheme; served without a token: it holds no data) and ``/`` the dashboard page
(static HTML and a small script, no external URL).

A missing or wrong token gets 401 with an empty body. A body that is not parseable JSON, a set-point that is not
a finite number (a string is not taken for a number), or one beyond the declared limits of its station's EV,
gets 422 naming the field (``loc``), and nothing of that request is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from importlib import resources
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from v2gtwin.cyber.csms.api_queries import meter_value_page, parse_time, station_rows, transaction_rows
from v2gtwin.cyber.csms.live_state import LiveState
from v2gtwin.cyber.csms.server import STATION_ID, SUBPROTOCOL_21, Csms
from v2gtwin.cyber.csms.tokens import TokenStore

__all__ = ["SetpointIn", "SetpointsIn", "build_app"]

logger = logging.getLogger(__name__)

_STATION_PATTERN = STATION_ID.pattern
#: Tolerance of the limit check [kW]: set-points are sent rounded to 0.1 W (payloads.set_point_frame).
_LIMIT_TOL_KW = 1e-4


class _UnauthorizedError(Exception):
    """A missing or wrong bearer token."""


class SetpointIn(BaseModel):
    """One set-point: hold EVSE ``evse_id`` of station ``station_id`` at ``p_kw`` [kW] (negative: discharge, for
    an EV that declared V2X on OCPP 2.1). Strict types: ``"p_kw": "3"`` (a string) is a 422, not 3 kW."""

    model_config = ConfigDict(extra="forbid", strict=True)
    station_id: str = Field(pattern=_STATION_PATTERN, description="Station id (1 to 48 of A-Z a-z 0-9 . _ : -).")
    evse_id: int = Field(default=1, ge=1, le=1, description="EVSE id: 1 (the dispatch path sets EVSE 1).")
    p_kw: float = Field(allow_inf_nan=False, ge=-1e6, le=1e6, description="Set-point [kW], finite.")


class SetpointsIn(BaseModel):
    """A dispatch: set-points (one per station) and the per-call time-out [s]."""

    model_config = ConfigDict(extra="forbid", strict=True)
    setpoints: list[SetpointIn] = Field(min_length=1, max_length=100_000)
    timeout_s: float = Field(default=10.0, ge=0.1, le=600.0, allow_inf_nan=False, description="Per-call time-out [s].")
    duration_s: int | None = Field(
        default=None,
        ge=1,
        le=86_400,
        description="How long the set-points hold [s] (the profile's schedule duration from now); after it each "
        "station falls back to its default. Omitted: held until replaced.",
    )


class SetpointResult(BaseModel):
    """A station's outcome: ``status`` as :meth:`Csms.dispatch` gives it (Accepted, Rejected, timeout, not
    connected, disconnected, not booted, not V2X, invalid answer, error), the latency of the exchange that
    settled it [s] (None when nothing was answered), and ``error`` (None, or the reason in words)."""

    station_id: str
    status: str
    latency_s: float | None
    settled_s: float | None = None
    attempts: int = 0
    error: str | None = None


class SetpointsOut(BaseModel):
    results: list[SetpointResult]


class EvseOut(BaseModel):
    evse_id: int
    status: str
    p_kw: float | None = Field(description="Latest measured grid-side power [kW] (import positive).")
    soc_pu: float | None = Field(description="Latest reported state of charge [-].")
    measured_at: str | None = Field(description="The station's timestamp of the latest value.")
    transaction_id: str | None
    p_max_kw: float | None = Field(description="The EV's declared charging limit [kW] (None: none declared).")
    p_min_kw: float | None = Field(description="Lowest set-point allowed [kW] (0, or minus the discharge limit).")
    v2x: bool


class StationOut(BaseModel):
    station_id: str
    connected: bool
    status: str
    last_seen: str | None
    vendor: str
    model: str
    protocol: str | None
    evses: list[EvseOut]


class StationsOut(BaseModel):
    stations: list[StationOut]


class NeedOut(BaseModel):
    station_id: str
    evse_id: int
    departure_time: str | None
    e_request_kwh: float | None = Field(description="Energy the EV asked for [kWh] (NotifyEVChargingNeeds).")
    soc_pu: float | None
    p_max_kw: float | None
    p_min_kw: float | None
    v2x: bool


class NeedsOut(BaseModel):
    needs: list[NeedOut]


def _dumps(obj: Any) -> bytes:
    """Strict JSON (a non-finite number is an error, never NaN on the wire)."""
    return json.dumps(obj, allow_nan=False, separators=(",", ":")).encode()


def _json(obj: Any, status_code: int = 200) -> Response:
    return Response(_dumps(obj), status_code=status_code, media_type="application/json")


def _kw(w: float | None) -> float | None:
    return None if w is None else w / 1000.0


def _limits_kw(csms: Csms, station_id: str) -> tuple[float | None, float | None]:
    """A connected station's (p_max_kw, p_min_kw): its EV's declared limits; p_min 0 unless the EV declared V2X
    on OCPP 2.1; (None, None) when the station is not connected."""
    handler = csms.stations.get(station_id)
    if handler is None:
        return None, None
    p_max_w, p_min_w = handler.p_limits_w
    v2x = handler.v2x and handler.version == SUBPROTOCOL_21
    return _kw(p_max_w), (_kw(p_min_w) if v2x else 0.0)


def _validation_422(errors: list[dict[str, Any]]) -> Response:
    return _json({"detail": errors}, 422)


def build_app(csms: Csms, tokens: TokenStore, live: LiveState, *, open_reads: bool = False) -> FastAPI:
    """The API of a running central system (see the module docstring). ``open_reads``: GET routes without a
    token (writes always need one)."""
    app = FastAPI(
        title="v2gtwin central system API",
        version="1",
        docs_url=None,
        redoc_url=None,
        description="Stations, telemetry and set-points of a running v2gtwin central system (OCPP 2.0.1 / 2.1).",
    )
    app.state.stopping = asyncio.Event()

    def _token(request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        kind, _, value = header.partition(" ")
        return value.strip() if kind.lower() == "bearer" and value.strip() else None

    def need_write(request: Request) -> None:
        token = _token(request)
        if token is None or not tokens.check(token):
            raise _UnauthorizedError

    def need_read(request: Request) -> None:
        if not open_reads:
            need_write(request)

    @app.exception_handler(_UnauthorizedError)
    async def _unauthorized(_request: Request, _exc: _UnauthorizedError) -> Response:
        return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        # FastAPI answers a body it cannot parse (not JSON, nested too deep) with 400: the API says 422 for every
        # malformed body, naming the field ("body").
        if exc.status_code == 400:
            return _validation_422([{"loc": ["body"], "msg": "not parseable JSON", "type": "json_invalid"}])
        return await http_exception_handler(_request, exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> Response:
        # The field (loc), the message and the type; not the input (it may be large, or not JSON-safe: NaN).
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in exc.errors()[:20]
        ]
        return _validation_422(errors)

    read = [Depends(need_read)]
    write = [Depends(need_write)]

    cache: dict[str, Any] = {"version": None}

    async def station_tables() -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]], dict[Any, str]]:
        """The stations, EVSEs and active transactions as stored: read again only when the central system
        committed a change to them since the last read (``Csms.store_version``; meter values do not count)."""
        version = csms.store_version
        if cache["version"] != version:

            def read() -> tuple[Any, Any, Any]:
                rows, evses = station_rows(csms.store)
                active = transaction_rows(csms.store, True, None)
                return rows, evses, {(t["station_id"], t["evse_id"]): t["transaction_id"] for t in active}

            cache["tables"] = await asyncio.to_thread(read)
            cache["version"] = version
        tables: tuple[Any, Any, Any] = cache["tables"]
        return tables

    @app.get("/api/v1/stations", response_model=StationsOut, dependencies=read)
    async def stations() -> Response:
        """Every station the store knows, connected or not, with each EVSE's latest measured power and SoC,
        its transaction and its EV's declared power limits."""
        rows, evses, tx = await station_tables()
        out_rows = []
        for st in rows:
            sid = st["station_id"]
            handler = csms.stations.get(sid)
            connected = handler is not None  # this process's view (the store's flag is written on change)
            st = {**st, "connected": connected, "protocol": handler.version if handler is not None else None}
            p_max, p_min = _limits_kw(csms, sid)
            out = []
            for ev in evses.get(sid, []):
                tel = live.evses.get((sid, ev["evse_id"]))
                out.append(
                    {
                        "evse_id": ev["evse_id"],
                        "status": ev["status"],
                        "p_kw": _kw(tel.p_w) if tel else None,
                        "soc_pu": tel.soc_pu if tel else None,
                        "measured_at": (tel.measured_at or None) if tel else None,
                        "transaction_id": tx.get((sid, ev["evse_id"])),
                        "p_max_kw": p_max,
                        "p_min_kw": p_min,
                        "v2x": ev["v2x"],
                    }
                )
            out_rows.append({**st, "evses": out})
        return _json({"stations": out_rows})

    @app.get("/api/v1/transactions", dependencies=read)
    async def transactions(
        active: Annotated[bool | None, Query(description="true: not Ended; false: Ended; absent: all.")] = None,
        station_id: Annotated[str | None, Query(pattern=_STATION_PATTERN)] = None,
    ) -> Response:
        """Transactions as the stations reported them (TransactionEvent)."""
        rows = await asyncio.to_thread(transaction_rows, csms.store, active, station_id)
        return _json({"transactions": rows})

    @app.get("/api/v1/meter-values", dependencies=read)
    async def meter_values(
        station_id: Annotated[str | None, Query(pattern=_STATION_PATTERN)] = None,
        since: Annotated[str | None, Query(description="ISO 8601 time (inclusive); no zone: UTC.")] = None,
        until: Annotated[str | None, Query(description="ISO 8601 time (exclusive); no zone: UTC.")] = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
        cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$", description="next_cursor of a page.")] = None,
        measurand: Annotated[str | None, Query(max_length=64)] = None,
    ) -> Response:
        """Stored meter values, oldest first, ``limit`` per page; ``next_cursor`` (None: no more) gives the
        next page."""
        bounds = {}
        for name, text in (("since", since), ("until", until)):
            if text is not None:
                t = parse_time(text)
                if t is None:
                    return _validation_422(
                        [
                            {
                                "loc": ["query", name],
                                "msg": "an ISO 8601 time, e.g. 2026-11-27T17:00:00Z",
                                "type": "value_error",
                            }
                        ]
                    )
                bounds[name] = t
        page = await asyncio.to_thread(
            meter_value_page,
            csms.store,
            station_id=station_id,
            since=bounds.get("since"),
            until=bounds.get("until"),
            limit=limit,
            cursor=int(cursor) if cursor is not None else 0,
            measurand=measurand,
        )
        return _json(page)

    @app.get("/api/v1/charging-needs", response_model=NeedsOut, dependencies=read)
    async def charging_needs() -> Response:
        """What the EVs plugged into connected stations declared (NotifyEVChargingNeeds): departure time,
        energy requested, power limits, V2X; with the latest SoC. An EVSE whose last status is Available (no
        EV) is left out."""
        rows, evses, _ = await station_tables()
        needs = []
        for st in rows:
            sid = st["station_id"]
            if sid not in csms.stations:
                continue
            p_max, p_min = _limits_kw(csms, sid)
            for ev in evses.get(sid, []):
                if ev["status"] == "Available" or (ev["departure_time"] is None and ev["energy_amount_wh"] is None):
                    continue
                tel = live.evses.get((sid, ev["evse_id"]))
                e_wh = ev["energy_amount_wh"]
                needs.append(
                    {
                        "station_id": sid,
                        "evse_id": ev["evse_id"],
                        "departure_time": ev["departure_time"],
                        "e_request_kwh": None if e_wh is None else e_wh / 1000.0,
                        "soc_pu": tel.soc_pu if tel else None,
                        "p_max_kw": p_max,
                        "p_min_kw": p_min,
                        "v2x": ev["v2x"],
                    }
                )
        return _json({"needs": needs})

    @app.post("/api/v1/setpoints", response_model=SetpointsOut, dependencies=write)
    async def setpoints(body: SetpointsIn) -> Response:
        """Send each station its set-point (a TxDefaultProfile, as ``v2gtwin csms dispatch``) and answer with
        every station's outcome. Checked first, nothing sent otherwise: one set-point per station, each within
        its EV's declared limits (a station whose EV declared none: not below 0 unless V2X)."""
        errors = []
        seen: set[str] = set()
        for i, sp in enumerate(body.setpoints):
            loc = ["body", "setpoints", i]
            if sp.station_id in seen:
                errors.append(
                    {"loc": [*loc, "station_id"], "msg": f"{sp.station_id!r} given twice", "type": "value_error"}
                )
            seen.add(sp.station_id)
            p_max, p_min = _limits_kw(csms, sp.station_id)
            if p_max is not None and sp.p_kw > p_max + _LIMIT_TOL_KW:
                errors.append(
                    {
                        "loc": [*loc, "p_kw"],
                        "msg": f"above the EV's declared limit of {p_max:.4g} kW",
                        "type": "value_error",
                    }
                )
            elif p_min is not None and sp.p_kw < p_min - _LIMIT_TOL_KW:
                what = "discharge limit" if p_min < 0 else "limit (no V2X declared on OCPP 2.1)"
                errors.append(
                    {"loc": [*loc, "p_kw"], "msg": f"below {p_min:.4g} kW, the EV's {what}", "type": "value_error"}
                )
            if len(errors) >= 20:
                break
        if errors:
            return _validation_422(errors)
        set_points_w = {sp.station_id: sp.p_kw * 1000.0 for sp in body.setpoints}
        v2x = {sid: bool(h.v2x and h.version == SUBPROTOCOL_21) for sid, h in csms.stations.items()}
        results = await csms.dispatch(set_points_w, timeout_s=body.timeout_s, duration_s=body.duration_s)
        live.on_dispatch(set_points_w, results, v2x)
        out = []
        for sid, r in results.items():
            ok = r["status"] == "Accepted"
            out.append(
                {
                    "station_id": sid,
                    "status": r["status"],
                    "latency_s": r["latency_s"],
                    "settled_s": r.get("settled_s"),
                    "attempts": r["attempts"],
                    "error": None if ok else str(r["status"]),
                }
            )
        return _json({"results": out})

    def _dashboard_state() -> dict[str, Any]:
        connected = set(csms.stations)
        by_state: dict[str, int] = {}
        for sid in connected:
            ev = live.evses.get((sid, 1))
            handler_state = (
                "charging"
                if ev and ev.p_w and ev.p_w > 0
                else ("discharging" if ev and ev.p_w and ev.p_w < 0 else "idle")
            )
            by_state[handler_state] = by_state.get(handler_state, 0) + 1
        by_state["disconnected"] = len(csms.disconnected)
        return {
            "now": live.fleet_now(connected),
            "stations_connected": len(connected),
            "stations_by_state": by_state,
            "last_dispatch": live.last_dispatch,
            "alarms": live.alarm_list(connected),
            "alarm_settings": {
                "stale_after_s": live.alarms.stale_after_s,
                "settle_s": live.alarms.settle_s,
                "tolerance_kw": live.alarms.tolerance_kw,
            },
        }

    @app.get("/api/v1/dashboard", dependencies=read)
    async def dashboard_data() -> Response:
        """The dashboard's state now and the fleet's history (power [kW] and mean SoC [-] every
        ``sample_every_s`` over the last ``history_h`` hours)."""
        return _json({**_dashboard_state(), "history": list(live.history)})

    @app.get("/api/v1/events", dependencies=read)
    async def events(request: Request) -> StreamingResponse:
        """Server-sent events: an ``update`` event (the dashboard's state, JSON) at once and then about every
        second while something changed (at least every 15 s). The stream ends when its token is revoked."""
        token = _token(request)

        async def stream() -> AsyncIterator[bytes]:
            last_version, last_sent = -1, 0.0
            loop = asyncio.get_running_loop()
            while not app.state.stopping.is_set():
                if not open_reads and (token is None or not tokens.check(token)):
                    return
                if live.version != last_version or loop.time() - last_sent >= 15.0:
                    last_version, last_sent = live.version, loop.time()
                    yield b"event: update\ndata: " + _dumps(_dashboard_state()) + b"\n\n"
                if await request.is_disconnected():
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(app.state.stopping.wait(), 1.0)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def dashboard_page() -> HTMLResponse:
        """The dashboard (no token needed for the page itself: it holds no data; its script asks the API with
        the token given in the address's fragment, ``/#token=...``)."""
        html = resources.files("v2gtwin.cyber.csms").joinpath("dashboard.html").read_text(encoding="utf-8")
        return HTMLResponse(html, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})

    def openapi() -> dict[str, Any]:
        """The OpenAPI document, with the bearer scheme every ``/api/v1`` route requires (the document itself is
        served without a token: it describes the routes and holds no data)."""
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            doc.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer", "description": "A token from 'csms token create'."}
            }
            for path, ops in doc.get("paths", {}).items():
                if path.startswith("/api/v1"):
                    for op in ops.values():
                        op["security"] = [{"bearer": []}]
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        logger.warning("API error: %r", exc)
        return JSONResponse({"detail": "internal error"}, status_code=500)

    return app
