"""Simulated charging stations: `ocpp` client stations over websockets that boot, plug in an EV, obey charging
profiles (their power and the EV's state of charge follow) and report meter values.

Each station has one EVSE and one EV (:class:`SimEV`: battery, state of charge, power limit, V2X). A V2X EV's
station speaks OCPP 2.1 and declares ``AC_BPT`` in NotifyEVChargingNeeds, so the central system may send it a
discharge set-point; the others speak 2.0.1. Stations reconnect with exponential back-off and jitter when the
connection fails or drops (any close but 1000 / 1001), as real chargers do (OCPP 2.0.1 part 4, RetryBackOff),
so that a reconnect storm settles. Used by the tests, the load benchmark, ``v2gtwin csms simulate`` and the study.

Kept free of the numeric stack: the EVs are plain values (``v2gtwin.cli`` draws them from the fleet model).

A simulated station takes a well-formed SetChargingProfile on a short path: it reads the set-point from the
frame and answers ``Accepted`` itself, without the ``ocpp`` package's routing (key conversion, signature
inspection, dataclass round trip and schema validation: about 90 us of CPU per profile against 10 us, which
made the 10,000-station load benchmark measure the simulator rather than the central system). Anything else,
including a SetChargingProfile the short path cannot read, goes through the package and the schema validation
of its own schemas (compiled, scoped to the simulated stations' classes: see :mod:`v2gtwin.cyber.csms.validation`).
What the central system sends is validated by the tests' own stations, by the third-party interop peer
(strict mode) and by a property test of every profile shape against the OCPP schemas. A large fleet in a process
of its own can be frozen out of the cyclic garbage collector once connected (``run_fleet(freeze_gc=True)``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import json
import logging
import math
import random
import time
from dataclasses import dataclass
from typing import Any

from ocpp import v21, v201
from ocpp.charge_point import snake_to_camel_case
from ocpp.routing import after, on
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.typing import Subprotocol

from v2gtwin.cyber.csms.server import SUBPROTOCOL, SUBPROTOCOL_21
from v2gtwin.cyber.csms.sim_report import SimSettings, der_control_lists, device_model_report, now_iso
from v2gtwin.cyber.csms.validation import CompiledValidation

__all__ = [
    "CentralSystemLostError",
    "SimEV",
    "SimSettings",
    "SimStation",
    "SimStation21",
    "run_fleet",
    "run_station",
]

logger = logging.getLogger(__name__)

# A clean close (normal closure, going away) ends a simulated station; anything else (abnormal closure, server
# error, service restart, try again later) makes it reconnect.
_FINAL_CLOSE_CODES = (1000, 1001)


class CentralSystemLostError(ConnectionError):
    """Every simulated station had connected, and every one failed afterwards: the central system went away."""


def ev_max_current_a(p_max_w: float, v_line_v: float = 400.0) -> int:
    """Per-phase current (A) an EV with a ``p_max_w`` charger declares in AC needs: the nearest whole ampere of
    ``p_max_w / (sqrt(3)·V)`` (three phases, ``v_line_v`` line to line), at least 6 A (the IEC 61851-1 minimum).

    The simulated EV then draws exactly what it declares (:func:`declared_power_w`), so a set-point the station
    shows is one the API accepts and the EV follows (before, 7200 W / 690 declared 10 A = 6.93 kW for an EV
    drawing 7.2 kW, and the API refused the 7.2 kW that /stations showed).
    """
    return max(6, round(p_max_w / (math.sqrt(3.0) * v_line_v)))


def declared_power_w(p_max_w: float, v_line_v: float = 400.0) -> float:
    """The three-phase power sqrt(3)·V·I [W] of the current :func:`ev_max_current_a` declares: the simulated
    EV's power limit, both ways (computed as the central system does from the needs)."""
    return math.sqrt(3.0) * v_line_v * float(ev_max_current_a(p_max_w, v_line_v))


