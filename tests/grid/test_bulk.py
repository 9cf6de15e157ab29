"""The scenario glue of the bulk-grid services (grid/bulk.py) against hand-computed cases: a fleet of three
EVs with hand-set arrays on a 1-hour grid from 12:00, and a 100 kW system, so a sign or index error between
the scenario and a model changes a number worked out here."""

from __future__ import annotations

import numpy as np
import pytest

from v2gtwin.errors import ScenarioError
from v2gtwin.fleet import Fleet, SocResult, run_uncontrolled
from v2gtwin.grid.bulk import (
    build_droop_fleet,
    clock_to_step,
    run_cascade_analysis,
    run_frequency_analysis,
    run_reserve_dr_analysis,
    summarize_cascade,
    summarize_dynamics,
    system_params,
)
from v2gtwin.scenario import FrequencySpec, TimeGrid

TIME = TimeGrid(dt_s=3600.0, n_steps=24, start_hour=12.0)
# A 100 kW system (1/1000 of the default), so that a 7.2 kW EV is visible; 10 kW load step at 20:00 (step 8).
SPEC = FrequencySpec(
    system_mw=0.1,
    gen_mw=0.1,
    step_mw=0.01,
    cascade_gen_mw=0.06,
    cascade_loss_mw=0.012,
    pv_legacy_mw=0.008,
    pv_1547_mw=0.008,
)


def tiny_fleet() -> Fleet:
    """Three EVs, 60 kWh, 7.2 kW both ways, 95 % each way, SoC floor 0.2, target 0.8:
    EV0 plugged all day at its target (baseline idle); EV1 arrives 18:00 (step 6) at 0.2 and leaves 08:00
    (step 20), charging 7.2 kW from step 6; EV2 arrives 21:00 (step 9) at its target."""
    cols = dict(
        capacity_kwh=[60.0] * 3,
        soc0_pu=[0.8, 0.2, 0.8],
        soc_target_pu=[0.8] * 3,
        soc_min_pu=[0.2] * 3,
        soc_max_pu=[1.0] * 3,
        p_charge_max_kw=[7.2] * 3,
        p_discharge_max_kw=[7.2] * 3,
        eta_charge=[0.95] * 3,
        eta_discharge=[0.95] * 3,
        arrival_step=[0, 6, 9],
        departure_step=[24, 20, 20],
        bus=[1, 1, 1],
        kind=[0, 0, 0],
    )
    return Fleet(**{k: np.array(v) for k, v in cols.items()}, dt_s=3600.0, n_steps=24)


@pytest.fixture(scope="module")
def tiny() -> tuple[Fleet, SocResult]:
    fleet = tiny_fleet()
    return fleet, run_uncontrolled(fleet)


def test_clock_times_go_through_the_time_grid() -> None:
    # 20:00 after a 12:00 start on 1-h steps is step 8; 02:00 the next day step 14; 13:00 before a 6-h
    # horizon ends at 18:00, 20:00 after it: an error naming the field, never clamped.
    assert clock_to_step(TIME, 20.0) == 8 and clock_to_step(TIME, 2.0) == 14
    short = TimeGrid(dt_s=3600.0, n_steps=6, start_hour=12.0)
    with pytest.raises(ScenarioError, match=r"frequency\.event_hour"):
        clock_to_step(short, 20.0, "frequency.event_hour")


def test_system_params_from_the_scenario() -> None:
    sp = system_params(SPEC)
    # S = 0.1 MW = 100 kW; D = 1 %/% -> 100 / 60 kW/Hz; K_gen = P_gen / (f0 R) = 100 / (60 * 0.05) = 33.33 kW/Hz.
    assert sp.s_base_kw == pytest.approx(100.0) and sp.p_gen_kw == pytest.approx(100.0)
    assert sp.d_load_kw_per_hz == pytest.approx(100.0 / 60.0)
    assert sp.k_gen_kw_per_hz == pytest.approx(100.0 / 3.0)


