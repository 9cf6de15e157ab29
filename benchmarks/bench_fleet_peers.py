"""v2gtwin's uncontrolled charging against ACN-Sim and EV2Gym on the same sessions, side by side.

What is compared: the SAME charging sessions (v2gtwin's synthetic default fleet, sessions that arrive at step 1
or later and leave by the end of the horizon) fed to each tool; uncontrolled charging (every EV at its maximum
power from arrival until its energy need is met or it leaves); 96 steps of 15 min; 100 and 1,000 sessions; one
core (each process pinned to CPU 0, numba on one thread); CPU time (``time.process_time``) of the simulation
loop only, after set-up (building objects, loading the peer, JIT compilation) and after one warm-up run. Each tool
also reports the energy it delivered, so the printed line shows that the work was the same.

- v2gtwin: ``run_uncontrolled(fleet)`` on the fleet of those sessions.
- ACN-Sim (acnportal 0.3.3): ``Simulator.run()`` with ``UncontrolledCharging``, one EVSE per session, one
  infrastructure constraint that never binds (ACN-Sim requires one), EVSE voltage 1,000 V so that the rate in
  amperes equals the power in kW; each battery is full at the session's target energy.
- EV2Gym (ev2gym 2.0.0): ``env.step`` with every port at full power (action 1), one single-port charger per
  session, no grid simulation, the session list set in place of EV2Gym's own spawner after ``reset``.

The peers conflict with the pinned environment (EV2Gym pins its own pandapower/numba), so they live in a
separate virtual environment, created once with::

    python3 -m venv /work/peers-venv
    /work/peers-venv/bin/pip install acnportal==0.3.3 ev2gym==2.0.0 pandapower numba psutil multicopula

(EV2Gym 2.0.0 needs pandapower, numba, psutil and multicopula although it does not declare them all.) Point
``V2GTWIN_PEERS_PYTHON`` at that interpreter (default ``/work/peers-venv/bin/python``). A peer that cannot be
imported there is skipped with the reason in the output.

Run: ``python benchmarks/bench_fleet_peers.py`` (prints one JSON line; ``--repeat`` runs per tool, median kept).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

N_STEPS = 96
DT_MIN = 15
SIZES = (100, 1000)


def _pin_one_core() -> None:
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


# --------------------------------------------------------------------------------------------- the sessions
def make_sessions(n: int, seed: int) -> dict[str, list[float]]:
    """``n`` sessions from v2gtwin's synthetic generator (default scenario, 96 x 15 min), arriving at step >= 1."""
    import numpy as np

    from v2gtwin.scenario import parse_scenario
    from v2gtwin.study import build_fleet

    cols: dict[str, list[float]] = {k: [] for k in ("arrival", "departure", "capacity_kwh", "e0_kwh", "need_kwh")}
    cols["p_max_kw"] = []
    draw = 2 * n
    while len(cols["arrival"]) < n:
        scen = parse_scenario({"seed": seed, "fleet": {"n_evs": draw}, "time": {"n_steps": N_STEPS, "dt_s": 900}})
        f = build_fleet(scen)
        ok = (f.arrival_step >= 1) & (f.departure_step > f.arrival_step) & (f.departure_step <= N_STEPS)
        idx = np.flatnonzero(ok)[:n]
        if idx.size < n:
            draw *= 2
            continue
        cols["arrival"] = f.arrival_step[idx].astype(float).tolist()
        cols["departure"] = f.departure_step[idx].astype(float).tolist()
        cols["capacity_kwh"] = f.capacity_kwh[idx].tolist()
        cols["e0_kwh"] = (f.soc0_pu[idx] * f.capacity_kwh[idx]).tolist()
        cols["need_kwh"] = (np.clip(f.soc_target_pu[idx] - f.soc0_pu[idx], 0, None) * f.capacity_kwh[idx]).tolist()
        cols["p_max_kw"] = f.p_charge_max_kw[idx].tolist()
    return cols


