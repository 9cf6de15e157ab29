"""Shared helpers of the central-system tests: run a scenario with a time limit, and a station session."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from ocpp import v21, v201
from websockets.asyncio.client import connect

from v2gtwin.cyber.csms.server import SUBPROTOCOL, SUBPROTOCOL_21, Csms


def run(coro: Awaitable[Any], timeout: float = 30) -> Any:
    """Run a test scenario to completion, failing it after ``timeout`` seconds."""

    async def limited() -> Any:
        return await asyncio.wait_for(coro, timeout=timeout)

    return asyncio.run(limited())


async def station_session(
    csms: Csms,
    station_id: str,
    cls: type,
    body: Callable[[Any], Awaitable[Any]],
    proto: str = SUBPROTOCOL,
    *,
    boot: bool = True,
) -> Any:
    """Connect a station of class ``cls`` (an ``ocpp`` ChargePoint) to ``csms``, wait until the central
    system has registered it, send a BootNotification (unless ``boot`` is false: the central system sends
    nothing to a station before its boot is accepted), and return what ``body(station)`` returns. The station
    records the calls its handlers receive in ``station.received``."""
    async with connect(f"ws://127.0.0.1:{csms.port}/{station_id}", subprotocols=[proto]) as ws:
        station = cls(station_id, ws)
        station.received = []
        task = asyncio.create_task(station.start())
        try:
            for _ in range(250):
                if station_id in csms.stations:
                    break
                await asyncio.sleep(0.02)
            if boot:
                calls = v21.call if proto == SUBPROTOCOL_21 else v201.call
                ans = await station.call(
                    calls.BootNotification(
                        charging_station={"model": "Test", "vendor_name": "v2gtwin-tests"}, reason="PowerUp"
                    )
                )
                assert ans.status == "Accepted"
            return await body(station)
        finally:
            task.cancel()
