"""Loss sensitivities against finite differences of the exact AC solution; loss-aware dispatch."""

from __future__ import annotations

import numpy as np
import pytest

from v2gtwin.errors import DataError, InfeasibleError
from v2gtwin.grid.feeder import ieee33, run_powerflow, synthetic_feeder
from v2gtwin.grid.losses import calc_loss_sensitivity, run_loss_aware_dispatch


def finite_difference(feeder, p, q, h=1e-2):  # type: ignore[no-untyped-def]
    fd_p = np.zeros(feeder.n_bus)
    fd_q = np.zeros(feeder.n_bus)
    for m in range(1, feeder.n_bus):
        e = np.zeros(feeder.n_bus)
        e[m] = h
        up = run_powerflow(feeder, p + e, q).p_loss_kw[0]
        dn = run_powerflow(feeder, p - e, q).p_loss_kw[0]
        fd_p[m] = (up - dn) / (2 * h)
        up = run_powerflow(feeder, p, q + e).p_loss_kw[0]
        dn = run_powerflow(feeder, p, q - e).p_loss_kw[0]
        fd_q[m] = (up - dn) / (2 * h)
    return fd_p, fd_q


@pytest.mark.parametrize("scale", [0.5, 1.0])
def test_sensitivity_matches_finite_differences_on_ieee33(scale: float) -> None:
    f = ieee33()
    p, q = f.p_load_kw * scale, f.q_load_kvar * scale
    s = calc_loss_sensitivity(f, p, q)
    fd_p, fd_q = finite_difference(f, p, q)
    np.testing.assert_allclose(s.s_p[1:], fd_p[1:], rtol=1e-3)
    np.testing.assert_allclose(s.s_q[1:], fd_q[1:], rtol=1e-3)
    assert s.p_loss_kw == pytest.approx(run_powerflow(f, p, q).p_loss_kw[0])


def test_sensitivity_matches_finite_differences_on_a_random_feeder() -> None:
    f = synthetic_feeder(80, np.random.default_rng(11))
    s = calc_loss_sensitivity(f, f.p_load_kw, f.q_load_kvar)
    fd_p, _ = finite_difference(f, f.p_load_kw, f.q_load_kvar)
    np.testing.assert_allclose(s.s_p[1:], fd_p[1:], rtol=1e-3)


def test_two_bus_closed_form() -> None:
    # One branch r + jx feeding a load P (unity pf): V solves V^4 - (1 - 2 r P) V^2 + (r^2 + x^2) P^2 = 0
    # and losses are r P^2 / V^2; differentiate the closed form numerically at high precision.
    from v2gtwin.grid.feeder import Feeder

    r, x = 0.02, 0.01  # pu on 1 MVA
    f = Feeder(
        "two",
        np.array([-1, 0]),
        np.array([0, r]),
        np.array([0, x]),
        1.0,
        np.zeros(2),
        np.zeros(2),
        np.full(2, np.inf),
    )
    # 1 kV base, 1 MVA: z_base = 1 ohm, so r_ohm = r_pu.

    def loss_pu(p: float) -> float:
        b = 1 - 2 * r * p
        v2 = (b + np.sqrt(b * b - 4 * (r * r + x * x) * p * p)) / 2
        return r * p * p / v2

    p_kw = 300.0
    h = 1e-6
    expected = (loss_pu((p_kw + 1000 * h) / 1000) - loss_pu((p_kw - 1000 * h) / 1000)) / (2 * h) / 1000 * 1000
    s = calc_loss_sensitivity(f, np.array([0.0, p_kw]), np.zeros(2))
    assert s.s_p[1] == pytest.approx(expected, rel=1e-6)
    assert s.p_loss_kw == pytest.approx(loss_pu(0.3) * 1000, rel=1e-9)


def fleet_case(rng: np.random.Generator, n_ev: int = 60):  # type: ignore[no-untyped-def]
    bus = rng.integers(1, 33, n_ev)
    arr = rng.integers(0, 8, n_ev)
    dep = np.minimum(arr + rng.integers(12, 24, n_ev), 24)
    pmax = np.full(n_ev, 7.2)
    need = rng.uniform(0.2, 0.8, n_ev) * pmax * (dep - arr)  # hourly steps
    return bus, arr, dep, need, pmax


