"""LFP capacity fade: Sony/Murata 3 Ah LFP/graphite cylindrical cell, the model NREL identified (Gasper et al.
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
identification on the same data; the paper (open access) was not reachable from the development machine, so
no value is checked against its tables: they are taken as BLAST-Lite 1.1.1 states them, and every term, the
break-in term included (a 3.6 EFC/day reference profile), is checked against BLAST-Lite's own runs.
Validity (BLAST-Lite's summary of the test matrix): cycling only at 25 and
45 degC (its stated range 20-40 degC), DoD 80-100 %, up to 1C charge / 2C discharge; no low-temperature data;
the cycle term has no temperature dependence.

References
----------
P. Gasper et al., "Machine-learning assisted identification of
accurate battery lifetime models with uncertainty", J. Electrochem. Soc. 169 (2022) 080518,
doi:10.1149/1945-7111/ac86a8.
M. Naumann, M. Schimpe, P. Keil, H. C. Hesse, A. Jossen, "Analysis and modeling of calendar aging of a
commercial LiFePO4/graphite cell", J. Energy Storage 17 (2018), doi:10.1016/j.est.2018.01.019.
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

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr

from v2gtwin.battery.states import step_sigmoid_state
from v2gtwin.errors import DataError

__all__ = ["BREAK_IN_EFC_PER_DAY", "CAP_AH", "PARAMS", "calc_rates", "calc_ua_v", "run_states"]

FloatArray = npt.NDArray[np.float64]

#: Nominal capacity of the Sony/Murata LFP cell [Ah].
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


#: EVs per block: the days run outer and a block's EVs inner, as whole-array numpy operations (numpy's SIMD
#: ``exp`` and ``log`` take about 1 ns per value here, against about 15 ns for scalar libm calls in a compiled
#: loop, and this model needs about six of them per EV and day). 8192 EVs keep a block's arrays in L2 cache.
BLOCK: Final = 8192


def _run_block(
    r: dict[str, FloatArray], e0: FloatArray, dt_days: float, n_out: int, days_per_out: int
) -> tuple[FloatArray, FloatArray]:
    """The three states of one block of EVs, day by day; the losses after every ``days_per_out`` days."""
    p = PARAMS
    q1, q3, q7, dod, c0 = r["q1"], r["q3"], r["q7"], r["dod"], r["crate0"]
    m = q1.size
    q2, q6 = p["q2"], p["q6"]
    lin = p["q5_b0"] + p["q5_b1"] * dod
    a_c = dod * dod * c0**3  # q5's exponent dod^2 (c0 q)^3 = a_c q^3
    e_cal = 1.0 - 1.0 / q3
    coef = q3 * q2 / (2.0 * q1) * dt_days  # calendar slope: coef (q1^2 - y^2) L^(1 - 1/q3), see step_sigmoid_state
    q1sq = q1 * q1
    e_cyc = 1.0 - 1.0 / q6  # cycle slope: q6 q5 y^(1 - 1/q6) dEFC, see step_power_b_state
    y_cal, y_cyc, y_brk = np.zeros(m), np.zeros(m), np.full(m, BREAK_IN_Y0)
    q, efc, q5, t1, t2 = np.empty(m), np.empty(m), np.empty(m), np.empty(m), np.empty(m)
    out_cal, out_cyc = np.zeros((m, n_out)), np.zeros((m, n_out))
    d = 0
    for k in range(n_out):
        for _ in range(days_per_out):
            np.subtract(1.0, y_cal, out=q)
            q -= y_cyc
            q -= y_brk
            np.maximum(q, 0.0, out=q)  # no capacity left (total loss 1): no cycles, the states stop growing
            np.multiply(e0, q, out=efc)
            np.multiply(q, q, out=t1)
            t1 *= q
            t1 *= a_c
            np.exp(t1, out=t1)
            t1 *= p["q5_b2"]
            t1 += lin
            np.abs(t1, out=q5)
            if d == 0:  # a new cell follows the trajectories themselves
                d_cal = 2.0 * q1 * (0.5 - 1.0 / (1.0 + np.exp((q2 * dt_days) ** q3)))
                d_cyc = np.zeros(m)
            else:
                with np.errstate(divide="ignore", invalid="ignore"):
                    np.add(q1, y_cal, out=t1)
                    np.subtract(q1, y_cal, out=t2)
                    t1 /= t2
                    np.log(t1, out=t1)
                    np.log(t1, out=t1)
                    t1 *= e_cal
                    np.exp(t1, out=t1)
                    np.multiply(y_cal, y_cal, out=t2)
                    np.subtract(q1sq, t2, out=t2)
                    t2 *= coef
                    t1 *= t2
                    d_cal = np.where(y_cal < q1, t1, 0.0)  # at the asymptote the state does not grow
                    np.log(y_cyc, out=t2)
                    t2 *= e_cyc
                    np.exp(t2, out=t2)
                    t2 *= q5
                    t2 *= efc
                    t2 *= q6
                d_cyc = t2
            fresh = y_cyc == 0.0
            if fresh.any():  # a fresh cycle state (day 0, or no cycling yet): (q5 EFC)^q6
                d_cyc = np.array(d_cyc, copy=True)
                d_cyc[fresh] = np.where(efc[fresh] > 0.0, (q5[fresh] * efc[fresh]) ** q6, 0.0)
            brk = efc / dt_days > BREAK_IN_EFC_PER_DAY
            for j in np.flatnonzero(brk):  # accelerated-test duty only (more than 3 EFC a day)
                y_brk[j] += step_sigmoid_state(float(y_brk[j]), float(efc[j]), float(q7[j]), p["q8"], p["q9"])
            y_cal += d_cal
            y_cyc += d_cyc
            d += 1
        out_cal[:, k] = y_cal
        out_cyc[:, k] = y_cyc + y_brk
    return out_cal, out_cyc


def run_states(
    rates: dict[str, FloatArray], efc0: FloatArray, dt_days: float, n_days: int, days_per_out: int
) -> tuple[FloatArray, FloatArray]:
    """Carry the calendar, cycle and break-in losses forward ``n_days`` periods of ``dt_days`` days.

    The period's equivalent full cycles and C-rate scale with the remaining capacity ``q`` (BLAST-Lite's
    convention: the same SoC swing moves less charge in an aged cell). The slopes are those of
    :mod:`v2gtwin.battery.states`, evaluated on whole blocks of EVs; blocks run on a few threads (numpy releases
    the GIL). Returns the calendar loss and the cycle loss (cycle plus break-in, including the break-in state's
    initial 1e-10) [pu] after every ``days_per_out`` periods.
    """
    n_ev = efc0.shape[0]
    keys = ("q1", "q3", "q7", "dod", "crate0")
    if any(rates[k].shape != (n_ev,) for k in keys):
        raise DataError(f"rates and efc0 must all be ({n_ev},)")
    n_out = n_days // days_per_out
    out_cal = np.zeros((n_ev, n_out))
    out_cyc = np.zeros((n_ev, n_out))
    e0 = np.asarray(efc0, dtype=np.float64)

    def work(i0: int) -> None:
        sl = slice(i0, min(i0 + BLOCK, n_ev))
        blk = {k: np.asarray(rates[k][sl], dtype=np.float64) for k in keys}
        out_cal[sl], out_cyc[sl] = _run_block(blk, e0[sl], float(dt_days), n_out, int(days_per_out))

    starts = range(0, n_ev, BLOCK)
    if n_ev <= BLOCK:
        for i0 in starts:
            work(i0)
    else:
        with ThreadPoolExecutor(max_workers=min(len(starts), os.cpu_count() or 1, 4)) as pool:
            list(pool.map(work, starts))
    return out_cal, out_cyc
