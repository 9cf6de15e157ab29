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
second one: the first compiled the numba kernels). Target (issue 18): a whole cycle for 10,000 EVs <= 10 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time

import numpy as np

from v2gtwin.live_plan import plan_cycle
from v2gtwin.live_state import read_live_state, update_need_book
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=20261125)
    a = ap.parse_args()
    now = dt.datetime(2026, 11, 27, 18, 0, tzinfo=dt.UTC)
    st_text, nd_text = api_json(a.n, now, a.seed)
    scen = Scenario(seed=a.seed)
    out: dict[str, object] = {}
    for _warm in (False, True):  # the first cycle compiles the kernels; the second is timed
        t0 = time.perf_counter()
        state = read_live_state(json.loads(st_text), json.loads(nd_text), now)
        book = update_need_book({}, state)
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
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
