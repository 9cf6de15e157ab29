"""The fleet's aggregate flexibility as a virtual battery: the outer approximation (sum of the EVs' bounds) and an
inner approximation that is guaranteed to disaggregate (homothets of a prototype battery), per group of EVs.

Each EV ``i`` is a storage set ``P_i`` in grid-side charge/discharge trajectories ``(c, d)`` (n_steps each):
``0 <= c_t <= P_c plug_t``, ``0 <= d_t <= P_d plug_t`` and, for the cumulative change of its stored energy
``y_t = sum_{s<=t} (eta_c c_s - d_s / eta_d) dt``, ``floor - e0 <= y_t <= soc_max C - e0`` and
``y_t >= need = soc_target C - e0`` from its departure on.

A virtual battery (one per group) is the set of aggregate trajectories ``p = p_fixed + c - d`` with
``c, d >= 0``, ``p_min <= p <= p_max`` and ``e_min <= e_fixed + y(c, d) <= e_max``, ``y`` computed with the
battery's efficiencies.

* **outer**: the sums of the EVs' power bounds and energy bounds (the Minkowski sum of per-EV boxes), with
  capacity-weighted efficiencies: every trajectory the EVs can realise lies inside; not every trajectory inside
  can be realised by the EVs (see docs/network.md for a two-EV example).
* **inner**: Zhao, Zhang, Hao & Kalsi's homothets of a prototype set. In each group a window ``[A, D)`` and
  *members* are chosen; the prototype ``P_0`` is the intersection of the members' sets each scaled by
  ``1 / need_i`` and held at zero outside the window, so that ``need_i P_0 ⊆ P_i``. Every other EV of the group
  is *fixed* on a reference trajectory (even charging from arrival to departure, which meets its target). The
  group's inner battery is ``B P_0 + r`` with ``B = sum need_i`` and ``r`` the fixed EVs' power: a generalized
  battery. Any aggregate trajectory inside it disaggregates as ``x_i = (need_i / B) (x - r)`` for members and
  the reference for fixed EVs (:func:`disaggregate_battery`); each ``x_i`` lies in ``need_i P_0 ⊆ P_i``, which
  is the guarantee. No EV both charges and discharges in a step.

References
----------
L. Zhao, W. Zhang, H. Hao and K. Kalsi, "A geometric approach to aggregate flexibility modeling of
thermostatically controlled loads", IEEE Trans. Power Systems 32(6), 2017 (inner approximation of the Minkowski
sum by homothets of a prototype set; disaggregation by the homothet's scale).
F. L. Müller, J. Szabó, O. Sundström and J. Lygeros, "Aggregation and disaggregation of energetic flexibility
from distributed energy resources", IEEE Trans. Smart Grid 10(2), 2019 (the sum of per-unit bounds as an outer
approximation that need not disaggregate).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from v2gtwin.errors import DataError, InfeasibleError
from v2gtwin.fleet import Fleet, calc_energy_bounds, calc_plugged

__all__ = [
    "BatteryLP",
    "BatterySchedule",
    "VirtualBattery",
    "build_battery_lp",
    "calc_network_secure_battery",
    "calc_virtual_battery",
    "calc_window_classes",
    "disaggregate_battery",
    "solve_battery_schedule",
    "split_battery_power",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: HiGHS options of :func:`solve_battery_schedule`: interior point with crossover, so that the answer is a vertex
#: (no group charges and discharges its flexible part in one step; 0.69 s against 0.61 s without crossover and
#: 1.2 s dual simplex for the default day's 207 classes).
HIGHS_OPTIONS: dict[str, Any] = {"solver": "ipm", "run_crossover": "on"}
#: ``solver`` of a virtual-battery schedule.
SOLVER_BATTERY = "highs-ipm-crossover"
#: Relative tolerance of the membership check of :func:`disaggregate_battery` (solver round-off) [-].
TOL_REL = 1e-6
#: Quantiles of the members' arrival (latest first) and departure (earliest first) tried as a group's window.
_WINDOW_QUANTILES = (0.5, 0.75, 0.9, 1.0)


@dataclass(frozen=True)
class VirtualBattery:
    """Aggregate flexibility of groups of EVs as generalized batteries, one per group.

    Arrays are (n_steps,) for one group, (n_steps, n_groups) when grouped.

    Attributes
    ----------
    kind : "outer" (sum of the EVs' bounds) or "inner" (guaranteed disaggregable).
    p_min_kw, p_max_kw : aggregate power bounds per step, grid side, + charging [kW].
    e_min_kwh, e_max_kwh : bounds of the cumulative change of the group's stored energy at the end of each step
        (relative to the energy at arrival) [kWh].
    p_fixed_kw : power of the EVs held on their reference trajectory (0 for "outer") [kW].
    e_fixed_kwh : their cumulative stored-energy change at the end of each step [kWh].
    eta_charge, eta_discharge : efficiencies of the flexible part, per group [-].
    n_evs : EVs per group [-]. n_members : EVs of each group scaled with the prototype ("inner"; all for
        "outer") [-].
    member, beta_kwh, p_ref_kw : per EV: member of its group's prototype, its homothet scale (= its energy
        need) [kWh], its reference charging power while plugged (fixed EVs) [kW].
    group : the group of each EV [-].
    """

    kind: str
    p_min_kw: FloatArray
    p_max_kw: FloatArray
    e_min_kwh: FloatArray
    e_max_kwh: FloatArray
    p_fixed_kw: FloatArray
    e_fixed_kwh: FloatArray
    eta_charge: FloatArray
    eta_discharge: FloatArray
    n_evs: IntArray
    n_members: IntArray
    member: npt.NDArray[np.bool_]
    beta_kwh: FloatArray
    p_ref_kw: FloatArray
    group: IntArray

    @property
    def grouped(self) -> bool:
        """True when the arrays carry a trailing group axis."""
        return self.p_min_kw.ndim == 2

    def as_2d(self, name: str) -> FloatArray:
        """Attribute ``name`` with a group axis (n_steps, n_groups) even for one group."""
        a = np.asarray(getattr(self, name), dtype=float)
        return a if a.ndim == 2 else a[:, None]

    def summary(self) -> dict[str, Any]:
        """Headline figures of the fleet-wide battery (groups summed; JSON-ready)."""
        return {
            "kind": self.kind,
            "n_evs": int(self.n_evs.sum()),
            "n_members": int(self.n_members.sum()),
            "p_max_peak_kw": float(self.as_2d("p_max_kw").sum(axis=1).max()),
            "p_min_low_kw": float(self.as_2d("p_min_kw").sum(axis=1).min()),
            "energy_flexible_kwh": float((self.as_2d("e_max_kwh") - self.as_2d("e_min_kwh")).sum(axis=1).max()),
        }


def _groups(fleet: Fleet, group: npt.ArrayLike | None, n_groups: int | None) -> tuple[IntArray, int]:
    if group is None:
        return np.zeros(fleet.n, dtype=np.int64), 1
    g = np.asarray(group)
    if g.shape != (fleet.n,) or not np.issubdtype(g.dtype, np.integer):
        raise DataError(f"group: need one integer per EV ({fleet.n}), got shape {g.shape} of {g.dtype}")
    ng = int(g.max()) + 1 if n_groups is None and g.size else int(n_groups or 1)
    if g.size and (g.min() < 0 or g.max() >= ng):
        raise DataError(f"group: values must lie in 0..{ng - 1} (n_groups = {ng}), got {g.min()}..{g.max()}")
    return g.astype(np.int64), ng


def calc_window_classes(fleet: Fleet, bin_steps: int = 4) -> IntArray:
    """Group label per EV: same arrival bin, departure bin (``bin_steps`` steps wide), V2G capability and
    efficiencies (the classes the inner battery of a whole fleet is built on, one prototype each) [-]."""
    if bin_steps < 1:
        raise DataError(f"bin_steps: allowed range >= 1, got {bin_steps}")
    key = np.column_stack(
        [
            fleet.arrival_step // bin_steps,
            fleet.departure_step // bin_steps,
            fleet.p_discharge_max_kw > 0,
            np.round(fleet.eta_charge * 1e6),
            np.round(fleet.eta_discharge * 1e6),
        ]
    ).astype(np.int64)
    if fleet.n == 0:
        return np.zeros(0, dtype=np.int64)
    _, inv = np.unique(key, axis=0, return_inverse=True)
    return np.asarray(inv, dtype=np.int64).ravel()


def _reference_rate_kw(fleet: Fleet, need: FloatArray) -> FloatArray:
    """Even charging from arrival to departure that meets each EV's target (0 for no need) [kW]."""
    dwell = np.maximum(fleet.departure_step - fleet.arrival_step, 1)
    return np.where(need > 0, need / (fleet.eta_charge * fleet.dt_h * dwell), 0.0)


