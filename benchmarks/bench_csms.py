"""Benchmark: the OCPP central system with N simulated stations (another process) on loopback.

The simulator process connects every station (boot, status, charging needs); once all are in, every station
sends ``--reports`` MeterValues (3 sampled values each), one round every ``--interval`` seconds; then the
central system pushes one SetChargingProfile to every station at once, each station its own set-point (as a
real dispatch does: one frame built per station). The database (``--db``): ``sqlite`` (default), an SQLite file in
the working folder (a disk, unlike a temporary folder that may be in memory), removed afterwards; or
``postgresql``, a throwaway PostgreSQL server on this machine (:mod:`v2gtwin.cyber.csms.pg_local`, the tests' own:
initdb in a temporary folder, fsync and synchronous_commit on, reached over TCP on 127.0.0.1), removed
afterwards.

Prints one JSON line: ``stations`` (connected), ``connect_s`` (until all were connected and booted),
``accepted``, ``timeouts`` (stations that did not answer within the call timeout), from the set-points the
simulated stations received in their frames: ``profiles_received``, ``distinct_setpoints`` (true: no two
frames carried the same set-point, each station was sent its own value) and ``setpoints_as_targeted``
(stations whose frame carried their own target), ``fanout_p50_s`` / ``fanout_p99_s`` (nearest rank, over every
station: time from the start of the fan-out to its acceptance, a station that timed out or refused ranking above
every time — so ``fanout_p99_s`` is null when more than 1 % did not accept),
``fanout_server_cpu_s`` (CPU time of the server process during the fan-out),
``db`` (sqlite or postgresql), ``meter_values_per_s`` (values committed — SQLite: WAL, synchronous=FULL;
PostgreSQL: fsync and synchronous_commit on — per second, from the first to the last committed value of the
reporting phase), ``server_rss_mb`` (peak RSS of the server process, which also
runs this harness), ``simulator_rss_mb``, ``cut_short`` (why the run did not complete, or null). Exit code 1
when the run was cut short (not every station connected, a simulator process ended early, the meter values did
not all arrive before the deadline). Target (issue 6): 10,000 stations, fan-out p99 <= 2 s, >= 5,000 durable
meter values per second.

Then the same through the HTTP API (:mod:`v2gtwin.cyber.csms.api`, served in this process's event loop as
``csms serve --api-port`` does; the client, blocking urllib as a user's, in a worker thread):
``api_read_s`` (median of 3 ``GET /api/v1/stations`` of every station, from the request to the last byte parsed
as JSON; ``api_read_10k_s`` the same with exactly 10,000 stations, else null). These are warm reads: the API
keeps the stations' tables it read from the database until the central system commits a change to them
(``Csms.store_version``; meter values do not count), and by then the fleet has stopped reporting, so the 2nd and
3rd reads, and so the median, are answered from that cache; ``api_read_cold_s`` is the 1st read, the one that
queries the database (a fresh API server, empty cache). ``api_read_stations`` (stations in the answer), and one
``POST /api/v1/setpoints`` of every station, each its own set-point (3 kW + 0.1 W per station):
``api_accepted``, ``api_setpoints_as_targeted`` (from what the stations received, as above),
``api_dispatch_p50_s`` / ``api_dispatch_p99_s`` (the same fan-out figures as ``fanout_*``, from the per-station
``settled_s`` of the answer) and ``api_dispatch_wall_s`` (the POST from request to parsed answer); every
``api_*`` key is null when the run was cut short. Target (issue 18): read of 10,000 stations <= 0.2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from v2gtwin.cyber.api_client import ApiClient
from v2gtwin.cyber.csms.api_server import ApiServer
from v2gtwin.cyber.csms.outcomes import percentile_s
from v2gtwin.cyber.csms.pg_local import start_local_postgres
from v2gtwin.cyber.csms.server import Csms
from v2gtwin.cyber.csms.store import Store

SIM = """
import asyncio, json, resource, sys
from v2gtwin.cyber.csms.simulator import run_fleet
from v2gtwin.cyber.csms.validation import configure_ocpp_validation
configure_ocpp_validation()  # this process is the simulator's alone: every station validates compiled
url, n, reports, interval_s, hold_s, prefix = sys.argv[1:7]
fleet = asyncio.run(run_fleet(url, int(n), reports=int(reports), interval_s=float(interval_s), hold_s=float(hold_s),
                              connect_batch=500, prefix=prefix, freeze_gc=True))
