"""The network-constrained schedule: cheap night prices pile charging on a weak feeder, the unconstrained schedule
breaks 0.95 pu by exact AC (pandapower's Newton-Raphson as the independent check) and the network-secure one does
not; its LP optimum against the same problem written densely in cvxpy; error paths."""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pandapower as pp
import pytest

from v2gtwin.errors import DataError
from v2gtwin.fleet import Fleet, simulate_soc
from v2gtwin.grid.feeder import Feeder, ieee33, to_pandapower
from v2gtwin.grid.linear import calc_linear_model
from v2gtwin.optimize.network_schedule import NetworkScheduleResult, solve_network_schedule
from v2gtwin.optimize.virtual_battery import calc_virtual_battery

N_STEPS = 24  # 1 h steps from noon


def night_fleet(n: int, buses: np.ndarray, seed: int = 5) -> Fleet:
    """Home EVs plugged 18:00-07:00 (steps 6-19), 7.2 kW, 60 kWh, 8-20 kWh each to charge, no V2G."""
    rng = np.random.default_rng(seed)
    soc0 = rng.uniform(0.3, 0.5, n)
    return Fleet(
        capacity_kwh=np.full(n, 60.0),
        soc0_pu=soc0,
        soc_target_pu=soc0 + rng.uniform(8.0, 20.0, n) / 60.0,
        soc_min_pu=np.full(n, 0.1),
        soc_max_pu=np.full(n, 1.0),
        p_charge_max_kw=np.full(n, 7.2),
        p_discharge_max_kw=np.zeros(n),
        eta_charge=np.full(n, 0.95),
        eta_discharge=np.full(n, 0.95),
        arrival_step=rng.integers(5, 8, n),
        departure_step=rng.integers(18, 21, n),
        bus=rng.choice(buses, n),
        kind=np.zeros(n, dtype=int),
        dt_s=3600.0,
        n_steps=N_STEPS,
    )


def base_load(feeder: Feeder) -> tuple[np.ndarray, np.ndarray]:
    # Half of Baran & Wu's load in the evening, a third at night: base case above 0.95 pu everywhere.
    hour = (12 + np.arange(N_STEPS)) % 24
    shape = np.where((hour >= 17) & (hour < 22), 0.5, np.where((hour >= 0) & (hour < 7), 0.33, 0.42))
    return shape[:, None] * feeder.p_load_kw, shape[:, None] * feeder.q_load_kvar


def pandapower_v_min(feeder: Feeder, p: np.ndarray, q: np.ndarray) -> float:
    """Lowest voltage over the steps by pandapower's Newton-Raphson (independent of v2gtwin's sweep)."""
    net = to_pandapower(feeder, p[0], q[0])
    bus_of_load = net.load.bus.to_numpy()  # pandapower bus index = feeder bus index (built in order)
    v = []
    for t in range(p.shape[0]):
        net.load["p_mw"] = p[t, bus_of_load] / 1000.0
        net.load["q_mvar"] = q[t, bus_of_load] / 1000.0
        pp.runpp(net, tolerance_mva=1e-9)
        v.append(float(net.res_bus.vm_pu.min()))
    return min(v)


