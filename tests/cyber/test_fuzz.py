"""Malformed frames (hypothesis), frame by frame: each gets a CALLERROR (with the frame's message id, or "-1"
when it cannot be read) — silence is a failure — and the server keeps serving other stations. A close is
accepted only where the protocol prescribes one: a frame larger than the server's frame limit closes the
connection with code 1009, "message too big" (RFC 6455, section 7.4.1). Any other close (a handler that crashed
on the frame, say) fails.

The one frame OCPP-J never answers is a well-formed CALLRESULT or CALLERROR (a station's answer; here one to no
pending call): for those the test sends a probe CALL at once and requires the very next frame to be the probe's
answer, so nothing is left unexplained."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import websockets
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from ocpp.exceptions import OCPPError
from ocpp.messages import unpack
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
        st.text(max_size=8) | st.integers(),
        st.sampled_from(["BootNotification", "Heartbeat", "MeterValues", "NoSuchAction", "TransactionEvent", ""]),
        json_values,
    ).map(lambda t: json.dumps(list(t))),  # frame-shaped, wrong type ids / ids / actions / payloads
    st.tuples(st.sampled_from([3, 4]), st.text(max_size=8), json_values).map(lambda t: json.dumps(list(t))),
    st.just('[4, "x", "GenericError", "", {}]'),  # a well-formed CALLERROR to no call
    st.just("[" * 30000 + "]" * 30000),  # deeper than Python's JSON parser goes
    st.just('[2, "x", "Heartbeat", {}]' + " " * 70000),  # over the 64 KiB limit
)
SILENCE_S = 3.0  # no answer within this long counts as silence
FRAME_LIMIT_BYTES = 65536  # Csms's default max_message_bytes, the limit the oversize frame exceeds
CLOSE_TOO_BIG = 1009  # RFC 6455, 7.4.1: "message too big"


def close_is_prescribed(frame: str, code: int | None) -> bool:
    """A close is the right answer only to a frame over the frame limit, and then with code 1009."""
    return len(frame.encode()) > FRAME_LIMIT_BYTES and code == CLOSE_TOO_BIG


def expected_id(frame: str) -> str:
    """The message id a CALLERROR must carry: the frame's, when it is a JSON list with a string in second
    place, else "-1"."""
    try:
        msg = json.loads(frame)
    except (ValueError, RecursionError):
        return "-1"
    return msg[1] if isinstance(msg, list) and len(msg) > 1 and isinstance(msg[1], str) else "-1"


def is_station_answer(frame: str) -> bool:
    """A well-formed CALLRESULT or CALLERROR (which OCPP-J never answers)."""
    try:
        return unpack(frame).message_type_id in (3, 4)
    except (OCPPError, TypeError, KeyError, IndexError, RecursionError):
        return False


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(frames, min_size=1, max_size=4))
@example(batch=["not json", "[2, 7, 8]", '[2, "x", "Heartbeat", {}]' + " " * 70000])  # always: CALLERRORs, 1009
def test_every_malformed_frame_gets_a_callerror_or_the_prescribed_close(tmp_path_factory, batch: list[str]) -> None:  # type: ignore[no-untyped-def]
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'db.sqlite'}")

    async def scenario() -> tuple[list[Any], Any]:
        verdicts: list[Any] = []
        async with Csms(store, port=0) as csms:
            async with connect(f"ws://127.0.0.1:{csms.port}/FUZZ", subprotocols=[SUBPROTOCOL], max_size=2**20) as ws:
                for k, frame in enumerate(batch):
                    try:
                        await ws.send(frame)
                        if is_station_answer(frame):
                            await ws.send(f'[2,"probe-{k}","Heartbeat",{{}}]')
                            reply = json.loads(await asyncio.wait_for(ws.recv(), SILENCE_S))
                            verdicts.append(("probe answered", reply[0] == 3 and reply[1] == f"probe-{k}"))
                            continue
                        reply = json.loads(await asyncio.wait_for(ws.recv(), SILENCE_S))
                        # A frame over the limit must not be answered at all: it must close the connection.
                        within = len(frame.encode()) <= FRAME_LIMIT_BYTES
                        if reply[0] == 3:  # the frame happened to be a valid CALL: its own answer
                            ok = reply[1] == expected_id(frame) and frame.startswith("[2")
                            verdicts.append(("result", ok and within))
                        else:
                            verdicts.append(("callerror", reply[0] == 4 and reply[1] == expected_id(frame) and within))
                    except TimeoutError:
                        verdicts.append(("silence", False))
                    except websockets.exceptions.ConnectionClosed as exc:
                        code = exc.rcvd.code if exc.rcvd is not None else None
                        verdicts.append((f"closed {code}", close_is_prescribed(frame, code)))
                        break
            # Another station is served normally afterwards.
            async with connect(f"ws://127.0.0.1:{csms.port}/OK-1", subprotocols=[SUBPROTOCOL]) as ws2:
                cp = ChargePoint("OK-1", ws2, response_timeout=5)
                task = asyncio.create_task(cp.start())
                try:
                    return verdicts, await cp.call(call.Heartbeat())
                finally:
                    task.cancel()

    verdicts, hb = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert all(ok for _, ok in verdicts), list(zip(batch, verdicts, strict=False))
    assert hb.current_time


def test_the_fuzz_verdicts_can_fail() -> None:
    """The oracle's own cases, by hand: the id a CALLERROR must carry, and which frames OCPP-J leaves
    unanswered."""
    assert expected_id('[2, "abc", "Heartbeat", 5]') == "abc"
    assert expected_id("[2, 7, 8]") == "-1" and expected_id("not json") == "-1" and expected_id("{}") == "-1"
    assert is_station_answer('[3, "x", {}]') and is_station_answer('[4, "x", "GenericError", "", {}]')
    assert not is_station_answer('[3, "x"]') and not is_station_answer('[2, "x", "Heartbeat", {}]')
    deep = "[" * 30000 + "]" * 30000
    assert not is_station_answer(deep) and expected_id(deep) == "-1"
    # A close: only for the frame over the limit (65,536 bytes), and only with 1009.
    big = '[2, "x", "Heartbeat", {}]' + " " * 70000
    assert close_is_prescribed(big, 1009)
    assert not close_is_prescribed(big, 1000) and not close_is_prescribed(big, 1011)
    assert not close_is_prescribed('[2, "x", "Heartbeat", 5]', 1009) and not close_is_prescribed(deep, 1009)
