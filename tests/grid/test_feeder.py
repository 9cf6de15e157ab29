"""Feeder model and power flows against Baran & Wu's published 33-bus results and pandapower's runpp."""

from __future__ import annotations

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from v2gtwin.errors import ConvergenceError, DataError
from v2gtwin.grid.feeder import Feeder, from_pandapower, ieee33, run_powerflow, synthetic_feeder, to_pandapower


@pytest.fixture(scope="module")
def f33():  # type: ignore[no-untyped-def]
    return ieee33()


def test_baran_wu_base_case_published_values(f33) -> None:  # type: ignore[no-untyped-def]
    # Baran & Wu (1989) 33-bus base case: losses 202.7 kW, lowest voltage 0.9131 pu at bus 18 (their
    # numbering, 1-33), as recomputed by pandapower 3.5.6 runpp and OpenDSS (202.677 kW, 0.91309 pu).
    res = run_powerflow(f33, f33.p_load_kw, f33.q_load_kvar)
    summary = res.summary(f33)
    assert summary["losses_kw"] == pytest.approx(202.677, abs=0.01)
    assert summary["v_min_pu"] == pytest.approx(0.91309, abs=1e-5)
    assert summary["v_min_bus"] == "18"
    assert res.p_source_kw[0] == pytest.approx(3917.68, abs=0.01)
    assert res.q_source_kvar[0] == pytest.approx(2435.14, abs=0.01)
    assert f33.n_bus == 33 and f33.p_load_kw.sum() == pytest.approx(3715.0)


@pytest.mark.parametrize("scale", [0.3, 1.0, 1.6])
def test_exact_solver_matches_pandapower_at_several_load_levels(f33, scale: float) -> None:  # type: ignore[no-untyped-def]
    net = pn.case33bw()
    net.load["scaling"] = scale
    pp.runpp(net, tolerance_mva=1e-12)
    res = run_powerflow(f33, f33.p_load_kw * scale, f33.q_load_kvar * scale)
    np.testing.assert_allclose(res.v_pu[0], net.res_bus.vm_pu.values[f33.bus_index], atol=1e-6)
    np.testing.assert_allclose(res.v_angle_deg[0], net.res_bus.va_degree.values[f33.bus_index], atol=1e-5)
    assert res.p_loss_kw[0] == pytest.approx(net.res_line.pl_mw.sum() * 1e3, rel=1e-7)


def test_time_series_with_ev_load_matches_pandapower_step_by_step(f33) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(5)
    n_steps = 6
    scale = rng.uniform(0.4, 1.2, (n_steps, f33.n_bus))
    ev = np.zeros((n_steps, f33.n_bus))
    ev[:, rng.integers(1, 33, 8)] = rng.uniform(-40, 150, (n_steps, 8))  # charging and V2G discharging
    p = f33.p_load_kw * scale + ev
    q = f33.q_load_kvar * scale
    res = run_powerflow(f33, p, q)
    for t in range(n_steps):
        net = to_pandapower(f33, p[t], q[t])
        pp.runpp(net, tolerance_mva=1e-12)
        np.testing.assert_allclose(res.v_pu[t], net.res_bus.vm_pu.values, atol=1e-6)
        assert res.p_loss_kw[t] == pytest.approx(net.res_line.pl_mw.sum() * 1e3, rel=1e-6)
        np.testing.assert_allclose(res.i_branch_a[t, 1:], net.res_line.i_ka.values * 1e3, rtol=1e-6)


def test_lindistflow_error_is_reported_not_hidden(f33) -> None:  # type: ignore[no-untyped-def]
    # LinDistFlow drops the loss terms: on the base case it overestimates voltages (0.9159 vs 0.9131 pu)
    # and its loss estimate is below the exact one. Bounds below are what the linearisation is known to do.
    exact = run_powerflow(f33, f33.p_load_kw, f33.q_load_kvar)
    lin = run_powerflow(f33, f33.p_load_kw, f33.q_load_kvar, method="lindistflow")
    err = lin.v_pu[0] - exact.v_pu[0]
    assert np.all(err >= -1e-12) and 0.001 < err.max() < 0.005
    assert 0.85 < lin.p_loss_kw[0] / exact.p_loss_kw[0] < 1.0


