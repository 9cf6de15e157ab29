"""Relay coordination on a radial feeder with and without V2G: coordination time intervals of every
backup/primary pair, sympathetic tripping on back-feed, blinding, proposed settings, and the fleet size at which
coordination first fails."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from v2gtwin.errors import DataError
from v2gtwin.grid.feeder import Feeder
from v2gtwin.grid.protection.devices import Scheme
from v2gtwin.grid.protection.faults import (
    Aggregators,
    Combination,
    GridSource,
    downstream_mask,
    run_faults,
    subtree_sum,
)
from v2gtwin.grid.protection.relays import CURVES, calc_trip_time_two_level_s

__all__ = [
    "CoordinationCheck",
    "CoordinationOptions",
    "DeviceCurrents",
    "Proposal",
    "calc_device_currents",
    "check_coordination",
    "find_failing_scale",
    "propose_settings",
    "run_coordination",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: A pickup must stay below the smallest fault current its device must see, by this factor [-].
SENSITIVITY = 1.2
#: A pickup proposed against back-feed exceeds the largest back-feed current by this factor [-].
BACKFEED_MARGIN = 1.1
#: Time dials and delays are proposed in steps of this size [-].
TDS_STEP = 0.01


@dataclass(frozen=True)
class CoordinationOptions:
    """How coordination is judged.

    Attributes
    ----------
    cti_margin_s : smallest acceptable coordination time interval [s] (usual practice 0.2-0.4 s).
    t_max_s : slowest acceptable operating time for a fault in a device's zone or backup zone; slower is
        blinding [s].
    t_ride_through_s : how long the aggregators sustain their fault current before their inverters trip [s]
        (None: for the whole fault).
    combination, angle_deg : as :func:`v2gtwin.grid.protection.faults.run_faults`.
    """

    cti_margin_s: float = 0.3
    t_max_s: float = 2.0
    t_ride_through_s: float | None = 1.0
    combination: Combination = "iec60909"
    angle_deg: float | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.cti_margin_s <= 2.0:
            raise DataError(f"cti_margin_s: allowed range > 0 to 2 s, got {self.cti_margin_s}")
        if not 0.0 < self.t_max_s <= 600.0:
            raise DataError(f"t_max_s: allowed range > 0 to 600 s, got {self.t_max_s}")
        if self.t_ride_through_s is not None and not 0.0 <= self.t_ride_through_s <= 600.0:
            raise DataError(f"t_ride_through_s: allowed range 0 to 600 s, got {self.t_ride_through_s}")


@dataclass(frozen=True)
class DeviceCurrents:
    """Current magnitudes through every device for a fault at every bus, shape (n_bus, n_devices) [A].

    Attributes
    ----------
    i_first_a : while the aggregators inject (up to their ride-through time) [A].
    i_after_a : after their inverters trip: the grid's part alone [A].
    below : the fault bus lies downstream of the device [-].
    i_backfeed_a : back-feed through each device from the aggregators below it (any fault elsewhere) [A].
    i_fault_a : fault current at each bus (IEC 60909 or phasor combination) [A].
    i_fault_grid_a : the grid's part of it [A].
    """

    i_first_a: FloatArray
    i_after_a: FloatArray
    below: npt.NDArray[np.bool_]
    i_backfeed_a: FloatArray
    i_fault_a: FloatArray
    i_fault_grid_a: FloatArray


def calc_device_currents(
    feeder: Feeder,
    source: GridSource,
    aggregators: Aggregators | None,
    scheme: Scheme,
    options: CoordinationOptions,
) -> DeviceCurrents:
    """Fault currents through every device of ``scheme``, split into the part while the aggregators inject
    and the grid's part that stays after they trip (branch currents by Kirchhoff's law on the subtree:
    :func:`v2gtwin.grid.protection.faults.calc_branch_fault_currents`)."""
    faults = run_faults(feeder, source, aggregators, combination=options.combination, angle_deg=options.angle_deg)
    br = scheme.branch
    below = downstream_mask(feeder.parent, br)
    grid = below * faults.i_fault_grid_phasor_a[:, None]
    first = grid + below * faults.i_fault_v2g_phasor_a[:, None]
    s_br = np.zeros(br.size, dtype=np.complex128)
    if aggregators is not None and aggregators.n:
        s = np.zeros(feeder.n_bus, dtype=np.complex128)
        np.add.at(s, aggregators.bus, faults.i_v2g_phasor_a)
        s_br = subtree_sum(feeder.parent, s)[br]
        first = first - s_br[None, :]
    return DeviceCurrents(
        i_first_a=np.abs(first),
        i_after_a=np.abs(grid),
        below=below,
        i_backfeed_a=np.abs(s_br),
        i_fault_a=faults.i_fault_a,
        i_fault_grid_a=faults.i_fault_grid_a,
    )


def _times(scheme: Scheme, cur: DeviceCurrents, options: CoordinationOptions) -> FloatArray:
    """Operating time of every device for a fault at every bus [s], shape (n_bus, n_devices)."""
    t = np.empty_like(cur.i_first_a)
    curves = np.array([d.curve for d in scheme.devices])
    pickup, tds = scheme.pickup_a, scheme.tds
    for name in np.unique(curves):
        cols = np.flatnonzero(curves == name)
        t[:, cols] = calc_trip_time_two_level_s(
            str(name), cur.i_first_a[:, cols], cur.i_after_a[:, cols], pickup[cols], tds[cols], options.t_ride_through_s
        )
    return t


def _slowest_clearing_elsewhere(scheme: Scheme, cur: DeviceCurrents, t: FloatArray) -> FloatArray:
    """For every device, the slowest clearing time among the faults not below it [s] (-inf: none).

    A fault is cleared by the first device on its path to operate. A fault at the source bus stands for a
    fault on an adjacent feeder of the same substation, cleared by a head relay set like this feeder's
    fastest head relay at the grid's fault current there."""
    n, m = t.shape
    t_clear = np.where(cur.below, t, np.inf).min(axis=1) if m else np.full(n, np.inf)
    heads = [j for j, d in enumerate(scheme.devices) if scheme.upstream[j] < 0]
    t_clear[0] = min(
        float(
            calc_trip_time_two_level_s(
                scheme.devices[j].curve, cur.i_fault_grid_a[0], 0.0, scheme.pickup_a[j], scheme.tds[j], None
            )
        )
        for j in heads
    )
    return np.asarray(np.where(~cur.below, t_clear[:, None], -np.inf).max(axis=0), dtype=float)


