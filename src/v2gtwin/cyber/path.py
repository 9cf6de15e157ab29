"""Command-path model: a serial path of segments, its latency distribution, reliability and retries.

A command from the aggregator's central system reaches the EV over a serial path of segments (central system ->
cellular or wired internet -> charger -> ISO 15118 over power-line communication -> EV). Each segment has a fixed
latency, a random latency (a registry of distributions), a processing time at the receiving end and a probability
that one attempt gets through. The path's latency is the sum of the segments' latencies; its reliability is the
product of the segments' success probabilities (independent segments).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from v2gtwin.errors import DataError

__all__ = ["RANDOM_DISTS", "Segment"]

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
        Label, e.g. ``"csms->charger (LTE)"`` or ``"charger->EV (ISO 15118-2 over PLC)"``.
    fixed_s : float
        Fixed latency of one one-way traversal (propagation, serialisation) [s], >= 0.
    random_mean_s : float
        Mean of the random part of the latency [s], >= 0.
    random_dist : str
        Distribution of the random part: ``"none"``, ``"exponential"``, ``"gamma"`` or ``"lognormal"``.
    random_cv : float
        Coefficient of variation of the random part (gamma, lognormal; exponential has 1, none ignores it) [-].
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
        if self.random_dist in ("gamma", "lognormal") and self.random_mean_s > 0 and self.random_cv <= 0:
            raise DataError(f"Segment.random_cv = {self.random_cv!r} must be > 0 for a {self.random_dist} random part")
        if not self.name:
            raise DataError("Segment.name is empty; give the segment a label")

    @property
    def mean_s(self) -> float:
        """Mean latency of one traversal, fixed + random mean + processing [s]."""
        return self.fixed_s + self.random_mean_s + self.processing_s
