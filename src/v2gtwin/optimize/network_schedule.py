"""The day-ahead schedule of a fleet spread over feeders, within each feeder's voltage and thermal limits, checked
by the exact power flow.

Per feeder, one LP (HiGHS dual simplex), the feeders solved side by side in worker processes:

* each bus with EVs is its EVs' **inner** virtual battery (:mod:`v2gtwin.optimize.virtual_battery`), so that the
  result disaggregates to every EV exactly;
* the extra active power ``dP_b`` entering each branch is its subtree's EV power (``dP_b = dp_b + sum over
  children dP_c``), the voltage drop variable ``w_j = w_parent + r_j dP_j`` (pu impedance, kW), and the bus
  voltage its linear estimate ``v_j = v0_j - w_j / (S_base v0_j)`` about the exact base case
  (:mod:`v2gtwin.grid.linear`: LinDistFlow sensitivities at the exact base voltages);
* ``v_min + m_lo <= v_j <= v_max - m_hi`` and ``|P0_b + dP_b| <= sqrt((sqrt(3) V_base I_max v0_parent)^2 - Q0_b^2)``
  (the rating at the sending end's base voltage, reactive flow held at its base value), where the base case
  already breaks a limit the EVs may not make it worse (``v_j >= v0_j``, ``dP_b <= 0``) and those bus-steps are
  counted apart (``base_violations``) -- except by the least power their bus batteries must draw (``dP_b`` up to
  the subtree's least power on an overloaded branch; the voltage rows' slack likewise), which the exact check
  counts in ``ac_violations``;
* minimise ``sum_t price_t (sum of EV power) dt + degradation x discharge``.

Network rows exist only at *active* steps: where, with every bus's EV power anywhere between its battery's bounds,
the linear model could leave a limit (voltage is monotone in each bus power, branch flows are sums). At the other
steps the rows are redundant, so leaving them out does not change the LP's optimum; it keeps the LPs small.

Check and tighten: the schedule's bus powers go through the exact backward/forward sweep
(:func:`v2gtwin.grid.feeder.run_powerflow`); bus-steps below ``v_min - tol_v_pu`` or above ``v_max + tol_v_pu`` and
branch-steps above their ampacity are violations. While any remain (at most ``max_rounds`` solves), the margins
``m_lo``, ``m_hi`` grow by the linear model's observed error at each bus-step (plus ``tol_v_pu``) and violated
ratings shrink by the observed current ratio, and the feeder is solved again. Violations that remain are
reported, never hidden.

Fleet-wide import cap: a cap on the fleet's EV power would be a coupling row over all feeders. To keep the
feeders independent (solved side by side), the cap is split among feeders pro rata to each feeder's EV energy
need (``cap_k = cap need_k / sum need``, rule :data:`CAP_RULE`, stated in the output) and each feeder's LP gets
the row ``sum of its bus powers <= cap_k`` at every step. The split is a restriction: every schedule it allows
also meets the fleet-wide cap; it may cost more than one LP with the coupling row.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from v2gtwin.errors import DataError, InfeasibleError
from v2gtwin.fleet import Fleet
from v2gtwin.grid.feeder import S_BASE_KVA, run_powerflow
from v2gtwin.grid.linear import LinearFeederModel
from v2gtwin.optimize.virtual_battery import build_battery_lp, calc_virtual_battery, disaggregate_battery

__all__ = [
    "CAP_RULE",
    "FeederSchedule",
    "NetworkScheduleResult",
    "calc_feeder_caps_kw",
    "check_schedule_ac",
    "solve_network_schedule",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: HiGHS options of the feeder LPs: dual simplex, an exact vertex (measured on the benchmark's feeders of 33-200
#: buses: about half the time of the interior point without crossover).
HIGHS_OPTIONS: dict[str, Any] = {"solver": "simplex"}
#: ``solver`` of the network schedule.
SOLVER_NETWORK = "highs-simplex"
#: Relative current margin above the ampacity counted as a violation [-].
TOL_I_REL = 1e-4
#: Penalty on the linear model's voltage slack, per pu and bus-step [currency]: the LP stays solvable where the
#: EVs' must-charge energy cannot fit within the limits, and what remains shows as exact-AC violations.
SLACK_COST_PER_PU = 1e5
#: How a fleet-wide import cap is shared among the feeders (each feeder's LP holds its share at every step).
CAP_RULE = "fleet-wide import cap split among feeders pro rata to each feeder's EV energy need"


@dataclass(frozen=True)
class FeederSchedule:
    """One feeder's schedule.

    Attributes
    ----------
    name : the feeder's name. p_bus_kw : EV power per step and bus (n_steps, n_bus) [kW]. cost_per_horizon :
    energy cost plus degradation of its EVs [currency]. ac_violations : bus-steps outside [v_min, v_max] plus
    branch-steps above ampacity in the exact power flow of the final schedule, beyond what the base load alone
    causes [-]. base_violations : bus- and branch-steps the base load alone puts outside the limits [-].
    rounds : LP solves (1 + tightenings) [-]. v_min_pu, v_max_pu : extreme exact voltages reached [pu].
    branch_loading_max_pu : largest exact branch current over ampacity (0 without ratings) [-].
    """

    name: str
    p_bus_kw: FloatArray
    cost_per_horizon: float
    ac_violations: int
    base_violations: int
    rounds: int
    v_min_pu: float
    v_max_pu: float
    branch_loading_max_pu: float


@dataclass(frozen=True)
class NetworkScheduleResult:
    """The fleet's day-ahead schedule over its feeders.

    Attributes
    ----------
    feeders : per feeder, :class:`FeederSchedule`. p_ev_kw : power per EV (n_steps, N) [kW], disaggregated from
    the bus batteries. cost_per_horizon : total [currency]. energy_charged_kwh : grid energy the EVs draw
    (charging) [kWh]. ac_violations : summed over feeders [-]. base_violations : summed [-]. rounds : largest
    over feeders [-].
    v_min_pu : lowest exact voltage over all feeders [pu]. network_secure : whether the feeders' limits were
    constraints. solver : who answered. workers : feeders solved side by side, one process each [-]. solve_s :
    wall time [s]. import_cap_kw : the fleet-wide cap on the EVs' power (inf: none) [kW]. feeder_cap_kw :
    (n_feeders,) each feeder's share of it (rule :data:`CAP_RULE`) [kW].
    """

    feeders: tuple[FeederSchedule, ...]
    p_ev_kw: FloatArray
    cost_per_horizon: float
    energy_charged_kwh: float
    ac_violations: int
    base_violations: int
    rounds: int
    v_min_pu: float
    network_secure: bool
    solver: str
    workers: int
    solve_s: float
    import_cap_kw: float = math.inf
    feeder_cap_kw: FloatArray | None = None

    @property
    def p_bus_kw(self) -> tuple[FloatArray, ...]:
        """EV power per bus for each feeder, (n_steps, n_bus) each [kW]."""
        return tuple(f.p_bus_kw for f in self.feeders)

    def summary(self) -> dict[str, Any]:
        """Headline figures (JSON-ready)."""
        return {
            "network_secure": self.network_secure,
            "n_feeders": len(self.feeders),
            "cost_per_horizon": self.cost_per_horizon,
            "energy_charged_kwh": self.energy_charged_kwh,
            "ac_violations": self.ac_violations,
            "base_violations": self.base_violations,
            "rounds": self.rounds,
            "v_min_pu": self.v_min_pu,
            "solver": self.solver,
            "workers": self.workers,
            "solve_s": self.solve_s,
            "import_cap_kw": self.import_cap_kw if math.isfinite(self.import_cap_kw) else None,
            "import_cap_rule": CAP_RULE if math.isfinite(self.import_cap_kw) else None,
            "p_peak_kw": float(self.p_ev_kw.sum(axis=1).max()) if self.p_ev_kw.size else 0.0,
        }


@dataclass(frozen=True)
class _Limits:
    m_lo: FloatArray  # (n_steps, n_bus) margin above v_min [pu]
    m_hi: FloatArray  # margin below v_max [pu]
    i_scale: FloatArray  # (n_steps, n_bus) share of the ampacity allowed [-]


def _count_violations(
    model: LinearFeederModel, v: FloatArray, i_a: FloatArray, v_min: float, v_max: float, tol_v: float
) -> tuple[int, int, FloatArray, FloatArray, FloatArray]:
    """(EV-caused violations, base violations, masks of low / high bus-steps and over-rated branch-steps)."""
    v0, i0 = model.base.v_pu, model.base.i_branch_a
    amp = model.feeder.ampacity_a[None, :]
    base_lo, base_hi = v0 < v_min - tol_v, v0 > v_max + tol_v
    base_i = i0 > amp * (1 + TOL_I_REL)
    low = np.where(base_lo, v < v0 - tol_v, v < v_min - tol_v)
    high = np.where(base_hi, v > v0 + tol_v, v > v_max + tol_v)
    over = np.where(base_i, i_a > i0 * (1 + TOL_I_REL), i_a > amp * (1 + TOL_I_REL))
    low[:, 0] = high[:, 0] = over[:, 0] = False
    n_base = int(base_lo[:, 1:].sum() + base_hi[:, 1:].sum() + base_i[:, 1:].sum())
    return int(low.sum() + high.sum() + over.sum()), n_base, low, high, over


def _network_rows(
    model: LinearFeederModel,
    lim: _Limits,
    n_bat: int,
    flex: Any,
    bus_of_group: IntArray,
    p_fixed: FloatArray,
    p_range: tuple[FloatArray, FloatArray],
    v_min: float,
    v_max: float,
) -> tuple[Any, FloatArray, Any, FloatArray | None, FloatArray, FloatArray, int] | None:
    """Equality rows (flow, drop), inequality rows (voltage with slack), bounds and costs of the network variables
    ``[dP, w, u, o]`` (``dP``, ``w`` per active step and bus: branch power change [kW], drop [pu kW]; ``u``, ``o``
    under- and overvoltage slack [pu kW] per bus-step whose limit could bind), and the number of active steps;
    None when no step is active.

    A step is active when some limit could bind: with every bus's EV power anywhere in ``p_range`` (lowest and
    highest per bus and step [kW]) the linear model stays within every limit at the other steps (voltage is
    monotone in each bus power, ``R >= 0``; branch flows are sums), so their rows are redundant and left out —
    the LP's optimum is unchanged."""
    feeder = model.feeder
    nb = model.base.v_pu.shape[1]
    m = nb - 1
    ng = bus_of_group.size
    v0_all = model.base.v_pu
    vlo = np.minimum(v_min + lim.m_lo[:, 1:], v0_all[:, 1:])  # no worse than the base where it breaks the limit
    vhi = np.maximum(v_max - lim.m_hi[:, 1:], v0_all[:, 1:])
    w_hi_all = (v0_all[:, 1:] - vlo) * S_BASE_KVA * v0_all[:, 1:]
    w_lo_all = (v0_all[:, 1:] - vhi) * S_BASE_KVA * v0_all[:, 1:]
    p0 = model.base.p_branch_kw[:, 1:]
    q0 = model.base.q_branch_kvar[:, 1:]
    vpar = v0_all[:, np.maximum(feeder.parent[1:], 0)]
    s_max = math.sqrt(3.0) * feeder.v_base_kv * feeder.ampacity_a[1:] * vpar * lim.i_scale[:, 1:]
    with np.errstate(invalid="ignore"):
        p_max = np.sqrt(np.clip(s_max**2 - q0**2, 0.0, None))
    p_max = np.where(np.isfinite(s_max), p_max, np.inf)
    # Screening: the extreme drops and branch flows the EVs could cause at each step.
    lo_bus, hi_bus = p_range
    w_most = (hi_bus @ model.r_path_pu.T)[:, 1:]
    w_least = (lo_bus @ model.r_path_pu.T)[:, 1:]
    flow_hi = (model.ancestors.T @ hi_bus.T).T[:, 1:]
    flow_lo = (model.ancestors.T @ lo_bus.T).T[:, 1:]
    # A branch the base load alone overloads may not carry more, except what its EVs cannot avoid (the bus
    # batteries' least power, e.g. their reference trajectory): the LP stays solvable and the exact check counts
    # what they add (ac_violations).
    room_hi = np.where(p0 > p_max, np.clip(flow_lo, 0.0, None), p_max - p0)
    room_lo = np.where(p0 < -p_max, np.clip(flow_hi, None, 0.0), -p_max - p0)
    dp_hi_all = np.where(np.isfinite(p_max), room_hi, np.inf)
    dp_lo_all = np.where(np.isfinite(p_max), room_lo, -np.inf)
    safe = (w_most <= w_hi_all) & (w_least >= w_lo_all) & (flow_hi <= dp_hi_all) & (flow_lo >= dp_lo_all)
    steps = np.flatnonzero(~safe.all(axis=1))
    na = steps.size
    if na == 0:
        return None
    nn = na * m
    # Slack and voltage rows only at the bus-steps whose limit could bind (the others' rows are redundant).
    may_lo = (w_most > w_hi_all)[steps].ravel()
    may_hi = (w_least < w_lo_all)[steps].ravel()
    pos_lo, pos_hi = np.flatnonzero(may_lo), np.flatnonzero(may_hi)
    n_lo, n_hi = pos_lo.size, pos_hi.size
    n_net = 2 * nn + n_lo + n_hi
    t_loc = np.repeat(np.arange(na), m)
    t = steps[t_loc]
    j = np.tile(np.arange(1, nb), na)
    idx_p = n_bat + t_loc * m + (j - 1)
    idx_w = idx_p + nn
    rows = np.arange(nn)
    par = feeder.parent[j]
    child = par > 0
    # Flow: dP_j - sum_children dP_c - flex_g(j) = p_fixed_j.
    r_i = [rows, t_loc[child] * m + par[child] - 1]
    c_i = [idx_p, idx_p[child]]
    vals = [np.ones(nn), -np.ones(int(child.sum()))]
    group_of_bus = np.full(nb, -1)
    group_of_bus[bus_of_group] = np.arange(ng)
    has = group_of_bus[j] >= 0
    fl = flex[(t[has] * ng + group_of_bus[j[has]])].tocoo()
    r_i.append(rows[has][fl.row])
    c_i.append(fl.col)
    vals.append(-fl.data)
    a_flow = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(r_i), np.concatenate(c_i))), shape=(nn, n_bat + n_net)
    )
    b_flow = np.zeros(nn)
    b_flow[has] = p_fixed[t[has], group_of_bus[j[has]]]
    # Drop: w_j - w_parent - r_j dP_j = 0.
    a_drop = sp.csr_matrix(
        (
            np.concatenate([np.ones(nn), -np.ones(int(child.sum())), -feeder.r_pu[j]]),
            (
                np.concatenate([rows, rows[child], rows]),
                np.concatenate([idx_w, n_bat + nn + t_loc[child] * m + par[child] - 1, idx_p]),
            ),
        ),
        shape=(nn, n_bat + n_net),
    )
    lo = np.concatenate([dp_lo_all[steps].ravel(), np.full(nn, -np.inf), np.zeros(n_lo + n_hi)])
    hi = np.concatenate([dp_hi_all[steps].ravel(), np.full(nn + n_lo + n_hi, np.inf)])
    # w - u <= w_hi (undervoltage), -w - o <= -w_lo (overvoltage); u, o cost SLACK_COST per pu of voltage.
    idx_u = n_bat + 2 * nn + np.arange(n_lo)
    idx_o = n_bat + 2 * nn + n_lo + np.arange(n_hi)
    a_ub = sp.csr_matrix(
        (
            np.concatenate([np.ones(n_lo), -np.ones(n_lo), -np.ones(n_hi), -np.ones(n_hi)]),
            (
                np.concatenate([np.arange(n_lo), np.arange(n_lo), n_lo + np.arange(n_hi), n_lo + np.arange(n_hi)]),
                np.concatenate([idx_w[pos_lo], idx_u, idx_w[pos_hi], idx_o]),
            ),
        ),
        shape=(n_lo + n_hi, n_bat + n_net),
    )
    b_ub = np.concatenate([w_hi_all[steps].ravel()[pos_lo], -w_lo_all[steps].ravel()[pos_hi]])
    v0_act = v0_all[steps, 1:].ravel()
    cost = np.zeros(n_net)
    cost[2 * nn :] = SLACK_COST_PER_PU / (S_BASE_KVA * np.concatenate([v0_act[pos_lo], v0_act[pos_hi]]))
    return (
        sp.vstack([a_flow, a_drop]).tocsr(),
        np.concatenate([b_flow, np.zeros(nn)]),
        a_ub if n_lo + n_hi else None,
        b_ub if n_lo + n_hi else None,
        np.column_stack([lo, hi]),
        cost,
        na,
    )


