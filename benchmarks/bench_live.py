"""Benchmark: one closed-loop cycle on the model side for N live EVs (default 10,000).

The state comes in as the central system's API answers it (``/stations`` and ``/charging-needs`` JSON, built from
the scenario's synthetic fleet: every EV plugged in now, its departure its dwell time from now, its request its
energy need) and is parsed from JSON text, as the loop receives it; then the cycle's model side runs
(:func:`v2gtwin.live_plan.plan_cycle`: state -> fleet arrays -> envelope -> per-EV schedule for the rest of the
horizon -> set-points) and the set-points are encoded as the POST body. The set-points' fan-out to the stations is
not run here: with N = 10,000 simulated stations, the central system and the loop on the same two shared cores,
``benchmarks/bench_csms.py`` measures it (and ``api_dispatch_p99_s`` through the API); the closed-loop cycle is
the sum of ``model_s`` here and that fan-out.

Prints one JSON line: ``n_evs``, ``n_steps`` (the cycle's horizon), ``parse_s`` (JSON text -> LiveState),
``plan_s`` (plan_cycle, of which ``schedule_solve_s`` the LP), ``plan_cpu_s`` (its CPU time over all threads: above
``plan_s`` when the numba kernels ran in parallel, below when other processes held the cores), ``encode_s``
(set-points -> JSON body), ``model_s`` (parse + plan + encode), ``solver``, ``warm`` (the timed cycle is the
second one: the first compiled the numba kernels). ``--threads`` (default 1, as ``live --threads``): the numba
threads of the model side (key ``threads``). Target (issue 18): a whole cycle for 10,000 EVs <= 10 s.

``--through-api``: a whole cycle instead — a central system with its HTTP API in this process (as ``csms serve
--api-port``), ``--n`` simulated stations carrying the scenario fleet's EVs in another process, and the loop's own
:func:`v2gtwin.live.run_cycle` through the API (two cycles, the second timed). Prints ``n_stations``,
``connect_s`` (until every station's charging needs were in), ``cycle_s`` (the whole cycle), ``read_s`` (the two
GETs), ``plan_s`` (the model side), ``send_s`` (the set-point POST until every station answered), ``accepted``,
``latency_p99_s`` (nearest rank over every station, as ``bench_csms.py``'s ``fanout_p99_s``: a station not
accepted or not sent a set-point ranks above every acknowledgement time, so null when more than 1 % did not
accept), ``threads`` (``--threads``) and ``error``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time

import numpy as np

from v2gtwin.cyber.csms.outcomes import percentile_s
from v2gtwin.live_plan import plan_cycle
from v2gtwin.live_state import NeedBook, read_live_state, update_need_book
from v2gtwin.scenario import Scenario
from v2gtwin.study import build_fleet


def api_json(n: int, now: dt.datetime, seed: int) -> tuple[str, str]:
    """The API's two answers for ``n`` synthetic EVs, as JSON text."""
    scen = Scenario(seed=seed, fleet={"n_evs": n})  # type: ignore[arg-type]
    f = build_fleet(scen)
    dwell_s = np.maximum(f.departure_step - f.arrival_step, 1) * f.dt_s
    need = np.clip(f.soc_target_pu - f.soc0_pu, 0, None) * f.capacity_kwh
    stations, needs = [], []
    for i in range(n):
        sid = f"CS-{i:05d}"
        v2x = bool(f.p_discharge_max_kw[i] > 0)
        p_max = float(f.p_charge_max_kw[i])
        stations.append(
            {
                "station_id": sid,
                "connected": True,
                "status": "Available",
                "last_seen": now.isoformat(),
                "evses": [
                    {
                        "evse_id": 1,
                        "status": "Occupied",
                        "p_kw": 0.0,
                        "soc_pu": round(float(f.soc0_pu[i]), 3),
                        "transaction_id": f"T{i}",
                        "p_max_kw": p_max,
                        "p_min_kw": -p_max if v2x else 0.0,
                    }
                ],
            }
        )
        needs.append(
            {
                "station_id": sid,
                "evse_id": 1,
                "departure_time": (now + dt.timedelta(seconds=float(dwell_s[i]))).isoformat(),
                "e_request_kwh": round(float(need[i]), 3),
                "soc_pu": None,
                "p_max_kw": p_max,
                "p_min_kw": -p_max if v2x else 0.0,
                "v2x": v2x,
                "capacity_kwh": float(f.capacity_kwh[i]),
            }
        )
    return json.dumps({"stations": stations}), json.dumps({"needs": needs})


