"""Nothing acknowledged is lost: kill -9 of the central system while a station streams meter values, then
count what the database kept against what the station saw acknowledged."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from ocpp.v201 import ChargePoint, call
from websockets.asyncio.client import connect

from v2gtwin.cyber.csms.server import SUBPROTOCOL
from v2gtwin.cyber.csms.store import Store


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_kill_9_during_meter_ingestion_loses_nothing_acknowledged(tmp_path: Path) -> None:
    db = tmp_path / "csms.sqlite"
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "v2gtwin.cli", "csms", "serve", "--port", str(port), "--db", f"sqlite:///{db}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    acked = 0

    async def stream() -> None:
        nonlocal acked
        for _ in range(100):  # wait for the server to listen
            try:
                ws = await connect(f"ws://127.0.0.1:{port}/CS-K", subprotocols=[SUBPROTOCOL])
                break
            except OSError:
                await asyncio.sleep(0.1)
        else:
            raise RuntimeError("server did not start")
        st = ChargePoint("CS-K", ws, response_timeout=3)
        listener = asyncio.create_task(st.start())
        t0 = time.monotonic()
        try:
            k = 0
            while True:
                k += 1
                await st.call(
                    call.MeterValues(
                        evse_id=1,
                        meter_value=[
                            {
                                "timestamp": "2026-11-25T20:00:00Z",
                                "sampled_value": [{"value": float(k), "measurand": "Energy.Active.Import.Register"}],
                            }
                        ],
                    )
                )
                acked += 1
                if acked == 40:
                    os.kill(proc.pid, signal.SIGKILL)  # mid-stream, without warning
                if time.monotonic() - t0 > 20:
                    break
        except Exception:  # the connection dies with the server
            pass
        finally:
            listener.cancel()

    asyncio.run(stream())
    proc.wait(timeout=10)
    stored = Store(f"sqlite:///{db}").count_meter_values("CS-K")
    assert acked >= 40
    assert stored >= acked  # every acknowledged value survived (one more may have been stored, not acked)


def test_serve_prints_its_actual_port_and_status_lines(tmp_path: Path) -> None:
    """`csms serve --port 0` names the port it got; status lines count the stations and the committed values;
    Ctrl-C ends it with one line and exit code 130."""
    import re

    from v2gtwin.cyber.csms.simulator import run_fleet

    db = tmp_path / "csms.sqlite"
    cmd = [sys.executable, "-m", "v2gtwin.cli", "csms", "serve", "--port", "0", "--db", f"sqlite:///{db}"]
    proc = subprocess.Popen([*cmd, "--status-every", "0.2"], stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        banner = proc.stderr.readline()
        m = re.search(r"ws://127\.0\.0\.1:(\d+)/<station_id>", banner)
        assert m and int(m.group(1)) > 0, banner
        asyncio.run(run_fleet(f"ws://127.0.0.1:{m.group(1)}", 2, prefix="ST", reports=1, hold_s=2.0))
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    assert "csms: 2 stations connected, 6 meter values committed" in err
    assert err.rstrip().endswith("interrupted") and proc.returncode == 130
