"""Benchmark: serial against threaded EV stages in the frequency dynamics, by fleet size (the crossover that
sets ``v2gtwin.grid.frequency.PARALLEL_MIN_EVS``).

For each ``--sizes`` fleet, runs ``--t-end-s`` seconds of dynamics at 10 ms (RK4) with the EV stages on one
thread and on numba's threads, after a warm-up that compiles both kernels. Prints one JSON line: ``sizes``,
``serial_s`` and ``parallel_s`` (medians of ``--repeats`` wall times per size), ``threads`` (numba's thread
count) and ``crossover_n_evs`` (the smallest size at which the threaded run was faster, or null).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numba
import numpy as np

from v2gtwin.grid.frequency import DroopFleet, SystemParams, run_dynamics


def _fleet(n: int, rng: np.random.Generator) -> DroopFleet:
    return DroopFleet(
        p_rated_kw=np.full(n, 7.2),
        headroom_up_kw=rng.uniform(0, 14.4, n),
        headroom_down_kw=rng.uniform(0, 7.2, n),
        deadband_hz=np.full(n, 0.036),
        droop_pu=np.full(n, 0.05),
        t_response_s=rng.uniform(0.2, 1.0, n),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1_000, 5_000, 20_000, 100_000])
    parser.add_argument("--t-end-s", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(20261125)
    system = SystemParams(s_base_kw=1e6, p_gen_kw=1e6, d_load_kw_per_hz=1e6 / 60)
    warm = _fleet(100, rng)
    for parallel in (False, True):
        run_dynamics(warm, system, 50_000.0, t_end_s=0.1, parallel=parallel)
    serial_s, parallel_s = [], []
    for n in args.sizes:
        fleet = _fleet(n, rng)
        for parallel, out in ((False, serial_s), (True, parallel_s)):
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                run_dynamics(fleet, system, 50_000.0, t_end_s=args.t_end_s, dt_s=0.01, parallel=parallel)
                times.append(time.perf_counter() - t0)
            out.append(round(statistics.median(times), 4))
    crossover = next((n for n, s, p in zip(args.sizes, serial_s, parallel_s, strict=True) if p < s), None)
    print(
        json.dumps(
            {
                "sizes": args.sizes,
                "t_end_s": args.t_end_s,
                "serial_s": serial_s,
                "parallel_s": parallel_s,
                "threads": numba.get_num_threads(),
                "crossover_n_evs": crossover,
            }
        )
    )


if __name__ == "__main__":
    main()
