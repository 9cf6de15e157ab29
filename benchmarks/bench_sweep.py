"""Benchmark: a sweep on a LocalCluster against the same scenarios one after the other in one process.

Prints one JSON line. Keys:

* ``n_scenarios``, ``target``, ``n_workers``, ``cores``: the case: ``--n`` seeds of the base scenario (``--n-evs``
  EVs on the one feeder, a day of hours), each computing ``--target`` (default the fleet section,
  ``envelope,uncontrolled``; ``--target study`` for the whole study).
* ``plan_seconds``: deriving and validating every scenario (``plan_sweep``).
* ``cluster_start_seconds``: starting the LocalCluster (``open_client``: worker processes, nannies, scheduler).
* ``sweep_seconds``: ``run_sweep`` until the table is written (the workers' first task includes their imports);
  ``total_seconds``: plan + cluster start + sweep.
* ``serial_seconds``: the same studies one after the other in this process (imports and kernels loaded first);
  ``speedup``: ``serial_seconds / sweep_seconds``.
* ``task_seconds_median``: median of the rows' ``time_s`` (a scenario's study on its worker).

Run: ``python benchmarks/bench_sweep.py`` (``--n``, ``--n-evs``, ``--target``, ``--workers``).
Figures are wall times on a shared machine: indicative.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from v2gtwin.scenario import parse_scenario
from v2gtwin.study import StudyChain
from v2gtwin.sweep import parse_param, plan_sweep
from v2gtwin.sweep_run import _usable_cores, open_client, run_sweep


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--n-evs", type=int, default=1000)
    ap.add_argument("--target", default="envelope,uncontrolled")
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args()
    target = None if args.target == "study" else args.target
    base = parse_scenario({"fleet": {"n_evs": args.n_evs}, "time": {"n_steps": 24, "dt_s": 3600}})
    t0 = time.perf_counter()
    plan = plan_sweep(base, [parse_param("seed=" + ",".join(str(i) for i in range(1, args.n + 1)))], target=target)
    plan_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        with open_client(None, args.workers) as (client, words):
            start_s = time.perf_counter() - t0
            t1 = time.perf_counter()
            outcome = run_sweep(plan, Path(tmp), client, cluster=words)
            sweep_s = time.perf_counter() - t1
            n_workers = len(client.scheduler_info(n_workers=-1)["workers"])
    targets = None if target is None else target.split(",")
    StudyChain(plan.cases[0].scenario).run(targets=targets)  # imports and kernels loaded before the clock
    t0 = time.perf_counter()
    for case in plan.cases:
        StudyChain(case.scenario).run(targets=targets)
    serial_s = time.perf_counter() - t0
    out = {
        "n_scenarios": len(plan.cases),
        "target": args.target,
        "n_evs": args.n_evs,
        "n_workers": n_workers,
        "cores": _usable_cores(),
        "n_ok": outcome.counts.get("ok", 0),
        "plan_seconds": round(plan_s, 3),
        "cluster_start_seconds": round(start_s, 3),
        "sweep_seconds": round(sweep_s, 3),
        "total_seconds": round(plan_s + start_s + sweep_s, 3),
        "serial_seconds": round(serial_s, 3),
        "speedup": round(serial_s / sweep_s, 3),
        "task_seconds_median": round(statistics.median(outcome.table["time_s"]), 3),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