def _backfeed_times(scheme: Scheme, i_backfeed_a: FloatArray) -> FloatArray:
    """Operating time of every device on its back-feed current [s] (inf: below pickup)."""
    return np.array(
        [
            float(calc_trip_time_two_level_s(d.curve, i_backfeed_a[j], 0.0, d.pickup_a, d.tds, None))
            for j, d in enumerate(scheme.devices)
        ]
    )


@dataclass(frozen=True)
class CoordinationCheck:
    """Coordination of a scheme in one case (with or without V2G).

    Pair arrays (one entry per backup/primary pair) and device arrays (one per device); a bus is a feeder index.

    Attributes
    ----------
    up, down : device indices of each pair [-].
    fault_bus : bus of the downstream zone's largest current through the downstream device [-].
    i_up_a, i_down_a : current through each device at that fault (while the aggregators inject) [A].
    t_up_s, t_down_s : their operating times there [s] (inf: no operation).
    cti_s : coordination time interval ``t_up - t_down`` [s] (nan when either does not operate).
    miscoordinated : the CTI is below the margin, or the backup operates and the primary does not [-].
    i_backfeed_a : back-feed through each device for faults elsewhere [A].
    t_backfeed_s : its operating time on that back-feed (the aggregators stop at their ride-through) [s].
    t_clear_slowest_s : slowest clearing time among the faults the device does not protect [s].
    sympathetic : the device would trip on back-feed before a fault elsewhere is cleared [-].
    blind_bus : fault bus of the device's slowest operation in its zone and backup zone [-].
    i_blind_a, t_blind_s : current and operating time there [A], [s].
    blinded : that time is above ``t_max_s`` (or the device does not operate) [-].
    """

    up: IntArray
    down: IntArray
    fault_bus: IntArray
    i_up_a: FloatArray
    i_down_a: FloatArray
    t_up_s: FloatArray
    t_down_s: FloatArray
    cti_s: FloatArray
    miscoordinated: npt.NDArray[np.bool_]
    i_backfeed_a: FloatArray
    t_backfeed_s: FloatArray
    t_clear_slowest_s: FloatArray
    sympathetic: npt.NDArray[np.bool_]
    blind_bus: IntArray
    i_blind_a: FloatArray
    t_blind_s: FloatArray
    blinded: npt.NDArray[np.bool_]

    @property
    def ok(self) -> bool:
        """No miscoordination, sympathetic trip or blinding."""
        return not (self.miscoordinated.any() or self.sympathetic.any() or self.blinded.any())

    def n_issues(self) -> dict[str, int]:
        """Counts of miscoordinated pairs, sympathetic trips and blinded devices."""
        return {
            "miscoordinated": int(self.miscoordinated.sum()),
            "sympathetic": int(self.sympathetic.sum()),
            "blinded": int(self.blinded.sum()),
        }


