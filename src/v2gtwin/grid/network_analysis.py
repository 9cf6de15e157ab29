"""What the study finds on the network of feeders: per feeder, the day's exact power flows with the base load
alone and with the fleet's uncontrolled charging, and the dynamic operating envelopes of its buses.

:func:`run_network_analysis` is the study's ``network`` step; :class:`NetworkSection` its result (the
``network`` section of results.json).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from v2gtwin.errors import ConvergenceError
from v2gtwin.fleet import Fleet, calc_bus_power_kw
from v2gtwin.grid.envelopes import OperatingEnvelope, calc_operating_envelope
from v2gtwin.grid.feeder import run_powerflow
from v2gtwin.grid.network import Network
from v2gtwin.scenario import NetworkSpec, TimeGrid

__all__ = [
    "NetworkFeederFlow",
    "NetworkSection",
    "calc_bus_weights",
    "run_network_analysis",
    "run_network_envelopes",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class NetworkFeederFlow:
    """The day on one feeder of the network, exact AC power flow.

    Attributes
    ----------
    p_base_total_kw : base load of the feeder per step [kW].
    p_ev_total_kw : uncontrolled charging of the feeder's EVs per step [kW].
    v_min_base_pu : lowest bus voltage per step, base load alone [pu].
    v_min_uncontrolled_pu : lowest bus voltage per step with the EVs' uncontrolled charging; NaN (null in JSON)
        at a step where the power flow has no solution (voltage collapse), counted in ``n_steps_collapsed`` [pu].
    v_min_uncontrolled_step, v_min_uncontrolled_bus : step and bus label of the lowest voltage with the EVs.
    n_steps_collapsed : steps without a power-flow solution with the EVs [-].
    branch_loading_max_pu : highest branch current over rating with the EVs (None without ratings) [pu].
    """

    p_base_total_kw: FloatArray
    p_ev_total_kw: FloatArray
    v_min_base_pu: FloatArray
    v_min_uncontrolled_pu: FloatArray
    v_min_uncontrolled_step: int
    v_min_uncontrolled_bus: str
    n_steps_collapsed: int
    branch_loading_max_pu: float | None


def calc_bus_weights(network: Network, fleet: Fleet, k: int, rule: str) -> FloatArray:
    """Weight of each bus of feeder ``k`` in the sharing of its operating envelope: the number of EVs at the
    bus (rules 'equal_per_ev' and 'per_bus_max') or their summed charger rating [kW] ('proportional_to_rating')."""
    n_bus = network.feeders[k].n_bus
    on = network.ev_feeder == k
    if rule == "proportional_to_rating":
        return np.bincount(network.ev_bus[on], weights=fleet.p_charge_max_kw[on], minlength=n_bus).astype(float)
    return np.bincount(network.ev_bus[on], minlength=n_bus).astype(float)


def _flow(network: Network, k: int, p_ev_bus_kw: FloatArray) -> NetworkFeederFlow:
    feeder, p, q = network.feeders[k], network.p_base_kw[k], network.q_base_kvar[k]
    try:
        base = run_powerflow(feeder, p, q)
    except ConvergenceError as exc:
        raise ConvergenceError(
            f"feeder {feeder.name}: its base load alone has no power-flow solution ({exc})"
        ) from None
    with_ev = run_powerflow(feeder, p + p_ev_bus_kw, q, on_nonconvergence="nan")
    v_min = with_ev.v_pu.min(axis=1)
    collapsed = ~np.isfinite(v_min)
    v_fill = np.where(np.isfinite(with_ev.v_pu), with_ev.v_pu, np.inf)
    t, b = divmod(int(np.argmin(v_fill)), feeder.n_bus)
    loading = with_ev.i_branch_a[~collapsed] / feeder.ampacity_a
    rated = bool(np.isfinite(feeder.ampacity_a[1:]).any()) and loading.size > 0
    return NetworkFeederFlow(
        p_base_total_kw=p.sum(axis=1),
        p_ev_total_kw=p_ev_bus_kw.sum(axis=1),
        v_min_base_pu=base.v_pu.min(axis=1),
        v_min_uncontrolled_pu=v_min,
        v_min_uncontrolled_step=t,
        v_min_uncontrolled_bus=str(feeder.bus_labels[b]),
        n_steps_collapsed=int(collapsed.sum()),
        branch_loading_max_pu=float(np.nanmax(loading)) if rated else None,
    )


def run_network_envelopes(
    network: Network, fleet: Fleet, rule: str, v_min_pu: float, v_max_pu: float
) -> tuple[OperatingEnvelope, ...]:
    """The operating envelope of every feeder of the network (``grid.envelopes.calc_operating_envelope``), the
    bus weights from the placed fleet (:func:`calc_bus_weights`)."""
    return tuple(
        calc_operating_envelope(
            feeder,
            network.p_base_kw[k],
            network.q_base_kvar[k],
            rule=rule,
            weight_bus=calc_bus_weights(network, fleet, k, rule),
            v_min_pu=v_min_pu,
            v_max_pu=v_max_pu,
        )
        for k, feeder in enumerate(network.feeders)
    )


@dataclass(frozen=True)
class NetworkSection:
    """The fleet on its network of feeders.

    Attributes
    ----------
    network : the feeders, their base loads and each EV's feeder and bus.
    spec : the scenario's ``[network]`` section (allocation rule, voltage limits, network_secure).
    flows : exact power flows of the day per feeder (base load alone and with uncontrolled charging).
    envelopes : the operating envelope of each feeder, with the scenario's rule and voltage limits.
    time : the study's time grid.
    detail_feeder : index of the feeder the single-feeder detail studies (feeder, hosting, losses) run on [-].
    """

    network: Network
    spec: NetworkSpec
    flows: tuple[NetworkFeederFlow, ...]
    envelopes: tuple[OperatingEnvelope, ...]
    time: TimeGrid
    detail_feeder: int = 0

    def to_frames(self) -> dict[str, Any]:
        """``network_feeders`` and ``network_steps`` (pandas DataFrames): :func:`v2gtwin.tables.grid.network_frames`."""
        from v2gtwin.tables.grid import network_frames

        return network_frames(self, self.time)

    def summary(self) -> dict[str, Any]:
        """Headline figures (JSON-ready): the network's totals and one dict per feeder."""
        rows = self.network.summary(self.time.dt_h)
        v_lim = self.spec.v_min_pu
        for k, (row, fl) in enumerate(zip(rows, self.flows, strict=True)):
            row |= {
                "v_min_base_pu": float(fl.v_min_base_pu.min()),
                "v_min_uncontrolled_pu": float(np.nanmin(fl.v_min_uncontrolled_pu))
                if fl.n_steps_collapsed < fl.v_min_uncontrolled_pu.size
                else float("nan"),
                "v_min_uncontrolled_step": fl.v_min_uncontrolled_step,
                "v_min_uncontrolled_bus": fl.v_min_uncontrolled_bus,
                "n_steps_below_v_min": int(np.sum(~(fl.v_min_uncontrolled_pu >= v_lim))),
                "n_steps_collapsed": fl.n_steps_collapsed,
                "p_ev_peak_kw": float(fl.p_ev_total_kw.max()),
                "branch_loading_max_pu": fl.branch_loading_max_pu,
            }
            env = self.envelopes[k]
            row |= {
                # Lowest over the day of the feeder's total envelope (None for per_bus_max: no feasible total).
                "p_import_max_total_lowest_kw": float(env.p_import_max_kw.sum(axis=1).min())
                if env.simultaneous
                else None,
                "p_export_max_total_lowest_kw": float(env.p_export_max_kw.sum(axis=1).min())
                if env.simultaneous
                else None,
                "ac_violations": int(env.ac_violations),
                "base_violation_steps": int(env.base_violation_steps),
            }
        p_ev = np.vstack([fl.p_ev_total_kw for fl in self.flows]).sum(axis=0)
        p_base = np.vstack([fl.p_base_total_kw for fl in self.flows]).sum(axis=0)
        totals: dict[str, Any] = {
            "n_feeders": self.network.n_feeders,
            "n_evs": int(self.network.ev_feeder.size),
            "n_feeders_below_v_min": int(sum(r["n_steps_below_v_min"] > 0 for r in rows)),
            "p_base_peak_kw": float(p_base.max()),
            "p_ev_peak_kw": float(np.max(p_ev)),
        }
        return {
            "allocation_rule": self.spec.allocation_rule,
            "network_secure": self.spec.secure,
            "v_min_pu": self.spec.v_min_pu,
            "v_max_pu": self.spec.v_max_pu,
            "detail_feeder": self.network.feeders[self.detail_feeder].name,
            "totals": totals,
            "feeders": rows,
        }

    def to_dict(self, *, series: bool = True) -> dict[str, Any]:
        """The ``network`` section of results.json: :meth:`summary`, and with ``series`` the per-step arrays
        per feeder and each feeder's envelope (``OperatingEnvelope.to_dict``: the keys of ``v2gtwin network
        envelope --json``)."""
        out: dict[str, Any] = {"summary": self.summary()}
        if series:
            per_feeder = []
            for k, fl in enumerate(self.flows):
                item: dict[str, Any] = {
                    "feeder": self.network.feeders[k].name,
                    "p_base_total_kw": fl.p_base_total_kw.tolist(),
                    "p_ev_total_kw": fl.p_ev_total_kw.tolist(),
                    "v_min_base_pu": fl.v_min_base_pu.tolist(),
                    "v_min_uncontrolled_pu": fl.v_min_uncontrolled_pu.tolist(),
                }
                item["envelope"] = self.envelopes[k].to_dict(self.time)
                per_feeder.append(item)
            out["series"] = per_feeder
        return out


def run_network_analysis(
    spec: NetworkSpec, network: Network, fleet: Fleet, p_ev_kw: npt.ArrayLike, time: TimeGrid
) -> NetworkSection:
    """The study's network step: per feeder, exact power flows of the day without and with the fleet's
    uncontrolled charging ``p_ev_kw`` (n_steps, n_evs) [kW], and the operating envelopes (rule and voltage
    limits of ``spec``; bus weights from :func:`calc_bus_weights`).

    ``fleet`` is the placed fleet (:meth:`Network.place`): each EV's ``bus`` is its bus within its feeder.
    """
    p_ev = np.asarray(p_ev_kw, dtype=float)
    flows = []
    for k, feeder in enumerate(network.feeders):
        idx = network.evs_of(k)
        p_bus = calc_bus_power_kw(fleet.subset(idx), p_ev[:, idx], feeder.n_bus)
        flows.append(_flow(network, k, p_bus))
    return NetworkSection(
        network=network,
        spec=spec,
        flows=tuple(flows),
        envelopes=run_network_envelopes(network, fleet, spec.allocation_rule, spec.v_min_pu, spec.v_max_pu),
        time=time,
    )