def test_droop_fleet_takes_the_plugged_evs_and_their_headroom_signs(tiny: tuple[Fleet, SocResult]) -> None:
    fleet, base = tiny
    droop, idx = build_droop_fleet(fleet, base, 8, SPEC, np.random.default_rng(0))
    # At step 8 EV0 (idle) and EV1 (charging 7.2 kW, SoC 0.2 + 2 * 6.84 / 60 = 0.428) are plugged; EV2 is not.
    assert idx.tolist() == [0, 1]
    # Up = stop charging then discharge: EV0 0 + 7.2, EV1 7.2 + 7.2. Down = charge more: EV0 7.2 - 0, EV1 0.
    np.testing.assert_allclose(droop.headroom_up_kw, [7.2, 14.4])
    np.testing.assert_allclose(droop.headroom_down_kw, [7.2, 0.0])


def test_primary_response_by_hand(tiny: tuple[Fleet, SocResult]) -> None:
    fleet, base = tiny
    fa = run_frequency_analysis(fleet, base, SPEC, TIME, seed=1)
    # Two EVs, gain 7.2 / (60 * 0.05) = 2.4 kW/Hz each (K = 4.8), deadband 0.036 Hz; lin = D + K_gen = 35 kW/Hz.
    # Unsaturated: x = (dP + K db) / (lin + K) = (10 + 4.8 * 0.036) / 39.8 = 0.255598 Hz below nominal,
    # each EV injects 2.4 * (0.255598 - 0.036) = 0.527035 kW (< its 7.2 / 14.4 kW headroom).
    x = (10 + 4.8 * 0.036) / 39.8
    assert fa.n_evs == 2 and fa.event_clock == "20:00"
    assert fa.steady.df_hz == pytest.approx(-x, abs=1e-9)
    np.testing.assert_allclose(fa.steady.response_kw, [2.4 * (x - 0.036)] * 2, atol=1e-9)
    assert fa.steady.fleet_response_kw == pytest.approx(2 * 2.4 * (x - 0.036), abs=1e-9)
    assert fa.steady_without_df_hz == pytest.approx(-10 / 35, abs=1e-12)
    # RoCoF at the step: -dP f0 / (2 H S) = -10 * 60 / (2 * 5 * 100) = -0.6 Hz/s; the nadir is absolute.
    dyn = summarize_dynamics(fa, SPEC.step_mw)
    assert dyn["rocof_hz_per_s"] == pytest.approx(-0.6, rel=2e-3)
    assert 59.0 < dyn["nadir_hz"] < 60.0 - x and dyn["nadir_hz"] == pytest.approx(60.0 + dyn["df_nadir_hz"])
    # Over-frequency (load drop of 10 kW): only EV0 can charge more (EV1 is at full charging power):
    # x = (10 + 2.4 * 0.036) / (35 + 2.4) = 0.269690 Hz above nominal; EV0 -2.4 * (x - 0.036) kW, EV1 0.
    over = FrequencySpec(**{**SPEC.model_dump(), "step_mw": -0.01})
    fo = run_frequency_analysis(fleet, base, over, TIME, seed=1)
    xo = (10 + 2.4 * 0.036) / 37.4
    # An event at 20:30 on 1-h steps is modelled in the step starting 20:00, and the output says so.
    half = FrequencySpec(**{**SPEC.model_dump(), "event_hour": 20.5})
    assert run_frequency_analysis(fleet, base, half, TIME, seed=1).event_clock == "20:00"
    assert fo.steady.df_hz == pytest.approx(xo, abs=1e-9)
    np.testing.assert_allclose(fo.steady.response_kw, [-2.4 * (xo - 0.036), 0.0], atol=1e-9)