def _solve_feeder(
    model: LinearFeederModel,
    fleet: Fleet,
    bus: IntArray,
    price: FloatArray,
    deg: float,
    v_min: float,
    v_max: float,
    secure: bool,
    max_rounds: int,
    tol_v: float,
    cap_kw: float = math.inf,
) -> tuple[FeederSchedule, FloatArray]:
    from v2gtwin.optimize.schedule import _linprog

    feeder = model.feeder
    n_steps, nb = model.base.v_pu.shape
    p_base, q_base = _base_loads(model)
    if fleet.n == 0:  # no EVs here: the base case is the schedule
        n_viol, n_base, *_ = _count_violations(model, model.base.v_pu, model.base.i_branch_a, v_min, v_max, tol_v)
        loading0 = model.base.i_branch_a[:, 1:] / feeder.ampacity_a[None, 1:]
        return (
            FeederSchedule(
                feeder.name,
                np.zeros((n_steps, nb)),
                0.0,
                n_viol,
                n_base,
                0,
                float(model.base.v_pu.min()),
                float(model.base.v_pu.max()),
                float(loading0.max()) if nb > 1 else 0.0,
            ),
            np.zeros((n_steps, 0)),
        )
    buses, group = np.unique(bus, return_inverse=True)
    group = np.asarray(group, dtype=np.int64).ravel()
    vb = calc_virtual_battery(fleet, "inner", group, int(buses.size))
    lp = build_battery_lp(vb, price, fleet.dt_h, deg)
    ng = int(buses.size)
    p_range = (np.zeros((n_steps, nb)), np.zeros((n_steps, nb)))
    p_range[0][:, buses] = vb.as_2d("p_min_kw")
    p_range[1][:, buses] = vb.as_2d("p_max_kw")
    lim = _Limits(np.zeros((n_steps, nb)), np.zeros((n_steps, nb)), np.ones((n_steps, nb)))
    rounds = 0
    while True:
        rounds += 1
        net = None
        if secure:
            net = _network_rows(
                model, lim, lp.n_var, lp.flex, buses.astype(np.int64), vb.as_2d("p_fixed_kw"), p_range, v_min, v_max
            )
        n_all = lp.n_var
        if net is not None:
            a_net, b_net, a_ub, b_ub, bnd_net, cost_net, _ = net
            n_all = a_net.shape[1]
            a_eq = sp.vstack(
                [sp.hstack([lp.a_eq, sp.csr_matrix((lp.a_eq.shape[0], a_net.shape[1] - lp.n_var))]), a_net]
            )
            b_eq = np.concatenate([lp.b_eq, b_net])
            bounds = np.concatenate([lp.bounds, bnd_net])
            cost = np.concatenate([lp.cost, cost_net])
        else:
            a_eq, b_eq, bounds, cost, a_ub, b_ub = lp.a_eq, lp.b_eq, lp.bounds, lp.cost, None, None
        if math.isfinite(cap_kw):  # the feeder's share of the fleet-wide cap: sum of bus powers <= cap_k
            summ = sp.csr_matrix(
                (np.ones(n_steps * ng), (np.repeat(np.arange(n_steps), ng), np.arange(n_steps * ng))),
                shape=(n_steps, n_steps * ng),
            )
            a_cap = sp.hstack([summ @ lp.flex, sp.csr_matrix((n_steps, n_all - lp.n_var))]).tocsr()
            b_cap = cap_kw - vb.as_2d("p_fixed_kw").sum(axis=1)
            a_ub = a_cap if a_ub is None else sp.vstack([a_ub, a_cap]).tocsr()
            b_ub = b_cap if b_ub is None else np.concatenate([b_ub, b_cap])
        res = _linprog(cost, a_ub, b_ub, a_eq, b_eq, bounds, HIGHS_OPTIONS)
        if res.status != 0:
            raise InfeasibleError(
                f"feeder {feeder.name}: network-constrained schedule {res.message} (round {rounds}): the EVs' "
                f"must-charge energy does not fit within the thermal limits"
                + ("" if not math.isfinite(cap_kw) else f" and the feeder's share {cap_kw:,.1f} kW of the import cap")
            )
        p_grp = vb.as_2d("p_fixed_kw") + (lp.flex @ res.x[: lp.n_var]).reshape(n_steps, ng)
        dp = np.zeros((n_steps, nb))
        dp[:, buses] = p_grp
        pf = run_powerflow(feeder, p_base + dp, q_base, on_nonconvergence="nan")
        v = np.nan_to_num(pf.v_pu, nan=0.0)
        n_viol, n_base, low, high, over = _count_violations(model, v, pf.i_branch_a, v_min, v_max, tol_v)
        if not secure or n_viol == 0 or rounds >= max_rounds:
            break
        v_lin = model.calc_v_pu(dp)
        lim = _Limits(
            np.maximum(lim.m_lo, lim.m_lo + np.clip(v_lin - v, 0.0, None) + tol_v * low),
            np.maximum(lim.m_hi, lim.m_hi + np.clip(v - v_lin, 0.0, None) + tol_v * high),
            np.where(over, lim.i_scale * feeder.ampacity_a / np.maximum(pf.i_branch_a, 1e-9) * (1 - 1e-3), lim.i_scale),
        )
        logger.info("feeder %s: %d violations by exact AC after round %d; tightening", feeder.name, n_viol, rounds)
    p_ev = disaggregate_battery(fleet, p_grp, group, ng, battery=vb)
    loading = pf.i_branch_a / feeder.ampacity_a[None, :]
    return (
        FeederSchedule(
            name=feeder.name,
            p_bus_kw=dp,
            cost_per_horizon=float(lp.cost @ res.x[: lp.n_var]) + lp.cost_fixed,
            ac_violations=n_viol,
            base_violations=n_base,
            rounds=rounds,
            v_min_pu=float(np.nanmin(pf.v_pu)),
            v_max_pu=float(np.nanmax(pf.v_pu)),
            branch_loading_max_pu=float(np.nanmax(loading[:, 1:])) if nb > 1 else 0.0,
        ),
        p_ev,
    )


