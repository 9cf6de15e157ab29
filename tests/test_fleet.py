"""Tests of v2gtwin.fleet: hand-computed single-EV cases, an independent plain-Python reference of the
SoC simulation and of the energy bounds, and hypothesis properties (SoC bounds, energy balance, no power
while unplugged, uncontrolled inside the envelope, the lower energy path meets every feasible target)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from v2gtwin.errors import DataError
from v2gtwin.fleet import (
    Fleet,
    calc_energy_bounds,
    calc_envelope,
    calc_path_request,
    calc_plugged,
    calc_plugged_energy_kwh,
    run_uncontrolled,
    simulate_soc,
    summarize_fleet,
    synthesize_fleet,
)
from v2gtwin.scenario import FleetSpec, TimeGrid

from .fleets import one_ev

TOL = 1e-9


# --- hand-computed cases ----------------------------------------------------------------------------------
def test_uncontrolled_single_ev_charging_time_by_hand() -> None:
    # 60 kWh from 0.2 to 0.8 pu: 36 kWh into the battery = 36 / 0.95 = 37.8947 kWh from the grid.
    # At 7.2 kW and 0.25 h per step a full step brings 1.8 kWh from the grid (1.71 kWh stored):
    # 21 full steps store 35.91 kWh; the 22nd stores the last 0.09 kWh -> 0.09 / (0.95 * 0.25) = 0.378947 kW.
    res = run_uncontrolled(one_ev())
    p = res.p_kw[:, 0]
    np.testing.assert_allclose(p[:21], 7.2, rtol=0, atol=1e-12)
    assert p[21] == pytest.approx(0.09 / (0.95 * 0.25), abs=1e-9)
    np.testing.assert_allclose(p[22:], 0.0, atol=0)
    assert res.soc_pu[-1, 0] == pytest.approx(0.8, abs=1e-12)
    assert p.sum() * 0.25 == pytest.approx(36 / 0.95, abs=1e-9)


def test_full_discharge_stops_at_minimum_soc_by_hand() -> None:
    # From 0.5 pu to the 0.2 pu floor: 18 kWh stored -> 18 * 0.95 = 17.1 kWh to the grid; a full step gives
    # 1.8 kWh, so 9 full steps (16.2 kWh) and a 10th at 0.9 kWh / 0.25 h = 3.6 kW.
    fleet = one_ev(soc0_pu=0.5)
    res = simulate_soc(fleet, np.full((96, 1), -10.0))
    p = res.p_kw[:, 0]
    np.testing.assert_allclose(p[:9], -7.2, atol=1e-12)
    assert p[9] == pytest.approx(-3.6, abs=1e-9)
    np.testing.assert_allclose(p[10:], 0.0, atol=1e-12)
    assert res.soc_pu[-1, 0] == pytest.approx(0.2, abs=1e-12)
    # The request -10 kW is clipped to -7.2 kW first (2.8 kW clipped) and, from step 10, entirely.
    assert res.clipped_kw[0, 0] == pytest.approx(-2.8, abs=1e-12)
    assert res.clipped_kw[20, 0] == pytest.approx(-10.0, abs=1e-12)


def test_no_power_outside_the_plug_in_interval() -> None:
    fleet = one_ev(arrival_step=10, departure_step=20)
    res = simulate_soc(fleet, np.full((96, 1), 5.0))
    assert np.all(res.p_kw[:10] == 0) and np.all(res.p_kw[20:] == 0)
    assert np.all(res.p_kw[10:20] == 5.0)
    # SoC after: 0.2 + 10 steps * 5 kW * 0.25 h * 0.95 / 60 kWh
    assert res.soc_pu[-1, 0] == pytest.approx(0.2 + 10 * 5 * 0.25 * 0.95 / 60, abs=1e-12)


def test_infeasible_target_is_counted_and_uncontrolled_leaves_unmet_energy() -> None:
    # 4 steps at 7.2 kW store at most 4 * 1.71 = 6.84 kWh: the 36 kWh need cannot be met.
    fleet = one_ev(arrival_step=0, departure_step=4)
    assert calc_envelope(fleet).n_infeasible == 1
    summary = summarize_fleet(fleet, run_uncontrolled(fleet))
    assert summary["energy_unmet_kwh"] == pytest.approx(36 - 6.84, abs=1e-9)


def test_float32_requests_give_float32_results() -> None:
    fleet = one_ev()
    res = simulate_soc(fleet, np.full((96, 1), 3.0, dtype=np.float32))
    assert res.p_kw.dtype == np.float32 and res.soc_pu.dtype == np.float32


# --- independent plain-Python references ------------------------------------------------------------------
def reference_simulate(fleet: Fleet, req: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Straightforward per-EV, per-step loop written from the model equations (module docstring)."""
    T, N = req.shape
    dt_h = fleet.dt_s / 3600
    p_out = np.zeros((T, N))
    soc_out = np.zeros((T + 1, N))
    for i in range(N):
        soc = fleet.soc0_pu[i]
        soc_out[0, i] = soc
        cap = fleet.capacity_kwh[i]
        for t in range(T):
            p = 0.0
            if fleet.arrival_step[i] <= t < fleet.departure_step[i]:
                p = min(max(req[t, i], -fleet.p_discharge_max_kw[i]), fleet.p_charge_max_kw[i])
                # energy the battery can take / give this step
                room_kwh = max(fleet.soc_max_pu[i] * cap - soc * cap, 0.0)
                avail_kwh = max(soc * cap - fleet.soc_min_pu[i] * cap, 0.0)
                if p > 0:
                    p = min(p, room_kwh / (fleet.eta_charge[i] * dt_h))
                    soc += p * fleet.eta_charge[i] * dt_h / cap
                elif p < 0:
                    p = max(p, -avail_kwh * fleet.eta_discharge[i] / dt_h)
                    soc += p / fleet.eta_discharge[i] * dt_h / cap
            p_out[t, i] = p
            soc_out[t + 1, i] = soc
    return p_out, soc_out


