"""Searches over a protection scheme: settings that restore coordination (``propose_settings``) and the fleet
size at which coordination first fails (``find_failing_scale``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from v2gtwin.grid.feeder import Feeder
from v2gtwin.grid.protection.coordination import (
    CoordinationOptions,
    DeviceCurrents,
    calc_clearing_elsewhere_s,
    calc_device_currents,
    calc_device_times_s,
    check_coordination,
)
from v2gtwin.grid.protection.devices import Scheme
from v2gtwin.grid.protection.faults import Aggregators, GridSource
from v2gtwin.grid.protection.relays import CURVES, calc_trip_time_two_level_s

__all__ = [
    "BACKFEED_MARGIN",
    "SENSITIVITY",
    "TDS_STEP",
    "Proposal",
    "ScaleSearch",
    "find_failing_scale",
    "propose_settings",
]

FloatArray = npt.NDArray[np.float64]

#: A pickup must stay below the smallest fault current its device must see, by this factor [-].
SENSITIVITY = 1.2
#: A pickup proposed against back-feed exceeds the largest back-feed current by this factor [-].
BACKFEED_MARGIN = 1.1
#: Time dials and delays are proposed in steps of this size [-].
TDS_STEP = 0.01


@dataclass(frozen=True)
class Proposal:
    """Settings proposed to restore coordination with and without V2G.

    Attributes
    ----------
    pickup_a, tds : proposed pickup [A] and time dial [-] of every device (the old value where none exists).
    feasible : a setting exists for the device [-].
    reason : why none exists ('' where one does).
    restored : the proposed scheme passes the check in both cases [-].
    """

    pickup_a: FloatArray
    tds: FloatArray
    feasible: npt.NDArray[np.bool_]
    reason: tuple[str, ...]
    restored: bool


def _min_tds_for(
    curve: str,
    i1: FloatArray,
    i2: FloatArray,
    pickup: float,
    need_s: FloatArray,
    lo: float,
    hi: float,
    rt: float | None,
) -> float:
    """Smallest time dial in [lo, hi] whose operating times on (i1, i2) reach every ``need_s`` (inf: none)."""
    if need_s.size == 0:
        return lo

    def ok(tds: float) -> bool:
        return bool(np.all(calc_trip_time_two_level_s(curve, i1, i2, pickup, tds, rt) >= need_s))

    if ok(lo):
        return lo
    if not ok(hi):
        return math.inf
    a, b = lo, hi
    for _ in range(50):
        mid = 0.5 * (a + b)
        a, b = (a, mid) if ok(mid) else (mid, b)
    return b


def _max_tds_for(
    curve: str, i1: FloatArray, i2: FloatArray, pickup: float, t_max: float, lo: float, hi: float, rt: float | None
) -> float:
    """Largest time dial in [lo, hi] whose operating times on (i1, i2) all stay within ``t_max`` (-inf: none)."""
    if i1.size == 0:
        return hi

    def ok(tds: float) -> bool:
        return bool(np.all(calc_trip_time_two_level_s(curve, i1, i2, pickup, tds, rt) <= t_max))

    if ok(hi):
        return hi
    if not ok(lo):
        return -math.inf
    a, b = lo, hi
    for _ in range(50):
        mid = 0.5 * (a + b)
        a, b = (mid, b) if ok(mid) else (a, mid)
    return a


def _tds_window(
    curve: str,
    pickup_a: float,
    lower: tuple[FloatArray, FloatArray, FloatArray],
    backfeed: tuple[FloatArray, FloatArray, FloatArray] | None,
    reach: tuple[FloatArray, FloatArray],
    keep: float | None,
    options: CoordinationOptions,
) -> tuple[float, float]:
    """(smallest, largest) time dial of a device: the smallest meets the CTI (and back-feed) needs, rounded up to
    :data:`TDS_STEP` (a device with none below keeps ``keep`` when allowed); the largest keeps its reach within
    ``t_max_s``. The smallest is inf when no dial in range meets the needs."""
    c = CURVES[curve]
    i1, i2, need = lower
    if backfeed is not None:
        i1, i2, need = (np.concatenate((x, y)) for x, y in zip(lower, backfeed, strict=True))
    rt = options.t_ride_through_s
    t_hi = _max_tds_for(curve, reach[0], reach[1], pickup_a, options.t_max_s, c.tds_min, c.tds_max, rt)
    # CTI currents switch at the ride-through; a back-feed entry has i1 = i2, judged as a constant current
    # (its need already ends at the ride-through).
    t_lo = _min_tds_for(curve, i1, i2, pickup_a, need, c.tds_min, c.tds_max, rt)
    if not math.isfinite(t_lo):
        return math.inf, t_hi
    t_lo = math.ceil(t_lo / TDS_STEP - 1e-9) * TDS_STEP
    if keep is not None:
        t_lo = max(t_lo, min(keep, t_hi))
    return t_lo, t_hi


def propose_settings(
    feeder: Feeder,
    scheme: Scheme,
    cases: list[DeviceCurrents],
    options: CoordinationOptions,
    *,
    i_load_max_a: FloatArray | None = None,
    pickup_margin: float = 1.5,
) -> Proposal:
    """Pickups and time dials that coordinate ``scheme`` in every case of ``cases`` (e.g. without and with V2G),
    device by device from the far end of the feeder towards the source; or, per device, why none exists.

    Rules, per device:

    * pickup at least ``pickup_margin`` x the largest load current (when ``i_load_max_a`` is given; else at
      least the present pickup), at most the smallest lasting fault current of its zone and backup zone (the
      grid's part, after the ride-through) divided by :data:`SENSITIVITY`; the present pickup is kept when it
      lies inside;
    * time dial: the smallest, in steps of :data:`TDS_STEP`, that (a) gives every device just below it a CTI of
      at least the margin at that device's largest zone current and (b) keeps it from tripping on back-feed
      before the ride-through ends or the slowest fault elsewhere is cleared (plus the margin); a device with
      no device below it keeps its present time dial when (b) allows; no operating time above ``t_max_s`` in its
      zone and backup zone;
    * when no time dial meets (b), the pickup is raised above the back-feed (x :data:`BACKFEED_MARGIN`) if
      that stays below the sensitivity limit; otherwise none exists (a directional element is the remedy).
    """
    m = scheme.n
    depth = feeder.depth()
    order = np.argsort(-depth[scheme.branch], kind="stable")
    pickup, tds = scheme.pickup_a.copy(), scheme.tds.copy()
    feasible = np.ones(m, dtype=bool)
    reason = [""] * m
    zone, n = scheme.zone, feeder.n_bus
    faulted = np.arange(n) >= 1
    parent_dev = np.where(zone >= 0, scheme.upstream[np.maximum(zone, 0)], -1)
    rt = options.t_ride_through_s
    rt_f = math.inf if rt is None else rt
    for u in order:
        dev = scheme.devices[u]
        c = CURVES[dev.curve]
        reach = ((zone == u) | (parent_dev == u)) & faulted
        lo = float(pickup_margin * i_load_max_a[dev.branch]) if i_load_max_a is not None else dev.pickup_a
        # The current that lasts: the grid's part once the aggregators' ride-through ends.
        i_min = min(float(np.min((cur.i_first_a if rt is None else cur.i_after_a)[reach, u])) for cur in cases)
        hi = i_min / SENSITIVITY
        if lo > hi:
            feasible[u] = False
            reason[u] = (
                f"no pickup at once >= {lo:,.0f} A ({pickup_margin} x load) and <= {hi:,.0f} A (smallest lasting "
                f"fault current in reach / {SENSITIVITY})"
            )
            continue
        p_new = float(max(min(dev.pickup_a, math.floor(hi)), math.ceil(lo)))
        p_new = min(max(p_new, lo), hi)
        # (a) CTI with the devices just below (their settings already proposed).
        kids = np.flatnonzero(scheme.upstream == u)
        need, i1s, i2s = [], [], []
        for cur in cases:
            for d in kids:
                f = int(np.argmax(np.where((zone == d) & faulted, cur.i_first_a[:, d], -1.0)))
                t_d = calc_trip_time_two_level_s(
                    scheme.devices[d].curve, cur.i_first_a[f, d], cur.i_after_a[f, d], pickup[d], tds[d], rt
                )
                if np.isfinite(t_d):
                    need.append(float(t_d) + options.cti_margin_s)
                    i1s.append(cur.i_first_a[f, u])
                    i2s.append(cur.i_after_a[f, u])
        # (b) back-feed: no operation before min(ride-through, slowest clearing elsewhere) + margin.
        current = scheme.with_settings(pickup, tds)
        bf_need, bf_i = [], []
        for cur in cases:
            t_cl = calc_clearing_elsewhere_s(current, cur, calc_device_times_s(current, cur, options))[u]
            if cur.i_backfeed_a[u] > 0 and t_cl > -math.inf:
                bf_need.append(min(rt_f, t_cl) + options.cti_margin_s)
                bf_i.append(cur.i_backfeed_a[u])
        r1 = np.concatenate([cur.i_first_a[reach, u] for cur in cases])
        r2 = np.concatenate([cur.i_after_a[reach, u] for cur in cases])

        lower = (np.array(i1s), np.array(i2s), np.array(need))
        backfeed = (np.array(bf_i), np.array(bf_i), np.array(bf_need))  # back-feed lasts while it is fed
        keep = None if kids.size else dev.tds
        t_new, t_hi = _tds_window(dev.curve, p_new, lower, backfeed, (r1, r2), keep, options)
        if not t_new <= min(t_hi, c.tds_max) + 1e-12 and bf_i:
            p_bf = float(math.ceil(BACKFEED_MARGIN * max(bf_i)))
            if p_new < p_bf <= hi:
                p_new = p_bf
                t_new, t_hi = _tds_window(dev.curve, p_new, lower, None, (r1, r2), keep, options)
        if not t_new <= min(t_hi, c.tds_max) + 1e-12:
            feasible[u] = False
            need_txt = f"{t_new:.3g}" if math.isfinite(t_new) else f"more than {c.tds_max}"
            cap_txt = f"{t_hi:.3g}" if math.isfinite(t_hi) else f"less than {c.tds_min}"
            reason[u] = (
                f"CTI >= {options.cti_margin_s} s to the devices below and riding out back-feed need a time dial of "
                f"{need_txt}; operating within {options.t_max_s} s over its reach allows at most {cap_txt} "
                f"(range {c.tds_min}..{c.tds_max})"
            )
            continue
        pickup[u], tds[u] = p_new, round(t_new, 6)
    new = scheme.with_settings(pickup, tds)
    restored = bool(feasible.all()) and all(check_coordination(feeder, new, cur, options).ok for cur in cases)
    return Proposal(pickup_a=pickup, tds=tds, feasible=feasible, reason=tuple(reason), restored=restored)


@dataclass(frozen=True)
class ScaleSearch:
    """Fleet size at which coordination first fails (bisection on a factor of every aggregator's rating).

    Attributes
    ----------
    scale : smallest factor found to fail, within ``tol`` (None: none up to ``scale_max``) [-].
    s_rated_kva : total aggregator rating at that factor [kVA].
    first_issue : what fails first there.
    evaluations : checks run [-].
    scale_max : upper end searched [-].
    """

    scale: float | None
    s_rated_kva: float | None
    first_issue: dict[str, int] = field(default_factory=dict)
    evaluations: int = 0
    scale_max: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "scale": self.scale,
            "s_rated_kva": self.s_rated_kva,
            "first_issue": self.first_issue,
            "evaluations": self.evaluations,
            "scale_max": self.scale_max,
        }


def find_failing_scale(
    feeder: Feeder,
    source: GridSource,
    aggregators: Aggregators,
    scheme: Scheme,
    options: CoordinationOptions,
    *,
    scale_max: float = 20.0,
    tol: float = 0.01,
) -> ScaleSearch:
    """Smallest factor on every aggregator's rating at which the scheme fails (miscoordination, sympathetic
    tripping or blinding that the scheme does not already have without V2G), by bisection to a relative ``tol``.

    Assumes failure is monotone in fleet size (more V2G current never restores coordination), which holds for
    the back-feed and blinding mechanisms of current sources; the search checks the bracket's ends.
    """

    def fails(s: float) -> tuple[bool, dict[str, int]]:
        cur = calc_device_currents(feeder, source, aggregators.scaled(s), scheme, options)
        chk = check_coordination(feeder, scheme, cur, options)
        issues = chk.n_issues()
        new = {k: max(0, v - base_issues[k]) for k, v in issues.items()}
        return any(new.values()), new

    base_cur = calc_device_currents(feeder, source, None, scheme, options)
    base_issues = check_coordination(feeder, scheme, base_cur, options).n_issues()
    n_eval = 1
    bad, what = fails(scale_max)
    n_eval += 1
    if not bad:
        return ScaleSearch(None, None, {}, n_eval, scale_max)
    lo, hi = 0.0, scale_max
    while hi - lo > tol * hi:
        mid = 0.5 * (lo + hi)
        b, w = fails(mid)
        n_eval += 1
        if b:
            hi, what = mid, w
        else:
            lo = mid
    return ScaleSearch(
        hi, float(hi * aggregators.s_rated_kva.sum()), {k: v for k, v in what.items() if v}, n_eval, scale_max
    )
