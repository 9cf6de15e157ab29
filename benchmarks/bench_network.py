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
  verified by exact AC), feeders one after the other, each power flow on numba's ``threads`` threads;
  ``envelope_runs_s`` every run. The first run of the process (numba's compilation, read from its cache
  after the first time) is not timed.
* ``ac_violations``: bus-steps outside [0.95, 1.05] pu plus branch-steps above ampacity over all feeders,
  exact AC, with every EV at its allocated import (and, separately, export) limit at once: 0 expected.
* ``envelope_vs_per_bus_max``: on the first feeder, the sum over buses of the simultaneous import limit at the
  day's peak step divided by the sum of the per-bus optimistic bounds (how much a per-bus figure overstates).

``schedule_s`` (the network-constrained schedule) is measured by the schedule's part of this benchmark.

Run: ``python benchmarks/bench_network.py`` (``--quick``: 10 feeders, 10,000 EVs, one run).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import numba
import numpy as np

from v2gtwin.grid.envelopes import calc_operating_envelope
from v2gtwin.grid.feeder import Feeder, synthetic_feeder
from v2gtwin.grid.profiles import calc_daily_profile


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


def run_envelopes(case: list[tuple[Feeder, np.ndarray, np.ndarray, np.ndarray]]) -> tuple[float, int, Any]:
    t0 = time.perf_counter()
    violations = 0
    first = None
    for f, p, q, w in case:
        env = calc_operating_envelope(f, p, q, rule="equal_per_ev", weight_bus=w)
        violations += env.ac_violations
        first = first or env
    return time.perf_counter() - t0, violations, first


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10 feeders, 10,000 EVs, one run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--peak-load-scale", type=float, default=0.8)
    args = ap.parse_args()
    n_feeders, n_evs, repeats = (10, 10_000, 1) if args.quick else (100, 100_000, args.repeats)
    n_steps = 96
    case = build_case(n_feeders, n_evs, n_steps, args.seed, args.peak_load_scale)
    run_envelopes(case[:1])  # compilation / cache load, untimed
    runs = []
    violations = 0
    first = None
    for _ in range(repeats):
        dt, violations, first = run_envelopes(case)
        runs.append(dt)
    f, p, q, _ = case[0]
    peak = int(np.argmax(p.sum(axis=1)))
    per_bus = calc_operating_envelope(f, p[peak : peak + 1], q[peak : peak + 1], rule="per_bus_max")
    ratio = float(first.p_import_max_kw[peak].sum() / per_bus.p_import_max_kw[0].sum())
    print(
        json.dumps(
            {
                "n_evs": n_evs,
                "n_feeders": n_feeders,
                "n_bus_total": int(sum(c[0].n_bus for c in case)),
                "n_steps": n_steps,
                "envelope_s": round(statistics.median(runs), 3),
                "envelope_runs_s": [round(r, 3) for r in runs],
                "threads": numba.get_num_threads(),
                "ac_violations": int(violations),
                "envelope_vs_per_bus_max": round(ratio, 4),
                "rule": "equal_per_ev",
                "peak_load_scale": args.peak_load_scale,
            }
        )
    )


if __name__ == "__main__":
    main()
