"""The study's services on a network of feeders: the fleet placed on the scenario's network with the limits its
services are sold within, and the newsvendor bid within them (used by the study and the single-service
commands)."""

from __future__ import annotations

import dataclasses

from v2gtwin.fleet import Fleet
from v2gtwin.grid.network import build_network
from v2gtwin.grid.network_analysis import run_network_envelopes
from v2gtwin.grid.secure import SECURE_RULE, NetworkLimits, build_network_limits
from v2gtwin.markets.analysis import BidAnalysis, calc_regulation_headroom_secure_kw, run_bid_analysis
from v2gtwin.scenario import Scenario

__all__ = ["place_on_network", "run_bid_analysis_within"]


def place_on_network(scenario: Scenario, fleet: Fleet) -> tuple[Fleet, NetworkLimits | None]:
    """The fleet placed on the scenario's network of feeders and the limits its services are sold within (the
    feeders' operating envelopes, as the study's network step computes them); ``(fleet, None)`` without a
    ``[network]`` section or with ``network_secure = false``. For the commands that run one service."""
    spec = scenario.network
    if spec is None or not spec.secure:
        return fleet, None
    net = build_network(spec, fleet, scenario.time, scenario.seed)
    placed = net.place(fleet)
    envelopes = run_network_envelopes(net, placed, spec.allocation_rule, spec.v_min_pu, spec.v_max_pu)
    return placed, build_network_limits(envelopes, net.ev_feeder, net.ev_bus)


def run_bid_analysis_within(
    scenario: Scenario, limits: NetworkLimits | None, degradation_per_mwh: float | None = None
) -> BidAnalysis:
    """The newsvendor bid, and with ``limits`` its network-secure twin: each simulated day's EVs sit where the
    study fleet's EVs of the same index sit (said in ``secure_rule``; none when the sizes differ, said too).
    ``degradation_per_mwh``: the battery wear of regulating (None: none, as before the battery models)."""
    deg = 0.0 if degradation_per_mwh is None else float(degradation_per_mwh)
    if limits is None:
        return run_bid_analysis(scenario, degradation_per_mwh=deg)
    if limits.ev_node.size != scenario.fleet.n_evs:  # the bid's simulated days are synthetic fleets of n_evs
        return dataclasses.replace(
            run_bid_analysis(scenario, degradation_per_mwh=deg),
            secure_rule=f"no network-secure bid: the bid's simulated days have {scenario.fleet.n_evs} EVs, the "
            f"network places {limits.ev_node.size}",
        )
    return run_bid_analysis(
        scenario,
        secure_headroom=lambda f, step: calc_regulation_headroom_secure_kw(f, step, limits),
        secure_rule="the simulated days' EVs sit where the study fleet's EVs of the same index sit; " + SECURE_RULE,
        degradation_per_mwh=deg,
    )
