"""Stackelberg pricing: the aggregator (leader) sets a charging price; heterogeneous EV users (followers)
with quadratic utilities and capacity limits best-respond; the leader maximises its profit.

Follower i: ``max_x  alpha_i x - beta_i x^2 / 2 - pi x`` on ``0 <= x <= x_max,i``, so
``x_i(pi) = clip((alpha_i - pi) / beta_i, 0, x_max,i)``. Leader: ``max_pi (pi - c) sum_i x_i(pi)`` subject to
``sum_i x_i(pi) <= X_cap`` (a feeder or contract limit) and ``pi_min <= pi <= pi_max``.
Reference: the leader-follower game of von Stackelberg (1934); for EV charging e.g. Tushar, Saad, Poor & Smith,
"Economics of electric vehicle charging: a game theoretic approach", IEEE Trans. Smart Grid 3(4), 2012.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from v2gtwin.errors import DataError, InfeasibleError

__all__ = ["StackelbergResult", "calc_best_response", "calc_leader_profit", "solve_stackelberg"]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]


def _check(alpha: FloatArray, beta: FloatArray, x_max: FloatArray) -> None:
    if not (alpha.shape == beta.shape == x_max.shape) or alpha.ndim != 1 or alpha.size == 0:
        raise DataError("followers: alpha, beta and x_max need one value per EV user")
    if np.any(beta <= 0) or np.any(x_max < 0) or not np.isfinite(alpha).all():
        raise DataError("followers: beta must be > 0, x_max >= 0, alpha finite")


def calc_best_response(pi: npt.ArrayLike, alpha: FloatArray, beta: FloatArray, x_max: FloatArray) -> FloatArray:
    """Each follower's energy [kWh] at price(s) ``pi`` [currency/kWh]; shape (..., n_followers)."""
    p = np.asarray(pi, dtype=float)[..., None]
    return np.asarray(np.clip((alpha - p) / beta, 0.0, x_max))


def calc_leader_profit(
    pi: npt.ArrayLike, alpha: FloatArray, beta: FloatArray, x_max: FloatArray, cost: float
) -> FloatArray:
    """Leader profit ``(pi - c) sum_i x_i(pi)`` [currency] at price(s) ``pi``."""
    p = np.asarray(pi, dtype=float)
    return np.asarray((p - cost) * calc_best_response(p, alpha, beta, x_max).sum(axis=-1))


@dataclass(frozen=True)
class StackelbergResult:
    """The leader's optimal price and the followers' answer.

    Attributes
    ----------
    price : optimal price [currency/kWh]. x : each follower's energy [kWh]. profit : leader profit.
    total : total energy sold [kWh]. cap_binding : the capacity limit binds at the optimum.
    """

    price: float
    x: FloatArray
    profit: float
    total: float
    cap_binding: bool


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
    """Exact optimum of the leader's price.

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
    _check(a, b, xm)
    if not (np.isfinite(cost) and cost >= 0):
        raise DataError(f"cost: must be a finite number >= 0, got {cost}")
    if not x_cap > 0:
        raise DataError(f"x_cap: must be > 0, got {x_cap}")
    hi = float(a.max()) if price_max is None else float(price_max)
    lo = max(float(price_min), 0.0)
    if hi <= lo:
        raise InfeasibleError(f"price range: price_max {hi} must exceed price_min {lo} (no follower buys)")
    # D(pi) = s0(pi) - s1(pi) pi, with (s0, s1) stepping at each follower's two breakpoints: at
    # pi = alpha - beta x_max it leaves its limit (s0 += alpha/beta - x_max, s1 += 1/beta), at pi = alpha it
    # stops buying (s0 -= alpha/beta, s1 -= 1/beta). Sorting the events gives every interval in O(n log n).
    lower_bp = a - b * xm
    ev_p = np.concatenate([lower_bp, a])
    ev_s0 = np.concatenate([a / b - xm, -a / b])
    ev_s1 = np.concatenate([1.0 / b, -1.0 / b])
    order = np.argsort(ev_p, kind="stable")
    ev_p, ev_s0, ev_s1 = ev_p[order], ev_s0[order], ev_s1[order]
    # Coefficients valid on [knots[k], knots[k+1]): after all events with price <= knots[k].
    knots = np.unique(np.clip(np.concatenate([ev_p, [lo, hi]]), lo, hi))
    idx = np.searchsorted(ev_p, knots, side="right")
    s0 = xm.sum() + np.concatenate([[0.0], np.cumsum(ev_s0)])[idx]
    s1 = np.concatenate([[0.0], np.cumsum(ev_s1)])[idx]

    def demand_at(p: FloatArray) -> FloatArray:
        k = np.clip(np.searchsorted(knots, p, side="right") - 1, 0, knots.size - 1)
        return np.asarray(np.clip(s0[k] - s1[k] * p, 0.0, None))

    # Capacity: the smallest price at which D(pi) <= x_cap (D is non-increasing, piecewise linear).
    if float(demand_at(np.array([lo]))[0]) > x_cap:
        vals = demand_at(knots)
        if vals[-1] > x_cap:
            raise InfeasibleError(f"x_cap: even at price_max {hi} demand {vals[-1]:.3f} exceeds the cap {x_cap}")
        k = int(np.argmax(vals <= x_cap))
        p0, p1, d0, d1 = knots[k - 1], knots[k], vals[k - 1], vals[k]
        lo = float(p0 + (d0 - x_cap) * (p1 - p0) / (d0 - d1)) if d0 != d1 else float(p1)
        knots = np.unique(np.concatenate([[lo], knots[knots > lo]]))
        idx = np.searchsorted(ev_p, knots, side="right")
        s0 = xm.sum() + np.concatenate([[0.0], np.cumsum(ev_s0)])[idx]
        s1 = np.concatenate([[0.0], np.cumsum(ev_s1)])[idx]
    # On each interval profit (pi - c)(s0 - s1 pi) peaks at (s0 + c s1) / (2 s1); also try the ends.
    p0, p1 = knots[:-1], knots[1:]
    c0, c1 = s0[:-1], s1[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        peak = np.where(c1 > 0, (c0 + cost * c1) / (2 * c1), p0)
    cand = np.concatenate([knots, np.clip(peak, p0, p1)])
    prof = (cand - cost) * demand_at(cand)
    j = int(np.argmax(prof))
    best_p, best_v = float(cand[j]), float(prof[j])
    x = calc_best_response(best_p, a, b, xm)
    return StackelbergResult(
        price=best_p,
        x=x,
        profit=best_v,
        total=float(x.sum()),
        cap_binding=bool(np.isfinite(x_cap) and x.sum() >= x_cap - 1e-9),
    )
