"""Simulated stations: EVs whose power and state of charge follow the central system's set-points (V2X on
OCPP 2.1 included), and a reconnect storm — every station dropped at once comes back and is dispatched again."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from v2gtwin.cyber.csms.server import Csms
from v2gtwin.cyber.csms.simulator import SimEV, run_station
from v2gtwin.cyber.csms.store import Store

from .helpers import run


def test_power_and_soc_follow_the_set_points_v2x_included(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'csms.sqlite'}")
    evs = {
        "EV-PLAIN": SimEV(capacity_kwh=50.0, soc0_pu=0.5, p_max_w=7400.0, v2x=False, efficiency=1.0),
        "EV-V2X": SimEV(capacity_kwh=50.0, soc0_pu=0.5, p_max_w=11000.0, v2x=True, efficiency=0.9),
    }

    async def scenario():  # type: ignore[no-untyped-def]
        csms = Csms(store, port=0)
        await csms.start()
        url = f"ws://127.0.0.1:{csms.port}"
        stop = asyncio.Event()
        ready = {k: asyncio.Event() for k in evs}
        try:
            tasks = {
                k: asyncio.create_task(run_station(url, k, ev=ev, reports=0, ready=ready[k], stop=stop))
                for k, ev in evs.items()
            }
            await asyncio.gather(*(r.wait() for r in ready.values()))
            res = await csms.dispatch({"EV-PLAIN": 3600.0, "EV-V2X": -9000.0})
            stop.set()
            stations = {k: await t for k, t in tasks.items()}
            return res, stations
        finally:
            stop.set()
            await csms.stop()

    res, st = run(scenario(), 60)
    assert res["EV-PLAIN"]["status"] == res["EV-V2X"]["status"] == "Accepted"
    plain, v2x = st["EV-PLAIN"], st["EV-V2X"]
    assert plain.power_w() == 3600.0 and v2x.power_w() == -9000.0
    # One hour at the set-point: SoC by hand (discharge draws 9 kWh / 0.9 from the battery).
    asyncio.run(_advance(plain, v2x))
    assert plain.soc_pu == pytest.approx(0.5 + 3.6 / 50.0)
    assert v2x.soc_pu == pytest.approx(0.5 - 9.0 / 0.9 / 50.0)
    ev = store.evse("EV-V2X", 1)
    assert ev is not None and ev.v2x and ev.energy_amount_wh == pytest.approx(0.3 * 50_000)


async def _advance(*stations) -> None:  # type: ignore[no-untyped-def]
    async def noop(*_a, **_k):  # type: ignore[no-untyped-def]
        return None

    for s in stations:
        s.call = noop  # the connection is closed: advance the model without sending
        await s.report(3600.0)


def test_reconnect_storm_every_station_comes_back_and_is_dispatched(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'csms.sqlite'}")
    n = 40

    async def scenario():  # type: ignore[no-untyped-def]
        csms = Csms(store, port=0)
        await csms.start()
        url = f"ws://127.0.0.1:{csms.port}"
        stop = asyncio.Event()
        ready = [asyncio.Event() for _ in range(n)]
        try:
            tasks = [
                asyncio.create_task(
                    run_station(url, f"STORM-{k}", reports=1, ready=ready[k], stop=stop, backoff_s=0.05)
                )
                for k in range(n)
            ]
            await asyncio.gather(*(r.wait() for r in ready))
            assert len(csms.stations) == n
            # The storm: every connection dropped at once; every station reconnects (with back-off and jitter).
            old = dict(csms._connections)
            await asyncio.gather(*(c.close(1012, "service restart") for c in old.values()))
            for _ in range(300):
                if len(csms.stations) == n and all(csms._connections[k] is not old[k] for k in old):
                    break
                await asyncio.sleep(0.05)
            res = await csms.dispatch({f"STORM-{k}": 2000.0 for k in range(n)}, timeout_s=10)
            stop.set()
            stations = await asyncio.gather(*tasks)
            return res, stations
        finally:
            stop.set()
            await csms.stop()

    res, stations = run(scenario(), 60)
    assert all(r["status"] == "Accepted" for r in res.values()), res
    assert [s.limit_w for s in stations] == [2000.0] * n
    # Every station booted twice (the second boot after the storm), nothing was lost of what was acknowledged.
    assert store.count_meter_values() == n * 3