# ------------------------------------------------------------------------------------------------ v2gtwin
def run_v2gtwin(s: dict[str, list[float]], repeat: int) -> dict[str, Any]:
    import numpy as np

    from v2gtwin.fleet import Fleet, run_uncontrolled

    n = len(s["arrival"])
    cap = np.asarray(s["capacity_kwh"])
    e0 = np.asarray(s["e0_kwh"])
    fleet = Fleet(
        capacity_kwh=cap,
        soc0_pu=e0 / cap,
        soc_target_pu=(e0 + np.asarray(s["need_kwh"])) / cap,
        soc_min_pu=np.zeros(n),
        soc_max_pu=np.ones(n),
        p_charge_max_kw=np.asarray(s["p_max_kw"]),
        p_discharge_max_kw=np.zeros(n),
        eta_charge=np.ones(n),  # the peers' batteries are lossless in these runs
        eta_discharge=np.ones(n),
        arrival_step=np.asarray(s["arrival"], dtype=np.int64),
        departure_step=np.asarray(s["departure"], dtype=np.int64),
        bus=np.zeros(n, dtype=np.int64),
        kind=np.zeros(n, dtype=np.int8),
        n_steps=N_STEPS,
        dt_s=DT_MIN * 60.0,
    )
    run_uncontrolled(fleet)  # warm-up (JIT)
    cpu, energy = [], 0.0
    for _ in range(repeat):
        t0 = time.process_time()
        res = run_uncontrolled(fleet)
        cpu.append(time.process_time() - t0)
        energy = float(np.asarray(res.p_kw).clip(min=0).sum() * DT_MIN / 60.0)
    return {"cpu_s": statistics.median(cpu), "energy_kwh": energy}


# ------------------------------------------------------------------------------------------------ ACN-Sim
def run_acnsim(s: dict[str, list[float]], repeat: int) -> dict[str, Any]:
    import datetime as dt

    from acnportal import acnsim
    from acnportal.algorithms import UncontrolledCharging

    cpu, energy = [], 0.0
    for _ in range(repeat + 1):  # the first run warms up
        network = acnsim.ChargingNetwork()
        events = []
        for i in range(len(s["arrival"])):
            sid = f"S{i}"
            network.register_evse(acnsim.EVSE(sid, max_rate=s["p_max_kw"][i]), 1000.0, 0.0)
            # Battery full at the target: ACN-Sim's uncontrolled charging would otherwise run the last step whole.
            full_kwh = s["e0_kwh"][i] + s["need_kwh"][i]
            battery = acnsim.Battery(full_kwh, s["e0_kwh"][i], s["p_max_kw"][i])
            ev = acnsim.EV(int(s["arrival"][i]), int(s["departure"][i]), s["need_kwh"][i], sid, f"E{i}", battery)
            events.append(acnsim.PluginEvent(int(s["arrival"][i]), ev))
        # ACN-Sim needs at least one constraint; this one never binds (1e9 A on the sum of all EVSE currents).
        network.add_constraint(acnsim.Current(list(network.station_ids)), 1e9, name="none_binding")
        sim = acnsim.Simulator(
            network,
            UncontrolledCharging(),
            acnsim.EventQueue(events),
            dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            period=DT_MIN,
            verbose=False,
        )
        t0 = time.process_time()
        sim.run()
        cpu.append(time.process_time() - t0)
        energy = float(sim.charging_rates.sum() * 1000.0 / 1000.0 * DT_MIN / 60.0)  # A x 1,000 V -> kW -> kWh
    return {"cpu_s": statistics.median(cpu[1:]), "energy_kwh": energy}


