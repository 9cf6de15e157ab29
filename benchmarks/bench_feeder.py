"""Benchmark: the 33-bus feeder x 8,760 hourly steps with random per-load scaling, engines side by side.

Prints one JSON line. Timings are medians of ``--repeats`` rounds; within a round the engines run one after
the other (interleaved), so that a busy machine slows them alike, and each ratio is the median of the
per-round ratios. Keys:

* ``ours_ms_per_step`` (numba on ``ours_threads`` threads, all cores) and ``ours_1thread_ms_per_step``
  (``numba.set_num_threads(1)``): ``run_powerflow`` (exact sweep, every output: voltage magnitude and
  angle, branch currents and flows, losses, source power), tolerance ``ours_tol_pu`` on the voltage update.
* ``opendss_1ph_ms_per_step``: OpenDSS (opendssdirect.py, one thread), native yearly mode, on the
  single-phase (positive-sequence) equivalent that ours solves: ``phases=1`` source, lines and loads, the
  same impedances and full loads (per-unit voltages and losses equal those of the balanced three-phase
  feeder). ``opendss_ms_per_step``: the same feeder as a three-phase model (as before). Loads on yearly
  load shapes, ``vminpu=0.7`` so they keep their constant-power model; tolerance ``opendss_tolerance``
  (OpenDSS's default). Timed runs have no monitors.
* ``max_dv_pu_vs_opendss_all_steps`` (single-phase model) and ``max_dv_pu_vs_opendss_3ph_all_steps``:
  the largest voltage difference over all buses and **all** steps, from a separate yearly run with one
  monitor per bus (not timed).
* ``pandapower_ms_per_step``: ``runpp`` in a loop (``init="results"``) over ``pandapower_steps_timed``
  sampled steps; its voltages give ``max_dv_pu_vs_pandapower``. ``pandapower_timeseries_ms_per_step``:
  pandapower's time-series module (``run_timeseries`` with ``ConstControl`` controllers driving the
  loads' ``p_mw`` and ``q_mvar`` from a ``DFData`` source) over the first ``pandapower_timeseries_steps_timed``
  steps (it is slow: a subset, stated). Tolerance ``pandapower_tolerance_mva``.
* ``speedup_*``: ``speedup_vs_opendss_1ph_1thread`` compares ours on one thread with OpenDSS's single-phase
  model (one thread): thread for thread, the same model (``*_cpu``: the same pair by the process's CPU
  time, which a busy machine inflates less; on a quiet machine the two agree). ``speedup_vs_opendss_1ph``
  uses ours on all cores; ``speedup_vs_opendss`` is ours (all cores) against the three-phase model (the old
  figure).
  ``speedup_vs_pandapower*`` use ours on all cores.
* volt-var: IEEE 1547 Category B curve on 5 inverters of 100 kVA (no active power), ours fused kernel
  against OpenDSS PVSystem + InvControl (VOLTVAR, yearly mode, one thread), like the power flow on the
  single-phase equivalent (``phases=1`` PVSystems too). Interleaved rounds: ours on all cores
  (``voltvar_ours_ms_per_step``), ours on one thread (``voltvar_ours_1thread_ms_per_step``, with its CPU
  time), OpenDSS single-phase (``voltvar_opendss_1ph_ms_per_step``). ``voltvar_speedup_vs_opendss_1ph_1thread``
  is thread for thread (``*_cpu``: by CPU time), ``voltvar_speedup_vs_opendss_1ph`` uses ours on all cores.
  ``voltvar_max_dv_pu_vs_opendss_all_steps``: the largest voltage difference over all buses and **all**
  steps (single-phase model, one monitor per bus, untimed run). The three-phase InvControl model of earlier
  versions is still timed (``voltvar_opendss_3ph_ms_per_step``, ``voltvar_speedup_vs_opendss_3ph``: ours on
  all cores, ``max(1, repeats // 2)`` rounds, not interleaved) and compared over all steps
  (``voltvar_max_dv_pu_vs_opendss_3ph_all_steps``). It replaces ``voltvar_opendss_ms_per_step``,
  ``voltvar_speedup_vs_opendss`` and ``voltvar_max_dv_pu_opendss_vs_ours_last_step`` (three-phase, last step).
* threads: ``ours_threads`` (numba's, all cores), ``opendss_threads`` and ``pandapower_threads`` (1: OpenDSS's
  solver, with no parallel option set, and pandapower's Newton-Raphson, on scipy's SuperLU, run on one thread).
* ``bus10000_solve_ms``: one solve of a seeded 10,000-bus synthetic feeder.

``--quick``: 744 steps (a month), 3 rounds, fewer pandapower steps. OpenDSS is a benchmark-only extra:
``pip install 'v2gtwin[bench]'``.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections.abc import Callable
from typing import Any

import numba
import numpy as np

from v2gtwin.grid.feeder import Feeder, ieee33, run_powerflow, synthetic_feeder, to_pandapower
from v2gtwin.grid.voltvar import VOLTVAR_CURVES, run_voltvar

VV_BUS = (17, 21, 24, 29, 32)  # feeder positions of the volt-var inverters
VV_KVA = 100.0
OURS_TOL_PU = 1e-10  # run_powerflow's default
PP_TOL_MVA = 1e-10


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def timed_both(fn: Callable[[], Any]) -> tuple[float, float]:
    """(wall time, CPU time of the whole process) [s]: on a busy machine the CPU time is what the engine
    itself used; on a quiet one the two agree for one thread."""
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def build_opendss(feeder: Feeder, mult: np.ndarray, *, phases: int, voltvar: bool, monitors: bool) -> Any:
    """The feeder in OpenDSS: ``phases=3`` (three-phase model, line-to-line kV) or ``phases=1`` (its
    single-phase equivalent: the same impedances and full loads at ``v_base_kv`` across one phase)."""
    import opendssdirect as dss

    kv = feeder.v_base_kv
    dss.Text.Command("clear")
    dss.Text.Command(
        f"new circuit.bench basekv={kv} pu={feeder.v_source_pu} phases={phases} bus1=b0 r1=1e-9 x1=1e-9 r0=1e-9 x0=1e-9"
    )
    for k in range(1, feeder.n_bus):
        dss.Text.Command(
            f"new line.l{k} bus1=b{feeder.parent[k]} bus2=b{k} phases={phases} length=1 units=none "
            f"r1={feeder.r_ohm[k]} x1={feeder.x_ohm[k]} r0={feeder.r_ohm[k]} x0={feeder.x_ohm[k]} c1=0 c0=0"
        )
        dss.Text.Command(f"new loadshape.ls{k} npts={mult.shape[0]} interval=1")
        dss.LoadShape.Name(f"ls{k}")
        dss.LoadShape.PMult(mult[:, k].tolist())
        dss.LoadShape.QMult(mult[:, k].tolist())
        dss.Text.Command(
            f"new load.d{k} bus1=b{k} phases={phases} kv={kv} kw={feeder.p_load_kw[k]} "
            f"kvar={feeder.q_load_kvar[k]} model=1 vminpu=0.7 vmaxpu=1.3 yearly=ls{k}"
        )
        if monitors:
            dss.Text.Command(f"new monitor.m{k} element=line.l{k} terminal=2 mode=0")
    if voltvar:
        c = VOLTVAR_CURVES["B"]
        # OpenDSS's XYCurve extrapolates its first and last segments beyond the end points, where IEEE 1547
        # holds Q at Q1 below V1 and at Q4 above V4 (as ours does): flat end segments out to 0.5 and 1.5 pu make
        # the two the same curve. (Checked with opendssdirect.py 0.9.4: the four-point curve gives Q = 0.587 pu
        # at 0.90 pu; without the flat ends an inverter below 0.92 pu drew more than 0.44 pu of Q, and the
        # voltages differed from ours by up to 1e-4 pu on those steps against 7e-8 pu on the others.)
        v_pts = (0.5, *c.v_pu, 1.5)
        q_pts = (c.q_pu[0], *c.q_pu, c.q_pu[-1])
        dss.Text.Command(
            f"new xycurve.vvc npts={len(v_pts)} xarray=[{' '.join(map(str, v_pts))}] "
            f"yarray=[{' '.join(map(str, q_pts))}]"
        )
        for b in VV_BUS:
            dss.Text.Command(
                f"new pvsystem.pv{b} bus1=b{b} phases={phases} kv={kv} kva={VV_KVA} pmpp={VV_KVA} "
                f"irradiance=0 kvarmax={VV_KVA} kvarmaxabs={VV_KVA} varfollowinverter=no %cutin=0 %cutout=0"
            )
        dss.Text.Command(
            "new invcontrol.vv mode=voltvar vvc_curve1=vvc voltage_curvex_ref=rated refreactivepower=varmax "
            "deltaQ_factor=0.5 varchangetolerance=1e-6 voltagechangetolerance=1e-8"
        )
        dss.Text.Command("set maxcontroliter=1000")
    # Bus voltage bases are line-to-line; a single-phase model at kv across one phase has kv * sqrt(3).
    dss.Text.Command(f"set voltagebases=[{kv if phases == 3 else kv * math.sqrt(3.0)}]")
    dss.Text.Command("calcvoltagebases")
    return dss


def run_opendss_yearly(dss: Any, n_steps: int) -> np.ndarray:
    """One yearly solve; returns the last step's voltages [pu] in feeder order."""
    dss.Text.Command(f"set mode=yearly number={n_steps} stepsize=1h hour=0 sec=0")
    dss.Text.Command("solve")
    names = dss.Circuit.AllBusNames()
    mags = np.asarray(dss.Circuit.AllBusMagPu()).reshape(len(names), -1).mean(axis=1)
    return mags[[names.index(f"b{k}") for k in range(len(names))]]