def _solve_feeder_job(job: tuple[Any, ...]) -> tuple[FeederSchedule, FloatArray]:
    return _solve_feeder(*job)


def _base_loads(model: LinearFeederModel) -> tuple[FloatArray, FloatArray]:
    """The base bus loads (n_steps, n_bus) [kW], [kvar] recovered from the exact base flow: each branch carries
    its bus's load, its children's branches and its own losses ``3 I^2 r``, ``3 I^2 x`` (to ~1e-10 kW on the
    33-bus case)."""
    f, b = model.feeder, model.base
    n = f.n_bus
    children = sp.csr_matrix((np.ones(n - 1), (f.parent[1:], np.arange(1, n))), shape=(n, n))
    i2 = 3.0 * b.i_branch_a**2 / 1000.0
    p = b.p_branch_kw - (children @ b.p_branch_kw.T).T - i2 * f.r_ohm
    q = b.q_branch_kvar - (children @ b.q_branch_kvar.T).T - i2 * f.x_ohm
    p[:, 0] = q[:, 0] = 0.0
    return np.asarray(p), np.asarray(q)


def solve_network_schedule(
    fleet: Fleet,
    feeders: Sequence[LinearFeederModel],
    ev_feeder: npt.ArrayLike,
    ev_bus: npt.ArrayLike,
    price_per_mwh: npt.ArrayLike,
    *,
    v_min_pu: float = 0.95,
    v_max_pu: float = 1.05,
    degradation_per_mwh: float = 30.0,
    network_secure: bool = True,
    max_rounds: int = 4,
    tol_v_pu: float = 1e-4,
    workers: int = 1,
    import_cap_kw: float = math.inf,
) -> NetworkScheduleResult:
    """Cost-minimal day-ahead schedule of the fleet on its feeders (see the module docstring).

    Parameters
    ----------
    fleet : the EVs (targets reachable at full power).
    feeders : each feeder linearised around its base load (:func:`v2gtwin.grid.linear.calc_linear_model`).
    ev_feeder, ev_bus : per EV, its feeder's index in ``feeders`` and its bus index within that feeder [-].
    price_per_mwh : price per step [currency/MWh].
    v_min_pu, v_max_pu : voltage limits (default ANSI C84.1 Range A) [pu].
    degradation_per_mwh : cost per MWh discharged [currency/MWh].
    network_secure : False drops the feeders' limits from the LP (the unconstrained schedule; still checked).
    max_rounds : LP solves per feeder at most (1 + tightenings) [-].
    tol_v_pu : voltage tolerance of the exact check [pu].
    workers : feeders solved side by side, in as many spawned processes (at most the number of feeders); 1, the
        default, solves in this process. More than one needs the calling script's ``if __name__ == "__main__":``
        guard (multiprocessing's "spawn" start method re-imports it) and pays a few seconds to start the workers
        (measured on 100 feeders on 2 busy cores: 43-77 s with two workers, 44-50 s with one) [-].
    import_cap_kw : fleet-wide cap on the EVs' summed power at every step, split among the feeders pro rata to
        their EVs' energy need (:data:`CAP_RULE`); inf: no cap [kW].

    Raises
    ------
    InfeasibleError
        A feeder cannot carry its EVs' must-charge energy within its limits (names the feeder).
    """
    t0 = time.perf_counter()
    price = np.asarray(price_per_mwh, dtype=float)
    if price.shape != (fleet.n_steps,) or not np.isfinite(price).all():
        raise DataError(f"price_per_mwh: need {fleet.n_steps} finite values, got shape {price.shape}")
    if not (0.0 < v_min_pu < v_max_pu):
        raise DataError(f"v_min_pu, v_max_pu: need 0 < v_min_pu < v_max_pu, got {v_min_pu}, {v_max_pu}")
    if max_rounds < 1:
        raise DataError(f"max_rounds: allowed range >= 1, got {max_rounds}")
    fe = np.asarray(ev_feeder, dtype=np.int64)
    bu = np.asarray(ev_bus, dtype=np.int64)
    if fe.shape != (fleet.n,) or bu.shape != (fleet.n,):
        raise DataError(f"ev_feeder, ev_bus: need one value per EV ({fleet.n}), got {fe.shape}, {bu.shape}")
    if fleet.n and (fe.min() < 0 or fe.max() >= len(feeders)):
        raise DataError(f"ev_feeder: values must lie in 0..{len(feeders) - 1}, got {fe.min()}..{fe.max()}")
    for k, m in enumerate(feeders):
        if m.base.v_pu.shape[0] != fleet.n_steps:
            raise DataError(
                f"feeders[{k}]: linearised over {m.base.v_pu.shape[0]} steps, the fleet has {fleet.n_steps}"
            )
        on = bu[fe == k]
        if on.size and (on.min() < 1 or on.max() >= m.feeder.n_bus):
            raise DataError(f"ev_bus: EVs on feeder {m.feeder.name} must sit on buses 1..{m.feeder.n_bus - 1}")
    if workers < 1:
        raise DataError(f"workers: allowed range >= 1, got {workers}")
    if not (import_cap_kw > 0):
        raise DataError(f"import_cap_kw: allowed range > 0 kW (inf: no cap), got {import_cap_kw}")
    n_workers = max(1, min(workers, len(feeders)))
    limits = (network_secure, max_rounds, tol_v_pu)
    feeder_cap = calc_feeder_caps_kw(fleet, fe, len(feeders), import_cap_kw)
    jobs = []
    for k in range(len(feeders)):
        idx = np.flatnonzero(fe == k)
        sub = fleet.subset(idx)
        jobs.append(
            (feeders[k], sub, bu[idx], price, degradation_per_mwh, v_min_pu, v_max_pu, *limits, float(feeder_cap[k]))
        )
    if n_workers == 1:
        out = [_solve_feeder(*job) for job in jobs]
    else:
        # Processes, not threads: HiGHS holds the GIL while it solves (measured: two threads took as long as one).
        # "spawn" starts clean interpreters (no fork of a process whose numba / BLAS thread pools are running).
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=n_workers, mp_context=ctx) as pool:
            out = list(pool.map(_solve_feeder_job, jobs))
    p_ev_all = np.zeros((fleet.n_steps, fleet.n))
    for k, (_, p_ev) in enumerate(out):
        p_ev_all[:, fe == k] = p_ev
    scheds = tuple(o[0] for o in out)
    return NetworkScheduleResult(
        feeders=scheds,
        p_ev_kw=p_ev_all,
        cost_per_horizon=float(sum(s.cost_per_horizon for s in scheds)),
        energy_charged_kwh=float(np.clip(p_ev_all, 0.0, None).sum() * fleet.dt_h),
        ac_violations=int(sum(s.ac_violations for s in scheds)),
        base_violations=int(sum(s.base_violations for s in scheds)),
        rounds=max((s.rounds for s in scheds), default=0),
        v_min_pu=min((s.v_min_pu for s in scheds), default=float("nan")),
        network_secure=network_secure,
        solver=SOLVER_NETWORK,
        workers=int(n_workers),
        solve_s=time.perf_counter() - t0,
        import_cap_kw=float(import_cap_kw),
        feeder_cap_kw=feeder_cap,
    )


