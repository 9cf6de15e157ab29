"""The network-secure virtual battery of a fleet on feeders: per feeder and summed, the outer battery, the inner
battery (each bus's EVs one generalized battery) and the inner battery within the feeders' operating envelopes.

The three are nested power and energy bands: outer (the sums of the EVs' own bounds, a superset of what they can
do), inner (homothets of a prototype per bus, every trajectory inside disaggregates to the EVs exactly) and
network-secure inner (the inner bus batteries' power clipped per step to each bus's operating envelope,
:func:`v2gtwin.optimize.virtual_battery.calc_network_secure_battery`: a subset of the inner one, so still exactly
disaggregable, and within what the network carries). Per feeder the bands are the sums over its buses; the fleet's
are the sums over feeders. A sum of per-bus bands is the set of aggregate trajectories that some split among the
buses realises; the network-secure one keeps each bus within its own envelope. The envelopes bound power: the
network-secure battery's energy band is the inner one's, and what the clip takes away shows in the power band and
in the energy the upper power bound can deliver over the day (``e_charge_max_kwh``).

References
----------
L. Zhao, W. Zhang, H. Hao and K. Kalsi, IEEE Trans. Power Systems 32(6), 2017 (inner approximation by homothets).
A. Petrou et al., "Ensuring distribution network integrity using dynamic operating limits for prosumers", IEEE
Trans. Smart Grid, 2021 (operating envelopes: import and export limits per connection point and interval).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from v2gtwin.fleet import Fleet
from v2gtwin.optimize.virtual_battery import VirtualBattery, calc_network_secure_battery, calc_virtual_battery

if TYPE_CHECKING:
    from v2gtwin.scenario import TimeGrid

__all__ = ["BATTERY_KINDS", "NetworkBattery", "calc_network_battery"]

FloatArray = npt.NDArray[np.float64]

#: The three batteries, widest first: name in the output -> what it is.
BATTERY_KINDS: dict[str, str] = {
    "outer": "sum of the EVs' own power and energy bounds (need not disaggregate)",
    "inner": "each bus's EVs as an inner (homothetic) battery, exactly disaggregable (Zhao et al. 2017)",
    "network_secure": "the inner bus batteries' power within each bus's operating envelope (still disaggregable)",
}


@dataclass(frozen=True)
class NetworkBattery:
    """The fleet's virtual batteries per feeder (EVs with reachable targets).

    Attributes
    ----------
    feeder_names : one per feeder [-].
    p_min_kw, p_max_kw, e_min_kwh, e_max_kwh : per kind of :data:`BATTERY_KINDS`, (n_steps, n_feeders) power
        band (+ charging, grid side) [kW] and band of the cumulative stored-energy change [kWh].
    n_evs : EVs in the batteries [-]. n_dropped : EVs left out (target out of reach at full power) [-].
    n_fixed_over_envelope : bus-steps where the inner battery's fixed EVs alone import more than the envelope
        allows (the bound stays at their reference; counted, not hidden) [-].
    dt_h : step [h].
    """

    feeder_names: tuple[str, ...]
    p_min_kw: dict[str, FloatArray]
    p_max_kw: dict[str, FloatArray]
    e_min_kwh: dict[str, FloatArray]
    e_max_kwh: dict[str, FloatArray]
    n_evs: int
    n_dropped: int
    n_fixed_over_envelope: int
    dt_h: float

    def fleet_band_kw(self, kind: str) -> tuple[FloatArray, FloatArray]:
        """The fleet's power band of ``kind`` (feeders summed): (p_min, p_max), (n_steps,) each [kW]."""
        return self.p_min_kw[kind].sum(axis=1), self.p_max_kw[kind].sum(axis=1)

    def summary(self) -> dict[str, Any]:
        """Per kind, the fleet's (feeders summed) and each feeder's headline figures: largest charging power
        ``p_max_peak_kw``, largest discharging power ``p_discharge_peak_kw`` (>= 0), power energy over the day
        ``e_charge_max_kwh`` (the band's upper power integrated), widest energy band ``energy_flexible_kwh``;
        and the gaps outer - inner (the price of disaggregation) and inner - network_secure (what the network
        cannot carry) of each (JSON-ready)."""

        def figures(kind: str, cols: slice | int) -> dict[str, float]:
            pmin = np.atleast_2d(self.p_min_kw[kind][:, cols].T).T.sum(axis=1)
            pmax = np.atleast_2d(self.p_max_kw[kind][:, cols].T).T.sum(axis=1)
            emin = np.atleast_2d(self.e_min_kwh[kind][:, cols].T).T.sum(axis=1)
            emax = np.atleast_2d(self.e_max_kwh[kind][:, cols].T).T.sum(axis=1)
            return {
                "p_max_peak_kw": float(pmax.max()),
                "p_discharge_peak_kw": float(max(-pmin.min(), 0.0)),
                "e_charge_max_kwh": float(pmax.clip(0.0).sum() * self.dt_h),
                "energy_flexible_kwh": float((emax - emin).max()),
            }

        def with_gaps(cols: slice | int) -> dict[str, Any]:
            f = {k: figures(k, cols) for k in BATTERY_KINDS}
            gaps = {
                f"{a}_minus_{b}": {n: f[a][n] - f[b][n] for n in f[a]}
                for a, b in (("outer", "inner"), ("inner", "network_secure"))
            }
            return f | {"gaps": gaps}

        return {
            "kinds": dict(BATTERY_KINDS),
            "n_evs": self.n_evs,
            "n_dropped": self.n_dropped,
            "n_fixed_over_envelope": self.n_fixed_over_envelope,
            "fleet": with_gaps(slice(None)),
            "feeders": {name: with_gaps(k) for k, name in enumerate(self.feeder_names)},
        }

    def to_frames(self, time: TimeGrid) -> dict[str, Any]:
        """``network_battery_steps`` as a pandas DataFrame: :func:`v2gtwin.tables.grid.network_battery_frames`."""
        from v2gtwin.tables.grid import network_battery_frames

        return network_battery_frames(self, time)

    def series(self) -> dict[str, Any]:
        """The fleet's power bands per kind over the day, (n_steps,) lists [kW] (JSON-ready)."""
        out: dict[str, Any] = {}
        for kind in BATTERY_KINDS:
            lo, hi = self.fleet_band_kw(kind)
            out[kind] = {"p_min_kw": lo.tolist(), "p_max_kw": hi.tolist()}
        return out