def _choose_members(
    fleet: Fleet, idx: IntArray, need: FloatArray, eta_c: float
) -> tuple[npt.NDArray[np.bool_], int, int]:
    """Window [A, D) and members among EVs ``idx`` of a group (all eligible) maximising the flexible energy
    ``B (C0 eta_c dt (D - A) - 1)``, with ``C0`` the smallest power-to-need ratio of the members."""
    a, d = fleet.arrival_step[idx], fleet.departure_step[idx]
    ratio = fleet.p_charge_max_kw[idx] / need[idx]
    best = (0.0, np.zeros(idx.size, dtype=bool), 0, 0)
    for qa in _WINDOW_QUANTILES:
        big_a = int(np.quantile(a, qa, method="higher"))
        for qd in _WINDOW_QUANTILES:
            big_d = int(np.quantile(d, 1.0 - qd, method="lower"))
            if big_d <= big_a:
                continue
            cover = np.flatnonzero((a <= big_a) & (d >= big_d))
            order = cover[np.argsort(-ratio[cover], kind="stable")]
            cum = np.cumsum(need[idx][order])
            flex = cum * (ratio[order] * eta_c * fleet.dt_h * (big_d - big_a) - 1.0)
            if flex.size == 0:
                continue
            k = int(np.argmax(flex))
            if flex[k] > best[0]:
                m = np.zeros(idx.size, dtype=bool)
                m[order[: k + 1]] = True
                best = (float(flex[k]), m, big_a, big_d)
    return best[1], best[2], best[3]


