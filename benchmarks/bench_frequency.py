"""Benchmark: 100,000 individually modelled EV inverters in the single-area frequency dynamics (30 s at 10 ms,
RK4), and the regulation (AGC-signal) allocation for 100,000 EVs over one hour at 2 s.

Prints one JSON line: ``n_evs``, ``dynamics_wall_s``, ``inverter_steps_per_s``, ``agc_wall_s`` (medians of
``--repeats`` runs after a small warm-up that compiles the kernels). Target (issue 4): dynamics <= 10 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from v2gtwin.grid.agc import generate_regd_signal, run_regulation
from v2gtwin.grid.frequency import DroopFleet, SystemParams, run_dynamics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-evs", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    n = args.n_evs
    rng = np.random.default_rng(20261125)
    fleet = DroopFleet(
        p_rated_kw=np.full(n, 7.2),
        headroom_up_kw=rng.uniform(0, 14.4, n),
        headroom_down_kw=rng.uniform(0, 7.2, n),
        deadband_hz=np.full(n, 0.036),
        droop_pu=np.full(n, 0.05),
        t_response_s=rng.uniform(0.2, 1.0, n),
    )
    system = SystemParams(s_base_kw=1e6, p_gen_kw=1e6, d_load_kw_per_hz=1e6 / 60)
    small = DroopFleet(
        *(
            a[:100]
            for a in (
                fleet.p_rated_kw,
                fleet.headroom_up_kw,
                fleet.headroom_down_kw,
                fleet.deadband_hz,
                fleet.droop_pu,
                fleet.t_response_s,
            )
        )
    )
    run_dynamics(small, system, 50_000.0, t_end_s=1.0)
    dyn_times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        res = run_dynamics(fleet, system, 50_000.0, t_end_s=30.0, dt_s=0.01)
        dyn_times.append(time.perf_counter() - t0)
    dyn_s = statistics.median(dyn_times)
    steps = res.t_s.size - 1

    sig = generate_regd_signal(1800, rng)
    ev = dict(
        soc0_pu=rng.uniform(0.3, 0.9, n),
        capacity_kwh=np.full(n, 60.0),
        soc_min_pu=np.full(n, 0.2),
        soc_max_pu=np.ones(n),
        p0_kw=np.zeros(n),
        p_charge_max_kw=np.full(n, 7.2),
        p_discharge_max_kw=np.full(n, 7.2),
        eta_charge=np.full(n, 0.95),
        eta_discharge=np.full(n, 0.95),
    )
    run_regulation(sig[:200], 2.0, 1000.0, **{k: v[:100] for k, v in ev.items()})
    agc_times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        reg = run_regulation(sig, 2.0, 0.5 * 7.2 * n, **ev, allocation="soc_aware")
        agc_times.append(time.perf_counter() - t0)
    print(
        json.dumps(
            {
                "n_evs": n,
                "dynamics_wall_s": round(dyn_s, 3),
                "inverter_steps_per_s": round(n * steps / dyn_s),
                "agc_wall_s": round(statistics.median(agc_times), 3),
                "dynamics_runs_s": [round(t, 3) for t in dyn_times],
                "agc_runs_s": [round(t, 3) for t in agc_times],
                "dynamics_steps": steps,
                "agc_steps": int(sig.size),
                "nadir_hz": round(res.nadir_hz, 5),
                "df_nadir_hz": round(res.df_nadir_hz, 5),
                "regulation_score": round(reg.score.composite, 4),
            }
        )
    )


if __name__ == "__main__":
    main()
