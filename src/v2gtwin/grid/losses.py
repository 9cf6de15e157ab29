"""Loss sensitivity of a radial feeder and loss-aware EV charging.

``s_m = dP_loss / du_m``: how much the feeder's active losses grow per kW of extra load at bus ``m``,
computed from the solved AC state with the adjoint of the power-flow Jacobian, and used to charge the EVs
at low-sensitivity buses first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from v2gtwin.errors import DataError, InfeasibleError
from v2gtwin.grid.feeder import Feeder, run_powerflow

__all__ = [
    "DispatchResult",
    "LossSensitivity",
    "calc_loss_sensitivity",
    "calc_ybus",
    "run_loss_aware_dispatch",
    "run_loss_optimal_dispatch",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def calc_ybus(feeder: Feeder) -> sp.csr_matrix:
    """Bus admittance matrix [pu] of the feeder (series branches only), sparse (n_bus x n_bus)."""
    n = feeder.n_bus
    i = np.arange(1, n)
    k = feeder.parent[1:]
    y = 1.0 / (feeder.r_pu[1:] + 1j * feeder.x_pu[1:])
    rows = np.concatenate([i, k, i, k])
    cols = np.concatenate([i, k, k, i])
    vals = np.concatenate([y, y, -y, -y])
    return sp.csr_matrix((vals, (rows, cols)), shape=(n, n))


@dataclass(frozen=True)
class LossSensitivity:
    """Loss sensitivities of one operating state.

    Attributes
    ----------
    s_p : dP_loss / dP_load at each bus [kW/kW]; 0 at the source bus.
    s_q : dP_loss / dQ_load at each bus [kW/kvar].
    p_loss_kw : losses of the state [kW].
    """

    s_p: FloatArray
    s_q: FloatArray
    p_loss_kw: float


def calc_loss_sensitivity(feeder: Feeder, p_kw: npt.ArrayLike, q_kvar: npt.ArrayLike) -> LossSensitivity:
    """Locational loss sensitivities ``s_m = dP_loss/du_m`` of one state (loads (n_bus,) [kW], [kvar]).

    Notes
    -----
    With the power-flow equations ``F(x, u) = S(x) - S_inj(u) = 0`` in the unknowns ``x = (theta, |V|)``
    of the non-source buses, and the source's injection ``P_0(x)``, the losses are
    ``P_loss = P_0 + sum_i P_inj,i``. The adjoint ``J^T lambda = grad_x P_0`` gives ``dP_0/dP_inj,m =
    lambda_{P,m}``, so for a load ``u_m = -P_inj,m``: ``s_m = -lambda_{P,m} - 1`` and ``dP_loss/dQ_m =
    -lambda_{Q,m}``. The derivatives of ``S = diag(V) conj(Y V)`` are those of Zimmerman, "AC power flows,
    generalized OPF costs and their derivatives using complex matrix notation", MATPOWER Technical Note 2,
    2010 (eqs. for dS/dVa and dS/dVm). See also the classical loss sensitivity factors (penalty factors) of
    Wood & Wollenberg, Power Generation, Operation and Control, ch. on transmission losses.
    """
    p = np.asarray(p_kw, dtype=float)
    q = np.asarray(q_kvar, dtype=float)
    if p.shape != (feeder.n_bus,) or q.shape != (feeder.n_bus,):
        raise DataError(f"p_kw, q_kvar: expected shape ({feeder.n_bus},) each, got {p.shape} and {q.shape}")
    pf = run_powerflow(feeder, p, q)
    vm = pf.v_pu[0]
    va = np.radians(pf.v_angle_deg[0])
    v = vm * np.exp(1j * va)
    y = calc_ybus(feeder)
    ibus = y @ v
    dv = sp.diags(v)
    dvn = sp.diags(v / np.abs(v))
    ds_dva = 1j * dv @ (sp.diags(ibus) - y @ dv).conj()
    ds_dvm = dv @ (y @ dvn).conj() + sp.diags(ibus).conj() @ dvn
    pq = np.arange(1, feeder.n_bus)
    a = sp.csr_matrix(ds_dva)[pq][:, pq]
    m = sp.csr_matrix(ds_dvm)[pq][:, pq]
    jac = sp.bmat([[a.real, m.real], [a.imag, m.imag]], format="csc")
    grad = np.concatenate(
        [np.asarray(ds_dva[0, pq].real.todense()).ravel(), np.asarray(ds_dvm[0, pq].real.todense()).ravel()]
    )
    lam = spla.spsolve(jac.T.tocsc(), grad)
    n1 = len(pq)
    s_p = np.zeros(feeder.n_bus)
    s_q = np.zeros(feeder.n_bus)
    s_p[1:] = -lam[:n1] - 1.0
    s_q[1:] = -lam[n1:]
    return LossSensitivity(s_p=s_p, s_q=s_q, p_loss_kw=float(pf.p_loss_kw[0]))


@dataclass(frozen=True)
class DispatchResult:
    """An EV charging dispatch on a feeder and its losses.

    Attributes
    ----------
    policy : 'loss_aware', 'uniform' or 'random'.
    p_ev_kw : charging power of each EV, shape (n_steps, n_ev) [kW].
    p_bus_kw : EV charging per bus, shape (n_steps, n_bus) [kW].
    energy_delivered_kwh : EV energy delivered, total [kWh].
    losses_kwh : feeder losses over the horizon by exact AC power flow [kWh].
    v_min_pu : lowest voltage over the horizon [pu].
    """

    policy: str
    p_ev_kw: FloatArray
    p_bus_kw: FloatArray
    energy_delivered_kwh: float
    losses_kwh: float
    v_min_pu: float


def run_loss_aware_dispatch(
    feeder: Feeder,
    p_base_kw: npt.ArrayLike,
    q_base_kvar: npt.ArrayLike,
    ev_bus: npt.ArrayLike,
    ev_arrival_step: npt.ArrayLike,
    ev_departure_step: npt.ArrayLike,
    ev_energy_kwh: npt.ArrayLike,
    ev_p_max_kw: npt.ArrayLike,
    dt_s: float,
    policy: Literal["loss_aware", "uniform", "random"] = "loss_aware",
    rng: np.random.Generator | None = None,
) -> DispatchResult:
    """Charge EVs to their energy needs, giving the charging to the lowest-loss buses first.

    All policies deliver the same energy and aim at the same aggregate power in each step — the sum of every
    plugged EV's flat rate ``need / dwell`` — and differ only in *where* it is drawn:

    * 'uniform': every EV at its flat rate (the aggregate's reference);
    * 'loss_aware': EVs ranked by the loss sensitivity ``s_m`` of their bus in that step's base-load state
      (lowest first), each charging as fast as it can until the step's aggregate is used;
    * 'random': the same greedy fill in a random order (seeded ``rng``).

    Before the greedy fill, every EV receives its must-run power (what it needs now to still finish by
    departure at full power), so no EV is left short; where must-run power exceeds the step's aggregate
    (typically in the last steps), the aggregate follows the must-run power instead. Losses are computed
    afterwards by the exact AC power flow.

    Parameters
    ----------
    feeder : the feeder.
    p_base_kw, q_base_kvar : base loads, shape (n_steps, n_bus) [kW], [kvar].
    ev_bus, ev_arrival_step, ev_departure_step : per EV [-].
    ev_energy_kwh : grid-side energy each EV needs [kWh].
    ev_p_max_kw : charging power limit of each EV [kW].
    dt_s : time step [s].
    policy : see above.
    rng : random generator for 'random'.

    Raises
    ------
    InfeasibleError
        An EV cannot receive its energy even at full power throughout its stay.
    """
    pb = np.atleast_2d(np.asarray(p_base_kw, dtype=float))
    qb = np.atleast_2d(np.asarray(q_base_kvar, dtype=float))
    n_steps = pb.shape[0]
    bus = np.asarray(ev_bus, dtype=np.int64)
    arr = np.asarray(ev_arrival_step, dtype=np.int64)
    dep = np.asarray(ev_departure_step, dtype=np.int64)
    need = np.asarray(ev_energy_kwh, dtype=float).copy()
    pmax = np.asarray(ev_p_max_kw, dtype=float)
    n_ev = bus.size
    if any(a.shape != (n_ev,) for a in (arr, dep, need, pmax)):
        raise DataError("EV arrays (bus, arrival, departure, energy, p_max) must have one entry per EV")
    if np.any((bus < 1) | (bus >= feeder.n_bus)):
        raise DataError(f"ev_bus: allowed range 1 .. {feeder.n_bus - 1}")
    if np.any(arr > dep) or np.any(dep > n_steps) or np.any(arr < 0):
        raise DataError("EV steps: need 0 <= arrival <= departure <= n_steps")
    dt_h = dt_s / 3600.0
    dwell = dep - arr
    short = need > pmax * dwell * dt_h + 1e-9
    if short.any():
        i = int(np.argmax(short))
        raise InfeasibleError(
            f"EV {i}: needs {need[i]:.3f} kWh but can take at most {pmax[i] * dwell[i] * dt_h:.3f} kWh "
            "before departure (energy-need constraint)"
        )
    flat = np.where(dwell > 0, need / np.maximum(dwell, 1) / dt_h, 0.0)
    p_ev = np.zeros((n_steps, n_ev))
    remaining = need.copy()
    if policy == "random":
        rng = rng if rng is not None else np.random.default_rng(0)
        random_rank = rng.permutation(n_ev)
    elif policy not in ("loss_aware", "uniform"):
        raise DataError(f"policy: must be loss_aware, uniform or random, got {policy!r}")
    for t in range(n_steps):
        plugged = (arr <= t) & (t < dep)
        if policy == "uniform":
            p_ev[t] = np.where(plugged, flat, 0.0)
            continue
        budget = float(flat[plugged].sum())
        steps_left_after = np.maximum(dep - t - 1, 0)
        must = np.clip((remaining - pmax * steps_left_after * dt_h) / dt_h, 0.0, None)
        must = np.where(plugged, np.minimum(must, pmax), 0.0)
        p_t = must.copy()
        left = max(budget - must.sum(), 0.0)
        room = np.where(plugged, np.minimum(pmax, remaining / dt_h) - p_t, 0.0)
        if policy == "loss_aware":
            sens = calc_loss_sensitivity(feeder, pb[t], qb[t]).s_p
            key = sens[bus]
        else:
            key = random_rank.astype(float)
        order = np.argsort(key, kind="stable")
        order = order[room[order] > 0]
        cum = np.cumsum(room[order])
        give = np.clip(left - (cum - room[order]), 0.0, room[order])
        p_t[order] += give
        p_ev[t] = p_t
        remaining = remaining - p_t * dt_h
    p_bus = np.zeros((n_steps, feeder.n_bus))
    np.add.at(p_bus.T, bus, p_ev.T)
    pf = run_powerflow(feeder, pb + p_bus, qb)
    return DispatchResult(
        policy=policy,
        p_ev_kw=p_ev,
        p_bus_kw=p_bus,
        energy_delivered_kwh=float(p_ev.sum() * dt_h),
        losses_kwh=float(pf.p_loss_kw.sum() * dt_h),
        v_min_pu=float(pf.v_pu.min()),
    )


def run_loss_optimal_dispatch(
    feeder: Feeder,
    p_base_kw: npt.ArrayLike,
    q_base_kvar: npt.ArrayLike,
    ev_bus: npt.ArrayLike,
    ev_arrival_step: npt.ArrayLike,
    ev_departure_step: npt.ArrayLike,
    ev_energy_kwh: npt.ArrayLike,
    ev_p_max_kw: npt.ArrayLike,
    dt_s: float,
    *,
    iterations: int = 100,
) -> DispatchResult:
    """Charge EVs to their energy needs with the least feeder losses (LinDistFlow losses, Frank-Wolfe).

    Unlike the priority dispatch of :func:`run_loss_aware_dispatch`, the aggregate is free to move in time:
    each EV draws its energy in the steps where the marginal loss at its bus is lowest, the marginal losses
    being recomputed from the schedule as it forms.

    Notes
    -----
    Minimises ``L(p) = sum_t sum_b r_b (P_bt^2 + Q_bt^2)`` (LinDistFlow losses, branch flows ``P_bt`` the
    downstream sums of base load and EV charging) over ``0 <= p_it <= P_max,i`` while plugged and
    ``sum_t p_it dt = E_i``. Frank-Wolfe (conditional gradient; Frank & Wolfe 1956, Jaggi, "Revisiting
    Frank-Wolfe", ICML 2013): the gradient for EV i in step t is the marginal loss
    ``s_{m(i)}(t) = 2 sum_{b on path to m} r_b P_bt`` — the LinDistFlow loss sensitivity — and the linear
    subproblem is solved exactly per EV by filling its cheapest steps at full power; the step size comes
    from an exact line search on the quadratic. Starts from the uniform (flat-rate) schedule. Losses are
    reported by the exact AC power flow.
    """
    pb = np.atleast_2d(np.asarray(p_base_kw, dtype=float))
    qb = np.atleast_2d(np.asarray(q_base_kvar, dtype=float))
    n_steps = pb.shape[0]
    bus = np.asarray(ev_bus, dtype=np.int64)
    arr = np.asarray(ev_arrival_step, dtype=np.int64)
    dep = np.asarray(ev_departure_step, dtype=np.int64)
    need = np.asarray(ev_energy_kwh, dtype=float)
    pmax = np.asarray(ev_p_max_kw, dtype=float)
    # Reuse the priority dispatch's checks and its uniform schedule as the starting point.
    start = run_loss_aware_dispatch(feeder, pb, qb, bus, arr, dep, need, pmax, dt_s, policy="uniform")
    dt_h = dt_s / 3600.0
    dwell = dep - arr
    ev_of = np.repeat(np.arange(bus.size), dwell)
    t_of = np.concatenate([np.arange(a, d) for a, d in zip(arr, dep, strict=True)]) if bus.size else np.zeros(0, int)
    x = start.p_ev_kw[t_of, ev_of]
    anc = feeder.ancestors().astype(float)  # anc[m, b]: branch b on the path to bus m
    r = feeder.r_pu
    base_flow = pb @ anc / S_PU  # (n_steps, n_bus) lossless downstream sums of the base load [pu]
    # EV flow on branch b at t: the EV load of every bus m downstream of b (anc[m, b] = 1).
    cell = t_of * feeder.n_bus + bus[ev_of]

    def flows(xv: FloatArray) -> FloatArray:
        load = np.bincount(cell, weights=xv, minlength=n_steps * feeder.n_bus).reshape(n_steps, feeder.n_bus)
        return base_flow + load @ anc / S_PU

    start_idx = np.concatenate([[0], np.cumsum(dwell)[:-1]]).astype(np.int64)
    used = 0
    for used in range(1, iterations + 1):  # noqa: B007 - reported after the loop
        f = flows(x)
        marg = 2.0 * (f * r) @ anc.T  # (n_steps, n_bus): marginal loss of load at each bus [pu/pu]
        cost = marg[t_of, bus[ev_of]]
        order_key = np.lexsort((cost, ev_of))
        cap = pmax[ev_of][order_key] * dt_h
        csum0 = np.concatenate([[0.0], np.cumsum(cap)])
        before = csum0[:-1] - np.repeat(csum0[start_idx], dwell)  # energy of this EV's cheaper steps
        y = np.empty_like(x)
        y[order_key] = np.clip((need[ev_of][order_key] - before) / dt_h, 0.0, pmax[ev_of][order_key])
        d = y - x
        fd = flows(d) - base_flow
        num = -float(np.sum(r * f * fd))
        den = float(np.sum(r * fd * fd))
        if den <= 0 or num <= 1e-15 * max(1.0, float(np.sum(r * f * f))):
            break
        x = x + min(1.0, num / den) * d
    p_ev = np.zeros((n_steps, bus.size))
    p_ev[t_of, ev_of] = x
    p_bus = np.zeros((n_steps, feeder.n_bus))
    np.add.at(p_bus.T, bus, p_ev.T)
    pf = run_powerflow(feeder, pb + p_bus, qb)
    logger.debug("loss-optimal dispatch: %d Frank-Wolfe iterations", used)
    return DispatchResult(
        policy="loss_optimal",
        p_ev_kw=p_ev,
        p_bus_kw=p_bus,
        energy_delivered_kwh=float(p_ev.sum() * dt_h),
        losses_kwh=float(pf.p_loss_kw.sum() * dt_h),
        v_min_pu=float(pf.v_pu.min()),
    )


#: kW per pu of the feeder power base.
S_PU = 1000.0