SIM = """
import asyncio, sys
from v2gtwin.cyber.csms.simulator import run_fleet
from v2gtwin.cyber.csms.validation import configure_ocpp_validation
from v2gtwin.cyber.fleet_link import fleet_to_sim_evs
from v2gtwin.scenario import Scenario
from v2gtwin.study import build_fleet
configure_ocpp_validation()
url, n, seed, hold_s = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
evs = fleet_to_sim_evs(build_fleet(Scenario(seed=seed, fleet={"n_evs": n})))
asyncio.run(run_fleet(url, n, evs=evs, reports=1, hold_s=hold_s, connect_batch=500, prefix="LIVE", freeze_gc=True))
"""


def through_api(n: int, seed: int, threads: int = 1) -> dict[str, object]:
    """Two whole cycles (the second timed) of the loop against a central system with its API (this process, its
    own event loop in a thread) and ``n`` simulated stations (another process) carrying the scenario fleet's EVs."""
    import asyncio
    import os
    import shutil
    import subprocess
    import sys
    import tempfile
    import threading
    from pathlib import Path

    from v2gtwin.cyber.api_client import ApiClient
    from v2gtwin.cyber.csms.api_server import ApiServer
    from v2gtwin.cyber.csms.server import Csms
    from v2gtwin.cyber.csms.store import Store
    from v2gtwin.live import run_cycle

    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict[str, object] = {}
    tmp = tempfile.mkdtemp(dir=Path.cwd())
    store = Store(f"sqlite:///{Path(tmp) / 'live.sqlite'}")

    async def serve() -> None:
        csms = Csms(store, port=0)
        await csms.start()
        api = ApiServer(csms, port=0)
        box.update(csms=csms, api=api, token=api.tokens.create("bench"), stop=asyncio.Event())
        await api.start()
        ready.set()
        await box["stop"].wait()  # type: ignore[attr-defined]
        await api.stop()
        await csms.stop()

    th = threading.Thread(target=lambda: loop.run_until_complete(serve()), daemon=True)
    th.start()
    if not ready.wait(60):
        shutil.rmtree(tmp, ignore_errors=True)
        raise SystemExit("the central system did not start within 60 s")
    csms, api = box["csms"], box["api"]
    env = dict(os.environ)
    sim = subprocess.Popen(
        [sys.executable, "-c", SIM, f"ws://127.0.0.1:{csms.port}", str(n), str(seed), "3600"],  # type: ignore[attr-defined]
        env=env,
    )
    try:
        client = ApiClient(api.url, str(box["token"]), timeout_s=120.0)  # type: ignore[attr-defined]
        t0 = time.perf_counter()
        while len(client.charging_needs()) < n:
            if sim.poll() is not None or time.perf_counter() - t0 > 900:
                raise SystemExit(f"the simulator did not bring {n} stations in")
            time.sleep(2.0)
        connect_s = time.perf_counter() - t0
        scen = Scenario(seed=seed)
        book: NeedBook = {}
        now = dt.datetime.now(dt.UTC)
        rec: dict[str, object] = {}
        for k in range(2):
            rec, book, _ = run_cycle(client, scen, book, cycle=k, t_utc=now, timeout_s=30.0)
        res = rec.get("results") or []
        acc = [r for r in res if r.get("status") == "Accepted"]  # type: ignore[union-attr]
        # Over every station (as bench_csms's fanout_p99_s): one not accepted, or not sent a set-point, ranks above
        # every time, so the p99 is null when more than 1 % did not accept.
        lat: list[float | None] = [
            float(r["latency_s"]) if r.get("status") == "Accepted" and r.get("latency_s") is not None else None  # type: ignore[index,union-attr]
            for r in res
        ]
        lat += [None] * max(0, n - len(lat))
        p99 = percentile_s(lat, 0.99)
        plan = rec.get("plan") or {}
        return {
            "n_stations": n,
            "connect_s": round(connect_s, 1),
            "cycle_s": round(float(rec["cycle_s"]), 3),  # type: ignore[arg-type]
            "read_s": round(float(rec.get("read_s", 0.0)), 3),  # type: ignore[arg-type]
            "plan_s": round(float(plan.get("solve_s", 0.0)), 3),  # type: ignore[union-attr]
            "send_s": round(float(rec.get("send_s", 0.0)), 3),  # type: ignore[arg-type]
            "accepted": len(acc),
            "latency_p99_s": round(p99, 3) if p99 is not None else None,
            "threads": threads,
            "solver": plan.get("solver"),  # type: ignore[union-attr]
            "schedule_solve_s": plan.get("schedule_solve_s"),  # type: ignore[union-attr]
            "n_steps": plan.get("n_steps"),  # type: ignore[union-attr]
            "import_cap_note": plan.get("import_cap_note"),  # type: ignore[union-attr]
            "error": rec.get("error"),
        }
    finally:
        sim.terminate()
        sim.wait(60)
        loop.call_soon_threadsafe(box["stop"].set)  # type: ignore[attr-defined]
        th.join(60)
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=20261125)
    ap.add_argument(
        "--through-api",
        action="store_true",
        help="a whole cycle against a central system, its API and N simulated stations (another process)",
    )
    ap.add_argument("--threads", type=int, default=1, help="numba threads of the model side (as live --threads)")
    a = ap.parse_args()
    import numba

    numba.set_num_threads(min(a.threads, numba.config.NUMBA_NUM_THREADS))
    if a.through_api:
        print(json.dumps(through_api(a.n, a.seed, a.threads)))
        return
    now = dt.datetime(2026, 11, 27, 18, 0, tzinfo=dt.UTC)
    st_text, nd_text = api_json(a.n, now, a.seed)
    scen = Scenario(seed=a.seed)
    out: dict[str, object] = {}
    for _warm in (False, True):  # the first cycle compiles the kernels; the second is timed
        t0 = time.perf_counter()
        state = read_live_state(json.loads(st_text), json.loads(nd_text), now)
        book = update_need_book({}, state, scen.fleet.eta_charge, scen.fleet.eta_discharge)
        t1, c1 = time.perf_counter(), time.process_time()
        plan = plan_cycle(scen, state, book)
        t2, c2 = time.perf_counter(), time.process_time()
        body = json.dumps(
            {
                "setpoints": [
                    {"station_id": s, "evse_id": int(e), "p_kw": round(float(p), 3)}
                    for s, e, p in zip(state.station_id, state.evse_id, plan.p_set_kw, strict=True)
                ],
                "timeout_s": 10,
            }
        )
        t3 = time.perf_counter()
        out = {
            "n_evs": plan.fleet.n,
            "n_steps": plan.time.n_steps,
            "parse_s": round(t1 - t0, 3),
            "plan_s": round(t2 - t1, 3),
            "plan_cpu_s": round(c2 - c1, 3),
            "schedule_solve_s": None if plan.schedule is None else round(plan.schedule.solve_s, 3),
            "encode_s": round(t3 - t2, 3),
            "model_s": round(t3 - t0, 3),
            "body_mb": round(len(body) / 1e6, 2),
            "solver": None if plan.schedule is None else plan.schedule.solver,
            "import_cap_note": plan.import_cap_note,
            "warm": _warm,
            "threads": a.threads,
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
