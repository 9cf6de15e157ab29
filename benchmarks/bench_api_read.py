"""Benchmark: ``GET /api/v1/stations`` of N stations, without connecting them (a quick stand-in for the read in
``bench_csms.py``, which needs every station connected: over an hour for 10,000 on a loaded 2-core machine).

The store gets N booted stations with one occupied EVSE each; the API's live state gets one power and SoC
value per EVSE (as the group commit would hand them over); then ``--reads`` reads through the blocking client
in a worker thread of the same process (server and client share the process and its GIL: the CPU time counts
both). Prints one JSON line: ``stations``, ``read_s`` (each read, request to parsed answer; the first one also
reads the database, the next ones the API's copy of the station tables), ``read_cpu_s`` (process CPU time of
each), ``read_median_s``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from v2gtwin.cyber.api_client import ApiClient
from v2gtwin.cyber.csms.api_server import ApiServer
from v2gtwin.cyber.csms.server import Csms
from v2gtwin.cyber.csms.store import Store


async def run(n: int, reads: int, folder: Path) -> dict[str, object]:
    store = Store(f"sqlite:///{folder / 'bench_api_read.sqlite'}")
    ops = []
    for k in range(n):
        sid = f"SIM-{k:05d}"
        ops.append(Store.op_upsert_station(sid, "v2gtwin", "bench", status="Occupied"))
        ops.append(Store.op_upsert_evse(sid, 1, status="Occupied", departure_time="2026-01-01T08:00:00Z"))
    store.apply(ops)
    csms = Csms(store, port=0)
    async with csms, ApiServer(csms, port=0) as api:
        token = api.tokens.create("bench")
        t = "2026-01-01T00:00:00Z"
        api.live.on_values(
            [
                (f"SIM-{k:05d}", 1, [(t, "Power.Active.Import", 11000.0, "W"), (t, "SoC", 40.0, "Percent")])
                for k in range(n)
            ]
        )
        client = ApiClient(api.url, token, timeout_s=120.0)
        wall, cpu = [], []
        got = 0
        for _ in range(reads):
            t0, c0 = time.perf_counter(), time.process_time()
            got = len(await asyncio.to_thread(client.stations))
            wall.append(round(time.perf_counter() - t0, 4))
            cpu.append(round(time.process_time() - c0, 4))
    return {"stations": got, "read_s": wall, "read_cpu_s": cpu, "read_median_s": statistics.median(wall)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stations", type=int, default=10_000)
    parser.add_argument("--reads", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        out = asyncio.run(run(args.stations, args.reads, Path(folder)))
    print(json.dumps(out, allow_nan=False))


if __name__ == "__main__":
    main()
