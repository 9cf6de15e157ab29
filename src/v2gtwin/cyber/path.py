"""Command-path model: a serial path of segments, its latency distribution, reliability and retries.

A command from the aggregator's central system reaches the EV over a serial path of segments (central system ->
cellular or wired internet -> charger -> ISO 15118 over power-line communication -> EV). Each segment has a fixed
latency, a random latency (a registry of distributions), a processing time at the receiving end and a probability
that one attempt gets through. The path's latency is the sum of the segments' latencies; its reliability is the
product of the segments' success probabilities (independent segments).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.signal import fftconvolve

from v2gtwin.cyber.path_dists import DISTS
from v2gtwin.errors import DataError

__all__ = [
    "RANDOM_DISTS",
    "LatencyGrid",
    "Path",
    "RetryPolicy",
    "Segment",
    "calc_attempt_grid",
    "calc_landing_cdf",
    "calc_landing_grid",
    "sample_attempt_s",
    "sample_landing_s",
]

FloatArray = npt.NDArray[np.float64]

#: Names of the random-part distributions a :class:`Segment` may use (the registry of their densities and
#: samplers is :data:`v2gtwin.cyber.path_dists.DISTS`).
RANDOM_DISTS: tuple[str, ...] = ("none", "exponential", "gamma", "lognormal")


def _check_range(name: str, value: float, lo: float, hi: float, what: str) -> None:
    """Raise :class:`DataError` unless ``lo <= value <= hi`` and finite."""
    if not (math.isfinite(value) and lo <= value <= hi):
        raise DataError(f"Segment.{name} = {value!r} is not {what}")


@dataclass(frozen=True)
class Segment:
    """One segment of the command path.

    Attributes
    ----------
    name : str
        Label, e.g. ``"csms->charger (LTE)"`` or ``"charger->EV (ISO 15118-2 DC CurrentDemandReq loop over PLC)"``.
    fixed_s : float
        Fixed latency of one one-way traversal (propagation, serialisation) [s], >= 0.
    random_mean_s : float
        Mean of the random part of the latency [s], >= 0.
    random_dist : str
        Distribution of the random part: ``"none"`` (a constant ``random_mean_s``), ``"exponential"``,
        ``"gamma"`` or ``"lognormal"``.
    random_cv : float
        Coefficient of variation of the random part (gamma, lognormal; exponential must have 1, none ignores it) [-].
    processing_s : float
        Processing time at the receiving end [s], >= 0.
    p_success : float
        Probability that one attempt gets through this segment [-], in [0, 1].
    source : str
        Where the figures come from: a citation, or ``"measured: <command>, <date>"``.
    """

    name: str
    fixed_s: float
    random_mean_s: float
    random_dist: str
    random_cv: float
    processing_s: float
    p_success: float
    source: str

    def __post_init__(self) -> None:
        for field in ("fixed_s", "random_mean_s", "processing_s"):
            _check_range(field, float(getattr(self, field)), 0.0, math.inf, "a finite latency >= 0 s")
        _check_range("p_success", float(self.p_success), 0.0, 1.0, "a probability in [0, 1]")
        _check_range("random_cv", float(self.random_cv), 0.0, 100.0, "a coefficient of variation in [0, 100]")
        if self.random_dist not in RANDOM_DISTS:
            raise DataError(f"Segment.random_dist = {self.random_dist!r} is not one of {', '.join(RANDOM_DISTS)}")
        if self.random_dist == "exponential" and self.random_cv != 1.0:
            raise DataError(
                f"Segment.random_cv = {self.random_cv!r}: an exponential random part has cv 1 exactly "
                "(use gamma for another cv)"
            )
        if self.random_dist in ("gamma", "lognormal") and self.random_mean_s > 0 and self.random_cv <= 0:
            raise DataError(f"Segment.random_cv = {self.random_cv!r} must be > 0 for a {self.random_dist} random part")
        if not self.name:
            raise DataError("Segment.name is empty; give the segment a label")

    @property
    def mean_s(self) -> float:
        """Mean latency of one traversal, fixed + random mean + processing [s]."""
        return self.fixed_s + self.random_mean_s + self.processing_s

    @property
    def var_s2(self) -> float:
        """Variance of the latency of one traversal [s^2]."""
        return DISTS[self.random_dist].var_s2(self.random_mean_s, self.random_cv)

    @property
    def hop(self) -> str:
        """The hop this segment stands for: its name up to the first ``" ("`` (``"csms->charger"``)."""
        return self.name.split(" (", 1)[0].strip()


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of a command whose acknowledgement has not come back.

    Attempt ``k`` (0-based) is sent at ``k * timeout_s`` unless an acknowledgement came back first; at most
    ``max_attempts`` attempts. A late attempt that lands after its timeout still counts (a set-point is
    idempotent), so the command lands at the earliest landing among its attempts.

    Attributes
    ----------
    timeout_s : time the sender waits for an acknowledgement before it sends the next attempt [s], > 0.
    max_attempts : attempts at most, including the first [-], 1 to 100.
    """

    timeout_s: float = 1.0
    max_attempts: int = 1

    def __post_init__(self) -> None:
        if not (math.isfinite(self.timeout_s) and self.timeout_s > 0):
            raise DataError(f"RetryPolicy.timeout_s = {self.timeout_s!r} is not a finite time > 0 s")
        if not (isinstance(self.max_attempts, int) and 1 <= self.max_attempts <= 100):
            raise DataError(f"RetryPolicy.max_attempts = {self.max_attempts!r} is not an integer in [1, 100]")