def test_reserve_and_demand_response_by_hand(tiny: tuple[Fleet, SocResult]) -> None:
    fleet, base = tiny
    reserve, dr = run_reserve_dr_analysis(fleet, base, SPEC, TIME)
    # Reserve called at 20:00 (step 8), delivered 20:10-20:40. EV0 idle at 48 kWh: power-limited, 0 + 7.2.
    # EV1 charging 7.2 kW at 25.68 + 1.14 kWh: power-limited, 7.2 + 7.2. EV2 not yet plugged in.
    assert (reserve.lead_s, reserve.duration_s) == (600.0, 1800.0)
    assert reserve.reserve_kw[8] == pytest.approx(7.2 + 14.4) and reserve.n_available[8] == 2
    # DR: notify 16:00 (step 4), event 17:00-19:00 (steps 5, 6). Step 4: EV0 pre-charges 7.2 kW (to 54.84 kWh).
    # Steps 5, 6: EV0 discharges 7.2 kW (it can charge back overnight); EV1 (arrived step 6 at its floor)
    # draws 0. Baseline: 0 at step 5, 7.2 kW (EV1) at step 6. Reductions 7.2 and 14.4 kW: mean 10.8 kW,
    # 21.6 kWh shifted; peak 7.2 - (-7.2) = 14.4 kW. EV0 recharges 7.2 kW at step 7 with EV1: rebound 14.4 kW.
    assert (dr.notify_step, dr.start_step, dr.end_step) == (4, 5, 7)
    assert dr.event_clock == {"notify": "16:00", "start": "17:00", "end": "19:00"}
    np.testing.assert_allclose(dr.p_dr_kw[3:8], [0.0, 7.2, -7.2, -7.2, 14.4], atol=1e-9)
    assert dr.reduction_mean_kw == pytest.approx(10.8)
    assert dr.energy_shifted_kwh == pytest.approx(21.6)
    assert dr.peak_reduction_kw == pytest.approx(14.4)
    assert dr.rebound_peak_kw == pytest.approx(14.4) and dr.n_unmet == 0
    # From an 18:00 start, 16:00 / 17:00 / 19:00 are steps 22 / 23 / 1: the event would end before it starts.
    late_start = TimeGrid(dt_s=3600.0, n_steps=24, start_hour=18.0)
    with pytest.raises(ScenarioError, match="dr_start_hour"):
        run_reserve_dr_analysis(fleet, base, SPEC, late_start)


@pytest.mark.parametrize("f_nom_hz", [60.0, 50.0])
def test_cascade_population_from_the_fleet_by_hand(tiny: tuple[Fleet, SocResult], f_nom_hz: float) -> None:
    fleet, base = tiny
    spec = FrequencySpec(**{**SPEC.model_dump(), "f_nom_hz": f_nom_hz})
    res = run_cascade_analysis(fleet, base, spec, TIME, seed=1)
    # At 20:00: V2G generation = cascade_v2g_share 0.5 x (7.2 + 7.2) kW of plugged discharge rating = 7.2 kW,
    # half on legacy settings (3.6 kW), half on IEEE 1547 ones; charging load = 0.5 x 7.2 kW (EV1) = 3.6 kW.
    # The 12 kW loss drives the frequency below the legacy 59.3 Hz (49.3 Hz) setting, not below 58.5 (48.5):
    # legacy PV 8 kW, legacy V2G 3.6 kW and the chargers (-3.6 kW) trip; the 1547 units ride through.
    expected = {"PV legacy": 8.0, "PV IEEE 1547": 0.0, "V2G legacy": 3.6, "V2G IEEE 1547": 0.0, "EV charging": -3.6}
    for mode in ("simultaneous", "fleet_ramp", "ramp"):  # random_delay: which units trip depends on the draw
        c = res[mode]
        assert c.tripped_by_group == pytest.approx(expected), mode
        assert c.der_lost_kw == pytest.approx(8.0 + 3.6 - 3.6)
    # Only the fleet's tripping generation ramps in 'fleet_ramp' (3.6 kW); every tripping generator in
    # 'ramp' (8 + 3.6 kW); chargers drop at once in both.
    assert res["fleet_ramp"].ramped_kw == pytest.approx(3.6)
    assert res["ramp"].ramped_kw == pytest.approx(11.6)
    assert res["simultaneous"].ramped_kw == 0.0
    summary = summarize_cascade(res)
    effect = summary["fleet_ramp_effect"]
    assert effect["fleet_ramped_kw"] == pytest.approx(3.6) and effect["all_ramped_kw"] == pytest.approx(11.6)
    # The gains are the nadir differences between the runs (the share is checked against a closed form in
    # test_agc_services; with UFLS acting in one run and not another it need not lie in [0, 1]).
    assert effect["nadir_gain_fleet_ramp_hz"] == res["fleet_ramp"].nadir_hz - res["simultaneous"].nadir_hz
    assert effect["nadir_gain_all_ramp_hz"] == res["ramp"].nadir_hz - res["simultaneous"].nadir_hz
    assert all(min(v["ufls_stages"], default=1) >= 1 for k, v in summary.items() if k in res)