def test_weak_feeder_unconstrained_breaks_095_network_secure_does_not() -> None:
    feeder = ieee33()
    p, q = base_load(feeder)
    model = calc_linear_model(feeder, p, q)
    assert model.base.v_pu.min() > 0.95  # the base case alone is within limits
    # 400 EVs at the far end of the main lateral (Baran & Wu buses 13-18: indices 12-17).
    fleet = night_fleet(400, np.arange(12, 18))
    hour = (12 + np.arange(N_STEPS)) % 24
    price = np.where((hour >= 2) & (hour < 4), 20.0, 90.0)  # two cheap night hours
    kw = dict(v_min_pu=0.95, v_max_pu=1.05, degradation_per_mwh=0.0)
    free = solve_network_schedule(fleet, [model], np.zeros(fleet.n, int), fleet.bus, price, network_secure=False, **kw)
    secure = solve_network_schedule(fleet, [model], np.zeros(fleet.n, int), fleet.bus, price, **kw)
    # Same EVs, same energy; the unconstrained schedule charges in the cheap hours only.
    assert free.ac_violations > 0 and free.v_min_pu < 0.95
    assert secure.ac_violations == 0 and secure.v_min_pu >= 0.95 - 1e-4
    assert secure.base_violations == 0
    # Independent exact AC (pandapower Newton-Raphson) on both schedules' bus powers.
    assert pandapower_v_min(feeder, p + free.p_bus_kw[0], q) < 0.95
    assert pandapower_v_min(feeder, p + secure.p_bus_kw[0], q) >= 0.95 - 1e-4
    # Security costs money: part of the energy moves out of the cheap hours at 70 more per MWh. The energy that
    # moved is the cost difference / (90 - 20) per MWh: it must equal the energy charged outside the cheap hours.
    # (Measured: 238.4 unconstrained, 286.7 network-secure: 48.3 more for ~690 kWh moved.)
    cheap = price == 20.0
    moved_kwh = secure.p_bus_kw[0][~cheap].sum() - free.p_bus_kw[0][~cheap].sum()
    assert secure.cost_per_horizon - free.cost_per_horizon == pytest.approx(moved_kwh * 70.0 / 1000.0, rel=1e-5)
    assert moved_kwh > 1.0
    # Each EV's schedule is realised unchanged by the fleet model and meets its target.
    for res in (free, secure):
        real = simulate_soc(fleet, res.p_ev_kw)
        assert np.abs(real.clipped_kw).max() < 1e-6
        end = real.soc_pu[fleet.departure_step, np.arange(fleet.n)]
        assert np.all(end >= fleet.soc_target_pu - 1e-7)


def test_thermal_limit_unconstrained_overloads_network_secure_does_not() -> None:
    # Every branch rated 120 A (the base case peaks near 102 A on the first branch); voltage limits wide open (0.8 /
    # 1.2 pu) so that only the ratings can bind. Checked by pandapower's line currents.
    feeder = ieee33(ampacity_a=120.0)
    p, q = base_load(feeder)
    model = calc_linear_model(feeder, p, q)
    assert (model.base.i_branch_a[:, 1:] < 120.0).all()
    fleet = night_fleet(400, np.arange(12, 18))
    hour = (12 + np.arange(N_STEPS)) % 24
    price = np.where((hour >= 2) & (hour < 4), 20.0, 90.0)
    kw = dict(v_min_pu=0.8, v_max_pu=1.2, degradation_per_mwh=0.0)
    args = (fleet, [model], np.zeros(fleet.n, int), fleet.bus, price)
    free = solve_network_schedule(*args, network_secure=False, **kw)
    secure = solve_network_schedule(*args, **kw)
    assert free.ac_violations > 0 and free.feeders[0].branch_loading_max_pu > 1.0
    assert secure.ac_violations == 0 and secure.feeders[0].branch_loading_max_pu <= 1.0 + 1e-4

    def pandapower_i_max_a(p_bus: np.ndarray) -> float:
        net = to_pandapower(feeder, p[0], q[0])
        bus_of_load = net.load.bus.to_numpy()
        worst = 0.0
        for t in range(N_STEPS):
            net.load["p_mw"] = (p + p_bus)[t, bus_of_load] / 1000.0
            net.load["q_mvar"] = q[t, bus_of_load] / 1000.0
            pp.runpp(net, tolerance_mva=1e-9)
            worst = max(worst, float(net.res_line.i_ka.max()) * 1000.0)
        return worst

    assert pandapower_i_max_a(free.p_bus_kw[0]) > 120.0
    assert pandapower_i_max_a(secure.p_bus_kw[0]) <= 120.0 * (1 + 1e-4)


