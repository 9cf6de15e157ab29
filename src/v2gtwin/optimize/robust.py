"""Robust fleet schedule under ellipsoidal uncertainty of the site's net load (load minus solar).

Uncertain net load per period ``xi = mu + L z`` with ``||z||_2 <= Omega`` (``L L^T = Sigma``, Cholesky, lower
triangular). The fleet acts as a virtual battery (net power ``P_t`` within ``[p_min_t, p_max_t]``, stored
energy ``S_t = S_0 + sum_{tau <= t} P_tau dt`` within ``[e_lo_t, e_up_t]``; efficiencies are neglected in this
aggregate, eta ~ 1) and adapts to what it observes with a non-anticipative affine rule ``P_t = pbar_t + Y_t z``
(``Y_t`` uses ``z_1 .. z_t`` only). Every constraint ``a(P)^T z <= b(P)`` holding for the whole ellipsoid becomes
``Omega ||a||_2 <= b`` (Ben-Tal & Nemirovski, "Robust solutions of uncertain linear programs", Operations
Research Letters 25, 1999; Ben-Tal, El Ghaoui & Nemirovski, Robust Optimization, 2009, ch. 2 and 14):

    grid import:  mu_t + pbar_t + Omega || L_t + Y_t || <= cap
    power:        pbar_t + Omega ||Y_t|| <= p_max_t,    pbar_t - Omega ||Y_t|| >= p_min_t
    energy:       S0 + dt sum_{tau<=t} pbar_tau +/- Omega dt || sum_{tau<=t} Y_tau ||  within [e_lo_t, e_up_t]

an SOCP, built with each family as one vectorised cone expression (cvxpy, Clarabel). The expected cost
``sum_t price_t (mu_t + pbar_t) dt`` is minimised (``E[z] = 0``). ``Omega = 0`` and ``Y = 0`` give the
nominal schedule.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from v2gtwin.errors import DataError, InfeasibleError

__all__ = ["RobustResult", "calc_violation_rate", "solve_robust_schedule"]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class RobustResult:
    """A robust (or nominal) schedule.

    Attributes
    ----------
    omega : radius of the uncertainty set [-]. p_nominal_kw : pbar per period [kW]. y : affine rule,
    shape (T, T) [kW per unit of z]. cost : expected cost [currency]. solve_s : solve time [s].
    """

    omega: float
    p_nominal_kw: FloatArray
    y: FloatArray
    cost: float
    solve_s: float


def _check_inputs(
    mu: FloatArray,
    sigma: FloatArray,
    price: FloatArray,
    p_min: FloatArray,
    p_max: FloatArray,
    e_lo: FloatArray,
    e_up: FloatArray,
) -> FloatArray:
    t = mu.size
    if sigma.shape != (t, t) or not np.allclose(sigma, sigma.T, atol=1e-9 * max(1.0, np.abs(sigma).max())):
        raise DataError(f"sigma: need a symmetric ({t}, {t}) covariance matrix")
    try:
        chol = np.linalg.cholesky(sigma + 1e-12 * np.eye(t) * max(1.0, np.trace(sigma) / t))
    except np.linalg.LinAlgError:
        raise DataError("sigma: the covariance matrix is not positive definite") from None
    for name, a in (
        ("price_per_mwh", price),
        ("p_min_kw", p_min),
        ("p_max_kw", p_max),
        ("e_lo_kwh", e_lo),
        ("e_up_kwh", e_up),
    ):
        if a.shape != (t,):
            raise DataError(f"{name}: need {t} values, got shape {a.shape}")
    if np.any(p_min > p_max) or np.any(e_lo > e_up):
        raise DataError("bounds: need p_min_kw <= p_max_kw and e_lo_kwh <= e_up_kwh")
    return np.asarray(chol)


def solve_robust_schedule(
    mu_kw: npt.ArrayLike,
    sigma_kw2: npt.ArrayLike,
    price_per_mwh: npt.ArrayLike,
    import_cap_kw: float,
    p_min_kw: npt.ArrayLike,
    p_max_kw: npt.ArrayLike,
    e_lo_kwh: npt.ArrayLike,
    e_up_kwh: npt.ArrayLike,
    e0_kwh: float,
    dt_h: float,
    omega: float,
    *,
    adaptive: bool = True,
    memory_steps: int | None = None,
) -> RobustResult:
    """Solve the robust schedule (module docstring); ``omega = 0`` gives the nominal one.

    ``memory_steps`` limits the affine rule to the last that many observations (``Y_t`` banded): a smaller,
    faster SOCP (the full rule has T^2/2 coefficients), at most as good as the full one.

    Raises
    ------
    InfeasibleError
        Naming the family that cannot hold for the whole set (import cap, power or energy bounds).
    """
    import cvxpy as cp

    mu = np.asarray(mu_kw, dtype=float)
    sigma = np.asarray(sigma_kw2, dtype=float)
    price = np.asarray(price_per_mwh, dtype=float)
    p_min, p_max = np.asarray(p_min_kw, float), np.asarray(p_max_kw, float)
    e_lo, e_up = np.asarray(e_lo_kwh, float), np.asarray(e_up_kwh, float)
    if not omega >= 0:
        raise DataError(f"omega: must be >= 0, got {omega}")
    chol = _check_inputs(mu, sigma, price, p_min, p_max, e_lo, e_up)
    t0 = time.perf_counter()
    n = mu.size
    lower = np.tril(np.ones((n, n)))
    mask = lower if memory_steps is None else np.tril(np.triu(np.ones((n, n)), -(memory_steps - 1)))
    pbar = cp.Variable(n)
    y = cp.Variable((n, n)) if adaptive and omega > 0 else None
    yy = cp.multiply(y, mask) if y is not None else np.zeros((n, n))
    cum_y = lower @ yy
    s_bar = e0_kwh + dt_h * (lower @ pbar)
    cons = [
        mu + pbar + omega * cp.norm(chol + yy, 2, axis=1) <= import_cap_kw,
        pbar + omega * cp.norm(yy, 2, axis=1) <= p_max,
        pbar - omega * cp.norm(yy, 2, axis=1) >= p_min,
        s_bar + omega * dt_h * cp.norm(cum_y, 2, axis=1) <= e_up,
        s_bar - omega * dt_h * cp.norm(cum_y, 2, axis=1) >= e_lo,
    ]
    prob = cp.Problem(cp.Minimize(price @ (mu + pbar) * dt_h / 1000.0), cons)
    try:
        prob.solve(solver="CLARABEL")
    except cp.error.SolverError as exc:
        raise InfeasibleError(f"robust schedule: solver failed ({exc})") from None
    if prob.status not in ("optimal", "optimal_inaccurate"):
        raise InfeasibleError(
            f"robust schedule is {prob.status} at Omega = {omega:g}: "
            + _diagnose(mu, chol, import_cap_kw, p_min, p_max, e_lo, e_up, e0_kwh, dt_h, omega)
        )
    yv = np.asarray(yy.value, dtype=float) if isinstance(yy, cp.Expression) else np.zeros((n, n))
    return RobustResult(omega, np.asarray(pbar.value, float), yv, float(prob.value), time.perf_counter() - t0)


def _diagnose(
    mu: FloatArray,
    chol: FloatArray,
    cap: float,
    p_min: FloatArray,
    p_max: FloatArray,
    e_lo: FloatArray,
    e_up: FloatArray,
    e0: float,
    dt_h: float,
    omega: float,
) -> str:
    # With the fleet's largest possible help (full discharge) the import cap still fails somewhere?
    worst = mu + p_min + omega * np.linalg.norm(chol, axis=1)
    if np.any(worst > cap + 1e-6):
        t = int(np.argmax(worst - cap))
        return f"the import cap {cap:g} kW cannot hold in period {t} even with the fleet at full discharge"
    return "the fleet's power and energy bounds cannot absorb the uncertainty (power / energy constraints)"


def calc_violation_rate(
    result: RobustResult,
    mu_kw: npt.ArrayLike,
    sigma_kw2: npt.ArrayLike,
    import_cap_kw: float,
    n_samples: int,
    rng: np.random.Generator,
) -> float:
    """Share of sampled days (net load ~ N(mu, Sigma)) on which the grid import exceeds the cap in any period,
    with the fleet following its affine rule ``pbar + Y z``."""
    mu = np.asarray(mu_kw, dtype=float)
    chol = np.linalg.cholesky(np.asarray(sigma_kw2, float) + 1e-12 * np.eye(mu.size))
    z = rng.standard_normal((n_samples, mu.size))
    xi = mu + z @ chol.T
    p = result.p_nominal_kw + z @ result.y.T
    return float(np.mean(np.any(xi + p > import_cap_kw + 1e-9, axis=1)))
