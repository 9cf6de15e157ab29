"""Hosting capacity against a closed form and pandapower; volt-var against pandapower's DERController."""

from __future__ import annotations

import math

import numpy as np
import pandapower as pp
import pytest
from pandapower.control.controller.DERController import DERController, QModelQVCurve
from pandapower.control.controller.DERController.DERBasics import QVCurve

from v2gtwin.errors import DataError
from v2gtwin.grid.feeder import Feeder, ieee33, run_powerflow, to_pandapower
from v2gtwin.grid.hosting import run_fleet_hosting, run_node_hosting
from v2gtwin.grid.voltvar import VOLTVAR_CURVES, calc_voltvar_q, run_voltvar


def two_bus(r: float = 0.02, x: float = 0.01) -> Feeder:
    # 1 kV base and 1 MVA: impedances in ohm equal pu.
    return Feeder(
        "two",
        np.array([-1, 0]),
        np.array([0, r]),
        np.array([0, x]),
        1.0,
        np.zeros(2),
        np.zeros(2),
        np.full(2, np.inf),
    )


def test_node_hosting_closed_form_two_bus() -> None:
    # Unity-pf load P at the end of one branch: V^4 - (V0^2 - 2 r P) V^2 + (r^2 + x^2) P^2 = 0. Setting
    # V = vmin and solving the quadratic in P gives the exact hosting capacity.
    r, x, vmin = 0.02, 0.01, 0.95
    a, b, c = r * r + x * x, 2 * r * vmin**2, vmin**4 - vmin**2
    p_exact_kw = (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a) * 1000
    res = run_node_hosting(two_bus(r, x), v_min_pu=vmin, tol_kw=1e-4)
    assert res.p_host_kw[0] == pytest.approx(p_exact_kw, abs=2e-4)
    assert res.binding[0] == "voltage at bus 1"
    # LinDistFlow estimate (1 - vmin^2) / (2 r) is the first guess, close but not exact.
    assert res.p_estimate_kw[0] == pytest.approx((1 - vmin**2) / (2 * r) * 1000, rel=1e-12)


def test_node_hosting_on_ieee33_is_exact_by_pandapower() -> None:
    f = ieee33()
    p0, q0 = f.p_load_kw * 0.5, f.q_load_kvar * 0.5
    res = run_node_hosting(f, p0, q0, tol_kw=0.01)
    for k in (5, 17, 31):  # feeder positions of a few load buses
        bus_pos = k + 1
        for extra, check in ((0.0, lambda v: v >= 0.95 - 1e-9), (0.05, lambda v: v < 0.95)):
            p = p0.copy()
            p[bus_pos] += res.p_host_kw[k] + extra
            net = to_pandapower(f, p, q0)
            pp.runpp(net, tolerance_mva=1e-11)
            assert check(net.res_bus.vm_pu.min()), (k, extra)
    # The LinDistFlow first estimate is within 15 % of the exact figure everywhere.
    assert np.all(np.abs(res.p_estimate_kw / res.p_host_kw - 1) < 0.15)


def test_ampacity_binds_when_tighter() -> None:
    f = ieee33(ampacity_a=150.0)
    p0, q0 = f.p_load_kw * 0.5, f.q_load_kvar * 0.5
    res = run_node_hosting(f, p0, q0)
    binding = dict(zip(res.bus_labels.tolist(), res.binding, strict=True))
    assert binding["2"].startswith("ampacity of line")  # Baran & Wu's bus 2, first load bus
    p = p0.copy()
    p[1] += res.p_host_kw[0]
    i_max = run_powerflow(f, p, q0).i_branch_a.max()
    assert i_max == pytest.approx(150.0, abs=0.01)


def test_base_case_violation_gives_zero_with_reason() -> None:
    f = ieee33()
    res = run_node_hosting(f)  # full load: 0.913 pu < 0.95 already
    assert np.all(res.p_host_kw == 0) and res.binding[0].startswith("base case already violates")


def test_fleet_hosting_scale_is_exact_by_pandapower() -> None:
    f = ieee33()
    n_steps = 4
    load = np.array([0.4, 0.5, 0.45, 0.35])[:, None]
    p0, q0 = f.p_load_kw * load, f.q_load_kvar * load
    ev = np.zeros((n_steps, f.n_bus))
    ev[:, [10, 20, 30]] = [[30, 10, 20], [50, 20, 40], [20, 30, 10], [10, 10, 10]]
    res = run_fleet_hosting(f, p0, q0, ev, tol_scale=1e-6)
    t = res.binding_step
    net = to_pandapower(f, p0[t] + res.scale * ev[t], q0[t])
    pp.runpp(net, tolerance_mva=1e-11)
    assert net.res_bus.vm_pu.min() == pytest.approx(0.95, abs=1e-5)
    assert res.binding.startswith("voltage at bus")
    assert 0.5 < res.scale_estimate / res.scale < 1.5


