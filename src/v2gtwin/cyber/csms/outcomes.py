"""Summaries of a dispatch's outcomes that count every station: one that timed out or refused is not dropped
from the percentiles (dropping it would make a fan-out that lost stations look faster)."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["latency_note", "percentile_s"]


def percentile_s(times_s: Sequence[float | None], q: float) -> float | None:
    """Nearest-rank ``q``-quantile of per-station times [s] where ``None`` (a station that timed out, refused,
    or was not reached) ranks above every time: the answer is ``None`` when the rank falls on such a station,
    i.e. when fewer than ``q`` of the stations settled. ``None`` too for no stations.

    Notes
    -----
    Nearest rank: the value of rank ``ceil(q * n)`` among the ``n`` sorted values (Hyndman and Fan's definition
    1, the inverse of the empirical distribution function).

    References
    ----------
    R. J. Hyndman, Y. Fan, "Sample quantiles in statistical packages", The American Statistician 50(4),
    361-365, 1996.
    """
    if not 0.0 < q <= 1.0:
        raise ValueError(f"q: in (0, 1]; got {q}")
    n = len(times_s)
    if n == 0:
        return None
    settled = sorted(t for t in times_s if t is not None)
    rank = max(1, math.ceil(q * n - 1e-9))  # 1e-9: q * n in binary may land a hair above an integer
    return settled[rank - 1] if rank <= len(settled) else None


_QUANTILES = (("p50", 0.5), ("p99", 0.99), ("max", 1.0))


def latency_note(
    times_s: Sequence[float | None], outcomes: dict[str, int], quantiles: Sequence[tuple[str, float]] = _QUANTILES
) -> str | None:
    """Why a latency percentile is null, in one line (``None`` when every one of ``quantiles`` is a number):
    which percentiles fall on stations that did not accept, and the outcome counts. ``times_s`` as for
    :func:`percentile_s` (``None``: the station did not accept)."""
    missing = [name for name, q in quantiles if percentile_s(times_s, q) is None]
    if not missing:
        return None
    if not times_s:
        return "no stations dispatched"
    n_no = sum(t is None for t in times_s)
    others = ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()) if k != "Accepted")
    return (
        f"latency {'/'.join(missing)} null: {n_no} of {len(times_s)} stations did not accept ({others}); "
        "a station that did not accept ranks above every latency"
    )
