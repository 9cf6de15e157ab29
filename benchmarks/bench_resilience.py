"""Benchmark: the critical facility through an outage (``v2gtwin.grid.resilience.run_outage``).

Prints one JSON line. Keys:

* ``n_evs``, ``n_steps_sim``, ``dt_sim_s``: the case: a 500 kW flat critical load, a 350 kW generator after
  10 s, ``n_evs`` V2G EVs near the facility (7.2 kW, 10-60 kWh above their floors, seeded), delay 5 s, time
  constant 2 s, ramp 50 kW/s, an outage of ``n_steps_sim`` simulation steps (default 24 h at 1 s).
* ``outage_s``: median over ``--repeats`` runs of the wall time of one ``run_outage`` (kernel loaded from numba's
  cache before the clock starts); ``outage_runs_s``: every run.
* ``ev_steps_per_s``: ``n_evs x n_steps_sim / outage_s``.
* ``analysis_s``: median wall time of the study's resilience step on the default scenario (14,400 steps, 50 EVs,
  the 7-size sweep: 9 outages; the V2G cap from the feeder's export envelope at the facility bus included).

Run: ``python benchmarks/bench_resilience.py`` (``--n-evs``, ``--hours``, ``--repeats``).
Figures are wall times on a shared machine: indicative.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from v2gtwin.grid.resilience import OutageFleet, V2gDynamics, run_outage
from v2gtwin.scenario import DEFAULT_SCENARIO
from v2gtwin.study import StudyChain


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-evs", type=int, default=1000)
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(1)
    n, m, dt = round(args.hours * 3600), args.n_evs, 1.0
    fleet = OutageFleet(
        rng.uniform(10.0, 60.0, m), np.zeros(m), np.full(m, 7.2), np.full(m, 0.95), np.zeros(m, np.int64),
        rng.integers(n // 4, 2 * n, m),
    )  # fmt: skip
    dyn = V2gDynamics(delay_s=5.0, tau_s=2.0, ramp_kw_per_s=50.0)
    load = np.full(n, 500.0)
    run_outage(load[:10], dt, fleet, dyn, gen_kw=350.0)  # load the kernel
    runs = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        run_outage(load, dt, fleet, dyn, gen_kw=350.0, gen_start_delay_s=10.0)
        runs.append(time.perf_counter() - t0)
    # The study's own step on the default scenario, after the steps it reads (its V2G cap is the feeder's export
    # envelope at the facility bus, computed inside the step and timed with it).
    chain = StudyChain(DEFAULT_SCENARIO)
    for step in ("build_fleet", "uncontrolled", "network", "feeder", "resilience"):
        getattr(chain, step)()
    ana = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        chain.resilience()
        ana.append(time.perf_counter() - t0)
    med = statistics.median(runs)
    print(
        json.dumps(
            {
                "n_evs": m,
                "n_steps_sim": n,
                "dt_sim_s": dt,
                "outage_s": round(med, 4),
                "outage_runs_s": [round(r, 4) for r in runs],
                "ev_steps_per_s": round(m * n / med),
                "analysis_s": round(statistics.median(ana), 4),
            }
        )
    )


if __name__ == "__main__":
    main()