@dataclass(frozen=True)
class SimEV:
    """The EV plugged into a simulated station.

    capacity_kwh : usable battery [kWh]. soc0_pu : state of charge on arrival [-]. p_max_w : nominal
    charging (and, with ``v2x``, discharging) power [W]; the EV declares, and draws at most, the three-phase
    power of the nearest whole ampere (:func:`declared_power_w`: 11 kW -> 16 A -> 11.085 kW).
    target_soc_pu : what the driver wants at departure [-]. departure_h : hours until departure [h].
    efficiency : one-way charge/discharge efficiency [-].
    """

    capacity_kwh: float = 60.0
    soc0_pu: float = 0.4
    p_max_w: float = 11_000.0
    v2x: bool = False
    target_soc_pu: float = 0.8
    departure_h: float = 8.0
    efficiency: float = 0.95


class _SimBehaviour:
    """What both protocol versions' simulated stations do."""

    id: str
    ev: SimEV
    soc_pu: float
    limit_w: float
    energy_wh: float
    profiles: list[dict[str, Any]]
    calls: Any
    calls_result: Any
    call: Any
    _send: Any
    settings: SimSettings
    _tasks: set[asyncio.Task[Any]]

    def _setup(self, ev: SimEV, settings: SimSettings | None = None) -> None:
        self.ev = ev
        self.settings = settings or SimSettings()
        self._tasks = set()
        self.soc_pu = ev.soc0_pu
        self.p_max_w = declared_power_w(ev.p_max_w)  # what it declares is what it draws at most, both ways
        self.limit_w = self.p_max_w
        self.expires_at: float | None = None
        self.tx_id = f"{self.id}-tx"
        self.tx_seq = -1  # no transaction started yet
        self.energy_wh = 0.0
        self.profiles = []

    def _apply_profile(self, charging_profile: dict[str, Any]) -> None:
        """Hold the EV at the first period's set-point (``setpoint`` for a V2X EV, else ``limit``), within its
        power limits. ``charging_profile`` in wire format (camelCase); kept in :attr:`profiles`."""
        period = charging_profile["chargingSchedule"][0]["chargingSchedulePeriod"][0]
        if "setpoint" in period and self.ev.v2x:
            target = float(period["setpoint"])
        else:
            target = float(period.get("limit", self.p_max_w))
        low = -self.p_max_w if self.ev.v2x else 0.0
        self.limit_w = max(low, min(target, self.p_max_w))
        duration = charging_profile["chargingSchedule"][0].get("duration")
        # The schedule's duration counts from receipt (the simulator's clock, not startSchedule: no clock skew here)
        self.expires_at = None if duration is None else time.monotonic() + float(duration)
        self.profiles.append(charging_profile)

    async def route_message(self, raw_msg: str | bytes) -> None:
        """The short path for a well-formed SetChargingProfile CALL (see the module's docstring); every other
        frame goes to the ``ocpp`` package's router."""
        if isinstance(raw_msg, str) and '"SetChargingProfile"' in raw_msg[:120]:
            try:
                msg = json.loads(raw_msg)
                ok = msg[0] == 2 and msg[2] == "SetChargingProfile" and isinstance(msg[1], str)
                if ok:
                    self._apply_profile(msg[3]["chargingProfile"])
            except (ValueError, TypeError, LookupError):
                ok = False
            if ok:
                await self._send(f'[3,{json.dumps(msg[1])},{{"status":"Accepted"}}]')
                return
        await super().route_message(raw_msg)  # type: ignore[misc]

    def power_w(self) -> float:
        """Grid-side power now: the profile's set-point, within what the battery can still take or give; once a
        profile's schedule ``duration`` has passed, the default again (the EV's declared maximum charging power)."""
        if self.expires_at is not None and time.monotonic() >= self.expires_at:
            self.limit_w, self.expires_at = self.p_max_w, None
        if self.limit_w > 0 and self.soc_pu >= 1.0:
            return 0.0
        if self.limit_w < 0 and self.soc_pu <= 0.0:
            return 0.0
        return self.limit_w

    def _later(self, coro: Any) -> None:
        """Send a call of the station's own after answering the central system's (never from inside a handler:
        the ``ocpp`` package would deadlock), in a task the station keeps."""

        async def guarded() -> None:
            try:
                await coro
            except Exception as exc:  # the connection went away meanwhile: said at info level, never unretrieved
                logger.info("station %s: %s failed: %r", self.id, getattr(coro, "__name__", "call"), exc)

        task = asyncio.get_running_loop().create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_report(self, request_id: int) -> None:
        """The device model in one NotifyReport (:func:`~v2gtwin.cyber.csms.sim_report.device_model_report`)."""
        data = device_model_report(self.settings, self.ev.p_max_w, self.power_w())
        await self.call(
            self.calls.NotifyReport(request_id=request_id, generated_at=now_iso(), seq_no=0, report_data=data)
        )

    @on("GetBaseReport")  # type: ignore[untyped-decorator,unused-ignore]
    def on_get_base_report(self, request_id: int, report_base: str, **_: Any) -> Any:
        return self.calls_result.GetBaseReport(status="Accepted")

    @after("GetBaseReport")  # type: ignore[untyped-decorator,unused-ignore]
    def after_get_base_report(self, request_id: int, **_: Any) -> None:
        self._later(self._send_report(int(request_id)))

    async def boot(self) -> Any:
        """BootNotification, then the EV plugs in: StatusNotification Occupied and NotifyEVChargingNeeds."""
        station: dict[str, Any] = {
            "model": self.settings.model,
            "vendor_name": self.settings.vendor,
            "firmware_version": self.settings.firmware,
        }
        if self.settings.serial_number:
            station["serial_number"] = self.settings.serial_number
        ans = await self.call(self.calls.BootNotification(charging_station=station, reason="PowerUp"))
        now = _now()
        await self.call(
            self.calls.StatusNotification(timestamp=now, connector_status="Occupied", evse_id=1, connector_id=1)
        )
        mode = "AC_BPT" if self.ev.v2x else "AC_three_phase"
        needs: dict[str, Any] = {
            "requested_energy_transfer": mode,
            "departure_time": (dt.datetime.now(dt.UTC) + dt.timedelta(hours=self.ev.departure_h))
            .isoformat(timespec="seconds")
            .replace("+00:00", "Z"),
            "ac_charging_parameters": {
                "energy_amount": max(0, round((self.ev.target_soc_pu - self.soc_pu) * self.ev.capacity_kwh * 1000)),
                "ev_min_current": 6,
                "ev_max_current": ev_max_current_a(self.ev.p_max_w),
                "ev_max_voltage": 400,
            },
        }
        if self.ev.v2x:
            needs["available_energy_transfer"] = [mode]
        await self.call(self.calls.NotifyEVChargingNeeds(evse_id=1, charging_needs=needs))
        # The session as a transaction (OCPP 2.0.1 Part 2, E01/E06: Started when the cable is plugged in, Ended
        # when the EV leaves), so /api/v1/transactions lists it; seq_no counts this transaction's events.
        if self.tx_seq < 0:  # a reconnection continues the transaction it started
            self.tx_seq = 0
            await self.call(
                self.calls.TransactionEvent(
                    event_type="Started",
                    timestamp=now,
                    trigger_reason="CablePluggedIn",
                    seq_no=self.tx_seq,
                    transaction_info={"transaction_id": self.tx_id, "charging_state": "EVConnected"},
                    evse={"id": 1, "connector_id": 1},
                )
            )
        return ans

    async def end_session(self, timeout_s: float = 5.0) -> bool:
        """TransactionEvent Ended (the EV departed), best effort within ``timeout_s``: True when answered."""
        if self.tx_seq < 0:
            return False
        self.tx_seq += 1
        try:
            await asyncio.wait_for(
                self.call(
                    self.calls.TransactionEvent(
                        event_type="Ended",
                        timestamp=_now(),
                        trigger_reason="EVDeparted",
                        seq_no=self.tx_seq,
                        transaction_info={"transaction_id": self.tx_id, "stopped_reason": "EVDisconnected"},
                        evse={"id": 1, "connector_id": 1},
                    )
                ),
                timeout_s,
            )
        except Exception as exc:  # the server went first: said at info level
            logger.info("station %s: TransactionEvent Ended not answered (%r)", self.id, exc)
            return False
        return True

    async def report(self, dt_s: float) -> None:
        """Advance the EV by ``dt_s`` at the present set-point and send MeterValues (energy, power, SoC)."""
        p = self.power_w()
        eff = self.ev.efficiency
        stored_wh = p * dt_s / 3600.0 * (eff if p >= 0 else 1.0 / eff)
        self.soc_pu = min(1.0, max(0.0, self.soc_pu + stored_wh / (self.ev.capacity_kwh * 1000.0)))
        self.energy_wh += p * dt_s / 3600.0
        await self.call(
            self.calls.MeterValues(
                evse_id=1,
                meter_value=[
                    {
                        "timestamp": _now(),
                        "sampled_value": [
                            {
                                "value": round(self.energy_wh, 1),
                                "measurand": "Energy.Active.Net",
                                "unit_of_measure": {"unit": "Wh"},
                            },
                            {
                                "value": round(p, 1),
                                "measurand": "Power.Active.Import",
                                "unit_of_measure": {"unit": "W"},
                            },
                            {
                                "value": round(100 * self.soc_pu, 1),
                                "measurand": "SoC",
                                "unit_of_measure": {"unit": "Percent"},
                            },
                        ],
                    }
                ],
            )
        )


