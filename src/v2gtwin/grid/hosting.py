"""EV hosting capacity of a radial feeder: per node (charging, and V2G export), and as a uniform scaling of the
fleet's charging.

Both start from a LinDistFlow estimate and refine it with the exact AC power flow by bisection, so the
reported figure is exact to ``tol_kw`` (or ``tol_scale``); the binding constraint (the bus whose voltage, or
the branch whose ampacity, limits the hosting) is reported with it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd

from v2gtwin.errors import ConvergenceError, DataError
from v2gtwin.grid.feeder import S_BASE_KVA, Feeder, PowerFlowResult, run_powerflow
from v2gtwin.grid.voltvar import VoltVarCurve, run_voltvar

__all__ = ["FleetHostingResult", "HostingResult", "run_fleet_hosting", "run_node_hosting"]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
_What = TypeVar("_What")

#: Directions of node hosting: EV charging (import, bounded by under-voltage) or V2G export (over-voltage).
HOSTING_DIRECTIONS = ("import", "export")


def _margins(
    feeder: Feeder, pf: PowerFlowResult, v_min_pu: float, v_max_pu: float | None = None
) -> tuple[FloatArray, list[str]]:
    """Per step: the smallest margin (voltage [pu above v_min], or below v_max when given, or branch
    [1 - I / ampacity]) and what it is."""
    v_margin = pf.v_pu[:, 1:] - v_min_pu
    if v_max_pu is not None:
        v_margin = np.minimum(v_margin, v_max_pu - pf.v_pu[:, 1:])
    i_margin = 1.0 - pf.i_branch_a[:, 1:] / feeder.ampacity_a[1:]
    vb = np.argmin(np.where(np.isnan(v_margin), -np.inf, v_margin), axis=1)
    ib = np.argmin(np.where(np.isnan(i_margin), -np.inf, i_margin), axis=1)
    rows = np.arange(v_margin.shape[0])
    vm = v_margin[rows, vb]
    im = i_margin[rows, ib]
    margin = np.minimum(vm, im)
    margin = np.where(np.isnan(margin), -np.inf, margin)
    what = [
        "no convergence (voltage collapse)"
        if not np.isfinite(m)
        else (
            f"voltage at bus {feeder.bus_labels[vb[k] + 1]}"
            if vm[k] <= im[k]
            else f"ampacity of {feeder.branch_label[ib[k] + 1]}"
        )
        for k, m in enumerate(margin)
    ]
    return margin, what


@dataclass(frozen=True)
class HostingResult:
    """Per-node EV hosting capacity.

    Attributes
    ----------
    bus_labels : the load buses, in feeder order, labelled as the source publishes them [-].
    p_host_kw : largest EV charging power (``direction="import"``) or V2G export (``"export"``, a positive
        number: the power fed into the feeder) at that bus alone, exact AC [kW].
    p_estimate_kw : the LinDistFlow first estimate [kW].
    binding : the constraint that binds just above ``p_host_kw``.
    v_min_pu : the lower voltage limit used [pu].
    voltvar : name of the volt-var curve on the EV inverter, or "" [-].
    direction : "import" (charging, bounded by under-voltage and ampacity) or "export" (V2G, bounded by
        over-voltage and ampacity) [-].
    v_max_pu : the upper voltage limit used [pu] (binds on export).
    """

    bus_labels: npt.NDArray[np.str_]
    p_host_kw: FloatArray
    p_estimate_kw: FloatArray
    binding: tuple[str, ...]
    v_min_pu: float
    voltvar: str
    direction: Literal["import", "export"] = "import"
    v_max_pu: float = 1.05

    def to_frame(self) -> pd.DataFrame:
        """One row per load bus."""
        return pd.DataFrame(
            {
                "bus": self.bus_labels,
                "p_host_kw": self.p_host_kw,
                "p_estimate_lindistflow_kw": self.p_estimate_kw,
                "binding": self.binding,
                "direction": self.direction,
            }
        )


def _lindistflow_node_estimate(
    feeder: Feeder,
    p0: FloatArray,
    q0: FloatArray,
    v_min_pu: float,
    tan_phi: float,
    direction: Literal["import", "export"] = "import",
    v_max_pu: float = 1.05,
) -> FloatArray:
    base = run_powerflow(feeder, p0, q0, method="lindistflow")
    v02 = base.v_pu[0] ** 2
    r = feeder.path_resistance_ohm() / feeder.z_base_ohm
    x = feeder.path_reactance_ohm() / feeder.z_base_ohm
    with np.errstate(divide="ignore", invalid="ignore"):
        if direction == "import":
            coef = 2.0 * (r + x * tan_phi)  # coef[j, m]: drop of v_j^2 per pu of load at m
            p_v = np.where(coef > 0, (v02[:, None] - v_min_pu**2) / coef, np.inf).min(axis=0)
        else:  # an export P (absorbing P tan phi) raises v_j^2 by 2 (R_jm - X_jm tan phi) P
            coef = 2.0 * (r - x * tan_phi)
            p_v = np.where(coef > 0, (v_max_pu**2 - v02[:, None]) / coef, np.inf).min(axis=0)
    # Ampacity: branches on the path to m carry the extra load; |S_b0 + P(1 + j t)| <= I_max v_parent
    # (export: |S_b0 + P(-1 + j t)|, the same quadratic with the branch's active flow mirrored).
    sign = 1.0 if direction == "import" else -1.0
    anc = feeder.ancestors()
    pb = sign * base.p_branch_kw[0] / S_BASE_KVA
    qb = base.q_branch_kvar[0] / S_BASE_KVA
    vpar = base.v_pu[0][np.maximum(feeder.parent, 0)]
    cap = feeder.ampacity_a / feeder.i_base_a * vpar
    a = 1.0 + tan_phi**2
    b = 2.0 * (pb + qb * tan_phi)
    c = pb**2 + qb**2 - cap**2
    with np.errstate(invalid="ignore"):
        root = (-b + np.sqrt(np.clip(b**2 - 4 * a * c, 0.0, None))) / (2 * a)
    root = np.where(np.isfinite(cap), root, np.inf)
    p_i = np.array([root[anc[m]].min() if m > 0 else np.inf for m in range(feeder.n_bus)])
    return np.minimum(p_v, p_i) * S_BASE_KVA


def run_node_hosting(
    feeder: Feeder,
    p_base_kw: npt.ArrayLike | None = None,
    q_base_kvar: npt.ArrayLike | None = None,
    *,
    v_min_pu: float = 0.95,
    power_factor: float = 1.0,
    voltvar: VoltVarCurve | str | None = None,
    s_over_p: float = 1.2,
    tol_kw: float = 0.01,
    direction: Literal["import", "export"] = "import",
    v_max_pu: float = 1.05,
) -> HostingResult:
    """Largest EV charging power (``direction="import"``) at each load bus alone before a bus falls below
    ``v_min_pu`` or a branch exceeds its ampacity; or largest V2G export (``"export"``) before a bus rises
    above ``v_max_pu`` or a branch exceeds its ampacity.

    Parameters
    ----------
    feeder : the feeder.
    p_base_kw, q_base_kvar : base loads (n_bus,) [kW], [kvar]; default the feeder's own.
    v_min_pu : lowest allowed voltage [pu] (ANSI C84.1 range A service voltage: 0.95).
    v_max_pu : highest allowed voltage [pu] (ANSI C84.1 range A service voltage: 1.05); every candidate is
        checked against both limits, so an import that raised a voltage above it (or an export that
        lowered one below ``v_min_pu``) would bind too.
    direction : "import" (EV charging, + load) or "export" (V2G, the EV feeds ``p_host_kw`` into the bus).
    power_factor : power factor of the EV power (1.0 = unity; charging draws and export absorbs reactive
        power ``P tan(acos pf)``) [-].
    voltvar : volt-var curve on the EV inverter at the node ('A', 'B' or a curve), or None.
    s_over_p : with volt-var, inverter apparent-power rating per kW of charging [kVA/kW].
    tol_kw : bisection tolerance [kW].

    Notes
    -----
    LinDistFlow estimate: ``v_j^2(P) = v_j0^2 - 2 (R_jm + X_jm tan phi) P`` with R, X the common-path
    impedance of buses j and m, so ``P_v = min_j (v_j0^2 - v_min^2) / (2 (R_jm + X_jm tan phi))``; the
    ampacity estimate solves ``|S_b0 + P (1 + j tan phi)| = I_max v_parent`` on every branch of the path.
    Export: the same with ``-P``, i.e. ``P_v = min_j (v_max^2 - v_j0^2) / (2 (R_jm + X_jm tan phi))`` and
    ``|S_b0 - P (1 + j tan phi)| = I_max v_parent``.
    Refinement: Illinois bracketing on ``P`` with the exact sweep on all nodes at once (one batched solve
    per iteration), keeping ``[lo, hi]`` with ``lo`` feasible and ``hi`` infeasible; the result is ``lo``.
    """
    if not 0.0 < v_min_pu < 1.5:
        raise DataError(f"v_min_pu: allowed range (0, 1.5), got {v_min_pu}")
    if not v_min_pu < v_max_pu < 1.5:
        raise DataError(f"v_max_pu: allowed range (v_min_pu = {v_min_pu}, 1.5), got {v_max_pu}")
    if direction not in HOSTING_DIRECTIONS:
        raise DataError(f"direction: must be one of {', '.join(HOSTING_DIRECTIONS)}, got {direction!r}")
    if not 0.0 < power_factor <= 1.0:
        raise DataError(f"power_factor: allowed range (0, 1], got {power_factor}")
    if tol_kw <= 0:
        raise DataError(f"tol_kw: must be > 0, got {tol_kw}")
    p0 = feeder.p_load_kw if p_base_kw is None else np.asarray(p_base_kw, dtype=float)
    q0 = feeder.q_load_kvar if q_base_kvar is None else np.asarray(q_base_kvar, dtype=float)
    tan_phi = math.tan(math.acos(power_factor))
    nodes = np.arange(1, feeder.n_bus)
    k = nodes.size
    sign = 1.0 if direction == "import" else -1.0

    def evaluate(p_ev: FloatArray) -> tuple[FloatArray, list[str]]:
        p_add = np.zeros((k, feeder.n_bus))
        p_add[np.arange(k), nodes] = sign * p_ev
        pb = np.broadcast_to(p0, (k, feeder.n_bus))
        qb = np.broadcast_to(q0, (k, feeder.n_bus)) + np.abs(p_add) * tan_phi
        if voltvar is None:
            pf = run_powerflow(feeder, pb + p_add, qb, on_nonconvergence="nan")
        else:
            try:
                pf = run_voltvar(feeder, pb, qb, p_add, np.abs(p_add) * s_over_p, voltvar).powerflow
            except (ConvergenceError, DataError):  # a collapsing candidate: plain power flow marks it NaN
                pf = run_powerflow(feeder, pb + p_add, qb, on_nonconvergence="nan")
        return _margins(feeder, pf, v_min_pu, v_max_pu)

    base_margin, base_what = evaluate(np.zeros(k))
    if base_margin[0] < 0:
        zeros = np.zeros(k)
        return HostingResult(
            feeder.bus_labels[nodes],
            zeros,
            zeros,
            tuple(f"base case already violates: {base_what[0]}" for _ in nodes),
            v_min_pu,
            "" if voltvar is None else str(voltvar),
            direction,
            v_max_pu,
        )
    est = _lindistflow_node_estimate(feeder, p0, q0, v_min_pu, tan_phi, direction, v_max_pu)[nodes]
    lo, f_lo = np.zeros(k), base_margin.copy()
    hi = np.where(np.isfinite(est), est * 1.1 + 1.0, 1000.0)
    f_hi, _ = evaluate(hi)
    for _ in range(60):  # expand until every node's upper end is infeasible
        ok = f_hi >= 0
        if not ok.any():
            break
        lo, f_lo = np.where(ok, hi, lo), np.where(ok, f_hi, f_lo)
        hi = np.where(ok, hi * 2.0, hi)
        f_hi, _ = evaluate(hi)
    lo, hi, what = _illinois(evaluate, lo, hi, f_lo, f_hi, tol_kw)
    curve_name = "" if voltvar is None else (voltvar if isinstance(voltvar, str) else voltvar.name)
    return HostingResult(feeder.bus_labels[nodes], lo, est, tuple(what), v_min_pu, curve_name, direction, v_max_pu)


def _illinois(
    evaluate: Callable[[FloatArray], tuple[FloatArray, _What]],
    lo: FloatArray,
    hi: FloatArray,
    f_lo: FloatArray,
    f_hi: FloatArray,
    tol: float | FloatArray,
    f_tol: float = 1e-9,
) -> tuple[FloatArray, FloatArray, _What]:
    """Vectorised Illinois (modified regula falsi) root bracketing of a decreasing margin.

    Keeps ``f(lo) >= 0 > f(hi)``; stops per entry when ``hi - lo <= tol`` or ``f(lo) <= f_tol``. Entries
    whose ``f(hi)`` is not finite (no convergence) take bisection steps. Returns (lo, hi, binding at hi).
    Reference: Dowell & Jarratt, "A modified regula falsi method for computing the root of an equation",
    BIT 11, 1971.
    """
    side = np.zeros(lo.shape, dtype=np.int8)  # +1: lo moved last, -1: hi moved last
    fl, fh = f_lo.astype(float).copy(), f_hi.astype(float).copy()
    for _ in range(200):
        active = (hi - lo > tol) & (fl > f_tol)
        if not active.any():
            break
        finite = np.isfinite(fh)
        x = np.where(finite, hi - fh * (hi - lo) / np.where(finite, fh - fl, 1.0), 0.5 * (lo + hi))
        width = hi - lo
        x = np.clip(x, lo + 0.01 * width, hi - 0.01 * width)
        x = np.where(active, x, lo)
        fx, _ = evaluate(x)
        up = active & (fx >= 0)
        down = active & (fx < 0)
        # Illinois: when the same end is kept twice, halve the function value stored at it.
        fh = np.where(up & (side == 1) & np.isfinite(fh), fh * 0.5, fh)
        fl = np.where(down & (side == -1), fl * 0.5, fl)
        lo, fl = np.where(up, x, lo), np.where(up, fx, fl)
        hi, fh = np.where(down, x, hi), np.where(down, fx, fh)
        side = np.where(up, 1, np.where(down, -1, side)).astype(np.int8)
    # Report what binds just above the answer: at lo + tol (or hi if closer).
    probe = np.minimum(hi, lo + np.maximum(tol, 1e-9))
    _, what = evaluate(probe)
    return lo, hi, what


@dataclass(frozen=True)
class FleetHostingResult:
    """Hosting capacity of a fleet's charging profile as a uniform scale factor.

    Attributes
    ----------
    scale : largest factor on the EV charging profile that keeps every step within limits, exact AC [-].
    scale_estimate : the LinDistFlow first estimate [-].
    binding : the constraint that binds just above ``scale``.
    binding_step : step at which it binds [-].
    p_ev_peak_kw : peak aggregate EV charging of the unscaled profile [kW].
    """

    scale: float
    scale_estimate: float
    binding: str
    binding_step: int
    p_ev_peak_kw: float


def run_fleet_hosting(
    feeder: Feeder,
    p_base_kw: npt.ArrayLike,
    q_base_kvar: npt.ArrayLike,
    p_ev_bus_kw: npt.ArrayLike,
    *,
    v_min_pu: float = 0.95,
    tol_scale: float = 1e-4,
    scale_max: float = 1e4,
) -> FleetHostingResult:
    """Largest uniform scaling of the fleet's charging (per-bus profile (n_steps, n_bus) [kW]) that keeps
    every bus at or above ``v_min_pu`` and every branch within ampacity at every step.

    LinDistFlow estimate: ``v_tj^2(a) = v_tj0^2 - 2 a (R p_ev,t)_j``; then Illinois bracketing on ``a`` with
    the exact sweep over the whole time series (one batched solve per iteration).
    """
    pb = np.atleast_2d(np.asarray(p_base_kw, dtype=float))
    qb = np.atleast_2d(np.asarray(q_base_kvar, dtype=float))
    pev = np.atleast_2d(np.asarray(p_ev_bus_kw, dtype=float))
    if not (pb.shape == qb.shape == pev.shape) or pb.shape[1] != feeder.n_bus:
        raise DataError(
            f"p_base_kw, q_base_kvar, p_ev_bus_kw: need equal shapes (n_steps, {feeder.n_bus}), got "
            f"{pb.shape}, {qb.shape}, {pev.shape}"
        )
    peak = float(pev.sum(axis=1).max())

    def evaluate(a: float) -> tuple[float, str, int]:
        pf = run_powerflow(feeder, pb + a * pev, qb, on_nonconvergence="nan")
        m, what = _margins(feeder, pf, v_min_pu)
        t = int(np.argmin(m))
        return float(m[t]), what[t], t

    m0, what0, t0 = evaluate(0.0)
    if m0 < 0:
        return FleetHostingResult(0.0, 0.0, f"base case already violates: {what0}", t0, peak)
    if peak <= 0:
        return FleetHostingResult(math.inf, math.inf, "no EV charging", -1, peak)
    base = run_powerflow(feeder, pb, qb, method="lindistflow")
    r = feeder.path_resistance_ohm() / feeder.z_base_ohm
    drop = 2.0 * (pev / S_BASE_KVA) @ r.T  # (n_steps, n_bus): d(v^2)/da
    with np.errstate(divide="ignore", invalid="ignore"):
        est = float(np.nanmin(np.where(drop > 0, (base.v_pu**2 - v_min_pu**2) / drop, np.inf)))
    lo, hi = 0.0, min(est * 1.1 + 1e-3, scale_max) if math.isfinite(est) else 1.0
    f_lo, f_hi = m0, evaluate(hi)[0]
    while f_hi >= 0:
        lo, f_lo, hi = hi, f_hi, hi * 2.0
        if hi > scale_max:
            return FleetHostingResult(math.inf, est, f"no limit up to scale {scale_max:g}", -1, peak)
        f_hi = evaluate(hi)[0]

    def evaluate_array(a: FloatArray) -> tuple[FloatArray, list[str]]:
        m, what, _ = evaluate(float(a[0]))
        return np.array([m]), [what]

    lo_a, _, _ = _illinois(
        evaluate_array, np.array([lo]), np.array([hi]), np.array([f_lo]), np.array([f_hi]), tol_scale * max(hi, 1.0)
    )
    lo = float(lo_a[0])
    _, what, t = evaluate(min(hi, lo + tol_scale * max(hi, 1.0)))
    return FleetHostingResult(lo, est, what, t, peak)
