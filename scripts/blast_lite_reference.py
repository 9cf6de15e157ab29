"""Reference outputs of NREL's BLAST-Lite for the twin's degradation tests (and its timing for the benchmark).

BLAST-Lite 1.1.1 declares numpy<2, so it runs in its own virtual environment, not in the twin's:
``make blast-reference`` creates ``.venv-blast`` (blast-lite==1.1.1, numpy<2) and runs this script, which writes
``tests/data/blast_lite/<model>.json`` — one file per model, with a header naming the BLAST-Lite version, the model
class and the date, the input profiles and the capacity loss at the end of each year.

Each profile is one day of SoC (and temperature) repeated; BLAST-Lite is called one day at a time with
``update_battery_state`` (its own state thread: rates from the day's samples, states carried forward), the day
closed by its first sample so it spans exactly 24 h.

``python scripts/blast_lite_reference.py time --model nmc --profile FILE.json --years 10`` instead simulates one
cell on the profile in FILE.json (``{"dt_h": .., "soc_pu": [..], "temp_c": ..}``) and prints one JSON line with
the wall time and the yearly losses (used by ``benchmarks/bench_battery.py``).

BLAST-Lite: https://github.com/NREL/BLAST-Lite (BSD-3-Clause, Copyright (c) 2023 Alliance for Energy
Innovation, LLC); nothing of it is copied into the twin.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np

MODELS = {
    "nmc": ("Nmc111_Gr_Sanyo2Ah_Battery", ("qLoss_t",), ("qLoss_EFC",)),
    "lfp": ("Lfp_Gr_SonyMurata3Ah_Battery", ("qLoss_LLI_t",), ("qLoss_LLI_EFC", "qLoss_BreakIn_EFC")),
}
FILES = {"nmc": "nmc111_gr_Sanyo2Ah_2014.json", "lfp": "lfp_gr_SonyMurata3Ah_2018.json"}
DAYS_PER_YEAR = 365
OUT_DIR = Path(__file__).resolve().parent.parent / "tests" / "data" / "blast_lite"


def _ramp(points: list[tuple[float, float]], dt_h: float) -> list[float]:
    """SoC at the start of each step of a 24 h day, linear between (hour, soc) points (first at 0, last at 24)."""
    t = np.arange(round(24.0 / dt_h)) * dt_h
    hours, socs = zip(*points, strict=True)
    return [round(float(v), 12) for v in np.interp(t, hours, socs)]


def profiles() -> dict[str, dict]:
    """The reference profiles (one day each, 15-min steps)."""
    dt_h = 0.25
    return {
        # calendar ageing: constant SoC at two temperatures
        "calendar_soc80_25c": {"dt_h": dt_h, "soc_pu": _ramp([(0, 0.8), (24, 0.8)], dt_h), "temp_c": 25.0},
        "calendar_soc80_45c": {"dt_h": dt_h, "soc_pu": _ramp([(0, 0.8), (24, 0.8)], dt_h), "temp_c": 45.0},
        # one cycle a day at two depths of discharge (0.5C and 0.4C), 35 degC (Schmalstieg's cycling temperature)
        "daily_dod50_35c": {
            "dt_h": dt_h,
            "soc_pu": _ramp([(0, 0.9), (8, 0.9), (9, 0.65), (10, 0.4), (12, 0.9), (24, 0.9)], dt_h),
            "temp_c": 35.0,
        },
        "daily_dod80_35c": {
            "dt_h": dt_h,
            "soc_pu": _ramp([(0, 0.9), (8, 0.9), (10, 0.1), (14, 0.9), (24, 0.9)], dt_h),
            "temp_c": 35.0,
        },
        # accelerated cycling, four 90 % cycles a day (3.6 equivalent full cycles a day, 0.3C): above the 3 EFC/day
        # at which the LFP model's break-in term switches on, so its parameters (q7, q8, q9) are compared too
        "cycling_4x_dod90_25c": {
            "dt_h": dt_h,
            "soc_pu": _ramp([(6 * k + h, s) for k in range(4) for h, s in ((0, 0.95), (3, 0.05))] + [(24, 0.95)], dt_h),
            "temp_c": 25.0,
        },
        # V2G-like day: drive in the morning, charge at work, drive home, V2G discharge in the evening peak,
        # charge overnight; temperature following the day (20-30 degC)
        "v2g_day_25c": {
            "dt_h": dt_h,
            "soc_pu": _ramp(
                [
                    (0, 0.6),
                    (2, 0.8),
                    (7, 0.8),
                    (8, 0.65),
                    (9, 0.65),
                    (12, 0.85),
                    (17, 0.85),
                    (18, 0.7),
                    (19, 0.45),
                    (21, 0.45),
                    (24, 0.6),
                ],
                dt_h,
            ),
            "temp_c": [round(25.0 - 5.0 * np.cos(2 * np.pi * (h * dt_h - 3.0) / 24.0), 9) for h in range(96)],
        },
    }


def simulate(model: str, prof: dict, years: int) -> dict[str, list[float]]:
    """One BLAST-Lite cell on the repeated day, called a day at a time; losses at the end of each year."""
    from blast import models as blast_models

    cls_name, cal_keys, cyc_keys = MODELS[model]
    cell = getattr(blast_models, cls_name)()
    soc = np.asarray(prof["soc_pu"], dtype=float)
    n_t = soc.size
    temp = np.broadcast_to(np.asarray(prof["temp_c"], dtype=float), (n_t,))
    soc_c = np.append(soc, soc[0])
    temp_c = np.append(temp, temp[0])
    dt_s = prof["dt_h"] * 3600.0
    steps = np.arange(n_t + 1) * dt_s
    out: dict[str, list[float]] = {"q_loss_pu": [], "q_loss_cal_pu": [], "q_loss_cyc_pu": []}
    for day in range(years * DAYS_PER_YEAR):
        cell.update_battery_state(day * 86400.0 + steps, soc_c, temp_c)
        if (day + 1) % DAYS_PER_YEAR == 0:
            cal = sum(float(cell.states[k][-1]) for k in cal_keys)
            cyc = sum(float(cell.states[k][-1]) for k in cyc_keys)
            out["q_loss_pu"].append(1.0 - float(cell.outputs["q"][-1]))
            out["q_loss_cal_pu"].append(cal)
            out["q_loss_cyc_pu"].append(cyc)
    return out


def write_references(years: int) -> None:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    profs = profiles()
    for model, fname in FILES.items():
        results = {}
        for name, prof in profs.items():
            t0 = time.perf_counter()
            results[name] = simulate(model, prof, years)
            print(f"{model} {name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        doc = {
            "header": {
                "generator": "scripts/blast_lite_reference.py (make blast-reference)",
                "blast_lite_version": version("blast-lite"),
                "numpy_version": np.__version__,
                "model_class": f"blast.models.{MODELS[model][0]}",
                "date": dt.date.today().isoformat(),
                "method": "update_battery_state once per day on the day's samples closed by the first one",
                "years": years,
                "days_per_year": DAYS_PER_YEAR,
                "outputs": "capacity loss at the end of each year [pu]: total (1 - q), calendar and cycle states",
            },
            "profiles": profs,
            "results": results,
        }
        (OUT_DIR / fname).write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {OUT_DIR / fname}", file=sys.stderr)


def time_one(model: str, profile_path: Path, years: int) -> None:
    prof = json.loads(profile_path.read_text())
    t0 = time.perf_counter()
    res = simulate(model, prof, years)
    seconds = time.perf_counter() - t0
    print(json.dumps({"model": model, "years": years, "seconds": seconds, **res}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd")
    ref = sub.add_parser("write", help="write tests/data/blast_lite/*.json (the default)")
    ref.add_argument("--years", type=int, default=10)
    tm = sub.add_parser("time", help="time one cell on a profile file")
    tm.add_argument("--model", choices=sorted(MODELS), required=True)
    tm.add_argument("--profile", type=Path, required=True)
    tm.add_argument("--years", type=int, default=10)
    args = ap.parse_args()
    if args.cmd == "time":
        time_one(args.model, args.profile, args.years)
    else:
        write_references(getattr(args, "years", 10))


if __name__ == "__main__":
    main()
