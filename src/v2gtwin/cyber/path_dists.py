"""Random parts of a segment's latency: a registry ``{name: RandomPart}`` of distributions on t >= 0, each
given by its mean [s] and coefficient of variation [-], with a CDF (for the convolution on a grid) and a
sampler (for Monte Carlo).

References
----------
Parameterisations by mean ``m`` and coefficient of variation ``c``: gamma with shape ``k = 1 / c^2`` and
scale ``m c^2``; lognormal with ``sigma^2 = ln(1 + c^2)`` and ``mu = ln m - sigma^2 / 2`` (N. L. Johnson,
S. Kotz, N. Balakrishnan, Continuous Univariate Distributions, vol. 1, 2nd ed., Wiley 1994, ch. 14 and 17).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

__all__ = ["DISTS", "RandomPart"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class RandomPart:
    """One random-latency distribution of the registry.

    Attributes
    ----------
    cdf : ``cdf(t_s, mean_s, cv)`` -> P(X <= t) for an array ``t_s`` [s].
    sample : ``sample(rng, mean_s, cv, n)`` -> ``n`` draws [s].
    ppf : ``ppf(q, mean_s, cv)`` -> quantile [s] (sets the grid's extent).
    var_s2 : ``var_s2(mean_s, cv)`` -> variance [s^2].
    """

    cdf: Callable[[FloatArray, float, float], FloatArray]
    sample: Callable[[np.random.Generator, float, float, int], FloatArray]
    ppf: Callable[[float, float, float], float]
    var_s2: Callable[[float, float], float]


def _none_cdf(t: FloatArray, m: float, c: float) -> FloatArray:
    return np.asarray(t >= m, dtype=float)


def _zero_cdf(t: FloatArray, m: float, c: float) -> FloatArray:
    return np.asarray(t >= 0.0, dtype=float)


def _exp_cdf(t: FloatArray, m: float, c: float) -> FloatArray:
    return np.where(t > 0.0, -np.expm1(-np.maximum(t, 0.0) / m), 0.0) if m > 0 else _zero_cdf(t, m, c)


def _gamma_frozen(m: float, c: float) -> Any:
    return stats.gamma(a=1.0 / (c * c), scale=m * c * c)


def _lognorm_frozen(m: float, c: float) -> Any:
    s2 = math.log1p(c * c)
    return stats.lognorm(s=math.sqrt(s2), scale=math.exp(math.log(m) - s2 / 2.0))


def _frozen_cdf(make: Callable[[float, float], Any]) -> Callable[[FloatArray, float, float], FloatArray]:
    def cdf(t: FloatArray, m: float, c: float) -> FloatArray:
        return np.asarray(make(m, c).cdf(t), dtype=float) if m > 0 else _zero_cdf(t, m, c)

    return cdf


def _frozen_ppf(make: Callable[[float, float], Any]) -> Callable[[float, float, float], float]:
    def ppf(q: float, m: float, c: float) -> float:
        return float(make(m, c).ppf(q)) if m > 0 else 0.0

    return ppf


DISTS: dict[str, RandomPart] = {
    # "none": no randomness; the part is the constant ``random_mean_s`` (0 unless given), variance 0.
    "none": RandomPart(
        cdf=_none_cdf,
        sample=lambda rng, m, c, n: np.full(n, m),
        ppf=lambda q, m, c: m,
        var_s2=lambda m, c: 0.0,
    ),
    "exponential": RandomPart(
        cdf=_exp_cdf,
        sample=lambda rng, m, c, n: rng.exponential(m, n) if m > 0 else np.zeros(n),
        ppf=lambda q, m, c: -m * math.log1p(-q),
        var_s2=lambda m, c: m * m,
    ),
    "gamma": RandomPart(
        cdf=_frozen_cdf(_gamma_frozen),
        sample=lambda rng, m, c, n: rng.gamma(1.0 / (c * c), m * c * c, n) if m > 0 else np.zeros(n),
        ppf=_frozen_ppf(_gamma_frozen),
        var_s2=lambda m, c: (m * c) ** 2,
    ),
    "lognormal": RandomPart(
        cdf=_frozen_cdf(_lognorm_frozen),
        sample=lambda rng, m, c, n: (
            rng.lognormal(math.log(m) - math.log1p(c * c) / 2.0, math.sqrt(math.log1p(c * c)), n)
            if m > 0
            else np.zeros(n)
        ),
        ppf=_frozen_ppf(_lognorm_frozen),
        var_s2=lambda m, c: (m * c) ** 2,
    ),
}
