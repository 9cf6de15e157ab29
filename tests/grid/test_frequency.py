"""Primary response: closed forms (Kundur's steady state), hand-worked saturation, the RK4 integrator
against scipy.integrate.solve_ivp on the same system, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from v2gtwin.errors import DataError
from v2gtwin.grid.frequency import (
    DroopFleet,
    SystemParams,
    calc_droop_response_kw,
    run_dynamics,
    run_steady_state,
)

SYS = SystemParams()  # Kundur defaults: 100 MW, H 5 s, R 0.05, D 1 %/%


def fleet(n: int, up: float = 14.4, down: float = 7.2, db: float = 0.036, tau: float = 0.5) -> DroopFleet:
    return DroopFleet(
        np.full(n, 7.2), np.full(n, up), np.full(n, down), np.full(n, db), np.full(n, 0.05), np.full(n, tau)
    )


def test_steady_state_closed_form_without_deadband() -> None:
    # df = -dP / (D + K_gen + K_ev), K_ev = N P_rated / (f0 k) = 500 * 7.2 / (60 * 0.05) = 1200 kW/Hz.
    f = fleet(500, db=0.0)
    res = run_steady_state(f, 5000.0, SYS.d_load_kw_per_hz, SYS.k_gen_kw_per_hz)
    expected = -5000.0 / (SYS.d_load_kw_per_hz + SYS.k_gen_kw_per_hz + 1200.0)
    assert res.df_hz == pytest.approx(expected, rel=1e-12)
    assert res.k_fleet_kw_per_hz == pytest.approx(1200.0)
    assert not res.saturated.any()


def test_steady_state_with_deadband_by_hand() -> None:
    # Beyond the deadband: lin x + K (x - db) = dP  =>  x = (dP + K db) / (lin + K).
    f = fleet(500)
    lin = SYS.d_load_kw_per_hz + SYS.k_gen_kw_per_hz
    res = run_steady_state(f, 5000.0, SYS.d_load_kw_per_hz, SYS.k_gen_kw_per_hz)
    assert res.df_hz == pytest.approx(-(5000.0 + 1200.0 * 0.036) / (lin + 1200.0), rel=1e-12)
    # A step too small to leave the deadband: the fleet does nothing.
    small = run_steady_state(f, 100.0, SYS.d_load_kw_per_hz, SYS.k_gen_kw_per_hz)
    assert small.df_hz == pytest.approx(-100.0 / lin) and small.fleet_response_kw == 0.0


def test_saturation_by_hand() -> None:
    # Two EVs, K = 2400 kW/Hz each (p_rated 7.2 / (60 * 0.00005)); one with 1 kW headroom saturates.
    f = DroopFleet(
        np.full(2, 7.2), np.array([1.0, 1000.0]), np.array([1.0, 1000.0]), np.zeros(2), np.full(2, 0.00005), np.ones(2)
    )
    k = 7.2 / (60 * 0.00005)
    res = run_steady_state(f, 100.0, 10.0, 0.0)
    # Balance: 10 x + 1 + k x = 100 -> x = 99 / (10 + k)
    assert res.df_hz == pytest.approx(-99.0 / (10.0 + k), rel=1e-12)
    np.testing.assert_array_equal(res.saturated, [True, False])
    assert res.response_kw[0] == pytest.approx(1.0)


def test_over_frequency_is_symmetric() -> None:
    f = fleet(300)
    up = run_steady_state(f, 3000.0, SYS.d_load_kw_per_hz, SYS.k_gen_kw_per_hz)
    down = run_steady_state(f, -3000.0, SYS.d_load_kw_per_hz, SYS.k_gen_kw_per_hz)
    assert down.df_hz == pytest.approx(-up.df_hz, rel=1e-12)
    assert down.fleet_response_kw == pytest.approx(-up.fleet_response_kw, rel=1e-12)


def test_droop_response_curve_ieee1547_defaults() -> None:
    f = DroopFleet.ieee1547_default([10.0], [100.0], [100.0])
    # K = 10 / (60 * 0.05) = 3.333 kW/Hz; at -0.536 Hz: 3.333 * 0.5 = 1.667 kW injection.
    r = calc_droop_response_kw(f, np.array([-0.536, -0.03, 0.236]))
    np.testing.assert_allclose(r[:, 0], [10 / 3 * 0.5, 0.0, -10 / 3 * 0.2], rtol=1e-12)


def test_dynamic_settling_equals_closed_form_with_deadband_and_saturation() -> None:
    rng = np.random.default_rng(1)
    n = 200
    f = DroopFleet(
        np.full(n, 7.2),
        rng.uniform(0, 3, n),
        rng.uniform(0, 3, n),
        rng.uniform(0, 0.1, n),
        rng.uniform(0.03, 0.08, n),
        rng.uniform(0.2, 1.0, n),
    )
    dyn = run_dynamics(f, SYS, 4000.0, t_end_s=90.0)
    ss = run_steady_state(f, 4000.0, SYS.d_load_kw_per_hz, SYS.k_gen_kw_per_hz)
    assert dyn.settling_df_hz == pytest.approx(ss.df_hz, abs=1e-7)
    assert dyn.p_fleet_kw[-1] == pytest.approx(ss.fleet_response_kw, rel=1e-6)


def test_initial_rocof_closed_form() -> None:
    dyn = run_dynamics(fleet(100), SYS, 5000.0, dt_s=0.001, t_end_s=1.0)
    # RoCoF at t = 0+ = -dP f0 / (2 H S) = -5000 * 60 / (2 * 5 * 100000) = -0.3 Hz/s (frequency falls).
    assert dyn.rocof_hz_per_s == pytest.approx(-0.3, rel=2e-3)
    # A load decrease: frequency rises, RoCoF positive.
    assert run_dynamics(fleet(100), SYS, -5000.0, dt_s=0.001, t_end_s=1.0).rocof_hz_per_s == pytest.approx(
        0.3, rel=2e-3
    )


def test_nadir_is_absolute_and_its_deviation_is_named() -> None:
    # No governor (P_gen = 0) and no EVs: M d(df)/dt = -dP - D df, df(t) = -(dP/D)(1 - exp(-t D/M)).
    # M = 2 * 5 * 100000 / 60 = 16,666.7 kW s/Hz, D = 1,666.7 kW/Hz, tau = 10 s; falling all along, so
    # the nadir is at t = 30 s: df = -(5000 / 1666.7)(1 - e^-3) = -3 * 0.950213 = -2.85064 Hz -> 57.14936 Hz.
    sysp = SystemParams(p_gen_kw=0.0)
    dyn = run_dynamics(fleet(0), sysp, 5000.0, t_end_s=30.0)
    assert dyn.df_nadir_hz == pytest.approx(-3 * (1 - np.exp(-3.0)), abs=1e-6)
    assert dyn.nadir_hz == pytest.approx(60.0 - 3 * (1 - np.exp(-3.0)), abs=1e-6)
    assert dyn.nadir_t_s == pytest.approx(30.0)
    # Same on a 50 Hz system (M and D scale with 1/f_nom: tau stays 10 s, dP/D = 5000 * 50 / 100000 = 2.5 Hz).
    d50 = run_dynamics(fleet(0), SystemParams(p_gen_kw=0.0, f_nom_hz=50.0, d_load_kw_per_hz=2000.0), 5000.0)
    assert d50.nadir_hz == pytest.approx(50.0 - 2.5 * (1 - np.exp(-3.0)), abs=1e-6)


def test_integrator_agrees_with_solve_ivp() -> None:
    rng = np.random.default_rng(2)
    n = 20
    f = DroopFleet(
        np.full(n, 7.2),
        rng.uniform(1, 14, n),
        rng.uniform(1, 7, n),
        np.full(n, 0.036),
        np.full(n, 0.05),
        rng.uniform(0.2, 1.0, n),
    )
    sysp = SystemParams(s_base_kw=5000.0, p_gen_kw=4000.0, d_load_kw_per_hz=5000.0 / 60)
    ours = run_dynamics(f, sysp, 300.0, t_end_s=20.0, dt_s=0.005)
    m = 2 * sysp.h_s * sysp.s_base_kw / sysp.f_nom_hz
    k = f.gain_kw_per_hz(60.0)

    def rhs(_t: float, x: np.ndarray) -> np.ndarray:
        df, pv, pm, pev = x[0], x[1], x[2], x[3:]
        target = calc_droop_response_kw(f, df)  # the same droop curve, evaluated with numpy
        return np.concatenate(
            [
                [
                    (pm - 300.0 - sysp.d_load_kw_per_hz * df + pev.sum()) / m,
                    (-pv - sysp.k_gen_kw_per_hz * df) / sysp.t_gov_s,
                    (pv - pm) / sysp.t_turb_s,
                ],
                (target - pev) / f.t_response_s,
            ]
        )

    ref = solve_ivp(
        rhs, (0, 20.0), np.zeros(3 + n), method="RK45", rtol=1e-10, atol=1e-12, max_step=0.01, t_eval=ours.t_s[::100]
    )
    np.testing.assert_allclose(ours.df_hz[::100], ref.y[0], atol=2e-6)
    np.testing.assert_allclose(ours.p_fleet_kw[::100], ref.y[3:].sum(axis=0), atol=1e-3)
    assert k.shape == (n,)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"h_s": 0.0}, "h_s"),
        ({"r_pu": -0.05}, "r_pu"),
        ({"t_gov_s": 0.0}, "t_gov_s"),
        ({"s_base_kw": -1.0}, "s_base_kw"),
    ],
)
def test_non_physical_system_parameters(kwargs: dict, field: str) -> None:
    with pytest.raises(DataError, match=field):
        SystemParams(**kwargs)


def test_non_physical_fleet_parameters() -> None:
    with pytest.raises(DataError, match="droop_pu"):
        DroopFleet(np.ones(2), np.ones(2), np.ones(2), np.zeros(2), np.array([0.05, -0.05]), np.ones(2))
    with pytest.raises(DataError, match="deadband_hz"):
        DroopFleet(np.ones(1), np.ones(1), np.ones(1), np.array([2.0]), np.full(1, 0.05), np.ones(1))
