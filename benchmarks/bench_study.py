"""Benchmark: the whole study, time per step, on the default scenario and on a 100,000-EV scenario.

Prints one JSON line:

- ``total_seconds``: the default study (built-in default scenario), the median over ``--repeats`` (>= 3) warm
  runs, after one warm-up run (numba kernels compiled or loaded from their cache: ``first_run_s``);
  ``steps_s``: each step's median time; ``rss_max_mb``: the process's peak RSS after the default runs.
- ``total_seconds_100k``, ``steps_s_100k``, ``rss_max_mb_100k``: one run of ``examples/fleet_100k.toml`` (one
  run: it takes about a minute), in a fresh process so its peak RSS is its own. Like with like: that process
  first runs the default study once (imports done, kernels compiled or loaded from numba's cache; its time is
  ``first_run_s_100k``, the cold start), then times the 100,000-EV run warm, as ``total_seconds`` is.
  What the 100,000-EV study samples is named: ``n_evs_100k`` (the fleet), ``n_evs_scheduled_100k`` (the EVs
  the per-EV schedule optimises, ``min(n_evs, markets.schedule_max_evs)``) and ``feeder_fleet_share_100k``
  (the share of the fleet charging on the feeder).
- with ``--n-evs N`` (e.g. 1000000): ``total_seconds_n``, ``steps_s_n``, ``rss_max_mb_n`` for one run of
  ``examples/million.toml`` with ``fleet.n_evs = N``, likewise in its own process after a warm-up, with
  ``first_run_s_n``, ``n_evs_n``, ``n_evs_scheduled_n`` and ``feeder_fleet_share_n``.
- ``cores`` (the CPUs this process may run on), ``cpu_count`` (the machine's) and ``numba_threads`` (numba's
  thread count): the figures depend on them.

``cpu_seconds*``: the process's CPU time over the same runs (all threads; on a shared machine the wall time
grows with the load, the CPU time much less). Targets (issue 17): the default study <= 15 s warm and the
100,000-EV study <= 60 s on 2 cores.
Run: ``PYTHONPATH=src python benchmarks/bench_study.py [--repeats 3] [--n-evs 1000000] [--skip-100k]``.
A failing step is listed in ``failed`` (the study goes on with the steps that do not need it).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def run_steps(scenario: Any) -> tuple[dict[str, float], dict[str, str]]:
    """The whole study, through ``StudyChain.run()``: each step's time (``timings_s``) and the failed steps
    (``failures``: the chain records a failing step and goes on with the steps that do not need it)."""
    from v2gtwin.study import StudyChain

    chain = StudyChain(scenario)
    try:
        result = chain.run()
    except Exception as exc:  # a chain that still aborts on a failure: reported, not raised
        return dict(chain.timings_s), {"study": f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:300]}
    return dict(result.timings_s), dict(getattr(result, "failures", {}) or {})


def rss_max_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def machine() -> dict[str, Any]:
    """The cores this process may run on, the machine's CPU count and numba's thread count."""
    import numba

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cores": cores, "cpu_count": os.cpu_count(), "numba_threads": int(numba.get_num_threads())}


def one_run(path: str, n_evs: int | None, warm_up: bool = True) -> dict[str, Any]:
    """One study of the scenario file ``path`` (``fleet.n_evs`` replaced by ``n_evs`` when given).

    With ``warm_up`` the default study runs once first (imports, kernels compiled or loaded from numba's
    cache), timed as ``first_run_s``, so that ``total_seconds`` is a warm time like the default study's.
    """
    from v2gtwin.scenario import DEFAULT_SCENARIO, Scenario, load_scenario

    t0 = time.perf_counter()
    if warm_up:
        run_steps(DEFAULT_SCENARIO)
    first_run_s = time.perf_counter() - t0
    scenario = load_scenario(Path(path))
    if n_evs is not None:
        data = scenario.model_dump()
        data["fleet"]["n_evs"] = n_evs
        scenario = Scenario.model_validate(data)
    t0, c0 = time.perf_counter(), time.process_time()
    steps, failed = run_steps(scenario)
    return {
        "total_seconds": round(time.perf_counter() - t0, 2),
        "cpu_seconds": round(time.process_time() - c0, 2),
        "first_run_s": round(first_run_s, 2) if warm_up else None,
        "warm": warm_up,
        "steps_s": {k: round(v, 2) for k, v in steps.items()},
        "rss_max_mb": rss_max_mb(),
        "failed": failed,
        "n_evs": scenario.fleet.n_evs,
        "n_evs_scheduled": min(scenario.fleet.n_evs, scenario.markets.schedule_max_evs),
        "feeder_fleet_share": scenario.feeder.fleet_share,
    }


def in_subprocess(path: Path, n_evs: int | None) -> dict[str, Any]:
    """:func:`one_run` in a fresh interpreter (its own peak RSS)."""
    cmd = [sys.executable, __file__, "--one", str(path)] + ([] if n_evs is None else ["--n-evs", str(n_evs)])
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"error": " ".join(proc.stderr.strip().splitlines()[-1:])[:300]}
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="warm runs of the default study (>= 3)")
    parser.add_argument("--n-evs", type=int, default=None, help="also one run of examples/million.toml with N EVs")
    parser.add_argument("--skip-100k", action="store_true", help="leave out the 100,000-EV run")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: one run in this process
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(one_run(args.one, args.n_evs)))
        return
    if args.repeats < 3:
        parser.error("--repeats: at least 3 (the default study's time is a median)")

    from v2gtwin.scenario import DEFAULT_SCENARIO

    t0 = time.perf_counter()
    run_steps(DEFAULT_SCENARIO)  # warm-up: kernels compiled (or loaded from numba's cache), imports done
    first_run_s = time.perf_counter() - t0
    runs: list[dict[str, float]] = []
    totals: list[float] = []
    failed: dict[str, str] = {}
    cpu: list[float] = []
    for _ in range(args.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        steps, failed = run_steps(DEFAULT_SCENARIO)
        totals.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        runs.append(steps)
    out: dict[str, Any] = {
        "total_seconds": round(statistics.median(totals), 2),
        "runs_s": [round(t, 2) for t in totals],
        "cpu_seconds": round(statistics.median(cpu), 2),
        "first_run_s": round(first_run_s, 2),
        "steps_s": {k: round(statistics.median(r.get(k, 0.0) for r in runs), 2) for k in runs[0]},
        "rss_max_mb": rss_max_mb(),
        "failed": failed,
        "target_seconds": 15.0,
    } | machine()
    if not args.skip_100k:
        big = in_subprocess(ROOT / "examples" / "fleet_100k.toml", None)
        out |= {
            "total_seconds_100k": big.get("total_seconds"),
            "first_run_s_100k": big.get("first_run_s"),
            "warm_100k": big.get("warm"),
            "n_evs_100k": big.get("n_evs"),
            "n_evs_scheduled_100k": big.get("n_evs_scheduled"),
            "feeder_fleet_share_100k": big.get("feeder_fleet_share"),
            "cpu_seconds_100k": big.get("cpu_seconds"),
            "steps_s_100k": big.get("steps_s"),
            "rss_max_mb_100k": big.get("rss_max_mb"),
            "failed_100k": big.get("failed", big.get("error")),
            "target_seconds_100k": 60.0,
        }
    if args.n_evs is not None:
        n = in_subprocess(ROOT / "examples" / "million.toml", args.n_evs)
        out |= {
            "n_evs_n": args.n_evs,
            "total_seconds_n": n.get("total_seconds"),
            "first_run_s_n": n.get("first_run_s"),
            "warm_n": n.get("warm"),
            "n_evs_scheduled_n": n.get("n_evs_scheduled"),
            "feeder_fleet_share_n": n.get("feeder_fleet_share"),
            "cpu_seconds_n": n.get("cpu_seconds"),
            "steps_s_n": n.get("steps_s"),
            "rss_max_mb_n": n.get("rss_max_mb"),
            "failed_n": n.get("failed", n.get("error")),
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
