"""The frequency dynamics give the same trajectory with the EV stages on one thread and on many."""

from __future__ import annotations

import numpy as np

from v2gtwin.grid.frequency import PARALLEL_MIN_EVS, DroopFleet, SystemParams, run_dynamics, run_steady_state


def test_serial_and_threaded_ev_stages_give_the_same_trajectory() -> None:
    rng = np.random.default_rng(616)
    n = 616  # the default study's plugged fleet size, far below the threshold
    assert n < PARALLEL_MIN_EVS
    f = DroopFleet(
        np.full(n, 7.2),
        rng.uniform(0, 14.4, n),
        rng.uniform(0, 7.2, n),
        np.full(n, 0.036),
        np.full(n, 0.05),
        rng.uniform(0.2, 1.0, n),
    )
    sysp = SystemParams(s_base_kw=20_000.0, p_gen_kw=20_000.0, d_load_kw_per_hz=20_000.0 / 60)
    serial = run_dynamics(f, sysp, 1500.0, t_end_s=60.0, parallel=False)
    threaded = run_dynamics(f, sysp, 1500.0, t_end_s=60.0, parallel=True)
    default = run_dynamics(f, sysp, 1500.0, t_end_s=60.0)
    # Only the order of one floating-point sum differs (the threaded reduction).
    np.testing.assert_allclose(threaded.df_hz, serial.df_hz, rtol=0, atol=1e-12)
    np.testing.assert_allclose(threaded.p_fleet_kw, serial.p_fleet_kw, rtol=1e-12, atol=1e-9)
    np.testing.assert_array_equal(default.df_hz, serial.df_hz)  # below the threshold the default is serial
    # And both settle where the closed-form steady state says (an independent reference for the two).
    ss = run_steady_state(f, 1500.0, sysp.d_load_kw_per_hz, sysp.k_gen_kw_per_hz)
    assert abs(serial.settling_df_hz - ss.df_hz) < 1e-6