def _snake(lists: dict[str, Any]) -> dict[str, Any]:
    """ReportDERControl's list names as the ``ocpp`` package's dataclass fields (the elements stay in wire
    format: the package converts keys to camelCase on sending, and camelCase keys pass unchanged)."""
    return {{"freqDroop": "freq_droop"}.get(k, k): v for k, v in lists.items()}


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class SimStation(CompiledValidation, _SimBehaviour, v201.ChargePoint):
    """A simulated OCPP 2.0.1 station (EVs without V2X)."""

    calls = v201.call
    calls_result = v201.call_result

    def __init__(
        self,
        station_id: str,
        connection: Any,
        ev: SimEV | None = None,
        response_timeout: float = 30.0,
        settings: SimSettings | None = None,
    ):
        super().__init__(station_id, connection, response_timeout=response_timeout)
        self._setup(ev or SimEV(), settings)

    @on("SetChargingProfile")  # type: ignore[untyped-decorator,unused-ignore]
    async def on_set_charging_profile(self, evse_id: int, charging_profile: dict[str, Any], **_: Any) -> Any:
        self._apply_profile(snake_to_camel_case(charging_profile))  # what the short path did not take
        return v201.call_result.SetChargingProfile(status="Accepted")


class SimStation21(CompiledValidation, _SimBehaviour, v21.ChargePoint):
    """A simulated OCPP 2.1 station (V2X EVs: discharge set-points; its IEEE 1547 settings as DER controls)."""

    calls = v21.call
    calls_result = v21.call_result

    def __init__(
        self,
        station_id: str,
        connection: Any,
        ev: SimEV | None = None,
        response_timeout: float = 30.0,
        settings: SimSettings | None = None,
    ):
        super().__init__(station_id, connection, response_timeout=response_timeout)
        self._setup(ev or SimEV(v2x=True), settings)

    @on("GetDERControl")  # type: ignore[untyped-decorator,unused-ignore]
    def on_get_der_control(self, request_id: int, control_type: str | None = None, **_: Any) -> Any:
        """Accepted when the station has default controls of the type asked (or any, without a type), then the
        report follows; NotSupported for a station without DER controls; NotFound otherwise. ``isDefault`` false
        (scheduled controls) finds nothing: the simulated station has only its defaults."""
        if not self.settings.der_controls:
            return v21.call_result.GetDERControl(status="NotSupported")
        found = der_control_lists(self.settings, control_type) and _.get("is_default", True) is not False
        return v21.call_result.GetDERControl(status="Accepted" if found else "NotFound")

    @after("GetDERControl")  # type: ignore[untyped-decorator,unused-ignore]
    def after_get_der_control(self, request_id: int, control_type: str | None = None, **kw: Any) -> None:
        lists = der_control_lists(self.settings, control_type)
        if lists and kw.get("is_default", True) is not False:
            self._later(self.call(v21.call.ReportDERControl(request_id=int(request_id), **_snake(lists))))

    @on("SetChargingProfile")  # type: ignore[untyped-decorator,unused-ignore]
    async def on_set_charging_profile(self, evse_id: int, charging_profile: dict[str, Any], **_: Any) -> Any:
        self._apply_profile(snake_to_camel_case(charging_profile))  # what the short path did not take
        return v21.call_result.SetChargingProfile(status="Accepted")