def calc_feeder_caps_kw(fleet: Fleet, ev_feeder: npt.ArrayLike, n_feeders: int, import_cap_kw: float) -> FloatArray:
    """Each feeder's share of a fleet-wide import cap [kW], pro rata to its EVs' energy need
    ``need_i = soc_target C - soc0 C`` (clipped at 0; :data:`CAP_RULE`): ``cap_k = cap need_k / sum need``.
    All inf without a cap; an even split when no EV needs energy."""
    if not math.isfinite(import_cap_kw):
        return np.full(n_feeders, math.inf)
    need = np.clip((fleet.soc_target_pu - fleet.soc0_pu) * fleet.capacity_kwh, 0.0, None)
    need_k = np.bincount(np.asarray(ev_feeder, dtype=np.int64), weights=need, minlength=n_feeders)
    total = float(need_k.sum())
    share = need_k / total if total > 0 else np.full(n_feeders, 1.0 / max(n_feeders, 1))
    return np.asarray(import_cap_kw * share, dtype=np.float64)


def check_schedule_ac(
    p_ev_kw: npt.ArrayLike,
    feeders: Sequence[LinearFeederModel],
    ev_feeder: npt.ArrayLike,
    ev_bus: npt.ArrayLike,
    *,
    v_min_pu: float = 0.95,
    v_max_pu: float = 1.05,
    tol_v_pu: float = 1e-4,
) -> tuple[int, int, float]:
    """Any per-EV schedule ``p_ev_kw`` (n_steps, N) [kW] through the exact power flow of every feeder on top of
    its base load: (violations beyond the base load's, base violations, lowest voltage [pu]), counted as
    :class:`FeederSchedule` counts them (bus-steps outside [v_min, v_max] plus branch-steps above ampacity)."""
    p = np.asarray(p_ev_kw, dtype=float)
    fe = np.asarray(ev_feeder, dtype=np.int64)
    bu = np.asarray(ev_bus, dtype=np.int64)
    if p.ndim != 2 or p.shape[1] != fe.size or fe.shape != bu.shape or not np.isfinite(p).all():
        raise DataError(f"p_ev_kw: need finite (n_steps, {fe.size}) kW, one column per placed EV; got {p.shape}")
    n_viol = n_base = 0
    v_low = math.inf
    for k, model in enumerate(feeders):
        on = fe == k
        dp = np.zeros_like(model.base.v_pu)
        np.add.at(dp.T, bu[on], p[:, on].T)  # EV power per bus
        p_base, q_base = _base_loads(model)
        pf = run_powerflow(model.feeder, p_base + dp, q_base, on_nonconvergence="nan")
        v = np.nan_to_num(pf.v_pu, nan=0.0)
        nv, nb, *_ = _count_violations(model, v, pf.i_branch_a, v_min_pu, v_max_pu, tol_v_pu)
        n_viol, n_base, v_low = n_viol + nv, n_base + nb, min(v_low, float(np.nanmin(pf.v_pu)))
    return n_viol, n_base, v_low
