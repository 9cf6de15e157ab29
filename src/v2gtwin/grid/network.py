"""The fleet on a network of feeders: building the scenario's N feeders (IEEE 33-bus, seeded synthetic feeders,
users' MATPOWER / OpenDSS files), each feeder's base load from its own daily profile, and the placement of the
EVs on feeders and buses by load share.

Placement rule (:func:`calc_load_share_counts`, :func:`place_evs`): a feeder's number of EVs is its share of
the network's base-load energy over the horizon, and within a feeder a bus's number of EVs is its share of the
feeder's nominal load; counts are apportioned by largest remainders (Hamilton's method), so every count is
within one EV of its exact share, and which EV goes where is a seeded random permutation. A bus without load
(the source bus, a junction) gets no EV.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from v2gtwin.errors import DataError
from v2gtwin.fleet import Fleet
from v2gtwin.grid._feeder_files import (
    DEFAULT_AMPACITY_A,
    DEFAULT_AMPACITY_SOURCE,
    apply_default_rating,
    check_ratings,
)
from v2gtwin.grid.feeder import Feeder, ieee33, synthetic_feeder
from v2gtwin.grid.profiles import calc_daily_profile
from v2gtwin.scenario import SYNTHETIC_FEEDER_DEFAULTS, NetworkFeederSpec, NetworkSpec, TimeGrid

__all__ = [
    "FEEDER_SOURCES",
    "Network",
    "build_feeder_of_spec",
    "build_network",
    "build_network_feeder",
    "calc_load_share_counts",
    "place_evs",
    "rate_network_feeder",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def rate_network_feeder(feeder: Feeder, ampacity_a: float | None, require_ratings: bool = False) -> Feeder:
    """A network feeder with a rating on every branch: the data's; where it has none, ``ampacity_a`` (the
    scenario's ``[[network.feeders]] ampacity_a``) or else :data:`DEFAULT_AMPACITY_A` (OpenDSS's default Line
    NormAmps, 400 A), named in the feeder's notes. With ``require_ratings`` (and no ``ampacity_a``) a branch
    without a rating in the data is a one-line DataError naming the feeder (its file) and the branch.

    The built-in feeders have no ratings in their data (Baran & Wu publish none; synthetic feeders are drawn
    without conductors), so they get the default too.
    """
    if ampacity_a is not None:
        return apply_default_rating(feeder, float(ampacity_a), "the scenario's ampacity_a")
    if require_ratings:
        check_ratings(
            feeder, hint="set [[network.feeders]] ampacity_a, or leave require_ratings (--require-ratings) off"
        )
        return feeder
    return apply_default_rating(feeder, DEFAULT_AMPACITY_A, DEFAULT_AMPACITY_SOURCE)


def _feeder_ieee33(spec: NetworkFeederSpec, rng: np.random.Generator) -> Feeder:
    return ieee33()


def _feeder_synthetic(spec: NetworkFeederSpec, rng: np.random.Generator) -> Feeder:
    d = SYNTHETIC_FEEDER_DEFAULTS
    feeder = synthetic_feeder(
        int(spec.n_bus or d["n_bus"]),
        rng,
        total_load_kw=spec.total_load_kw or d["total_load_kw"],
        v_min_target_pu=spec.v_min_base_pu or d["v_min_base_pu"],
    )
    return feeder


def _feeder_file(spec: NetworkFeederSpec, rng: np.random.Generator) -> Feeder:
    # Imported here: the MATPOWER / OpenDSS readers load only for file feeders.
    from v2gtwin.grid.network_io import read_feeder_file

    return read_feeder_file(Path(str(spec.path)))  # unrated branches: rate_network_feeder, one note for all


#: Feeder builders by ``source`` of a ``[[network.feeders]]`` entry.
FEEDER_SOURCES: dict[str, Callable[[NetworkFeederSpec, np.random.Generator], Feeder]] = {
    "ieee33": _feeder_ieee33,
    "synthetic": _feeder_synthetic,
    "file": _feeder_file,
}


def build_feeder_of_spec(spec: NetworkFeederSpec, rng: np.random.Generator) -> Feeder:
    """One feeder of a ``[[network.feeders]]`` entry (synthetic feeders drawn from ``rng``)."""
    return FEEDER_SOURCES[spec.source](spec, rng)


def build_network_feeder(
    spec: NetworkFeederSpec, seed: int, k: int, *, require_ratings: bool = False
) -> tuple[Feeder, float, float]:
    """Feeder ``k`` of the network, built from its ``[[network.feeders]]`` entry ``spec``, with its seeded
    variation: (feeder, peak scale [-], shift of the daily shape [h]). All drawn from ``default_rng([seed, 47,
    k])``: the synthetic topology first, then the peak scale ``peak_load_scale * U[1 - spread, 1 + spread]``,
    then the shift ``U[-shift_max_h, +shift_max_h]``. Ratings by :func:`rate_network_feeder`."""
    rng = np.random.default_rng([seed, 47, k])
    feeder = rate_network_feeder(build_feeder_of_spec(spec, rng), spec.ampacity_a, require_ratings)
    scale = spec.peak_load_scale * float(rng.uniform(1.0 - spec.peak_scale_spread, 1.0 + spec.peak_scale_spread))
    shift = float(rng.uniform(-spec.shift_max_h, spec.shift_max_h))
    return feeder, scale, shift


def calc_load_share_counts(n: int, load: npt.ArrayLike) -> IntArray:
    """Split ``n`` items in proportion to ``load`` (>= 0) by largest remainders (Hamilton's method).

    Each count is ``floor(n * share)`` or one more; the ones that get one more are those with the largest
    remainders ``n * share - floor(n * share)`` (ties: the lower index first). The counts sum to ``n``.

    Raises
    ------
    DataError
        A negative or non-finite load, or all loads zero while ``n > 0``.
    """
    w = np.asarray(load, dtype=float)
    if w.ndim != 1 or not np.isfinite(w).all() or (w < 0).any():
        raise DataError(f"load: expected finite values >= 0 in one dimension, got {w!r}")
    total = w.sum()
    if n == 0:
        return np.zeros(w.shape, dtype=np.int64)
    if total <= 0:
        raise DataError(f"load: all zero, cannot place {n} EVs by load share")
    quota = n * w / total
    base = np.floor(quota).astype(np.int64)
    left = n - int(base.sum())
    order = np.argsort(-(quota - base), kind="stable")
    base[order[:left]] += 1
    return base


def place_evs(
    n_evs: int, feeder_load: npt.ArrayLike, bus_loads: list[FloatArray], rng: np.random.Generator
) -> tuple[IntArray, IntArray]:
    """Place ``n_evs`` EVs on feeders and buses by load share.

    Parameters
    ----------
    n_evs : number of EVs [-].
    feeder_load : load of each feeder (the base-load energy over the horizon) [kWh].
    bus_loads : for each feeder, the load of each of its buses (nominal kW) [kW].
    rng : generator of the random permutation (which EV goes where).

    Returns
    -------
    ev_feeder, ev_bus : each EV's feeder (index into the network) and bus (index within its feeder) [-].
    """
    per_feeder = calc_load_share_counts(n_evs, feeder_load)
    slots_feeder = np.repeat(np.arange(per_feeder.size), per_feeder)
    slots_bus = np.concatenate(
        [
            np.repeat(np.arange(b.size), calc_load_share_counts(int(k), b))
            for k, b in zip(per_feeder, bus_loads, strict=True)
        ]
        or [np.zeros(0, dtype=np.int64)]
    )
    perm = rng.permutation(n_evs)
    return slots_feeder[perm].astype(np.int64), slots_bus[perm].astype(np.int64)


@dataclass(frozen=True, eq=False)
class Network:
    """The fleet's network: N radial feeders, their base loads and where each EV charges.

    Attributes
    ----------
    feeders : the feeders (each with its own bus labels and notes).
    p_base_kw, q_base_kvar : base load of each feeder, (n_steps, n_bus of that feeder) each [kW], [kvar].
    ev_feeder : feeder of each EV of the fleet (index into ``feeders``) [-].
    ev_bus : bus of each EV within its feeder (the fleet's ``bus``) [-].
    source : the ``[[network.feeders]]`` source of each feeder ('ieee33', 'synthetic', 'file').
    profile : daily base-load shape of each feeder (a key of ``grid.profiles.DAILY_SHAPES_PCT``).
    peak_scale : each feeder's base-load peak as a multiple of its nominal loads, seeded variation included [-].
    shift_h : each feeder's seeded shift of its daily shape (+ later) [h].
    """

    feeders: tuple[Feeder, ...]
    p_base_kw: tuple[FloatArray, ...]
    q_base_kvar: tuple[FloatArray, ...]
    ev_feeder: IntArray
    ev_bus: IntArray
    source: tuple[str, ...]
    profile: tuple[str, ...]
    peak_scale: tuple[float, ...]
    shift_h: tuple[float, ...]

    def __post_init__(self) -> None:
        n = len(self.feeders)
        for name in ("p_base_kw", "q_base_kvar", "source", "profile", "peak_scale", "shift_h"):
            if len(getattr(self, name)) != n:
                raise DataError(
                    f"network.{name}: expected {n} entries (one per feeder), got {len(getattr(self, name))}"
                )
        if self.ev_feeder.shape != self.ev_bus.shape:
            raise DataError("network.ev_feeder and ev_bus: lengths differ")
        n_bus = np.array([f.n_bus for f in self.feeders])
        if self.ev_feeder.size and (
            self.ev_feeder.min() < 0 or self.ev_feeder.max() >= n or (self.ev_bus >= n_bus[self.ev_feeder]).any()
        ):
            raise DataError("network.ev_feeder / ev_bus: an EV sits on a feeder or bus that does not exist")

    @property
    def n_feeders(self) -> int:
        """Number of feeders [-]."""
        return len(self.feeders)

    def n_evs_per_feeder(self) -> IntArray:
        """EVs on each feeder [-]."""
        return np.bincount(self.ev_feeder, minlength=self.n_feeders).astype(np.int64)

    def evs_of(self, k: int) -> IntArray:
        """Indices (into the fleet) of the EVs on feeder ``k``, in fleet order."""
        return np.flatnonzero(self.ev_feeder == k).astype(np.int64)

    def n_evs_per_bus(self, k: int) -> IntArray:
        """EVs at each bus of feeder ``k`` [-]."""
        return np.bincount(self.ev_bus[self.ev_feeder == k], minlength=self.feeders[k].n_bus).astype(np.int64)

    def linear_models(self) -> list[Any]:
        """Each feeder linearised around the exact solution of its base load (``grid.linear.LinearFeederModel``),
        in feeder order: the input of the network-constrained schedule."""
        from v2gtwin.grid.linear import calc_linear_model

        return [
            calc_linear_model(f, p, q) for f, p, q in zip(self.feeders, self.p_base_kw, self.q_base_kvar, strict=True)
        ]

    def place(self, fleet: Fleet) -> Fleet:
        """The fleet with each EV's ``bus`` the bus within its feeder (``ev_bus``)."""
        if fleet.n != self.ev_bus.size:
            raise DataError(f"fleet has {fleet.n} EVs, the network placed {self.ev_bus.size}")
        return fleet.replace(bus=self.ev_bus)

    def summary(self, dt_h: float) -> list[dict[str, Any]]:
        """One JSON-ready dict per feeder: name, source, buses, EVs, base-load peak and energy, profile, ratings
        and the feeder's notes."""
        counts = self.n_evs_per_feeder()
        out = []
        for k, f in enumerate(self.feeders):
            p = self.p_base_kw[k].sum(axis=1)
            rated = int(np.isfinite(f.ampacity_a[1:]).sum())
            out.append(
                {
                    "feeder": f.name,
                    "source": self.source[k],
                    "n_bus": f.n_bus,
                    "n_evs": int(counts[k]),
                    "p_base_peak_kw": float(p.max()),
                    "e_base_kwh": float(p.sum() * dt_h),
                    "profile": self.profile[k],
                    "peak_scale": self.peak_scale[k],
                    "shift_h": self.shift_h[k],
                    "n_branch_rated": rated,
                    "notes": list(f.notes),
                }
            )
        return out

    def to_frame(self, dt_h: float) -> pd.DataFrame:
        """:meth:`summary` as a DataFrame, one row per feeder (notes joined by '; ')."""
        df = pd.DataFrame(self.summary(dt_h))
        df["notes"] = ["; ".join(n) for n in df["notes"]]
        return df


def _unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    for n in names:
        seen[n] = seen.get(n, 0) + 1
    out, used = [], dict.fromkeys(seen, 0)
    for n in names:
        if seen[n] == 1:
            out.append(n)
        else:
            used[n] += 1
            out.append(f"{n}-{used[n]}")
    return out


def build_network(spec: NetworkSpec, fleet: Fleet, time: TimeGrid, seed: int) -> Network:
    """Build the scenario's network and place the fleet's EVs on it (:meth:`Network.place` then gives the
    fleet with each EV's ``bus`` the bus within its feeder).

    Parameters
    ----------
    spec : the scenario's ``[network]`` section.
    fleet : the fleet (only its size is used: placement does not depend on the EVs' sessions).
    time : the study's time grid (step 0 at ``time.start_hour`` local time).
    seed : the scenario's seed; feeder ``k`` of the network draws its synthetic topology and its variation from
        ``default_rng([seed, 47, k])``, the placement from ``default_rng([seed, 48])``.

    Returns
    -------
    Network

    Notes
    -----
    Base load of feeder k: ``p_base[t, b] = peak_scale_k * shape(clock_t - shift_k) * p_load_kw[b]`` (likewise
    q), with ``peak_scale_k = peak_load_scale * u_k``, ``u_k ~ U[1 - peak_scale_spread, 1 + peak_scale_spread]``,
    ``shift_k ~ U[-shift_max_h, +shift_max_h]`` and ``shape`` the entry's daily profile (grid/profiles.py).
    """
    n_evs = fleet.n
    feeders: list[Feeder] = []
    p_base: list[FloatArray] = []
    q_base: list[FloatArray] = []
    source: list[str] = []
    profile: list[str] = []
    scales: list[float] = []
    shifts: list[float] = []
    k = 0
    for entry in spec.feeders:
        for j in range(entry.count):
            feeder, scale, shift = build_network_feeder(entry, seed, k, require_ratings=spec.require_ratings)
            name = entry.name or feeder.name
            if entry.count > 1:
                name = f"{name}-{j + 1}"
            feeders.append(Feeder(**{**feeder.__dict__, "name": name}))
            shape = calc_daily_profile(time.n_steps, time.dt_s, time.start_hour, entry.profile, shift) * scale
            p_base.append(shape[:, None] * feeder.p_load_kw[None, :])
            q_base.append(shape[:, None] * feeder.q_load_kvar[None, :])
            source.append(entry.source)
            profile.append(entry.profile)
            scales.append(scale)
            shifts.append(shift)
            k += 1
    names = _unique_names([f.name for f in feeders])
    feeders = [Feeder(**{**f.__dict__, "name": n}) for f, n in zip(feeders, names, strict=True)]
    bus_loads = []
    for f in feeders:
        w = np.clip(f.p_load_kw, 0.0, None).copy()
        w[0] = 0.0  # no EV at the source bus
        bus_loads.append(w)
    energy = np.array([p.sum() * time.dt_h for p in p_base])
    if n_evs and (energy <= 0).all():
        raise DataError("network: no feeder has any base load: the EVs cannot be placed by load share")
    for kk, (f, w) in enumerate(zip(feeders, bus_loads, strict=True)):
        if energy[kk] > 0 and w.sum() <= 0:
            raise DataError(f"network: feeder {f.name} has base load only at its source bus: no bus for its EVs")
    ev_feeder, ev_bus = place_evs(n_evs, energy, bus_loads, np.random.default_rng([seed, 48]))
    return Network(
        feeders=tuple(feeders),
        p_base_kw=tuple(p_base),
        q_base_kvar=tuple(q_base),
        ev_feeder=ev_feeder,
        ev_bus=ev_bus,
        source=tuple(source),
        profile=tuple(profile),
        peak_scale=tuple(scales),
        shift_h=tuple(shifts),
    )
