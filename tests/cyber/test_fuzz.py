"""Malformed frames (hypothesis): the central system answers CALLERROR or closes that connection cleanly, and
keeps serving other stations."""

from __future__ import annotations

import asyncio
import json

import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ocpp.v201 import ChargePoint, call
from websockets.asyncio.client import connect

from v2gtwin.cyber.csms.server import SUBPROTOCOL, Csms
from v2gtwin.cyber.csms.store import Store

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)
frames = st.one_of(
    st.text(max_size=60),  # not JSON at all
    json_values.map(json.dumps),  # JSON, not an OCPP frame
    st.tuples(
        st.integers(-3, 9),
        st.text(max_size=8),
        st.sampled_from(["BootNotification", "Heartbeat", "MeterValues", "NoSuchAction", "TransactionEvent", ""]),
        json_values,
    ).map(lambda t: json.dumps(list(t))),  # frame-shaped, wrong type ids / actions / payloads
    st.just('[2, "x", "Heartbeat", {}]' + " " * 70000),  # over the 64 KiB limit
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(frames, min_size=1, max_size=4))
def test_malformed_frames_never_stop_the_server(tmp_path_factory, batch: list[str]) -> None:  # type: ignore[no-untyped-def]
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'db.sqlite'}")

    async def scenario():  # type: ignore[no-untyped-def]
        async with Csms(store, port=0) as csms:
            async with connect(f"ws://127.0.0.1:{csms.port}/FUZZ", subprotocols=[SUBPROTOCOL], max_size=2**20) as ws:
                for frame in batch:
                    try:
                        await ws.send(frame)
                        reply = await asyncio.wait_for(ws.recv(), timeout=0.15)
                        msg = json.loads(reply)
                        assert isinstance(msg, list) and msg[0] in (3, 4)  # a result or a CALLERROR
                    except TimeoutError:
                        pass  # frames the protocol answers with silence (stray results and errors)
                    except websockets.exceptions.ConnectionClosed:
                        break  # closed cleanly (e.g. oversize frame)
            # Another station is served normally afterwards.
            async with connect(f"ws://127.0.0.1:{csms.port}/OK-1", subprotocols=[SUBPROTOCOL]) as ws2:
                cp = ChargePoint("OK-1", ws2, response_timeout=5)
                task = asyncio.create_task(cp.start())
                try:
                    return await cp.call(call.Heartbeat())
                finally:
                    task.cancel()

    hb = asyncio.run(asyncio.wait_for(scenario(), timeout=30))
    assert hb.current_time
