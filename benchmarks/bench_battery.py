"""Benchmark: 10 years of capacity fade for 100,000 EVs from their daily profiles, and per-cell speed against
NREL's BLAST-Lite on the same profile.

Prints one JSON line: {"n_evs", "years", "fleet_seconds", "per_cell_speedup_vs_blast_lite", ...}.
``fleet_seconds`` is the median of the timed runs of ``calc_fade`` on the fleet's uncontrolled-charging days (the
default scenario's fleet model; numba compilation excluded, reported as ``first_call_s``). The BLAST-Lite side
runs in its own virtual environment (``make blast-reference`` creates ``.venv-blast``), in a subprocess of the
same run, on one EV's day from the same fleet, called one day at a time as the twin threads its states;
``per_cell_speedup_vs_blast_lite`` is BLAST-Lite's seconds for that cell over the twin's fleet seconds per EV.
``blast_max_rel_diff`` is the largest relative difference of the two yearly losses on that cell.
The comparison is of a parallel fleet with a serial cell: ``twin_threads`` are the threads the twin's fleet run
used (numba's for NMC, the LFP block pool's for LFP), ``blast_lite_threads`` is 1 (one cell in one process);
``chemistry`` names the model timed (``--chemistry``).
Target (issue 15): fleet_seconds <= 30 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from v2gtwin.battery.degradation import calc_fade
from v2gtwin.fleet import run_uncontrolled, synthesize_fleet
from v2gtwin.scenario import DEFAULT_SCENARIO, FleetSpec

ROOT = Path(__file__).resolve().parent.parent
BLAST_PY = ROOT / ".venv-blast" / "bin" / "python"
SCRIPT = ROOT / "scripts" / "blast_lite_reference.py"


def _blast_cell(
    chemistry: str, soc_day: np.ndarray, dt_h: float, temp_c: float, years: int, blast_py: Path = BLAST_PY
) -> dict | None:
    if not blast_py.exists():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        prof = Path(tmp) / "profile.json"
        prof.write_text(json.dumps({"dt_h": dt_h, "soc_pu": soc_day.tolist(), "temp_c": temp_c}))
        cmd = [str(blast_py), str(SCRIPT), "time", "--model", chemistry, "--profile", str(prof)]
        run = subprocess.run([*cmd, "--years", str(years)], capture_output=True, text=True, check=True)
    return json.loads(run.stdout.strip().splitlines()[-1])


def _twin_threads(chemistry: str, n_evs: int) -> int:
    """Threads the twin's fleet run uses: numba's pool (NMC kernel) or the LFP block pool."""
    import os

    import numba

    from v2gtwin.battery import lfp

    if chemistry == "nmc":
        return int(numba.get_num_threads())
    n_blocks = -(-n_evs // lfp.BLOCK)
    return 1 if n_blocks <= 1 else min(n_blocks, os.cpu_count() or 1, 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-evs", type=int, default=100_000)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--chemistry", choices=("nmc", "lfp"), default="nmc")
    parser.add_argument("--temp-c", type=float, default=25.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--blast-python", type=Path, default=BLAST_PY, help="python of BLAST-Lite's venv")
    args = parser.parse_args()

    scen = DEFAULT_SCENARIO
    rng = np.random.default_rng(scen.seed)
    fleet = synthesize_fleet(FleetSpec(n_evs=args.n_evs), scen.time, 33, rng)
    soc = np.ascontiguousarray(run_uncontrolled(fleet).soc_pu[: scen.time.n_steps].T)
    dt_h = scen.time.dt_h

    t0 = time.perf_counter()
    calc_fade(soc[:100], dt_h, args.temp_c, 1, args.chemistry)
    first_call_s = time.perf_counter() - t0

    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        fade = calc_fade(soc, dt_h, args.temp_c, args.years, args.chemistry)
        times.append(time.perf_counter() - t0)
    fleet_seconds = statistics.median(times)

    # one cell of the same fleet: the EV with the median daily cycling (a day with one charge and one drive, so
    # BLAST-Lite's max - min depth of discharge and the rainflow one agree)
    i = int(np.argsort(fade.efc_per_day)[fade.efc_per_day.size // 2])
    blast = _blast_cell(args.chemistry, soc[i], dt_h, args.temp_c, args.years, args.blast_python)
    out = {
        "n_evs": int(soc.shape[0]),
        "years": args.years,
        "fleet_seconds": round(fleet_seconds, 3),
        "per_cell_speedup_vs_blast_lite": None,
        "chemistry": args.chemistry,
        "temp_c": args.temp_c,
        "runs_s": [round(t, 3) for t in times],
        "first_call_s": round(first_call_s, 3),
        "twin_cell_seconds": fleet_seconds / soc.shape[0],
        "twin_threads": _twin_threads(args.chemistry, soc.shape[0]),
        "blast_lite_threads": 1,
    }
    if blast is None:
        out["blast_lite"] = "not installed: run `make blast-reference` to create .venv-blast"
    else:
        mine = calc_fade(soc[i : i + 1], dt_h, args.temp_c, args.years, args.chemistry, dod_method="range")
        diff = np.abs(mine.q_loss_pu[0] - np.asarray(blast["q_loss_pu"])) / np.asarray(blast["q_loss_pu"])
        out["per_cell_speedup_vs_blast_lite"] = round(blast["seconds"] / out["twin_cell_seconds"])
        out["blast_lite_cell_seconds"] = round(blast["seconds"], 3)
        out["blast_cell_efc_per_day"] = round(float(fade.efc_per_day[i]), 4)
        out["blast_max_rel_diff"] = float(diff.max())
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
