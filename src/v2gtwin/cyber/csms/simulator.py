"""Simulated charging stations: `ocpp` client stations over websockets that boot, obey charging profiles and
report meter values. Used by the tests (and, later, the load benchmark and the study)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

from ocpp.routing import on
from ocpp.v201 import ChargePoint, call, call_result
from ocpp.v201.enums import Action, ChargingProfileStatusEnumType
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from v2gtwin.cyber.csms.server import SUBPROTOCOL

__all__ = ["SimStation", "run_fleet", "run_station"]

logger = logging.getLogger(__name__)


class SimStation(ChargePoint):
    """A station with one EVSE whose charging power follows the last charging profile it accepted."""

    def __init__(self, station_id: str, connection: Any, p_max_w: float = 11000.0, response_timeout: float = 10.0):
        super().__init__(station_id, connection, response_timeout=response_timeout)
        self.p_max_w = p_max_w
        self.limit_w = p_max_w
        self.energy_wh = 0.0
        self.profiles: list[dict[str, Any]] = []

    @on(Action.set_charging_profile)  # type: ignore[untyped-decorator,unused-ignore]
    async def on_set_charging_profile(self, evse_id: int, charging_profile: dict[str, Any], **_: Any) -> Any:
        periods = charging_profile["charging_schedule"][0]["charging_schedule_period"]
        self.limit_w = max(0.0, min(float(periods[0]["limit"]), self.p_max_w))
        self.profiles.append(charging_profile)
        return call_result.SetChargingProfile(status=ChargingProfileStatusEnumType.accepted)

    async def boot(self) -> Any:
        """Send BootNotification; returns the answer."""
        return await self.call(
            call.BootNotification(charging_station={"model": "v2gtwin-sim", "vendor_name": "v2gtwin"}, reason="PowerUp")
        )

    async def report(self, dt_s: float) -> None:
        """Advance the meter by ``dt_s`` at the present limit and send MeterValues."""
        self.energy_wh += self.limit_w * dt_s / 3600.0
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        await self.call(
            call.MeterValues(
                evse_id=1,
                meter_value=[
                    {
                        "timestamp": now,
                        "sampled_value": [
                            {"value": round(self.energy_wh, 1), "measurand": "Energy.Active.Import.Register"},
                            {"value": round(self.limit_w, 1), "measurand": "Power.Active.Import"},
                        ],
                    }
                ],
            )
        )


async def run_station(
    url: str,
    station_id: str,
    *,
    reports: int = 1,
    interval_s: float = 0.0,
    ready: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
) -> SimStation:
    """Connect, boot, send ``reports`` MeterValues every ``interval_s``, then stay connected until ``stop``.

    ``ready`` is set once the reports are sent — or when the station fails, so that it never holds others up.
    """
    try:
        async with connect(f"{url.rstrip('/')}/{station_id}", subprotocols=[Subprotocol(SUBPROTOCOL)]) as ws:
            station = SimStation(station_id, ws)
            listener = asyncio.create_task(station.start())
            try:
                await station.boot()
                for _ in range(reports):
                    await station.report(max(interval_s, 1.0))
                    if interval_s:
                        await asyncio.sleep(interval_s)
                if ready is not None:
                    ready.set()
                if stop is not None:
                    await stop.wait()
            finally:
                listener.cancel()
            return station
    finally:
        if ready is not None:
            ready.set()


async def run_fleet(
    url: str,
    n: int,
    *,
    prefix: str = "SIM",
    reports: int = 1,
    interval_s: float = 0.0,
    hold_s: float = 0.0,
    connect_batch: int = 200,
) -> list[SimStation]:
    """Run ``n`` simulated stations against ``url``: connect (in batches), boot, report, stay ``hold_s``."""
    stop = asyncio.Event()
    readies = [asyncio.Event() for _ in range(n)]
    tasks: list[asyncio.Task[SimStation]] = []
    for k in range(n):
        tasks.append(
            asyncio.create_task(
                run_station(
                    url, f"{prefix}-{k:05d}", reports=reports, interval_s=interval_s, ready=readies[k], stop=stop
                )
            )
        )
        if (k + 1) % connect_batch == 0:
            await asyncio.sleep(0.05)
    await asyncio.gather(*(r.wait() for r in readies))
    await asyncio.sleep(hold_s)
    stop.set()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    failed = [d for d in done if isinstance(d, BaseException)]
    if failed and len(failed) == n:
        raise failed[0]
    if failed:
        logger.warning("%d of %d simulated stations failed (first: %r)", len(failed), n, failed[0])
    return [d for d in done if isinstance(d, SimStation)]