async def run_station(
    url: str,
    station_id: str,
    *,
    ev: SimEV | None = None,
    reports: int = 1,
    interval_s: float = 0.0,
    ready: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
    max_attempts: int = 8,
    backoff_s: float = 0.5,
    registry: dict[str, SimStation | SimStation21] | None = None,
    settings: SimSettings | None = None,
) -> SimStation | SimStation21:
    """Connect, boot, plug in, send ``reports`` MeterValues every ``interval_s``, then stay connected until
    ``stop``. A failed connection (or one dropped before ``stop``) is retried after ``backoff_s`` x 2^k
    (capped at 30 s) with random jitter, up to ``max_attempts`` times.

    ``ready`` is set once the reports are sent — or when the station gives up, so that it never holds others up.
    ``registry`` (optional) maps the station id to its live station object while it is connected.
    ``settings``: what the station reports about itself (identity, IEEE 1547 settings; default
    :class:`~v2gtwin.cyber.csms.sim_report.SimSettings`).
    """
    ev = ev or SimEV()
    cls: type[SimStation] | type[SimStation21] = SimStation21 if ev.v2x else SimStation
    proto = SUBPROTOCOL_21 if ev.v2x else SUBPROTOCOL
    station: SimStation | SimStation21 | None = None
    sent = 0
    try:
        for attempt in range(max_attempts):
            try:
                async with connect(
                    f"{url.rstrip('/')}/{station_id}",
                    subprotocols=[Subprotocol(proto)],
                    open_timeout=60,
                    compression=None,
                ) as ws:
                    prev, station = station, cls(station_id, ws, ev, settings=settings)
                    if prev is not None:  # a reconnection keeps the EV's state
                        station.soc_pu, station.energy_wh, station.limit_w = prev.soc_pu, prev.energy_wh, prev.limit_w
                        station.profiles, station.expires_at = prev.profiles, prev.expires_at
                        station.tx_seq = prev.tx_seq
                    if registry is not None:
                        registry[station_id] = station
                    listener = asyncio.create_task(station.start())

                    async def body(st: SimStation | SimStation21 = station) -> None:
                        nonlocal sent
                        await st.boot()
                        while sent < reports:
                            await st.report(max(interval_s, 1.0))
                            sent += 1
                            if interval_s:
                                await asyncio.sleep(interval_s)
                        if ready is not None:
                            ready.set()
                        if stop is not None:
                            await stop.wait()
                            await st.end_session()

                    work = asyncio.create_task(body())
                    # Whichever ends first: the station's work, or its connection (the listener ends with it;
                    # a call awaiting its answer on a closed connection would otherwise wait for its timeout).
                    await asyncio.wait({work, listener}, return_when=asyncio.FIRST_COMPLETED)
                    work_finished = work.done()
                    for task in (work, listener):
                        task.cancel()
                    # Both end here and their outcomes are retrieved (no "exception was never retrieved").
                    await asyncio.gather(work, listener, return_exceptions=True)
                    if not work_finished:
                        if ws.close_code in _FINAL_CLOSE_CODES:
                            return station
                        raise ConnectionError(f"connection closed ({ws.close_code}): reconnecting")
                    work.result()  # a failed call (time-out, CALLERROR) surfaces here
                    return station
            except (OSError, WebSocketException, TimeoutError, ConnectionError) as exc:
                rcvd = exc.rcvd if isinstance(exc, ConnectionClosed) else None
                final = rcvd is not None and rcvd.code in _FINAL_CLOSE_CODES
                if station is not None and (final or (stop is not None and stop.is_set())):
                    return station  # closed for good, or the run is over: no reconnection
                if attempt == max_attempts - 1:
                    raise
                delay = min(30.0, backoff_s * 2**attempt) * (0.5 + random.random())
                logger.info("station %s: %s; reconnecting in %.1f s", station_id, exc, delay)
                if stop is None or station is None:
                    await asyncio.sleep(delay)
                    continue
                try:  # back off, but end at once when the run is over
                    await asyncio.wait_for(stop.wait(), delay)
                    return station
                except TimeoutError:
                    pass
        raise AssertionError("unreachable")
    finally:
        if ready is not None:
            ready.set()


