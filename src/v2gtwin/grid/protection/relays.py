"""Overcurrent relay characteristics and their operation on constant and time-varying currents, and the fault
current of a synchronous generator versus an inverter over time.

Curves (a registry, :data:`CURVES`): the inverse-time characteristics of IEC 60255-151 (standard, very,
extremely and long-time inverse) and IEEE C37.112 (moderately, very and extremely inverse), and a definite-time
element. Every curve is ``t = TDS * f(M)`` with ``M = I / I_pickup``: the time dial scales the time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from v2gtwin.errors import DataError

__all__ = [
    "CURVES",
    "Curve",
    "calc_inverter_fault_current_a",
    "calc_sync_gen_fault_current_a",
    "calc_trip_time_s",
    "calc_trip_time_two_level_s",
    "calc_trip_time_varying_s",
]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Curve:
    """One relay characteristic ``t = TDS * (a / (M^p - 1) + b)`` [s], ``M = I / I_pickup`` > 1.

    Attributes
    ----------
    name : registry key.
    title : name of the curve in its standard.
    a, b, p : the standard's constants (``a`` in s per unit TDS, ``b`` in s per unit TDS, ``p`` [-]); a
        definite-time element has ``p = 0`` and ``t = TDS * b`` with TDS the delay [s].
    standard : the standard that publishes the constants.
    tds_min, tds_max : the time-dial range searched when settings are proposed [-] (definite time: [s]).
    """

    name: str
    title: str
    a: float
    b: float
    p: float
    standard: str
    tds_min: float
    tds_max: float

    def shape_s(self, m: npt.ArrayLike) -> FloatArray:
        """Time at TDS = 1 for multiples of pickup ``m`` [s]; ``inf`` at or below pickup (no operation)."""
        m = np.asarray(m, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            t = np.full(m.shape, self.b) if self.p == 0.0 else self.a / (np.power(m, self.p) - 1.0) + self.b
        return np.where(m > 1.0, t, np.inf)


_IEC = "IEC 60255-151:2009, Table 1"
_IEEE = "IEEE Std C37.112-2018, Table 1"

#: Relay curves by name. References: IEC 60255-151:2009 (Measuring relays and protection equipment - Part
#: 151: Functional requirements for over/under current protection), clause 5.5, Table 1:
#: ``t = TMS * k / (M^alpha - 1)``; IEEE Std C37.112-2018 (Standard for Inverse-Time Characteristics Equations
#: for Overcurrent Relays), Table 1: ``t = TD * (A / (M^p - 1) + B)``.
CURVES: dict[str, Curve] = {
    c.name: c
    for c in (
        Curve("iec_si", "IEC standard inverse", 0.14, 0.0, 0.02, _IEC, 0.025, 1.2),
        Curve("iec_vi", "IEC very inverse", 13.5, 0.0, 1.0, _IEC, 0.025, 1.2),
        Curve("iec_ei", "IEC extremely inverse", 80.0, 0.0, 2.0, _IEC, 0.025, 1.2),
        Curve("iec_lti", "IEC long-time inverse", 120.0, 0.0, 1.0, _IEC, 0.025, 1.2),
        Curve("ieee_mi", "IEEE moderately inverse", 0.0515, 0.1140, 0.02, _IEEE, 0.1, 15.0),
        Curve("ieee_vi", "IEEE very inverse", 19.61, 0.491, 2.0, _IEEE, 0.1, 15.0),
        Curve("ieee_ei", "IEEE extremely inverse", 28.2, 0.1217, 2.0, _IEEE, 0.1, 15.0),
        Curve("definite_time", "definite time", 0.0, 1.0, 0.0, "IEC 60255-151:2009, clause 5.4", 0.0, 10.0),
    )
}


def _curve(name: str) -> Curve:
    try:
        return CURVES[name]
    except KeyError:
        raise DataError(f"curve: must be one of {', '.join(CURVES)}, got {name!r}") from None


def calc_trip_time_s(curve: str, i_a: npt.ArrayLike, pickup_a: npt.ArrayLike, tds: npt.ArrayLike) -> FloatArray:
    """Operating time of a relay at a constant current [s] (``inf``: at or below pickup, no operation).

    Parameters
    ----------
    curve : key of :data:`CURVES`.
    i_a : current magnitude seen by the relay [A].
    pickup_a : pickup current [A].
    tds : time-dial (time multiplier) setting [-]; the delay [s] for ``definite_time``.

    Notes
    -----
    ``t = TDS (a / (M^p - 1) + b)``, ``M = I / I_pickup`` (IEC 60255-151: ``a = k``, ``p = alpha``, ``b = 0``).

    References
    ----------
    IEC 60255-151:2009, clause 5.5 and Table 1; IEEE Std C37.112-2018, clause 4 and Table 1.
    """
    c = _curve(curve)
    m = np.abs(np.asarray(i_a, dtype=float)) / np.asarray(pickup_a, dtype=float)
    return np.asarray(np.asarray(tds, dtype=float) * c.shape_s(m), dtype=float)


def calc_trip_time_varying_s(curve: str, t_s: npt.ArrayLike, i_a: npt.ArrayLike, pickup_a: float, tds: float) -> float:
    """Operating time of an inverse-time relay on a time-varying current [s] (``inf``: no operation).

    The relay integrates ``1 / t(I(t))`` and operates when the integral reaches 1; the current is taken as
    piecewise linear between the samples ``(t_s, i_a)`` and the integral by the trapezoidal rule on the
    samples given (pass samples dense enough for the current's changes; a step is two samples at one time).
    Below pickup the integral holds (no reset: an induction disc's reset is not modelled).

    Notes
    -----
    .. math:: \\int_0^{t_{op}} \\frac{dt}{t(I(t))} = 1

    which gives ``t(I)`` at a constant current. A definite-time element operates once the current has stayed
    above pickup for its delay (continuous time above pickup).

    References
    ----------
    IEC 60255-151:2009, clause 5.5 (dependent time characteristic, operation as integral of ``1/t(I)``);
    IEEE Std C37.112-2018, clause 4 (integral form of the relay equation).
    """
    c = _curve(curve)
    t = np.asarray(t_s, dtype=float)
    i = np.abs(np.asarray(i_a, dtype=float))
    if t.ndim != 1 or t.shape != i.shape or t.size < 2:
        raise DataError("t_s, i_a: need two 1-D arrays of the same length >= 2")
    if np.any(np.diff(t) < 0) or not np.all(np.isfinite(t)) or not np.all(np.isfinite(i)):
        raise DataError("t_s: must be finite and non-decreasing (i_a finite)")
    if c.p == 0.0:
        above = i > pickup_a
        t_start = None
        for k in range(t.size):
            if above[k] and t_start is None:
                t_start = t[k]
            elif not above[k]:
                t_start = None
            if t_start is not None and t[k] - t_start >= tds * c.b:
                return float(t_start + tds * c.b)
        return math.inf
    rate = 1.0 / (tds * c.shape_s(i / pickup_a))  # 1/s, 0 below pickup
    dt = np.diff(t)
    cum = np.concatenate(([0.0], np.cumsum(0.5 * (rate[1:] + rate[:-1]) * dt)))
    k = int(np.searchsorted(cum, 1.0))
    if k >= cum.size:
        return math.inf
    if k == 0:
        return float(t[0])
    # Inside the interval the rate is linear: solve the quadratic of the trapezoid for the crossing.
    r0, r1, h, need = rate[k - 1], rate[k], dt[k - 1], 1.0 - cum[k - 1]
    slope = (r1 - r0) / h if h > 0 else 0.0
    flat = abs(slope) < 1e-15
    tau = need / r0 if flat else (-r0 + math.sqrt(max(r0 * r0 + 2.0 * slope * need, 0.0))) / slope
    return float(t[k - 1] + min(max(tau, 0.0), h))


def calc_sync_gen_fault_current_a(
    t_s: npt.ArrayLike,
    i_rated_a: float,
    *,
    e_pu: float = 1.0,
    xd_pp_pu: float = 0.2,
    xd_p_pu: float = 0.3,
    xd_pu: float = 1.8,
    td_pp_s: float = 0.035,
    td_p_s: float = 1.0,
) -> FloatArray:
    """RMS of the AC (symmetrical) fault current of a synchronous generator after a terminal three-phase fault [A].

    Notes
    -----
    .. math:: I(t) = E \\left[ \\left(\\frac{1}{X''_d} - \\frac{1}{X'_d}\\right) e^{-t/T''_d}
              + \\left(\\frac{1}{X'_d} - \\frac{1}{X_d}\\right) e^{-t/T'_d} + \\frac{1}{X_d} \\right] I_r

    the subtransient, transient and steady-state terms; the DC offset is left out (a relay's filter removes
    it). Defaults: a round-rotor machine with constants inside the typical ranges Kundur tabulates.

    References
    ----------
    P. Kundur, Power System Stability and Control, McGraw-Hill, 1994, chapter 4 (synchronous machine
    parameters: the three-phase short-circuit current at the terminals, its time constants, and the typical
    values of the standard parameters).
    """
    if not (0 < xd_pp_pu <= xd_p_pu <= xd_pu) or td_pp_s <= 0 or td_p_s <= 0:
        raise DataError("generator: need 0 < X''d <= X'd <= Xd [pu] and T''d, T'd > 0 [s]")
    t = np.asarray(t_s, dtype=float)
    pu = (
        (1 / xd_pp_pu - 1 / xd_p_pu) * np.exp(-t / td_pp_s)
        + (1 / xd_p_pu - 1 / xd_pu) * np.exp(-t / td_p_s)
        + 1 / xd_pu
    )
    return np.asarray(e_pu * pu * i_rated_a, dtype=float)


def calc_inverter_fault_current_a(
    t_s: npt.ArrayLike, i_rated_a: float, k: float, t_ride_through_s: float | None
) -> FloatArray:
    """Fault current of a current-limited inverter [A]: flat at ``k I_r`` for the ride-through time, then 0
    (the inverter trips); ``t_ride_through_s=None`` keeps it flat (it rides through the whole fault)."""
    t = np.asarray(t_s, dtype=float)
    flat = np.full(t.shape, k * i_rated_a)
    if t_ride_through_s is None:
        return flat
    return np.where(t < t_ride_through_s, flat, 0.0)


def calc_trip_time_two_level_s(
    curve: str,
    i_first_a: npt.ArrayLike,
    i_after_a: npt.ArrayLike,
    pickup_a: npt.ArrayLike,
    tds: npt.ArrayLike,
    t_switch_s: float | None,
) -> FloatArray:
    """Operating time [s] on a current that is ``i_first_a`` until ``t_switch_s`` and ``i_after_a`` after it
    (the aggregators' inverters trip at the end of their ride-through), element-wise; ``inf``: no operation.

    Notes
    -----
    Integrating ``1 / t(I)`` (:func:`calc_trip_time_varying_s`) in closed form: with ``t_1 = t(I_first)`` and
    ``t_2 = t(I_after)``, the relay operates at ``t_1`` if ``t_1 <= t_s``, else at
    ``t_s + (1 - t_s / t_1) t_2``. A definite-time element needs the current above pickup for its whole delay.
    ``t_switch_s=None``: the first current lasts for ever.
    """
    c = _curve(curve)
    t1 = calc_trip_time_s(curve, i_first_a, pickup_a, tds)
    if t_switch_s is None:
        return t1
    t2 = calc_trip_time_s(curve, i_after_a, pickup_a, tds)
    ts = float(t_switch_s)
    if c.p == 0.0:
        above1 = np.isfinite(t1)
        return np.asarray(
            np.where(above1 & (np.isfinite(t2) | (t1 <= ts)), t1, np.where(np.isfinite(t2), ts + t2, np.inf)),
            dtype=float,
        )
    with np.errstate(invalid="ignore"):
        late = ts + (1.0 - ts / t1) * t2
    return np.asarray(np.where(t1 <= ts, t1, np.where(np.isfinite(t2), late, np.inf)), dtype=float)
