"""Why the greedy lowest-sensitivity-first policy can lose to uniform charging (a hand-computed case)."""

from __future__ import annotations

import numpy as np

from v2gtwin.grid.feeder import ieee33, run_powerflow
from v2gtwin.grid.losses import calc_loss_sensitivity, run_loss_aware_dispatch


def test_loss_aware_bunches_the_far_ev_and_loses_to_uniform() -> None:
    # Two hourly steps at the nominal load; EV A at bus "2" (next to the substation, low sensitivity), EV B at
    # the far end (bus "18", Baran & Wu's lowest voltage), each 50 kW max and needing 50 kWh: flat rate 25 kW.
    # uniform: A and B at 25 kW in both steps.
    # loss_aware, step 0: budget 25 + 25 = 50 kW, no must-run (each could still finish in step 1 alone);
    #   A ranks first and takes its full 50 kW, B gets 0. Step 1: A is done, B must run at 50 kW.
    # Every step draws 50 kW in both schedules, and each bus its 50 kWh, but B's 50 kWh crosses the far
    # branches in one step: their losses go as P^2, 50^2 > 2 x 25^2, so loss_aware loses more.
    f = ieee33()
    p = np.tile(f.p_load_kw, (2, 1))
    q = np.tile(f.q_load_kvar, (2, 1))
    bus_a, bus_b = int(np.flatnonzero(f.bus_labels == "2")[0]), int(np.flatnonzero(f.bus_labels == "18")[0])
    sens = calc_loss_sensitivity(f, p[0], q[0]).s_p
    assert sens[bus_a] < sens[bus_b]
    args = (f, p, q, [bus_a, bus_b], [0, 0], [2, 2], [50.0, 50.0], [50.0, 50.0], 3600.0)
    uni = run_loss_aware_dispatch(*args, policy="uniform")
    la = run_loss_aware_dispatch(*args, policy="loss_aware")
    np.testing.assert_allclose(uni.p_ev_kw, [[25.0, 25.0], [25.0, 25.0]])
    np.testing.assert_allclose(la.p_ev_kw, [[50.0, 0.0], [0.0, 50.0]], atol=1e-9)
    np.testing.assert_allclose(la.p_ev_kw.sum(1), uni.p_ev_kw.sum(1))  # same aggregate in every step
    assert la.losses_kwh > uni.losses_kwh
    # The exact AC losses of the two schedules, recomputed here, agree with the dispatch's own.
    for r in (uni, la):
        pf = run_powerflow(f, p + r.p_bus_kw, q)
        assert abs(float(pf.p_loss_kw.sum()) - r.losses_kwh) < 1e-9