def check_coordination(
    feeder: Feeder, scheme: Scheme, cur: DeviceCurrents, options: CoordinationOptions
) -> CoordinationCheck:
    """Judge ``scheme`` on the device currents of one case.

    Notes
    -----
    * CTI of a pair at the fault in the downstream device's zone that drives the largest current through it
      (a close-in fault): ``CTI = t_up - t_down`` with both times from the time-varying current (the
      aggregators' part ends at their ride-through time).
    * Sympathetic tripping: a non-directional device away from the fault carries the back-feed ``|S_j|`` of
      the aggregators below it; it trips if it operates on that current within the ride-through time and
      before the slowest fault elsewhere is cleared (by the first device to operate on the fault's path). A
      fault at the source bus stands for a fault on an adjacent feeder (see
      :func:`_slowest_clearing_elsewhere`).
    * Blinding: over the device's zone and its backup zone (its downstream devices' zones) the slowest
      operating time exceeds ``t_max_s`` or the device does not operate at all.
    """
    n, m = cur.i_first_a.shape
    t = _times(scheme, cur, options)
    faulted = np.arange(n) >= 1  # a fault at the source bus is outside every device's reach
    zone = scheme.zone
    up, down = scheme.pairs()
    # Largest current through the downstream device within its zone.
    in_zone = (zone[:, None] == np.arange(m)[None, :]) & faulted[:, None]
    i_zone = np.where(in_zone, cur.i_first_a, -1.0)
    f_star = np.argmax(i_zone, axis=0)
    fb = f_star[down]
    t_up, t_down = t[fb, up], t[fb, down]
    both = np.isfinite(t_up) & np.isfinite(t_down)
    cti = np.where(both, t_up - np.where(both, t_down, 0.0), np.nan)
    mis = (both & (cti < options.cti_margin_s)) | (np.isfinite(t_up) & ~np.isfinite(t_down))
    t_clear_slow = _slowest_clearing_elsewhere(scheme, cur, t)
    t_bf = _backfeed_times(scheme, cur.i_backfeed_a)
    rt = math.inf if options.t_ride_through_s is None else options.t_ride_through_s
    symp = np.isfinite(t_bf) & (t_bf < rt) & (t_bf < t_clear_slow)
    # Blinding over zone + backup zone.
    parent_dev = np.where(zone >= 0, scheme.upstream[np.maximum(zone, 0)], -1)
    reach = (in_zone | ((parent_dev[:, None] == np.arange(m)[None, :]) & faulted[:, None])) & cur.below
    t_reach = np.where(reach, t, -1.0)
    blind_bus = np.argmax(t_reach, axis=0)
    cols = np.arange(m)
    t_blind = t_reach[blind_bus, cols]
    blinded = reach.any(axis=0) & (t_blind > options.t_max_s)
    return CoordinationCheck(
        up=up,
        down=down,
        fault_bus=fb,
        i_up_a=cur.i_first_a[fb, up],
        i_down_a=cur.i_first_a[fb, down],
        t_up_s=t_up,
        t_down_s=t_down,
        cti_s=cti,
        miscoordinated=mis,
        i_backfeed_a=cur.i_backfeed_a,
        t_backfeed_s=t_bf,
        t_clear_slowest_s=t_clear_slow,
        sympathetic=symp,
        blind_bus=blind_bus,
        i_blind_a=cur.i_first_a[blind_bus, cols],
        t_blind_s=t_blind,
        blinded=blinded,
    )


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
            t_cl = _slowest_clearing_elsewhere(current, cur, _times(current, cur, options))[u]
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


def run_coordination(
    feeder: Feeder,
    source: GridSource,
    aggregators: Aggregators | None,
    scheme: Scheme,
    options: CoordinationOptions,
) -> tuple[CoordinationCheck, CoordinationCheck, DeviceCurrents, DeviceCurrents]:
    """Check ``scheme`` without and with the aggregators: (check without, check with, currents without,
    currents with). Raises if a device can never trip (its pickup above every current it can see)."""
    base = calc_device_currents(feeder, source, None, scheme, options)
    v2g = calc_device_currents(feeder, source, aggregators, scheme, options)
    check_can_trip(scheme, [base, v2g], feeder)
    return (
        check_coordination(feeder, scheme, base, options),
        check_coordination(feeder, scheme, v2g, options),
        base,
        v2g,
    )


def check_can_trip(scheme: Scheme, cases: list[DeviceCurrents], feeder: Feeder) -> None:
    """Raise :class:`DataError` naming the first device whose pickup lies above every current it can see."""
    for j, d in enumerate(scheme.devices):
        i_max = max(float(max(cur.i_first_a[:, j].max(), cur.i_after_a[:, j].max())) for cur in cases)
        if d.pickup_a >= i_max:
            raise DataError(
                f"device {d.label}: pickup {d.pickup_a:,.0f} A is at or above the largest fault current it can see "
                f"({i_max:,.0f} A, fault at bus {feeder.bus_labels[d.branch]}): it can never trip"
            )


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
