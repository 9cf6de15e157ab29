"""Robust fleet schedule under ellipsoidal uncertainty of the site's net load (load minus solar).

Uncertain net load per period ``xi = mu + L z`` with ``||z||_2 <= Omega``, ``L L^T = Sigma``. ``L`` is the
causal (time-ordered) Cholesky factor of :func:`calc_causal_factor`: lower triangular, with a column only for
the periods that bring new uncertainty, so ``z`` has as many dimensions as ``Sigma`` has rank and ``z_j`` is
known from its period ``reveal_step_j`` on. The fleet acts as a virtual battery (net power ``P_t`` within
``[p_min_t, p_max_t]``, stored energy ``S_t = S_0 + sum_{tau <= t} P_tau dt`` within ``[e_lo_t, e_up_t]``;
efficiencies are neglected in this aggregate, eta ~ 1) and adapts to what it observes with a non-anticipative
affine rule ``P_t = pbar_t + Y_t z`` (``Y_t`` uses only the ``z_j`` revealed by period t). Every constraint
``a(P)^T z <= b(P)`` holding for the whole ellipsoid becomes ``Omega ||a||_2 <= b`` (Ben-Tal & Nemirovski,
"Robust solutions of uncertain linear programs", Operations Research Letters 25, 1999; Ben-Tal, El Ghaoui &
Nemirovski, Robust Optimization, 2009, ch. 2 and 14):

    grid import:  mu_t + pbar_t + Omega || L_t + Y_t || <= cap
    power:        pbar_t + Omega ||Y_t|| <= p_max_t,    pbar_t - Omega ||Y_t|| >= p_min_t
    energy:       S0 + dt sum_{tau<=t} pbar_tau +/- Omega dt || sum_{tau<=t} Y_tau ||  within [e_lo_t, e_up_t]

an SOCP, built with each family as one vectorised cone expression (cvxpy, Clarabel). The expected cost
``sum_t price_t (mu_t + pbar_t) dt`` is minimised (``E[z] = 0``). ``Omega = 0`` and ``Y = 0`` give the
nominal schedule.

The radius from a violation probability ``epsilon`` (:data:`RADIUS_BOUNDS`):

* ``"chi2"`` (Gaussian, the whole day): for ``xi ~ N(mu, Sigma)``, ``||z||^2`` is chi-square with ``m``
  (the rank of Sigma) degrees of freedom, so ``Omega = sqrt(F^-1_chi2_m(1 - epsilon))`` puts the realised
  ``z`` inside the ellipsoid — and every constraint of the day at once holds — with probability
  ``>= 1 - epsilon``.
* ``"cantelli"`` (any distribution with this mean and covariance, each constraint on its own):
  ``a^T z`` has mean 0 and variance ``||a||^2``; with ``b >= Omega ||a||`` the one-sided Chebyshev (Cantelli)
  inequality gives ``P(a^T z > b) <= 1 / (1 + Omega^2)``, so ``Omega = sqrt((1 - epsilon) / epsilon)``
  (El Ghaoui, Oks & Oustry, "Worst-case value-at-risk and robust portfolio optimization: a conic programming
  approach", Operations Research 51(4), 2003; Calafiore & El Ghaoui, "On distributionally robust
  chance-constrained linear programs", J. Optim. Theory Appl. 130(1), 2006).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from v2gtwin.errors import DataError, InfeasibleError

__all__ = [
    "RADIUS_BOUNDS",
    "RadiusBound",
    "RobustResult",
    "ViolationRates",
    "calc_causal_factor",
    "calc_promised_violation_prob",
    "calc_radius",
    "calc_standardised_errors",
    "calc_violation_rate",
    "calc_violation_rates",
    "solve_robust_schedule",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

#: ``solver`` of every robust result.
SOLVER_ROBUST = "clarabel"

RadiusBound = Literal["chi2", "cantelli"]


def _radius_chi2(violation_prob: float, n_dims: int) -> float:
    from scipy.stats import chi2

    return float(math.sqrt(chi2.ppf(1.0 - violation_prob, n_dims)))


def _prob_chi2(omega: float, n_dims: int) -> float:
    from scipy.stats import chi2

    return float(chi2.sf(omega**2, n_dims))


def _radius_cantelli(violation_prob: float, n_dims: int) -> float:
    return math.sqrt((1.0 - violation_prob) / violation_prob)


def _prob_cantelli(omega: float, n_dims: int) -> float:
    return 1.0 / (1.0 + omega**2)


#: ``{bound: (radius from violation probability, violation probability promised at a radius, the event)}``;
#: both functions take ``(value, n_dims)``. See the module docstring for the bounds and their sources.
RADIUS_BOUNDS: dict[str, tuple[Callable[[float, int], float], Callable[[float, int], float], str]] = {
    "chi2": (_radius_chi2, _prob_chi2, "any constraint of the day, Gaussian errors"),
    "cantelli": (_radius_cantelli, _prob_cantelli, "each constraint on its own, any distribution"),
}


def _check_bound(bound: str) -> None:
    if bound not in RADIUS_BOUNDS:
        raise DataError(f"radius bound: must be one of {', '.join(RADIUS_BOUNDS)}, got {bound!r}")


def calc_radius(violation_prob: float, n_dims: int, bound: RadiusBound = "chi2") -> float:
    """Radius Omega [-] of the uncertainty ellipsoid that keeps the violation probability at most
    ``violation_prob`` [-] under ``bound`` (module docstring); ``n_dims`` is the rank of Sigma [-]."""
    _check_bound(bound)
    if not 0.0 < violation_prob < 1.0:
        raise DataError(f"violation_prob: must be in (0, 1), got {violation_prob!r}")
    if n_dims < 1:
        raise DataError(f"n_dims: must be >= 1, got {n_dims}")
    return RADIUS_BOUNDS[bound][0](violation_prob, n_dims)


def calc_promised_violation_prob(omega: float, n_dims: int, bound: RadiusBound = "chi2") -> float:
    """The violation probability [-] that ``bound`` promises at radius ``omega`` (1 for Omega = 0: no promise)."""
    _check_bound(bound)
    if not omega >= 0:
        raise DataError(f"omega: must be >= 0, got {omega}")
    return RADIUS_BOUNDS[bound][1](omega, max(n_dims, 1))


def calc_causal_factor(sigma_kw2: npt.ArrayLike, rel_tol: float = 1e-9) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """Time-ordered Cholesky factor of a positive semidefinite covariance.

    Returns ``(L, reveal_step)``: ``L`` of shape (T, m) [kW] with ``L L^T = Sigma`` and ``L[t, j] = 0`` for
    ``t < reveal_step[j]``; a period whose variance given the earlier periods is at most ``rel_tol`` x the
    largest variance brings no new dimension (for a positive definite Sigma, m = T and L is its Cholesky
    factor). The factor is what makes the affine rule non-anticipative when Sigma is singular (e.g. hourly
    weather held over 15-minute steps).

    Raises
    ------
    DataError
        Sigma not square and symmetric, or not positive semidefinite (a negative conditional variance).
    """
    sigma = np.asarray(sigma_kw2, dtype=float)
    t_n = sigma.shape[0] if sigma.ndim == 2 else -1
    if sigma.shape != (t_n, t_n) or not np.isfinite(sigma).all():
        raise DataError(f"sigma: need a finite square covariance matrix, got shape {sigma.shape}")
    scale = max(float(np.abs(sigma).max()), 1e-300)
    if not np.allclose(sigma, sigma.T, atol=1e-9 * scale):
        raise DataError(f"sigma: need a symmetric ({t_n}, {t_n}) covariance matrix")
    tol = rel_tol * max(float(np.diag(sigma).max()), 0.0)
    factor = np.zeros((t_n, t_n))
    reveal = np.zeros(t_n, dtype=np.int64)
    m = 0
    for t in range(t_n):
        row = factor[t, :m]
        resid = sigma[t, t] - float(row @ row)
        if resid < -max(tol, 1e-12 * scale):
            raise DataError(f"sigma: the covariance matrix is not positive semidefinite (period {t})")
        if resid <= tol or resid <= 0.0:
            continue
        piv = math.sqrt(resid)
        factor[t:, m] = (sigma[t:, t] - factor[t:, :m] @ row) / piv
        reveal[m] = t
        m += 1
    return factor[:, :m], reveal[:m]


@dataclass(frozen=True)
class RobustResult:
    """A robust (or nominal) schedule.

    Attributes
    ----------
    omega : radius of the uncertainty set [-]. p_nominal_kw : pbar per period [kW]. y : affine rule,
    shape (T, m) [kW per unit of z]. factor_kw : the causal factor L of Sigma, shape (T, m) [kW].
    cost_per_horizon : expected cost over the horizon [currency]. solve_s : solve time [s].
    solver : the solver that answered. solver_note : its status ("optimal", or "optimal_inaccurate" when
    Clarabel stopped at its reduced accuracy). n_dims : m, the dimensions of z (rank of Sigma) [-].
    """

    omega: float
    p_nominal_kw: FloatArray
    y: FloatArray
    factor_kw: FloatArray
    cost_per_horizon: float
    solve_s: float
    solver: str = SOLVER_ROBUST
    solver_note: str = "optimal"

    @property
    def n_dims(self) -> int:
        """Dimensions of the uncertainty z [-]."""
        return int(self.factor_kw.shape[1])


def _check_inputs(
    mu: FloatArray,
    sigma: FloatArray,
    price: FloatArray,
    p_min: FloatArray,
    p_max: FloatArray,
    e_lo: FloatArray,
    e_up: FloatArray,
) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    t = mu.size
    if sigma.shape != (t, t):
        raise DataError(f"sigma: need a ({t}, {t}) covariance matrix, got shape {sigma.shape}")
    if not np.isfinite(mu).all():
        raise DataError("mu_kw: values must be finite")
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
    factor, reveal = calc_causal_factor(sigma)
    return factor, reveal


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
    chol, reveal = _check_inputs(mu, sigma, price, p_min, p_max, e_lo, e_up)
    t0 = time.perf_counter()
    n, m = mu.size, chol.shape[1]
    lower = np.tril(np.ones((n, n)))
    # Y[t, j] may be non-zero once z_j is revealed (and, with a memory, for memory_steps periods after that).
    lag = np.arange(n)[:, None] - reveal[None, :]
    mask = (lag >= 0) if memory_steps is None else ((lag >= 0) & (lag < memory_steps))
    pbar = cp.Variable(n)
    y = cp.Variable((n, m)) if adaptive and omega > 0 and m > 0 else None
    yy = cp.multiply(y, mask.astype(float)) if y is not None else np.zeros((n, m))
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
    yv = np.asarray(yy.value, dtype=float) if isinstance(yy, cp.Expression) else np.zeros((n, m))
    if prob.status != "optimal":
        logger.warning("robust schedule at Omega = %g: Clarabel returned %s", omega, prob.status)
    return RobustResult(
        omega,
        np.asarray(pbar.value, float),
        yv,
        chol,
        float(prob.value),
        time.perf_counter() - t0,
        solver_note=str(prob.status),
    )


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
    with the fleet following its affine rule ``pbar + Y z``. ``sigma_kw2`` must be the Sigma the schedule was
    solved with (its causal factor is the result's ``factor_kw``)."""
    mu = np.asarray(mu_kw, dtype=float)
    z = rng.standard_normal((n_samples, result.n_dims))
    xi = mu + z @ result.factor_kw.T
    p = result.p_nominal_kw + z @ result.y.T
    return float(np.mean(np.any(xi + p > import_cap_kw + 1e-9, axis=1)))