def test_synthetic_feeder_large_matches_pandapower() -> None:
    feeder = synthetic_feeder(400, np.random.default_rng(2))
    res = run_powerflow(feeder, feeder.p_load_kw, feeder.q_load_kvar)
    net = to_pandapower(feeder)
    pp.runpp(net, tolerance_mva=1e-10, max_iteration=30)
    np.testing.assert_allclose(res.v_pu[0], net.res_bus.vm_pu.values, atol=1e-6)
    # Built so that the LinDistFlow voltage of the weakest bus is 0.95 pu.
    lin = run_powerflow(feeder, feeder.p_load_kw, feeder.q_load_kvar, method="lindistflow")
    assert lin.v_pu.min() == pytest.approx(0.95, abs=1e-9)


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 60), st.integers(0, 10_000), st.floats(0.0, 1.3))
def test_power_balance_on_random_feeders(n_bus: int, seed: int, scale: float) -> None:
    feeder = synthetic_feeder(n_bus, np.random.default_rng(seed))
    res = run_powerflow(feeder, feeder.p_load_kw * scale, feeder.q_load_kvar * scale)
    # Source power = loads + sum r |I|^2 (independent of how the sweep accumulates it).
    i_pu = res.i_branch_a[0] / feeder.i_base_a
    losses = float(np.sum(feeder.r_pu * i_pu**2)) * 1000.0
    assert res.p_source_kw[0] == pytest.approx(feeder.p_load_kw[1:].sum() * scale + losses, rel=1e-9, abs=1e-9)
    assert np.all(res.v_pu[0] <= feeder.v_source_pu + 1e-12)


def test_collapse_is_a_convergence_error_naming_the_step(f33) -> None:  # type: ignore[no-untyped-def]
    p = np.vstack([f33.p_load_kw, f33.p_load_kw * 12.0])
    q = np.vstack([f33.q_load_kvar, f33.q_load_kvar * 12.0])
    with pytest.raises(ConvergenceError, match="step 1"):
        run_powerflow(f33, p, q)
    res = run_powerflow(f33, p, q, on_nonconvergence="nan")
    assert np.isfinite(res.v_pu[0]).all() and np.isnan(res.v_pu[1]).all()


def test_steps_solved_side_by_side_match_pandapower_and_fail_alone(f33) -> None:  # type: ignore[no-untyped-def]
    # 70 steps: more than one parallel block (64) and a short last group of lanes. Step 20 collapses (12x
    # load); it must fail alone, and the steps around it (solved in the same group, and the group after it,
    # which would start from its solution) must match pandapower's runpp step by step.
    rng = np.random.default_rng(11)
    n_steps = 70
    scale = rng.uniform(0.3, 1.5, (n_steps, f33.n_bus))
    scale[20] = 12.0
    p, q = f33.p_load_kw * scale, f33.q_load_kvar * scale
    res = run_powerflow(f33, p, q, on_nonconvergence="nan")
    assert res.iterations[20] == -1 and np.isnan(res.v_pu[20]).all() and np.isnan(res.p_loss_kw[20])
    for t in (0, 19, 21, 31, 32, 47, 63, 64, 69):
        assert res.iterations[t] > 0
        net = to_pandapower(f33, p[t], q[t])
        pp.runpp(net, tolerance_mva=1e-12)
        np.testing.assert_allclose(res.v_pu[t], net.res_bus.vm_pu.values, atol=1e-9)
        np.testing.assert_allclose(res.v_angle_deg[t], net.res_bus.va_degree.values, atol=1e-7)
        assert res.p_loss_kw[t] == pytest.approx(net.res_line.pl_mw.sum() * 1e3, rel=1e-8)
        assert res.p_source_kw[t] == pytest.approx(net.res_ext_grid.p_mw.iloc[0] * 1e3, rel=1e-9)
        assert res.q_source_kvar[t] == pytest.approx(net.res_ext_grid.q_mvar.iloc[0] * 1e3, rel=1e-9)


