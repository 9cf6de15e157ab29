"""Stackelberg pricing: the aggregator (leader) sets a price; heterogeneous EV users (followers) with quadratic
utilities or costs and energy limits best-respond; the leader maximises its profit. Two directions:

* Charging: follower i buys ``x`` at price ``pi``: ``max_x  alpha_i x - beta_i x^2 / 2 - pi x`` on
  ``0 <= x <= x_max,i``, so ``x_i(pi) = clip((alpha_i - pi) / beta_i, 0, x_max,i)``. Leader (energy cost ``c``):
  ``max_pi (pi - c) sum_i x_i(pi)`` subject to ``sum_i x_i(pi) <= X_cap`` and ``pi_min <= pi <= pi_max``.
* Discharging (V2G): follower i sells ``y`` back at price ``pi``; selling costs it its reservation price
  ``r_i`` and degradation ``d_i`` per kWh plus a convex inconvenience ``gamma_i y^2 / 2``:
  ``max_y  pi y - (r_i + d_i) y - gamma_i y^2 / 2`` on ``0 <= y <= y_max,i``, so
  ``y_i(pi) = clip((pi - r_i - d_i) / gamma_i, 0, y_max,i)``. Leader (resale value ``v``):
  ``max_pi (v - pi) sum_i y_i(pi)`` subject to ``sum_i y_i(pi) <= Y_cap``.

With ``q = -pi`` the discharging game is the charging game with ``alpha_i = -(r_i + d_i)``, ``beta_i = gamma_i``
and ``c = -v``; both are solved exactly by the same breakpoint search.

References: the leader-follower game of von Stackelberg (1934); for EV charging e.g. Tushar, Saad, Poor & Smith,
"Economics of electric vehicle charging: a game theoretic approach", IEEE Trans. Smart Grid 3(4), 2012.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from v2gtwin.errors import DataError, InfeasibleError

__all__ = [
    "StackelbergResult",
    "calc_best_response",
    "calc_discharge_response",
    "calc_leader_profit",
    "solve_stackelberg",
    "solve_stackelberg_discharge",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]


def _check(alpha: FloatArray, beta: FloatArray, x_max: FloatArray, names: tuple[str, str, str]) -> None:
    na, nb, nx = names
    if not (alpha.shape == beta.shape == x_max.shape) or alpha.ndim != 1 or alpha.size == 0:
        raise DataError(f"followers: {na}, {nb} and {nx} need one value per EV user")
    if not np.isfinite(alpha).all() or not np.isfinite(beta).all() or np.any(beta <= 0):
        raise DataError(f"followers: {nb} must be finite and > 0, {na} finite")
    if np.isnan(x_max).any() or np.any(x_max < 0):
        raise DataError(f"followers: {nx} must be >= 0 (inf for no limit)")


def calc_best_response(pi: npt.ArrayLike, alpha: FloatArray, beta: FloatArray, x_max: FloatArray) -> FloatArray:
    """Each charging follower's energy [kWh] at price(s) ``pi`` [currency/kWh]; shape (..., n_followers)."""
    p = np.asarray(pi, dtype=float)[..., None]
    return np.asarray(np.clip((alpha - p) / beta, 0.0, x_max))


def calc_discharge_response(
    pi: npt.ArrayLike, reservation_per_kwh: FloatArray, gamma: FloatArray, y_max_kwh: FloatArray
) -> FloatArray:
    """Each discharging follower's energy sold [kWh] at price(s) ``pi`` [currency/kWh]; ``reservation_per_kwh``
    includes the follower's degradation cost; shape (..., n_followers)."""
    p = np.asarray(pi, dtype=float)[..., None]
    return np.asarray(np.clip((p - reservation_per_kwh) / gamma, 0.0, y_max_kwh))


def calc_leader_profit(
    pi: npt.ArrayLike, alpha: FloatArray, beta: FloatArray, x_max: FloatArray, cost: float
) -> FloatArray:
    """Leader profit of the charging game ``(pi - c) sum_i x_i(pi)`` [currency] at price(s) ``pi``."""
    p = np.asarray(pi, dtype=float)
    return np.asarray((p - cost) * calc_best_response(p, alpha, beta, x_max).sum(axis=-1))


@dataclass(frozen=True)
class StackelbergResult:
    """The leader's optimal price and the followers' answer.

    Attributes
    ----------
    direction : 'charge' (the aggregator sells charging) or 'discharge' (it buys V2G energy back).
    price_per_kwh : optimal price [currency/kWh]. x_kwh : each follower's energy bought or sold [kWh].
    profit : leader profit over the period the followers' energies cover [currency].
    energy_kwh : total energy [kWh]. cap_binding : the aggregator's energy limit binds at the optimum.
    """

    direction: Literal["charge", "discharge"]
    price_per_kwh: float
    x_kwh: FloatArray
    profit: float
    energy_kwh: float
    cap_binding: bool


