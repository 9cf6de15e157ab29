"""NMC capacity fade: Schmalstieg et al. (2014), Sanyo UR18650E (NMC111 / graphite, 2.15 Ah).

Calendar and cycle ageing add up (Schmalstieg et al. 2014, the capacity model of its sections on calendar and
cycle ageing)::

    q_loss = alpha_cap(V, T) * t^0.75 + beta_cap(V_rms, DoD) * sqrt(Q)

with ``t`` the time [days], ``Q`` the charge throughput of the 2.15 Ah cell [Ah] and

    alpha_cap = (7.543 V - 23.75) * 1e6 * exp(-6976 / T)                          (calendar)
    beta_cap  = 7.348e-3 (V_rms - 3.667)^2 + 7.60e-4 + 4.081e-3 DoD                 (cycle)

``V`` is the cell's open-circuit voltage at the SoC [V], ``T`` the cell temperature [K], ``V_rms`` the root
mean square of the voltage over the period [V], ``DoD`` the depth of discharge [pu]. Within a period (a day)
``alpha_cap`` is the time average of its value at each sample (trapezoid rule) and the period's state
advances as in :mod:`v2gtwin.battery.states`: this is the structure of NREL's BLAST-Lite model
``Nmc111_Gr_Sanyo2Ah_Battery`` (version 1.1.1), so the two agree step by step.

The open-circuit voltage table :data:`OCV_V` is the one BLAST-Lite 1.1.1 uses (digitised by NREL from
Schmalstieg et al. Fig. 1, with Ecker et al. 2014 for 0 and 10 % SoC); it is published data, reproduced with
its source (BLAST-Lite: BSD-3-Clause, Copyright (c) 2023 Alliance for Energy Innovation, LLC).

Validity (BLAST-Lite's summary of the test matrix): calendar ageing varied SoC at 50 degC and temperature at
50 % SoC; cycle ageing at 35 degC and 1C only; the cycle term has no temperature or C-rate dependence.

References
----------
J. Schmalstieg, S. Kaebitz, M. Ecker, D. U. Sauer, "A holistic aging model for Li(NiMnCo)O2 based 18650
lithium-ion batteries", J. Power Sources 257 (2014) 325-334, doi:10.1016/j.jpowsour.2014.02.012.
M. Ecker et al., "Calendar and cycle life study of Li(NiMnCo)O2-based 18650 lithium-ion batteries",
J. Power Sources 248 (2014) 839-851, doi:10.1016/j.jpowsour.2013.09.143.
P. Gasper, N. Prakash, K. Smith, BLAST-Lite 1.1.1 (NREL), https://github.com/NREL/BLAST-Lite (model
``nmc111_gr_Sanyo2Ah_2014``).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
from numba import njit, prange

from v2gtwin.battery.states import calc_power_state_unit
from v2gtwin.errors import DataError

__all__ = ["CAP_AH", "OCV_SOC_PU", "OCV_V", "PARAMS", "calc_ocv_v", "calc_rates", "run_states"]

FloatArray = npt.NDArray[np.float64]

#: Capacity of the Sanyo UR18650E cell that converts equivalent cycles to Ah in beta_cap's sqrt(Q) [Ah], as
#: BLAST-Lite 1.1.1 takes it (Ecker et al. 2014 give 2.05 Ah nominal for the same cell, and so does SimSES's cell
#: class; which value Schmalstieg et al. fitted Q with could not be checked without the paper; the choice scales
#: the cycle loss by sqrt(2.15/2.05) = 1.024 at most).
CAP_AH: Final = 2.15

#: Capacity-fade parameters of Schmalstieg et al. (2014), alpha_cap (calendar) and beta_cap (cycle) with the
#: exponents 0.75 of time and 0.5 of charge throughput. The paper was not reachable here, so no equation or table
#: number is quoted; the values are those BLAST-Lite 1.1.1 transcribes from it (NREL), and a second, independent
#: transcription -- SimSES (TU Munich, classes SanyoNMCCalendarDegradationModel / SanyoNMCCyclicDegradationModel)
#: -- has the same nine constants and both exponents.
PARAMS: Final[dict[str, float]] = {
    "qcal_a_per_v": 7.543,  # [1/V] slope of alpha_cap in the voltage
    "qcal_b": -23.75,  # [-] offset of alpha_cap
    "qcal_scale": 1e6,  # [-] factor 10^6 of alpha_cap
    "qcal_c_k": -6976.0,  # [K] Arrhenius term exp(C/T)
    "qcal_p": 0.75,  # [-] exponent of time in days
    "qcyc_a_per_v2": 7.348e-3,  # [1/V^2] curvature of beta_cap in V_rms
    "qcyc_b_v": 3.667,  # [V] V_rms of the least cycle ageing
    "qcyc_c": 7.6e-4,  # [-] offset of beta_cap
    "qcyc_d": 4.081e-3,  # [1/pu DoD] slope of beta_cap in DoD
    "qcyc_p": 0.5,  # [-] exponent of the charge throughput in Ah
}

#: SoC grid of the open-circuit voltage table [pu] (BLAST-Lite 1.1.1; see module docstring).
OCV_SOC_PU: Final = np.array(
    [0, 0.008637153, 0.026779514, 0.044921875, 0.063064236, 0.081206597, 0.099348958, 0.117491319, 0.135633681,
     0.153776042, 0.171918403, 0.190060764, 0.208203125, 0.226345486, 0.244487847, 0.262630208, 0.280772569,
     0.298914931, 0.317057292, 0.335199653, 0.353342014, 0.371484375, 0.389626736, 0.407769097, 0.425911458,
     0.444053819, 0.462196181, 0.480338542, 0.498480903, 0.516623264, 0.534765625, 0.552907986, 0.571050347,
     0.589192708, 0.607335069, 0.625477431, 0.643619792, 0.661762153, 0.679904514, 0.698046875, 0.716189236,
     0.734331597, 0.752473958, 0.770616319, 0.788758681, 0.806901042, 0.825043403, 0.843185764, 0.861328125,
     0.879470486, 0.897612847, 0.915755208, 0.933897569, 0.952039931, 0.970182292, 0.988324653, 0.998220486, 1],
)  # fmt: skip

#: Open-circuit voltage of the Sanyo UR18650E at :data:`OCV_SOC_PU` [V].
OCV_V: Final = np.array(
    [3.331, 3.345014187, 3.37917149, 3.411603677, 3.440585632, 3.466289865, 3.490268982, 3.511315401, 3.529946658,
     3.547197821, 3.561688798, 3.574972194, 3.586357962, 3.597053683, 3.605506753, 3.613442288, 3.620342753,
     3.626380661, 3.632073544, 3.63690387, 3.642079219, 3.646909545, 3.652084894, 3.657605266, 3.663470662,
     3.670198615, 3.677444104, 3.686759732, 3.696420384, 3.708323686, 3.720572012, 3.734372943, 3.749553967,
     3.765252525, 3.781123596, 3.797857224, 3.814590852, 3.832532062, 3.849783226, 3.866861877, 3.884458064,
     3.900846669, 3.917752809, 3.934831461, 3.953462717, 3.971921462, 3.991415276, 4.011771649, 4.03195551,
     4.05196686, 4.070770628, 4.087849279, 4.104237884, 4.120108955, 4.135980025, 4.152541142, 4.160649189, 4.162],
)  # fmt: skip


def calc_ocv_v(soc_pu: npt.ArrayLike) -> FloatArray:
    """Open-circuit voltage of the cell [V] at ``soc_pu`` [pu] (linear interpolation in :data:`OCV_V`; held at
    the end values outside 0-1)."""
    return np.interp(np.asarray(soc_pu, dtype=np.float64), OCV_SOC_PU, OCV_V)


def calc_rates(soc_pu: FloatArray, temp_k: FloatArray, t_h: FloatArray, dod_pu: FloatArray) -> dict[str, FloatArray]:
    """Degradation rates of one period for each EV.

    Parameters
    ----------
    soc_pu : (n_ev, n_s) SoC at the period's samples, the last sample closing the period [pu].
    temp_k : (n_ev, n_s) cell temperature at the samples [K].
    t_h : (n_s,) time of the samples from the start of the period [h].
    dod_pu : (n_ev,) depth of discharge of the period [pu].

    Returns
    -------
    dict
        ``alpha_cap`` (n_ev,) [1/day^0.75]: time average of alpha_cap; ``beta_cap`` (n_ev,) [1/Ah^0.5]
        with ``V_rms`` the root mean square of the samples' voltage.
    """
    p = PARAMS
    v = calc_ocv_v(soc_pu)
    alpha = (p["qcal_a_per_v"] * v + p["qcal_b"]) * p["qcal_scale"] * np.exp(p["qcal_c_k"] / temp_k)
    alpha_mean = np.trapezoid(alpha, x=t_h, axis=1) / (t_h[-1] - t_h[0])
    v_rms = np.sqrt(np.mean(v * v, axis=1))
    beta = p["qcyc_a_per_v2"] * (v_rms - p["qcyc_b_v"]) ** 2 + p["qcyc_c"] + p["qcyc_d"] * dod_pu
    return {"alpha_cap": alpha_mean, "beta_cap": beta}


#: EVs per parallel block: the days run outer and the EVs of a block inner, so the compiler can vectorise the
#: update across EVs instead of waiting on each EV's chain of dependent divisions.
BLOCK: Final = 512


@njit(parallel=True, cache=True)
def _run(alpha, beta, efc0, u_cal, n_out, days_per_out, cap_ah, out_cal, out_cyc):  # type: ignore[no-untyped-def]
    n_ev = alpha.shape[0]
    n_blocks = (n_ev + BLOCK - 1) // BLOCK
    for b in prange(n_blocks):
        i0 = b * BLOCK
        i1 = min(i0 + BLOCK, n_ev)
        m = i1 - i0
        y_cyc = np.zeros(m)
        ah_q = np.empty(m)  # charge throughput of a period per unit of remaining capacity [Ah]
        kk = np.empty(m)  # 0.5 beta^2: the slope of the square-root law (qcyc_p = 0.5) is kk * dAh / y
        for j in range(m):
            ah_q[j] = efc0[i0 + j] * 2.0 * cap_ah
            kk[j] = 0.5 * beta[i0 + j] * beta[i0 + j]
        d = 0
        for k in range(n_out):
            for _ in range(days_per_out):
                u = u_cal[d - 1] if d > 0 else 0.0
                if d == 0:
                    for j in range(m):  # a fresh state follows the trajectory itself: beta * Ah^0.5
                        y_cyc[j] = beta[i0 + j] * np.sqrt(ah_q[j])
                else:
                    for j in range(m):
                        y = y_cyc[j]
                        # no capacity left (total loss 1): no throughput, the cycle state stops (never negative)
                        ah = max(ah_q[j] * (1.0 - alpha[i0 + j] * u - y), 0.0)
                        if y > 0.0:
                            y_cyc[j] = y + kk[j] * ah / y
                        else:
                            y_cyc[j] = beta[i0 + j] * np.sqrt(ah) if ah > 0.0 else 0.0
                d += 1
            for j in range(m):
                out_cal[i0 + j, k] = alpha[i0 + j] * u_cal[d - 1]
                out_cyc[i0 + j, k] = y_cyc[j]


def run_states(
    rates: dict[str, FloatArray], efc0: FloatArray, dt_days: float, n_days: int, days_per_out: int
) -> tuple[FloatArray, FloatArray]:
    """Carry the calendar and cycle losses forward ``n_days`` periods of ``dt_days`` days each.

    ``efc0`` (n_ev,) are the equivalent full cycles of a period of the new cell [-]; as the cell loses capacity,
    the same SoC swing moves less charge (``Q = efc0 * q * 2 * 2.15 Ah`` with ``q`` the remaining capacity),
    as in BLAST-Lite. The calendar state, with equal periods, is ``alpha_cap`` times one sequence
    (:func:`~v2gtwin.battery.states.calc_power_state_unit`). Returns the calendar and cycle losses [pu] after
    every ``days_per_out`` periods.
    """
    n_ev = efc0.shape[0]
    if rates["alpha_cap"].shape != (n_ev,) or rates["beta_cap"].shape != (n_ev,):
        raise DataError(f"rates and efc0 must all be ({n_ev},)")
    n_out = n_days // days_per_out
    out_cal = np.zeros((n_ev, n_out))
    out_cyc = np.zeros((n_ev, n_out))
    p = PARAMS
    _run(
        np.ascontiguousarray(rates["alpha_cap"], dtype=np.float64),
        np.ascontiguousarray(rates["beta_cap"], dtype=np.float64),
        np.ascontiguousarray(efc0, dtype=np.float64),
        calc_power_state_unit(float(dt_days), p["qcal_p"], int(n_days)),
        int(n_out),
        int(days_per_out),
        CAP_AH,
        out_cal,
        out_cyc,
    )
    return out_cal, out_cyc
