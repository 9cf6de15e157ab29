"""Dynamic operating envelopes: the largest EV import (charging) and export (V2G) at every bus and step of a
feeder that keep every voltage within [v_min_pu, v_max_pu] and every branch within its ampacity, given the
base load.

Method (per feeder, all steps at once):

1. a first estimate from the feeder linearised around its exact base case (:mod:`v2gtwin.grid.linear`:
   ``dV_j / dp_m = -R_jm / (S_base V_j0)``, branch flows ``p_b0 + sum of the subtree's extra power``);
2. refined by the exact backward/forward sweep: Illinois bracketing of the largest feasible scale along the
   allocation's direction, every (step, bus) probe of a rule solved side by side as one batched power flow,
   keeping the lower end feasible by exact AC at every iteration, so the reported value is one the exact AC
   solution accepts;
3. verified: the allocated envelope applied at all buses at once (import case and export case), solved by
   the exact power flow, and every bus-step outside [v_min_pu, v_max_pu] (beyond :data:`AC_CHECK_TOL_PU`) and
   every branch-step above its ampacity counted in ``ac_violations``.

The allocation rules (:data:`ALLOCATION_RULES`) say how the network's room is shared among buses.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from v2gtwin.errors import DataError
from v2gtwin.grid.feeder import S_BASE_KVA, Feeder, PowerFlowResult, run_powerflow
from v2gtwin.grid.hosting import _illinois
from v2gtwin.grid.linear import LinearFeederModel, calc_linear_model

if TYPE_CHECKING:
    from v2gtwin.scenario import TimeGrid

__all__ = [
    "AC_CHECK_TOL_PU",
    "ALLOCATION_RULES",
    "AllocationRule",
    "OperatingEnvelope",
    "calc_operating_envelope",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Direction = Literal["import", "export"]

#: Tolerance of the exact-AC verification: a voltage counts as a violation when it lies more than this outside
#: [v_min_pu, v_max_pu] [pu]; a branch when its current exceeds its ampacity by more than this share [-]. The
#: power flow itself converges to 1e-10 pu.
AC_CHECK_TOL_PU = 1e-7

#: Most (probe x bus) entries solved in one batched power flow (bounds the memory of the per-bus rule).
_MAX_BATCH_ENTRIES = 2_000_000

# Codes of what binds: kind * n_bus + bus, kind 0 = v_min, 1 = v_max, 2 = ampacity; -1 no power-flow solution.
_NO_SOLUTION = -1


@dataclass(frozen=True)
class AllocationRule:
    """How an operating envelope shares the network among buses.

    Attributes
    ----------
    name : key in :data:`ALLOCATION_RULES`.
    description : one sentence printed with every envelope.
    simultaneous : True when the per-bus values hold all at once (the envelope applied at every bus together
        passes exact AC); False for the per-bus optimistic bound.
    weight : what ``weight_bus`` means for the rule ("" when the rule does not use it).
    """

    name: str
    description: str
    simultaneous: bool
    weight: str


#: The allocation rules, by name.
ALLOCATION_RULES: dict[str, AllocationRule] = {
    "equal_per_ev": AllocationRule(
        "equal_per_ev",
        "one limit per EV, the same at every bus at a step: bus j may take alpha_t x (EVs at j); alpha_t the "
        "largest value the exact AC solution accepts with every bus at its limit at once",
        True,
        "EVs at the bus",
    ),
    "proportional_to_rating": AllocationRule(
        "proportional_to_rating",
        "limits proportional to the charger rating at each bus: bus j may take alpha_t x (charger kW at j); "
        "alpha_t the largest value the exact AC solution accepts with every bus at its limit at once",
        True,
        "charger kW at the bus",
    ),
    "per_bus_max": AllocationRule(
        "per_bus_max",
        "each bus alone, every other bus at its base load: an optimistic bound per bus, NOT feasible for all "
        "buses at once (ac_violations counts what the exact AC solution finds when they are applied together)",
        False,
        "",
    ),
}


@dataclass(frozen=True)
class OperatingEnvelope:
    """Import and export limits of EVs at every bus and step of one feeder.

    Attributes
    ----------
    feeder_name : the feeder's name.
    bus_labels : bus labels as the source publishes them, in feeder order (n_bus,) [-].
    rule : allocation rule (key of :data:`ALLOCATION_RULES`).
    v_min_pu, v_max_pu : the voltage limits [pu].
    p_import_max_kw : largest EV import (charging) at each bus on top of its base load, (n_steps, n_bus) >= 0
        [kW]; 0 at the source bus, at buses of weight 0 under the simultaneous rules, and at steps whose base
        load alone is outside the limits.
    p_export_max_kw : largest EV export (V2G, power fed into the bus), (n_steps, n_bus) >= 0 [kW].
    binding_import, binding_export : what limits each value, (n_steps, n_bus) [-]: ``"v_min at bus X"``,
        ``"v_max at bus X"``, ``"ampacity of <branch>"``, ``"no power-flow solution"``, ``"base load: ..."``
        (the base case alone violates it), ``"none"`` (no EVs, or the source bus).
    ac_violations : bus-steps outside [v_min_pu, v_max_pu] plus branch-steps above ampacity when the
        envelope is applied at every bus at once, solved by exact AC, import and export cases together, at
        steps whose base load is within limits [-]. 0 for the simultaneous rules (anything else is a bug);
        the optimism of ``per_bus_max``.
    simultaneous : True when the per-bus limits hold all at once [-].
    weight_bus : the allocation weight of each bus (EVs, or charger kW), (n_bus,) [-] or [kW].
    alpha_import, alpha_export : the common scale per step of the simultaneous rules, (n_steps,)
        [kW per EV for equal_per_ev, kW per kW of charger rating for proportional_to_rating]; None for
        per_bus_max.
    p_import_estimate_kw, p_export_estimate_kw : the linearised first estimate of the same limits
        (n_steps, n_bus) [kW].
    base_violation_steps : steps whose base load alone is outside the limits (envelope 0 there) [-].
    notes : what a reader of any output must know (the rule, the feeder's notes, the check's tolerance).
    """

    feeder_name: str
    bus_labels: npt.NDArray[np.str_]
    rule: str
    v_min_pu: float
    v_max_pu: float
    p_import_max_kw: FloatArray
    p_export_max_kw: FloatArray
    binding_import: npt.NDArray[np.str_]
    binding_export: npt.NDArray[np.str_]
    ac_violations: int
    simultaneous: bool
    weight_bus: FloatArray
    alpha_import: FloatArray | None
    alpha_export: FloatArray | None
    p_import_estimate_kw: FloatArray
    p_export_estimate_kw: FloatArray
    base_violation_steps: int
    notes: tuple[str, ...]

    @property
    def n_steps(self) -> int:
        """Number of steps [-]."""
        return int(self.p_import_max_kw.shape[0])

    def to_frame(self, time: TimeGrid | None = None) -> pd.DataFrame:
        """Tidy table: one row per (step, bus) with the import and export limits and what binds them (and the
        clock time of the step when ``time`` is given), and on every row the allocation rule and whether its
        limits hold at all buses at once (``simultaneous``: False for per_bus_max, an optimistic bound)."""
        n_steps, n_bus = self.p_import_max_kw.shape
        steps = np.repeat(np.arange(n_steps), n_bus)
        cols: dict[str, Any] = {"step": steps}
        if time is not None:
            clocks = np.array([time.clock_label(t) for t in range(n_steps)])
            cols["clock"] = clocks[steps]
        cols |= {
            "bus": np.tile(self.bus_labels, n_steps),
            "p_import_max_kw": self.p_import_max_kw.ravel(),
            "p_export_max_kw": self.p_export_max_kw.ravel(),
            "binding_import": self.binding_import.ravel(),
            "binding_export": self.binding_export.ravel(),
            "rule": self.rule,
            "simultaneous": self.simultaneous,
        }
        return pd.DataFrame(cols)

    def bus_summary(self) -> pd.DataFrame:
        """One row per bus: its weight, the lowest import and export limit over the horizon, the step of each and
        what binds there."""
        ti = np.argmin(self.p_import_max_kw, axis=0)
        te = np.argmin(self.p_export_max_kw, axis=0)
        cols = np.arange(self.bus_labels.size)
        return pd.DataFrame(
            {
                "bus": self.bus_labels,
                "weight": self.weight_bus,
                "p_import_max_lowest_kw": self.p_import_max_kw[ti, cols],
                "p_import_max_lowest_step": ti,
                "binding_import": self.binding_import[ti, cols],
                "p_export_max_lowest_kw": self.p_export_max_kw[te, cols],
                "p_export_max_lowest_step": te,
                "binding_export": self.binding_export[te, cols],
            }
        )

    def to_dict(self, time: TimeGrid | None = None, *, per_bus_steps: bool = False) -> dict[str, Any]:
        """JSON-ready summary (the keys the study and ``v2gtwin network envelope --json`` share): the rule and
        its meaning, the check, per step the feeder's total import / export limit (simultaneous rules; None for
        per_bus_max, whose sum over buses is not a feasible total), and per bus the lowest limits of the day.

        With ``per_bus_steps`` (``v2gtwin network envelope --json``; not in results.json, whose size it would
        multiply by the buses) also ``p_import_max_kw`` and ``p_export_max_kw``: per bus label, the limit at
        every step [kW] — for per_bus_max the only per-step values."""
        rule = ALLOCATION_RULES[self.rule]
        buses = self.bus_summary()
        if time is not None:
            buses["p_import_max_lowest_clock"] = [time.clock_label(int(t)) for t in buses.p_import_max_lowest_step]
            buses["p_export_max_lowest_clock"] = [time.clock_label(int(t)) for t in buses.p_export_max_lowest_step]
        return {
            "feeder": self.feeder_name,
            "rule": self.rule,
            "rule_description": rule.description,
            "simultaneous": self.simultaneous,
            "weight": rule.weight,
            "v_min_pu": self.v_min_pu,
            "v_max_pu": self.v_max_pu,
            "ac_violations": self.ac_violations,
            "ac_check_tol_pu": AC_CHECK_TOL_PU,
            "base_violation_steps": self.base_violation_steps,
            "notes": list(self.notes),
            "p_import_max_total_kw": self.p_import_max_kw.sum(axis=1) if self.simultaneous else None,
            "p_export_max_total_kw": self.p_export_max_kw.sum(axis=1) if self.simultaneous else None,
            "alpha_import": self.alpha_import,
            "alpha_export": self.alpha_export,
            "buses": buses.to_dict(orient="records"),
        } | (
            {
                "p_import_max_kw": {str(b): self.p_import_max_kw[:, j] for j, b in enumerate(self.bus_labels)},
                "p_export_max_kw": {str(b): self.p_export_max_kw[:, j] for j, b in enumerate(self.bus_labels)},
            }
            if per_bus_steps
            else {}
        )


# --- the exact search -----------------------------------------------------------------------------------
def _margin(
    feeder: Feeder, v: FloatArray, i_branch_a: FloatArray, v_min_pu: float, v_max_pu: float
) -> tuple[FloatArray, IntArray]:
    """Per probe (row of ``v`` [pu], ``i_branch_a`` [A]): the smallest margin ([pu] of voltage to either limit,
    or 1 - I / ampacity) and its code."""
    n = feeder.n_bus
    stacked = np.concatenate([v - v_min_pu, v_max_pu - v, 1.0 - i_branch_a / feeder.ampacity_a[None, :]], axis=1)
    stacked[:, [0, n, 2 * n]] = np.inf  # the source bus and its (absent) branch
    code = np.argmin(stacked, axis=1)
    margin = stacked[np.arange(stacked.shape[0]), code]
    bad = np.isnan(margin) | np.isnan(v).any(axis=1)
    margin = np.where(bad, -np.inf, margin)
    return margin, np.where(bad, _NO_SOLUTION, code).astype(np.int64)


def _label(feeder: Feeder, code: int) -> str:
    if code == _NO_SOLUTION:
        return "no power-flow solution"
    kind, bus = divmod(int(code), feeder.n_bus)
    if kind == 2:
        return f"ampacity of {feeder.branch_label[bus]}"
    return f"{('v_min', 'v_max')[kind]} at bus {feeder.bus_labels[bus]}"


def _search(
    feeder: Feeder,
    p0_kw: FloatArray,
    q0_kvar: FloatArray,
    d_kw: FloatArray,
    estimate: FloatArray,
    f0: FloatArray,
    tol: FloatArray,
    v_min_pu: float,
    v_max_pu: float,
) -> tuple[FloatArray, IntArray]:
    """Largest scale ``s >= 0`` per probe with ``p0 + s d`` within limits by exact AC (every probe's base case
    ``f0 >= 0`` feasible). Probes (k, n_bus) are solved side by side. Returns (scale, code of what binds just
    above it)."""
    k = p0_kw.shape[0]
    evaluations = 0

    def evaluate(s: FloatArray) -> tuple[FloatArray, IntArray]:
        nonlocal evaluations
        evaluations += 1
        pf = run_powerflow(feeder, p0_kw + s[:, None] * d_kw, q0_kvar, on_nonconvergence="nan")
        return _margin(feeder, pf.v_pu, pf.i_branch_a, v_min_pu, v_max_pu)

    d_max = np.abs(d_kw).max(axis=1)
    hi = np.where(np.isfinite(estimate) & (estimate > 0), estimate * 1.05, 1000.0 / np.maximum(d_max, 1e-300))
    hi = np.maximum(hi, 4.0 * tol)
    lo, f_lo = np.zeros(k), f0.astype(float).copy()
    f_hi, _ = evaluate(hi)
    for _ in range(60):  # expand until every probe's upper end is infeasible
        ok = f_hi >= 0
        if not ok.any():
            break
        lo, f_lo = np.where(ok, hi, lo), np.where(ok, f_hi, f_lo)
        hi = np.where(ok, hi * 2.0, hi)
        f_hi, _ = evaluate(hi)
    else:  # pragma: no cover - an injection or load 2^60 times the estimate always violates
        raise DataError(f"operating envelope of {feeder.name}: no limit found along the allocation")
    lo, _, code = _illinois(evaluate, lo, hi, f_lo, f_hi, tol)
    logger.debug("envelope search on %s: %d probes, %d exact power flows", feeder.name, k, evaluations)
    return lo, code


# --- linear first estimates -----------------------------------------------------------------------------
def _thermal_room(lin: LinearFeederModel, direction: Direction) -> FloatArray:
    """Extra active power each branch can carry in ``direction`` before its ampacity, (n_steps, n_bus) [kW]
    (inf for branches without a rating): solves ``(p_b0 +- P)^2 + q_b0^2 = S_max^2`` with
    ``S_max = I_max V_parent`` (pu)."""
    feeder, base = lin.feeder, lin.base
    v_par = base.v_pu[:, np.maximum(feeder.parent, 0)]
    s_max = feeder.ampacity_a[None, :] / feeder.i_base_a * v_par * S_BASE_KVA
    sign = 1.0 if direction == "import" else -1.0
    with np.errstate(invalid="ignore"):
        room = np.sqrt(np.clip(s_max**2 - base.q_branch_kvar**2, 0.0, None)) - sign * base.p_branch_kw
    room = np.where(np.isfinite(s_max), np.maximum(room, 0.0), np.inf)
    room[:, 0] = np.inf
    return np.asarray(room)


def _voltage_room(lin: LinearFeederModel, direction: Direction, v_min_pu: float, v_max_pu: float) -> FloatArray:
    """``(v0 - v_min) S v0`` (import) or ``(v_max - v0) S v0`` (export), (n_steps, n_bus) [pu kW]: divided by
    ``(R_path w)_j`` it is the scale at which bus j reaches its limit (linear model)."""
    v0 = lin.base.v_pu
    gap = v0 - v_min_pu if direction == "import" else v_max_pu - v0
    room = gap * S_BASE_KVA * v0
    room[:, 0] = np.inf
    return np.asarray(room)


def _estimate_common(
    lin: LinearFeederModel, w: FloatArray, direction: Direction, v_min_pu: float, v_max_pu: float
) -> FloatArray:
    """Linear estimate of the common scale alpha_t along weights ``w`` (n_bus,), (n_steps,)."""
    rw = lin.r_path_pu @ w  # voltage change per unit scale, times S v0: (R w)_j
    c = np.asarray(lin.ancestors.T @ w)  # extra flow of each branch per unit scale
    with np.errstate(divide="ignore", invalid="ignore"):
        a_v = np.where(rw[None, :] > 0, _voltage_room(lin, direction, v_min_pu, v_max_pu) / rw[None, :], np.inf)
        a_i = np.where(c[None, :] > 0, _thermal_room(lin, direction) / c[None, :], np.inf)
    return np.asarray(np.minimum(a_v.min(axis=1), a_i.min(axis=1)))


def _estimate_per_bus(lin: LinearFeederModel, direction: Direction, v_min_pu: float, v_max_pu: float) -> FloatArray:
    """Linear estimate of each bus's limit alone, (n_steps, n_bus) [kW]."""
    r = lin.r_path_pu
    anc = lin.feeder.ancestors()
    v_room = _voltage_room(lin, direction, v_min_pu, v_max_pu)
    i_room = _thermal_room(lin, direction)
    out = np.empty_like(v_room)
    pos = r > 0
    r_safe = np.where(pos, r, 1.0)
    for t in range(v_room.shape[0]):
        # bus m alone: bus j reaches its limit at v_room[j] / R[j, m]; branches on m's path at i_room[b].
        a_v = np.where(pos, v_room[t][:, None] / r_safe, np.inf).min(axis=0)
        a_i = np.where(anc, i_room[t][None, :], np.inf).min(axis=1)
        out[t] = np.minimum(a_v, a_i)
    out[:, 0] = 0.0
    return out