def reference_bounds(fleet: Fleet) -> tuple[np.ndarray, np.ndarray]:
    """Energy bounds by brute force: simulate 'full charge' and 'full discharge' and the latest-charging
    line for each EV, step by step, with plain Python."""
    T, N = fleet.n_steps, fleet.n
    dt_h = fleet.dt_s / 3600
    lo = np.zeros((T + 1, N))
    up = np.zeros((T + 1, N))
    for i in range(N):
        cap = fleet.capacity_kwh[i]
        a, d = fleet.arrival_step[i], fleet.departure_step[i]
        e_fast_up = e_fast_down = fleet.soc0_pu[i] * cap
        for k in range(T + 1):
            if a < k <= d:
                e_fast_up = min(
                    e_fast_up + fleet.p_charge_max_kw[i] * fleet.eta_charge[i] * dt_h,
                    fleet.soc_max_pu[i] * cap,
                )
                e_fast_down = e_fast_down - fleet.p_discharge_max_kw[i] / fleet.eta_discharge[i] * dt_h
            floor = min(fleet.soc_min_pu[i] * cap, fleet.soc0_pu[i] * cap)
            steps_left = max(d - max(k, a), 0)
            latest = fleet.soc_target_pu[i] * cap - fleet.p_charge_max_kw[i] * fleet.eta_charge[i] * dt_h * steps_left
            low = max(floor, latest, e_fast_down)
            up[k, i] = e_fast_up
            lo[k, i] = min(low, e_fast_up) if d > a else fleet.soc0_pu[i] * cap
            if d <= a:
                up[k, i] = fleet.soc0_pu[i] * cap
    return lo, up


