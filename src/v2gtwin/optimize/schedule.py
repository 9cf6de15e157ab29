"""Day-ahead fleet schedules against prices: per EV (an LP solved by v2gtwin's structure-exploiting interior
point, or by HiGHS), and the aggregate virtual battery (HiGHS) with its disaggregation back to EVs.

Per-EV LP, for every plugged-in (EV i, step t): charge ``c_it in [0, P_c,i]``, discharge
``d_it in [0, P_d,i]``, stored energy ``e_it``:

    e_it = e_i,t-1 + eta_c c_it dt - d_it dt / eta_d          (e_i,arrival-1 = e0_i)
    min(soc_min C, e0) <= e_it <= soc_max C,   e_i,departure-1 >= soc_target C
    sum_i (c_it - d_it) + base_t <= import cap_t                (site / feeder import cap)
    minimise  sum_t price_t sum_i (c_it - d_it) dt + c_deg sum d_it dt

Variables exist only while an EV is plugged in. The per-EV LP goes to :mod:`v2gtwin.optimize._fleet_ipm` by
default; when that does not converge it goes to HiGHS (highspy, interior point), with a warning, and every
result names the solver that answered (``solver``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from v2gtwin.errors import DataError, InfeasibleError
from v2gtwin.fleet import Fleet, calc_energy_bounds
from v2gtwin.optimize._fleet_ipm import ChainLP, solve_chain_lp

__all__ = [
    "SOLVER_CHAIN",
    "SOLVER_HIGHS",
    "AggregateSchedule",
    "ScheduleResult",
    "disaggregate",
    "solve_aggregate_schedule",
    "solve_fleet_schedule",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

#: ``solver`` of a result answered by v2gtwin's structure-exploiting interior point.
SOLVER_CHAIN = "v2gtwin-ipm"
#: ``solver`` of a result answered by HiGHS' interior point (highspy, no crossover).
SOLVER_HIGHS = "highs-ipm"


@dataclass(frozen=True)
class ScheduleResult:
    """An individual-EV schedule.

    Attributes
    ----------
    p_kw : power per EV (+ charging, - discharging), shape (n_steps, N) [kW].
    cost_per_horizon : energy cost plus degradation over the horizon [currency].
    p_total_kw : aggregate fleet power per step [kW].
    solve_s : wall time of the solve (building included) [s]. n_variables : LP size [-].
    solver : the solver that answered (:data:`SOLVER_CHAIN` or :data:`SOLVER_HIGHS`).
    fallback_reason : why the structured interior point handed the LP to HiGHS ("" when it did not).
    solver_note : how the solver ended ("optimal", or the accuracy reached when v2gtwin's interior point stopped
    short of its 1e-8 tolerance, see :mod:`v2gtwin.optimize._fleet_ipm`).
    """

    p_kw: FloatArray
    cost_per_horizon: float
    p_total_kw: FloatArray
    solve_s: float
    n_variables: int
    solver: str
    fallback_reason: str = ""
    solver_note: str = "optimal"


def _check_prices(fleet: Fleet, price_per_mwh: npt.ArrayLike) -> FloatArray:
    price = np.asarray(price_per_mwh, dtype=float)
    if price.shape != (fleet.n_steps,):
        raise DataError(f"price_per_mwh: need {fleet.n_steps} values (one per step), got shape {price.shape}")
    if not np.isfinite(price).all():
        raise DataError("price_per_mwh: values must be finite")
    return price


def _check_targets(fleet: Fleet) -> None:
    dwell = fleet.departure_step - fleet.arrival_step
    reach = fleet.soc0_pu * fleet.capacity_kwh + fleet.p_charge_max_kw * fleet.eta_charge * fleet.dt_h * dwell
    short = (dwell > 0) & (reach < fleet.soc_target_pu * fleet.capacity_kwh - 1e-9)
    if short.any():
        i = int(np.argmax(short))
        raise InfeasibleError(
            f"EV {i} cannot reach its target SoC {fleet.soc_target_pu[i]:.3f} by departure (at most "
            f"{reach[i] / fleet.capacity_kwh[i]:.3f} pu at full power): energy-target constraint "
            f"({int(short.sum())} EVs in all)"
        )


def _check_degradation(fleet: Fleet, degradation_per_mwh: float | npt.ArrayLike) -> npt.NDArray[np.float64]:
    """The degradation cost per EV [currency/MWh]: a scalar for all or one per EV, finite and >= 0."""
    deg = np.asarray(degradation_per_mwh, dtype=float)
    if deg.ndim > 1 or (deg.ndim == 1 and deg.size != fleet.n):
        raise DataError(f"degradation_per_mwh: one value or one per EV ({fleet.n}), got shape {deg.shape}")
    if not np.all(np.isfinite(deg)) or np.any(deg < 0):
        raise DataError(f"degradation_per_mwh: must be finite and >= 0, got min {float(np.min(deg)):g}")
    return np.broadcast_to(deg, (fleet.n,)).astype(float)


def solve_fleet_schedule(
    fleet: Fleet,
    price_per_mwh: npt.ArrayLike,
    *,
    degradation_per_mwh: float | npt.ArrayLike = 30.0,
    import_cap_kw: float | npt.ArrayLike = np.inf,
    base_load_kw: float | npt.ArrayLike = 0.0,
    method: str = "chain",
) -> ScheduleResult:
    """Cost-minimal charge/discharge schedule of every EV (see the module docstring for the LP).

    ``degradation_per_mwh`` is the battery's cost per MWh discharged: one value for every EV, or one per EV
    (:func:`v2gtwin.battery.cost.degradation_cost_per_mwh` gives the battery models' per-EV cost).
    ``method``: ``"chain"`` (default) solves the LP with the structure-exploiting interior-point method of
    :mod:`v2gtwin.optimize._fleet_ipm` and hands it to HiGHS only when that does not converge (HiGHS then
    names what is infeasible, or answers); ``"highs"`` uses HiGHS' interior-point solver directly. The result's
    ``solver`` names the one that answered; a hand-over is logged as a warning and kept in
    ``fallback_reason``.

    Raises
    ------
    InfeasibleError
        Naming the constraint family: an EV's energy target, or the import cap (the fleet's must-charge
        energy does not fit under it).
    """
    t0 = time.perf_counter()
    if method not in ("chain", "highs"):
        raise DataError(f"method: must be 'chain' or 'highs', got {method!r}")
    price = _check_prices(fleet, price_per_mwh)
    deg = _check_degradation(fleet, degradation_per_mwh)
    _check_targets(fleet)
    n_steps, dt_h = fleet.n_steps, fleet.dt_h
    cap = np.broadcast_to(np.asarray(import_cap_kw, dtype=float), (n_steps,))
    base = np.broadcast_to(np.asarray(base_load_kw, dtype=float), (n_steps,))
    dwell = np.clip(fleet.departure_step - fleet.arrival_step, 0, None)
    k_ev = np.repeat(np.arange(fleet.n), dwell)
    start = np.concatenate([[0], np.cumsum(dwell)[:-1]]) if fleet.n else np.zeros(0, int)
    k_t = fleet.arrival_step[k_ev] + (np.arange(k_ev.size) - start[k_ev])
    K = k_ev.size
    # Variables: [c (K), d (K), e (K)].
    eta_c, eta_d = fleet.eta_charge[k_ev], fleet.eta_discharge[k_ev]
    first = np.zeros(K, dtype=bool)
    first[start[dwell > 0]] = True
    rows = np.arange(K)
    # e_k - e_{k-1} - eta_c dt c_k + dt/eta_d d_k = 0  (e_{k-1} absent for the first step: = e0 on the RHS)
    data = [np.ones(K), -eta_c * dt_h, dt_h / eta_d, -np.ones(int((~first).sum()))]
    ri = [rows, rows, rows, rows[~first]]
    ci = [2 * K + rows, rows, K + rows, 2 * K + rows[~first] - 1]
    a_eq = sp.csr_matrix((np.concatenate(data), (np.concatenate(ri), np.concatenate(ci))), shape=(K, 3 * K))
    e0 = fleet.soc0_pu * fleet.capacity_kwh
    b_eq = np.where(first, e0[k_ev], 0.0)
    # Import cap per step: sum (c - d) <= cap - base.
    finite = np.isfinite(cap)
    a_ub = sp.csr_matrix(
        (np.concatenate([np.ones(K), -np.ones(K)]), (np.concatenate([k_t, k_t]), np.concatenate([rows, K + rows]))),
        shape=(n_steps, 3 * K),
    )[finite]
    b_ub = (cap - base)[finite]
    last = np.zeros(K, dtype=bool)
    last[(start + dwell - 1)[dwell > 0]] = True
    e_lo = np.minimum(fleet.soc_min_pu * fleet.capacity_kwh, e0)[k_ev]
    e_lo = np.where(last, np.maximum(e_lo, (fleet.soc_target_pu * fleet.capacity_kwh)[k_ev]), e_lo)
    e_hi = (fleet.soc_max_pu * fleet.capacity_kwh)[k_ev]
    bounds = np.concatenate(
        [
            np.column_stack([np.zeros(K), fleet.p_charge_max_kw[k_ev]]),
            np.column_stack([np.zeros(K), fleet.p_discharge_max_kw[k_ev]]),
            np.column_stack([e_lo, e_hi]),
        ]
    )
    cost_c = price[k_t] * dt_h / 1000.0
    cost_d = (-price[k_t] + deg[k_ev]) * dt_h / 1000.0
    c = np.concatenate([cost_c, cost_d, np.zeros(K)])
    if method == "chain":
        cap_rows = np.cumsum(finite) - 1
        cap_index = np.where(finite[k_t], cap_rows[k_t], -1).astype(np.int64)
        # Slack of each cap row: at most the cap plus everything the plugged EVs could discharge.
        d_room = np.bincount(k_t, weights=fleet.p_discharge_max_kw[k_ev], minlength=n_steps)[finite]
        s_up = np.maximum(b_ub + d_room, 0.0) + 1.0
        lp = ChainLP(
            alpha=np.asarray(eta_c * dt_h, dtype=np.float64),
            beta=np.asarray(dt_h / eta_d, dtype=np.float64),
            first=first,
            start=start.astype(np.int64),
            length=dwell.astype(np.int64),
            cap_index=cap_index,
            b_rows=b_eq,
            b_cap=np.asarray(b_ub, dtype=float),
            cost=np.concatenate([c, np.zeros(b_ub.size)]),
            lower=np.concatenate([bounds[:, 0], np.zeros(b_ub.size)]),
            upper=np.concatenate([bounds[:, 1], s_up]),
        )
        sol = solve_chain_lp(lp)
        if sol.optimal:
            p = np.zeros((n_steps, fleet.n))
            p[k_t, k_ev] = sol.x[:K] - sol.x[K : 2 * K]
            obj = float(c @ sol.x[: 3 * K])
            return ScheduleResult(p, obj, p.sum(axis=1), time.perf_counter() - t0, 3 * K + int(b_ub.size), SOLVER_CHAIN)
        fallback = f"v2gtwin's interior point: {sol.message} after {sol.iterations} iterations"
        logger.warning("schedule: %s; solving with HiGHS instead (solver = %s)", fallback, SOLVER_HIGHS)
    else:
        fallback = ""
    res = _linprog(c, a_ub, b_ub, a_eq, b_eq, bounds)
    if res.status == 2:
        if finite.any():
            res_nocap = _linprog(c, None, None, a_eq, b_eq, bounds)
            if res_nocap.status == 0:
                raise InfeasibleError(
                    "the import cap makes the schedule infeasible: the fleet's must-charge energy does not fit "
                    "under it (import-cap constraint)"
                )
        raise InfeasibleError("the schedule is infeasible (energy-target and SoC constraints)")
    if res.status != 0:
        raise InfeasibleError(f"HiGHS did not solve the schedule: {res.message}")
    x = res.x
    p = np.zeros((n_steps, fleet.n))
    p[k_t, k_ev] = x[:K] - x[K : 2 * K]
    return ScheduleResult(p, float(res.fun), p.sum(axis=1), time.perf_counter() - t0, 3 * K, SOLVER_HIGHS, fallback)


def _new_highs(highspy: Any) -> Any:
    """A HiGHS instance without its start-up banner on stdout (it would corrupt ``--json`` output): the C++
    constructor writes to file descriptor 1, so that descriptor points at /dev/null while it runs."""
    import os
    import sys

    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
            h = highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    return h


@dataclass(frozen=True)
class _LpResult:
    status: int  # 0 optimal, 2 infeasible, other: failure
    x: FloatArray
    fun: float
    message: str


_HIGHS_OPTIONS: dict[str, Any] = {"solver": "ipm", "run_crossover": "off"}


def _linprog(
    c: FloatArray,
    a_ub: Any,
    b_ub: Any,
    a_eq: Any,
    b_eq: Any,
    bounds: FloatArray,
    options: dict[str, Any] | None = None,
) -> _LpResult:
    """Solve ``min c x`` s.t. ``a_ub x <= b_ub``, ``a_eq x = b_eq``, bounds, with HiGHS (highspy) directly
    (``options`` replace :data:`_HIGHS_OPTIONS`).

    The interior-point solver without crossover: the schedules are large, sparse and degenerate, where IPM is
    several times faster than the dual simplex (measured: 1,000 EVs x 96 steps with a binding import cap,
    14.5 s dual simplex, 7.5 s IPM with crossover, see docs/markets.md for the figures without).
    """
    import highspy

    blocks = [m for m in (a_ub, a_eq) if m is not None]
    a = sp.vstack(blocks).tocsc() if blocks else sp.csc_matrix((0, c.size))
    n_ub = 0 if a_ub is None else a_ub.shape[0]
    rl = np.concatenate([np.full(n_ub, -np.inf), np.asarray(b_eq, float) if a_eq is not None else []])
    ru = np.concatenate(
        [np.asarray(b_ub, float) if a_ub is not None else [], np.asarray(b_eq, float) if a_eq is not None else []]
    )
    h = _new_highs(highspy)
    h.setOptionValue("output_flag", bool(__import__("os").environ.get("HLOG")))
    for key, value in (_HIGHS_OPTIONS if options is None else options).items():
        h.setOptionValue(key, value)
    lp = highspy.HighsLp()
    lp.num_col_ = int(c.size)
    lp.num_row_ = int(a.shape[0])
    lp.col_cost_ = np.asarray(c, float)
    lp.col_lower_ = np.asarray(bounds[:, 0], float)
    lp.col_upper_ = np.asarray(bounds[:, 1], float)
    lp.row_lower_ = rl
    lp.row_upper_ = ru
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = a.indptr
    lp.a_matrix_.index_ = a.indices
    lp.a_matrix_.value_ = a.data
    h.passModel(lp)
    h.run()
    status = h.getModelStatus()
    if status == highspy.HighsModelStatus.kOptimal:
        sol = np.asarray(h.getSolution().col_value, dtype=float)
        return _LpResult(0, sol, float(h.getInfo().objective_function_value), "optimal")
    if status in (highspy.HighsModelStatus.kInfeasible, highspy.HighsModelStatus.kUnboundedOrInfeasible):
        return _LpResult(2, np.zeros(c.size), np.nan, h.modelStatusToString(status))
    return _LpResult(1, np.zeros(c.size), np.nan, h.modelStatusToString(status))


@dataclass(frozen=True)
class AggregateSchedule:
    """The fleet scheduled as one virtual battery.

    Attributes
    ----------
    p_charge_kw, p_discharge_kw : aggregate charging and discharging per step [kW].
    e_kwh : aggregate stored energy of all EVs at each step boundary, shape (n_steps + 1,) [kWh].
    e_lower_kwh, e_upper_kwh : its bounds (sums of the per-EV bounds) [kWh].
    cost_per_horizon : objective value over the horizon [currency] (a lower bound on any individual
    schedule's cost). solver : the solver that answered (always :data:`SOLVER_HIGHS`).
    """

    p_charge_kw: FloatArray
    p_discharge_kw: FloatArray
    e_kwh: FloatArray
    e_lower_kwh: FloatArray
    e_upper_kwh: FloatArray
    cost_per_horizon: float
    solver: str = SOLVER_HIGHS


def solve_aggregate_schedule(
    fleet: Fleet,
    price_per_mwh: npt.ArrayLike,
    *,
    degradation_per_mwh: float = 30.0,
    import_cap_kw: float | npt.ArrayLike = np.inf,
    base_load_kw: float | npt.ArrayLike = 0.0,
) -> AggregateSchedule:
    """The virtual-battery LP: aggregate power within the envelope's power bounds, aggregate stored energy
    within the sums of the per-EV energy bounds, fleet-average efficiencies.

    Its cost is a lower bound of the individual LP's (it relaxes the per-EV coupling); a disaggregated
    schedule (:func:`disaggregate`) is feasible for every EV but may cost more.
    """
    price = _check_prices(fleet, price_per_mwh)
    _check_targets(fleet)
    n_steps, dt_h = fleet.n_steps, fleet.dt_h
    lo, up = calc_energy_bounds(fleet)
    e_lo, e_up = lo.sum(axis=1), up.sum(axis=1)
    t = np.arange(n_steps)[:, None]
    plugged = (t >= fleet.arrival_step) & (t < fleet.departure_step)
    pmax = (plugged * fleet.p_charge_max_kw).sum(axis=1)
    dmax = (plugged * fleet.p_discharge_max_kw).sum(axis=1)
    w = fleet.capacity_kwh / fleet.capacity_kwh.sum()
    eta_c, eta_d = float((w * fleet.eta_charge).sum()), float((w * fleet.eta_discharge).sum())
    cap = np.broadcast_to(np.asarray(import_cap_kw, dtype=float), (n_steps,))
    base = np.broadcast_to(np.asarray(base_load_kw, dtype=float), (n_steps,))
    n = n_steps
    # Variables [pc (n), pd (n), E (n)] with E_t = energy at the end of step t; E_-1 = sum e0.
    rows = np.arange(n)
    a_eq = sp.csr_matrix(
        (
            np.concatenate([np.ones(n), -np.ones(n - 1), -eta_c * dt_h * np.ones(n), dt_h / eta_d * np.ones(n)]),
            (
                np.concatenate([rows, rows[1:], rows, rows]),
                np.concatenate([2 * n + rows, 2 * n + rows[1:] - 1, rows, n + rows]),
            ),
        ),
        shape=(n, 3 * n),
    )
    b_eq = np.zeros(n)
    b_eq[0] = float((fleet.soc0_pu * fleet.capacity_kwh).sum())
    finite = np.isfinite(cap)
    a_ub = sp.csr_matrix(
        (np.concatenate([np.ones(n), -np.ones(n)]), (np.concatenate([rows, rows]), np.concatenate([rows, n + rows]))),
        shape=(n, 3 * n),
    )[finite]
    bounds = np.concatenate(
        [
            np.column_stack([np.zeros(n), pmax]),
            np.column_stack([np.zeros(n), dmax]),
            np.column_stack([e_lo[1:], e_up[1:]]),
        ]
    )
    c = np.concatenate([price * dt_h / 1000, (-price + degradation_per_mwh) * dt_h / 1000, np.zeros(n)])
    res = _linprog(
        c, a_ub if finite.any() else None, (cap - base)[finite] if finite.any() else None, a_eq, b_eq, bounds
    )
    if res.status != 0:
        raise InfeasibleError(f"aggregate schedule: {res.message} (import-cap or energy-band constraint)")
    x = res.x
    return AggregateSchedule(
        p_charge_kw=x[:n],
        p_discharge_kw=x[n : 2 * n],
        e_kwh=np.concatenate([[b_eq[0]], x[2 * n :]]),
        e_lower_kwh=e_lo,
        e_upper_kwh=e_up,
        cost_per_horizon=float(res.fun),
    )


def disaggregate(fleet: Fleet, schedule: AggregateSchedule) -> tuple[FloatArray, FloatArray]:
    """Split an aggregate schedule among the EVs.

    Each step, every EV may move its stored energy within ``[L_i, U_i]`` — what its power limits allow, kept
    inside its own energy bounds for the next boundary; all EVs take the same share ``theta`` of their range
    so that the fleet's total matches the aggregate path as closely as the ranges allow ("proportional to
    flexibility"). Returns (requested power per EV (n_steps, N) [kW], the shortfall per step [kWh]).
    Feeding the requests to :func:`~v2gtwin.fleet.simulate_soc` shows the result feasible for every EV.
    """
    lo, up = calc_energy_bounds(fleet)
    n_steps, dt_h = fleet.n_steps, fleet.dt_h
    e = fleet.soc0_pu * fleet.capacity_kwh
    p = np.zeros((n_steps, fleet.n))
    short = np.zeros(n_steps)
    for t in range(n_steps):
        plugged = (fleet.arrival_step <= t) & (t < fleet.departure_step)
        step_up = np.where(plugged, fleet.p_charge_max_kw * fleet.eta_charge * dt_h, 0.0)
        step_dn = np.where(plugged, fleet.p_discharge_max_kw / fleet.eta_discharge * dt_h, 0.0)
        low = np.minimum(np.maximum(lo[t + 1], e - step_dn), e + step_up)
        high = np.maximum(np.minimum(up[t + 1], e + step_up), low)
        target = schedule.e_kwh[t + 1] - (e.sum() - e[plugged].sum())  # the plugged EVs' share
        span = float((high - low)[plugged].sum())
        base = float(low[plugged].sum())
        theta = 0.0 if span <= 0 else min(max((target - base) / span, 0.0), 1.0)
        new = np.where(plugged, low + theta * (high - low), e)
        short[t] = abs(float(new[plugged].sum()) - target)
        de = new - e
        p[t] = np.where(de > 0, de / (fleet.eta_charge * dt_h), de * fleet.eta_discharge / dt_h)
        e = new
    return p, short
