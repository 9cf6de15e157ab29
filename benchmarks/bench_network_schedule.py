"""Benchmark: the network-constrained day-ahead schedule of 100,000 EVs on 100 seeded synthetic feeders of 33-200
buses, 96 steps of 15 min (issue 12, point 6; the lead joins it into bench_network.py).

Each feeder is :func:`v2gtwin.grid.feeder.synthetic_feeder` (its weakest bus at 0.95 pu under its nominal load)
under the package's daily profile (:func:`v2gtwin.grid.profiles.calc_daily_profile`) times ``--load-share``; the
fleet is the synthetic fleet of the default scenario, each EV on a random feeder and bus (seeded); prices are the
default scenario's curve. ``schedule_s`` times :func:`v2gtwin.optimize.network_schedule.solve_network_schedule`
(inner batteries, LPs, exact-AC checks and tightening rounds, disaggregation); the feeders' linearisation
(an exact power flow per feeder, shared with the operating envelopes) is timed apart as ``linearise_s``. The
same fleet is then scheduled without the network rows (``ac_violations_unconstrained``, not timed): at the default
load share of 0.8 the feeders' limits bind, so the zero is earned.
Prints one JSON line: ``n_evs``, ``n_feeders``, ``schedule_s``, ``linearise_s``, ``ac_violations``,
``ac_violations_unconstrained``, ``base_violations``, ``rounds``, ``workers``, ``v_min_pu``, ``cost_per_horizon``,
``cost_unconstrained_per_horizon``.
Target: schedule <= 120 s on 2 cores, zero violations by exact AC.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from v2gtwin.fleet import synthesize_fleet
from v2gtwin.grid.feeder import Feeder, synthetic_feeder
from v2gtwin.grid.linear import LinearFeederModel, calc_linear_model
from v2gtwin.grid.profiles import calc_daily_profile
from v2gtwin.markets.analysis import calc_price_curve
from v2gtwin.markets.scheduling import feasible_part
from v2gtwin.optimize.network_schedule import NetworkScheduleResult, solve_network_schedule
from v2gtwin.scenario import DEFAULT_SCENARIO, FleetSpec


def build_case(
    n_evs: int, n_feeders: int, seed: int, load_share: float = 0.8
) -> tuple[list[LinearFeederModel], object, np.ndarray, np.ndarray, np.ndarray, float]:
    """(linearised feeders, fleet, ev_feeder, ev_bus, price, linearise_s) of the benchmark case."""
    rng = np.random.default_rng(seed)
    tg = DEFAULT_SCENARIO.time
    shape = calc_daily_profile(tg.n_steps, tg.dt_s, tg.start_hour) * load_share
    sizes = rng.integers(33, 201, n_feeders)
    feeders = [synthetic_feeder(int(n), np.random.default_rng([seed, k])) for k, n in enumerate(sizes)]
    t0 = time.perf_counter()
    models = [calc_linear_model(f, shape[:, None] * f.p_load_kw, shape[:, None] * f.q_load_kvar) for f in feeders]
    linearise_s = time.perf_counter() - t0
    fleet = feasible_part(synthesize_fleet(FleetSpec(n_evs=n_evs), tg, 2, rng))
    ev_feeder = rng.integers(0, n_feeders, fleet.n)
    ev_bus = 1 + (rng.random(fleet.n) * (sizes[ev_feeder] - 1)).astype(np.int64)
    price = calc_price_curve(DEFAULT_SCENARIO.markets, tg)
    return models, fleet, ev_feeder, ev_bus, price, linearise_s


def schedule_case(
    case: list[tuple[Feeder, np.ndarray, np.ndarray, np.ndarray]], seed: int, workers: int = 1
) -> dict[str, object]:
    """The network-constrained schedule on the operating-envelope benchmark's case (``bench_network.build_case``:
    (feeder, p_base_kw, q_base_kvar, EVs per bus) per feeder): a synthetic fleet of the default scenario with as
    many EVs, the k-th EV of a bus on that bus. Returns ``schedule_s``, ``ac_violations`` and friends."""
    rng = np.random.default_rng([seed, 12])
    tg = DEFAULT_SCENARIO.time
    models = [calc_linear_model(f, p, q) for f, p, q, _ in case]
    ev_feeder = np.concatenate([np.full(int(w.sum()), k) for k, (_, _, _, w) in enumerate(case)]).astype(np.int64)
    ev_bus = np.concatenate([np.repeat(np.arange(w.size), w.astype(np.int64)) for _, _, _, w in case])
    fleet = synthesize_fleet(FleetSpec(n_evs=int(ev_feeder.size)), tg, 2, rng)
    dwell = fleet.departure_step - fleet.arrival_step
    reach = fleet.soc0_pu * fleet.capacity_kwh + fleet.p_charge_max_kw * fleet.eta_charge * fleet.dt_h * dwell
    keep = reach >= fleet.soc_target_pu * fleet.capacity_kwh - 1e-9
    price = calc_price_curve(DEFAULT_SCENARIO.markets, tg)
    t0 = time.perf_counter()
    r = solve_network_schedule(
        fleet.subset(keep),
        models,
        ev_feeder[keep],
        ev_bus[keep],
        price,
        workers=workers,
        degradation_per_mwh=DEFAULT_SCENARIO.markets.degradation_per_mwh,
    )
    return {
        "n_evs_scheduled": int(keep.sum()),
        "schedule_s": round(time.perf_counter() - t0, 2),
        "ac_violations": r.ac_violations,
        "base_violations": r.base_violations,
        "rounds": r.rounds,
        "v_min_pu": round(r.v_min_pu, 5),
    }


def run(n_evs: int, n_feeders: int, seed: int, workers: int) -> dict[str, object]:
    models, fleet, ev_feeder, ev_bus, price, lin_s = build_case(n_evs, n_feeders, seed)
    t0 = time.perf_counter()
    r: NetworkScheduleResult = solve_network_schedule(
        fleet,  # type: ignore[arg-type]
        models,
        ev_feeder,
        ev_bus,
        price,
        workers=workers,
        degradation_per_mwh=DEFAULT_SCENARIO.markets.degradation_per_mwh,
    )
    schedule_s = time.perf_counter() - t0
    free = solve_network_schedule(
        fleet,  # type: ignore[arg-type]
        models,
        ev_feeder,
        ev_bus,
        price,
        workers=workers,
        network_secure=False,
        degradation_per_mwh=DEFAULT_SCENARIO.markets.degradation_per_mwh,
    )
    return {
        "n_evs": int(fleet.n),  # type: ignore[attr-defined]
        "n_feeders": n_feeders,
        "schedule_s": round(schedule_s, 2),
        "linearise_s": round(lin_s, 2),
        "ac_violations": r.ac_violations,
        "ac_violations_unconstrained": free.ac_violations,
        "base_violations": r.base_violations,
        "rounds": r.rounds,
        "workers": r.workers,
        "v_min_pu": round(r.v_min_pu, 5),
        "cost_per_horizon": round(r.cost_per_horizon, 1),
        "cost_unconstrained_per_horizon": round(free.cost_per_horizon, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-evs", type=int, default=100_000)
    ap.add_argument("--n-feeders", type=int, default=100)
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--workers", type=int, default=1, help="processes solving feeders side by side (default 1)")
    a = ap.parse_args()
    print(json.dumps(run(a.n_evs, a.n_feeders, a.seed, a.workers)))


if __name__ == "__main__":
    main()