def test_every_policy_delivers_every_need_and_loss_aware_loses_least() -> None:
    f = ieee33()
    n_steps = 24
    load = 0.5 + 0.3 * np.sin(np.linspace(0, 2 * np.pi, n_steps))[:, None]
    p, q = f.p_load_kw * load, f.q_load_kvar * load
    bus, arr, dep, need, pmax = fleet_case(np.random.default_rng(3))
    res = {
        pol: run_loss_aware_dispatch(f, p, q, bus, arr, dep, need, pmax, 3600.0, pol, np.random.default_rng(1))
        for pol in ("uniform", "random", "loss_aware")
    }
    for r in res.values():
        delivered = r.p_ev_kw.sum(axis=0)  # hourly steps: kW == kWh
        np.testing.assert_allclose(delivered, need, rtol=1e-9, atol=1e-9)
        assert np.all(r.p_ev_kw <= pmax + 1e-9) and np.all(r.p_ev_kw >= -1e-12)
        t = np.arange(n_steps)[:, None]
        assert np.all(r.p_ev_kw[(t < arr) | (t >= dep)] == 0)
    # Same aggregate energy; the same aggregate power in nearly every step (deadlines can shift a little
    # between the last steps), so the loss difference comes from where the power is drawn.
    agg_la, agg_u = res["loss_aware"].p_ev_kw.sum(1), res["uniform"].p_ev_kw.sum(1)
    assert agg_la.sum() == pytest.approx(agg_u.sum(), rel=1e-12)
    assert np.mean(np.isclose(agg_la, agg_u, rtol=1e-9)) >= 0.9
    assert res["loss_aware"].losses_kwh < res["uniform"].losses_kwh
    assert res["loss_aware"].losses_kwh < res["random"].losses_kwh


def test_dispatch_bad_input() -> None:
    f = ieee33()
    p, q = f.p_load_kw[None, :], f.q_load_kvar[None, :]
    with pytest.raises(InfeasibleError, match=r"EV 0: needs 20\.000 kWh"):
        run_loss_aware_dispatch(f, p, q, [3], [0], [1], [20.0], [7.2], 3600.0)
    with pytest.raises(DataError, match="ev_bus"):
        run_loss_aware_dispatch(f, p, q, [40], [0], [1], [2.0], [7.2], 3600.0)
    with pytest.raises(DataError, match="policy"):
        run_loss_aware_dispatch(f, p, q, [3], [0], [1], [2.0], [7.2], 3600.0, policy="cheapest")  # type: ignore[arg-type]


def test_loss_optimal_dispatch_reaches_the_qp_optimum_of_an_independent_solver() -> None:
    # The same LinDistFlow-loss QP solved by cvxpy + Clarabel (interior point) on a small case.
    import cvxpy as cp

    from v2gtwin.grid.losses import run_loss_optimal_dispatch

    f = ieee33()
    n_steps = 12
    load = (0.4 + 0.3 * np.sin(np.linspace(0, np.pi, n_steps)))[:, None]
    p, q = f.p_load_kw * load, f.q_load_kvar * load
    rng = np.random.default_rng(8)
    n_ev = 12
    bus = rng.integers(1, 33, n_ev)
    arr = rng.integers(0, 4, n_ev)
    dep = np.minimum(arr + rng.integers(5, 9, n_ev), n_steps)
    pmax = np.full(n_ev, 50.0)
    need = rng.uniform(0.3, 0.7, n_ev) * pmax * (dep - arr)
    ours = run_loss_optimal_dispatch(f, p, q, bus, arr, dep, need, pmax, 3600.0, iterations=3000)

    anc = f.ancestors().astype(float)
    r = f.r_pu
    x = cp.Variable((n_steps, n_ev))
    plugged = (np.arange(n_steps)[:, None] >= arr) & (np.arange(n_steps)[:, None] < dep)
    place = np.zeros((n_ev, f.n_bus))
    place[np.arange(n_ev), bus] = 1.0
    flow_p = (p + x @ place) @ anc / 1000.0
    flow_q = q @ anc / 1000.0
    objective = cp.sum(cp.multiply(r, cp.square(flow_p))) + float(np.sum(r * flow_q**2))
    cons = [x >= 0, x <= pmax * plugged, cp.sum(x, axis=0) == need]
    cp.Problem(cp.Minimize(objective), cons).solve(solver="CLARABEL")

    def lindistflow_losses(p_ev: np.ndarray) -> float:
        fp = (p + p_ev @ place) @ anc / 1000.0
        return float(np.sum(r * fp**2) + np.sum(r * flow_q**2))

    assert lindistflow_losses(ours.p_ev_kw) == pytest.approx(lindistflow_losses(x.value), rel=1e-4)
    np.testing.assert_allclose(ours.p_ev_kw.sum(axis=0), need, rtol=1e-9)
    uniform = run_loss_aware_dispatch(f, p, q, bus, arr, dep, need, pmax, 3600.0, "uniform")
    assert ours.losses_kwh < uniform.losses_kwh