@dataclass(frozen=True)
class Path:
    """A serial command path: the command crosses every segment in order.

    Attributes
    ----------
    segments : the segments, from the central system to the EV.
    name : label of the path (e.g. ``"LTE"``).
    """

    segments: tuple[Segment, ...]
    name: str = "path"

    def __post_init__(self) -> None:
        if not self.segments:
            raise DataError("Path.segments is empty; a path needs at least one segment")
        hops = [s.hop for s in self.segments]
        dup = sorted({h for h in hops if hops.count(h) > 1})
        if dup:
            raise DataError(f"Path.segments: hop {dup[0]!r} appears twice; each hop once")

    @property
    def p_success(self) -> float:
        """Reliability of one attempt: the product of the segments' success probabilities [-]."""
        return float(np.prod([s.p_success for s in self.segments]))

    @property
    def mean_s(self) -> float:
        """Mean latency of one attempt: the sum of the segments' means [s]."""
        return float(sum(s.mean_s for s in self.segments))

    @property
    def var_s2(self) -> float:
        """Variance of the latency of one attempt (independent segments: the sum of variances) [s^2]."""
        return float(sum(s.var_s2 for s in self.segments))

    def with_segment(self, segment: Segment) -> Path:
        """The same path with the segment of the same hop (name up to ``" ("``) replaced by ``segment``.

        This is how a measured segment (``source="measured: ..."``) takes the place of a default one.
        """
        hops = [s.hop for s in self.segments]
        if segment.hop not in hops:
            raise DataError(f"Path.with_segment: no hop {segment.hop!r} in the path; its hops are {', '.join(hops)}")
        i = hops.index(segment.hop)
        return replace(self, segments=(*self.segments[:i], segment, *self.segments[i + 1 :]))

    def summary(self) -> list[dict[str, Any]]:
        """One dict per segment, with its source."""
        return [
            {
                "name": s.name,
                "fixed_s": s.fixed_s,
                "random_mean_s": s.random_mean_s,
                "random_dist": s.random_dist,
                "random_cv": s.random_cv,
                "processing_s": s.processing_s,
                "p_success": s.p_success,
                "mean_s": s.mean_s,
                "source": s.source,
            }
            for s in self.segments
        ]


