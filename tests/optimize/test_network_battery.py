"""The network-secure virtual battery per feeder: nested bands, closed-form outer band, and a schedule on the
network-secure battery that disaggregates to EVs meeting their targets within every bus's envelope."""

from __future__ import annotations

import numpy as np
import pytest

from tests.optimize.test_network_schedule import N_STEPS, night_fleet
from v2gtwin.fleet import calc_plugged, simulate_soc
from v2gtwin.optimize.network_battery import calc_network_battery
from v2gtwin.optimize.virtual_battery import (
    calc_network_secure_battery,
    calc_virtual_battery,
    disaggregate_battery,
    solve_battery_schedule,
)


def _case() -> tuple:
    # Two feeders of 3 buses each (flattened nodes 0-2 and 3-5); 40 EVs on nodes 1, 2, 4, 5.
    fleet = night_fleet(40, np.array([1, 2]), seed=3)
    node = np.where(np.arange(40) < 20, fleet.bus, fleet.bus + 3)
    node_feeder = np.array([0, 0, 0, 1, 1, 1])
    imp = np.full((N_STEPS, 6), 30.0)  # 30 kW per bus: below the ~10 EVs x 7.2 kW a bus could draw
    exp = np.full((N_STEPS, 6), 5.0)
    return fleet, node, node_feeder, imp, exp


def test_bands_nested_and_outer_in_closed_form() -> None:
    fleet, node, nf, imp, exp = _case()
    nb = calc_network_battery(fleet, node, nf, ("a", "b"), imp, exp)
    # Outer power band of feeder 0: the plugged EVs' charging powers summed (7.2 kW each), by hand from the fleet.
    plug = calc_plugged(fleet)
    on0 = np.arange(40) < 20
    np.testing.assert_allclose(nb.p_max_kw["outer"][:, 0], (plug[:, on0] * 7.2).sum(axis=1))
    # outer ⊇ inner ⊇ network-secure, per feeder and step; network-secure charging at most 30 kW per bus with
    # EVs (2 buses per feeder: 60 kW) unless the fixed EVs' reference alone is above it.
    for k in (0, 1):
        assert np.all(nb.p_max_kw["outer"][:, k] >= nb.p_max_kw["inner"][:, k] - 1e-9)
        assert np.all(nb.p_max_kw["inner"][:, k] >= nb.p_max_kw["network_secure"][:, k] - 1e-9)
        assert np.all(nb.p_min_kw["network_secure"][:, k] >= nb.p_min_kw["inner"][:, k] - 1e-9)
    if nb.n_fixed_over_envelope == 0:
        assert nb.p_max_kw["network_secure"].max() <= 60.0 + 1e-9
    s = nb.summary()
    gap = s["fleet"]["gaps"]["inner_minus_network_secure"]["e_charge_max_kwh"]
    assert gap == pytest.approx(
        s["fleet"]["inner"]["e_charge_max_kwh"] - s["fleet"]["network_secure"]["e_charge_max_kwh"]
    )
    assert gap > 0  # the 30 kW envelope cuts the inner battery somewhere


def test_schedule_on_network_secure_battery_disaggregates_within_envelopes() -> None:
    fleet, node, _, imp, exp = _case()
    inner = calc_virtual_battery(fleet, "inner", node, 6)
    secure, n_over = calc_network_secure_battery(inner, imp, exp)
    assert n_over == 0
    hour = (12 + np.arange(N_STEPS)) % 24
    price = np.where((hour >= 2) & (hour < 4), 20.0, 90.0)
    sched = solve_battery_schedule(secure, price, fleet.dt_h, degradation_per_mwh=0.0)
    p_ev = disaggregate_battery(fleet, sched.p_kw, node, 6, battery=inner)
    # Independent checks: the fleet model realises every EV's power unchanged and meets each target; each bus's
    # summed EV power stays within its envelope at every step.
    real = simulate_soc(fleet, p_ev)
    assert np.abs(real.clipped_kw).max() < 1e-6
    end = real.soc_pu[fleet.departure_step, np.arange(fleet.n)]
    assert np.all(end >= fleet.soc_target_pu - 1e-7)
    per_node = np.zeros((N_STEPS, 6))
    np.add.at(per_node.T, node, p_ev.T)
    assert per_node.max() <= 30.0 + 1e-6 and per_node.min() >= -5.0 - 1e-6
