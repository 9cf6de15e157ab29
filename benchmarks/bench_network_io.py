"""Benchmark: reading users' feeders (MATPOWER and OpenDSS) into a radial Feeder, and how closely the imported
feeder's exact power flow reproduces the file's own tool.

A seeded random radial feeder of ``--n-bus`` buses (each bus hangs from one of the 8 buses before it; lines
listed in random order and orientation; three-phase constant-power loads) is written both as an OpenDSS script
(lines through a LineCode in ohm/km) and as a MATPOWER version-2 case (the same impedances in per unit). Prints
one JSON line:

* ``opendss_read_s``: :func:`v2gtwin.grid.network_io.read_feeder_file` on the script (OpenDSS compiles and
  solves it, then the circuit is walked and reduced), median of ``--repeats``; ``opendss_compile_solve_s``:
  OpenDSS alone compiling and solving the same script (the part of the read that is OpenDSS's own);
  ``max_dv_pu_vs_opendss``: our exact power flow of the imported feeder against OpenDSS's positive-sequence
  solution (OpenDSS tolerance 1e-7 pu), largest difference over all buses;
* ``matpower_read_s`` and ``max_dv_pu_vs_pandapower``: the same for the MATPOWER case, against pandapower's
  ``runpp`` on ``from_mpc`` of the file (the first read in a process also imports pandapower: it is not timed);
* ``cpu_count`` (``os.cpu_count()``) and ``numba_threads`` (numba's thread count in this process, used by our
  power flows); the reads run in this one process.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from v2gtwin.grid.feeder import run_powerflow
from v2gtwin.grid.network_io import read_feeder_file


def _write_cases(n_bus: int, seed: int, folder: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    r_ohm_per_km, x_ohm_per_km, kv = 0.3, 0.2, 12.66
    parent = [int(rng.integers(max(0, i - 8), i)) for i in range(1, n_bus)]
    length_km = rng.uniform(0.01, 0.05, n_bus - 1)
    p_kw = rng.uniform(1.0, 5.0, n_bus - 1)
    q_kvar = 0.3 * p_kw
    flip = rng.random(n_bus - 1) < 0.5
    dss = [
        "clear",
        f"new circuit.bench basekv={kv} pu=1.0 phases=3 bus1=b0 mvasc3=1e7 mvasc1=1e7",
        f"new linecode.lc nphases=3 r1={r_ohm_per_km} x1={x_ohm_per_km} r0=0.6 x0=0.4 c1=0 c0=0 units=km normamps=300",
    ]
    lines = []
    for i in range(1, n_bus):
        a, b = (f"b{i}", f"b{parent[i - 1]}") if flip[i - 1] else (f"b{parent[i - 1]}", f"b{i}")
        lines.append(f"new line.l{i} bus1={a} bus2={b} linecode=lc length={length_km[i - 1]:.17g} units=km")
    dss += [lines[k] for k in rng.permutation(len(lines))]
    dss += [
        f"new load.d{i} bus1=b{i} phases=3 kv={kv} kw={p_kw[i - 1]:.17g} kvar={q_kvar[i - 1]:.17g} vminpu=0.5"
        for i in range(1, n_bus)
    ]
    dss += [f"set voltagebases=[{kv}]", "calcvoltagebases", "solve"]
    dss_path = folder / "bench.dss"
    dss_path.write_text("\n".join(dss) + "\n")
    z_base_ohm = kv**2 / 10.0  # baseMVA = 10
    bus = ["\t1\t3\t0\t0\t0\t0\t1\t1\t0\t12.66\t1\t1.1\t0.9;"]
    bus += [
        f"\t{i + 1}\t1\t{p_kw[i - 1] / 1e3:.17g}\t{q_kvar[i - 1] / 1e3:.17g}\t0\t0\t1\t1\t0\t12.66\t1\t1.1\t0.9;"
        for i in range(1, n_bus)
    ]
    branch = [
        f"\t{parent[i - 1] + 1}\t{i + 1}\t{r_ohm_per_km * length_km[i - 1] / z_base_ohm:.17g}\t"
        f"{x_ohm_per_km * length_km[i - 1] / z_base_ohm:.17g}\t0\t0\t0\t0\t0\t0\t1\t-360\t360;"
        for i in range(1, n_bus)
    ]
    gen = "\t1\t0\t0\t100\t-100\t1\t100\t1\t100\t0" + "\t0" * 11 + ";"
    m = [
        "function mpc = bench",
        "mpc.version = '2';",
        "mpc.baseMVA = 10;",
        "mpc.bus = [",
        *bus,
        "];",
        "mpc.gen = [",
        gen,
        "];",
        "mpc.branch = [",
        *branch,
        "];",
    ]
    m_path = folder / "bench.m"
    m_path.write_text("\n".join(m) + "\n")
    return dss_path, m_path


def _median_s(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-bus", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    import opendssdirect
    import pandapower as pp
    from pandapower.converter.matpower import from_mpc

    with tempfile.TemporaryDirectory() as tmp:
        dss_path, m_path = _write_cases(args.n_bus, args.seed, Path(tmp))

        def compile_solve():  # type: ignore[no-untyped-def]
            ctx = opendssdirect.NewContext()
            ctx.Basic.AllowChangeDir(False)
            ctx.Text.Command(f'compile "{dss_path}"')
            ctx.Text.Command("set tolerance=0.0000001")
            ctx.Solution.Solve()
            return ctx

        feeder = read_feeder_file(dss_path)
        read_feeder_file(m_path)  # imports pandapower once, untimed
        import numba

        out: dict[str, object] = {
            "n_bus": args.n_bus,
            "repeats": args.repeats,
            "cpu_count": os.cpu_count(),
            "numba_threads": numba.get_num_threads(),
        }
        out["opendss_read_s"] = _median_s(lambda: read_feeder_file(dss_path), args.repeats)
        out["opendss_compile_solve_s"] = _median_s(compile_solve, args.repeats)
        out["matpower_read_s"] = _median_s(lambda: read_feeder_file(m_path), args.repeats)

        ctx = compile_solve()
        res = run_powerflow(feeder, feeder.p_load_kw, feeder.q_load_kvar)
        ours = {str(b): float(res.v_pu[0, i]) for i, b in enumerate(feeder.bus_labels)}
        dv = 0.0
        for b in ctx.Circuit.AllBusNames():
            ctx.Circuit.SetActiveBus(b)
            dv = max(dv, abs(ctx.Bus.SeqVoltages()[1] / (ctx.Bus.kVBase() * 1000.0) - ours[b]))
        out["max_dv_pu_vs_opendss"] = dv
        out["v_min_pu"] = float(res.v_pu.min())

        mfeeder = read_feeder_file(m_path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            net = from_mpc(str(m_path), f_hz=50)
        pp.runpp(net, tolerance_mva=1e-11)
        mres = run_powerflow(mfeeder, mfeeder.p_load_kw, mfeeder.q_load_kvar)
        ref = {str(int(b) + 1): float(v) for b, v in net.res_bus.vm_pu.items()}
        out["max_dv_pu_vs_pandapower"] = max(
            abs(float(mres.v_pu[0, i]) - ref[str(b)]) for i, b in enumerate(mfeeder.bus_labels)
        )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