def _best_margin(
    a: FloatArray,
    b: FloatArray,
    xm: FloatArray,
    cost: float,
    x_cap: float,
    lo: float,
    hi: float,
    cap_name: str = "x_cap",
) -> tuple[float, float]:
    """Price in [lo, hi] maximising ``(pi - cost) D(pi)`` with ``D(pi) = sum clip((a - pi)/b, 0, xm) <= x_cap``.

    ``xm`` may be infinite (no limit): such a follower has no lower breakpoint."""
    fin = np.isfinite(xm)
    # D(pi) = s0(pi) - s1(pi) pi. Below every breakpoint a limited follower buys xm, an unlimited one
    # (a - pi)/b. At pi = a - b xm a limited follower leaves its limit (s0 += a/b - xm, s1 += 1/b); at pi = a
    # every follower stops buying (s0 -= a/b, s1 -= 1/b). Sorting the events gives every interval.
    base_s0 = float(xm[fin].sum() + (a[~fin] / b[~fin]).sum())
    base_s1 = float((1.0 / b[~fin]).sum())
    ev_p = np.concatenate([a[fin] - b[fin] * xm[fin], a])
    ev_s0 = np.concatenate([a[fin] / b[fin] - xm[fin], -a / b])
    ev_s1 = np.concatenate([1.0 / b[fin], -1.0 / b])
    order = np.argsort(ev_p, kind="stable")
    ev_p, cum_s0, cum_s1 = ev_p[order], np.cumsum(ev_s0[order]), np.cumsum(ev_s1[order])

    def coeffs(knots: FloatArray) -> tuple[FloatArray, FloatArray]:
        idx = np.searchsorted(ev_p, knots, side="right")
        return base_s0 + np.concatenate([[0.0], cum_s0])[idx], base_s1 + np.concatenate([[0.0], cum_s1])[idx]

    # Coefficients valid on [knots[k], knots[k+1]): after all events with price <= knots[k].
    knots = np.unique(np.clip(np.concatenate([ev_p, [lo, hi]]), lo, hi))
    s0, s1 = coeffs(knots)

    def demand_at(p: FloatArray) -> FloatArray:
        k = np.clip(np.searchsorted(knots, p, side="right") - 1, 0, knots.size - 1)
        return np.asarray(np.clip(s0[k] - s1[k] * p, 0.0, None))

    # Capacity: the smallest price at which D(pi) <= x_cap (D is non-increasing, piecewise linear).
    if float(demand_at(np.array([lo]))[0]) > x_cap:
        vals = demand_at(knots)
        if vals[-1] > x_cap:
            raise InfeasibleError(
                f"{cap_name}: even at the end of the price range the energy {vals[-1]:.3f} kWh exceeds the cap {x_cap}"
            )
        k = int(np.argmax(vals <= x_cap))
        p0, p1, d0, d1 = knots[k - 1], knots[k], vals[k - 1], vals[k]
        lo = float(p0 + (d0 - x_cap) * (p1 - p0) / (d0 - d1)) if d0 != d1 else float(p1)
        knots = np.unique(np.concatenate([[lo], knots[knots > lo]]))
        s0, s1 = coeffs(knots)
    # On each interval profit (pi - c)(s0 - s1 pi) peaks at (s0 + c s1) / (2 s1); also try the ends.
    p0, p1 = knots[:-1], knots[1:]
    c0, c1 = s0[:-1], s1[:-1]
    safe = np.where(c1 > 0, c1, 1.0)
    peak = np.where(c1 > 0, (c0 + cost * c1) / (2 * safe), p0)
    cand = np.concatenate([knots, np.clip(peak, p0, p1)])
    prof = (cand - cost) * demand_at(cand)
    j = int(np.argmax(prof))
    return float(cand[j]), float(prof[j])