def test_v2g_export_held_below_v_max() -> None:
    # V2G: 400 EVs at the far end, 7.2 kW both ways, 0.70 -> 0.75 pu, selling at 300 per MWh for two evening
    # hours. A tight 1.00 pu ceiling (the source is at 1.00 pu) makes the export side bind: the unconstrained
    # schedule lifts the far end above it, the network-secure one does not (pandapower's voltages).
    feeder = ieee33()
    p, q = base_load(feeder)
    model = calc_linear_model(feeder, p, q)
    fleet = night_fleet(400, np.arange(12, 18))
    fleet = fleet.replace(
        p_discharge_max_kw=np.full(fleet.n, 7.2), soc0_pu=np.full(fleet.n, 0.7), soc_target_pu=np.full(fleet.n, 0.75)
    )
    hour = (12 + np.arange(N_STEPS)) % 24
    price = np.where((hour >= 19) & (hour < 21), 300.0, 40.0)
    kw = dict(v_min_pu=0.9, v_max_pu=1.0, degradation_per_mwh=0.0)
    args = (fleet, [model], np.zeros(fleet.n, int), fleet.bus, price)
    free = solve_network_schedule(*args, network_secure=False, **kw)
    secure = solve_network_schedule(*args, **kw)
    assert free.ac_violations > 0 and free.feeders[0].v_max_pu > 1.0 + 1e-3
    assert secure.ac_violations == 0 and secure.feeders[0].v_max_pu <= 1.0 + 1e-4
    # Selling less costs money: the secure schedule earns less.
    assert secure.cost_per_horizon > free.cost_per_horizon

    def pandapower_v_max(p_bus: np.ndarray) -> float:
        net = to_pandapower(feeder, p[0], q[0])
        bus_of_load = net.load.bus.to_numpy()
        worst = 0.0
        for t in range(N_STEPS):
            net.load["p_mw"] = (p + p_bus)[t, bus_of_load] / 1000.0
            net.load["q_mvar"] = q[t, bus_of_load] / 1000.0
            pp.runpp(net, tolerance_mva=1e-9)
            worst = max(worst, float(net.res_bus.vm_pu.max()))
        return worst

    assert pandapower_v_max(free.p_bus_kw[0]) > 1.0 + 1e-3
    assert pandapower_v_max(secure.p_bus_kw[0]) <= 1.0 + 1e-4


def test_v2g_export_held_below_the_rating() -> None:
    # Reverse flow: the V2G fleet of the test above selling 400 x 7.2 = 2,880 kW for one evening hour (19:00) from
    # the far end of the main lateral (one hour, so that recharging the energy sold fits under the rating at night
    # and the export side binds, not the EVs' energy). One branch rated: the one feeding Baran & Wu's bus 11
    # (feeder index 10), 66 A; its base current peaks at 60 A (forward) and the unconstrained export drives about
    # 73 A back through it (measured by the sweep). Voltage limits wide open (0.8 / 1.2 pu) so that only the rating
    # can bind. pandapower's current on that line (line 9: line k - 1 feeds feeder bus k) and its direction on both
    # schedules.
    amp_a = 66.0
    ieee = ieee33()
    amp = np.full(ieee.n_bus, np.inf)
    amp[10] = amp_a
    feeder = Feeder(**{**ieee.__dict__, "ampacity_a": amp})
    p, q = base_load(feeder)
    model = calc_linear_model(feeder, p, q)
    assert model.base.i_branch_a[:, 10].max() < amp_a
    fleet = night_fleet(400, np.arange(12, 18))
    fleet = fleet.replace(
        p_discharge_max_kw=np.full(fleet.n, 7.2), soc0_pu=np.full(fleet.n, 0.7), soc_target_pu=np.full(fleet.n, 0.75)
    )
    hour = (12 + np.arange(N_STEPS)) % 24
    price = np.where(hour == 19, 300.0, 40.0)
    kw = dict(v_min_pu=0.8, v_max_pu=1.2, degradation_per_mwh=0.0)
    args = (fleet, [model], np.zeros(fleet.n, int), fleet.bus, price)
    free = solve_network_schedule(*args, network_secure=False, **kw)
    secure = solve_network_schedule(*args, **kw)

    def pandapower_line9(p_bus: np.ndarray) -> tuple[float, float]:
        """(largest current on the rated line, largest while its power flows towards the source) [A]."""
        net = to_pandapower(feeder, p[0], q[0])
        bus_of_load = net.load.bus.to_numpy()
        worst, worst_rev = 0.0, 0.0
        for t in range(N_STEPS):
            net.load["p_mw"] = (p + p_bus)[t, bus_of_load] / 1000.0
            net.load["q_mvar"] = q[t, bus_of_load] / 1000.0
            pp.runpp(net, tolerance_mva=1e-9)
            i_a = float(net.res_line.i_ka.iat[9]) * 1000.0
            worst = max(worst, i_a)
            if net.res_line.p_from_mw.iat[9] < 0.0:
                worst_rev = max(worst_rev, i_a)
        return worst, worst_rev

    _, i_free_rev = pandapower_line9(free.p_bus_kw[0])
    assert i_free_rev > amp_a and free.ac_violations > 0  # the export overloads it, flowing back to the source
    i_sec, i_sec_rev = pandapower_line9(secure.p_bus_kw[0])
    assert i_sec <= amp_a * (1 + 1e-4) and secure.ac_violations == 0
    assert i_sec_rev > 0.9 * amp_a  # the secure schedule still exports through it, up to the rating
    assert secure.cost_per_horizon > free.cost_per_horizon  # selling less earns less


