"""Benchmark: the 33-bus feeder x 8,760 hourly steps with random per-load scaling, three engines side by side.

Prints one JSON line with the keys of issue 3: ``steps``, ``ours_ms_per_step``, ``opendss_ms_per_step``,
``pandapower_ms_per_step``, ``max_dv_pu_vs_pandapower``, ``voltvar_ours_ms_per_step``,
``voltvar_opendss_ms_per_step``, ``bus10000_solve_ms``, plus ratios and cross-check differences.

* ours: ``run_powerflow`` (exact sweep, all steps at once); median of ``--repeats`` runs after a warm-up.
* OpenDSS: opendssdirect.py, native yearly mode (one ``solve`` of 8,760 steps, loads on yearly loadshapes,
  ``vminpu=0.7`` so loads keep their constant-power model); median of ``--repeats`` solves.
* pandapower: ``runpp`` in a loop over a sample of ``--pp-sample`` steps (``init="results"``); its voltages
  give ``max_dv_pu_vs_pandapower`` on those steps.
* volt-var: IEEE 1547 Category B curve on 5 inverters of 100 kVA (no active power), ours fused kernel
  against OpenDSS PVSystem + InvControl (VOLTVAR, yearly mode).
* 10,000 buses: one solve of a seeded synthetic feeder.
OpenDSS is a benchmark-only extra: ``pip install 'v2gtwin[bench]'``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from v2gtwin.grid.feeder import Feeder, ieee33, run_powerflow, synthetic_feeder, to_pandapower
from v2gtwin.grid.voltvar import VOLTVAR_CURVES, run_voltvar

VV_BUS = (17, 21, 24, 29, 32)  # feeder positions of the volt-var inverters
VV_KVA = 100.0


def timed(fn, repeats: int) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def build_opendss(feeder: Feeder, mult: np.ndarray, voltvar: bool):  # type: ignore[no-untyped-def]
    import opendssdirect as dss

    kv = feeder.v_base_kv
    dss.Text.Command("clear")
    dss.Text.Command(
        f"new circuit.bench basekv={kv} pu={feeder.v_source_pu} phases=3 bus1=b0 r1=1e-9 x1=1e-9 r0=1e-9 x0=1e-9"
    )
    for k in range(1, feeder.n_bus):
        dss.Text.Command(
            f"new line.l{k} bus1=b{feeder.parent[k]} bus2=b{k} phases=3 length=1 units=none "
            f"r1={feeder.r_ohm[k]} x1={feeder.x_ohm[k]} r0={feeder.r_ohm[k]} x0={feeder.x_ohm[k]} c1=0 c0=0"
        )
        dss.Text.Command(f"new loadshape.ls{k} npts={mult.shape[0]} interval=1")
        dss.LoadShape.Name(f"ls{k}")
        dss.LoadShape.PMult(mult[:, k].tolist())
        dss.LoadShape.QMult(mult[:, k].tolist())
        dss.Text.Command(
            f"new load.d{k} bus1=b{k} phases=3 kv={kv} kw={feeder.p_load_kw[k]} kvar={feeder.q_load_kvar[k]} "
            f"model=1 vminpu=0.7 vmaxpu=1.3 yearly=ls{k}"
        )
    if voltvar:
        c = VOLTVAR_CURVES["B"]
        dss.Text.Command(
            f"new xycurve.vvc npts={len(c.v_pu)} xarray=[{' '.join(map(str, c.v_pu))}] "
            f"yarray=[{' '.join(map(str, c.q_pu))}]"
        )
        for b in VV_BUS:
            dss.Text.Command(
                f"new pvsystem.pv{b} bus1=b{b} phases=3 kv={kv} kva={VV_KVA} pmpp={VV_KVA} irradiance=0 "
                f"kvarmax={VV_KVA} kvarmaxabs={VV_KVA} varfollowinverter=no %cutin=0 %cutout=0"
            )
        dss.Text.Command(
            "new invcontrol.vv mode=voltvar vvc_curve1=vvc voltage_curvex_ref=rated refreactivepower=varmax "
            "deltaQ_factor=0.5 varchangetolerance=1e-6 voltagechangetolerance=1e-8"
        )
        dss.Text.Command("set maxcontroliter=1000")
    dss.Text.Command(f"set voltagebases=[{kv}]")
    dss.Text.Command("calcvoltagebases")
    return dss


def run_opendss_yearly(dss, n_steps: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    dss.Text.Command(f"set mode=yearly number={n_steps} stepsize=1h hour=0 sec=0")
    dss.Text.Command("solve")
    mags = np.asarray(dss.Circuit.AllBusMagPu())
    names = dss.Circuit.AllBusNames()
    per_bus = mags.reshape(len(names), 3).mean(axis=1)
    order = [names.index(f"b{k}") for k in range(len(names))]
    return per_bus[order]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=8760)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--pp-sample", type=int, default=60)
    parser.add_argument("--seed", type=int, default=20261125)
    args = parser.parse_args()

    feeder = ieee33()
    rng = np.random.default_rng(args.seed)
    mult = rng.uniform(0.5, 1.2, (args.steps, feeder.n_bus))
    p, q = feeder.p_load_kw * mult, feeder.q_load_kvar * mult

    run_powerflow(feeder, p[:10], q[:10])  # compile / warm up
    ours_s, res = timed(lambda: run_powerflow(feeder, p, q), args.repeats)
    out: dict[str, object] = {"steps": args.steps, "ours_ms_per_step": ours_s / args.steps * 1e3}

    # pandapower runpp loop on a sample of steps.
    import pandapower as pp

    net = to_pandapower(feeder, p[0], q[0])
    pp.runpp(net)
    sample = rng.choice(args.steps, size=min(args.pp_sample, args.steps), replace=False)
    dv = 0.0
    t0 = time.perf_counter()
    for t in sample:
        net.load["p_mw"] = p[t, 1:] / 1000.0
        net.load["q_mvar"] = q[t, 1:] / 1000.0
        pp.runpp(net, init="results", tolerance_mva=1e-10)
        dv = max(dv, float(np.abs(net.res_bus.vm_pu.values - res.v_pu[t]).max()))  # type: ignore[attr-defined]
    out["pandapower_ms_per_step"] = (time.perf_counter() - t0) / sample.size * 1e3
    out["max_dv_pu_vs_pandapower"] = dv

    # OpenDSS yearly mode.
    try:
        dss = build_opendss(feeder, mult, voltvar=False)
        dss_s, v_last = timed(lambda: run_opendss_yearly(dss, args.steps), args.repeats)
        out["opendss_ms_per_step"] = dss_s / args.steps * 1e3
        out["max_dv_pu_opendss_vs_ours_last_step"] = float(np.abs(v_last - res.v_pu[-1]).max())  # type: ignore[attr-defined]
    except ImportError:
        out["opendss_ms_per_step"] = None

    # Volt-var.
    s = np.zeros(feeder.n_bus)
    s[list(VV_BUS)] = VV_KVA
    run_voltvar(feeder, p[:10], q[:10], 0.0, s, "B")
    vv_s, vv = timed(lambda: run_voltvar(feeder, p, q, 0.0, s, "B"), args.repeats)
    out["voltvar_ours_ms_per_step"] = vv_s / args.steps * 1e3
    try:
        dss = build_opendss(feeder, mult, voltvar=True)
        vv_dss_s, v_last = timed(lambda: run_opendss_yearly(dss, args.steps), max(1, args.repeats // 2))
        out["voltvar_opendss_ms_per_step"] = vv_dss_s / args.steps * 1e3
        out["voltvar_max_dv_pu_opendss_vs_ours_last_step"] = float(
            np.abs(v_last - vv.powerflow.v_pu[-1]).max()  # type: ignore[attr-defined]
        )
    except ImportError:
        out["voltvar_opendss_ms_per_step"] = None

    # 10,000-bus synthetic feeder, one solve.
    big = synthetic_feeder(10_000, np.random.default_rng(args.seed))
    run_powerflow(big, big.p_load_kw, big.q_load_kvar)
    big_s, _ = timed(lambda: run_powerflow(big, big.p_load_kw, big.q_load_kvar), args.repeats)
    out["bus10000_solve_ms"] = big_s * 1e3

    ours = float(out["ours_ms_per_step"])  # type: ignore[arg-type]
    if out.get("opendss_ms_per_step"):
        out["speedup_vs_opendss"] = float(out["opendss_ms_per_step"]) / ours  # type: ignore[arg-type]
    out["speedup_vs_pandapower"] = float(out["pandapower_ms_per_step"]) / ours  # type: ignore[arg-type]
    if out.get("voltvar_opendss_ms_per_step"):
        out["voltvar_speedup_vs_opendss"] = float(out["voltvar_opendss_ms_per_step"]) / float(  # type: ignore[arg-type]
            out["voltvar_ours_ms_per_step"]  # type: ignore[arg-type]
        )
    print(json.dumps({k: (float(f"{v:.4g}") if isinstance(v, float) else v) for k, v in out.items()}))


if __name__ == "__main__":
    main()
