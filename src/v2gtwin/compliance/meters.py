"""Worst-case error of an energy taken as the sum of several meters' readings.

A meter of accuracy class ``c`` [%] reads energy ``E`` within ``c/100 * |E|`` (its class limit). Summing meters
adds their errors; in the worst case every error takes the sign that widens the sum's error, so the sum
``S = sum(E_i)`` is known to within ``sum(c_i |E_i|) / 100``. Relative to ``|S|`` the bound is

    bound_pct = sum(c_i * |E_i|) / |sum(E_i)|

which equals the common class when every meter has the same class and every flow has the same sign, and grows
without limit as opposing flows (charging against V2G export) cancel in the net: many sub-meters cannot replace
one certified meter at the point that is settled.

References
----------
ANSI C12.20-2015, *Electricity Meters - 0.1, 0.2, and 0.5 Accuracy Classes* (the class is the accuracy limit in
percent of the reading at the class's test points). The bound is the triangle inequality applied to the meters'
individual class limits.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from v2gtwin.errors import DataError

__all__ = ["calc_sum_error_bound_pct"]


def calc_sum_error_bound_pct(class_pct: npt.ArrayLike, e_kwh: npt.ArrayLike) -> float:
    """Worst-case error of the sum of meters' readings, relative to the sum.

    Parameters
    ----------
    class_pct : accuracy class of each meter (its error limit) [% of reading], >= 0.
    e_kwh : energy each meter registered, signed (+ import, - export) [kWh].

    Returns
    -------
    float
        ``sum(class_pct * |e_kwh|) / |sum(e_kwh)|`` [% of the summed energy]; ``inf`` when the sum is zero and
        some meter registered energy (the relative error is unbounded), 0 when every meter registered nothing.

    Raises
    ------
    DataError
        Arrays of different lengths, empty, negative classes or non-finite values.

    Notes
    -----
    Each reading is within ``c_i |E_i| / 100`` of the truth, so by the triangle inequality
    ``|sum(err_i)| <= sum(c_i |E_i|) / 100``; the bound is attained when every error sits at its limit with the
    sign of its energy's contribution to the error of the sum.
    """
    c = np.asarray(class_pct, dtype=float)
    e = np.asarray(e_kwh, dtype=float)
    if c.ndim != 1 or c.shape != e.shape or c.size == 0:
        raise DataError("meter sum: need one accuracy class per energy (at least one meter)")
    if not (np.isfinite(c).all() and np.isfinite(e).all()):
        raise DataError("meter sum: accuracy classes and energies must be finite")
    if np.any(c < 0):
        raise DataError("meter sum: accuracy classes must be >= 0 %")
    err_kwh = float(np.sum(c * np.abs(e)))
    net_kwh = abs(float(np.sum(e)))
    if net_kwh == 0.0:
        return 0.0 if err_kwh == 0.0 else float("inf")
    return err_kwh / net_kwh
