"""Benchmark: dynamic operating envelopes of 100,000 EVs on 100 synthetic feeders of 33-200 buses, 96 steps.

Prints one JSON line. Keys:

* ``n_evs``, ``n_feeders``, ``n_bus_total``, ``n_steps``: the case. Feeder sizes are drawn uniformly in
  [33, 200] buses (seeded); every feeder is :func:`v2gtwin.grid.feeder.synthetic_feeder` (its weakest bus at
  0.95 pu under its nominal load) with the base load ``peak_load_scale`` x nominal x the RTS-79 daily shape.
  EVs are placed on feeders in proportion to the feeders' loads and on buses in proportion to the buses'
  loads (a seeded multinomial draw; the scenario's own placement, ``grid.network.build_network``, may
  replace it).
* ``envelope_s``: median over ``--repeats`` runs of the wall time of all feeders' envelopes
  (:func:`v2gtwin.grid.envelopes.calc_operating_envelope`, rule ``equal_per_ev``, import and export, each
  verified by exact AC) on ``threads`` cores: the feeders are independent, so they are shared among
  ``threads`` worker processes (``--workers``, default 2), each running numba on one thread (the pool is
  started and its kernels loaded before the clock starts; sending the feeders and returning the envelopes
  is timed). ``envelope_runs_s``: every run.
* ``envelope_1thread_s``: the same, feeders one after the other in this process on one thread (median).
  ``--numba-threads`` adds ``envelope_numba_threads_s``: one process, each power flow on numba's threads
  (all cores): a 96-step power flow of a 33-200-bus feeder is too small to share between threads, and on a
  busy machine a thread that waits for a core stalls every solve.
* ``envelope_ac_violations``: bus-steps outside [0.95, 1.05] pu plus branch-steps above ampacity over all feeders,
  exact AC, with every EV at its allocated import (and, separately, export) limit at once: 0 expected (counted
  once; ``envelope_ac_violations_pooled_equals_serial`` says whether the pooled and the serial runs of the same
  envelopes agree, and a mismatch adds an ``error`` key naming both counts).
* ``envelope_vs_per_bus_max``: on the first feeder, the sum over buses of the simultaneous import limit at the
  day's peak step divided by the sum of the per-bus optimistic bounds (how much a per-bus figure overstates).

* ``schedule_s``: wall time of the network-constrained day-ahead schedule of the same EVs on the same feeders
  (:func:`v2gtwin.optimize.network_schedule.solve_network_schedule`: each bus's inner virtual battery, one LP per
  feeder with the linearised voltage and thermal limits, the exact-AC check and tightening rounds, the
  disaggregation to every EV), one run, ``schedule_workers`` processes (default 1: HiGHS holds the GIL, and a
  spawned pool costs seconds to start). The fleet is the default scenario's synthetic fleet with as many EVs; EVs
  that cannot reach their target even at full power from arrival have no feasible schedule and are left out:
  ``n_evs_scheduled`` says how many remain. ``linearise_s``: the feeders' exact base cases and sensitivities,
  timed apart. ``schedule_ac_violations`` / ``schedule_base_violations``: bus-steps and branch-steps outside the
  limits by exact AC caused by the EVs / by the base load alone; ``schedule_rounds``: tightening rounds used;
  ``schedule_ac_violations_unconstrained`` and ``schedule_cost_unconstrained_per_horizon``: the same EVs scheduled
  without the network rows (not timed), so that the secure schedule's zero and its cost can be judged.
* ``ac_violations``: the envelopes' and the schedule's violations by exact AC together (0 expected).

Run: ``python benchmarks/bench_network.py`` (``--quick``: 10 feeders, 10,000 EVs, one run; ``--no-schedule``:
envelopes only).
Figures are wall times on a shared machine: indicative.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numba
import numpy as np

from v2gtwin.fleet import synthesize_fleet
from v2gtwin.grid.envelopes import OperatingEnvelope, calc_operating_envelope
from v2gtwin.grid.feeder import Feeder, synthetic_feeder
from v2gtwin.grid.linear import calc_linear_model
from v2gtwin.grid.profiles import calc_daily_profile
from v2gtwin.markets.analysis import calc_price_curve
from v2gtwin.markets.scheduling import calc_reachable
from v2gtwin.optimize.network_schedule import solve_network_schedule
from v2gtwin.scenario import DEFAULT_SCENARIO, FleetSpec


def build_case(
    n_feeders: int, n_evs: int, n_steps: int, seed: int, peak_load_scale: float
) -> list[tuple[Feeder, np.ndarray, np.ndarray, np.ndarray]]:
    """(feeder, p_base_kw, q_base_kvar, EVs per bus) for every feeder."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(33, 201, size=n_feeders)
    feeders = [synthetic_feeder(int(n), rng, total_load_kw=float(n) * 30.0) for n in sizes]
    shape = calc_daily_profile(n_steps, 86400.0 / n_steps, 12.0) * peak_load_scale
    load = np.array([f.p_load_kw.sum() for f in feeders])
    ev_per_feeder = rng.multinomial(n_evs, load / load.sum())
    out = []
    for f, n_ev in zip(feeders, ev_per_feeder, strict=True):
        n_ev_bus = rng.multinomial(int(n_ev), f.p_load_kw / f.p_load_kw.sum()).astype(float)
        out.append((f, shape[:, None] * f.p_load_kw, shape[:, None] * f.q_load_kvar, n_ev_bus))
    return out