def opendss_all_steps(feeder: Feeder, mult: np.ndarray, phases: int, *, voltvar: bool = False) -> np.ndarray:
    """Voltages [pu] of every bus at every step from a yearly run with one monitor per bus (not timed)."""
    dss = build_opendss(feeder, mult, phases=phases, voltvar=voltvar, monitors=True)
    run_opendss_yearly(dss, mult.shape[0])
    v_base = feeder.v_base_kv * 1000.0 / (math.sqrt(3.0) if phases == 3 else 1.0)
    v = np.full((mult.shape[0], feeder.n_bus), feeder.v_source_pu)
    for k in range(1, feeder.n_bus):
        dss.Monitors.Name(f"m{k}")
        v[:, k] = np.asarray(dss.Monitors.Channel(1)) / v_base  # channel 1: |V| of phase 1 [V]
    return v


def pandapower_timeseries_s(feeder: Feeder, p: np.ndarray, q: np.ndarray) -> float:
    """Wall time of pandapower's run_timeseries over these steps (ConstControl on the loads' p and q)."""
    import pandapower as pp
    import pandas as pd
    from pandapower.control import ConstControl
    from pandapower.timeseries import DFData, OutputWriter, run_timeseries

    net = to_pandapower(feeder, p[0], q[0])
    loads = net.load.index.to_numpy()
    cols_p = [f"p{i}" for i in loads]
    cols_q = [f"q{i}" for i in loads]
    data = pd.DataFrame(np.hstack([p[:, 1:] / 1000.0, q[:, 1:] / 1000.0]), columns=cols_p + cols_q)
    source = DFData(data)
    ConstControl(net, "load", "p_mw", loads, data_source=source, profile_name=cols_p)
    ConstControl(net, "load", "q_mvar", loads, data_source=source, profile_name=cols_q)
    OutputWriter(net, time_steps=range(p.shape[0]), output_path=None, log_variables=[("res_bus", "vm_pu")])
    pp.runpp(net)
    t0 = time.perf_counter()
    run_timeseries(net, time_steps=range(p.shape[0]), verbose=False, tolerance_mva=PP_TOL_MVA)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=8760)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--pp-sample", type=int, default=60, help="steps of the runpp loop")
    parser.add_argument("--pp-timeseries-steps", type=int, default=240, help="steps of run_timeseries")
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--quick", action="store_true", help="744 steps, 3 rounds, fewer pandapower steps")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.repeats, args.pp_sample, args.pp_timeseries_steps = 744, 3, 20, 48

    feeder = ieee33()
    rng = np.random.default_rng(args.seed)
    mult = rng.uniform(0.5, 1.2, (args.steps, feeder.n_bus))
    p, q = feeder.p_load_kw * mult, feeder.q_load_kvar * mult
    n_threads = numba.config.NUMBA_NUM_THREADS
    out: dict[str, Any] = {"steps": args.steps, "repeats": args.repeats, "ours_threads": n_threads}

    run_powerflow(feeder, p[:10], q[:10])  # compile / warm up
    res = run_powerflow(feeder, p, q)
    try:
        dss3 = build_opendss(feeder, mult, phases=3, voltvar=False, monitors=False)
        run_opendss_yearly(dss3, args.steps)
        have_dss = True
    except ImportError:
        have_dss = False

    # Interleaved rounds: ours on all cores, ours on one thread, OpenDSS three-phase, OpenDSS single-phase.
    rounds: dict[str, list[float]] = {k: [] for k in ("ours", "ours1", "dss3", "dss1", "ours1_cpu", "dss1_cpu")}
    for _ in range(args.repeats):
        numba.set_num_threads(n_threads)
        rounds["ours"].append(timed(lambda: run_powerflow(feeder, p, q))[0])
        # After a parallel region the OpenMP workers spin for a few ms before they sleep: let them, so that
        # their spinning is not charged to the next (single-threaded) timing.
        time.sleep(0.1)
        numba.set_num_threads(1)
        wall, cpu = timed_both(lambda: run_powerflow(feeder, p, q))
        rounds["ours1"].append(wall)
        rounds["ours1_cpu"].append(cpu)
        numba.set_num_threads(n_threads)
        if have_dss:
            for key, phases in (("dss3", 3), ("dss1", 1)):
                dss = build_opendss(feeder, mult, phases=phases, voltvar=False, monitors=False)
                wall, cpu = timed_both(lambda dss=dss: run_opendss_yearly(dss, args.steps))
                rounds[key].append(wall)
                if key == "dss1":
                    rounds["dss1_cpu"].append(cpu)

    def ms(key: str) -> float:
        return statistics.median(rounds[key]) / args.steps * 1e3

    def ratio(num: str, den: str) -> float:
        return statistics.median(a / b for a, b in zip(rounds[num], rounds[den], strict=True))

    out["ours_ms_per_step"] = ms("ours")
    out["ours_1thread_ms_per_step"] = ms("ours1")
    out["ours_tol_pu"] = OURS_TOL_PU
    out["ours_iterations_mean"] = float(res.iterations.mean())
    out["pandapower_threads"] = 1
    if have_dss:
        out["opendss_threads"] = 1
        out["opendss_tolerance"] = 1e-4  # OpenDSS's default, left as is
        out["opendss_ms_per_step"] = ms("dss3")
        out["opendss_1ph_ms_per_step"] = ms("dss1")
        out["speedup_vs_opendss"] = ratio("dss3", "ours")
        out["speedup_vs_opendss_1ph"] = ratio("dss1", "ours")
        out["speedup_vs_opendss_1ph_1thread"] = ratio("dss1", "ours1")
        # The same pair by CPU time (robust to a busy machine; equal to the wall-time ratio on a quiet one).
        out["ours_1thread_cpu_ms_per_step"] = ms("ours1_cpu")
        out["opendss_1ph_cpu_ms_per_step"] = ms("dss1_cpu")
        out["speedup_vs_opendss_1ph_1thread_cpu"] = ratio("dss1_cpu", "ours1_cpu")
        out["max_dv_pu_vs_opendss_all_steps"] = float(np.abs(opendss_all_steps(feeder, mult, 1) - res.v_pu).max())
        out["max_dv_pu_vs_opendss_3ph_all_steps"] = float(np.abs(opendss_all_steps(feeder, mult, 3) - res.v_pu).max())
    else:
        out["opendss_ms_per_step"] = out["opendss_1ph_ms_per_step"] = None

    # pandapower: the runpp loop on a sample of steps, and its time-series module on the first steps.
    import pandapower as pp

    net = to_pandapower(feeder, p[0], q[0])
    pp.runpp(net)
    sample = rng.choice(args.steps, size=min(args.pp_sample, args.steps), replace=False)
    dv = 0.0
    t0 = time.perf_counter()
    for t in sample:
        net.load["p_mw"] = p[t, 1:] / 1000.0
        net.load["q_mvar"] = q[t, 1:] / 1000.0
        pp.runpp(net, init="results", tolerance_mva=PP_TOL_MVA)
        dv = max(dv, float(np.abs(net.res_bus.vm_pu.values - res.v_pu[t]).max()))
    out["pandapower_ms_per_step"] = (time.perf_counter() - t0) / sample.size * 1e3
    out["pandapower_steps_timed"] = int(sample.size)
    out["pandapower_tolerance_mva"] = PP_TOL_MVA
    out["max_dv_pu_vs_pandapower"] = dv
    n_ts = min(args.pp_timeseries_steps, args.steps)
    pandapower_timeseries_s(feeder, p[:2], q[:2])  # warm-up: the first run in a process costs seconds
    out["pandapower_timeseries_ms_per_step"] = pandapower_timeseries_s(feeder, p[:n_ts], q[:n_ts]) / n_ts * 1e3
    out["pandapower_timeseries_steps_timed"] = n_ts
    ours = float(out["ours_ms_per_step"])
    out["speedup_vs_pandapower"] = float(out["pandapower_ms_per_step"]) / ours
    out["speedup_vs_pandapower_timeseries"] = float(out["pandapower_timeseries_ms_per_step"]) / ours

    # Volt-var: interleaved rounds, ours on all cores, ours on one thread, OpenDSS single-phase (one thread).
    s = np.zeros(feeder.n_bus)
    s[list(VV_BUS)] = VV_KVA
    run_voltvar(feeder, p[:10], q[:10], 0.0, s, "B")
    vv = run_voltvar(feeder, p, q, 0.0, s, "B")
    vv_rounds: dict[str, list[float]] = {k: [] for k in ("ours", "ours1", "ours1_cpu", "dss1", "dss1_cpu")}
    for _ in range(args.repeats):
        numba.set_num_threads(n_threads)
        vv_rounds["ours"].append(timed(lambda: run_voltvar(feeder, p, q, 0.0, s, "B"))[0])
        time.sleep(0.1)  # let the OpenMP workers stop spinning (as above)
        numba.set_num_threads(1)
        wall, cpu = timed_both(lambda: run_voltvar(feeder, p, q, 0.0, s, "B"))
        vv_rounds["ours1"].append(wall)
        vv_rounds["ours1_cpu"].append(cpu)
        numba.set_num_threads(n_threads)
        if have_dss:
            dss = build_opendss(feeder, mult, phases=1, voltvar=True, monitors=False)
            wall, cpu = timed_both(lambda dss=dss: run_opendss_yearly(dss, args.steps))
            vv_rounds["dss1"].append(wall)
            vv_rounds["dss1_cpu"].append(cpu)

    def vv_ms(key: str) -> float:
        return statistics.median(vv_rounds[key]) / args.steps * 1e3

    def vv_ratio(num: str, den: str) -> float:
        return statistics.median(a / b for a, b in zip(vv_rounds[num], vv_rounds[den], strict=True))

    out["voltvar_ours_ms_per_step"] = vv_ms("ours")
    out["voltvar_ours_1thread_ms_per_step"] = vv_ms("ours1")
    out["voltvar_ours_1thread_cpu_ms_per_step"] = vv_ms("ours1_cpu")
    if have_dss:
        out["voltvar_opendss_1ph_ms_per_step"] = vv_ms("dss1")
        out["voltvar_opendss_1ph_cpu_ms_per_step"] = vv_ms("dss1_cpu")
        out["voltvar_speedup_vs_opendss_1ph_1thread"] = vv_ratio("dss1", "ours1")
        out["voltvar_speedup_vs_opendss_1ph_1thread_cpu"] = vv_ratio("dss1_cpu", "ours1_cpu")
        out["voltvar_speedup_vs_opendss_1ph"] = vv_ratio("dss1", "ours")
        v1 = opendss_all_steps(feeder, mult, 1, voltvar=True)
        out["voltvar_max_dv_pu_vs_opendss_all_steps"] = float(np.abs(v1 - vv.powerflow.v_pu).max())
        # The three-phase InvControl model of earlier versions (ours on all cores; not interleaved).
        dss = build_opendss(feeder, mult, phases=3, voltvar=True, monitors=False)
        dss3_times = [timed(lambda: run_opendss_yearly(dss, args.steps))[0] for _ in range(max(1, args.repeats // 2))]
        out["voltvar_opendss_3ph_ms_per_step"] = statistics.median(dss3_times) / args.steps * 1e3
        out["voltvar_speedup_vs_opendss_3ph"] = out["voltvar_opendss_3ph_ms_per_step"] / out["voltvar_ours_ms_per_step"]
        v3 = opendss_all_steps(feeder, mult, 3, voltvar=True)
        out["voltvar_max_dv_pu_vs_opendss_3ph_all_steps"] = float(np.abs(v3 - vv.powerflow.v_pu).max())
    else:
        out["voltvar_opendss_1ph_ms_per_step"] = None

    # 10,000-bus synthetic feeder, one solve.
    big = synthetic_feeder(10_000, np.random.default_rng(args.seed))
    run_powerflow(big, big.p_load_kw, big.q_load_kvar)
    big_times = [timed(lambda: run_powerflow(big, big.p_load_kw, big.q_load_kvar))[0] for _ in range(args.repeats)]
    out["bus10000_solve_ms"] = statistics.median(big_times) * 1e3
    print(json.dumps({k: (float(f"{v:.4g}") if isinstance(v, float) else v) for k, v in out.items()}))


if __name__ == "__main__":
    main()
