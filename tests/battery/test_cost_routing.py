"""Per-EV degradation costs reach the right EVs with the right weights: the aggregate schedule's one cost, the V2G
offer's price, the schedule's sampled EVs and the Stackelberg discharging followers. References: weighted means
and rng draws worked by hand on small fleets with distinct costs and discharge powers."""

from __future__ import annotations

import numpy as np
import pytest

from v2gtwin.fleet import Fleet, run_uncontrolled
from v2gtwin.markets.analysis import calc_discharge_followers, calc_v2g_offer_cost_per_mwh
from v2gtwin.markets.scheduling import calc_fleet_degradation_per_mwh, run_schedule_analysis
from v2gtwin.scenario import Scenario


def _three(n_steps: int, p_dis: list[float], arrival: list[int], departure: list[int]) -> Fleet:
    n = 3
    return Fleet(
        capacity_kwh=np.full(n, 60.0),
        soc0_pu=np.full(n, 0.5),
        soc_target_pu=np.full(n, 0.6),
        soc_min_pu=np.full(n, 0.2),
        soc_max_pu=np.full(n, 1.0),
        p_charge_max_kw=np.full(n, 7.2),
        p_discharge_max_kw=np.asarray(p_dis, dtype=float),
        eta_charge=np.full(n, 0.95),
        eta_discharge=np.full(n, 0.95),
        arrival_step=np.asarray(arrival),
        departure_step=np.asarray(departure),
        bus=np.ones(n, int),
        kind=np.zeros(n, int),
        dt_s=86_400.0 / n_steps,
        n_steps=n_steps,
    )


def test_aggregate_cost_is_weighted_by_discharge_power() -> None:
    # Costs 10, 40, 100 per MWh; discharge powers 3, 6, 0 kW: (10 x 3 + 40 x 6 + 100 x 0) / 9 = 270 / 9 = 30
    # (the plain mean would be 50; the EV without V2G does not count).
    f = _three(96, [3.0, 6.0, 0.0], [0, 0, 0], [96, 96, 96])
    assert calc_fleet_degradation_per_mwh(f, [10.0, 40.0, 100.0]) == pytest.approx(30.0, rel=1e-15)


def test_v2g_offer_price_weights_the_evs_plugged_in_at_the_offer_hour() -> None:
    # EVs 0 and 1 plugged in all day with 3 and 6 kW; EV 2 (11 kW) arrives after the offer step and does not
    # count: (10 x 3 + 40 x 6) / 9 = 30.
    scen = Scenario()
    step = scen.time.step_at(scen.markets.v2g_offer_hour, "markets.v2g_offer_hour")
    n = scen.time.n_steps
    f = _three(n, [3.0, 6.0, 11.0], [0, 0, step + 1], [n, n, n])
    got = calc_v2g_offer_cost_per_mwh(f, scen.markets, scen.time, [10.0, 40.0, 100.0])
    assert got == pytest.approx(30.0, rel=1e-15)


def test_stackelberg_followers_get_their_own_cost() -> None:
    # EVs 0 and 2 can sell (EV 1 has no V2G). With the same seeded generator the reservation prices r and the
    # factor u are the two uniform draws in order; gamma = max(v - r - d_i, 0.05 v) / y_max x u with d_i each
    # seller's own cost per kWh: 0.010 for EV 0, 0.300 for EV 2 (a reversed array would swap them).
    scen = Scenario()
    spec = scen.markets
    f = _three(96, [7.2, 0.0, 7.2], [0, 0, 0], [96, 96, 96])
    res, gamma, y_max = calc_discharge_followers(f, spec, np.random.default_rng(3), np.array([10.0, 20.0, 300.0]))
    v = spec.discharge_value_per_kwh
    rng = np.random.default_rng(3)
    r = rng.uniform(0.2 * v, 0.6 * v, 2)
    u = rng.uniform(0.6, 1.4, 2)
    y = (1.0 - 0.6) * 60.0 * 0.95  # (soc_max - target) x capacity x eta_discharge = 22.8 kWh
    want = np.maximum(v - r - np.array([0.010, 0.300]), 0.05 * v) / y * u
    np.testing.assert_allclose(res, r, rtol=1e-15)
    np.testing.assert_allclose(y_max, [y, y], rtol=1e-12)
    np.testing.assert_allclose(gamma, want, rtol=1e-12)


def test_schedule_sample_keeps_each_evs_own_cost() -> None:
    # A fleet larger than schedule_max_evs is sampled; the aggregate cost must be the discharge-power-weighted
    # mean over the sampled EVs of their own costs (cost i = i + 1 per MWh: distinct for every EV).
    from v2gtwin.study import build_fleet

    scen = Scenario(fleet={"n_evs": 60}, markets={"schedule_max_evs": 15})
    fleet = build_fleet(scen)
    cost = np.arange(1.0, fleet.n + 1.0)
    s = run_schedule_analysis(fleet, run_uncontrolled(fleet), scen.markets, scen.time, scen.seed, "USD", cost, "model")
    idx = s.ev_index
    assert idx.size == 15 and not np.array_equal(idx, np.arange(15))
    w = fleet.p_discharge_max_kw[idx]
    assert s.degradation_per_mwh == pytest.approx(float((cost[idx] * w).sum() / w.sum()), rel=1e-12)
