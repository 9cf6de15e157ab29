"""Worst-case error of an energy taken as the sum of several meters' readings.

A meter of accuracy class ``c`` [%] reads each registered energy ``E`` within ``c/100 * E`` (its class limit). A
directional meter registers import ``I`` and export ``X`` separately, each with its own error, so its net reading
``I - X`` is known to within ``c/100 * (I + X)`` - not ``c/100 * |I - X|``: a bidirectional EVSE meter that
imported 40 kWh and exported 36 kWh can be wrong by ``c x 76 kWh`` on its 4 kWh net. Summing meters adds their
errors; in the worst case every error takes the sign that widens the sum's error, so the net of the sum
``S = sum(I_i - X_i)`` is known to within ``sum(c_i (I_i + X_i)) / 100``. Relative to ``|S|`` the bound is

    bound_pct = sum(c_i * (I_i + X_i)) / |sum(I_i - X_i)|

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


def calc_sum_error_bound_pct(
    class_pct: npt.ArrayLike, e_import_kwh: npt.ArrayLike, e_export_kwh: npt.ArrayLike
) -> float:
    """Worst-case error of the net of the sum of meters' readings, relative to that net.

    Parameters
    ----------
    class_pct : accuracy class of each meter (its error limit) [% of reading], >= 0.
    e_import_kwh : energy each meter registered as import over the period [kWh], >= 0.
    e_export_kwh : energy each meter registered as export over the period [kWh], >= 0.

    Returns
    -------
    float
        ``sum(class_pct * (e_import_kwh + e_export_kwh)) / |sum(e_import_kwh - e_export_kwh)|`` [% of the net
        summed energy]; ``inf`` when the net is zero and some meter registered energy (the relative error is
        unbounded); ``nan`` when no meter registered any energy (the relative error is undefined: callers report
        it as not assessed).

    Raises
    ------
    DataError
        Arrays of different lengths, empty, negative classes or energies, or non-finite values.

    Notes
    -----
    Each register's reading is within ``c_i E / 100`` of the truth, so by the triangle inequality
    ``|sum(err)| <= sum(c_i (I_i + X_i)) / 100``; the bound is attained when every error sits at its limit with
    the sign of its register's contribution to the error of the net (import +, export -).
    """
    c = np.asarray(class_pct, dtype=float)
    imp = np.asarray(e_import_kwh, dtype=float)
    exp = np.asarray(e_export_kwh, dtype=float)
    if c.ndim != 1 or c.shape != imp.shape or c.shape != exp.shape or c.size == 0:
        raise DataError("meter sum: need one accuracy class and one import and export energy per meter (at least one)")
    if not (np.isfinite(c).all() and np.isfinite(imp).all() and np.isfinite(exp).all()):
        raise DataError("meter sum: accuracy classes and energies must be finite")
    if np.any(c < 0):
        raise DataError("meter sum: accuracy classes must be >= 0 %")
    if np.any(imp < 0) or np.any(exp < 0):
        raise DataError("meter sum: import and export energies must be >= 0 kWh")
    err_kwh = float(np.sum(c * (imp + exp)))
    net_kwh = abs(float(np.sum(imp - exp)))
    if not np.any(imp + exp > 0):
        return float("nan")
    if net_kwh == 0.0:
        return float("inf") if err_kwh > 0.0 else 0.0
    return err_kwh / net_kwh