def test_lp_optimum_matches_a_dense_cvxpy_formulation() -> None:
    # One LP round (no tightening) on a small radial feeder: the same problem written with the dense
    # common-path matrix (v = v0 - R dp / (S v0)) in cvxpy and solved by Clarabel.
    parent = np.array([-1, 0, 1, 2, 1, 4])
    feeder = Feeder(
        name="six",
        parent=parent,
        r_ohm=np.array([0, 0.8, 1.0, 1.2, 0.9, 1.1]),
        x_ohm=np.array([0, 0.4, 0.5, 0.6, 0.45, 0.55]),
        v_base_kv=12.66,
        p_load_kw=np.array([0, 300, 250, 200, 300, 250.0]),
        q_load_kvar=np.array([0, 100, 80, 60, 100, 80.0]),
        ampacity_a=np.full(6, np.inf),
    )
    p, q = base_load(feeder)
    model = calc_linear_model(feeder, p, q)
    fleet = night_fleet(40, np.array([3, 5, 2]), seed=2)
    hour = (12 + np.arange(N_STEPS)) % 24
    price = np.where((hour >= 1) & (hour < 5), 20.0, 90.0)
    ours = solve_network_schedule(
        fleet, [model], np.zeros(fleet.n, int), fleet.bus, price, v_min_pu=0.985, max_rounds=1, degradation_per_mwh=0.0
    )
    # Dense reference, built from the feeder data here.
    buses, group = np.unique(fleet.bus, return_inverse=True)
    vb = calc_virtual_battery(fleet, "inner", group, buses.size)
    n = N_STEPS
    c = cp.Variable((n, buses.size), nonneg=True)
    y = cp.cumsum(0.95 * c, axis=0)
    dp = cp.hstack([vb.p_fixed_kw[:, [k]] + c[:, [k]] for k in range(buses.size)])
    full = [np.zeros((n, 1))] * 6
    for k, b in enumerate(buses):
        full[b] = dp[:, [k]]
    dp_all = cp.hstack(full)
    anc = np.zeros((6, 6))
    for j in range(1, 6):
        anc[j] = anc[parent[j]]
        anc[j, j] = 1.0
    r_path = anc @ np.diag(feeder.r_pu) @ anc.T
    v0 = model.base.v_pu
    v = v0 - cp.multiply(dp_all @ r_path.T, 1.0 / (1000.0 * v0))
    cons = [
        c <= vb.p_max_kw - vb.p_fixed_kw,
        y >= vb.e_min_kwh - vb.e_fixed_kwh,
        y <= vb.e_max_kwh - vb.e_fixed_kwh,
        v[:, 1:] >= np.minimum(0.985, v0[:, 1:]),
    ]
    obj = cp.Minimize(cp.sum(cp.multiply(price[:, None], dp)) / 1000.0)
    prob = cp.Problem(obj, cons)
    prob.solve(solver=cp.CLARABEL)
    assert prob.status == "optimal"
    assert ours.cost_per_horizon == pytest.approx(prob.value, rel=1e-6)