def test_meshed_network_names_the_loop() -> None:
    net = pn.case33bw()
    net.line.loc[net.line.index[-1], "in_service"] = True  # close tie line 24-28
    with pytest.raises(DataError, match=r"not radial: closing branch 36 makes the loop 24 -> .* -> 28 -> 24"):
        from_pandapower(net)


def test_isolated_bus_and_negative_impedance_are_named() -> None:
    net = pn.case33bw()
    net.line.loc[31, "in_service"] = False  # bus 32 loses its only feed
    with pytest.raises(DataError, match="bus 32 has no path to the source"):
        from_pandapower(net)
    net = pn.case33bw()
    net.line.loc[5, "r_ohm_per_km"] = -0.1
    with pytest.raises(DataError, match="line 5: negative"):
        from_pandapower(net)


def test_bad_load_shapes_and_values(f33) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DataError, match="expected shape"):
        run_powerflow(f33, np.zeros(10), np.zeros(10))
    bad = f33.p_load_kw.copy()
    bad[4] = np.nan
    with pytest.raises(DataError, match=r"p_kw\[0, 4\]"):
        run_powerflow(f33, bad, f33.q_load_kvar)


def test_common_path_resistance_matches_brute_force() -> None:
    f = synthetic_feeder(120, np.random.default_rng(3))
    paths = []
    for j in range(f.n_bus):
        p, k = set(), j
        while k > 0:
            p.add(k)
            k = int(f.parent[k])
        paths.append(p)
    brute = np.array([[sum(f.r_ohm[b] for b in paths[j] & paths[m]) for m in range(f.n_bus)] for j in range(f.n_bus)])
    np.testing.assert_allclose(f.path_resistance_ohm(), brute, atol=1e-12)


def test_ieee33_buses_carry_baran_wu_numbers(f33) -> None:  # type: ignore[no-untyped-def]
    # Baran & Wu (1989), Fig. 5 and MATPOWER's case33bw: buses 1-33, source = bus 1; branch 18-19 does not
    # exist (bus 19 hangs from bus 2, bus 23 from bus 3, bus 26 from bus 6).
    assert sorted(f33.bus_labels.tolist(), key=int) == [str(i) for i in range(1, 34)]
    assert f33.bus_labels[0] == "1"
    parent = {f33.bus_labels[i]: f33.bus_labels[f33.parent[i]] for i in range(1, 33)}
    assert parent["19"] == "2" and parent["23"] == "3" and parent["26"] == "6" and parent["18"] == "17"
    # The published case has no branch ratings: none is reported.
    summary = run_powerflow(f33, f33.p_load_kw, f33.q_load_kvar).summary(f33)
    assert summary["branch_loading_max_pu"] is None and summary["branch_loading_max"] is None


def test_ieee33_table_equals_pandapower_case33bw(f33) -> None:  # type: ignore[no-untyped-def]
    # The packaged table (read without pandapower) against pandapower's own case33bw through from_pandapower:
    # the same buses in the same order, impedances, loads and branch labels; labels are pandapower's + 1.
    ref = from_pandapower(pn.case33bw(), name="ieee33")
    for name in ("parent", "r_ohm", "x_ohm", "p_load_kw", "q_load_kvar", "bus_index"):
        np.testing.assert_allclose(getattr(f33, name), getattr(ref, name), rtol=0, atol=1e-12, err_msg=name)
    assert f33.branch_label == ref.branch_label
    assert f33.bus_labels.tolist() == [str(int(b) + 1) for b in ref.bus_labels]
    assert (f33.v_base_kv, f33.v_source_pu) == (ref.v_base_kv, ref.v_source_pu)
    assert np.isinf(f33.ampacity_a).all() and np.isinf(ieee33(300.0).ampacity_a[0])
    assert (ieee33(300.0).ampacity_a[1:] == 300.0).all()


