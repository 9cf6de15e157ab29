"""Relay coordination on a radial feeder with and without V2G: the currents every device sees, coordination time
intervals of every backup/primary pair, sympathetic tripping on back-feed and blinding. Searches over settings
and fleet size are in :mod:`v2gtwin.grid.protection.search`."""

from __future__ import annotations

import math
from dataclasses import dataclass

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
from v2gtwin.grid.protection.relays import calc_trip_time_two_level_s

__all__ = [
    "CoordinationCheck",
    "CoordinationOptions",
    "DeviceCurrents",
    "calc_clearing_elsewhere_s",
    "calc_device_currents",
    "calc_device_times_s",
    "check_can_trip",
    "check_coordination",
    "run_coordination",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


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


def calc_device_times_s(scheme: Scheme, cur: DeviceCurrents, options: CoordinationOptions) -> FloatArray:
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


def calc_clearing_elsewhere_s(scheme: Scheme, cur: DeviceCurrents, t: FloatArray) -> FloatArray:
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
      :func:`calc_clearing_elsewhere_s`).
    * Blinding: over the device's zone and its backup zone (its downstream devices' zones) the slowest
      operating time exceeds ``t_max_s`` or the device does not operate at all.
    """
    n, m = cur.i_first_a.shape
    t = calc_device_times_s(scheme, cur, options)
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
    t_clear_slow = calc_clearing_elsewhere_s(scheme, cur, t)
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