def test_feeders_in_worker_processes_match_one_process() -> None:
    # Wiring: two feeders (one without EVs) solved in two spawned processes give what one process gives.
    feeder = ieee33()
    p, q = base_load(feeder)
    model = calc_linear_model(feeder, p, q)
    fleet = night_fleet(60, np.arange(12, 18))
    hour = (12 + np.arange(N_STEPS)) % 24
    price = np.where((hour >= 2) & (hour < 4), 20.0, 90.0)
    args = (fleet, [model, model], np.zeros(fleet.n, int), fleet.bus, price)
    one = solve_network_schedule(*args, workers=1)
    two = solve_network_schedule(*args, workers=2)
    assert two.workers == 2 and one.workers == 1
    np.testing.assert_array_equal(one.p_ev_kw, two.p_ev_kw)
    assert np.all(two.p_bus_kw[1] == 0.0) and two.feeders[1].rounds == 0
    assert two.cost_per_horizon == one.cost_per_horizon


def test_bad_input_names_the_field() -> None:
    feeder = ieee33()
    p, q = base_load(feeder)
    model = calc_linear_model(feeder, p, q)
    fleet = night_fleet(5, np.array([3]))
    price = np.full(N_STEPS, 50.0)
    with pytest.raises(DataError, match="ev_feeder"):
        solve_network_schedule(fleet, [model], np.full(fleet.n, 1), fleet.bus, price)
    with pytest.raises(DataError, match="ev_bus"):
        solve_network_schedule(fleet, [model], np.zeros(fleet.n, int), np.full(fleet.n, 40), price)
    with pytest.raises(DataError, match="v_min_pu"):
        solve_network_schedule(fleet, [model], np.zeros(fleet.n, int), fleet.bus, price, v_min_pu=1.1)


def test_network_schedule_analysis_wiring() -> None:
    # Wiring only (the figures are tested above): EVs with unreachable targets are left out with their feeder
    # and bus, and the summary's difference is the secure minus the unconstrained figure.
    from v2gtwin.markets.scheduling import run_network_schedule_analysis
    from v2gtwin.scenario import MarketsSpec, TimeGrid

    feeder = ieee33()
    p, q = base_load(feeder)
    model = calc_linear_model(feeder, p, q)
    fleet = night_fleet(30, np.arange(12, 18))
    # EV 0 cannot reach its target (1 step plugged, 50 kWh to charge at 7.2 kW).
    fleet = fleet.replace(
        departure_step=np.r_[fleet.arrival_step[0] + 1, fleet.departure_step[1:]],
        soc_target_pu=np.r_[min(1.0, fleet.soc0_pu[0] + 50 / 60), fleet.soc_target_pu[1:]],
    )
    ev_bus = fleet.bus.copy()
    a = run_network_schedule_analysis(
        fleet,
        [model],
        np.zeros(fleet.n, int),
        ev_bus,
        MarketsSpec(),
        TimeGrid(n_steps=N_STEPS, dt_s=3600, start_hour=12),
    )
    s = a.summary()
    assert s["n_evs"] == fleet.n - 1 and s["n_dropped"] == 1
    assert s["cost_difference_per_horizon"] == pytest.approx(
        s["cost_network_secure_per_horizon"] - s["cost_unconstrained_per_horizon"]
    )
    # The EVs kept are placed on their own buses: the per-bus sums of the EV schedule are the bus powers.
    kept = fleet.subset(np.arange(1, fleet.n))
    for b in np.unique(kept.bus):
        np.testing.assert_allclose(
            a.secure.p_ev_kw[:, kept.bus == b].sum(axis=1), a.secure.p_bus_kw[0][:, b], atol=1e-6
        )


