"""Benchmark: the network-secure services for 100,000 EVs on 100 feeders of 33-200 buses, 96 steps.

Operating envelopes are random (uniform 0-50 kW import, 0-30 kW export per bus and step) and EVs are placed
on random feeders and buses: the figure measured is the cost of the per-bus clip (grid/secure.py), not the
envelopes' (bench_network.py). Prints one JSON line: ``n_evs``, ``n_feeders``, ``n_bus``, ``limits_s``
(flattening the envelopes), ``reserve_s`` and ``reserve_secure_s`` (reserve over every start step without and
with the limits), ``dr_s`` and ``dr_secure_s`` (the demand-response event), ``band_s`` (one regulation band),
medians of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from v2gtwin.fleet import run_uncontrolled, synthesize_fleet
from v2gtwin.grid.secure import build_network_limits, calc_secure_band
from v2gtwin.grid.services import run_demand_response, run_reserve
from v2gtwin.scenario import Scenario


@dataclass(frozen=True)
class _Envelope:
    feeder_name: str
    rule: str
    p_import_max_kw: np.ndarray
    p_export_max_kw: np.ndarray


def _median_s(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-evs", type=int, default=100_000)
    parser.add_argument("--n-feeders", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sc = Scenario(fleet={"n_evs": args.n_evs})
    fleet = synthesize_fleet(sc.fleet, sc.time, sc.feeder.n_bus, np.random.default_rng(20261127))
    base = run_uncontrolled(fleet)
    rng = np.random.default_rng(1)
    n_bus = rng.integers(33, 201, args.n_feeders)
    n_steps = sc.time.n_steps
    envs = [
        _Envelope(f"f{i}", "equal_per_ev", rng.uniform(0, 50, (n_steps, n)), rng.uniform(0, 30, (n_steps, n)))
        for i, n in enumerate(n_bus)
    ]
    ev_feeder = rng.integers(0, args.n_feeders, fleet.n)
    ev_bus = rng.integers(0, n_bus[ev_feeder])
    limits = build_network_limits(envs, ev_feeder, ev_bus)
    band = np.minimum(fleet.p_charge_max_kw, fleet.p_discharge_max_kw)
    run_reserve(fleet, base)  # warm-up
    out = {
        "n_evs": fleet.n,
        "n_feeders": args.n_feeders,
        "n_bus": int(n_bus.sum()),
        "limits_s": _median_s(lambda: build_network_limits(envs, ev_feeder, ev_bus), args.repeats),
        "reserve_s": _median_s(lambda: run_reserve(fleet, base), args.repeats),
        "reserve_secure_s": _median_s(lambda: run_reserve(fleet, base, limits=limits), args.repeats),
        "dr_s": _median_s(lambda: run_demand_response(fleet, 60, 68, 80), args.repeats),
        "dr_secure_s": _median_s(lambda: run_demand_response(fleet, 60, 68, 80, limits=limits), args.repeats),
        "band_s": _median_s(lambda: calc_secure_band(limits, 72, base.p_kw[72], band), args.repeats),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