@st.composite
def fleets(draw: st.DrawFn, max_n: int = 6, max_t: int = 12) -> Fleet:
    n = draw(st.integers(1, max_n))
    t = draw(st.integers(1, max_t))
    f = st.floats
    rows = []
    for _ in range(n):
        soc_min = draw(f(0.0, 0.5))
        soc_max = draw(f(max(soc_min, 0.6), 1.0))
        soc_target = draw(f(soc_min, soc_max))
        soc0 = draw(f(0.0, soc_max))
        a = draw(st.integers(0, t))
        d = draw(st.integers(a, t))
        rows.append(
            dict(
                capacity_kwh=draw(f(5.0, 120.0)),
                soc0_pu=soc0,
                soc_target_pu=soc_target,
                soc_min_pu=soc_min,
                soc_max_pu=soc_max,
                p_charge_max_kw=draw(f(0.0, 50.0)),
                p_discharge_max_kw=draw(f(0.0, 50.0)),
                eta_charge=draw(f(0.5, 1.0)),
                eta_discharge=draw(f(0.5, 1.0)),
                arrival_step=a,
                departure_step=d,
                bus=1,
                kind=0,
            )
        )
    cols = {k: np.array([r[k] for r in rows]) for k in rows[0]}
    dt_s = draw(st.sampled_from([60.0, 300.0, 900.0, 3600.0]))
    return Fleet(**cols, dt_s=dt_s, n_steps=t)


@st.composite
def fleet_and_request(draw: st.DrawFn) -> tuple[Fleet, np.ndarray]:
    fleet = draw(fleets())
    values = draw(
        st.lists(
            st.floats(-80.0, 80.0, allow_nan=False),
            min_size=fleet.n * fleet.n_steps,
            max_size=fleet.n * fleet.n_steps,
        )
    )
    return fleet, np.array(values).reshape(fleet.n_steps, fleet.n)


PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPS
@given(fleet_and_request())
def test_simulate_matches_plain_python_reference(case: tuple[Fleet, np.ndarray]) -> None:
    fleet, req = case
    res = simulate_soc(fleet, req)
    p_ref, soc_ref = reference_simulate(fleet, req)
    np.testing.assert_allclose(res.p_kw, p_ref, atol=1e-9, rtol=1e-12)
    np.testing.assert_allclose(res.soc_pu, soc_ref, atol=1e-12, rtol=0)
    np.testing.assert_allclose(res.clipped_kw, req - res.p_kw, atol=1e-12)


@PROPS
@given(fleet_and_request())
def test_soc_bounds_power_limits_and_plug_in(case: tuple[Fleet, np.ndarray]) -> None:
    fleet, req = case
    res = simulate_soc(fleet, req)
    lower = np.minimum(fleet.soc0_pu, fleet.soc_min_pu)
    assert np.all(res.soc_pu >= lower - TOL)
    assert np.all(res.soc_pu <= fleet.soc_max_pu + TOL)
    assert np.all(res.p_kw <= fleet.p_charge_max_kw + TOL)
    assert np.all(res.p_kw >= -fleet.p_discharge_max_kw - TOL)
    assert np.all(res.p_kw[~calc_plugged(fleet)] == 0.0)
    # Realised power has the request's sign and no larger magnitude.
    assert np.all(res.p_kw * req >= -TOL)
    assert np.all(np.abs(res.p_kw) <= np.abs(req) + TOL)


@PROPS
@given(fleet_and_request())
def test_energy_balance_with_efficiencies(case: tuple[Fleet, np.ndarray]) -> None:
    fleet, req = case
    res = simulate_soc(fleet, req)
    dt_h = fleet.dt_s / 3600
    stored_kwh = (res.soc_pu[-1] - res.soc_pu[0]) * fleet.capacity_kwh
    grid_in = np.clip(res.p_kw, 0, None).sum(axis=0) * dt_h
    grid_out = -np.clip(res.p_kw, None, 0).sum(axis=0) * dt_h
    expected = fleet.eta_charge * grid_in - grid_out / fleet.eta_discharge
    np.testing.assert_allclose(stored_kwh, expected, atol=1e-8)