def test_network_schedule_analysis_secure_is_the_constrained_schedule() -> None:
    # Wiring of the two schedules: the far-end fleet of the weak-feeder test (400 EVs on Baran & Wu buses 13-18)
    # against the scenario's default prices. The unconstrained schedule must break 0.95 pu and the network-secure
    # one must not, by pandapower's Newton-Raphson on each schedule's bus powers (independent of the sweep that
    # counts ac_violations); holding the limits costs money.
    from v2gtwin.markets.scheduling import run_network_schedule_analysis
    from v2gtwin.scenario import MarketsSpec, TimeGrid

    feeder = ieee33()
    p, q = base_load(feeder)
    model = calc_linear_model(feeder, p, q)
    fleet = night_fleet(400, np.arange(12, 18))
    a = run_network_schedule_analysis(
        fleet,
        [model],
        np.zeros(fleet.n, int),
        fleet.bus,
        MarketsSpec(),
        TimeGrid(n_steps=N_STEPS, dt_s=3600, start_hour=12),
    )
    s = a.summary()
    assert a.unconstrained.network_secure is False and a.secure.network_secure is True
    assert s["ac_violations_unconstrained"] > 0 == s["ac_violations"]
    assert s["cost_difference_per_horizon"] > 0.0
    assert pandapower_v_min(feeder, p + a.unconstrained.p_bus_kw[0], q) < 0.95
    assert pandapower_v_min(feeder, p + a.secure.p_bus_kw[0], q) >= 0.95 - 1e-4