def solve_stackelberg(
    alpha: npt.ArrayLike,
    beta: npt.ArrayLike,
    x_max: npt.ArrayLike,
    cost: float,
    *,
    x_cap: float = np.inf,
    price_min: float = 0.0,
    price_max: float | None = None,
) -> StackelbergResult:
    """Exact optimum of the leader's charging price.

    Parameters
    ----------
    alpha : followers' marginal utility at zero energy [currency/kWh]. beta : its slope [currency/kWh^2].
    x_max : followers' energy limits [kWh] (``inf`` for none). cost : the aggregator's energy cost
    [currency/kWh]. x_cap : the aggregator's energy limit [kWh]. price_min, price_max : price range
    [currency/kWh] (default 0 to the largest alpha).

    Notes
    -----
    Total demand ``D(pi) = sum_i x_i(pi)`` is piecewise linear and non-increasing in ``pi``, with breakpoints
    where a follower stops buying (``pi = alpha_i``) or leaves its limit (``pi = alpha_i - beta_i x_max,i``).
    Between breakpoints the profit ``(pi - c) D(pi)`` is a concave quadratic, maximised in closed form and
    clipped to the interval. The capacity limit ``D(pi) <= X_cap`` is a lower bound on the price
    (``pi >= pi_cap``, found exactly on the piecewise-linear D), so it only clips the search range.
    Without limits and with every follower buying, ``pi* = (sum alpha_i / beta_i + c sum 1/beta_i) /
    (2 sum 1/beta_i)``.
    """
    a = np.asarray(alpha, dtype=float)
    b = np.asarray(beta, dtype=float)
    xm = np.asarray(x_max, dtype=float)
    _check(a, b, xm, ("alpha", "beta", "x_max"))
    if not (np.isfinite(cost) and cost >= 0):
        raise DataError(f"cost: must be a finite number >= 0, got {cost}")
    if not x_cap > 0:
        raise DataError(f"x_cap: must be > 0, got {x_cap}")
    hi = float(a.max()) if price_max is None else float(price_max)
    lo = max(float(price_min), 0.0)
    if not np.isfinite(hi) or hi <= lo:
        raise InfeasibleError(
            f"price range: price_max {hi} must be finite and exceed price_min {lo} (no follower buys)"
        )
    best_p, best_v = _best_margin(a, b, xm, cost, x_cap, lo, hi)
    x = calc_best_response(best_p, a, b, xm)
    return StackelbergResult(
        direction="charge",
        price_per_kwh=best_p,
        x_kwh=x,
        profit=best_v,
        energy_kwh=float(x.sum()),
        cap_binding=bool(np.isfinite(x_cap) and x.sum() >= x_cap - 1e-9),
    )


def solve_stackelberg_discharge(
    reservation_per_kwh: npt.ArrayLike,
    degradation_per_kwh: npt.ArrayLike,
    gamma: npt.ArrayLike,
    y_max_kwh: npt.ArrayLike,
    resale_per_kwh: float,
    *,
    y_cap_kwh: float = np.inf,
    price_min: float = 0.0,
    price_max: float | None = None,
) -> StackelbergResult:
    """Exact optimum of the leader's price for V2G energy bought back from the followers.

    Parameters
    ----------
    reservation_per_kwh : each follower's reservation price for selling energy [currency/kWh].
    degradation_per_kwh : each follower's battery degradation cost per kWh discharged [currency/kWh].
    gamma : slope of each follower's marginal cost of selling [currency/kWh^2] (> 0).
    y_max_kwh : energy each follower can sell [kWh] (``inf`` for none).
    resale_per_kwh : the value of the energy to the aggregator (its resale price) [currency/kWh] (> 0).
    y_cap_kwh : the aggregator's limit on energy bought [kWh]. price_min, price_max : price range
    [currency/kWh] (default 0 to ``resale_per_kwh``: above it every kWh bought loses money).

    Notes
    -----
    ``y_i(pi) = clip((pi - r_i - d_i) / gamma_i, 0, y_max,i)``; the leader maximises ``(v - pi) sum_i y_i(pi)``
    subject to ``sum_i y_i(pi) <= Y_cap``, an upper bound on the price. Solved as the charging game in
    ``q = -pi`` (``alpha = -(r + d)``, ``beta = gamma``, ``c = -v``). Without limits and with every follower
    selling, ``pi* = (v sum 1/gamma_i + sum (r_i + d_i)/gamma_i) / (2 sum 1/gamma_i)``.
    """
    r = np.asarray(reservation_per_kwh, dtype=float)
    d = np.broadcast_to(np.asarray(degradation_per_kwh, dtype=float), r.shape)
    g = np.asarray(gamma, dtype=float)
    ym = np.asarray(y_max_kwh, dtype=float)
    _check(r, g, ym, ("reservation_per_kwh", "gamma", "y_max_kwh"))
    if not np.isfinite(d).all() or np.any(d < 0):
        raise DataError("followers: degradation_per_kwh must be finite and >= 0")
    if not (np.isfinite(resale_per_kwh) and resale_per_kwh > 0):
        raise DataError(f"resale_per_kwh: must be a finite number > 0, got {resale_per_kwh}")
    if not y_cap_kwh > 0:
        raise DataError(f"y_cap_kwh: must be > 0, got {y_cap_kwh}")
    hi = float(resale_per_kwh) if price_max is None else float(price_max)
    lo = max(float(price_min), 0.0)
    if not np.isfinite(hi) or hi <= lo:
        raise DataError(f"price range: price_max {hi} must be finite and exceed price_min {lo}")
    q, best_v = _best_margin(-(r + d), g, ym, -float(resale_per_kwh), y_cap_kwh, -hi, -lo, "y_cap_kwh")
    y = calc_discharge_response(-q, r + d, g, ym)
    return StackelbergResult(
        direction="discharge",
        price_per_kwh=-q + 0.0,
        x_kwh=y,
        profit=best_v,
        energy_kwh=float(y.sum()),
        cap_binding=bool(np.isfinite(y_cap_kwh) and y.sum() >= y_cap_kwh - 1e-9),
    )