def test_voltvar_matches_pandapower_dercontroller() -> None:
    f = ieee33()
    p0, q0 = f.p_load_kw, f.q_load_kvar
    pos = [17, 21, 24, 29, 32]
    p_inv = np.zeros(f.n_bus)
    s = np.zeros(f.n_bus)
    p_inv[pos] = 60.0
    s[pos] = 100.0  # enough apparent power: no curtailment, same fixed point in both tools
    ours = run_voltvar(f, p0, q0, p_inv, s, "B")
    net = to_pandapower(f, p0 + p_inv, q0)
    sg = [pp.create_sgen(net, b, p_mw=0.0, q_mvar=0.0, sn_mva=0.1) for b in pos]
    curve = VOLTVAR_CURVES["B"]
    DERController(
        net,
        sg,
        q_model=QModelQVCurve(QVCurve(list(curve.v_pu), list(curve.q_pu))),
        damping_coef=2,
        max_q_error=1e-10,
        max_p_error=1e-10,
    )
    pp.runpp(net, run_control=True, tolerance_mva=1e-11, max_iter=100)
    np.testing.assert_allclose(ours.powerflow.v_pu[0], net.res_bus.vm_pu.values, atol=1e-4)
    np.testing.assert_allclose(ours.q_inv_kvar[0, pos], net.sgen.q_mvar.values * 1e3, atol=0.01)
    # Volt-var raises the lowest voltage.
    plain = run_powerflow(f, p0 + p_inv, q0)
    assert ours.powerflow.v_pu.min() > plain.v_pu.min() + 1e-3


def test_ieee1547_default_curve_points() -> None:
    # IEEE 1547-2018 Table 8 (Category B): 0.92 pu -> +44 %, 0.98..1.02 -> 0, 1.08 -> -44 %, flat beyond.
    q = calc_voltvar_q(VOLTVAR_CURVES["B"], [0.85, 0.92, 0.95, 0.98, 1.0, 1.02, 1.05, 1.08, 1.2])
    np.testing.assert_allclose(q, [0.44, 0.44, 0.22, 0, 0, 0, -0.22, -0.44, -0.44], atol=1e-12)
    qa = calc_voltvar_q(VOLTVAR_CURVES["A"], [0.9, 0.95, 1.0, 1.05, 1.1])
    np.testing.assert_allclose(qa, [0.25, 0.125, 0.0, -0.125, -0.25], atol=1e-12)


def test_watt_priority_limits_q_and_var_priority_curtails_p() -> None:
    f = ieee33()
    pos = [17]
    p_inv = np.zeros(f.n_bus)
    s = np.zeros(f.n_bus)
    p_inv[pos] = 95.0
    s[pos] = 100.0
    watt = run_voltvar(f, f.p_load_kw, f.q_load_kvar, p_inv, s, "B", priority="watt")
    assert watt.q_inv_kvar[0, 17] == pytest.approx(math.sqrt(100**2 - 95**2), rel=1e-6)
    var = run_voltvar(f, f.p_load_kw, f.q_load_kvar, p_inv, s, "B", priority="var")
    # At the fixed point Q sits on the curve at the bus's own voltage and P takes what S leaves.
    q = var.q_inv_kvar[0, 17]
    assert q == pytest.approx(100 * calc_voltvar_q(VOLTVAR_CURVES["B"], var.powerflow.v_pu[0, 17]), abs=1e-5)
    assert q > math.sqrt(100**2 - 95**2) + 1  # more Q than watt priority allows ...
    assert var.p_inv_kw[0, 17] == pytest.approx(math.sqrt(100**2 - q**2), abs=1e-5)  # ... at the cost of P


def test_voltvar_bad_input() -> None:
    f = ieee33()
    with pytest.raises(DataError, match="curve"):
        run_voltvar(f, f.p_load_kw, f.q_load_kvar, 0.0, 0.0, "C")
    with pytest.raises(DataError, match="damping"):
        run_voltvar(f, f.p_load_kw, f.q_load_kvar, 0.0, 0.0, "B", damping=0.0)


def test_fused_kernel_agrees_with_outer_fixed_point_over_a_time_series() -> None:
    f = ieee33()
    rng = np.random.default_rng(4)
    scale = rng.uniform(0.5, 1.3, (40, f.n_bus))
    pos = [9, 17, 21, 24, 29, 32]
    p_inv = np.zeros((40, f.n_bus))
    p_inv[:, pos] = rng.uniform(-60, 80, (40, len(pos)))  # charging and discharging
    s = np.zeros(f.n_bus)
    s[pos] = 100.0
    for priority in ("var", "watt"):
        fused = run_voltvar(f, f.p_load_kw * scale, f.q_load_kvar * scale, p_inv, s, "A", priority=priority)
        outer = run_voltvar(
            f, f.p_load_kw * scale, f.q_load_kvar * scale, p_inv, s, "A", priority=priority, method="outer"
        )
        np.testing.assert_allclose(fused.powerflow.v_pu, outer.powerflow.v_pu, atol=1e-8)
        np.testing.assert_allclose(fused.q_inv_kvar, outer.q_inv_kvar, atol=1e-4)