@dataclass(frozen=True)
class ViolationRates:
    """Violation rates of a robust schedule over sampled days.

    Attributes
    ----------
    any_day : share of days with any constraint violated (import cap, fleet power or energy) [-].
    cap_day : share of days with the import cap exceeded in some period [-].
    max_constraint : the largest violation rate of a single constraint (one family, one period) [-].
    n_days : days sampled [-].
    """

    any_day: float
    cap_day: float
    max_constraint: float
    n_days: int


def calc_standardised_errors(result: RobustResult, xi_minus_mu_kw: npt.ArrayLike) -> FloatArray:
    """The ``z`` (one row per day) with ``xi - mu = L z`` for net-load deviations in the range of Sigma: a
    least-squares solve, since L has full column rank [-]."""
    dev = np.atleast_2d(np.asarray(xi_minus_mu_kw, dtype=float))
    z, *_ = np.linalg.lstsq(result.factor_kw, dev.T, rcond=None)
    return np.asarray(z.T)


def calc_violation_rates(
    result: RobustResult,
    mu_kw: npt.ArrayLike,
    import_cap_kw: float,
    p_min_kw: npt.ArrayLike,
    p_max_kw: npt.ArrayLike,
    e_lo_kwh: npt.ArrayLike,
    e_up_kwh: npt.ArrayLike,
    e0_kwh: float,
    dt_h: float,
    z: npt.ArrayLike,
    tol: float = 1e-6,
) -> ViolationRates:
    """Violation rates with the fleet following its rule ``P = pbar + Y z`` on the days ``z`` (shape
    (n_days, m): standard normal draws for the Gaussian assumption, or :func:`calc_standardised_errors` of
    observed days). A constraint counts as violated beyond ``tol`` [kW or kWh] (the solver's accuracy)."""
    zz = np.asarray(z, dtype=float)
    if zz.ndim != 2 or zz.shape[1] != result.n_dims or zz.shape[0] < 1:
        raise DataError(f"z: need shape (n_days, {result.n_dims}), got {zz.shape}")
    mu = np.asarray(mu_kw, dtype=float)
    xi = mu + zz @ result.factor_kw.T
    p = result.p_nominal_kw + zz @ result.y.T
    s = e0_kwh + dt_h * np.cumsum(p, axis=1)
    cap = xi + p > import_cap_kw + tol
    viol = np.concatenate(
        [
            cap,
            p > np.asarray(p_max_kw, float) + tol,
            p < np.asarray(p_min_kw, float) - tol,
            s > np.asarray(e_up_kwh, float) + tol,
            s < np.asarray(e_lo_kwh, float) - tol,
        ],
        axis=1,
    )
    return ViolationRates(
        any_day=float(viol.any(axis=1).mean()),
        cap_day=float(cap.any(axis=1).mean()),
        max_constraint=float(viol.mean(axis=0).max()),
        n_days=int(zz.shape[0]),
    )