# --- the rules ------------------------------------------------------------------------------------------
def _solve_common(
    lin: LinearFeederModel,
    p0: FloatArray,
    q0: FloatArray,
    w: FloatArray,
    direction: Direction,
    ok: npt.NDArray[np.bool_],
    v_min_pu: float,
    v_max_pu: float,
    tol_kw: float,
) -> tuple[FloatArray, FloatArray, IntArray]:
    """The simultaneous rules: per step the largest alpha_t with ``p_base +- alpha_t w`` feasible.
    Returns (alpha (n_steps,), estimate (n_steps,), binding code (n_steps,))."""
    feeder, base = lin.feeder, lin.base
    n_steps = base.v_pu.shape[0]
    est = _estimate_common(lin, w, direction, v_min_pu, v_max_pu)
    alpha = np.zeros(n_steps)
    code = np.full(n_steps, -2, dtype=np.int64)
    if not ok.any() or not (w > 0).any():
        return alpha, est, code
    sign = 1.0 if direction == "import" else -1.0
    steps = np.flatnonzero(ok)
    f0, _ = _margin(feeder, base.v_pu[steps], base.i_branch_a[steps], v_min_pu, v_max_pu)
    tol = np.full(steps.size, tol_kw / float(w.max()))
    d = np.broadcast_to(sign * w, (steps.size, feeder.n_bus))
    alpha[steps], code[steps] = _search(
        feeder, p0[steps], q0[steps], np.ascontiguousarray(d), est[steps], f0, tol, v_min_pu, v_max_pu
    )
    return alpha, est, code


