"""Robust schedule: the radius from a violation probability against closed forms and scipy, the causal factor
of a singular covariance, and Monte Carlo violation rates at most the promised probability."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import chi2

from v2gtwin.errors import DataError
from v2gtwin.optimize.robust import (
    calc_causal_factor,
    calc_promised_violation_prob,
    calc_radius,
    calc_violation_rates,
    solve_robust_schedule,
)

from .test_schedule import robust_case


def test_chi2_radius_against_scipy_and_the_two_dof_closed_form() -> None:
    for eps, m in ((0.05, 24), (0.01, 96), (0.2, 1)):
        assert calc_radius(eps, m, "chi2") == pytest.approx(math.sqrt(chi2.ppf(1 - eps, m)), rel=1e-12)
    # Two degrees of freedom: P(||z||^2 > r^2) = exp(-r^2 / 2), so Omega = sqrt(-2 ln eps); eps = 0.05 -> 2.4477.
    assert calc_radius(0.05, 2, "chi2") == pytest.approx(math.sqrt(-2 * math.log(0.05)), rel=1e-12)
    assert calc_promised_violation_prob(math.sqrt(-2 * math.log(0.05)), 2, "chi2") == pytest.approx(0.05)


def test_cantelli_radius_closed_form() -> None:
    # Omega = sqrt((1 - eps) / eps): eps = 0.2 -> sqrt(4) = 2; eps = 0.1 -> 3; promised 1 / (1 + Omega^2).
    assert calc_radius(0.2, 7, "cantelli") == pytest.approx(2.0, rel=1e-12)
    assert calc_radius(0.1, 1, "cantelli") == pytest.approx(3.0, rel=1e-12)
    assert calc_promised_violation_prob(3.0, 5, "cantelli") == pytest.approx(0.1)
    assert calc_promised_violation_prob(0.0, 5, "chi2") == 1.0
    for bad in (0.0, 1.0, -0.1, float("nan")):
        with pytest.raises(DataError, match="violation_prob"):
            calc_radius(bad, 3)
    with pytest.raises(DataError, match="radius bound"):
        calc_radius(0.1, 3, "gauss")  # type: ignore[arg-type]


def test_causal_factor_of_full_and_singular_covariances() -> None:
    t = np.arange(6)
    sigma = 50.0 * 0.7 ** np.abs(t[:, None] - t[None, :]) + np.diag(np.linspace(1, 2, 6))
    f, reveal = calc_causal_factor(sigma)
    np.testing.assert_allclose(f, np.linalg.cholesky(sigma), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(reveal, t)
    # Hourly values held over two steps: Sigma = B S B^T has rank 3, z_j known from the first step of hour j.
    hold = np.kron(np.eye(3), np.ones((2, 1)))
    s3 = np.array([[4.0, 1.0, 0.5], [1.0, 3.0, 1.0], [0.5, 1.0, 2.0]])
    f, reveal = calc_causal_factor(hold @ s3 @ hold.T)
    assert f.shape == (6, 3)
    np.testing.assert_array_equal(reveal, [0, 2, 4])
    np.testing.assert_allclose(f @ f.T, hold @ s3 @ hold.T, atol=1e-12)
    assert np.all(f[np.arange(6)[:, None] < reveal[None, :]] == 0.0)
    with pytest.raises(DataError, match="not positive semidefinite"):
        calc_causal_factor(-sigma)
    with pytest.raises(DataError, match="symmetric"):
        calc_causal_factor(sigma + np.triu(np.ones((6, 6)), 1))


def _rates(case: dict, r, z):  # type: ignore[no-untyped-def]
    keys = ("mu_kw", "import_cap_kw", "p_min_kw", "p_max_kw", "e_lo_kwh", "e_up_kwh", "e0_kwh", "dt_h")
    return calc_violation_rates(r, *(case[k] for k in keys), z)


@pytest.mark.parametrize(("bound", "eps"), [("chi2", 0.2), ("cantelli", 0.1)])
def test_monte_carlo_violation_rate_is_at_most_the_promise(bound: str, eps: float) -> None:
    case = robust_case()
    case.update(import_cap_kw=1250.0, p_min_kw=np.full(12, -400.0), p_max_kw=np.full(12, 400.0))
    case["e_up_kwh"] = np.full(12, 1500.0)
    m = case["mu_kw"].size
    omega = calc_radius(eps, m, bound)  # type: ignore[arg-type]
    r = solve_robust_schedule(**case, omega=omega)
    n = 40_000
    z = np.random.default_rng(3).standard_normal((n, r.n_dims))
    rates = _rates(case, r, z)
    measured = rates.any_day if bound == "chi2" else rates.max_constraint
    # The promise under Gaussian errors, with three standard errors of the Monte Carlo estimate.
    assert measured <= eps + 3 * math.sqrt(eps * (1 - eps) / n)
    # Robustness is what keeps the rate down here: the nominal schedule violates on about a fifth of the days.
    nominal = _rates(case, solve_robust_schedule(**case, omega=0.0), z)
    assert (nominal.any_day if bound == "chi2" else nominal.max_constraint) > measured + 0.1


def test_affine_rule_is_non_anticipative_under_a_singular_covariance() -> None:
    case = robust_case(12)
    hold = np.kron(np.eye(6), np.ones((2, 1)))
    k = np.arange(6)
    case["sigma_kw2"] = hold @ (3600.0 * 0.8 ** np.abs(k[:, None] - k[None, :])) @ hold.T
    r = solve_robust_schedule(**case, omega=1.5)
    _, reveal = calc_causal_factor(case["sigma_kw2"])
    assert r.n_dims == 6
    assert np.all(np.abs(r.y[np.arange(12)[:, None] < reveal[None, :]]) == 0.0)
    # Every day inside the ellipsoid keeps every constraint: sample the boundary ||z|| = Omega.
    z = np.random.default_rng(4).standard_normal((2000, 6))
    z *= 1.5 / np.linalg.norm(z, axis=1, keepdims=True)
    assert _rates(case, r, z).any_day == 0.0
