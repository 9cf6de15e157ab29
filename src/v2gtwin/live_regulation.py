"""Regulation across the live fleet (``v2gtwin live --regulation``): between two cycles, every ``tick_s`` (2 s, the
PJM regulation signal's resolution) the signal's value times the fleet's regulation capacity is split across the
live EVs around the cycle's set-points with the study's allocation
(:func:`v2gtwin.grid.agc.calc_regulation_allocation`, SoC-aware by default) and the new set-points are sent.

The capacity is the symmetric band the fleet can hold around its set-points at the cycle's SoC,
``min(sum_i (p_i + P_d,i), sum_i (P_c,i - p_i))`` [kW] (each EV between full discharge and full charge), times
``share`` (default 1). The signal: the package's synthetic RegD-like signal
(:func:`v2gtwin.grid.agc.generate_regd_signal`), seeded from the scenario's seed and the cycle. Pure functions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from v2gtwin.errors import DataError
from v2gtwin.fleet import Fleet
from v2gtwin.grid.agc import calc_regulation_allocation, generate_regd_signal

__all__ = ["TICK_S", "RegulationTick", "calc_regulation_capacity_kw", "calc_regulation_setpoints", "live_signal"]

FloatArray = npt.NDArray[np.float64]

#: Time between two regulation set-points [s] (PJM's RegA/RegD signals are sent every 2 s).
TICK_S = 2.0


def calc_regulation_capacity_kw(fleet: Fleet, p0_kw: FloatArray, share: float = 1.0) -> float:
    """The symmetric band [kW] the plugged-in EVs can hold around ``p0_kw`` (see the module docstring)."""
    if not 0.0 <= share <= 1.0:
        raise DataError(f"share = {share}: allowed range 0..1")
    p0 = np.asarray(p0_kw, dtype=float)
    up = float(np.clip(p0 + fleet.p_discharge_max_kw, 0.0, None).sum())
    down = float(np.clip(fleet.p_charge_max_kw - p0, 0.0, None).sum())
    return share * min(up, down)


@dataclass(frozen=True)
class RegulationTick:
    """One regulation step. p_set_kw : (N,) each EV's set-point [kW]. target_kw : the fleet's requested
    injection [kW]. allocated_kw : the injection the allocation found room for [kW]."""

    p_set_kw: FloatArray
    target_kw: float
    allocated_kw: float


def calc_regulation_setpoints(
    fleet: Fleet, p0_kw: FloatArray, signal_pu: float, capacity_kw: float, allocation: str = "soc_aware"
) -> RegulationTick:
    """The set-points for one tick: injection ``signal_pu x capacity_kw`` split across the EVs around ``p0_kw``
    (+ signal: less charging / more discharge), each EV's power ``p0 - injection``."""
    if not (np.isfinite(signal_pu) and -1.0 <= signal_pu <= 1.0):
        raise DataError(f"signal_pu = {signal_pu}: allowed range -1..1")
    target = float(signal_pu) * capacity_kw
    dp = calc_regulation_allocation(
        target,
        fleet.soc0_pu,
        fleet.capacity_kwh,
        fleet.soc_min_pu,
        fleet.soc_max_pu,
        p0_kw,
        fleet.p_charge_max_kw,
        fleet.p_discharge_max_kw,
        fleet.eta_charge,
        fleet.eta_discharge,
        TICK_S,
        allocation,  # type: ignore[arg-type]
    )
    return RegulationTick(np.asarray(p0_kw, dtype=float) - dp, target, float(dp.sum()))


def live_signal(seed: int, cycle: int, n_ticks: int) -> FloatArray:
    """The synthetic regulation signal of one cycle's ``n_ticks`` ticks, seeded from the scenario's seed and the
    cycle [pu]."""
    sig = generate_regd_signal(max(n_ticks, 2), np.random.default_rng([seed, 181, cycle]), dt_s=TICK_S)
    return np.asarray(sig[:n_ticks], dtype=np.float64)
