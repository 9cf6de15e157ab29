"""Three-phase fault currents at every bus of a radial feeder, with and without V2G aggregators.

The upstream grid is a Thevenin source behind its short-circuit impedance; V2G aggregators are current sources
limited to ``k`` times their rated current. The calculation follows the superposition of IEC 60909-0:2016
(equivalent voltage source ``c U_n / sqrt(3)`` at the fault, no load currents, full-converter units as current
sources) and works on the tree directly: every quantity is a path sum from the source or a subtree sum, so the
faults at all ``n`` buses cost O(n) and the currents through ``m`` protective devices O(n m).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from v2gtwin.errors import DataError
from v2gtwin.grid.feeder import Feeder

__all__ = [
    "K_RANGE",
    "Aggregators",
    "FaultResult",
    "GridSource",
    "calc_branch_fault_currents",
    "calc_source_impedance_ohm",
    "path_sum",
    "run_faults",
    "subtree_sum",
]

FloatArray = npt.NDArray[np.float64]
ComplexArray = npt.NDArray[np.complex128]
IntArray = npt.NDArray[np.int64]

#: Allowed range of the current limit factor k (short-circuit current / rated current) of an inverter [-].
#: Inverters limit their fault current to about 1.1-2 x rated; 3 leaves room for oversized power stages.
K_RANGE: tuple[float, float] = (1.0, 3.0)

#: How the aggregators' currents combine with the grid's at the faulted bus.
Combination = Literal["iec60909", "phasor"]


@dataclass(frozen=True)
class GridSource:
    """The upstream grid at the feeder head, as IEC 60909 describes a network feeder.

    Attributes
    ----------
    s_sc_mva : initial symmetrical short-circuit power S''_kQ at the connection point [MVA].
    r_over_x : R/X ratio of the grid's short-circuit impedance [-].
    c_factor : voltage factor c of IEC 60909-0:2016 Table 1 (1.1 for maximum currents at MV, 1.0 for minimum) [-].
    """

    s_sc_mva: float
    r_over_x: float = 0.1
    c_factor: float = 1.1

    def __post_init__(self) -> None:
        if not (math.isfinite(self.s_sc_mva) and self.s_sc_mva > 0):
            raise DataError(f"protection.s_sc_mva: grid short-circuit power must be > 0 MVA, got {self.s_sc_mva}")
        if not (math.isfinite(self.r_over_x) and 0.0 <= self.r_over_x <= 10.0):
            raise DataError(f"protection.r_over_x: allowed range 0 to 10, got {self.r_over_x}")
        if not (0.9 <= self.c_factor <= 1.1):
            raise DataError(f"protection.c_factor: allowed range 0.9 to 1.1 (IEC 60909 Table 1), got {self.c_factor}")


@dataclass(frozen=True)
class Aggregators:
    """V2G aggregators seen as current sources during a fault.

    Attributes
    ----------
    bus : feeder index of each aggregator's bus [-].
    s_rated_kva : rated apparent power of each aggregator's inverters [kVA].
    k : fault-current limit factor of each aggregator, short-circuit / rated current, in :data:`K_RANGE` [-].
    label : name of each aggregator (shown in outputs).
    """

    bus: IntArray
    s_rated_kva: FloatArray
    k: FloatArray
    label: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        bus = np.atleast_1d(np.asarray(self.bus, dtype=np.int64))
        s = np.atleast_1d(np.asarray(self.s_rated_kva, dtype=float))
        k = np.broadcast_to(np.asarray(self.k, dtype=float), bus.shape).copy()
        if s.shape != bus.shape:
            raise DataError(f"aggregators: s_rated_kva has {s.size} entries, bus has {bus.size}")
        label = self.label or tuple(f"aggregator {i + 1}" for i in range(bus.size))
        if len(label) != bus.size:
            raise DataError(f"aggregators: {len(label)} labels for {bus.size} aggregators")
        for i in range(bus.size):
            if not (math.isfinite(s[i]) and s[i] >= 0):
                raise DataError(f"{label[i]}: s_rated_kva must be >= 0 kVA, got {s[i]}")
            if not (K_RANGE[0] <= k[i] <= K_RANGE[1]):
                raise DataError(
                    f"{label[i]}: k (fault current / rated current) allowed range {K_RANGE[0]} to {K_RANGE[1]}, "
                    f"got {k[i]}"
                )
        object.__setattr__(self, "bus", bus)
        object.__setattr__(self, "s_rated_kva", s)
        object.__setattr__(self, "k", k)
        object.__setattr__(self, "label", tuple(label))

    @property
    def n(self) -> int:
        """Number of aggregators [-]."""
        return int(self.bus.size)

    def scaled(self, factor: float) -> Aggregators:
        """The same aggregators with every rating multiplied by ``factor`` (fleet-size sweeps)."""
        return Aggregators(self.bus, self.s_rated_kva * factor, self.k, self.label)


@dataclass(frozen=True)
class FaultResult:
    """Three-phase bolted fault at every bus of a feeder.

    Attributes
    ----------
    i_fault_a : fault current at each bus with the aggregators [A] (``combination`` says how the grid's and the
        aggregators' parts add: IEC 60909's sum of magnitudes or the phasor sum).
    i_fault_grid_a : fault current at each bus without aggregators (the grid alone) [A].
    i_fault_v2g_a : magnitude of the aggregators' part of the fault current at each bus [A].
    i_fault_grid_phasor_a, i_fault_v2g_phasor_a : the two parts as phasors, angle relative to the pre-fault
        voltage of the equivalent source [A].
    z_fault_ohm : Thevenin impedance seen from each bus (grid + path) [ohm].
    i_v2g_phasor_a : current injected by each aggregator [A].
    combination : 'iec60909' or 'phasor'.
    v_prefault_v : the equivalent source voltage c U_n / sqrt(3) [V].
    """

    i_fault_a: FloatArray
    i_fault_grid_a: FloatArray
    i_fault_v2g_a: FloatArray
    i_fault_grid_phasor_a: ComplexArray
    i_fault_v2g_phasor_a: ComplexArray
    z_fault_ohm: ComplexArray
    i_v2g_phasor_a: ComplexArray
    combination: str
    v_prefault_v: float


def calc_source_impedance_ohm(source: GridSource, v_kv: float) -> complex:
    """Short-circuit impedance of the upstream grid [ohm].

    Notes
    -----
    IEC 60909-0:2016 eq. (1): ``Z_Q = c U_nQ^2 / S''_kQ``; ``X_Q = Z_Q / sqrt(1 + (R/X)^2)``, ``R_Q = (R/X) X_Q``.

    References
    ----------
    IEC 60909-0:2016, Short-circuit currents in three-phase a.c. systems - Part 0: Calculation of currents,
    clause 6.2 (network feeders) and Table 1 (voltage factor c).
    """
    z = source.c_factor * v_kv**2 / source.s_sc_mva
    x = z / math.hypot(source.r_over_x, 1.0)
    return complex(source.r_over_x * x, x)


def path_sum(parent: IntArray, values: npt.ArrayLike) -> npt.NDArray[Any]:
    """Sum of ``values`` over the branches on the path from the source to each bus (``values[0]`` included
    at every bus), for a feeder in topological order. ``values`` may have trailing dimensions."""
    out = np.array(values, copy=True)
    for i in range(1, parent.size):
        out[i] += out[parent[i]]
    return out


def subtree_sum(parent: IntArray, values: npt.ArrayLike) -> npt.NDArray[Any]:
    """Sum of ``values`` over each bus and every bus downstream of it (topological order)."""
    out = np.array(values, copy=True)
    for i in range(parent.size - 1, 0, -1):
        out[parent[i]] += out[i]
    return out


def _v2g_currents(aggs: Aggregators, v_kv: float, z_self_ohm: ComplexArray, angle_deg: float | None) -> ComplexArray:
    i_mag = aggs.k * aggs.s_rated_kva / (math.sqrt(3.0) * v_kv)  # kVA / kV = A
    # angle_deg None: IEC 60909 / pandapower, in phase with the voltage its own injection raises.
    ang = -np.angle(z_self_ohm) if angle_deg is None else np.full(aggs.n, math.radians(angle_deg))
    return np.asarray(i_mag * np.exp(1j * ang), dtype=np.complex128)


def run_faults(
    feeder: Feeder,
    source: GridSource,
    aggregators: Aggregators | None = None,
    *,
    combination: Combination = "iec60909",
    angle_deg: float | None = None,
) -> FaultResult:
    """Three-phase bolted fault at every bus, the grid as a Thevenin source and V2G as limited current sources.

    Parameters
    ----------
    feeder : radial feeder (bus 0 is the source bus).
    source : the upstream grid's short-circuit data.
    aggregators : V2G aggregators (None: no V2G).
    combination : 'iec60909' (default): the bus current is the sum of the magnitudes of the grid's and the
        aggregators' parts, IEC 60909-0:2016's conservative rule for full-converter units (pandapower's
        ``calc_sc`` does the same); 'phasor': their phasor sum.
    angle_deg : angle of the aggregators' currents relative to the pre-fault voltage [deg]; None (default):
        each in phase with the voltage its own injection raises at its bus (``-arg Z_bb``, IEC 60909's and
        pandapower's assumption, which makes every aggregator add to the fault current); -90 is a purely
        reactive (lagging) injection of the kind grid codes ask for.

    Returns
    -------
    FaultResult

    Notes
    -----
    For a fault at bus ``f`` with source impedance ``Z_Q`` and path impedance ``Z_f`` (sum of the branch
    impedances from the source to ``f``), IEC 60909's equivalent voltage source gives the grid's part

    .. math:: I_{grid,f} = \\frac{c U_n / \\sqrt{3}}{Z_Q + Z_f}

    and an aggregator at bus ``b`` injecting ``I_b`` sends the share ``Z_{fb} / Z_{ff}`` of it into the fault,
    where the transfer impedance ``Z_{fb} = Z_Q + Z_{lca(f, b)}`` is the impedance of the path common to
    ``f`` and ``b``. Summed over aggregators this is a path sum:
    ``sum_b Z_{fb} I_b = Z_Q S_0 + sum_{j on path to f} z_j S_j`` with ``S_j`` the aggregators' current
    injected downstream of branch ``j``. Loads and line capacitances are neglected (IEC 60909-0 clause 6.1).

    References
    ----------
    IEC 60909-0:2016, clauses 6.1 (equivalent voltage source), 6.2 (network feeders) and 7.1.2
    (full-converter power station units as current sources; sum of magnitudes).
    """
    v_kv = feeder.v_base_kv
    z_q = calc_source_impedance_ohm(source, v_kv)
    z_branch = feeder.r_ohm + 1j * feeder.x_ohm
    z_branch[0] = z_q
    z_self = np.asarray(path_sum(feeder.parent, z_branch), dtype=np.complex128)  # Z_ff = Z_Q + Z_f
    v_pre = source.c_factor * v_kv * 1000.0 / math.sqrt(3.0)
    i_grid = v_pre / z_self
    n = feeder.n_bus
    if aggregators is None or aggregators.n == 0:
        i_inj = np.zeros(0, dtype=np.complex128)
        i_v2g = np.zeros(n, dtype=np.complex128)
    else:
        if np.any((aggregators.bus < 0) | (aggregators.bus >= n)):
            raise DataError(f"aggregators.bus: feeder indices must be in 0..{n - 1}")
        i_inj = _v2g_currents(aggregators, v_kv, z_self[aggregators.bus], angle_deg)
        s_sub = subtree_sum(feeder.parent, np.bincount(aggregators.bus, weights=i_inj.real, minlength=n))
        s_sub = s_sub + 1j * subtree_sum(feeder.parent, np.bincount(aggregators.bus, weights=i_inj.imag, minlength=n))
        w = np.asarray(path_sum(feeder.parent, z_branch * s_sub), dtype=np.complex128)
        i_v2g = w / z_self
    if combination == "iec60909":
        i_total = np.abs(i_grid) + np.abs(i_v2g)
    elif combination == "phasor":
        i_total = np.abs(i_grid + i_v2g)
    else:
        raise DataError(f"combination: must be 'iec60909' or 'phasor', got {combination!r}")
    return FaultResult(
        i_fault_a=np.asarray(i_total, dtype=float),
        i_fault_grid_a=np.abs(i_grid),
        i_fault_v2g_a=np.abs(i_v2g),
        i_fault_grid_phasor_a=i_grid,
        i_fault_v2g_phasor_a=i_v2g,
        z_fault_ohm=z_self,
        i_v2g_phasor_a=i_inj,
        combination=combination,
        v_prefault_v=v_pre,
    )


def calc_branch_fault_currents(
    feeder: Feeder, faults: FaultResult, aggregators: Aggregators | None, branch: npt.ArrayLike
) -> ComplexArray:
    """Phasor current [A] through each given branch for a fault at each bus, positive downstream.

    Parameters
    ----------
    feeder : the feeder of ``faults``.
    faults : result of :func:`run_faults`.
    aggregators : the aggregators ``faults`` was computed with (None: the grid alone).
    branch : feeder index of the bus each branch feeds (the branch from ``parent[j]`` to ``j``), shape (m,).

    Returns
    -------
    Array of shape (n_bus, m): row ``f`` holds the branch currents for a fault at bus ``f``.

    Notes
    -----
    By Kirchhoff's current law on the subtree below branch ``j``: the current entering it is what leaves it
    (the whole fault current ``I_f``, when ``f`` lies in the subtree) minus what is injected inside it
    (``S_j``, the aggregators' current downstream of ``j``):
    ``I_j(f) = [f in subtree(j)] (I_grid,f + I_v2g,f) - S_j``. A negative real part on a branch away from the
    fault is back-feed from the aggregators below it.
    """
    br = np.atleast_1d(np.asarray(branch, dtype=np.int64))
    n = feeder.n_bus
    if np.any((br < 1) | (br >= n)):
        raise DataError(f"branch: feeder indices of the fed bus must be in 1..{n - 1}")
    below = downstream_mask(feeder.parent, br)  # (n_bus, m): bus f lies in the subtree of branch j
    i_total = faults.i_fault_grid_phasor_a + faults.i_fault_v2g_phasor_a
    out = below * i_total[:, None]
    if aggregators is not None and aggregators.n:
        s = np.zeros(n, dtype=np.complex128)
        np.add.at(s, aggregators.bus, faults.i_v2g_phasor_a)
        s_sub = subtree_sum(feeder.parent, s)
        out = out - s_sub[br][None, :]
    return np.asarray(out, dtype=np.complex128)


def downstream_mask(parent: IntArray, branch: IntArray) -> npt.NDArray[np.bool_]:
    """``mask[f, j]``: bus ``f`` lies at or below bus ``branch[j]`` (topological order), shape (n_bus, m)."""
    n = parent.size
    mask = np.zeros((n, branch.size), dtype=bool)
    mask[branch, np.arange(branch.size)] = True
    for i in range(1, n):
        mask[i] |= mask[parent[i]]
    return mask
