"""Interop: v2gtwin's central system against a charging station built on ocpp-rpc (a third-party OCPP-J
library for Node.js, MIT licence, pinned in tests/interop/package.json; not the `ocpp` package v2gtwin uses).
ocpp-rpc runs in strict mode: it validates every frame it sends and receives against its own copy of the OCPP
2.0.1 JSON schemas, so a malformed response or charging profile from v2gtwin fails the test.

Needs Node.js and the peer installed (`make test` runs `npm ci` in tests/interop when npm is present)."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_part
from v2gtwin.cyber.csms.server import Csms
from v2gtwin.cyber.csms.store import Store

HERE = Path(__file__).parent
PEER = HERE / "peer.mjs"


@pytest.fixture(autouse=True)
def _peer_installed() -> None:
    require_part(
        shutil.which("node") is not None and (HERE / "node_modules" / "ocpp-rpc").is_dir(),
        "Node.js or the ocpp-rpc peer is not installed (run `npm ci` in tests/interop)",
    )


async def _peer_session(csms: Csms, station_id: str, password: str | None = None) -> list[dict[str, Any]]:
    args = [str(PEER), f"ws://127.0.0.1:{csms.port}", station_id] + ([password] if password else [])
    proc = await asyncio.create_subprocess_exec(
        "node", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=HERE
    )
    assert proc.stdout is not None
    events: list[dict[str, Any]] = []
    dispatched: dict[str, dict[str, Any]] = {}
    while line := await proc.stdout.readline():
        ev = json.loads(line)
        events.append(ev)
        if ev["event"] == "ready":
            dispatched = await csms.dispatch({station_id: 7400.0}, timeout_s=10)
    _, err = await proc.communicate()
    assert proc.returncode == 0, (events, err.decode())
    assert dispatched[station_id]["status"] == "Accepted"
    return events


def test_third_party_station_boots_heartbeats_and_accepts_a_charging_profile(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'csms.sqlite'}")

    async def scenario() -> list[dict[str, Any]]:
        async with Csms(store, port=0) as csms:
            return await _peer_session(csms, "INTEROP-1")

    events = asyncio.run(asyncio.wait_for(scenario(), timeout=60))
    by = {e["event"]: e for e in events}
    assert by["connected"]["protocol"] == "ocpp2.0.1"
    assert by["BootNotification"]["response"]["status"] == "Accepted"
    assert by["BootNotification"]["response"]["interval"] > 0
    assert "currentTime" in by["Heartbeat"]["response"]
    prof = by["SetChargingProfile"]["params"]
    assert prof["evseId"] == 1
    period = prof["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"][0]
    assert period["limit"] == pytest.approx(7400.0)
    assert "done" in by
    # What the peer reported was committed before it was acknowledged.
    assert store.count_meter_values("INTEROP-1") == 1
    st = store.station("INTEROP-1")
    assert st is not None and st.vendor == "ocpp-rpc"


def test_third_party_station_with_basic_auth(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'csms.sqlite'}")
    store.set_password("INTEROP-2", "correct horse battery staple")

    async def scenario() -> list[dict[str, Any]]:
        async with Csms(store, port=0, security_profile=1) as csms:
            return await _peer_session(csms, "INTEROP-2", "correct horse battery staple")

    events = asyncio.run(asyncio.wait_for(scenario(), timeout=60))
    assert any(e["event"] == "done" for e in events)