def _by_feeder(vb: VirtualBattery, name: str, node_feeder: npt.NDArray[np.int64], n_feeders: int) -> FloatArray:
    a = vb.as_2d(name)
    out = np.zeros((a.shape[0], n_feeders))
    np.add.at(out.T, node_feeder, a.T)
    return out


def calc_network_battery(
    fleet: Fleet,
    ev_node: npt.ArrayLike,
    node_feeder: npt.ArrayLike,
    feeder_names: tuple[str, ...],
    p_import_max_kw: npt.ArrayLike,
    p_export_max_kw: npt.ArrayLike,
) -> NetworkBattery:
    """The outer, inner and network-secure inner batteries of ``fleet`` per feeder (module docstring).

    Parameters
    ----------
    fleet : the EVs placed on the network (EVs whose target is out of reach at full power are left out).
    ev_node : (n_evs,) each EV's bus in the network's flattened bus axis [-].
    node_feeder : (n_node,) the feeder of each flattened bus [-].
    feeder_names : one per feeder.
    p_import_max_kw, p_export_max_kw : (n_steps, n_node) operating envelope of each bus, >= 0 [kW]
        (:class:`v2gtwin.grid.secure.NetworkLimits`).
    """
    from v2gtwin.markets.scheduling import calc_reachable

    nf = np.asarray(node_feeder, dtype=np.int64)
    node = np.asarray(ev_node, dtype=np.int64)
    n_node, n_f = nf.size, len(feeder_names)
    keep = calc_reachable(fleet)
    part = fleet.subset(keep)
    g = node[keep]
    outer = calc_virtual_battery(part, "outer", g, n_node)
    inner = calc_virtual_battery(part, "inner", g, n_node)
    secure, n_over = calc_network_secure_battery(inner, p_import_max_kw, p_export_max_kw)
    bats = {"outer": outer, "inner": inner, "network_secure": secure}
    return NetworkBattery(
        feeder_names=tuple(feeder_names),
        p_min_kw={k: _by_feeder(v, "p_min_kw", nf, n_f) for k, v in bats.items()},
        p_max_kw={k: _by_feeder(v, "p_max_kw", nf, n_f) for k, v in bats.items()},
        e_min_kwh={k: _by_feeder(v, "e_min_kwh", nf, n_f) for k, v in bats.items()},
        e_max_kwh={k: _by_feeder(v, "e_max_kwh", nf, n_f) for k, v in bats.items()},
        n_evs=part.n,
        n_dropped=fleet.n - part.n,
        n_fixed_over_envelope=n_over,
        dt_h=fleet.dt_h,
    )
