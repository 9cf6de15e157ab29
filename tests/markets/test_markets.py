"""Markets: hand-solvable clearing, welfare by direct integration, Stackelberg against brute force and a KKT
(MPEC) solve, newsvendor against Monte Carlo."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, optimize

from v2gtwin.errors import DataError, InfeasibleError
from v2gtwin.markets.newsvendor import Availability, calc_expected_profit, solve_newsvendor
from v2gtwin.markets.stackelberg import calc_best_response, calc_leader_profit, solve_stackelberg
from v2gtwin.markets.welfare import Demand, SupplyStack, run_market_comparison, run_rtp, run_tou


def test_one_period_linear_by_hand() -> None:
    # p = 100 - 0.01 q (q in kW); generators 3000 kW at 20, 4000 kW at 60 /MWh. Demand at 60 is 4000 kW:
    # the second unit is marginal with 1000 kW, price 60. CS = 0.5 (100 - 60) 4 MWh = 80; PS = (60-20) 3 = 120.
    d = Demand("linear", np.array([100.0]), np.array([0.01]))
    s = SupplyStack(np.array([3000.0, 4000.0]), np.array([20.0, 60.0]))
    r = run_rtp(d, s)
    assert r.q_kw[0] == pytest.approx(4000.0, abs=1e-3)
    assert r.price_per_mwh[0] == pytest.approx(60.0, abs=1e-4)
    assert r.consumer_surplus == pytest.approx(80.0, abs=1e-4)
    assert r.producer_surplus == pytest.approx(120.0, abs=1e-4)


def test_welfare_equals_direct_integration() -> None:
    rng = np.random.default_rng(2)
    n = 6
    d = Demand("linear", rng.uniform(90, 150, n), rng.uniform(0.008, 0.012, n))
    s = SupplyStack(np.array([4000.0, 3000.0, 3000.0]), np.array([20.0, 50.0, 120.0]), 1000.0, 2500.0, 40.0)
    for r in (run_rtp(d, s), run_tou(d, s, [0, 0, 0, 1, 1, 1])):
        gross = (
            sum(
                integrate.quad(lambda x, t=t: d.a_per_mwh[t] - d.b_per_mwh_per_kw[t] * x, 0, r.q_kw[t])[0]
                for t in range(n)
            )
            / 1000.0
        )
        cost = (r.gen_kw @ s.cost_per_mwh).sum() / 1000.0 + 40.0 * r.v2g_kw.sum() / 1000.0
        assert r.welfare == pytest.approx(gross - cost, rel=1e-6)
        assert r.v2g_kw.sum() <= 2500.0 + 1e-6


def test_rtp_beats_tou_and_v2g_energy_budget_couples_periods() -> None:
    n = 24
    d = Demand("linear", np.linspace(80, 160, n), np.full(n, 0.01))
    s = SupplyStack(np.array([4000.0, 3000.0, 3000.0]), np.array([20.0, 50.0, 120.0]), 1500.0, 4000.0, 40.0)
    c = run_market_comparison(d, s, np.array([0] * 16 + [1] * 8))
    assert c["deadweight_loss"] > 0
    # The budget binds and the aggregator discharges where the price is highest.
    v = c["rtp"].v2g_kw
    assert v.sum() == pytest.approx(4000.0, rel=1e-5)
    assert c["rtp"].price_per_mwh[v > 1].min() >= c["rtp"].price_per_mwh[v < 1e-3].max() - 1e-3


def test_constant_elasticity_demand_follows_its_curve() -> None:
    d = Demand(
        "constant_elasticity", scale_kw=np.array([5000.0, 6000.0, 8000.0, 9000.0]), elasticity=-0.3, p_ref_per_mwh=60.0
    )
    s = SupplyStack(np.array([4000.0, 3000.0, 3000.0]), np.array([20.0, 50.0, 120.0]))
    r = run_rtp(d, s)
    # Where the price is not at a supply step, consumption equals demand at that price.
    interior = ~np.isin(np.round(r.price_per_mwh, 3), [20.0, 50.0, 120.0])
    np.testing.assert_allclose(d.quantity_kw(r.price_per_mwh)[interior], r.q_kw[interior], rtol=1e-4)


def followers(n: int = 40, seed: int = 0):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    return rng.uniform(0.2, 0.6, n), rng.uniform(0.005, 0.02, n), rng.uniform(10, 40, n)


def test_stackelberg_closed_form_without_limits() -> None:
    a = np.array([0.5, 0.4, 0.6])
    b = np.array([0.01, 0.02, 0.015])
    r = solve_stackelberg(a, b, np.full(3, 1e6), 0.1)
    s1, s0 = (1 / b).sum(), (a / b).sum()
    # Interior optimum with all followers buying: (s0 + c s1) / (2 s1), if below min(alpha).
    assert r.price_per_kwh == pytest.approx((s0 + 0.1 * s1) / (2 * s1), rel=1e-12)


@pytest.mark.parametrize("x_cap", [np.inf, 600.0, 300.0])
def test_stackelberg_matches_brute_force_grid(x_cap: float) -> None:
    a, b, xm = followers()
    r = solve_stackelberg(a, b, xm, 0.1, x_cap=x_cap)
    grid = np.linspace(0.0, 0.6, 600_001)
    prof = calc_leader_profit(grid, a, b, xm, 0.1)
    ok = calc_best_response(grid, a, b, xm).sum(axis=1) <= x_cap
    assert r.profit >= prof[ok].max() - 1e-9
    assert r.price_per_kwh == pytest.approx(grid[ok][np.argmax(prof[ok])], abs=2e-6)


def test_stackelberg_against_a_kkt_formulation() -> None:
    # Bilevel -> single level: each follower's KKT conditions (stationarity alpha - beta x - pi - mu + nu = 0,
    # 0 <= x <= x_max, complementarity mu x_max-gap and nu x) smoothed, solved by SLSQP from many starts.
    a, b, xm = followers(8, seed=3)
    c = 0.1
    r = solve_stackelberg(a, b, xm, c)
    n = a.size

    def unpack(z):  # type: ignore[no-untyped-def]
        return z[0], z[1 : n + 1], z[n + 1 : 2 * n + 1], z[2 * n + 1 :]

    cons = [
        {"type": "eq", "fun": lambda z: a - b * unpack(z)[1] - unpack(z)[0] - unpack(z)[2] + unpack(z)[3]},
        {"type": "eq", "fun": lambda z: unpack(z)[2] * (xm - unpack(z)[1])},
        {"type": "eq", "fun": lambda z: unpack(z)[3] * unpack(z)[1]},
    ]
    bounds = [(0, 1)] + [(0, x) for x in xm] + [(0, None)] * (2 * n)
    best = -np.inf
    rng = np.random.default_rng(4)
    for _ in range(30):
        z0 = np.concatenate([[rng.uniform(0.1, 0.6)], rng.uniform(0, 1, n) * xm, np.zeros(2 * n)])
        sol = optimize.minimize(
            lambda z: -(unpack(z)[0] - c) * unpack(z)[1].sum(),
            z0,
            method="SLSQP",
            bounds=bounds,
            constraints=cons,
            options={"maxiter": 500, "ftol": 1e-12},
        )
        if sol.success:
            best = max(best, -sol.fun)
    assert best == pytest.approx(r.profit, rel=1e-5)


def test_stackelberg_bad_input() -> None:
    a, b, xm = followers(3)
    with pytest.raises(DataError, match="beta"):
        solve_stackelberg(a, -b, xm, 0.1)
    with pytest.raises(InfeasibleError, match="x_cap"):
        solve_stackelberg(a, b, xm, 0.1, x_cap=1.0, price_max=0.05)


@pytest.mark.parametrize("kind", ["normal", "lognormal", "beta"])
def test_newsvendor_critical_fractile_maximises_monte_carlo_profit(kind: str) -> None:
    av = Availability(kind, mean_kw=1000.0, sd_kw=200.0, scale_kw=2000.0)  # type: ignore[arg-type]
    res = solve_newsvendor(av, 30.0, 60.0)
    assert res.fractile == pytest.approx(1 / 3)
    assert float(av.dist().cdf(res.bid_kw)) == pytest.approx(1 / 3, rel=1e-9)
    bids = np.linspace(res.bid_kw - 300, res.bid_kw + 300, 61)
    mc = calc_expected_profit(bids, av, 30.0, 60.0, n_mc=400_000, rng=np.random.default_rng(5))
    assert abs(bids[np.argmax(mc)] - res.bid_kw) <= 30.0
    exact = calc_expected_profit(bids, av, 30.0, 60.0)
    np.testing.assert_allclose(mc, exact, rtol=5e-3)


def test_newsvendor_empirical_and_bad_input() -> None:
    samples = np.arange(1.0, 101.0)
    r = solve_newsvendor(Availability("empirical", samples_kw=samples), 1.0, 3.0)  # fractile 0.25 -> 25
    assert r.bid_kw == 25.0
    with pytest.raises(DataError, match="penalty"):
        solve_newsvendor(Availability("empirical", samples_kw=samples), 1.0, 0.0)
    with pytest.raises(DataError, match="price"):
        solve_newsvendor(Availability("empirical", samples_kw=samples), -1.0, 1.0)