def _solve_per_bus(
    lin: LinearFeederModel,
    p0: FloatArray,
    q0: FloatArray,
    direction: Direction,
    ok: npt.NDArray[np.bool_],
    v_min_pu: float,
    v_max_pu: float,
    tol_kw: float,
) -> tuple[FloatArray, FloatArray, IntArray]:
    """per_bus_max: every (step, load bus) probe alone. Returns (limit, estimate, code), each (n_steps, n_bus)."""
    feeder, base = lin.feeder, lin.base
    n_steps, n = base.v_pu.shape
    est = _estimate_per_bus(lin, direction, v_min_pu, v_max_pu)
    limit = np.zeros((n_steps, n))
    code = np.full((n_steps, n), -2, dtype=np.int64)
    steps = np.flatnonzero(ok)
    if steps.size == 0:
        return limit, est, code
    f0_step, _ = _margin(feeder, base.v_pu[steps], base.i_branch_a[steps], v_min_pu, v_max_pu)
    sign = 1.0 if direction == "import" else -1.0
    buses = np.arange(1, n)
    per_chunk = max(1, _MAX_BATCH_ENTRIES // (n * (n - 1)))
    for c0 in range(0, steps.size, per_chunk):
        st = steps[c0 : c0 + per_chunk]
        t_probe = np.repeat(st, n - 1)
        b_probe = np.tile(buses, st.size)
        d = np.zeros((t_probe.size, n))
        d[np.arange(t_probe.size), b_probe] = sign
        f0 = np.repeat(f0_step[c0 : c0 + st.size], n - 1)
        lim, cd = _search(
            feeder,
            p0[t_probe],
            q0[t_probe],
            d,
            est[t_probe, b_probe],
            f0,
            np.full(t_probe.size, tol_kw),
            v_min_pu,
            v_max_pu,
        )
        limit[t_probe, b_probe] = lim
        code[t_probe, b_probe] = cd
    return limit, est, code


def _count_violations(
    feeder: Feeder, pf: PowerFlowResult, v_min_pu: float, v_max_pu: float, ok: npt.NDArray[np.bool_]
) -> int:
    v = pf.v_pu[ok][:, 1:]
    i_load = pf.i_branch_a[ok][:, 1:] / feeder.ampacity_a[None, 1:]
    bad_v = ~((v >= v_min_pu - AC_CHECK_TOL_PU) & (v <= v_max_pu + AC_CHECK_TOL_PU))  # NaN counts as bad
    bad_i = ~(i_load <= 1.0 + AC_CHECK_TOL_PU)
    return int(bad_v.sum() + bad_i.sum())


def calc_operating_envelope(
    feeder: Feeder,
    p_base_kw: npt.ArrayLike,
    q_base_kvar: npt.ArrayLike,
    *,
    rule: str = "equal_per_ev",
    weight_bus: npt.ArrayLike | None = None,
    v_min_pu: float = 0.95,
    v_max_pu: float = 1.05,
    tol_kw: float = 0.01,
    linear_model: LinearFeederModel | None = None,
) -> OperatingEnvelope:
    """Dynamic operating envelope of ``feeder``: the largest EV import and export at every bus and step that
    keep every voltage within [v_min_pu, v_max_pu] and every branch within its ampacity, given the base load.

    Parameters
    ----------
    feeder : the feeder (branches with ``inf`` ampacity are not limited).
    p_base_kw, q_base_kvar : base load of every bus and step, (n_steps, n_bus) [kW], [kvar].
    rule : allocation rule, a key of :data:`ALLOCATION_RULES`: ``"equal_per_ev"``,
        ``"proportional_to_rating"`` or ``"per_bus_max"`` (each bus alone: an optimistic bound, not feasible
        for all buses at once).
    weight_bus : (n_bus,) EVs at each bus (``equal_per_ev``) or charger kW at each bus
        (``proportional_to_rating``); a bus of weight 0 gets 0. Default: 1 at every load bus (said in
        ``notes``). The source bus must have weight 0. Not used by ``per_bus_max``.
    v_min_pu, v_max_pu : voltage limits [pu]; default ANSI C84.1 Range A service voltage, 0.95-1.05 pu.
    tol_kw : accuracy of each bus's limit [kW]: the exact limit lies within ``tol_kw`` above the value given.
    linear_model : the feeder linearised at this base load, if already computed (saves one power flow).

    Returns
    -------
    OperatingEnvelope
        EV power is at unity power factor (the base load's reactive power is unchanged).

    Notes
    -----
    A value is the largest ``P`` such that every power in ``[0, P]`` along the rule's direction keeps the limits
    (EV import at bus j adds ``P`` to its load, export subtracts it). Simultaneous rules search one scale per
    step, ``P_tj = alpha_t w_j``; the per-bus rule searches each (step, bus) alone. First estimate from the
    linearised feeder: ``alpha_v = min_j (V_j0 - v_min) S_base V_j0 / (R w)_j`` for import (``(v_max - V_j0)``
    for export), with ``R`` the common-path resistance matrix, and on each rated branch the root of
    ``(p_b0 +- alpha c_b)^2 + q_b0^2 = (I_max V_parent)^2`` with ``c_b`` the weight downstream of the branch;
    then Illinois bracketing with the exact sweep, keeping the lower end feasible by exact AC. A step whose base
    load alone is outside the limits gets 0 (binding ``"base load: ..."``) and is counted in
    ``base_violation_steps``.

    References
    ----------
    K. Petrou et al., "Ensuring distribution network integrity using dynamic operating limits for
    prosumers", IEEE Trans. Smart Grid 12(5), 2021 (operating envelopes: import / export limits per connection
    point and interval from the network's voltage and thermal limits).
    ANSI C84.1, "American National Standard for Electric Power Systems and Equipment - Voltage Ratings (60 Hz)",
    Range A service voltage: 0.95-1.05 pu.
    M. E. Baran and F. F. Wu, IEEE Trans. Power Delivery 4(2), 1989 (the DistFlow sensitivities of the first
    estimate).
    """
    if rule not in ALLOCATION_RULES:
        raise DataError(f"rule: must be one of {', '.join(ALLOCATION_RULES)}, got {rule!r}")
    if not (0.0 < v_min_pu < v_max_pu < 1.5):
        raise DataError(f"v_min_pu, v_max_pu: need 0 < v_min_pu < v_max_pu < 1.5, got {v_min_pu}, {v_max_pu}")
    if not (tol_kw > 0 and np.isfinite(tol_kw)):
        raise DataError(f"tol_kw: must be > 0, got {tol_kw}")
    p0 = np.asarray(p_base_kw, dtype=float)
    q0 = np.asarray(q_base_kvar, dtype=float)
    if p0.ndim != 2 or p0.shape[1] != feeder.n_bus or q0.shape != p0.shape:
        raise DataError(
            f"p_base_kw, q_base_kvar: expected shape (n_steps, {feeder.n_bus}) each, got {p0.shape}, {q0.shape}"
        )
    if not (np.isfinite(p0).all() and np.isfinite(q0).all()):
        raise DataError("p_base_kw, q_base_kvar: every value must be finite")
    spec = ALLOCATION_RULES[rule]
    notes = [f"rule {rule}: {spec.description}", *feeder.notes]
    if weight_bus is None:
        w = np.ones(feeder.n_bus)
        w[0] = 0.0
        if spec.simultaneous:
            notes.append("weight_bus not given: weight 1 at every load bus")
    else:
        w = np.asarray(weight_bus, dtype=float)
        if w.shape != (feeder.n_bus,):
            raise DataError(f"weight_bus: expected shape ({feeder.n_bus},) (one per bus), got {w.shape}")
        if not np.isfinite(w).all() or (w < 0).any():
            i = int(np.argmax(~np.isfinite(w) | (w < 0)))
            raise DataError(f"weight_bus[{i}] (bus {feeder.bus_labels[i]}): must be finite and >= 0, got {w[i]}")
        if w[0] != 0:
            raise DataError(
                f"weight_bus[0] (the source bus {feeder.bus_labels[0]}): must be 0, got {w[0]} "
                "(EVs connect at load buses)"
            )
    lin = linear_model if linear_model is not None else calc_linear_model(feeder, p0, q0)
    if lin.base.v_pu.shape != p0.shape:
        raise DataError(f"linear_model: built for shape {lin.base.v_pu.shape}, base load has {p0.shape}")

    f_base, code_base = _margin(feeder, lin.base.v_pu, lin.base.i_branch_a, v_min_pu, v_max_pu)
    ok = f_base >= 0
    base_label = np.array(
        ["base load: " + _label(feeder, int(c)) if not g else "" for g, c in zip(ok, code_base, strict=True)]
    )
    n_steps, n = p0.shape
    out: dict[str, Any] = {}
    for direction in ("import", "export"):
        if spec.simultaneous:
            alpha, est_a, code_t = _solve_common(lin, p0, q0, w, direction, ok, v_min_pu, v_max_pu, tol_kw)
            limit = alpha[:, None] * w[None, :]
            # No estimate (inf: nothing binds, e.g. a feeder without EVs) is 0 below; inf x 0 must not arise.
            est = np.where(np.isfinite(est_a), est_a, 0.0)[:, None] * w[None, :]
            code = np.broadcast_to(code_t[:, None], (n_steps, n)).copy()
            code[:, w <= 0] = -2
            out[f"alpha_{direction}"] = alpha
        else:
            limit, est, code = _solve_per_bus(lin, p0, q0, direction, ok, v_min_pu, v_max_pu, tol_kw)
            out[f"alpha_{direction}"] = None
        labels = {int(c): _label(feeder, int(c)) for c in np.unique(code) if c != -2}
        labels[-2] = "none"
        binding = np.vectorize(labels.__getitem__, otypes=[object])(code)
        binding[~ok, :] = base_label[~ok, None]
        binding[:, 0] = "none"
        binding = binding.astype(np.str_)
        limit[:, 0] = 0.0
        est = np.where(np.isfinite(est), est, 0.0)
        est[:, 0] = 0.0
        out[f"p_{direction}_max_kw"] = limit
        out[f"p_{direction}_estimate_kw"] = est
        out[f"binding_{direction}"] = binding
    # Verification: the allocated envelope at every bus at once, import and export, by exact AC.
    both = np.concatenate([p0 + out["p_import_max_kw"], p0 - out["p_export_max_kw"]])
    check = run_powerflow(feeder, both, np.concatenate([q0, q0]), on_nonconvergence="nan")
    violations = _count_violations(feeder, check, v_min_pu, v_max_pu, np.concatenate([ok, ok]))
    if violations and spec.simultaneous:
        logger.error("operating envelope of %s (%s): %d exact-AC violations", feeder.name, rule, violations)
    notes.append(
        f"verified by exact AC with every bus at its limit at once: {violations} violation(s) beyond "
        f"{AC_CHECK_TOL_PU:g} pu / {AC_CHECK_TOL_PU:g} of ampacity"
    )
    if (~ok).any():
        notes.append(f"{int((~ok).sum())} step(s) whose base load alone is outside the limits: envelope 0 there")
    return OperatingEnvelope(
        feeder_name=feeder.name,
        bus_labels=feeder.bus_labels,
        rule=rule,
        v_min_pu=v_min_pu,
        v_max_pu=v_max_pu,
        p_import_max_kw=out["p_import_max_kw"],
        p_export_max_kw=out["p_export_max_kw"],
        binding_import=out["binding_import"],
        binding_export=out["binding_export"],
        ac_violations=violations,
        simultaneous=spec.simultaneous,
        weight_bus=w,
        alpha_import=out["alpha_import"],
        alpha_export=out["alpha_export"],
        p_import_estimate_kw=out["p_import_estimate_kw"],
        p_export_estimate_kw=out["p_export_estimate_kw"],
        base_violation_steps=int((~ok).sum()),
        notes=tuple(notes),
    )
