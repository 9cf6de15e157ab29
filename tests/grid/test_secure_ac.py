"""Services within the network, checked by the exact AC power flow on Baran & Wu's 33-bus feeder: with the
operating envelopes of grid/envelopes.py (equal per EV), the unconstrained service drives voltages outside
[0.95, 1.05] pu and the network-secure one does not."""

from __future__ import annotations

import numpy as np
import pytest

from v2gtwin.grid.envelopes import calc_operating_envelope
from v2gtwin.grid.feeder import ieee33, run_powerflow
from v2gtwin.grid.secure import build_network_limits, calc_secure_change

V_MIN, V_MAX = 0.95, 1.05


def _case(scale: float) -> tuple:
    feeder = ieee33()
    # One step at `scale` x the nominal loads; three EVs at every load bus (1..32), 7.2 kW chargers.
    p = scale * feeder.p_load_kw[None, :]
    q = scale * feeder.q_load_kvar[None, :]
    ev_bus = np.repeat(np.arange(1, feeder.n_bus), 3)
    weight = np.bincount(ev_bus, minlength=feeder.n_bus).astype(float)
    env = calc_operating_envelope(feeder, p, q, rule="equal_per_ev", weight_bus=weight, v_min_pu=V_MIN, v_max_pu=V_MAX)
    assert env.ac_violations == 0
    limits = build_network_limits([env], np.zeros(ev_bus.size, dtype=int), ev_bus)
    return feeder, p, q, ev_bus, limits


def _v_after(feeder, p, q, ev_bus, p_ev_kw) -> np.ndarray:
    p_bus = np.bincount(ev_bus, weights=p_ev_kw, minlength=feeder.n_bus)
    return run_powerflow(feeder, p + p_bus[None, :], q).v_pu[0]


@pytest.mark.parametrize(
    ("scale", "p0_kw", "target_kw", "side"),
    [
        # A rebound at half load: every EV from idle to 7.2 kW (96 EVs, 691 kW) -> under-voltage at the far end.
        (0.5, 0.0, 7.2, "low"),
        # A V2G offer at light load: every EV from idle to 50 kW export (DC V2G chargers) -> over-voltage.
        (0.1, 0.0, -50.0, "high"),
    ],
)
def test_secure_service_holds_the_voltage_limits_by_exact_ac(scale, p0_kw, target_kw, side) -> None:
    feeder, p, q, ev_bus, limits = _case(scale)
    n = ev_bus.size
    p0 = np.full(n, p0_kw)
    dp = np.full(n, target_kw - p0_kw)
    v_free = _v_after(feeder, p, q, ev_bus, p0 + dp)
    if side == "low":
        assert v_free.min() < V_MIN  # the unconstrained service violates ...
    else:
        assert v_free.max() > V_MAX
    sc = calc_secure_change(limits, 0, p0, dp)
    v_sec = _v_after(feeder, p, q, ev_bus, p0 + sc.dp_ev_kw)
    # ... the network-secure one does not (envelopes are exact to tol_kw = 0.01 kW per bus).
    assert v_sec.min() >= V_MIN - 1e-6 and v_sec.max() <= V_MAX + 1e-6
    assert 0 < abs(sc.total_secure_kw) < abs(sc.total_kw)
