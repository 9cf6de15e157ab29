"""Benchmark: simulate_soc + calc_envelope on 1,000,000 EVs x 96 steps.

Prints one JSON line: {"n_evs", "n_steps", "seconds", "ev_steps_per_s", "peak_rss_mb", ...}. ``seconds`` is
the median of several timed runs of simulate_soc (float32 requests) followed by calc_envelope, after one
warm-up run on a small fleet (numba compilation is reported separately as ``first_call_s``).
Target (issue 2): >= 1e8 EV-steps/s and <= 4 GB on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time

import numpy as np

from v2gtwin.fleet import calc_envelope, simulate_soc, synthesize_fleet
from v2gtwin.scenario import DEFAULT_SCENARIO, FleetSpec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-evs", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    scenario = DEFAULT_SCENARIO
    rng = np.random.default_rng(scenario.seed)
    small = synthesize_fleet(FleetSpec(n_evs=1000), scenario.time, 33, rng)
    t0 = time.perf_counter()
    simulate_soc(small, np.zeros((small.n_steps, small.n), dtype=np.float32))
    calc_envelope(small)
    first_call_s = time.perf_counter() - t0

    fleet = synthesize_fleet(FleetSpec(n_evs=args.n_evs), scenario.time, 33, rng)
    # Requests: a random mix of charging and discharging up to each EV's limits.
    u = rng.random((fleet.n_steps, fleet.n), dtype=np.float32)
    request = (u * (fleet.p_charge_max_kw + fleet.p_discharge_max_kw) - fleet.p_discharge_max_kw).astype(np.float32)
    del u
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        result = simulate_soc(fleet, request)
        env = calc_envelope(fleet)
        times.append(time.perf_counter() - t0)
        del result
    seconds = statistics.median(times)
    ev_steps = fleet.n * fleet.n_steps
    print(
        json.dumps(
            {
                "n_evs": fleet.n,
                "n_steps": fleet.n_steps,
                "seconds": round(seconds, 4),
                "ev_steps_per_s": round(ev_steps / seconds),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "runs_s": [round(t, 4) for t in times],
                "first_call_s": round(first_call_s, 3),
                "n_plugged_max": int(env.n_plugged.max()),
            }
        )
    )


if __name__ == "__main__":
    main()
