"""Newsvendor regulation bid: how much capacity to bid when the fleet's availability is random.

Pay-for-performance: the aggregator bids ``b`` kW; it is paid ``p`` per unit delivered and pays a penalty
``lambda`` per unit short; availability ``A`` is random. Profit ``pi(b, A) = p min(b, A) - lambda (b - A)^+``.
Expected profit is concave in ``b`` with ``d E[pi]/db = p (1 - F(b)) - lambda F(b)``, so the optimal bid is the
critical fractile ``b* = F^{-1}(p / (p + lambda))`` (Arrow, Harris & Marschak, Econometrica 19(3), 1951;
Porteus, Foundations of Stochastic Inventory Theory, 2002, ch. 1).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from v2gtwin.errors import DataError

__all__ = ["Availability", "BidResult", "calc_expected_profit", "parse_availability", "solve_newsvendor"]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]


#: Sane range of an availability's mean, sd and scale [kW]: 1 W to 10 GW (a fleet of a million 10 kW EVs).
MIN_AVAILABILITY_KW, MAX_AVAILABILITY_KW = 1e-3, 1e7


@dataclass(frozen=True)
class Availability:
    """A distribution of available capacity [kW].

    Attributes
    ----------
    kind : 'normal', 'lognormal', 'beta' (on [0, scale_kw]) or 'empirical'.
    mean_kw, sd_kw : moments (normal, lognormal; beta via mean and sd on [0, scale_kw]).
    scale_kw : upper end of the beta distribution [kW].
    samples_kw : samples for 'empirical' [kW].
    """

    kind: Literal["normal", "lognormal", "beta", "empirical"]
    mean_kw: float = 0.0
    sd_kw: float = 0.0
    scale_kw: float = 0.0
    samples_kw: FloatArray | None = None

    def __post_init__(self) -> None:
        top = f"{MAX_AVAILABILITY_KW:g}"
        if self.kind == "empirical":
            s = np.asarray(self.samples_kw, dtype=float) if self.samples_kw is not None else np.zeros(0)
            if s.size < 2 or not np.isfinite(s).all():
                raise DataError("empirical availability: need at least 2 finite samples")
            if np.abs(s).max() > MAX_AVAILABILITY_KW:
                raise DataError(f"empirical availability: samples_kw must be within [0, {top}] kW")
        elif self.kind in ("normal", "lognormal", "beta"):
            if not (0 < self.mean_kw < np.inf and 0 < self.sd_kw < np.inf):
                raise DataError(f"{self.kind} availability: mean_kw and sd_kw must be finite and > 0")
            # Outside this range scipy's quadrature and quantiles overflow (warnings, then nonsense).
            sizes = {"mean_kw": self.mean_kw, "sd_kw": self.sd_kw}
            if self.kind == "beta":
                sizes["scale_kw"] = self.scale_kw
            for field, value in sizes.items():
                if not MIN_AVAILABILITY_KW <= value <= MAX_AVAILABILITY_KW:
                    raise DataError(
                        f"{self.kind} availability: {field} = {value:g} must be in [{MIN_AVAILABILITY_KW:g}, {top}] kW"
                    )
            if self.kind == "beta" and not self.scale_kw < np.inf:
                raise DataError("beta availability: scale_kw must be finite")
            if self.kind == "beta":
                m, v = self.mean_kw / self.scale_kw, (self.sd_kw / self.scale_kw) ** 2 if self.scale_kw > 0 else 1.0
                if not (self.scale_kw > self.mean_kw and v < m * (1 - m)):
                    raise DataError("beta availability: need scale_kw > mean_kw and sd_kw small enough for a beta")
        else:
            raise DataError(f"availability kind: normal, lognormal, beta or empirical, got {self.kind!r}")

    def dist(self) -> Any:
        """The scipy.stats frozen distribution (not for 'empirical')."""
        from scipy import stats

        if self.kind == "normal":
            return stats.norm(self.mean_kw, self.sd_kw)
        if self.kind == "lognormal":
            s2 = np.log1p((self.sd_kw / self.mean_kw) ** 2)
            return stats.lognorm(np.sqrt(s2), scale=self.mean_kw * np.exp(-0.5 * s2))
        m, v = self.mean_kw / self.scale_kw, (self.sd_kw / self.scale_kw) ** 2
        k = m * (1 - m) / v - 1
        return stats.beta(m * k, (1 - m) * k, scale=self.scale_kw)

    def ppf(self, q: float) -> float:
        """Quantile [kW] (empirical: the inverse of the empirical distribution function)."""
        if self.kind == "empirical":
            s = np.sort(np.asarray(self.samples_kw, dtype=float))
            k = int(np.ceil(q * s.size)) - 1
            return float(s[min(max(k, 0), s.size - 1)])
        return float(self.dist().ppf(q))

    def sample(self, n: int, rng: np.random.Generator) -> FloatArray:
        """``n`` draws [kW]."""
        if self.kind == "empirical":
            return np.asarray(rng.choice(np.asarray(self.samples_kw, dtype=float), size=n))
        return np.asarray(self.dist().rvs(size=n, random_state=rng))


def calc_expected_profit(
    bid_kw: npt.ArrayLike,
    availability: Availability,
    price: float,
    penalty: float,
    n_mc: int = 0,
    rng: np.random.Generator | None = None,
) -> FloatArray:
    """Expected profit of bids [currency per kW-period]; exact integration, or Monte Carlo with ``n_mc`` draws.

    ``E[pi(b)] = p E[min(b, A)] - lambda E[(b - A)^+]``, with ``E[min(b, A)] = b - E[(b - A)^+]``.
    """
    b = np.atleast_1d(np.asarray(bid_kw, dtype=float))
    if n_mc > 0 or availability.kind == "empirical":
        a = (
            availability.sample(n_mc, rng or np.random.default_rng(0))
            if n_mc > 0
            else np.asarray(availability.samples_kw, dtype=float)
        )
        short = np.clip(b[:, None] - a[None, :], 0.0, None).mean(axis=1)
    else:
        from scipy import integrate

        d = availability.dist()
        short = np.array(
            [
                integrate.quad(lambda x: d.cdf(x), -np.inf if availability.kind == "normal" else 0.0, bb, limit=200)[0]
                for bb in b
            ]
        )
    return np.asarray(price * (b - short) - penalty * short)


@dataclass(frozen=True)
class BidResult:
    """The optimal bid.

    Attributes
    ----------
    bid_kw : b* [kW]. fractile : p / (p + lambda). expected_profit : E[pi(b*)].
    """

    bid_kw: float
    fractile: float
    expected_profit: float


def solve_newsvendor(availability: Availability, price: float, penalty: float) -> BidResult:
    """Optimal regulation bid ``b* = F^{-1}(p / (p + lambda))`` among bids >= 0 [kW].

    When ``F(0) >= p / (p + lambda)`` (possible for a normal availability) the expected profit is concave and
    falls from 0, so the optimal non-negative bid is 0 (not a clamp of a better negative bid: none exists).
    """
    if not (price > 0 and np.isfinite(price)):
        raise DataError(f"price: must be > 0, got {price}")
    if not (penalty > 0 and np.isfinite(penalty)):
        raise DataError(f"penalty: must be > 0 (without a penalty the optimal bid is unbounded), got {penalty}")
    q = price / (price + penalty)
    b = max(availability.ppf(q), 0.0)
    return BidResult(b, q, float(calc_expected_profit(b, availability, price, penalty)[0]))


#: Number of parameters of each kind in an availability spec (None: any number >= 2 of samples).
_SPEC_FIELDS: dict[str, tuple[str, ...] | None] = {
    "normal": ("mean_kw", "sd_kw"),
    "lognormal": ("mean_kw", "sd_kw"),
    "beta": ("mean_kw", "sd_kw", "scale_kw"),
    "empirical": None,
}

AVAILABILITY_SPEC_HELP = "normal:MEAN,SD | lognormal:MEAN,SD | beta:MEAN,SD,SCALE | empirical:A1,A2,... (all in kW)"


def parse_availability(text: str, name: str = "--availability") -> Availability:
    """An availability distribution from a spec such as ``normal:1500,300`` [kW].

    Forms: ``normal:MEAN,SD``, ``lognormal:MEAN,SD``, ``beta:MEAN,SD,SCALE`` (on [0, SCALE]) and
    ``empirical:A1,A2,...`` (at least two samples). A malformed spec is a one-line DataError naming ``name``
    and the allowed forms.
    """
    kind, sep, rest = text.strip().partition(":")
    kind = kind.strip().lower()
    if not sep or kind not in _SPEC_FIELDS:
        raise DataError(f"{name} = {text!r}: expected {AVAILABILITY_SPEC_HELP}")
    try:
        values = [float(v) for v in rest.split(",")]
    except ValueError:
        raise DataError(f"{name} = {text!r}: the values must be numbers ({AVAILABILITY_SPEC_HELP})") from None
    if not all(np.isfinite(values)):
        raise DataError(f"{name} = {text!r}: the values must be finite numbers")
    fields = _SPEC_FIELDS[kind]
    if fields is None:
        if len(values) < 2 or min(values) < 0:
            raise DataError(f"{name} = {text!r}: empirical needs at least 2 samples, each >= 0 kW")
        try:
            return Availability("empirical", samples_kw=np.asarray(values))
        except DataError as exc:
            raise DataError(f"{name} = {text!r}: {exc}") from None
    if len(values) != len(fields):
        raise DataError(f"{name} = {text!r}: {kind} takes {len(fields)} values ({', '.join(fields)})")
    try:
        return Availability(kind, **dict(zip(fields, values, strict=True)))  # type: ignore[arg-type]
    except DataError as exc:
        raise DataError(f"{name} = {text!r}: {exc}") from None
