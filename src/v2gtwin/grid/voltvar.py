"""Volt-var (voltage support) on EV inverters: IEEE 1547-2018 default Q(V) curves, solved consistently with
the time-series power flow by a damped fixed point.

Sign conventions: ``q_inv_kvar`` > 0 is reactive power *injected* by the inverter (raises the voltage), so
the bus's reactive load becomes ``q_kvar - q_inv_kvar``; ``p_inv_kw`` > 0 is charging (a load).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from v2gtwin.errors import ConvergenceError, DataError
from v2gtwin.grid import _kernels
from v2gtwin.grid.feeder import S_BASE_KVA, Feeder, PowerFlowResult, run_powerflow
from v2gtwin.ieee1547 import read_ieee1547

__all__ = ["VOLTVAR_CURVES", "VoltVarCurve", "VoltVarResult", "calc_voltvar_q", "run_voltvar"]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class VoltVarCurve:
    """A piecewise-linear Q(V) curve: points (v_pu, q_pu) with q in pu of the inverter's apparent-power
    rating, + = injection; flat beyond the end points.

    Attributes
    ----------
    name : label.
    v_pu : voltages of the points, non-decreasing [pu].
    q_pu : reactive power at the points [pu of rated apparent power].
    """

    name: str
    v_pu: tuple[float, ...]
    q_pu: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.v_pu) != len(self.q_pu) or len(self.v_pu) < 2:
            raise DataError(f"volt-var curve {self.name}: needs >= 2 points with one q per v")
        if any(b < a for a, b in zip(self.v_pu, self.v_pu[1:], strict=False)):
            raise DataError(f"volt-var curve {self.name}: v_pu must be non-decreasing, got {self.v_pu}")
        if any(abs(q) > 1.0 for q in self.q_pu):
            raise DataError(f"volt-var curve {self.name}: |q_pu| must be <= 1, got {self.q_pu}")


def _default_curve(category: str) -> VoltVarCurve:
    d = read_ieee1547().defaults("volt_var", category)
    return VoltVarCurve(
        f"IEEE 1547-2018 Category {category}",
        tuple(d[f"v{i}_pu"] for i in range(1, 5)),
        tuple(d[f"q{i}_pct"] / 100.0 for i in range(1, 5)),
    )


#: IEEE 1547-2018 Table 8 default volt-var settings (V in pu of nominal, Q in pu of rated apparent power,
#: + = injection), from the package's one IEEE 1547 table (:mod:`v2gtwin.ieee1547`; values as encoded by
#: open-source implementations that cite the standard's tables).
VOLTVAR_CURVES: dict[str, VoltVarCurve] = {c: _default_curve(c) for c in ("A", "B")}


def calc_voltvar_q(curve: VoltVarCurve, v_pu: npt.ArrayLike) -> FloatArray:
    """Reactive power [pu of rating, + injection] the curve asks for at voltages ``v_pu``.

    Vertical segments (two points at the same voltage, as in Category A's 1.00/1.00) are handled by
    interpolating on the strictly increasing subsequence.
    """
    v = np.asarray(curve.v_pu, dtype=float)
    q = np.asarray(curve.q_pu, dtype=float)
    return np.interp(np.asarray(v_pu, dtype=float), v, q)


@dataclass(frozen=True)
class VoltVarResult:
    """Power flow with volt-var.

    Attributes
    ----------
    powerflow : the converged power flow (loads include the inverters' P and Q).
    q_inv_kvar : reactive power injected by the inverter at each bus, shape (n_steps, n_bus) [kvar].
    p_inv_kw : active power of the inverters after any curtailment (+ charging) [kW].
    iterations : fixed-point iterations used [-].
    residual_kvar : largest |Q target - Q| at the end [kvar].
    """

    powerflow: PowerFlowResult
    q_inv_kvar: FloatArray
    p_inv_kw: FloatArray
    iterations: int
    residual_kvar: float


def _broadcast(a: npt.ArrayLike, shape: tuple[int, int], name: str) -> FloatArray:
    arr = np.asarray(a, dtype=float)
    try:
        return np.broadcast_to(arr, shape).copy()
    except ValueError:
        raise DataError(f"{name}: shape {arr.shape} does not fit (n_steps, n_bus) = {shape}") from None


def _targets(
    curve: VoltVarCurve, v: FloatArray, s: FloatArray, p_inv: FloatArray, priority: str
) -> tuple[FloatArray, FloatArray]:
    q = calc_voltvar_q(curve, v) * s
    if priority == "watt":
        q_cap = np.sqrt(np.clip(s**2 - p_inv**2, 0.0, None))
        return np.clip(q, -q_cap, q_cap), p_inv
    # var (reactive) priority: Q as asked, active power curtailed to the remaining apparent power.
    p_cap = np.sqrt(np.clip(s**2 - q**2, 0.0, None))
    return q, np.clip(p_inv, -p_cap, p_cap)


def run_voltvar(
    feeder: Feeder,
    p_kw: npt.ArrayLike,
    q_kvar: npt.ArrayLike,
    p_inv_kw: npt.ArrayLike,
    s_rated_kva: npt.ArrayLike,
    curve: VoltVarCurve | str = "B",
    *,
    priority: Literal["var", "watt"] = "var",
    damping: float = 0.5,
    tol_kvar: float = 1e-7,
    max_iter: int = 500,
    method: Literal["fused", "outer"] = "fused",
) -> VoltVarResult:
    """Solve the feeder with volt-var inverters at every step.

    Parameters
    ----------
    feeder : the feeder.
    p_kw, q_kvar : loads other than the inverters, (n_steps, n_bus) or (n_bus,) [kW], [kvar].
    p_inv_kw : active power of the inverters at each bus (+ charging), broadcast to (n_steps, n_bus) [kW].
    s_rated_kva : apparent-power rating of the inverters at each bus, broadcast likewise [kVA].
    curve : a :class:`VoltVarCurve` or a key of :data:`VOLTVAR_CURVES` ('A', 'B').
    priority : 'var' (IEEE 1547 reactive priority: active power curtailed when P^2 + Q^2 > S^2) or 'watt'.
    damping : fixed-point step ``Q <- Q + damping (Q_target(V) - Q)``, in (0, 1].
    tol_kvar : convergence tolerance on the largest |Q_target - Q| [kvar].
    max_iter : iteration limit.
    method : 'fused' (default): the Q(V) update inside the sweep iterations of a numba kernel, each step
        started from the previous one; 'outer': a whole power flow per fixed-point iteration (slower, kept as
        an independent check of the fused kernel).

    Raises
    ------
    ConvergenceError
        The fixed point did not settle within ``max_iter`` (the message gives the residual).

    Notes
    -----
    Fixed point ``Q^{k+1} = Q^k + a (f(V(Q^k)) S - Q^k)`` with the exact radial power flow inside; the
    damped iteration is the one pandapower's DERController uses (its ``damping_coef`` = 1/a), which the test
    suite uses as the independent cross-check. Curves: IEEE 1547-2018 clause 5.3.3 and Table 8.
    """
    if isinstance(curve, str):
        if curve not in VOLTVAR_CURVES:
            raise DataError(f"curve: must be one of {sorted(VOLTVAR_CURVES)}, got {curve!r}")
        curve = VOLTVAR_CURVES[curve]
    if not 0.0 < damping <= 1.0:
        raise DataError(f"damping: allowed range (0, 1], got {damping}")
    if priority not in ("var", "watt"):
        raise DataError(f"priority: must be 'var' or 'watt', got {priority!r}")
    p = np.atleast_2d(np.asarray(p_kw, dtype=float))
    qb = np.atleast_2d(np.asarray(q_kvar, dtype=float))
    shape = (p.shape[0], feeder.n_bus)
    p_inv_req = _broadcast(p_inv_kw, shape, "p_inv_kw")
    s = _broadcast(s_rated_kva, shape, "s_rated_kva")
    if np.any(s < 0):
        raise DataError("s_rated_kva: must be >= 0")
    if method == "fused":
        return _run_fused(feeder, p, qb, p_inv_req, s, curve, priority, damping, tol_kvar, max_iter)
    if method != "outer":
        raise DataError(f"method: must be 'fused' or 'outer', got {method!r}")
    q_inv = np.zeros(shape)
    p_inv = p_inv_req.copy()
    pf = run_powerflow(feeder, p + p_inv, qb - q_inv)
    residual = np.inf
    for it in range(1, max_iter + 1):
        q_tgt, p_tgt = _targets(curve, pf.v_pu, s, p_inv_req, priority)
        residual = float(np.max(np.abs(q_tgt - q_inv))) if q_inv.size else 0.0
        if residual < tol_kvar:
            return VoltVarResult(pf, q_inv, p_inv, it - 1, residual)
        q_inv = q_inv + damping * (q_tgt - q_inv)
        p_inv = p_inv + damping * (p_tgt - p_inv)
        pf = run_powerflow(feeder, p + p_inv, qb - q_inv)
    raise ConvergenceError(
        f"volt-var fixed point did not converge in {max_iter} iterations (residual {residual:.3g} kvar); lower damping"
    )


def _run_fused(
    feeder: Feeder,
    p: FloatArray,
    qb: FloatArray,
    p_inv_req: FloatArray,
    s: FloatArray,
    curve: VoltVarCurve,
    priority: str,
    damping: float,
    tol_kvar: float,
    max_iter: int,
) -> VoltVarResult:
    base = S_BASE_KVA
    pu = np.ascontiguousarray(np.broadcast_to(p, p_inv_req.shape)) / base
    qu = np.ascontiguousarray(np.broadcast_to(qb, p_inv_req.shape)) / base
    pu[:, 0] = 0.0
    qu[:, 0] = 0.0
    n_steps, n = pu.shape
    vr, vi = np.empty((n_steps, n)), np.empty((n_steps, n))
    q_inv, p_inv = np.empty((n_steps, n)), np.empty((n_steps, n))
    iters = np.empty(n_steps, dtype=np.int64)
    _kernels.sweep_voltvar(
        feeder.parent,
        feeder.r_pu,
        feeder.x_pu,
        pu,
        qu,
        p_inv_req / base,
        np.ascontiguousarray(s) / base,
        np.asarray(curve.v_pu, dtype=float),
        np.asarray(curve.q_pu, dtype=float),
        priority == "var",
        damping,
        feeder.v_source_pu,
        tol_kvar / base,
        max_iter * 4,
        vr,
        vi,
        q_inv,
        p_inv,
        iters,
    )
    q_inv *= base
    p_inv *= base
    failed = np.flatnonzero(iters < 0)
    if failed.size:
        # Stiff steps (a strong Q(V) loop on a weak bus): solve them with the outer fixed point, which
        # converges where the fused iteration oscillates.
        logger.info("volt-var: %d steps fall back to the outer fixed point", failed.size)
        sub = run_voltvar(
            feeder,
            p[failed] if p.shape[0] > 1 else p,
            qb[failed] if qb.shape[0] > 1 else qb,
            p_inv_req[failed],
            s[failed],
            curve,
            priority="var" if priority == "var" else "watt",
            damping=min(damping, 0.25),
            tol_kvar=tol_kvar,
            max_iter=max_iter * 8,
            method="outer",
        )
        q_inv[failed] = sub.q_inv_kvar
        p_inv[failed] = sub.p_inv_kw
        iters[failed] = sub.iterations
    pf = run_powerflow(feeder, p + p_inv, qb - q_inv)
    q_tgt, _ = _targets(curve, pf.v_pu, s, p_inv_req, priority)
    return VoltVarResult(pf, q_inv, p_inv, int(iters.max()), float(np.max(np.abs(q_tgt - q_inv), initial=0.0)))
