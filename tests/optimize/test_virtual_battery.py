"""Virtual batteries: the inner one disaggregates (checked by direct arithmetic and by simulate_soc, not by the
code under test), the outer one contains it, the gap is real (brute-force LP), the default study's schedule."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize as so
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from v2gtwin.errors import InfeasibleError
from v2gtwin.fleet import Fleet, simulate_soc
from v2gtwin.optimize.schedule import solve_fleet_schedule
from v2gtwin.optimize.virtual_battery import (
    calc_network_secure_battery,
    calc_virtual_battery,
    calc_window_classes,
    disaggregate_battery,
    solve_battery_schedule,
)


def make_fleet(rows: list[dict[str, float]], n_steps: int, dt_s: float = 3600.0) -> Fleet:
    keys = rows[0].keys()
    return Fleet(**{k: np.array([r[k] for r in rows]) for k in keys}, dt_s=dt_s, n_steps=n_steps)


def ev_row(
    a: int, d: int, need_kwh: float, pc: float = 2.0, pd: float = 0.0, cap: float = 10.0, soc0: float = 0.2
) -> dict[str, float]:
    return dict(
        capacity_kwh=cap,
        soc0_pu=soc0,
        soc_target_pu=soc0 + need_kwh / cap,
        soc_min_pu=min(0.1, soc0),
        soc_max_pu=1.0,
        p_charge_max_kw=pc,
        p_discharge_max_kw=pd,
        eta_charge=1.0,
        eta_discharge=1.0,
        arrival_step=a,
        departure_step=d,
        bus=1,
        kind=0,
    )


@st.composite
def fleets(draw: st.DrawFn) -> tuple[Fleet, np.ndarray]:
    n_steps = draw(st.integers(4, 12))
    n = draw(st.integers(1, 10))
    eta = draw(st.sampled_from([1.0, 0.9]))
    rows = []
    for _ in range(n):
        # Half of the EVs share nearly the same window, so that groups have several members.
        if draw(st.booleans()):
            a = draw(st.integers(0, 1))
            d = draw(st.integers(n_steps - 1, n_steps))
        else:
            a = draw(st.integers(0, n_steps - 1))
            d = draw(st.integers(a + 1, n_steps))
        cap = draw(st.floats(10.0, 80.0))
        pc = draw(st.floats(1.0, 11.0))
        soc0 = draw(st.floats(0.05, 0.9))
        reach = min(pc * eta * (d - a), (1.0 - soc0) * cap)
        need = draw(st.floats(-0.05, 1.0)) * reach
        soc_t = float(np.clip(soc0 + need / cap, 0.0, 1.0))
        rows.append(
            dict(
                capacity_kwh=cap,
                soc0_pu=soc0,
                soc_target_pu=soc_t,
                soc_min_pu=draw(st.floats(0.0, 0.3)),
                soc_max_pu=1.0,
                p_charge_max_kw=pc,
                p_discharge_max_kw=draw(st.sampled_from([0.0, pc])),
                eta_charge=eta,
                eta_discharge=eta,
                arrival_step=a,
                departure_step=d,
                bus=1,
                kind=0,
            )
        )
    fleet = make_fleet(rows, n_steps)
    n_groups = draw(st.integers(1, 3))
    group = np.array([draw(st.integers(0, n_groups - 1)) for _ in range(n)])
    return fleet, group


def check_ev_feasible(fleet: Fleet, p_kw: np.ndarray, tol: float = 1e-6) -> None:
    """Direct arithmetic of the storage model, EV by EV (no v2gtwin code)."""
    dt = fleet.dt_h
    for i in range(fleet.n):
        a, d = fleet.arrival_step[i], fleet.departure_step[i]
        p = p_kw[:, i]
        assert np.all(np.abs(p[:a]) <= tol) and np.all(np.abs(p[d:]) <= tol), f"EV {i} draws power unplugged"
        assert np.all(p <= fleet.p_charge_max_kw[i] + tol) and np.all(p >= -fleet.p_discharge_max_kw[i] - tol)
        cap = fleet.capacity_kwh[i]
        e = fleet.soc0_pu[i] * cap
        floor = min(fleet.soc_min_pu[i] * cap, e)
        for t in range(fleet.n_steps):
            e += fleet.eta_charge[i] * max(p[t], 0) * dt + min(p[t], 0) / fleet.eta_discharge[i] * dt
            assert floor - tol <= e <= fleet.soc_max_pu[i] * cap + tol, f"EV {i} energy {e} at step {t}"
            if t == d - 1:
                assert e >= fleet.soc_target_pu[i] * cap - tol, f"EV {i} misses its target by {e}"


@settings(max_examples=80, suppress_health_check=[HealthCheck.too_slow])
@given(
    fleets(),
    st.lists(st.floats(-20.0, 120.0), min_size=12, max_size=12),
    st.lists(st.floats(-20.0, 120.0), min_size=12, max_size=12),
    st.floats(0.0, 1.0),
)
def test_inner_trajectories_disaggregate(
    fp: tuple[Fleet, np.ndarray], pa: list[float], pb: list[float], w: float
) -> None:
    fleet, group = fp
    n = fleet.n_steps
    vb = calc_virtual_battery(fleet, "inner", group, int(group.max()) + 1)
    # Two vertices of the inner battery (cost-minimal for two random price curves) and, without losses, a point
    # between them (the set of net powers is convex then; with losses a mix of a charging and a discharging plan
    # nets out losses and may store more than the band allows, so only the vertices are inside for sure).
    sa = solve_battery_schedule(vb, np.array(pa[:n]), fleet.dt_h, degradation_per_mwh=5.0)
    sb = solve_battery_schedule(vb, np.array(pb[:n]), fleet.dt_h, degradation_per_mwh=5.0)
    mixes = [w * sa.p_kw + (1 - w) * sb.p_kw] if np.all(fleet.eta_charge == 1.0) else []
    for p_agg in (sa.p_kw, sb.p_kw, *mixes):
        p_ev = disaggregate_battery(fleet, p_agg, group, int(group.max()) + 1, battery=vb)
        check_ev_feasible(fleet, p_ev)
        # Sums back to the aggregate of each group.
        for k in range(p_agg.shape[1]):
            np.testing.assert_allclose(p_ev[:, group == k].sum(axis=1), p_agg[:, k], atol=1e-6)
        # And the fleet model realises it unchanged, every target met.
        real = simulate_soc(fleet, p_ev)
        assert np.abs(real.clipped_kw).max() < 1e-6
        end = real.soc_pu[fleet.departure_step, np.arange(fleet.n)]
        assert np.all(end >= fleet.soc_target_pu - 1e-7)


@settings(max_examples=30, suppress_health_check=[HealthCheck.too_slow])
@given(fleets(), st.lists(st.floats(0.0, 120.0), min_size=12, max_size=12))
def test_outer_contains_inner_and_brackets_the_per_ev_optimum(fp: tuple[Fleet, np.ndarray], pr: list[float]) -> None:
    # Support functions: for the same prices, min cost over the outer <= per-EV LP (HiGHS, EV by EV)
    # <= min cost over the inner. Inner inside outer and the per-EV set in between imply this for every price.
    fleet, _ = fp
    price = np.array(pr[: fleet.n_steps])
    outer = solve_battery_schedule(calc_virtual_battery(fleet, "outer"), price, fleet.dt_h, degradation_per_mwh=5.0)
    inner = solve_battery_schedule(calc_virtual_battery(fleet, "inner"), price, fleet.dt_h, degradation_per_mwh=5.0)
    per_ev = solve_fleet_schedule(fleet, price, degradation_per_mwh=5.0, method="highs")
    scale = 1e-6 * max(1.0, abs(per_ev.cost_per_horizon))
    assert outer.cost_per_horizon <= per_ev.cost_per_horizon + scale
    assert per_ev.cost_per_horizon <= inner.cost_per_horizon + scale


def test_gap_is_real_two_evs() -> None:
    # EV A plugged in step 0 only, needs nothing, 1 kWh of room; EV B plugged in step 1 only, needs 1 kWh.
    # Both 1 kW, 1 h steps, eta = 1. Outer bounds: step 0 power in [0, 1], step 1 in [0, 1]; cumulative energy
    # y0 in [0 + 0, 1 + 0] and y1 in [0 + 1, 1 + 1]. The trajectory p = (1, 0) lies inside (y = (1, 1)) ...
    fleet = make_fleet(
        [ev_row(0, 1, 0.0, pc=1.0, cap=10.0, soc0=0.8), ev_row(1, 2, 1.0, pc=1.0, cap=10.0, soc0=0.2)], n_steps=2
    )
    outer = calc_virtual_battery(fleet, "outer")
    np.testing.assert_allclose(outer.p_max_kw, [1.0, 1.0])
    np.testing.assert_allclose(outer.e_min_kwh, [0.0, 1.0])
    np.testing.assert_allclose(outer.e_max_kwh, [1.0, 2.0])
    p = np.array([1.0, 0.0])
    y = np.cumsum(p)
    assert np.all((p <= outer.p_max_kw) & (y >= outer.e_min_kwh) & (y <= outer.e_max_kwh))
    # ... but no split exists: brute-force LP over (pA0, pA1, pB0, pB1) with the sums fixed, A unplugged in
    # step 1, B unplugged in step 0, B charging 1 kWh: infeasible.
    res = so.linprog(
        np.zeros(4),
        A_eq=np.array([[1, 0, 1, 0], [0, 1, 0, 1], [0, 0, 1, 1]]),
        b_eq=[1.0, 0.0, 1.0],
        bounds=[(0, 1), (0, 0), (0, 0), (0, 1)],
        method="highs",
    )
    assert res.status == 2
    # The inner battery refuses it, naming where.
    with pytest.raises(InfeasibleError, match="outside the inner virtual battery"):
        disaggregate_battery(fleet, p)


def test_single_ev_inner_is_the_ev_itself() -> None:
    # One EV: 2 kW, needs 3 kWh in steps 1-3 (eta 1, 1 h): the homothet is the EV's own set, so the inner
    # schedule costs what the per-EV optimum costs: 2 kWh at the cheapest (20) + 1 kWh at the next (30).
    fleet = make_fleet([ev_row(1, 4, 3.0, pc=2.0)], n_steps=5)
    price = np.array([5.0, 50.0, 20.0, 30.0, 5.0])
    vb = calc_virtual_battery(fleet, "inner")
    assert vb.n_members.sum() == 1
    np.testing.assert_allclose(vb.p_max_kw, [0, 2, 2, 2, 0])
    s = solve_battery_schedule(vb, price, 1.0, degradation_per_mwh=0.0)
    assert s.cost_per_horizon == pytest.approx((2 * 20 + 1 * 30) / 1000, abs=1e-8)
    np.testing.assert_allclose(s.p_total_kw, [0, 0, 2, 1, 0], atol=1e-6)


def test_default_study_schedule_disaggregates_exactly() -> None:
    # Issue 12, point 3: the default day's aggregate plan now realises exactly, within the import cap, and its
    # cost is bracketed: outer bound <= per-EV LP <= inner = what the EVs realise.
    from v2gtwin.markets.scheduling import run_schedule_analysis
    from v2gtwin.scenario import DEFAULT_SCENARIO
    from v2gtwin.study import build_fleet

    sc = DEFAULT_SCENARIO
    fleet = build_fleet(sc)
    from v2gtwin.fleet import run_uncontrolled

    a = run_schedule_analysis(fleet, run_uncontrolled(fleet), sc.markets, sc.time, sc.seed, sc.currency).summary()
    assert a["tracking_error_kwh"] < 1e-6
    assert a["disaggregated_cost_per_horizon"] == pytest.approx(a["inner_cost_per_horizon"], rel=1e-9)
    assert a["aggregate_cost_per_horizon"] <= a["individual_cost_per_horizon"] + 1e-6
    assert a["individual_cost_per_horizon"] <= a["inner_cost_per_horizon"] + 1e-6
    assert a["inner_p_max_kw"] <= a["import_cap_kw"] * (1 + 1e-9)


def test_window_classes_split_windows_and_v2g() -> None:
    fleet = make_fleet([ev_row(0, 4, 1.0), ev_row(1, 4, 1.0), ev_row(0, 4, 1.0, pd=2.0), ev_row(5, 8, 1.0)], 8)
    g = calc_window_classes(fleet, bin_steps=4)
    # Arrival bins 0, 0, 0, 1; departure bins 1, 1, 1, 2; V2G only the third: three classes.
    assert g[0] == g[1] and len({g[0], g[2], g[3]}) == 3


@settings(max_examples=30, suppress_health_check=[HealthCheck.too_slow])
@given(fleets(), st.lists(st.floats(0.0, 120.0), min_size=12, max_size=12), st.integers(0, 2**31 - 1))
def test_network_secure_battery_keeps_every_group_within_its_envelope(
    fp: tuple[Fleet, np.ndarray], pr: list[float], seed: int
) -> None:
    # Random import / export limits per group and step; a schedule on the intersected battery keeps each group's
    # summed EV power (after disaggregation) within them, EVs feasible, except where the fixed reference alone
    # exceeds the limit (counted).
    fleet, group = fp
    ng = int(group.max()) + 1
    vb = calc_virtual_battery(fleet, "inner", group, ng)
    rng = np.random.default_rng(seed)
    imp = rng.uniform(2.0, 40.0, (fleet.n_steps, ng))
    exp = rng.uniform(0.0, 10.0, (fleet.n_steps, ng))
    sec, n_over = calc_network_secure_battery(vb, imp, exp)
    assert n_over == int((vb.p_fixed_kw > imp + 1e-9).sum())
    try:
        s = solve_battery_schedule(sec, np.array(pr[: fleet.n_steps]), fleet.dt_h, degradation_per_mwh=5.0)
    except InfeasibleError:
        return  # the limits leave some target out of reach: nothing to disaggregate
    p_ev = disaggregate_battery(fleet, s.p_kw, group, ng, battery=vb)  # inside the original inner battery
    check_ev_feasible(fleet, p_ev)
    for k in range(ng):
        p_k = p_ev[:, group == k].sum(axis=1)
        allowed = np.maximum(imp[:, k], vb.p_fixed_kw[:, k])
        assert np.all(p_k <= allowed + 1e-6)
        assert np.all(p_k >= -exp[:, k] - 1e-6)
