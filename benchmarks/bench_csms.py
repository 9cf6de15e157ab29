"""Benchmark: the OCPP central system with N simulated stations (another process) on loopback.

Prints one JSON line: ``stations`` (connected), ``fanout_p50_s`` / ``fanout_p99_s`` (time from the start of a
SetChargingProfile fan-out to each station's acceptance), ``meter_values_per_s`` (values committed to SQLite
per second while every station streams MeterValues), ``server_rss_mb`` (peak RSS of the server process).
Target (issue 6): 10,000 stations, fan-out p99 <= 2 s, >= 5,000 durable meter values per second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from v2gtwin.cyber.csms.server import Csms
from v2gtwin.cyber.csms.store import Store

SIM = """
import asyncio, sys
from v2gtwin.cyber.csms.simulator import run_fleet
asyncio.run(run_fleet(sys.argv[1], int(sys.argv[2]), reports=int(sys.argv[3]), interval_s=float(sys.argv[4]),
                      hold_s=float(sys.argv[5]), connect_batch=500))
"""


async def main_async(n: int, reports: int, interval: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as d:
        store = Store(f"sqlite:///{Path(d) / 'bench.sqlite'}")
        csms = Csms(store, port=0)
        await csms.start()
        url = f"ws://127.0.0.1:{csms.port}"
        hold = 30.0
        sim = subprocess.Popen(
            [sys.executable, "-c", SIM, url, str(n), str(reports), str(interval), str(hold)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        t_start = time.perf_counter()
        # Stations connect, boot and stream their reports: the ingest rate is the committed values over the
        # time from the first committed value to the last expected one.
        expected = n * reports * 2
        t_first = None
        count = 0
        while time.perf_counter() - t_start < 300:
            count = store.count_meter_values()
            if count and t_first is None:
                t_first = time.perf_counter()
            if count >= expected and len(csms.stations) >= n:
                break
            await asyncio.sleep(0.05)
        t_last = time.perf_counter()
        connected = len(csms.stations)
        c0, c1, t0, t1 = 0, count, (t_first or t_start), t_last
        # Fan-out: one set-point to every connected station at once.
        limits = {sid: 7000.0 for sid in list(csms.stations)}
        result = await csms.dispatch(limits, timeout_s=30.0, retries=0)
        done = sorted(r["latency_s"] for r in result.values() if r["latency_s"] is not None)
        accepted = sum(r["status"] == "Accepted" for r in result.values())
        sim.terminate()
        await csms.stop()
        return {
            "stations": connected,
            "accepted": accepted,
            "fanout_p50_s": round(done[len(done) // 2], 4) if done else None,
            "fanout_p99_s": round(done[min(len(done) - 1, int(0.99 * len(done)))], 4) if done else None,
            "meter_values_per_s": round((c1 - c0) / (t1 - t0), 1),
            "server_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "meter_values_committed": c1,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stations", type=int, default=1000)
    parser.add_argument("--reports", type=int, default=20, help="MeterValues per station while measuring")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between a station's reports")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main_async(args.stations, args.reports, args.interval))))


if __name__ == "__main__":
    main()