Case = list[tuple[Feeder, np.ndarray, np.ndarray, np.ndarray]]


def envelope_of(item: tuple[Feeder, np.ndarray, np.ndarray, np.ndarray]) -> OperatingEnvelope:
    f, p, q, w = item
    return calc_operating_envelope(f, p, q, rule="equal_per_ev", weight_bus=w)


def _one_thread() -> None:
    numba.set_num_threads(1)


def _warm(_: int) -> int:
    f = synthetic_feeder(33, np.random.default_rng(0))
    envelope_of((f, f.p_load_kw[None, :] * 0.5, f.q_load_kvar[None, :] * 0.5, np.r_[0.0, np.ones(32)]))
    return 0


def run_envelopes(case: Case, pool: ProcessPoolExecutor | None = None) -> tuple[float, int, OperatingEnvelope]:
    """Wall time of every feeder's envelope, total exact-AC violations, the first feeder's envelope."""
    t0 = time.perf_counter()
    envs = list(pool.map(envelope_of, case, chunksize=4) if pool is not None else map(envelope_of, case))
    dt = time.perf_counter() - t0
    return dt, sum(e.ac_violations for e in envs), envs[0]


def run_schedule(case: Case, seed: int, workers: int = 1) -> dict[str, Any]:
    """The network-constrained schedule of the case's EVs (the k-th EV of a bus charges at that bus)."""
    rng = np.random.default_rng([seed, 12])
    tg = DEFAULT_SCENARIO.time
    if len(case[0][1]) != tg.n_steps:
        raise SystemExit(f"the schedule uses the default scenario's {tg.n_steps} steps")
    t0 = time.perf_counter()
    models = [calc_linear_model(f, p, q) for f, p, q, _ in case]
    linearise_s = time.perf_counter() - t0
    ev_feeder = np.concatenate([np.full(int(w.sum()), k) for k, (_, _, _, w) in enumerate(case)]).astype(np.int64)
    ev_bus = np.concatenate([np.repeat(np.arange(w.size), w.astype(np.int64)) for _, _, _, w in case])
    fleet = synthesize_fleet(FleetSpec(n_evs=int(ev_feeder.size)), tg, 2, rng)
    keep = calc_reachable(fleet)
    price = calc_price_curve(DEFAULT_SCENARIO.markets, tg)
    t0 = time.perf_counter()
    r = solve_network_schedule(
        fleet.subset(keep),
        models,
        ev_feeder[keep],
        ev_bus[keep],
        price,
        workers=workers,
        degradation_per_mwh=DEFAULT_SCENARIO.markets.degradation_per_mwh,
    )
    schedule_s = time.perf_counter() - t0
    # The same EVs without the network rows (not timed): its violations show that the secure schedule's zero is earned.
    free = solve_network_schedule(
        fleet.subset(keep),
        models,
        ev_feeder[keep],
        ev_bus[keep],
        price,
        workers=workers,
        network_secure=False,
        degradation_per_mwh=DEFAULT_SCENARIO.markets.degradation_per_mwh,
    )
    return {
        "schedule_s": round(schedule_s, 2),
        "n_evs_scheduled": int(keep.sum()),
        "schedule_workers": workers,
        "linearise_s": round(linearise_s, 2),
        "schedule_ac_violations": int(r.ac_violations),
        "schedule_base_violations": int(r.base_violations),
        "schedule_rounds": int(r.rounds),
        "schedule_v_min_pu": round(float(r.v_min_pu), 5),
        "schedule_ac_violations_unconstrained": int(free.ac_violations),
        "schedule_cost_per_horizon": round(float(r.cost_per_horizon), 1),
        "schedule_cost_unconstrained_per_horizon": round(float(free.cost_per_horizon), 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10 feeders, 10,000 EVs, one run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--numba-threads", action="store_true", help="also time one process on numba's threads")
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--peak-load-scale", type=float, default=0.8)
    ap.add_argument("--no-schedule", action="store_true", help="envelopes only")
    ap.add_argument("--schedule-workers", type=int, default=1)
    args = ap.parse_args()
    n_feeders, n_evs, repeats = (10, 10_000, 1) if args.quick else (100, 100_000, args.repeats)
    n_steps = 96
    case = build_case(n_feeders, n_evs, n_steps, args.seed, args.peak_load_scale)
    out: dict[str, Any] = {
        "n_evs": n_evs,
        "n_feeders": n_feeders,
        "n_bus_total": int(sum(c[0].n_bus for c in case)),
        "n_steps": n_steps,
    }
    threads_all = numba.get_num_threads()
    runs_numba = []
    if args.numba_threads:
        run_envelopes(case[:1])  # compilation / cache load, untimed
        runs_numba = [run_envelopes(case)[0] for _ in range(repeats)]
    _one_thread()
    run_envelopes(case[:1])
    runs_1 = []
    for _ in range(repeats):
        dt, violations_1, first = run_envelopes(case)
        runs_1.append(dt)
    # Spawned, not forked: numba's OpenMP threads do not survive a fork.
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.workers, mp_context=spawn, initializer=_one_thread) as pool:
        list(pool.map(_warm, range(4 * args.workers)))
        runs = []
        violations = 0
        for _ in range(repeats):
            dt, violations, _env = run_envelopes(case, pool)
            runs.append(dt)
    f, p, q, _ = case[0]
    peak = int(np.argmax(p.sum(axis=1)))
    per_bus = calc_operating_envelope(f, p[peak : peak + 1], q[peak : peak + 1], rule="per_bus_max")
    ratio = float(first.p_import_max_kw[peak].sum() / per_bus.p_import_max_kw[0].sum())
    out |= {
        "envelope_s": round(statistics.median(runs), 3),
        "envelope_runs_s": [round(r, 3) for r in runs],
        "threads": args.workers,
        "envelope_1thread_s": round(statistics.median(runs_1), 3),
    }
    if runs_numba:
        out |= {"envelope_numba_threads_s": round(statistics.median(runs_numba), 3), "numba_threads": threads_all}
    sched = {} if args.no_schedule else run_schedule(case, args.seed, args.schedule_workers)
    out |= sched
    out |= {
        # The pooled and the serial runs compute the same envelopes: their counts are reported once, and a
        # mismatch between them is an error in the output, not a silent sum.
        "envelope_ac_violations": int(violations),
        "envelope_ac_violations_pooled_equals_serial": violations == violations_1,
        "ac_violations": int(violations) + int(sched.get("schedule_ac_violations", 0)),
        "envelope_vs_per_bus_max": round(ratio, 4),
        "rule": "equal_per_ev",
        "peak_load_scale": args.peak_load_scale,
        "cpu_count": os.cpu_count(),
    }
    if violations != violations_1:
        out["error"] = (
            f"envelope_ac_violations: the pooled run found {violations}, the serial run {violations_1} "
            "(the same envelopes must give the same count)"
        )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
