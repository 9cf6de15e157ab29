"""Benchmark: the fleet's tables of a large fleet and their Parquet export.

Prints one JSON line: {"n_evs", "fleet_frames_s", "parquet_write_s", "fleet_evs_mb", "fleet_evs_file_mb",
"max_rss_gb"}. ``fleet_frames_s`` is the wall time of ``FleetSection.to_frames`` (``fleet_steps`` and the per-EV
``fleet_evs``); ``parquet_write_s`` of ``write_tables`` writing both; ``fleet_evs_mb`` the per-EV table in memory,
``fleet_evs_file_mb`` its Parquet file; ``max_rss_gb`` the process's peak resident memory (fleet, uncontrolled
charging and envelope included). The default scenario's fleet model on the one [feeder], ``--n-evs`` EVs.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

from v2gtwin.fleet import calc_envelope, run_uncontrolled
from v2gtwin.scenario import DEFAULT_SCENARIO
from v2gtwin.study import build_fleet
from v2gtwin.study_result import build_fleet_section
from v2gtwin.tables.export import write_tables


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-evs", type=int, default=1_000_000)
    args = parser.parse_args()
    scenario = DEFAULT_SCENARIO.replace(fleet={"n_evs": args.n_evs}, network=None)
    fleet = build_fleet(scenario)
    section = build_fleet_section(scenario, fleet, calc_envelope(fleet), run_uncontrolled(fleet))
    t0 = time.perf_counter()
    frames = section.to_frames(scenario.time)
    t1 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_tables(frames, Path(tmp), "parquet")
        t2 = time.perf_counter()
        file_mb = paths["fleet_evs"].stat().st_size / 1e6
    out = {
        "n_evs": fleet.n,
        "fleet_frames_s": round(t1 - t0, 3),
        "parquet_write_s": round(t2 - t1, 3),
        "fleet_evs_mb": round(float(frames["fleet_evs"].memory_usage(deep=True).sum()) / 1e6, 1),
        "fleet_evs_file_mb": round(file_mb, 1),
        "max_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
