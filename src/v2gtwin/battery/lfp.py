"""LFP capacity fade: Sony/Murata US26650FTC1 (LFP / graphite, 3 Ah), the model NREL identified (Gasper et al.
2022) on the TUM ageing data of Naumann et al. (calendar 2018, cycle 2020).

Three loss states add up, each a trajectory carried forward period by period (:mod:`v2gtwin.battery.states`)::

    calendar (time t in days):       q_cal   = 2 q1 (1/2 - 1/(1 + exp((q2 t)^q3)))        (sigmoid)
    cycle (EFC = equivalent cycles):  q_cyc   = (q5 EFC)^q6                                  (power law)
    break-in (more than 3 EFC/day):   q_brk   = 2 q7 (1/2 - 1/(1 + exp((q8 EFC)^q9)))     (sigmoid)

with the rates (``T`` the cell temperature [K], ``Ua`` the graphite potential vs Li [V] at the SoC)::

    q1 = |b0 exp(b1 Ua^(1/2) / T^2) exp(b2 Ua^(1/2) / T)|
    q3 = |b0 exp(b1 Ua^(1/3) / T^4) exp(b2 T^3 Ua^(1/4)) exp(b3 Ua^(1/3) / T^3) exp(b4 T^2 Ua^(1/4))|
    q5 = |b0 + b1 DoD + b2 exp(DoD^2 C^3)|
    q7 = |b0 skewnorm(SoC_mean; 0.5, w_s, a_s) skewnorm(DoD; 0.5, w_d, a_d) sigmoid(DoD)|

``C`` is the mean C-rate, ``Ua`` from the graphite open-circuit potential of Safari & Delacourt (2011, eq.
for U_neg) at the lithiation ``x = 0.0085 + SoC (0.78 - 0.0085)`` (Schimpe et al. 2018). ``q1``, ``q3``, ``q7``
are averaged over the period's samples in time (trapezoid rule). This is NREL's BLAST-Lite model
``Lfp_Gr_SonyMurata3Ah_Battery`` (version 1.1.1), whose parameters are :data:`PARAMS`.

The parameters are those of the NREL identification; Gasper et al. (2022) publish the model form and its
identification on the same data; the paper was not accessible here to check each value, so they are taken as
BLAST-Lite 1.1.1 states them. Validity: calendar 0-60 degC; cycling only at 25 and 45 degC, DoD 80-100 %,
up to 1C charge / 2C discharge; the cycle term has no temperature dependence.

References
----------
P. Gasper, A. Saxon, Y. Shi, E. Endler, K. Smith, F. B. Planella, "Machine-learning assisted identification of
accurate battery lifetime models with uncertainty", J. Electrochem. Soc. 169 (2022) 080518,
doi:10.1149/1945-7111/ac86a8.
M. Naumann, M. Schimpe, P. Keil, H. C. Hesse, A. Jossen, "Analysis and modeling of calendar aging of a
commercial LiFePO4/graphite cell", J. Energy Storage 17 (2018) 153-169, doi:10.1016/j.est.2018.01.019.
M. Naumann, F. B. Spingler, A. Jossen, "Analysis and modeling of cycle aging of a commercial LiFePO4/graphite
cell", J. Power Sources 451 (2020) 227666, doi:10.1016/j.jpowsour.2019.227666.
M. Safari, C. Delacourt, "Modeling of a commercial graphite/LiFePO4 cell", J. Electrochem. Soc. 158(5) (2011)
A562, doi:10.1149/1.3567007.
M. Schimpe et al., "Comprehensive modeling of temperature-dependent degradation mechanisms in lithium iron
phosphate batteries", J. Electrochem. Soc. 165(2) (2018) A181, doi:10.1149/2.1181714jes.
P. Gasper, N. Prakash, K. Smith, BLAST-Lite 1.1.1 (NREL), https://github.com/NREL/BLAST-Lite (model
``lfp_gr_SonyMurata3Ah_2018``).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
from numba import njit, prange
from scipy.special import ndtr

from v2gtwin.battery.states import step_power_b_state, step_sigmoid_state

__all__ = ["BREAK_IN_EFC_PER_DAY", "CAP_AH", "PARAMS", "calc_rates", "calc_ua_v", "run_states"]

FloatArray = npt.NDArray[np.float64]

#: Nominal capacity of the Sony/Murata US26650FTC1 cell [Ah].
CAP_AH: Final = 3.0

#: The break-in loss only grows in a period with more than this many equivalent full cycles per day [1/day]
#: (BLAST-Lite's condition: break-in was seen only in the accelerated tests).
BREAK_IN_EFC_PER_DAY: Final = 3.0

#: Initial break-in loss [pu] (BLAST-Lite starts this state at 1e-10 rather than 0).
BREAK_IN_Y0: Final = 1e-10

#: Capacity-fade parameters (Gasper et al. 2022 identification, as stated by BLAST-Lite 1.1.1).
PARAMS: Final[dict[str, float]] = {
    "q2": 0.000130510034211874,  # [1/day] time scale of the calendar sigmoid
    "q1_b0": 0.989687151293590,
    "q1_b1": -2881067.56019324,  # [K^2 / V^0.5]
    "q1_b2": 8742.06309157261,  # [K / V^0.5]
    "q3_b0": 0.000332850281062177,
    "q3_b1": 734553185711.369,
    "q3_b2": -2.82161575620780e-06,
    "q3_b3": -3284991315.45121,
    "q3_b4": 0.00127227593657290,
    "q8": 0.00303553871631028,  # [1/EFC]
    "q9": 1.43752162947637,
    "q7_b0": 0.582258029148225,
    "q7_soc_skew": 0.0583128906965484,
    "q7_soc_width": 0.208738181522897,
    "q7_dod_skew": -3.80744333129564,
    "q7_dod_width": 1.16126260428210,
    "q7_dod_growth": 25.4130804598602,
    "q6": 1.12847759334355,  # [-] exponent of (q5 EFC)
    "q5_b0": -6.81260579372875e-06,  # [1/EFC]
    "q5_b1": 2.59615973160844e-05,  # [1/EFC per pu DoD]
    "q5_b2": 2.11559710307295e-06,  # [1/EFC]
}


def calc_ua_v(soc_pu: npt.ArrayLike) -> FloatArray:
    """Graphite potential vs Li/Li+ [V] at the cell's SoC [pu] (Safari & Delacourt 2011, with the lithiation
    range 0.0085-0.78 of Schimpe et al. 2018)."""
    x = 8.5e-3 + np.asarray(soc_pu, dtype=np.float64) * (0.78 - 8.5e-3)
    return (
        0.6379
        + 0.5416 * np.exp(-305.5309 * x)
        + 0.044 * np.tanh(-(x - 0.1958) / 0.1088)
        - 0.1978 * np.tanh((x - 1.0571) / 0.0854)
        - 0.6875 * np.tanh((x + 0.0117) / 0.0529)
        - 0.0175 * np.tanh((x - 0.5692) / 0.0875)
    )


def _skewnorm_pdf(x: FloatArray, skew: float, width: float) -> FloatArray:
    z = (x - 0.5) / width
    return 2.0 * np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi) * ndtr(skew * z)


def calc_rates(
    soc_pu: FloatArray, temp_k: FloatArray, t_h: FloatArray, dod_pu: FloatArray, crate0: FloatArray
) -> dict[str, FloatArray]:
    """Degradation rates of one period for each EV.

    Parameters
    ----------
    soc_pu : (n_ev, n_s) SoC at the period's samples, the last closing the period [pu].
    temp_k : (n_ev, n_s) cell temperature [K].
    t_h : (n_s,) time of the samples from the start of the period [h].
    dod_pu : (n_ev,) depth of discharge of the period [pu].
    crate0 : (n_ev,) mean C-rate of the new cell over the period [1/h]; ``q5`` uses it times the remaining
        capacity, so it is returned for :func:`run_states` rather than folded in here.

    Returns
    -------
    dict
        ``q1`` [pu], ``q3`` [-], ``q7`` [pu] (n_ev,) time-averaged; ``dod`` and ``crate0`` passed on.
    """
    p = PARAMS
    ua = calc_ua_v(soc_pu)
    q1 = np.abs(p["q1_b0"] * np.exp(p["q1_b1"] / temp_k**2 * ua**0.5) * np.exp(p["q1_b2"] / temp_k * ua**0.5))
    q3 = np.abs(
        p["q3_b0"]
        * np.exp(p["q3_b1"] / temp_k**4 * ua ** (1 / 3))
        * np.exp(p["q3_b2"] * temp_k**3 * ua ** (1 / 4))
        * np.exp(p["q3_b3"] / temp_k**3 * ua ** (1 / 3))
        * np.exp(p["q3_b4"] * temp_k**2 * ua ** (1 / 4))
    )
    dod = dod_pu[:, None]
    sig = 2.0 * (0.5 - 1.0 / (1.0 + np.exp(p["q7_dod_growth"] * dod)))
    q7 = np.abs(
        p["q7_b0"]
        * _skewnorm_pdf(soc_pu, p["q7_soc_skew"], p["q7_soc_width"])
        * _skewnorm_pdf(dod, p["q7_dod_skew"], p["q7_dod_width"])
        * sig
    )
    span = t_h[-1] - t_h[0]
    return {
        "q1": np.trapezoid(q1, x=t_h, axis=1) / span,
        "q3": np.trapezoid(q3, x=t_h, axis=1) / span,
        "q7": np.trapezoid(q7, x=t_h, axis=1) / span,
        "dod": np.asarray(dod_pu, dtype=np.float64),
        "crate0": np.asarray(crate0, dtype=np.float64),
    }


@njit(parallel=True, cache=True)
def _run(q1, q3, q7, dod, crate0, efc0, dt_days, n_days, days_per_out, pr, out_cal, out_cyc):  # type: ignore[no-untyped-def]
    q2, q5_b0, q5_b1, q5_b2, q6, q8, q9, brk_lim, brk_y0 = pr
    n_ev = q1.shape[0]
    for i in prange(n_ev):
        y_cal = 0.0
        y_cyc = 0.0
        y_brk = brk_y0
        k = 0
        d2 = dod[i] * dod[i]
        for d in range(n_days):
            q = 1.0 - y_cal - y_cyc - y_brk
            efc = efc0[i] * q
            c = crate0[i] * q
            q5 = abs(q5_b0 + q5_b1 * dod[i] + q5_b2 * np.exp(d2 * c * c * c))
            d_cal = step_sigmoid_state(y_cal, dt_days, q1[i], q2, q3[i])
            d_cyc = step_power_b_state(y_cyc, efc, q5, q6)
            d_brk = 0.0
            if efc / dt_days > brk_lim:
                d_brk = step_sigmoid_state(y_brk, efc, q7[i], q8, q9)
            y_cal += d_cal
            y_cyc += d_cyc
            y_brk += d_brk
            if (d + 1) % days_per_out == 0:
                out_cal[i, k] = y_cal
                out_cyc[i, k] = y_cyc + y_brk
                k += 1


def run_states(
    rates: dict[str, FloatArray], efc0: FloatArray, dt_days: float, n_days: int, days_per_out: int
) -> tuple[FloatArray, FloatArray]:
    """Carry the calendar, cycle and break-in losses forward ``n_days`` periods of ``dt_days`` days.

    The period's equivalent full cycles and C-rate scale with the remaining capacity ``q`` (BLAST-Lite's
    convention: the same SoC swing moves less charge in an aged cell). Returns the calendar loss and the cycle
    loss (cycle plus break-in, including the break-in state's initial 1e-10) [pu] after every ``days_per_out``
    periods.
    """
    n_ev = efc0.shape[0]
    n_out = n_days // days_per_out
    out_cal = np.zeros((n_ev, n_out))
    out_cyc = np.zeros((n_ev, n_out))
    p = PARAMS
    pr = (
        p["q2"],
        p["q5_b0"],
        p["q5_b1"],
        p["q5_b2"],
        p["q6"],
        p["q8"],
        p["q9"],
        BREAK_IN_EFC_PER_DAY,
        BREAK_IN_Y0,
    )

    def c(a: FloatArray) -> FloatArray:
        return np.ascontiguousarray(a, dtype=np.float64)

    _run(
        c(rates["q1"]),
        c(rates["q3"]),
        c(rates["q7"]),
        c(rates["dod"]),
        c(rates["crate0"]),
        c(efc0),
        float(dt_days),
        int(n_days),
        int(days_per_out),
        pr,
        out_cal,
        out_cyc,
    )
    return out_cal, out_cyc
