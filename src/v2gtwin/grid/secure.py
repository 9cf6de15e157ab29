"""Grid services sold within what the network can carry: the network-secure part of a change of EV power.

A service (reserve, regulation, demand response, a V2G offer) asks each EV for a change of power from its
baseline. The network's dynamic operating envelopes bound the EV power at every bus and step to
``[-p_export_max_kw, p_import_max_kw]`` (:mod:`v2gtwin.grid.envelopes`). This module clips the service, bus by
bus, to what keeps each bus inside its envelope, and shares the clipped change among the EVs at the bus pro rata.
Pure functions on arrays; the envelopes come in as arrays (or objects that carry them).

The rule (:data:`SECURE_RULE`), for bus ``b`` with baseline EV power ``P0_b`` (sum over its EVs), requested
change ``dP_b`` (sum of the EVs' changes) and envelope ``[-E_b, I_b]``::

    room_b = max(I_b - P0_b, 0)   if dP_b > 0   (more charging / less export)
             max(P0_b + E_b, 0)   if dP_b < 0   (less charging / more export)
    s_b    = min(1, room_b / |dP_b|)            (s_b = 1 when dP_b = 0)
    dp_i'  = s_b dp_i                           for every EV i at bus b

A change that moves a bus toward its envelope is never cut (a bus whose baseline already exceeds its import
limit may still reduce its charging), a change that moves it away is cut at the envelope's edge (to zero when
the baseline is already outside on that side). When every EV at a bus asks for a change of the same sign,
``s_b dP_b`` is the largest change of that bus that any split among its EVs (each giving between nothing and its
own request) can deliver within the envelope.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from v2gtwin.errors import DataError

__all__ = [
    "SECURE_RULE",
    "NetworkLimits",
    "SecureChange",
    "build_network_limits",
    "calc_secure_band",
    "calc_secure_change",
    "summarize_gap",
    "tabulate_secure_figures",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: The rule a network-secure figure follows, stated in every output that carries one.
SECURE_RULE = (
    "per-bus clip of the aggregate change to the bus's operating envelope (a change toward the envelope is never "
    "cut; a change away from it stops at its edge), shared pro rata among the EVs at the bus"
)


class EnvelopeLike(Protocol):
    """What this module reads from an operating envelope (:class:`v2gtwin.grid.envelopes.OperatingEnvelope`)."""

    @property
    def feeder_name(self) -> str: ...

    @property
    def rule(self) -> str: ...

    @property
    def p_import_max_kw(self) -> Any: ...  # (n_steps, n_bus) [kW]

    @property
    def p_export_max_kw(self) -> Any: ...  # (n_steps, n_bus) [kW]


@dataclass(frozen=True)
class NetworkLimits:
    """The network's operating envelopes and where each EV sits, flattened over feeders.

    Attributes
    ----------
    feeder_names : name of each feeder [-].
    envelope_rule : allocation rule of the envelopes (how a feeder's capacity was shared among its buses) [-].
    bus_offset : (n_feeders + 1,) index of each feeder's first bus in the flattened bus axis [-].
    node_feeder : (n_node,) feeder of each flattened bus [-].
    ev_node : (n_evs,) flattened bus of each EV (``bus_offset[ev_feeder] + ev_bus``) [-].
    p_import_max_kw, p_export_max_kw : (n_steps, n_node) largest EV import (charging) and export (V2G) at each
        bus and step, both >= 0 [kW].
    """

    feeder_names: tuple[str, ...]
    envelope_rule: str
    bus_offset: IntArray
    node_feeder: IntArray
    ev_node: IntArray
    p_import_max_kw: FloatArray
    p_export_max_kw: FloatArray

    @property
    def n_steps(self) -> int:
        """Steps of the envelopes [-]."""
        return int(self.p_import_max_kw.shape[0])

    @property
    def n_feeders(self) -> int:
        """Feeders [-]."""
        return len(self.feeder_names)


def build_network_limits(
    envelopes: Sequence[EnvelopeLike], ev_feeder: npt.ArrayLike, ev_bus: npt.ArrayLike
) -> NetworkLimits:
    """Flatten the feeders' operating envelopes and the EVs' places into :class:`NetworkLimits`.

    Parameters
    ----------
    envelopes : one operating envelope per feeder, in the network's feeder order.
    ev_feeder, ev_bus : (n_evs,) feeder index of each EV and its bus index within that feeder [-].

    Raises
    ------
    DataError
        An envelope that is not finite and >= 0, envelopes of different step counts or rules, or an EV placed on
        a feeder or bus that does not exist.
    """
    if len(envelopes) == 0:
        raise DataError("network envelopes: need at least one feeder's operating envelope")
    imp, exp, names, rules = [], [], [], set()
    for env in envelopes:
        pi = np.asarray(env.p_import_max_kw, dtype=float)
        pe = np.asarray(env.p_export_max_kw, dtype=float)
        for what, arr in (("p_import_max_kw", pi), ("p_export_max_kw", pe)):
            if arr.ndim != 2 or arr.shape != pi.shape:
                raise DataError(f"feeder {env.feeder_name}: {what} must be (n_steps, n_bus); got {arr.shape}")
            if not (np.isfinite(arr).all() and (arr >= 0).all()):
                raise DataError(f"feeder {env.feeder_name}: {what} must be finite and >= 0 kW")
        imp.append(pi)
        exp.append(pe)
        names.append(str(env.feeder_name))
        rules.add(str(env.rule))
    if len({a.shape[0] for a in imp}) != 1:
        raise DataError(f"network envelopes: feeders have different step counts {[a.shape[0] for a in imp]}")
    n_bus = np.array([a.shape[1] for a in imp], dtype=np.int64)
    offset = np.concatenate([[0], np.cumsum(n_bus)]).astype(np.int64)
    ev_f = np.asarray(ev_feeder, dtype=np.int64)
    ev_b = np.asarray(ev_bus, dtype=np.int64)
    if ev_f.shape != ev_b.shape or ev_f.ndim != 1:
        raise DataError(f"ev_feeder and ev_bus must be (n_evs,) alike; got {ev_f.shape} and {ev_b.shape}")
    if ev_f.size and (ev_f.min() < 0 or ev_f.max() >= len(imp)):
        raise DataError(f"ev_feeder: allowed range 0..{len(imp) - 1}; got {ev_f.min()}..{ev_f.max()}")
    if ev_f.size and ((ev_b < 0).any() or (ev_b >= n_bus[ev_f]).any()):
        bad = int(np.flatnonzero((ev_b < 0) | (ev_b >= n_bus[ev_f]))[0])
        raise DataError(
            f"ev_bus of EV {bad} = {ev_b[bad]}: allowed range 0..{n_bus[ev_f[bad]] - 1} on feeder {names[ev_f[bad]]}"
        )
    return NetworkLimits(
        feeder_names=tuple(names),
        envelope_rule=" / ".join(sorted(rules)),
        bus_offset=offset,
        node_feeder=np.repeat(np.arange(len(imp), dtype=np.int64), n_bus),
        ev_node=offset[ev_f] + ev_b,
        p_import_max_kw=np.concatenate(imp, axis=1),
        p_export_max_kw=np.concatenate(exp, axis=1),
    )


@dataclass(frozen=True)
class SecureChange:
    """A service's change of EV power, requested and network-secure (rule :data:`SECURE_RULE`).

    Attributes
    ----------
    dp_ev_kw : (n_evs,) network-secure change of each EV's power, + more charging [kW].
    dp_bus_kw, dp_bus_secure_kw : (n_node,) requested and secure change per flattened bus [kW].
    scale_bus : (n_node,) share of the requested change each bus lets through, in [0, 1] [-].
    dp_feeder_kw, dp_feeder_secure_kw : (n_feeders,) requested and secure change per feeder [kW].
    total_kw, total_secure_kw : requested and secure change of the whole fleet [kW].
    n_bus_binding : buses whose envelope cuts the change (``scale_bus < 1``) [-].
    """

    dp_ev_kw: FloatArray
    dp_bus_kw: FloatArray
    dp_bus_secure_kw: FloatArray
    scale_bus: FloatArray
    dp_feeder_kw: FloatArray
    dp_feeder_secure_kw: FloatArray
    total_kw: float
    total_secure_kw: float
    n_bus_binding: int


def _sum_by(index: IntArray, weights: FloatArray, n: int) -> FloatArray:
    return np.bincount(index, weights=weights, minlength=n).astype(np.float64)


def _envelope_at(limits: NetworkLimits, steps: int | Sequence[int] | npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    idx = np.atleast_1d(np.asarray(steps, dtype=np.int64))
    if idx.size == 0 or idx.min() < 0 or idx.max() >= limits.n_steps:
        raise DataError(f"envelope steps {idx.tolist()}: allowed range 0..{limits.n_steps - 1}, at least one")
    # Over several steps (a service held through a window) the tightest envelope of the window applies.
    return limits.p_import_max_kw[idx].min(axis=0), limits.p_export_max_kw[idx].min(axis=0)


def calc_secure_change(
    limits: NetworkLimits,
    steps: int | Sequence[int] | npt.ArrayLike,
    p0_ev_kw: npt.ArrayLike,
    dp_ev_kw: npt.ArrayLike,
) -> SecureChange:
    """The network-secure part of a change ``dp_ev_kw`` [kW] of every EV's power from ``p0_ev_kw`` [kW].

    Parameters
    ----------
    limits : the network's envelopes and the EVs' places.
    steps : the step, or the steps of a window the change is held through (the smallest envelope of each bus
        over them applies) [-].
    p0_ev_kw : (n_evs,) baseline power of every EV of the fleet at the step, + charging [kW]; EVs not taking
        part in the service still count in their bus's baseline.
    dp_ev_kw : (n_evs,) requested change of every EV's power, + more charging (0 for EVs not taking part) [kW].

    Returns
    -------
    SecureChange

    Notes
    -----
    Per bus ``b``: ``room_b = max(I_b - P0_b, 0)`` if ``dP_b > 0`` else ``max(P0_b + E_b, 0)``,
    ``s_b = min(1, room_b / |dP_b|)``, and each EV at the bus gives ``s_b dp_i`` (module docstring).
    """
    p0 = np.asarray(p0_ev_kw, dtype=float)
    dp = np.asarray(dp_ev_kw, dtype=float)
    n_ev = limits.ev_node.size
    if p0.shape != (n_ev,) or dp.shape != (n_ev,):
        raise DataError(f"p0_ev_kw and dp_ev_kw must be ({n_ev},), one per EV; got {p0.shape} and {dp.shape}")
    if not (np.isfinite(p0).all() and np.isfinite(dp).all()):
        raise DataError("p0_ev_kw and dp_ev_kw must be finite")
    imp, exp = _envelope_at(limits, steps)
    n_node = imp.size
    p0_bus = _sum_by(limits.ev_node, p0, n_node)
    dp_bus = _sum_by(limits.ev_node, dp, n_node)
    room = np.where(dp_bus > 0, np.maximum(imp - p0_bus, 0.0), np.maximum(p0_bus + exp, 0.0))
    mag = np.abs(dp_bus)
    scale = np.ones(n_node)
    cut = mag > room
    scale[cut] = room[cut] / mag[cut]
    dp_secure = dp * scale[limits.ev_node]
    dp_bus_secure = dp_bus * scale
    n_f = limits.n_feeders
    return SecureChange(
        dp_ev_kw=dp_secure,
        dp_bus_kw=dp_bus,
        dp_bus_secure_kw=dp_bus_secure,
        scale_bus=scale,
        dp_feeder_kw=_sum_by(limits.node_feeder, dp_bus, n_f),
        dp_feeder_secure_kw=_sum_by(limits.node_feeder, dp_bus_secure, n_f),
        total_kw=float(dp.sum()),
        total_secure_kw=float(dp_secure.sum()),
        n_bus_binding=int(cut.sum()),
    )


def calc_secure_band(
    limits: NetworkLimits,
    steps: int | Sequence[int] | npt.ArrayLike,
    p0_ev_kw: npt.ArrayLike,
    band_ev_kw: npt.ArrayLike,
) -> tuple[FloatArray, int]:
    """The network-secure part of a symmetric band (regulation: ``band_ev_kw`` [kW] up and down around
    ``p0_ev_kw`` [kW]).

    The band must be deliverable both ways: the change ``+band`` and the change ``-band`` are each clipped by
    :func:`calc_secure_change`, and each EV keeps the smaller of its two secure magnitudes.

    Returns
    -------
    band_secure_ev_kw : (n_evs,) secure symmetric band of each EV [kW].
    n_bus_binding : buses whose envelope cuts the band up or down [-].
    """
    band = np.asarray(band_ev_kw, dtype=float)
    if (band < 0).any():
        raise DataError("band_ev_kw must be >= 0 kW")
    up = calc_secure_change(limits, steps, p0_ev_kw, band)
    down = calc_secure_change(limits, steps, p0_ev_kw, -band)
    secure = np.minimum(up.dp_ev_kw, -down.dp_ev_kw)
    binding = int(((up.scale_bus < 1.0) | (down.scale_bus < 1.0)).sum())
    return secure, binding


def summarize_gap(unconstrained: float, secure: float, name: str, unit: str = "kw") -> dict[str, float]:
    """``{name_unit: unconstrained, name_secure_unit: secure, name_network_gap_unit: difference}`` (one service
    figure unconstrained, network-secure and the difference, as every summary prints them)."""
    return {
        f"{name}_{unit}": float(unconstrained),
        f"{name}_secure_{unit}": float(secure),
        f"{name}_network_gap_{unit}": float(unconstrained) - float(secure),
    }


#: Every service figure sold within the network: (service, summary section, summary key, figure, unit).
#: ``section`` is "services" or "markets" (the study's summaries), ``key`` the service's dict in it.
SECURE_FIGURES: tuple[tuple[str, str, str, str, str], ...] = (
    ("contingency reserve, largest over the day", "services", "reserve", "max", "kw"),
    ("contingency reserve, mean over the day", "services", "reserve", "mean", "kw"),
    ("regulation range of the fleet (symmetric)", "services", "agc", "fleet_range", "kw"),
    ("regulation capacity offered", "services", "agc", "capacity", "kw"),
    ("demand response: mean reduction", "services", "dr", "reduction_mean", "kw"),
    ("demand response: peak reduction", "services", "dr", "peak_reduction", "kw"),
    ("demand response: rebound peak", "services", "dr", "rebound_peak", "kw"),
    ("V2G offer to the market", "markets", "market", "v2g_offer", "kw"),
    ("regulation availability, mean over the simulated days", "markets", "bid", "availability_mean", "kw"),
    ("regulation bid (newsvendor)", "markets", "bid", "bid", "kw"),
    ("expected profit of the bid", "markets", "bid", "expected_profit", "per_h"),
)

#: Figures whose summary names its two values otherwise (the network-constrained schedule's own summary):
#: (service, section, summary key, unconstrained key, secure key, unit, rule).
SECURE_FIGURES_NAMED: tuple[tuple[str, str, str, str, str, str, str], ...] = (
    (
        "day-ahead schedule on per-bus batteries, import cap split among feeders: cost over the horizon",
        "markets",
        "network_schedule",
        "cost_unconstrained_per_horizon",
        "cost_network_secure_per_horizon",
        "per_horizon",
        "the schedule solved with each feeder's linearised voltage and thermal limits as constraints",
    ),
    (
        "day-ahead schedule on per-bus batteries, import cap split among feeders: exact-AC violations "
        "(bus-steps and branch-steps)",
        "markets",
        "network_schedule",
        "ac_violations_unconstrained",
        "ac_violations",
        "count",
        "the schedule solved with each feeder's linearised voltage and thermal limits as constraints",
    ),
)


def tabulate_secure_figures(services: dict[str, Any], markets: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per service figure that has a network-secure value in the study's summaries
    (:data:`SECURE_FIGURES`, :data:`SECURE_FIGURES_NAMED`): ``service``, ``key`` (the summary's path), ``unit``,
    ``unconstrained``, ``secure``, ``network_gap`` (unconstrained minus secure) and the ``secure_rule`` it
    follows. Empty without network limits."""
    sections = {"services": services, "markets": markets}
    rows: list[dict[str, Any]] = []
    for label, section, key, name, unit in SECURE_FIGURES:
        d = sections[section].get(key) or {}
        if f"{name}_secure_{unit}" not in d:
            continue
        rows.append(
            {
                "service": label,
                "key": f"{section}.{key}.{name}_{unit}",
                "unit": unit,
                "unconstrained": d[f"{name}_{unit}"],
                "secure": d[f"{name}_secure_{unit}"],
                "network_gap": d[f"{name}_network_gap_{unit}"],
                "secure_rule": d.get("secure_rule", SECURE_RULE),
            }
        )
    for label, section, key, free, secure, unit, rule in SECURE_FIGURES_NAMED:
        d = sections[section].get(key) or {}
        if secure not in d:
            continue
        rows.append(
            {
                "service": label,
                "key": f"{section}.{key}.{free}",
                "unit": unit,
                "unconstrained": d[free],
                "secure": d[secure],
                "network_gap": d[free] - d[secure],
                "secure_rule": rule,
            }
        )
    return rows