# --- the latency distribution on a grid (numerical convolution) ------------------------------------------
@dataclass(frozen=True)
class LatencyGrid:
    """A latency distribution on the grid: the mass of cell ``[(k - 1/2) dt_s, (k + 1/2) dt_s)`` sits at
    ``k dt_s``, so the CDF is known at the cells' upper edges ``t_s = (k + 1/2) dt_s``.

    Attributes
    ----------
    t_s : upper cell edges, where ``cdf`` is given [s].
    cdf : P(latency <= t_s) of a successful attempt (single attempt) or P(landed by t_s) (with retries) [-].
    p_success : probability of success: of one attempt, or that the command lands at all [-].
    mass_beyond_grid : probability mass past the grid's end that the grid leaves out (named, not hidden) [-].
    dt_s : grid step [s].
    """

    t_s: FloatArray
    cdf: FloatArray
    p_success: float
    mass_beyond_grid: float
    dt_s: float

    def prob_by(self, t_s: float) -> float:
        """P(landed by ``t_s``) including the success probability (linear between grid points) [-]."""
        return float(np.interp(t_s, self.t_s, self.cdf, left=0.0, right=float(self.cdf[-1])))

    def quantile_s(self, q: float) -> float | None:
        """Smallest time by which the probability of having landed reaches ``q`` [s]; None when it never does."""
        if q > self.cdf[-1] + 1e-12:
            return None
        k = int(np.searchsorted(self.cdf, q - 1e-15))
        if k == 0:
            return float(self.t_s[0] - 0.5 * self.dt_s)
        c0, c1 = self.cdf[k - 1], self.cdf[k]
        f = 0.0 if c1 <= c0 else (q - c0) / (c1 - c0)
        return float(self.t_s[k - 1] + min(max(f, 0.0), 1.0) * self.dt_s)

    @property
    def mean_given_landed_s(self) -> float:
        """Mean latency of the commands that land (on the grid) [s]."""
        dm = np.diff(self.cdf, prepend=0.0)
        total = float(dm.sum())
        return float((dm * (self.t_s - 0.5 * self.dt_s)).sum() / total) if total > 0 else 0.0


def _shift_mass(pmf: FloatArray, shift_s: float, dt_s: float) -> FloatArray:
    """Delay a pmf on the grid by ``shift_s``, split between the two neighbouring grid points so that the mean
    moves by exactly ``shift_s``."""
    k, f = divmod(shift_s / dt_s, 1.0)
    k = int(k)
    out = np.zeros_like(pmf)
    n = pmf.size
    if k < n:
        out[k:] += (1.0 - f) * pmf[: n - k]
    if k + 1 < n:
        out[k + 1 :] += f * pmf[: n - k - 1]
    return out


def _segment_pmf(seg: Segment, n: int, dt_s: float) -> FloatArray:
    """Probability mass of one traversal's latency on ``k dt_s``, k < n (random part binned to the nearest
    grid point, then shifted by fixed + processing time)."""
    part = DISTS[seg.random_dist]
    shift_s = seg.fixed_s + seg.processing_s
    if seg.random_dist == "none" or seg.random_mean_s == 0:
        pmf = np.zeros(n)
        pmf[0] = 1.0
        shift_s += seg.random_mean_s  # "none": a constant random part (its mean)
    else:
        edges = (np.arange(n + 1) - 0.5) * dt_s
        pmf = np.diff(part.cdf(np.maximum(edges, 0.0), seg.random_mean_s, seg.random_cv))
        pmf[0] = float(part.cdf(np.array([0.5 * dt_s]), seg.random_mean_s, seg.random_cv)[0])
    return _shift_mass(pmf, shift_s, dt_s)


def _attempt_t_max_s(path: Path, tail: float) -> float:
    """A time past which one attempt's latency lies with probability below ``tail`` (union bound) [s]."""
    q = 1.0 - tail / len(path.segments)
    return sum(
        s.fixed_s + s.processing_s + DISTS[s.random_dist].ppf(q, s.random_mean_s, s.random_cv) for s in path.segments
    )


def calc_attempt_grid(path: Path, *, dt_s: float | None = None, n_grid: int = 8192, tail: float = 1e-9) -> LatencyGrid:
    """Latency distribution of one attempt by numerical convolution of the segments' distributions.

    Parameters
    ----------
    path : the path.
    dt_s : grid step [s]; default: the grid covers the (1 - ``tail``) quantile in ``n_grid`` points.
    n_grid : grid points when ``dt_s`` is not given [-].
    tail : probability left past the grid's end by the default grid (reported as ``mass_beyond_grid``) [-].

    Notes
    -----
    The latency of one attempt is ``L = sum_i (a_i + X_i + b_i)`` (fixed, random, processing part of segment
    i, independent segments), so its density is the convolution of the segments' densities; its success
    probability is ``prod_i p_i``. Each random part is put on the grid as the mass of the cell around each
    grid point, the fixed parts shift it (split between neighbouring points, mean exact), and the convolution
    runs by FFT. The discretisation error of the CDF is of the order of ``dt_s`` times the density.
    """
    if dt_s is None:
        dt_s = max(_attempt_t_max_s(path, tail), 1e-6) / (n_grid - 1)
    return _attempt_grid(path, dt_s, n_grid + 2)  # 2 cells past the end: a fixed shift splits to the next one


