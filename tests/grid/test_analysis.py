"""The feeder glue of a study (grid/analysis.py) against hand-worked and published cases: the base-load
shape on the published IEEE 33-bus loads, the scenario's branch rating, and the day's power flows on a
two-bus feeder solved in closed form (so adding the fleet with the wrong sign or on the wrong bus fails)."""

from __future__ import annotations

import numpy as np
import pytest

from v2gtwin.grid.analysis import build_feeder, calc_base_load, run_feeder_timeseries
from v2gtwin.grid.feeder import Feeder
from v2gtwin.scenario import FeederSpec, TimeGrid


def test_base_load_is_the_published_loads_times_the_rts_shape() -> None:
    spec = FeederSpec(name="ieee33", peak_load_scale=0.5)
    feeder = build_feeder(spec, seed=1)
    # Baran & Wu (1989): 32 loads, 3,715 kW and 2,300 kvar in total; bus 1 (the first load bus) 100 kW / 60 kvar.
    # RTS-79 winter weekday (IEEE RTS Task Force 1979, Table 3): 16:00-17:00 is 99 %, 17:00-18:00 100 %.
    p, q = calc_base_load(feeder, spec, TimeGrid(dt_s=3600.0, n_steps=2, start_hour=16.0))
    assert p.shape == (2, 33)
    np.testing.assert_allclose(p.sum(axis=1), [0.99 * 0.5 * 3715.0, 1.00 * 0.5 * 3715.0], rtol=1e-9)
    np.testing.assert_allclose(q.sum(axis=1), [0.99 * 0.5 * 2300.0, 1.00 * 0.5 * 2300.0], rtol=1e-9)
    assert p[1, 1] == pytest.approx(0.5 * 100.0) and q[1, 1] == pytest.approx(0.5 * 60.0)
    assert p[0, 0] == 0.0  # the source bus carries no load


def test_scenario_branch_rating_reaches_every_branch_but_the_source() -> None:
    spec = FeederSpec(name="synthetic", synthetic_n_bus=10, ampacity_a=250.0)
    feeder = build_feeder(spec, seed=3)
    assert np.isinf(feeder.ampacity_a[0]) and np.all(feeder.ampacity_a[1:] == 250.0)


def _two_bus_v_pu(p_kw: float, q_kvar: float, r_pu: float, x_pu: float) -> float:
    # One branch, source 1 pu: V^4 - (1 - 2 (P R + Q X)) V^2 + (P^2 + Q^2)(R^2 + X^2) = 0 (the exact branch flow
    # equations of Baran & Wu 1989 for a single branch), P, Q in pu of 1 MVA; the high-voltage root.
    b = 1.0 - 2.0 * (p_kw / 1000 * r_pu + q_kvar / 1000 * x_pu)
    c = ((p_kw / 1000) ** 2 + (q_kvar / 1000) ** 2) * (r_pu**2 + x_pu**2)
    return float(np.sqrt((b + np.sqrt(b * b - 4 * c)) / 2))


def test_feeder_day_adds_the_fleet_as_load_on_its_bus() -> None:
    z_base = 12.66**2  # ohm, on 1 MVA
    feeder = Feeder(
        name="two-bus",
        parent=np.array([-1, 0]),
        r_ohm=np.array([0.0, 2.0]),
        x_ohm=np.array([0.0, 4.0]),
        v_base_kv=12.66,
        p_load_kw=np.array([0.0, 500.0]),
        q_load_kvar=np.array([0.0, 200.0]),
        ampacity_a=np.full(2, np.inf),
    )
    p_base = np.array([[0.0, 500.0], [0.0, 800.0]])
    q_base = np.array([[0.0, 200.0], [0.0, 300.0]])
    p_ev = np.array([[0.0, 300.0], [0.0, -200.0]])  # step 0 charging, step 1 discharging (V2G)
    ts = run_feeder_timeseries(
        feeder, p_base, q_base, p_ev, np.zeros((2, 2)), FeederSpec(name="synthetic", voltvar_curve="none")
    )
    r, x = 2.0 / z_base, 4.0 / z_base
    v_base = [_two_bus_v_pu(500, 200, r, x), _two_bus_v_pu(800, 300, r, x)]
    v_fleet = [_two_bus_v_pu(800, 200, r, x), _two_bus_v_pu(600, 300, r, x)]
    np.testing.assert_allclose(ts.v_min_base_pu, v_base, atol=1e-9)
    np.testing.assert_allclose(ts.v_min_fleet_pu, v_fleet, atol=1e-9)
    # Losses R (P^2 + Q^2) / V^2 of the receiving-end load [kW]: 1e3 * R * ((P/1e3)^2 + (Q/1e3)^2) / V^2.
    loss = [1e3 * r * ((800 / 1e3) ** 2 + (200 / 1e3) ** 2) / v_fleet[0] ** 2,
            1e3 * r * ((600 / 1e3) ** 2 + (300 / 1e3) ** 2) / v_fleet[1] ** 2]  # fmt: skip
    np.testing.assert_allclose(ts.losses_fleet_kw, loss, rtol=1e-7)
    # The worst step is the one with the lowest hand-computed voltage with the fleet (step 0: 800 kW + 200 kvar).
    assert v_fleet[0] < v_fleet[1] and ts.worst_step == 0
    # Without volt-var the third run is the fleet run and no reactive power is injected.
    np.testing.assert_allclose(ts.v_min_voltvar_pu, ts.v_min_fleet_pu)
    assert not ts.q_voltvar_kvar.any() and ts.voltvar_iterations == 0