async def run_fleet(
    url: str,
    n: int,
    *,
    evs: list[SimEV] | None = None,
    prefix: str = "SIM",
    reports: int = 1,
    interval_s: float = 0.0,
    hold_s: float = 0.0,
    connect_batch: int = 200,
    max_attempts: int = 8,
    freeze_gc: bool = False,
    settings: dict[str, SimSettings] | None = None,
) -> list[SimStation | SimStation21]:
    """Run ``n`` simulated stations against ``url`` (EV k of ``evs`` in station k; default EVs otherwise).

    Two phases: every station connects (in batches of ``connect_batch``), boots and plugs its EV in; once all
    are in, every station sends ``reports`` MeterValues, one round every ``interval_s`` (a round: all stations
    at once, each advancing its EV by ``max(interval_s, 1)`` s). Then the stations stay ``hold_s`` seconds.
    Stations that fail are logged and left out; the run fails only when all do (:class:`CentralSystemLostError`
    when they had connected). ``max_attempts``: connection
    attempts per station (see :func:`run_station`). ``settings``: station id -> what that station reports about
    itself (the others: the defaults).

    ``freeze_gc``: once every station is in, move the process's objects (connections, stations, their tasks)
    out of the cyclic garbage collector's reach (``gc.freeze``). For a simulator in a process of its own with
    thousands of stations: each full collection would otherwise walk them all (about a million objects for
    10,000 stations, 0.3-1 s of CPU, measured with py-spy) and, landing in the middle of a fan-out, delay the
    answers the central system waits for. Cycles among the frozen objects that become garbage (a station that
    reconnects) then stay until the process ends.
    """
    if evs is not None and len(evs) < n:
        raise ValueError(f"evs: need {n} EVs, got {len(evs)}")
    stop = asyncio.Event()
    readies = [asyncio.Event() for _ in range(n)]
    live: dict[str, SimStation | SimStation21] = {}
    tasks: list[asyncio.Task[SimStation | SimStation21]] = []
    ids = [f"{prefix}-{k:05d}" for k in range(n)]
    for k in range(n):
        tasks.append(
            asyncio.create_task(
                run_station(
                    url,
                    ids[k],
                    ev=evs[k] if evs is not None else None,
                    reports=0,
                    ready=readies[k],
                    stop=stop,
                    registry=live,
                    max_attempts=max_attempts,
                    settings=(settings or {}).get(ids[k]),
                )
            )
        )
        if (k + 1) % connect_batch == 0:
            await asyncio.sleep(0.05)
    await asyncio.gather(*(r.wait() for r in readies))
    connected = bool(live)
    if freeze_gc:
        gc.collect()
        gc.freeze()
    for _ in range(reports):
        t0 = asyncio.get_running_loop().time()
        stations = [live[sid] for sid in ids if sid in live and not tasks[int(sid.rsplit("-", 1)[1])].done()]
        out = await asyncio.gather(*(st.report(max(interval_s, 1.0)) for st in stations), return_exceptions=True)
        bad = [o for o in out if isinstance(o, BaseException)]
        if bad:
            # info, not warning: shown with --debug; without it, Python's last-resort handler would print it
            # on stderr before the run's own one-line error (the CLI's error contract is one line).
            logger.info("%d of %d reports failed (first: %r)", len(bad), len(stations), bad[0])
        await asyncio.sleep(max(0.0, interval_s - (asyncio.get_running_loop().time() - t0)))
    await asyncio.sleep(hold_s)
    stop.set()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    failed = [d for d in done if isinstance(d, BaseException)]
    if failed and len(failed) == n:
        if connected:  # they were in, then the central system went away
            raise CentralSystemLostError(f"the central system went away: all {n} stations failed ({failed[0]!r})")
        raise failed[0]
    if failed:
        logger.info("%d of %d simulated stations failed (first: %r)", len(failed), n, failed[0])
    return [d for d in done if not isinstance(d, BaseException)]