# ------------------------------------------------------------------------------------------------ EV2Gym
def run_ev2gym(s: dict[str, list[float]], repeat: int) -> dict[str, Any]:
    import importlib.resources

    import numpy as np
    import yaml
    from ev2gym.models.ev import EV
    from ev2gym.models.ev2gym_env import EV2Gym

    n = len(s["arrival"])
    base = importlib.resources.files("ev2gym") / "example_config_files" / "V2GProfitMax.yaml"
    config = yaml.safe_load(base.read_text())
    config |= {
        "timescale": DT_MIN,
        "simulation_length": N_STEPS,
        "random_day": False,
        "random_hour": False,
        "number_of_charging_stations": n,
        "number_of_ports_per_cs": 1,
        "number_of_transformers": 1,
        "simulate_grid": False,
        "v2g_enabled": False,
        "charging_network_topology": "None",
        "tr_seed": 0,
        "heterogeneous_ev_specs": False,
    }
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "bench.yaml"
        cfg.write_text(yaml.safe_dump(config))
        cpu, energy = [], 0.0
        for _ in range(repeat + 1):  # the first run warms up
            env = EV2Gym(config_file=str(cfg), generate_rnd_game=True, save_replay=False, save_plots=False)
            env.reset(seed=0)
            env.EVs_profiles = [
                EV(
                    id=0,
                    location=i,
                    battery_capacity_at_arrival=s["e0_kwh"][i],
                    time_of_arrival=int(s["arrival"][i]),
                    time_of_departure=int(s["departure"][i]),
                    # Battery full at the target (as for ACN-Sim), ideal (no constant-voltage stage).
                    desired_capacity=s["e0_kwh"][i] + s["need_kwh"][i],
                    battery_capacity=s["e0_kwh"][i] + s["need_kwh"][i],
                    transition_soc=1.0,
                    min_battery_capacity=0.0,
                    min_emergency_battery_capacity=0.0,
                    max_ac_charge_power=s["p_max_kw"][i],
                    max_discharge_power=0.0,
                    timescale=DT_MIN,
                )
                for i in sorted(range(n), key=lambda j: s["arrival"][j])
            ]
            t0 = time.process_time()
            for _ in range(N_STEPS):
                # A new array each step: EV2Gym zeroes the actions of empty ports in place.
                *_, done, _, _ = env.step(np.ones(env.number_of_ports))
                if done:
                    break
            cpu.append(time.process_time() - t0)
            energy = float(np.clip(env.current_power_usage, 0, None).sum() * DT_MIN / 60.0)
    return {"cpu_s": statistics.median(cpu[1:]), "energy_kwh": energy}


PEERS = {"acnsim": run_acnsim, "ev2gym": run_ev2gym}
PEER_MODULES = {"acnsim": "acnportal", "ev2gym": "ev2gym"}


def _peer_in_subprocess(peer: str, sessions: dict[str, list[float]], repeat: int, python: str) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(sessions, fh)
    try:
        proc = subprocess.run(
            [python, __file__, "--peer", peer, "--sessions", fh.name, "--repeat", str(repeat)],
            capture_output=True,
            text=True,
            check=False,
            env=os.environ | {"PYTHONWARNINGS": "ignore"},
        )
    finally:
        os.unlink(fh.name)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"skipped": f"{peer} failed in {python}: {tail}"}
    return json.loads(lines[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peer", choices=sorted(PEERS))
    ap.add_argument("--sessions")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=20261127)
    args = ap.parse_args()
    _pin_one_core()
    if args.peer:  # child mode: one peer on sessions from a file, in the peers' environment
        import warnings

        warnings.simplefilter("ignore")
        sessions = json.loads(Path(args.sessions).read_text())
        print(json.dumps(PEERS[args.peer](sessions, args.repeat)))
        return
    python = os.environ.get("V2GTWIN_PEERS_PYTHON", "/work/peers-venv/bin/python")
    available: dict[str, str | None] = {}
    for peer, module in PEER_MODULES.items():
        if not Path(python).exists():
            available[peer] = f"no peers interpreter at {python} (see this script's docstring)"
            continue
        probe = subprocess.run([python, "-c", f"import {module}"], capture_output=True, text=True, check=False)
        available[peer] = None if probe.returncode == 0 else f"{module} not importable in {python}"
    out: dict[str, Any] = {
        "benchmark": "fleet_peers",
        "what": "uncontrolled charging of the same sessions, 96 steps of 15 min, one core, CPU s of the loop",
        "repeat": args.repeat,
        "cases": [],
    }
    for n in SIZES:
        sessions = make_sessions(n, args.seed)
        case: dict[str, Any] = {"n_sessions": n, "v2gtwin": run_v2gtwin(sessions, args.repeat)}
        ours = case["v2gtwin"]["cpu_s"]
        case["v2gtwin"]["ev_steps_per_cpu_s"] = n * N_STEPS / ours
        for peer in PEERS:
            if available[peer] is not None:
                case[peer] = {"skipped": available[peer]}
                continue
            r = _peer_in_subprocess(peer, sessions, args.repeat, python)
            if "cpu_s" in r:
                r["ev_steps_per_cpu_s"] = n * N_STEPS / r["cpu_s"]
                r["cpu_ratio_to_v2gtwin"] = r["cpu_s"] / ours
            case[peer] = r
        out["cases"].append(case)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