# What each station received: the first period's set-point of every profile, as it came in the frame.
periods = {s.id: [p["chargingSchedule"][0]["chargingSchedulePeriod"][0] for p in s.profiles] for s in fleet}
received = {sid: [q.get("setpoint", q.get("limit")) for q in ps] for sid, ps in periods.items()}
print(json.dumps({"rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "received_w": received}))
"""


def received_set_points(sim_stdout: list[str]) -> dict[str, list[float]]:
    """The set-points the simulated stations received (station id -> the first period's set-point of each
    profile, read from the frames as they arrived), from the simulator processes' last output lines; a process
    cut short (no such line) contributes nothing."""
    received: dict[str, list[float]] = {}
    for out in sim_stdout:
        line = _last_json(out)
        if line is not None:
            received |= line["received_w"]
    return received


def _last_json(out: str) -> dict[str, Any] | None:
    """The simulator's last output line as JSON; None when there is none or it was cut off (a process stopped
    while writing it)."""
    lines = out.strip().splitlines()
    if not (lines and lines[-1].startswith("{")):
        return None
    try:
        parsed: dict[str, Any] = json.loads(lines[-1])
    except ValueError:
        return None
    return parsed


def setpoint_checks(received: dict[str, list[float]], targets_w: dict[str, float]) -> dict[str, object]:
    """From what was received, not from what was meant to be sent: ``profiles_received``;
    ``distinct_setpoints`` (true when profiles arrived and no two carry the same set-point: each station was
    sent its own); ``setpoints_as_targeted`` (stations whose one profile carried their target, rounded to the
    0.1 W the frames carry)."""
    values = [v for vs in received.values() for v in vs]
    return {
        "profiles_received": len(values),
        "distinct_setpoints": bool(values) and len(set(values)) == len(values),
        "setpoints_as_targeted": sum(received.get(sid) == [round(w, 1)] for sid, w in targets_w.items()),
    }


def _pct(values: list[float | None], q: float) -> float | None:
    p = percentile_s(values, q)
    return round(p, 4) if p is not None else None


def set_points_w(station_ids: list[str], base_w: float = 1400.0) -> dict[str, float]:
    """Each station its own set-point: ``base_w`` (1.4 kW) + 0.1 W per station, in the order given [W]."""
    return {sid: base_w + 0.1 * k for k, sid in enumerate(station_ids)}


API_KEYS = (
    "api_read_s",
    "api_read_10k_s",
    "api_read_cold_s",
    "api_read_stations",
    "api_accepted",
    "api_dispatch_p50_s",
    "api_dispatch_p99_s",
    "api_dispatch_wall_s",
)
"""The keys of :func:`api_round`: all null (never missing) when the run was cut short before it."""


async def api_round(csms: Csms, station_ids: list[str], targets_w: dict[str, float]) -> dict[str, object]:
    """Read every station and dispatch ``targets_w`` through the HTTP API (see the module docstring)."""
    api = ApiServer(csms, port=0)
    token = api.tokens.create("bench")
    await api.start()
    try:
        client = ApiClient(api.url, token, timeout_s=120.0)
        reads = []
        n_read = 0
        for _ in range(3):
            t0 = time.perf_counter()
            n_read = len(await asyncio.to_thread(client.stations))
            reads.append(time.perf_counter() - t0)
        body = [{"station_id": sid, "evse_id": 1, "p_kw": w / 1000.0} for sid, w in targets_w.items()]
        t0 = time.perf_counter()
        results = await asyncio.to_thread(client.post_setpoints, body, 30.0)
        wall = time.perf_counter() - t0
    finally:
        await api.stop()
    settled = [r["settled_s"] if r["status"] == "Accepted" else None for r in results]
    read_s = sorted(reads)[1]
    return {
        "api_read_s": round(read_s, 4),
        "api_read_10k_s": round(read_s, 4) if len(station_ids) == 10_000 else None,
        "api_read_cold_s": round(reads[0], 4),
        "api_read_stations": n_read,
        "api_accepted": sum(t is not None for t in settled),
        "api_dispatch_p50_s": _pct(settled, 0.5),
        "api_dispatch_p99_s": _pct(settled, 0.99),
        "api_dispatch_wall_s": round(wall, 3),
    }


async def main_async(
    n: int, reports: int, interval: float, hold: float, procs: int = 1, deadline_s: float = 600.0, db: str = "sqlite"
) -> dict[str, object]:
    if db == "postgresql":
        server = start_local_postgres()
        try:
            return {"db": db, **await _run(server.url(), n, reports, interval, hold, procs, deadline_s)}
        finally:
            server.stop()
    path = Path.cwd() / f"bench_csms_{os.getpid()}.sqlite"
    try:
        return {"db": db, **await _run(f"sqlite:///{path}", n, reports, interval, hold, procs, deadline_s)}
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


async def _run(
    db_url: str, n: int, reports: int, interval: float, hold: float, procs: int, deadline_s: float
) -> dict[str, object]:
    store = Store(db_url)
    csms = Csms(store, port=0)
    await csms.start()
    url = f"ws://127.0.0.1:{csms.port}"
    shares = [n // procs + (1 if k < n % procs else 0) for k in range(procs)]
    sims = [
        subprocess.Popen(
            [sys.executable, "-c", SIM, url, str(m), str(reports), str(interval), str(hold), f"SIM{k}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k, m in enumerate(shares)
    ]
    t0 = time.perf_counter()
    deadline = t0 + deadline_s
    expected = n * reports * 3
    t_connected = t_first = t_last = None
    while time.perf_counter() < deadline and all(p.poll() is None for p in sims):
        now = time.perf_counter()
        if t_connected is None and len(csms.stations) >= n:
            t_connected = now
        if t_first is None and csms.committed_values > 0:
            t_first = now
        if csms.committed_values >= expected:
            t_last = now
            break
        await asyncio.sleep(0.02)
    committed = csms.committed_values
    connected = len(csms.stations)
    sims_alive = all(p.poll() is None for p in sims)
    cut_short = None
    if connected < n:
        cut_short = f"{connected} of {n} stations connected"
    elif t_last is None:
        cut_short = f"{committed} of {expected} meter values committed before " + (
            "the deadline" if sims_alive else "a simulator process ended"
        )
    # Fan-out: every station the simulators run, each its own set-point, all at once (a station that is not
    # connected counts as not accepted).
    ids = [f"SIM{k}-{i:05d}" for k, m in enumerate(shares) for i in range(m)]
    targets = set_points_w(ids)
    cpu0 = time.process_time()
    result = await csms.dispatch(targets, timeout_s=30.0, retries=0)
    fanout_cpu = time.process_time() - cpu0
    settled = [r["settled_s"] if r["status"] == "Accepted" else None for r in result.values()]
    api_targets = set_points_w(ids, base_w=3000.0)
    api_out = await api_round(csms, ids, api_targets) if cut_short is None else dict.fromkeys(API_KEYS)
    if cut_short is not None:  # no use waiting for the simulators to finish their script
        for p in sims:
            p.terminate()
    # In a thread: the event loop keeps serving the stations while they finish (and close their connections).
    outs = [await asyncio.to_thread(p.communicate, timeout=hold + 120) for p in sims]
    await csms.stop()
    stored = store.count_meter_values()
    store.engine.dispose()
    parsed = [_last_json(o) for o, _ in outs]
    rss = [p["rss_kb"] / 1024 for p in parsed if p is not None]
    sim_rss = max(rss) if rss else None
    err = "".join(e for _, e in outs)
    received = received_set_points([o for o, _ in outs])
    first = {sid: vs[:1] for sid, vs in received.items()}  # the direct dispatch's profile
    second = {sid: vs[1:2] for sid, vs in received.items()}  # the API's
    rate = committed / (t_last - t_first) if t_first and t_last and t_last > t_first else None
    api_as_targeted = setpoint_checks(second, api_targets)["setpoints_as_targeted"] if cut_short is None else None
    return {
        "stations": connected,
        "connect_s": round(t_connected - t0, 2) if t_connected else None,
        "accepted": sum(t is not None for t in settled),
        "timeouts": sum(r["status"] == "timeout" for r in result.values()),
        **setpoint_checks(first, targets),
        "fanout_p50_s": _pct(settled, 0.5),
        "fanout_p99_s": _pct(settled, 0.99),
        "fanout_server_cpu_s": round(fanout_cpu, 3),
        "meter_values_per_s": round(rate, 1) if rate else None,
        "meter_values_committed": committed,
        "meter_values_stored": stored,
        "server_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "simulator_rss_mb": round(sim_rss, 1) if sim_rss else None,
        "simulator_processes": procs,
        "simulator_errors": err.count("failed"),
        **api_out,
        "api_setpoints_as_targeted": api_as_targeted,
        "cut_short": cut_short,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stations", type=int, default=1000)
    parser.add_argument("--reports", type=int, default=5, help="MeterValues rounds while measuring ingest")
    parser.add_argument("--interval", type=float, default=0.0, help="seconds between rounds (0: back to back)")
    parser.add_argument("--hold", type=float, default=60.0, help="seconds the stations stay for the fan-out")
    parser.add_argument("--sim-procs", type=int, default=1, help="simulator processes sharing the stations")
    parser.add_argument("--deadline", type=float, default=600.0, help="seconds for connecting and reporting")
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite", help="the store's database")
    args = parser.parse_args()
    out = asyncio.run(
        main_async(args.stations, args.reports, args.interval, args.hold, args.sim_procs, args.deadline, args.db)
    )
    print(json.dumps(out, allow_nan=False))
    if out["cut_short"] is not None:
        sys.exit(1)


if __name__ == "__main__":
    main()