def pandapower_violation_counts(
    feeder: Feeder, p: np.ndarray, q: np.ndarray, p_ev: np.ndarray, v_min: float, v_max: float, tol_v: float = 1e-4
) -> tuple[int, int]:
    """(EV-caused violations, base violations) by pandapower's Newton-Raphson, by the rule the schedule documents:
    a bus-step (branch-step) the base load alone puts outside the limits counts in the base figure, and counts as
    EV-caused only where the EVs make it worse (voltage lower / higher than the base's by more than ``tol_v``,
    current above the base's by more than 1e-4 of it); any other bus-step outside [v_min - tol_v, v_max + tol_v]
    and branch-step above its ampacity (1 + 1e-4) is EV-caused. The source bus is left out."""
    tol_i = 1e-4
    net = to_pandapower(feeder, p[0], q[0])
    bus_of_load = net.load.bus.to_numpy()
    amp = feeder.ampacity_a[1:]  # line k - 1 feeds feeder bus k (built in order)

    def run(p_t: np.ndarray, q_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        net.load["p_mw"] = p_t[bus_of_load] / 1000.0
        net.load["q_mvar"] = q_t[bus_of_load] / 1000.0
        pp.runpp(net, tolerance_mva=1e-9)
        return net.res_bus.vm_pu.to_numpy()[1:], net.res_line.i_ka.to_numpy() * 1000.0

    n_ev = n_base = 0
    for t in range(p.shape[0]):
        v0, i0 = run(p[t], q[t])
        v, i_a = run(p[t] + p_ev[t], q[t])
        base_lo, base_hi, base_i = v0 < v_min - tol_v, v0 > v_max + tol_v, i0 > amp * (1 + tol_i)
        n_base += int(base_lo.sum() + base_hi.sum() + base_i.sum())
        n_ev += int(np.where(base_lo, v < v0 - tol_v, v < v_min - tol_v).sum())
        n_ev += int(np.where(base_hi, v > v0 + tol_v, v > v_max + tol_v).sum())
        n_ev += int(np.where(base_i, i_a > i0 * (1 + tol_i), i_a > amp * (1 + tol_i)).sum())
    return n_ev, n_base


def full_load_night(feeder: Feeder) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The base load of :func:`base_load` with Baran & Wu's full load at 02:00 (step 14, lowest voltage 0.913 pu
    by their paper), and a price cheap at 02:00-04:00 so that the unconstrained schedule charges there."""
    p, q = base_load(feeder)
    p[14], q[14] = feeder.p_load_kw, feeder.q_load_kvar
    hour = (12 + np.arange(N_STEPS)) % 24
    return p, q, np.where((hour >= 2) & (hour < 4), 20.0, 90.0)


def assert_secure_adds_only_the_unavoidable(
    feeder: Feeder,
    p: np.ndarray,
    q: np.ndarray,
    fleet: Fleet,
    secure: NetworkScheduleResult,
    v_min: float,
    v_max: float,
    n_base: int,
) -> None:
    """The network-secure schedule at the full-load step draws only the least its bus batteries can (the inner
    virtual battery holds the EVs outside its common plug-in window on a reference trajectory), so what it adds
    there is counted, not hidden: its ac_violations equal pandapower's count, and without that step pandapower
    finds none."""
    p_bus = secure.p_bus_kw[0]
    buses, group = np.unique(fleet.bus, return_inverse=True)
    least_kw = calc_virtual_battery(fleet, "inner", group, buses.size).as_2d("p_min_kw")[14].sum()
    assert least_kw > 0.0  # the EVs outside the battery's common window ride their reference rate
    assert p_bus[14].sum() == pytest.approx(least_kw, rel=1e-6)
    n_ev, n_base_sec = pandapower_violation_counts(feeder, p, q, p_bus, v_min, v_max)
    assert n_base_sec == n_base and secure.ac_violations == n_ev
    without = p_bus.copy()
    without[14] = 0.0
    assert pandapower_violation_counts(feeder, p, q, without, v_min, v_max) == (0, n_base)


def test_base_load_voltage_violations_counted_apart() -> None:
    feeder = ieee33()
    p, q, price = full_load_night(feeder)
    model = calc_linear_model(feeder, p, q)
    assert model.base.v_pu[14].min() == pytest.approx(0.9131, abs=2e-4)  # Baran & Wu (1989): 0.9131 pu at bus 18
    fleet = night_fleet(400, np.arange(12, 18))
    args = (fleet, [model], np.zeros(fleet.n, int), fleet.bus, price)
    kw = dict(v_min_pu=0.95, v_max_pu=1.05, degradation_per_mwh=0.0)
    free = solve_network_schedule(*args, network_secure=False, **kw)
    secure = solve_network_schedule(*args, **kw)
    n_ev, n_base = pandapower_violation_counts(feeder, p, q, free.p_bus_kw[0], 0.95, 1.05)
    # The base load alone: the full-load step's buses below 0.95 pu (21 of Baran & Wu's 32 load buses).
    assert n_base > 0 and free.base_violations == n_base == secure.base_violations
    # The unconstrained schedule charges at the full-load step and lowers those buses further: counted.
    assert np.abs(free.p_bus_kw[0][14]).sum() > 0.0
    assert n_ev > 0 and free.ac_violations == n_ev
    assert_secure_adds_only_the_unavoidable(feeder, p, q, fleet, secure, 0.95, 1.05, n_base)


def test_base_load_overloads_counted_apart() -> None:
    # Every branch rated 150 A: the full-load step overloads the first branches (about 200 A), the other steps
    # (half load at most, about 102 A) do not. Voltage limits wide open (0.8 / 1.2 pu) so only ratings count.
    feeder = ieee33(ampacity_a=150.0)
    p, q, price = full_load_night(feeder)
    model = calc_linear_model(feeder, p, q)
    assert (model.base.i_branch_a[14, 1:] > 150.0).any() and (np.delete(model.base.i_branch_a, 14, 0) < 150.0).all()
    fleet = night_fleet(400, np.arange(12, 18))
    args = (fleet, [model], np.zeros(fleet.n, int), fleet.bus, price)
    kw = dict(v_min_pu=0.8, v_max_pu=1.2, degradation_per_mwh=0.0)
    free = solve_network_schedule(*args, network_secure=False, **kw)
    secure = solve_network_schedule(*args, **kw)
    n_ev, n_base = pandapower_violation_counts(feeder, p, q, free.p_bus_kw[0], 0.8, 1.2)
    assert n_base > 0 and free.base_violations == n_base == secure.base_violations
    assert n_ev > 0 and free.ac_violations == n_ev
    assert_secure_adds_only_the_unavoidable(feeder, p, q, fleet, secure, 0.8, 1.2, n_base)


def test_import_cap_split_pro_rata_to_energy_need() -> None:
    # Hand arithmetic: feeder 0's EVs need 10 + 30 = 40 kWh, feeder 1's (1.0 - 0.2) x 60 = 48 kWh; a 50 kW cap
    # splits 50 x 40 / 88 = 22.727 and 50 x 48 / 88 = 27.273 kW.
    from v2gtwin.optimize.network_schedule import calc_feeder_caps_kw

    fleet = night_fleet(3, np.array([3]))
    fleet = fleet.replace(soc0_pu=np.full(3, 0.2), soc_target_pu=np.array([0.2 + 10 / 60, 0.2 + 30 / 60, 1.0]))
    caps = calc_feeder_caps_kw(fleet, np.array([0, 0, 1]), 2, 50.0)
    np.testing.assert_allclose(caps, [50 * 40 / 88, 50 * 48 / 88])
    assert np.isinf(calc_feeder_caps_kw(fleet, np.array([0, 0, 1]), 2, np.inf)).all()


def test_import_cap_holds_on_every_feeder_and_the_fleet() -> None:
    # Two copies of the 33-bus feeder; all EVs want the two cheap hours. With a cap of 60 % of the unconstrained
    # schedule's peak, each feeder's EV power stays under its pro-rata share at every step, so the fleet's does too,
    # and each EV still meets its target.
    from v2gtwin.optimize.network_schedule import calc_feeder_caps_kw

    feeder = ieee33()
    p, q = base_load(feeder)
    model = calc_linear_model(feeder, p, q)
    fleet = night_fleet(120, np.arange(2, 10))
    fe = np.r_[np.zeros(60, int), np.ones(60, int)]
    hour = (12 + np.arange(N_STEPS)) % 24
    price = np.where((hour >= 2) & (hour < 4), 20.0, 90.0)
    kw = dict(v_min_pu=0.8, v_max_pu=1.2, degradation_per_mwh=0.0)
    free = solve_network_schedule(fleet, [model, model], fe, fleet.bus, price, network_secure=False, **kw)
    cap = 0.6 * float(free.p_ev_kw.sum(axis=1).max())
    capped = solve_network_schedule(fleet, [model, model], fe, fleet.bus, price, import_cap_kw=cap, **kw)
    shares = calc_feeder_caps_kw(fleet, fe, 2, cap)
    for k in (0, 1):
        assert capped.p_ev_kw[:, fe == k].sum(axis=1).max() <= shares[k] * (1 + 1e-6)
    assert capped.p_ev_kw.sum(axis=1).max() <= cap * (1 + 1e-6)
    assert capped.cost_per_horizon > free.cost_per_horizon  # energy pushed out of the cheap hours
    real = simulate_soc(fleet, capped.p_ev_kw)
    end = real.soc_pu[fleet.departure_step, np.arange(fleet.n)]
    assert np.all(end >= fleet.soc_target_pu - 1e-7)
    assert capped.summary()["import_cap_kw"] == pytest.approx(cap)


def test_check_schedule_ac_counts_as_pandapower() -> None:
    # Any per-EV schedule through the exact power flow: the count of bus-steps below 0.95 pu equals pandapower's
    # Newton-Raphson count on the same bus powers.
    from v2gtwin.optimize.network_schedule import check_schedule_ac

    feeder = ieee33()
    p, q = base_load(feeder)
    model = calc_linear_model(feeder, p, q)
    fleet = night_fleet(400, np.arange(12, 18))
    hour = (12 + np.arange(N_STEPS)) % 24
    price = np.where((hour >= 2) & (hour < 4), 20.0, 90.0)
    free = solve_network_schedule(
        fleet, [model], np.zeros(fleet.n, int), fleet.bus, price, network_secure=False, degradation_per_mwh=0.0
    )
    n_viol, n_base, v_low = check_schedule_ac(free.p_ev_kw, [model], np.zeros(fleet.n, int), fleet.bus)
    net = to_pandapower(feeder, p[0], q[0])
    bus_of_load = net.load.bus.to_numpy()
    count, lowest = 0, 2.0
    for t in range(N_STEPS):
        pt = p[t] + free.p_bus_kw[0][t]
        net.load["p_mw"] = pt[bus_of_load] / 1000.0
        net.load["q_mvar"] = q[t, bus_of_load] / 1000.0
        pp.runpp(net, tolerance_mva=1e-9)
        vm = net.res_bus.vm_pu.to_numpy()
        count += int((vm[1:] < 0.95 - 1e-4).sum() + (vm[1:] > 1.05 + 1e-4).sum())
        lowest = min(lowest, float(vm.min()))
    assert n_base == 0 and count > 0
    assert n_viol == count == free.ac_violations
    assert v_low == pytest.approx(lowest, abs=1e-6)