@PROPS
@given(fleets())
def test_energy_bounds_match_brute_force_reference(fleet: Fleet) -> None:
    lo, up = calc_energy_bounds(fleet)
    lo_ref, up_ref = reference_bounds(fleet)
    # The references agree inside each EV's plug-in interval (the kernel freezes the bounds outside it).
    for i in range(fleet.n):
        a, d = fleet.arrival_step[i], fleet.departure_step[i]
        if d > a:
            np.testing.assert_allclose(lo[a : d + 1, i], lo_ref[a : d + 1, i], atol=1e-9)
            np.testing.assert_allclose(up[a : d + 1, i], up_ref[a : d + 1, i], atol=1e-9)


@PROPS
@given(fleets())
def test_envelope_is_the_sum_of_per_ev_bounds(fleet: Fleet) -> None:
    env = calc_envelope(fleet)
    lo, up = calc_energy_bounds(fleet)
    plugged = calc_plugged(fleet)
    np.testing.assert_allclose(env.e_lower_kwh, (lo[1:] * plugged).sum(axis=1), atol=1e-8)
    np.testing.assert_allclose(env.e_upper_kwh, (up[1:] * plugged).sum(axis=1), atol=1e-8)
    np.testing.assert_allclose(env.p_max_kw, (plugged * fleet.p_charge_max_kw).sum(axis=1), atol=1e-9)
    np.testing.assert_allclose(env.p_min_kw, -(plugged * fleet.p_discharge_max_kw).sum(axis=1), atol=1e-9)
    np.testing.assert_array_equal(env.n_plugged, plugged.sum(axis=1))
    assert np.all(env.e_lower_kwh <= env.e_upper_kwh + 1e-9)


@PROPS
@given(fleets())
def test_uncontrolled_profile_lies_inside_the_envelope(fleet: Fleet) -> None:
    env = calc_envelope(fleet)
    res = run_uncontrolled(fleet)
    p = res.p_kw.sum(axis=1)
    assert np.all(p <= env.p_max_kw + 1e-9) and np.all(p >= env.p_min_kw - 1e-9)
    e = calc_plugged_energy_kwh(fleet, res.soc_pu)
    assert np.all(e <= env.e_upper_kwh + 1e-8)
    assert np.all(e >= env.e_lower_kwh - 1e-8)


@PROPS
@given(fleets())
def test_following_the_lower_energy_path_meets_every_feasible_target(fleet: Fleet) -> None:
    env = calc_envelope(fleet)
    lo, _ = calc_energy_bounds(fleet)
    res = simulate_soc(fleet, calc_path_request(fleet, lo))
    # The fleet realises the lower path exactly (so the aggregate equals the envelope's lower edge) ...
    np.testing.assert_allclose(res.soc_pu * fleet.capacity_kwh, lo, atol=1e-7)
    np.testing.assert_allclose(calc_plugged_energy_kwh(fleet, res.soc_pu), env.e_lower_kwh, atol=1e-6)
    # ... and every EV whose target is reachable reaches it by departure.
    dt_h = fleet.dt_s / 3600
    dwell = fleet.departure_step - fleet.arrival_step
    reachable = fleet.soc0_pu * fleet.capacity_kwh + fleet.p_charge_max_kw * fleet.eta_charge * dt_h * dwell
    feasible = (dwell > 0) & (reachable >= fleet.soc_target_pu * fleet.capacity_kwh - 1e-9)
    soc_dep = res.soc_pu[fleet.departure_step, np.arange(fleet.n)]
    assert np.all(soc_dep[feasible] >= fleet.soc_target_pu[feasible] - 1e-9)


# --- synthesis ----------------------------------------------------------------------------------------------
def test_synthesis_is_seeded_and_valid() -> None:
    spec, time = FleetSpec(n_evs=5000), TimeGrid()
    a = synthesize_fleet(spec, time, 33, np.random.default_rng(7))
    b = synthesize_fleet(spec, time, 33, np.random.default_rng(7))
    c = synthesize_fleet(spec, time, 33, np.random.default_rng(8))
    np.testing.assert_array_equal(a.arrival_step, b.arrival_step)
    assert not np.array_equal(a.arrival_step, c.arrival_step)
    assert a.bus.min() >= 1 and a.bus.max() <= 32
    assert set(np.unique(a.capacity_kwh)) <= set(spec.battery_capacity_kwh)
    assert np.all(a.soc0_pu <= spec.soc_target_pu)


