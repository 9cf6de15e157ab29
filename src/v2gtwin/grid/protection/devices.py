"""Protective devices as data: where they sit on a radial feeder, which zones they protect, which pairs must
coordinate, and the default scheme (a feeder-head relay and a relay at the head of every lateral)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from v2gtwin.errors import DataError
from v2gtwin.grid.feeder import Feeder
from v2gtwin.grid.protection.relays import CURVES

__all__ = [
    "Device",
    "Scheme",
    "calc_load_current_a",
    "find_lateral_heads",
    "place_default_devices",
]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Device:
    """One overcurrent device.

    Attributes
    ----------
    label : name shown in every output.
    branch : feeder index of the bus its branch feeds (the device sits at the upstream end of the branch from
        ``parent[branch]`` to ``branch`` and sees the current flowing into it) [-].
    curve : key of :data:`v2gtwin.grid.protection.relays.CURVES`.
    pickup_a : pickup current [A].
    tds : time-dial setting [-] (the delay [s] of a definite-time element).
    kind : 'relay' or 'recloser' (a recloser is modelled by its time-delayed curve only).
    """

    label: str
    branch: int
    curve: str
    pickup_a: float
    tds: float
    kind: str = "relay"

    def __post_init__(self) -> None:
        if self.curve not in CURVES:
            raise DataError(f"device {self.label}: curve must be one of {', '.join(CURVES)}, got {self.curve!r}")
        if not (math.isfinite(self.pickup_a) and self.pickup_a > 0):
            raise DataError(f"device {self.label}: pickup_a must be > 0 A, got {self.pickup_a}")
        if not (math.isfinite(self.tds) and self.tds > 0):
            raise DataError(f"device {self.label}: tds must be > 0, got {self.tds}")


@dataclass(frozen=True)
class Scheme:
    """A feeder's protective devices, with the tree relations the coordination check needs.

    Attributes
    ----------
    devices : the devices.
    zone : for each bus, the index of the device nearest above it (its primary device), -1 if none [-].
    upstream : for each device, the index of the nearest device above it (its backup), -1 if none [-].
    """

    devices: tuple[Device, ...]
    zone: IntArray
    upstream: IntArray

    @classmethod
    def build(cls, feeder: Feeder, devices: tuple[Device, ...] | list[Device]) -> Scheme:
        """Relate ``devices`` to ``feeder``: check the branches, find each bus's primary device and each
        device's backup. At most one device per branch."""
        devices = tuple(devices)
        if not devices:
            raise DataError("protection.devices: the scheme has no devices")
        n = feeder.n_bus
        at = np.full(n, -1, dtype=np.int64)
        for i, d in enumerate(devices):
            if not 1 <= d.branch < n:
                raise DataError(f"device {d.label}: branch must feed a bus 1..{n - 1} of the feeder, got {d.branch}")
            if at[d.branch] >= 0:
                raise DataError(
                    f"device {d.label}: branch {d.branch} already holds device {devices[at[d.branch]].label}"
                )
            at[d.branch] = i
        zone = np.full(n, -1, dtype=np.int64)
        for j in range(1, n):
            zone[j] = at[j] if at[j] >= 0 else zone[feeder.parent[j]]
        upstream = np.array([zone[feeder.parent[d.branch]] for d in devices], dtype=np.int64)
        return cls(devices=devices, zone=zone, upstream=upstream)

    @property
    def n(self) -> int:
        """Number of devices [-]."""
        return len(self.devices)

    @property
    def branch(self) -> IntArray:
        """Branch of each device [-]."""
        return np.array([d.branch for d in self.devices], dtype=np.int64)

    @property
    def pickup_a(self) -> FloatArray:
        """Pickup of each device [A]."""
        return np.array([d.pickup_a for d in self.devices])

    @property
    def tds(self) -> FloatArray:
        """Time dial of each device [-]."""
        return np.array([d.tds for d in self.devices])

    def pairs(self) -> tuple[IntArray, IntArray]:
        """(upstream, downstream) device indices of every backup/primary pair."""
        down = np.flatnonzero(self.upstream >= 0)
        return self.upstream[down], down

    def with_settings(self, pickup_a: npt.ArrayLike, tds: npt.ArrayLike) -> Scheme:
        """The same devices with new pickups [A] and time dials [-]."""
        p, t = np.asarray(pickup_a, dtype=float), np.asarray(tds, dtype=float)
        devs = tuple(replace(d, pickup_a=float(p[i]), tds=float(t[i])) for i, d in enumerate(self.devices))
        return Scheme(devices=devs, zone=self.zone, upstream=self.upstream)


def find_lateral_heads(feeder: Feeder) -> tuple[int, IntArray]:
    """The feeder-head branch and the head branch of every lateral leaving the main line.

    The main line is the path from the source to the deepest bus (most branches; ties: the first in feeder
    order); a lateral head is a branch leaving a main-line bus that is not on the main line. Buses fed straight
    from the source bus other than the first are treated as laterals too.

    Returns
    -------
    (head, laterals): feeder index of the bus the head branch feeds, and of each lateral head, in feeder order.
    """
    depth = feeder.depth()
    end = int(np.argmax(depth))
    main = np.zeros(feeder.n_bus, dtype=bool)
    j = end
    while j >= 0:
        main[j] = True
        j = int(feeder.parent[j])
    children = np.arange(1, feeder.n_bus)
    head = int(children[main[children] & (feeder.parent[children] == 0)][0])
    lateral = children[~main[children] & main[feeder.parent[children]]]
    return head, np.asarray(lateral, dtype=np.int64)


def calc_load_current_a(feeder: Feeder, p_kw: npt.ArrayLike, q_kvar: npt.ArrayLike) -> FloatArray:
    """Current of every branch at the given bus loads by the exact power flow [A] (index: the fed bus);
    the loads may be a time series (n_steps, n_bus): the largest current of each branch is returned."""
    from v2gtwin.grid.feeder import run_powerflow

    res = run_powerflow(feeder, np.atleast_2d(p_kw), np.atleast_2d(q_kvar))
    return np.asarray(res.i_branch_a.max(axis=0), dtype=float)


def place_default_devices(
    feeder: Feeder, i_load_max_a: FloatArray, *, curve: str = "iec_si", pickup_margin: float = 1.5, tds: float = 0.1
) -> list[Device]:
    """The default scheme's devices, before the time dials are coordinated: a relay at the feeder head and one
    at the head of every lateral (:func:`find_lateral_heads`), each with pickup ``pickup_margin`` x the
    largest load current of its branch, rounded up to 1 A, and time dial ``tds``.

    The usual rule sets an overcurrent pickup above the largest load current with a margin for load growth and
    cold-load pickup (1.25 to 2, 1.5 here) and below the smallest fault current of its zone.

    References
    ----------
    J. L. Blackburn, T. J. Domin, Protective Relaying: Principles and Applications, 4th ed., CRC Press, 2014
    (phase overcurrent settings of distribution feeders: pickup above maximum load, below minimum fault).
    """
    head, laterals = find_lateral_heads(feeder)
    labels = feeder.bus_labels
    out = []
    for b in (head, *laterals.tolist()):
        pickup = math.ceil(pickup_margin * max(float(i_load_max_a[b]), 1.0))
        name = f"R{labels[b]}" if b != head else f"R{labels[b]} (head)"
        out.append(Device(label=name, branch=int(b), curve=curve, pickup_a=float(pickup), tds=tds))
    return out
