"""Benchmark: fault currents at every bus and the coordination check of every device pair on a 1,000-bus
feeder with 50 V2G aggregators, beside pandapower's IEC 60909 ``calc_sc`` on the same network.

Prints one JSON line. Keys:

* ``n_bus``, ``n_aggregators``, ``n_devices``, ``n_pairs``: the case. The feeder is
  :func:`v2gtwin.grid.feeder.synthetic_feeder` (seeded, 12.66 kV); 50 aggregators of 100-1,000 kVA (k = 1.5) on
  random buses; the devices are the default scheme (a relay at the feeder head and at every lateral head,
  pickups 1.5 x the largest load current by the exact power flow), time dials coordinated without V2G before
  the clock starts. Grid: 100 MVA, R/X 0.1, c = 1.1.
* ``faults_s``: median wall time of the three-phase fault at every bus with the aggregators
  (:func:`~v2gtwin.grid.protection.faults.run_faults`) plus the currents through every device for every fault,
  without and with V2G (:func:`~v2gtwin.grid.protection.coordination.calc_device_currents`, twice).
* ``coordination_s``: median wall time of the check of every backup/primary pair, sympathetic tripping and
  blinding, without and with V2G (:func:`~v2gtwin.grid.protection.coordination.check_coordination`, twice).
* ``total_s``: the two together (the issue's target: <= 1 s). ``propose_s``: the settings proposal (once).
* ``pandapower_calc_sc_s``: pandapower's ``calc_sc`` (case 'max', bus results for a fault at every bus, no
  branch results, ``ip=False``) on the same feeder and aggregators (sgens as current sources with ``k``),
  median of the same repeats after a warm-up on a 33-bus copy;
  ``pandapower_max_rel_diff``: largest relative difference of the bus fault currents (ours vs its).
* ``threads``: ours is numpy on one thread (tree sums and element-wise work); ``blas_threads``: the BLAS /
  OpenMP pools of both, pinned to 1 unless ``OPENBLAS_NUM_THREADS`` is set (pandapower's calc_sc uses them).

Run: ``python benchmarks/bench_protection.py`` (``--n-bus``, ``--repeats``, ``--no-pandapower``).
Figures are wall times on a shared machine: indicative.
"""

from __future__ import annotations

import argparse
import json
import os

# One thread for every BLAS / OpenMP pool, set before numpy loads: pandapower's calc_sc inverts matrices through
# BLAS, and a multi-threaded BLAS on a shared 2-core machine ran it 5-30x slower (1.4-7 s against 0.23 s on
# the same 1,000-bus case), which compared our one thread against a thrashing pool. Override by setting them.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import statistics  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

from v2gtwin.grid.feeder import synthetic_feeder, to_pandapower  # noqa: E402
from v2gtwin.grid.protection.coordination import (  # noqa: E402
    CoordinationOptions,
    calc_device_currents,
    check_coordination,
)
from v2gtwin.grid.protection.devices import Scheme, calc_load_current_a, place_default_devices  # noqa: E402
from v2gtwin.grid.protection.faults import Aggregators, GridSource, run_faults  # noqa: E402
from v2gtwin.grid.protection.search import propose_settings  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-bus", type=int, default=1000)
    ap.add_argument("--n-aggregators", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--no-pandapower", action="store_true")
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    feeder = synthetic_feeder(args.n_bus, rng, total_load_kw=5000.0)
    source = GridSource(100.0, 0.1, 1.1)
    bus = np.sort(rng.choice(np.arange(1, args.n_bus), size=args.n_aggregators, replace=False))
    aggs = Aggregators(bus=bus, s_rated_kva=rng.uniform(100.0, 1000.0, bus.size), k=1.5)
    opts = CoordinationOptions(t_max_s=10.0)
    i_load = calc_load_current_a(feeder, feeder.p_load_kw, feeder.q_load_kvar)
    scheme = Scheme.build(feeder, place_default_devices(feeder, i_load))
    base0 = calc_device_currents(feeder, source, None, scheme, opts)
    prop = propose_settings(feeder, scheme, [base0], opts, i_load_max_a=i_load)
    scheme = scheme.with_settings(prop.pickup_a, prop.tds)

    faults_runs, coord_runs = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        res = run_faults(feeder, source, aggs)
        cur_b = calc_device_currents(feeder, source, None, scheme, opts)
        cur_v = calc_device_currents(feeder, source, aggs, scheme, opts)
        t1 = time.perf_counter()
        chk_b = check_coordination(feeder, scheme, cur_b, opts)
        chk_v = check_coordination(feeder, scheme, cur_v, opts)
        t2 = time.perf_counter()
        faults_runs.append(t1 - t0)
        coord_runs.append(t2 - t1)
    t0 = time.perf_counter()
    propose_settings(feeder, scheme, [cur_b, cur_v], opts, i_load_max_a=i_load)
    propose_s = time.perf_counter() - t0

    out: dict[str, object] = {
        "n_bus": feeder.n_bus,
        "n_aggregators": aggs.n,
        "n_devices": scheme.n,
        "n_pairs": int(chk_b.up.size),
        "faults_s": statistics.median(faults_runs),
        "coordination_s": statistics.median(coord_runs),
        "total_s": statistics.median(np.add(faults_runs, coord_runs).tolist()),
        "propose_s": propose_s,
        "issues_base": chk_b.n_issues(),
        "issues_v2g": chk_v.n_issues(),
        "threads": 1,
        "blas_threads": os.environ["OPENBLAS_NUM_THREADS"],
        "repeats": args.repeats,
    }
    if not args.no_pandapower:
        import pandapower as pp
        import pandapower.shortcircuit as sc

        def sc_net(f, bus_, s_kva):  # type: ignore[no-untyped-def]
            net = to_pandapower(f)
            net.ext_grid["s_sc_max_mva"] = 100.0
            net.ext_grid["rx_max"] = 0.1
            for b, s in zip(bus_, s_kva, strict=True):
                pp.create_sgen(net, int(b), p_mw=0.0, sn_mva=s / 1000.0, k=1.5, generator_type="current_source")
            return net

        net = sc_net(feeder, aggs.bus, aggs.s_rated_kva)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # Warm-up on a 33-bus copy first (imports, first-call set-up), as ours is timed after a warm-up.
            sc.calc_sc(sc_net(synthetic_feeder(33, np.random.default_rng(0)), [5], [500.0]), case="max", ip=False)
            pp_runs = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                sc.calc_sc(net, case="max", ip=False)
                pp_runs.append(time.perf_counter() - t0)
            out["pandapower_calc_sc_s"] = statistics.median(pp_runs)
        ref = net.res_bus_sc.ikss_ka.to_numpy() * 1000.0
        out["pandapower_max_rel_diff"] = float(np.max(np.abs(res.i_fault_a / ref - 1.0)))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