def calc_virtual_battery(
    fleet: Fleet,
    kind: Literal["inner", "outer"] = "inner",
    group: npt.ArrayLike | None = None,
    n_groups: int | None = None,
) -> VirtualBattery:
    """The fleet's (or each group's) virtual battery, outer or inner (see the module docstring).

    Parameters
    ----------
    fleet : the EVs; every target must be reachable at full power (``markets.scheduling.feasible_part``).
    kind : "outer" or "inner".
    group : group index per EV (e.g. its bus or feeder), or None for one group.
    n_groups : number of groups (default: largest index + 1).

    Notes
    -----
    Inner battery of a group: members ``S`` share one efficiency pair and cover the window ``[A, D)``; with
    ``need_i = soc_target C - e0 > 0``, ``r_i = P_c,i / need_i``,

    ``C0 = min_S r_i``, ``D0 = min_S P_d,i / need_i`` inside the window (0 outside; ``P_d,i`` taken as 0 for an
    EV that arrives below its minimum SoC, which the fleet model never lets discharge),
    ``Y0_lo = max_S (min(soc_min C, e0) - e0) / need_i`` before ``D - 1`` and 1 from it on,
    ``Y0_hi = min_S (soc_max C - e0) / need_i``,

    and ``need_i P_0 ⊆ P_i`` holds constraint by constraint. The window and members maximise the flexible energy
    (window from quantiles of the arrivals and departures; members the EVs with the largest ``r_i``).

    References
    ----------
    Zhao, Zhang, Hao & Kalsi, IEEE Trans. Power Systems 32(6), 2017 (homothetic inner approximation).
    """
    if kind not in ("inner", "outer"):
        raise DataError(f"kind: must be 'inner' or 'outer', got {kind!r}")
    g, ng = _groups(fleet, group, n_groups)
    n_steps, dt_h = fleet.n_steps, fleet.dt_h
    plug = calc_plugged(fleet)
    e0 = fleet.soc0_pu * fleet.capacity_kwh
    need = fleet.soc_target_pu * fleet.capacity_kwh - e0
    n_evs = np.bincount(g, minlength=ng).astype(np.int64)

    def by_group(per_ev_t_raw: npt.ArrayLike) -> FloatArray:
        per_ev_t = np.asarray(per_ev_t_raw, dtype=np.float64)
        out = np.zeros((n_steps, ng))
        for t in range(n_steps):
            out[t] = np.bincount(g, weights=per_ev_t[t], minlength=ng)
        return out

    if kind == "outer":
        lo, up = calc_energy_bounds(fleet)
        w = fleet.capacity_kwh
        wsum = np.maximum(np.bincount(g, weights=w, minlength=ng), 1e-300)
        vb = VirtualBattery(
            kind="outer",
            p_min_kw=-by_group(plug * fleet.p_discharge_max_kw),
            p_max_kw=by_group(plug * fleet.p_charge_max_kw),
            e_min_kwh=by_group(lo[1:] - e0),
            e_max_kwh=by_group(up[1:] - e0),
            p_fixed_kw=np.zeros((n_steps, ng)),
            e_fixed_kwh=np.zeros((n_steps, ng)),
            eta_charge=np.where(n_evs > 0, np.bincount(g, weights=w * fleet.eta_charge, minlength=ng) / wsum, 1.0),
            eta_discharge=np.where(
                n_evs > 0, np.bincount(g, weights=w * fleet.eta_discharge, minlength=ng) / wsum, 1.0
            ),
            n_evs=n_evs,
            n_members=n_evs.copy(),
            member=np.ones(fleet.n, dtype=bool),
            beta_kwh=np.zeros(fleet.n),
            p_ref_kw=np.zeros(fleet.n),
            group=g,
        )
        return vb if group is not None else _squeeze(vb)

    dwell = fleet.departure_step - fleet.arrival_step
    reach = fleet.p_charge_max_kw * fleet.eta_charge * dt_h * dwell
    if np.any((need > reach + 1e-9) & (dwell > 0)) or np.any((need > 1e-9) & (dwell <= 0)):
        i = int(np.argmax(((need > reach + 1e-9) & (dwell > 0)) | ((need > 1e-9) & (dwell <= 0))))
        raise InfeasibleError(f"inner virtual battery: EV {i} cannot reach its target by departure at full power")
    member = np.zeros(fleet.n, dtype=bool)
    window = np.zeros((ng, 2), dtype=np.int64)
    eta_c_g, eta_d_g = np.ones(ng), np.ones(ng)
    order = np.argsort(g, kind="stable")
    bounds = np.searchsorted(g[order], np.arange(ng + 1))
    for k in range(ng):
        idx = order[bounds[k] : bounds[k + 1]]
        if idx.size == 0:
            continue
        pair = np.round(np.column_stack([fleet.eta_charge[idx], fleet.eta_discharge[idx]]) * 1e9)
        vals, counts = np.unique(pair, axis=0, return_counts=True)
        mode = vals[int(np.argmax(counts))]
        eta_c_g[k], eta_d_g[k] = mode[0] / 1e9, mode[1] / 1e9
        ok = idx[(need[idx] > 1e-6) & (dwell[idx] > 0) & np.all(pair == mode, axis=1)]
        if ok.size == 0:
            continue
        m, big_a, big_d = _choose_members(fleet, ok, need, float(eta_c_g[k]))
        member[ok[m]] = True
        window[k] = (big_a, big_d)
    beta = np.where(member, need, 0.0)
    ref = np.where(member, 0.0, _reference_rate_kw(fleet, np.maximum(need, 0.0)))
    p_fixed = by_group(plug * ref)
    e_fixed = np.cumsum(by_group(plug * ref * fleet.eta_charge * dt_h), axis=0)
    c0, d0 = np.zeros((n_steps, ng)), np.zeros((n_steps, ng))
    y0_lo, y0_hi = np.zeros((n_steps, ng)), np.zeros((n_steps, ng))
    big_b = np.bincount(g, weights=beta, minlength=ng)
    n_members = np.bincount(g, weights=member, minlength=ng).astype(np.int64)
    for kk in np.flatnonzero(n_members > 0):
        k = int(kk)
        mi = np.flatnonzero(member & (g == k))
        nd = need[mi]
        big_a, big_d = window[k]
        c0[big_a:big_d, k] = np.min(fleet.p_charge_max_kw[mi] / nd)
        # An EV that arrives below its minimum SoC may not discharge at all (the fleet model never discharges
        # below soc_min, even after charging above it): no discharge in the prototype for it.
        pd = np.where(e0[mi] < fleet.soc_min_pu[mi] * fleet.capacity_kwh[mi] - 1e-9, 0.0, fleet.p_discharge_max_kw[mi])
        d0[big_a:big_d, k] = np.min(pd / nd)
        floor = np.minimum(fleet.soc_min_pu[mi] * fleet.capacity_kwh[mi], e0[mi]) - e0[mi]
        y0_lo[:, k] = np.max(floor / nd)
        y0_lo[big_d - 1 :, k] = 1.0
        y0_hi[:, k] = np.min((fleet.soc_max_pu[mi] * fleet.capacity_kwh[mi] - e0[mi]) / nd)
    vb = VirtualBattery(
        kind="inner",
        p_min_kw=p_fixed - big_b * d0,
        p_max_kw=p_fixed + big_b * c0,
        e_min_kwh=e_fixed + big_b * y0_lo,
        e_max_kwh=e_fixed + big_b * y0_hi,
        p_fixed_kw=p_fixed,
        e_fixed_kwh=e_fixed,
        eta_charge=eta_c_g,
        eta_discharge=eta_d_g,
        n_evs=n_evs,
        n_members=n_members,
        member=member,
        beta_kwh=beta,
        p_ref_kw=ref,
        group=g,
    )
    return vb if group is not None else _squeeze(vb)


