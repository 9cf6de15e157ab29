"""Rainflow cycle counting of SoC trajectories, for a whole fleet at once.

The counting rule is ASTM E1049-85 (2011), section 5.4.4, exactly as the ``rainflow`` package (3.2) applies it:
the same reversal points (the first and last samples count as reversals, a repeated value is skipped) and the
same three-point rule, so the cycles are identical to ``rainflow.extract_cycles`` (``tests/battery/
test_degradation.py`` checks equality on random series). It is written again here, compiled with numba,
because ``rainflow`` is a per-series Python generator: about 0.05 ms per random 96-step series, i.e. 5 s for
100,000 EVs, against about 0.1 s for all of them here (measured on a shared 2-core machine).

A duty period that repeats (a day) is periodic: counted from its highest sample and closed with it, every
half cycle pairs with one from the next period, so the count has only full cycles (Downing & Socie 1982).

References
----------
ASTM E1049-85 (reapproved 2011), "Standard practices for cycle counting in fatigue analysis", 5.4.4.
S. D. Downing, D. F. Socie, "Simple rainflow counting algorithms", Int. J. Fatigue 4(1), 1982, 31-40.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit, prange

__all__ = ["calc_cycle_dod_pu", "extract_cycles"]

FloatArray = npt.NDArray[np.float64]


@njit(cache=True)
def _reversals(series: FloatArray, idx_out: npt.NDArray[np.int64], val_out: FloatArray) -> int:
    """Reversal points of ``series`` (as rainflow 3.2's ``reversals``); returns how many were written."""
    n = series.shape[0]
    if n < 2:
        return 0
    m = 0
    x_last = series[0]
    x = series[1]
    d_last = x - x_last
    idx_out[m] = 0
    val_out[m] = x_last
    m += 1
    x_next = x
    for index in range(1, n - 1):
        x_next = series[index + 1]
        if x_next == x:
            continue
        d_next = x_next - x
        if d_last * d_next < 0.0:
            idx_out[m] = index
            val_out[m] = x
            m += 1
        x = x_next
        d_last = d_next
    if n > 2:
        idx_out[m] = n - 1
        val_out[m] = x_next
        m += 1
    return m


@njit(cache=True)
def _extract(series: FloatArray, rng: FloatArray, mean: FloatArray, count: FloatArray, i_start, i_end) -> int:  # type: ignore[no-untyped-def]
    n = series.shape[0]
    r_idx = np.empty(n, dtype=np.int64)
    r_val = np.empty(n)
    n_rev = _reversals(series, r_idx, r_val)
    s_idx = np.empty(n, dtype=np.int64)
    s_val = np.empty(n)
    lo = 0  # the stack is s_*[lo:hi] (popleft moves lo)
    hi = 0
    k = 0
    for j in range(n_rev):
        s_idx[hi] = r_idx[j]
        s_val[hi] = r_val[j]
        hi += 1
        while hi - lo >= 3:
            x1 = s_val[hi - 3]
            x2 = s_val[hi - 2]
            x3 = s_val[hi - 1]
            big_x = abs(x3 - x2)
            big_y = abs(x2 - x1)
            if big_x < big_y:
                break
            if hi - lo == 3:
                rng[k] = abs(s_val[lo] - s_val[lo + 1])
                mean[k] = 0.5 * (s_val[lo] + s_val[lo + 1])
                count[k] = 0.5
                i_start[k] = s_idx[lo]
                i_end[k] = s_idx[lo + 1]
                k += 1
                lo += 1
            else:
                rng[k] = big_y
                mean[k] = 0.5 * (x1 + x2)
                count[k] = 1.0
                i_start[k] = s_idx[hi - 3]
                i_end[k] = s_idx[hi - 2]
                k += 1
                s_idx[hi - 3] = s_idx[hi - 1]
                s_val[hi - 3] = s_val[hi - 1]
                hi -= 2
    while hi - lo > 1:
        rng[k] = abs(s_val[lo] - s_val[lo + 1])
        mean[k] = 0.5 * (s_val[lo] + s_val[lo + 1])
        count[k] = 0.5
        i_start[k] = s_idx[lo]
        i_end[k] = s_idx[lo + 1]
        k += 1
        lo += 1
    return k


def extract_cycles(series: npt.ArrayLike) -> list[tuple[float, float, float, int, int]]:
    """Rainflow cycles of one series: a list of ``(range, mean, count, i_start, i_end)``, ``count`` 1.0 for a
    full cycle and 0.5 for a half cycle, in the order ``rainflow.extract_cycles`` yields them."""
    x = np.ascontiguousarray(series, dtype=np.float64)
    n = max(x.shape[0], 1)
    rng, mean, count = np.empty(n), np.empty(n), np.empty(n)
    i0, i1 = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
    k = _extract(x, rng, mean, count, i0, i1)
    return [(float(rng[j]), float(mean[j]), float(count[j]), int(i0[j]), int(i1[j])) for j in range(k)]


@njit(parallel=True, cache=True)
def _periodic_dod(soc: FloatArray, out: FloatArray) -> None:
    n_ev, n_t = soc.shape
    for i in prange(n_ev):
        j0 = 0
        for j in range(n_t):
            if soc[i, j] > soc[i, j0]:
                j0 = j
        series = np.empty(n_t + 1)
        for j in range(n_t):
            series[j] = soc[i, (j0 + j) % n_t]
        series[n_t] = soc[i, j0]
        rng = np.empty(n_t + 1)
        mean = np.empty(n_t + 1)
        count = np.empty(n_t + 1)
        i_start = np.empty(n_t + 1, dtype=np.int64)
        i_end = np.empty(n_t + 1, dtype=np.int64)
        k = _extract(series, rng, mean, count, i_start, i_end)
        num = 0.0
        den = 0.0
        for c in range(k):
            num += count[c] * rng[c] * rng[c]
            den += count[c] * rng[c]
        out[i] = num / den if den > 0.0 else 0.0


def calc_cycle_dod_pu(soc_pu: npt.ArrayLike) -> FloatArray:
    """Depth of discharge of each EV's periodic duty cycle from rainflow counting.

    Parameters
    ----------
    soc_pu : (n_ev, n_t) SoC over one period that repeats (the sample after the last is the first) [pu].

    Returns
    -------
    numpy.ndarray
        (n_ev,) throughput-weighted mean range of the rainflow cycles, ``sum(c r^2) / sum(c r)`` with ``c`` the
        count and ``r`` the range of each cycle [pu of capacity]; 0 for a constant SoC. For a period with
        one charge and one discharge it equals ``max - min``.

    Notes
    -----
    Weighting by throughput (each cycle moves ``2 c r`` of charge) makes the cycle term ``beta(DoD) * Ah``
    of the ageing models see the DoD that the charge throughput actually had.
    """
    soc = np.ascontiguousarray(soc_pu, dtype=np.float64)
    out = np.empty(soc.shape[0])
    if soc.shape[1] > 0:
        _periodic_dod(soc, out)
    return out