def test_matpower_case_keeps_its_bus_numbers() -> None:
    # A MATPOWER case (buses numbered 101, 205, 7) converted by pandapower keeps those numbers as labels.
    ppc = {
        "version": "2",
        "baseMVA": 1.0,
        "bus": np.array(
            [
                [101, 3, 0.0, 0.0, 0, 0, 1, 1.0, 0, 12.66, 1, 1.1, 0.9],
                [205, 1, 0.1, 0.05, 0, 0, 1, 1.0, 0, 12.66, 1, 1.1, 0.9],
                [7, 1, 0.2, 0.1, 0, 0, 1, 1.0, 0, 12.66, 1, 1.1, 0.9],
            ]
        ),
        "gen": np.array([[101, 0, 0, 10, -10, 1.0, 1.0, 1, 10, 0] + [0] * 11]),
        "branch": np.array(
            [
                [101, 205, 0.01, 0.02, 0, 0, 0, 0, 0, 0, 1, -360, 360],
                [205, 7, 0.01, 0.02, 0, 0, 0, 0, 0, 0, 1, -360, 360],
            ]
        ),
    }
    from pandapower.converter.pypower.from_ppc import from_ppc

    feeder = from_pandapower(from_ppc(ppc, f_hz=60))
    assert feeder.bus_labels.tolist() == ["101", "205", "7"]
    res = run_powerflow(feeder, feeder.p_load_kw, feeder.q_load_kvar)
    assert res.summary(feeder)["v_min_bus"] == "7"  # the end of the line has the lowest voltage


def test_pandapower_names_are_the_labels_when_all_distinct() -> None:
    net = pp.create_empty_network()
    names = ["substation", "mid", "end"]
    b = [pp.create_bus(net, vn_kv=11.0, name=nm) for nm in names]
    pp.create_ext_grid(net, b[0])
    for u, v in ((0, 1), (1, 2)):
        pp.create_line_from_parameters(net, b[u], b[v], 1.0, 0.3, 0.3, 0.0, 0.4)
    pp.create_load(net, b[2], p_mw=0.5)
    assert from_pandapower(net).bus_labels.tolist() == names
    net.bus.loc[1, "name"] = "end"  # no longer distinct: the bus indices are the labels
    assert from_pandapower(net).bus_labels.tolist() == ["0", "1", "2"]


def test_synthetic_feeder_labels_and_duplicate_labels() -> None:
    f = synthetic_feeder(12, np.random.default_rng(1))
    assert f.bus_labels.tolist() == [str(i) for i in range(1, 13)]
    with pytest.raises(DataError, match="bus_labels"):
        Feeder(**{**f.__dict__, "bus_labels": np.array(["1"] * 12)})


def test_branch_free_atan2_matches_the_c_library() -> None:
    # The kernel's vectorisable atan2 (Cephes' atan) against numpy's arctan2 (the C library) over all four
    # quadrants, magnitudes from 1e-6 to 1e6, and the feeder's range (angles of a few degrees).
    from numba import njit

    from v2gtwin.grid._kernels import atan2

    @njit
    def apply(y, x):  # type: ignore[no-untyped-def]
        out = np.empty_like(y)
        for i in range(y.size):
            out[i] = atan2(y[i], x[i])
        return out

    rng = np.random.default_rng(4)
    y = rng.standard_normal(200_000) * 10.0 ** rng.uniform(-6, 6, 200_000)
    x = rng.standard_normal(200_000) * 10.0 ** rng.uniform(-6, 6, 200_000)
    y = np.concatenate([y, rng.uniform(-0.2, 0.2, 10_000), [0.0, 1.0, -1.0, 1.0]])
    x = np.concatenate([x, rng.uniform(0.8, 1.1, 10_000), [1.0, 0.0, 0.0, -1.0]])
    ref = np.arctan2(y, x)
    np.testing.assert_allclose(apply(y, x), ref, rtol=5e-16, atol=1e-300)
