"""Markets: hand-solvable clearing (positive and negative prices), welfare by direct integration, Stackelberg
(charging and discharging) against closed forms, brute force written here and a KKT (MPEC) solve, newsvendor
against Monte Carlo, availability specs."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, optimize

from v2gtwin.errors import DataError, InfeasibleError
from v2gtwin.markets.newsvendor import Availability, calc_expected_profit, parse_availability, solve_newsvendor
from v2gtwin.markets.stackelberg import solve_stackelberg, solve_stackelberg_discharge
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


def test_negative_price_stays_negative() -> None:
    # p = 10 - 0.01 q; a 5000 kW unit bids -20/MWh (e.g. a subsidised plant), a second one 60. At -20 demand is
    # (10 + 20) / 0.01 = 3000 kW < 5000: the price is -20, q = 3000 kW, consumer surplus 0.5 x 30 x 3 MWh = 45,
    # producer surplus 0 (price = its cost). TOU at the same block price clears the same way.
    d = Demand("linear", np.array([10.0]), np.array([0.01]))
    s = SupplyStack(np.array([5000.0, 4000.0]), np.array([-20.0, 60.0]))
    r = run_rtp(d, s)
    assert r.price_per_mwh[0] == pytest.approx(-20.0, abs=1e-5)
    assert r.q_kw[0] == pytest.approx(3000.0, abs=1e-3)
    assert r.consumer_surplus == pytest.approx(45.0, abs=1e-5)
    assert r.producer_surplus == pytest.approx(0.0, abs=1e-5)
    t = run_tou(d, s, [0], block_price_per_mwh=[-20.0])
    assert t.system_price_per_mwh[0] == pytest.approx(-20.0, abs=1e-5)
    ce = Demand("constant_elasticity", scale_kw=np.array([1000.0]), elasticity=-0.3, p_ref_per_mwh=50.0)
    with pytest.raises(DataError, match="prices > 0"):
        ce.quantity_kw(np.array([-5.0]))


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


def brute_force_leader(
    grid: np.ndarray, quantity: Callable[[float], np.ndarray], margin: Callable[[float], float], cap: float
) -> tuple[float, float]:
    """Best (price, profit) on a price grid, written here from the follower problem, price by price: each
    follower's best answer ``argmax_x u(x) - pi x`` on its box (``quantity``), the leader's margin per kWh."""
    best = (np.nan, -np.inf)
    for pi in grid:
        x = quantity(pi)
        total = float(sum(x))
        if total <= cap and margin(pi) * total > best[1]:
            best = (float(pi), margin(pi) * total)
    return best


def charging_answer(a: np.ndarray, b: np.ndarray, xm: np.ndarray) -> Callable[[float], np.ndarray]:
    # max_x a x - b x^2 / 2 - pi x on [0, xm]: stationary point (a - pi) / b, projected onto the box (concave).
    def q(pi: float) -> np.ndarray:
        return np.array([min(max((ai - pi) / bi, 0.0), xi) for ai, bi, xi in zip(a, b, xm, strict=True)])

    return q


@pytest.mark.parametrize("x_cap", [np.inf, 600.0, 300.0])
def test_stackelberg_matches_brute_force_grid(x_cap: float) -> None:
    a, b, xm = followers()
    r = solve_stackelberg(a, b, xm, 0.1, x_cap=x_cap)
    p, v = brute_force_leader(np.linspace(0.0, 0.6, 60_001), charging_answer(a, b, xm), lambda pi: pi - 0.1, x_cap)
    # Grid step 1e-5: the grid optimum is at most (energy x step) below the exact one.
    assert v - 1e-9 <= r.profit <= v + xm.sum() * 1e-5
    assert r.price_per_kwh == pytest.approx(p, abs=2e-5)


def test_stackelberg_unlimited_followers() -> None:
    # x_max = inf for every follower: the closed form (s0 + c s1) / (2 s1) with s0 = sum a/b, s1 = sum 1/b, and a
    # finite profit; one unlimited follower among limited ones against brute force.
    a, b = np.array([0.5, 0.4, 0.6]), np.array([0.01, 0.02, 0.015])
    r = solve_stackelberg(a, b, np.full(3, np.inf), 0.1)
    s1, s0 = (1 / b).sum(), (a / b).sum()
    p = (s0 + 0.1 * s1) / (2 * s1)  # 0.30385 < min(a): every follower buys
    assert r.price_per_kwh == pytest.approx(p, rel=1e-12)
    assert r.profit == pytest.approx((p - 0.1) * (s0 - p * s1), rel=1e-12)
    assert np.isfinite(r.x_kwh).all() and not r.cap_binding
    xm = np.array([np.inf, 3.0, 5.0])
    r = solve_stackelberg(a, b, xm, 0.1, x_cap=25.0)
    _, v = brute_force_leader(np.linspace(0.0, 0.6, 60_001), charging_answer(a, b, xm), lambda pi: pi - 0.1, 25.0)
    assert v - 1e-9 <= r.profit <= v + 25.0 * 1e-5
    with pytest.raises(DataError, match="x_max"):
        solve_stackelberg(a, b, np.array([np.nan, 1.0, 1.0]), 0.1)


def discharge_answer(r: np.ndarray, g: np.ndarray, ym: np.ndarray) -> Callable[[float], np.ndarray]:
    # max_y pi y - r y - g y^2 / 2 on [0, ym] (r includes degradation): (pi - r) / g projected onto the box.
    def q(pi: float) -> np.ndarray:
        return np.array([min(max((pi - ri) / gi, 0.0), yi) for ri, gi, yi in zip(r, g, ym, strict=True)])

    return q


def test_stackelberg_discharge_closed_form() -> None:
    # No limits, every follower sells: max (v - pi)(pi S1 - S0) with S1 = sum 1/g, S0 = sum (r + d)/g gives
    # pi* = (v S1 + S0) / (2 S1). r = (0.05, 0.08, 0.10), d = 0.03, g = (0.01, 0.02, 0.015), v = 0.4:
    # S1 = 100 + 50 + 66.667 = 216.667, S0 = 8 + 5.5 + 8.6667 = 22.1667, pi* = (86.667 + 22.1667) / 433.33 = 0.25115.
    r, g = np.array([0.05, 0.08, 0.10]), np.array([0.01, 0.02, 0.015])
    res = solve_stackelberg_discharge(r, 0.03, g, np.full(3, np.inf), 0.4)
    assert res.price_per_kwh == pytest.approx(108.8333333 / 433.3333333, rel=1e-8)
    assert res.direction == "discharge"
    # Energy sold (pi - r - d) / g, each: (0.25115 - 0.08)/0.01 + (0.25115 - 0.11)/0.02 + (0.25115 - 0.13)/0.015.
    pi = res.price_per_kwh
    y = (pi - 0.08) / 0.01 + (pi - 0.11) / 0.02 + (pi - 0.13) / 0.015
    assert res.energy_kwh == pytest.approx(y, rel=1e-10)
    assert res.profit == pytest.approx((0.4 - pi) * y, rel=1e-10)


@pytest.mark.parametrize("y_cap", [np.inf, 200.0, 80.0])
def test_stackelberg_discharge_matches_brute_force(y_cap: float) -> None:
    rng = np.random.default_rng(9)
    n = 30
    r, d = rng.uniform(0.02, 0.12, n), rng.uniform(0.0, 0.05, n)
    g, ym = rng.uniform(0.005, 0.03, n), rng.uniform(5, 25, n)
    res = solve_stackelberg_discharge(r, d, g, ym, 0.25, y_cap_kwh=y_cap)
    p, v = brute_force_leader(
        np.linspace(0.0, 0.25, 25_001), discharge_answer(r + d, g, ym), lambda pi: 0.25 - pi, y_cap
    )
    assert v - 1e-9 <= res.profit <= v + ym.sum() * 1e-5
    assert res.price_per_kwh == pytest.approx(p, abs=2e-5)
    assert res.energy_kwh <= y_cap + 1e-9
    assert res.cap_binding == (np.isfinite(y_cap) and res.energy_kwh >= y_cap - 1e-9)


def test_stackelberg_discharge_bad_input() -> None:
    r, g, ym = np.array([0.05, 0.08]), np.array([0.01, 0.02]), np.array([10.0, 10.0])
    with pytest.raises(DataError, match="resale_per_kwh"):
        solve_stackelberg_discharge(r, 0.03, g, ym, 0.0)
    with pytest.raises(DataError, match="degradation_per_kwh"):
        solve_stackelberg_discharge(r, -0.01, g, ym, 0.3)
    with pytest.raises(DataError, match="gamma"):
        solve_stackelberg_discharge(r, 0.03, -g, ym, 0.3)


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


@pytest.mark.parametrize(
    ("spec", "mean", "sd"),
    [("normal:1500,300", 1500.0, 300.0), ("lognormal:1200, 250", 1200.0, 250.0), ("beta:800,150,2000", 800.0, 150.0)],
)
def test_parse_availability_gives_the_named_moments(spec: str, mean: float, sd: float) -> None:
    d = parse_availability(spec).dist()
    assert d.mean() == pytest.approx(mean, rel=1e-9) and d.std() == pytest.approx(sd, rel=1e-9)


def test_parse_availability_empirical_and_malformed_specs() -> None:
    av = parse_availability("empirical:10,20,30,40")
    # Fractile 1/3 of four samples: the ceil(4/3) = 2nd smallest, 20 kW.
    assert solve_newsvendor(av, 1.0, 2.0).bid_kw == 20.0
    for bad, words in [
        ("normal", "expected normal:MEAN,SD"),
        ("gauss:1,2", "expected normal:MEAN,SD"),
        ("normal:1500", "normal takes 2 values"),
        ("normal:1500,x", "must be numbers"),
        ("normal:nan,1", "finite"),
        ("normal:-5,1", "mean_kw and sd_kw must be finite and > 0"),
        ("beta:1500,300,1000", "scale_kw > mean_kw"),
        ("empirical:5", "at least 2 samples"),
        ("empirical:5,-1", "each >= 0 kW"),
    ]:
        with pytest.raises(DataError, match=words) as exc:
            parse_availability(bad)
        assert str(exc.value).startswith(f"--availability = {bad!r}") and "\n" not in str(exc.value)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_parse_availability_fuzz(text: str) -> None:
    # Untrusted input: a distribution or a DataError, nothing else.
    try:
        av = parse_availability(text)
    except DataError:
        return
    assert isinstance(av, Availability)


def test_newsvendor_empirical_and_bad_input() -> None:
    samples = np.arange(1.0, 101.0)
    r = solve_newsvendor(Availability("empirical", samples_kw=samples), 1.0, 3.0)  # fractile 0.25 -> 25
    assert r.bid_kw == 25.0
    with pytest.raises(DataError, match="penalty"):
        solve_newsvendor(Availability("empirical", samples_kw=samples), 1.0, 0.0)
    with pytest.raises(DataError, match="price"):
        solve_newsvendor(Availability("empirical", samples_kw=samples), -1.0, 1.0)