def _squeeze(vb: VirtualBattery) -> VirtualBattery:
    """One group: drop the group axis of the per-step arrays."""
    changes = {
        name: np.asarray(getattr(vb, name))[:, 0]
        for name in ("p_min_kw", "p_max_kw", "e_min_kwh", "e_max_kwh", "p_fixed_kw", "e_fixed_kwh")
    }
    return VirtualBattery(**{**vb.__dict__, **changes})


def calc_network_secure_battery(
    vb: VirtualBattery, p_import_max_kw: npt.ArrayLike, p_export_max_kw: npt.ArrayLike
) -> tuple[VirtualBattery, int]:
    """The battery ``vb`` (grouped by bus, say) within operating envelopes: per step and group, aggregate power
    at most ``p_import_max_kw`` and at least ``-p_export_max_kw`` (each (n_steps, n_groups), >= 0) [kW].

    Returns (the battery, group-steps where the fixed EVs' reference alone exceeds the import limit). The
    intersection of the inner battery with a power box is a subset of it, so every trajectory inside still
    disaggregates exactly; where the fixed reference exceeds the limit the bound stays at the reference (the
    battery cannot go lower without moving a fixed EV) and the count says so. The result may be empty (the
    energy band out of reach under the limits): a schedule on it then reports the battery infeasible.
    """
    pmin, pmax, pf = vb.as_2d("p_min_kw"), vb.as_2d("p_max_kw"), vb.as_2d("p_fixed_kw")
    imp = np.asarray(p_import_max_kw, dtype=float)
    exp = np.asarray(p_export_max_kw, dtype=float)
    imp2 = imp if imp.ndim == 2 else imp[:, None]
    exp2 = exp if exp.ndim == 2 else exp[:, None]
    if imp2.shape != pmin.shape or exp2.shape != pmin.shape:
        raise DataError(f"p_import_max_kw, p_export_max_kw: expected shape {pmin.shape}, got {imp.shape}, {exp.shape}")
    if np.any(imp2 < 0) or np.any(exp2 < 0) or np.isnan(imp2).any() or np.isnan(exp2).any():
        raise DataError("p_import_max_kw, p_export_max_kw: limits must be >= 0")
    over = pf > imp2 + 1e-9
    new_max = np.maximum(np.minimum(pmax, imp2), pf)
    new_min = np.minimum(np.maximum(pmin, -exp2), pf)
    changes = {"p_max_kw": new_max, "p_min_kw": new_min}
    if not vb.grouped:
        changes = {k: v[:, 0] for k, v in changes.items()}
    return VirtualBattery(**{**vb.__dict__, **changes}), int(over.sum())