def _attempt_grid(path: Path, dt_s: float, n: int) -> LatencyGrid:
    if not (math.isfinite(dt_s) and dt_s > 0) or not 2 <= n <= 2**22:
        raise DataError(f"latency grid: need dt_s > 0 and 2 <= n <= 4194304 points, got {dt_s!r}, {n}")
    pmf = np.zeros(n)
    pmf[0] = 1.0
    for seg in path.segments:
        pmf = np.maximum(fftconvolve(pmf, _segment_pmf(seg, n, dt_s))[:n], 0.0)
    cdf = np.minimum(np.cumsum(pmf), 1.0)
    return LatencyGrid(
        t_s=np.asarray((np.arange(n) + 0.5) * dt_s, dtype=np.float64),
        cdf=cdf * path.p_success,
        p_success=path.p_success,
        mass_beyond_grid=max(0.0, 1.0 - float(cdf[-1])) * path.p_success,
        dt_s=dt_s,
    )


def calc_landing_cdf(attempt_cdf_fn: Any, t_s: FloatArray, p_success: float, retry: RetryPolicy) -> FloatArray:
    """P(the command has landed by ``t_s``) with retries.

    Notes
    -----
    Attempt ``k`` leaves at ``k T`` and lands by ``t`` with probability ``p F(t - k T)`` (``F`` the latency
    CDF of a successful attempt, 0 for negative arguments); attempts are independent, so
    ``G(t) = 1 - prod_{k=0}^{K-1} (1 - p F(t - k T))``. Deterministic latency ``d < T`` gives the geometric
    law: the command lands at ``k T + d`` with probability ``(1 - p)^k p``.
    """
    t = np.asarray(t_s, dtype=float)
    miss = np.ones_like(t)
    for k in range(retry.max_attempts):
        miss *= 1.0 - p_success * attempt_cdf_fn(t - k * retry.timeout_s)
    return np.asarray(1.0 - miss)


def calc_landing_grid(
    path: Path, retry: RetryPolicy, *, dt_s: float | None = None, n_grid: int = 8192, tail: float = 1e-9
) -> LatencyGrid:
    """Landing-time distribution of a command with retries, on a grid (convolution, then
    :func:`calc_landing_cdf`). The grid step divides the timeout, so the attempts' shifts fall on the grid."""
    t_end = (retry.max_attempts - 1) * retry.timeout_s + max(_attempt_t_max_s(path, tail), 1e-6)
    step = t_end / (n_grid - 1) if dt_s is None else dt_s
    step = retry.timeout_s / math.ceil(retry.timeout_s / step - 1e-9)
    n = math.ceil(t_end / step) + 3  # 2 cells past the end: a fixed shift splits to the next one
    one = _attempt_grid(path, step, n)
    f = one.cdf / path.p_success if path.p_success > 0 else np.zeros(n)
    t = one.t_s

    def attempt_cdf(x: FloatArray) -> FloatArray:
        return np.asarray(np.interp(x, t, f, left=0.0, right=float(f[-1])))

    g = calc_landing_cdf(attempt_cdf, t, path.p_success, retry)
    p_land = 1.0 - (1.0 - path.p_success) ** retry.max_attempts
    return LatencyGrid(t, g, p_land, max(0.0, p_land - float(g[-1])), step)


# --- Monte Carlo ------------------------------------------------------------------------------------------
def sample_attempt_s(path: Path, rng: np.random.Generator, n: int) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """``n`` independent attempts: latency of each [s] and whether it got through every segment."""
    if not 1 <= n <= 50_000_000:
        raise DataError(f"samples: n = {n} is not in [1, 50000000]")
    lat = np.zeros(n)
    ok = np.ones(n, dtype=bool)
    for s in path.segments:
        lat += s.fixed_s + s.processing_s + DISTS[s.random_dist].sample(rng, s.random_mean_s, s.random_cv, n)
        ok &= rng.random(n) < s.p_success
    return lat, ok


def sample_landing_s(
    path: Path, retry: RetryPolicy, rng: np.random.Generator, n: int
) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """``n`` commands with retries: landing time of each [s] (meaningful where landed) and whether it landed."""
    best = np.full(n, np.inf)
    for k in range(retry.max_attempts):
        lat, ok = sample_attempt_s(path, rng, n)
        best = np.where(ok, np.minimum(best, k * retry.timeout_s + lat), best)
    landed = np.isfinite(best)
    return np.where(landed, best, 0.0), landed