def test_synthesis_follows_its_documented_distributions() -> None:
    # Home need: lognormal distance with mean 48.3 km x 0.19 kWh/km = 9.18 kWh mean (before any cut).
    # With a 48 h horizon no home session is cut; compare the mean need recovered from the fleet.
    spec = FleetSpec(n_evs=40_000, residential_share=1.0, soc_target_pu=1.0, soc_min_pu=0.0)
    fleet = synthesize_fleet(spec, TimeGrid(n_steps=192, start_hour=12.0), 33, np.random.default_rng(3))
    need = (fleet.soc_target_pu - fleet.soc0_pu) * fleet.capacity_kwh
    assert need.mean() == pytest.approx(48.3 * 0.19, rel=0.02)
    # Home arrival clock time N(18, 2): median of the arrival step's midpoint (steps floor the time).
    arrival_clock = 12.0 + (fleet.arrival_step + 0.5) * 0.25
    assert np.median(arrival_clock) == pytest.approx(18.0, abs=0.13)
    q25, q75 = np.quantile(arrival_clock, [0.25, 0.75])  # robust sd: wrapped tail past noon skews np.std
    assert (q75 - q25) / 1.349 == pytest.approx(2.0, rel=0.05)
    # Share of V2G-capable and home EVs follow the spec.
    spec2 = FleetSpec(n_evs=40_000, v2g_share=0.3, residential_share=0.6)
    f2 = synthesize_fleet(spec2, TimeGrid(), 33, np.random.default_rng(4))
    assert np.mean(f2.p_discharge_max_kw > 0) == pytest.approx(0.3, abs=0.01)
    assert np.mean(f2.kind == 0) == pytest.approx(0.6, abs=0.01)


def test_sessions_past_the_horizon_are_cut_with_prorated_need() -> None:
    from v2gtwin.fleet import place_sessions

    time = TimeGrid(dt_s=3600, n_steps=24, start_hour=0.0)
    arr, dep, need = place_sessions(np.array([20.0, 2.0]), np.array([8.0, 4.0]), np.array([16.0, 8.0]), time)
    # 20:00 + 8 h ends at 04:00 the next day: 4 of 8 hours kept -> half the need.
    assert (arr[0], dep[0], need[0]) == (20, 24, 8.0)
    assert (arr[1], dep[1], need[1]) == (2, 6, 8.0)


# --- bad input ----------------------------------------------------------------------------------------------
def test_fleet_validation_names_the_field_and_the_ev() -> None:
    with pytest.raises(DataError, match=r"fleet.soc0_pu\[0\] = 1.5"):
        one_ev(soc0_pu=1.5)
    with pytest.raises(DataError, match="arrival_step"):
        one_ev(arrival_step=50, departure_step=40)
    with pytest.raises(DataError, match="capacity_kwh"):
        one_ev(capacity_kwh=0.0)


def test_simulate_rejects_wrong_shape_and_nan() -> None:
    fleet = one_ev()
    with pytest.raises(DataError, match="expected shape"):
        simulate_soc(fleet, np.zeros((95, 1)))
    bad = np.zeros((96, 1))
    bad[3, 0] = np.nan
    with pytest.raises(DataError, match=r"p_kw\[3, 0\]"):
        simulate_soc(fleet, bad)


def test_bus_power_sums_evs_per_bus() -> None:
    from v2gtwin.fleet import calc_bus_power_kw

    fleet = synthesize_fleet(FleetSpec(n_evs=50), TimeGrid(n_steps=8, dt_s=3600), 5, np.random.default_rng(2))
    p = np.random.default_rng(3).normal(size=(8, 50))
    expected = np.zeros((8, 5))
    for i in range(50):
        expected[:, fleet.bus[i]] += p[:, i]
    np.testing.assert_allclose(calc_bus_power_kw(fleet, p, 5), expected, atol=1e-12)
    with pytest.raises(DataError, match="the feeder has 3 buses"):
        calc_bus_power_kw(fleet, p, 3)