def split_battery_power(
    vb: VirtualBattery, p_agg_kw: npt.ArrayLike, dt_h: float
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Split aggregate power (n_steps, n_groups) into the flexible part's charging and discharging, and its
    cumulative stored-energy change: ``c = max(p - p_fixed, 0)``, ``d = max(p_fixed - p, 0)`` [kW], [kW], [kWh]."""
    p = np.asarray(p_agg_kw, dtype=float)
    p2 = p if p.ndim == 2 else p[:, None]
    flex = p2 - vb.as_2d("p_fixed_kw")
    c, d = np.clip(flex, 0.0, None), np.clip(-flex, 0.0, None)
    y = np.cumsum((vb.eta_charge * c - d / vb.eta_discharge) * dt_h, axis=0)
    return c, d, y


def disaggregate_battery(
    fleet: Fleet,
    p_agg_kw: npt.ArrayLike,
    group: npt.ArrayLike | None = None,
    n_groups: int | None = None,
    *,
    battery: VirtualBattery | None = None,
) -> FloatArray:
    """Per-EV power (n_steps, N) [kW] for an aggregate trajectory inside the inner virtual battery.

    ``p_agg_kw`` is (n_steps,) for one group or (n_steps, n_groups). Members of a group take
    ``need_i / B`` of the flexible part (``p - p_fixed``: charging when positive, discharging when negative);
    fixed EVs follow their reference. The result sums to ``p_agg_kw`` exactly and meets every EV's power
    limits, SoC bounds and target (module docstring); pass ``battery`` to reuse one already computed.

    Raises
    ------
    InfeasibleError
        The trajectory lies outside the inner battery: names the group, the step and the bound.
    """
    vb = calc_virtual_battery(fleet, "inner", group, n_groups) if battery is None else battery
    if vb.kind != "inner":
        raise DataError("battery: disaggregation is guaranteed only for the inner battery (kind 'inner')")
    ng = vb.as_2d("p_min_kw").shape[1]
    p = np.asarray(p_agg_kw, dtype=float)
    p2 = p if p.ndim == 2 else p[:, None]
    if p2.shape != (fleet.n_steps, ng):
        raise DataError(f"p_agg_kw: expected shape ({fleet.n_steps}, {ng}), got {p.shape}")
    if not np.isfinite(p2).all():
        raise DataError("p_agg_kw: values must be finite")
    c, d, y = split_battery_power(vb, p2, fleet.dt_h)
    scale_p = np.maximum(np.abs(vb.as_2d("p_max_kw")).max(axis=0) + np.abs(vb.as_2d("p_min_kw")).max(axis=0), 1.0)
    scale_e = np.maximum(np.abs(vb.as_2d("e_max_kwh")).max(axis=0), 1.0)
    checks = (
        ("above p_max_kw", p2 - vb.as_2d("p_max_kw"), scale_p),
        ("below p_min_kw", vb.as_2d("p_min_kw") - p2, scale_p),
        ("above e_max_kwh", vb.as_2d("e_fixed_kwh") + y - vb.as_2d("e_max_kwh"), scale_e),
        ("below e_min_kwh", vb.as_2d("e_min_kwh") - vb.as_2d("e_fixed_kwh") - y, scale_e),
    )
    for what, excess, scale in checks:
        bad = excess > TOL_REL * scale
        if bad.any():
            t, k = np.argwhere(bad)[0]
            raise InfeasibleError(
                f"aggregate trajectory outside the inner virtual battery: group {k}, step {t}, {what} by "
                f"{excess[t, k]:.6g} ({int(bad.sum())} group-steps in all)"
            )
    big_b = np.bincount(vb.group, weights=vb.beta_kwh, minlength=ng)
    share = np.where(vb.member, vb.beta_kwh / np.where(big_b > 0, big_b, 1.0)[vb.group], 0.0)
    plug = calc_plugged(fleet)
    p_ev = plug * (vb.p_ref_kw + share * (c[:, vb.group] - d[:, vb.group]))
    return np.asarray(p_ev, dtype=np.float64)


@dataclass(frozen=True)
class BatteryLP:
    """The LP blocks of grouped virtual batteries: variables ``[C_k, D_k, Y_k]`` per group ``k`` (n_steps each:
    flexible charging, discharging [kW], cumulative stored-energy change [kWh]).

    Attributes
    ----------
    n_var : number of variables. a_eq, b_eq : the energy balance rows. bounds : (n_var, 2) variable bounds.
    cost : objective coefficients [currency per unit]. cost_fixed : the fixed EVs' cost [currency].
    flex : sparse (n_steps * n_groups, n_var) map to each group-step's flexible power ``C - D`` (row
    ``t * n_groups + k``) [kW].
    """

    n_var: int
    a_eq: Any
    b_eq: FloatArray
    bounds: FloatArray
    cost: FloatArray
    cost_fixed: float
    flex: Any


def build_battery_lp(
    vb: VirtualBattery, price_per_mwh: FloatArray, dt_h: float, degradation_per_mwh: float
) -> BatteryLP:
    """LP blocks of ``vb`` (see :class:`BatteryLP`): energy ``Y_t = Y_t-1 + (eta_c C_t - D_t / eta_d) dt``,
    ``0 <= C <= p_max - p_fixed``, ``0 <= D <= p_fixed - p_min``, ``e_min - e_fixed <= Y <= e_max - e_fixed``;
    cost ``price (C - D) dt + degradation D dt`` per MWh."""
    import scipy.sparse as sp

    pmin, pmax = vb.as_2d("p_min_kw"), vb.as_2d("p_max_kw")
    pf, ef = vb.as_2d("p_fixed_kw"), vb.as_2d("e_fixed_kwh")
    n, ng = pmin.shape
    k = np.repeat(np.arange(ng), n)
    t = np.tile(np.arange(n), ng)
    base = 3 * n * k + t  # C index; D = +n; Y = +2n
    eta_c, eta_d = np.asarray(vb.eta_charge, float)[k], np.asarray(vb.eta_discharge, float)[k]
    rows = np.arange(n * ng)
    later = t > 0
    a_eq = sp.csr_matrix(
        (
            np.concatenate([np.ones(n * ng), -np.ones(int(later.sum())), -eta_c * dt_h, dt_h / eta_d]),
            (
                np.concatenate([rows, rows[later], rows, rows]),
                np.concatenate([base + 2 * n, base[later] + 2 * n - 1, base, base + n]),
            ),
        ),
        shape=(n * ng, 3 * n * ng),
    )
    lo = np.zeros(3 * n * ng)
    hi = np.zeros(3 * n * ng)
    hi[base] = np.maximum(pmax - pf, 0.0).T.ravel()
    hi[base + n] = np.maximum(pf - pmin, 0.0).T.ravel()
    lo[base + 2 * n] = (vb.as_2d("e_min_kwh") - ef).T.ravel()
    hi[base + 2 * n] = (vb.as_2d("e_max_kwh") - ef).T.ravel()
    price = np.asarray(price_per_mwh, float)
    cost = np.zeros(3 * n * ng)
    cost[base] = price[t] * dt_h / 1000.0
    cost[base + n] = (degradation_per_mwh - price[t]) * dt_h / 1000.0
    flex = sp.csr_matrix(
        (
            np.concatenate([np.ones(n * ng), -np.ones(n * ng)]),
            (np.tile(t * ng + k, 2), np.concatenate([base, base + n])),
        ),
        shape=(n * ng, 3 * n * ng),
    )
    return BatteryLP(
        n_var=3 * n * ng,
        a_eq=a_eq,
        b_eq=np.zeros(n * ng),
        bounds=np.column_stack([lo, hi]),
        cost=cost,
        cost_fixed=float((pf.sum(axis=1) * price).sum() * dt_h / 1000.0),
        flex=flex,
    )


@dataclass(frozen=True)
class BatterySchedule:
    """A cost-minimal schedule of grouped virtual batteries.

    Attributes
    ----------
    kind : the battery's kind. p_kw : power per step and group (n_steps, n_groups) [kW]. p_total_kw : summed
    over groups [kW]. cost_per_horizon : energy cost plus degradation [currency]. solver : who answered.
    """

    kind: str
    p_kw: FloatArray
    p_total_kw: FloatArray
    cost_per_horizon: float
    solver: str


def solve_battery_schedule(
    vb: VirtualBattery,
    price_per_mwh: npt.ArrayLike,
    dt_h: float,
    *,
    degradation_per_mwh: float = 30.0,
    import_cap_kw: float | npt.ArrayLike = np.inf,
    base_load_kw: float | npt.ArrayLike = 0.0,
) -> BatterySchedule:
    """Cost-minimal day-ahead schedule of the batteries of ``vb`` (all groups) under a common import cap
    ``sum_k p_k + base <= cap`` (HiGHS interior point).

    On the inner battery the result disaggregates exactly (:func:`disaggregate_battery`); on the outer one its
    cost is a lower bound of what the EVs can achieve.

    Raises
    ------
    InfeasibleError
        No schedule of the batteries fits under the cap.
    """
    import scipy.sparse as sp

    from v2gtwin.optimize.schedule import _linprog

    price = np.asarray(price_per_mwh, dtype=float)
    lp = build_battery_lp(vb, price, dt_h, degradation_per_mwh)
    n, ng = vb.as_2d("p_min_kw").shape
    cap = np.broadcast_to(np.asarray(import_cap_kw, dtype=float), (n,))
    base = np.broadcast_to(np.asarray(base_load_kw, dtype=float), (n,))
    finite = np.isfinite(cap)
    a_ub, b_ub = None, None
    if finite.any():
        summ = sp.csr_matrix((np.ones(n * ng), (np.repeat(np.arange(n), ng), np.arange(n * ng))), shape=(n, n * ng))
        a_ub = (summ @ lp.flex)[finite]
        b_ub = (cap - base - vb.as_2d("p_fixed_kw").sum(axis=1))[finite]
    res = _linprog(lp.cost, a_ub, b_ub, lp.a_eq, lp.b_eq, lp.bounds, HIGHS_OPTIONS)
    if res.status != 0:
        raise InfeasibleError(
            f"{vb.kind} virtual-battery schedule: {res.message} (import-cap or energy-band constraint)"
        )
    p = vb.as_2d("p_fixed_kw") + (lp.flex @ res.x).reshape(n, ng)
    return BatterySchedule(vb.kind, p, p.sum(axis=1), float(res.fun) + lp.cost_fixed, SOLVER_BATTERY)
