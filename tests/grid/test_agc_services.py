"""AGC (closed-form primary interchange), PJM score by hand, regulation allocation, RegD generator and CSV
reader, reserve and demand response by hand, and the cascade against the single-area dynamics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from v2gtwin.errors import DataError
from v2gtwin.fleet import Fleet
from v2gtwin.grid.agc import (
    AgcArea,
    calc_pjm_score,
    generate_regd_signal,
    read_regulation_signal,
    run_regulation,
    run_two_area_agc,
)
from v2gtwin.grid.cascade import DerPopulation, UflsStage, calc_fleet_ramp_effect, run_cascade
from v2gtwin.grid.frequency import DroopFleet, SystemParams, run_dynamics
from v2gtwin.grid.services import run_demand_response, run_reserve

from ..fleets import one_ev


def test_two_area_primary_only_matches_kundur_closed_form() -> None:
    # Without AGC (K_I = 0): df = -dP1 / (B1 + B2), tie flow 1->2 = -dP1 B2 / (B1 + B2)  (Kundur 1994, 11.2).
    a1, a2 = AgcArea(), AgcArea(s_base_kw=2e6, p_gen_kw=2e6, d_load_kw_per_hz=2e6 / 60)
    res = run_two_area_agc(a1, a2, (20000.0, 0.0), k_i_per_s=0.0, t_end_s=600.0)
    b1, b2 = a1.bias_kw_per_hz, a2.bias_kw_per_hz
    assert res.df_hz[-1, 0] == pytest.approx(-20000 / (b1 + b2), rel=1e-4)
    assert res.df_hz[-1, 1] == pytest.approx(-20000 / (b1 + b2), rel=1e-4)
    assert res.p_tie_kw[-1] == pytest.approx(-20000 * b2 / (b1 + b2), rel=1e-4)


def test_agc_restores_frequency_and_interchange_and_the_fleet_speeds_it_up() -> None:
    plain = AgcArea()
    without = run_two_area_agc(plain, plain, (20000.0, 0.0), t_end_s=900.0)
    with_fleet = run_two_area_agc(AgcArea(ev_up_kw=20000.0, ev_down_kw=20000.0), plain, (20000.0, 0.0), t_end_s=900.0)
    for r in (without, with_fleet):
        assert abs(r.df_hz[-1]).max() < 1e-4 and abs(r.p_tie_kw[-1]) < 1.0 and abs(r.ace_kw[-1]).max() < 1.0
    assert with_fleet.restore_s < without.restore_s
    # Area 1 ends up covering its own step: conventional AGC plus fleet = 20 MW.
    assert with_fleet.p_ev_kw[-1, 0] + with_fleet.p_agc_conv_kw[-1, 0] == pytest.approx(20000.0, rel=1e-3)


def test_pjm_score_by_hand() -> None:
    sig = generate_regd_signal(1800, np.random.default_rng(3))
    perfect = calc_pjm_score(sig, sig, 2.0)
    assert (perfect.accuracy, perfect.delay, perfect.precision) == pytest.approx((1.0, 1.0, 1.0))
    # Response delayed by exactly 60 s: delay score |(60 - 300) / 300| = 0.8, accuracy ~1.
    late = np.concatenate([np.full(30, sig[0]), sig[:-30]])
    s = calc_pjm_score(sig, late, 2.0)
    assert s.delay_s == 60.0 and s.delay == pytest.approx(0.8) and s.accuracy > 0.99
    # Constant offset c: precision = 1 - c / mean|signal| (10-s averages).
    c = 0.05
    off = calc_pjm_score(sig, sig + c, 2.0)
    s10 = sig[: 1800 // 5 * 5].reshape(-1, 5).mean(axis=1)
    assert off.precision == pytest.approx(1 - c / np.abs(s10).mean(), rel=1e-9)
    assert off.composite == pytest.approx((off.accuracy + off.delay + off.precision) / 3)


def test_regd_signal_statistics_and_seed() -> None:
    a = generate_regd_signal(3600, np.random.default_rng(1))
    b = generate_regd_signal(3600, np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)
    assert abs(a.mean()) < 1e-12 and a.min() >= -1 and a.max() <= 1
    assert 0.2 < np.abs(a).mean() < 0.6


def test_regulation_soc_aware_beats_pro_rata_when_energy_limited() -> None:
    n = 200
    # Biased signal (a long net discharge) and 0.9 of the fleet's power as capacity: pro-rata empties the
    # low-SoC EVs first and loses their headroom; SoC-aware keeps more EVs able to respond.
    sig = np.clip(generate_regd_signal(1800, np.random.default_rng(4)) + 0.5, -1, 1)
    soc = np.random.default_rng(5).uniform(0.15, 0.9, n)
    args = (
        soc,
        np.full(n, 8.0),
        np.full(n, 0.1),
        np.ones(n),
        np.zeros(n),
        np.full(n, 7.2),
        np.full(n, 7.2),
        np.full(n, 0.95),
        np.full(n, 0.95),
    )
    cap = 0.9 * 7.2 * n
    pro = run_regulation(sig, 2.0, cap, *args, allocation="pro_rata")
    soc_aware = run_regulation(sig, 2.0, cap, *args, allocation="soc_aware")
    assert soc_aware.score.precision > pro.score.precision + 0.01
    for r in (pro, soc_aware):
        assert np.all(r.soc_end_pu >= 0.1 - 1e-9) and np.all(r.soc_end_pu <= 1 + 1e-9)
        assert np.all(r.response_pu * cap <= 7.2 * n * 1.0000001)


def test_signal_csv_reader(tmp_path: Path) -> None:
    ok = tmp_path / "ok.csv"
    ok.write_text("t_s,signal_pu\n0,0.1\n2,-0.2\n4,0.3\n")
    dt, s = read_regulation_signal(ok)
    assert dt == 2.0 and s.tolist() == [0.1, -0.2, 0.3]
    gap = tmp_path / "gap.csv"
    gap.write_text("t_s,signal_pu\n0,0.1\n2,0.2\n6,0.3\n")
    with pytest.raises(DataError, match="line 4: time step 4 s"):
        read_regulation_signal(gap)
    pct = tmp_path / "pct.csv"
    pct.write_text("t_s,signal_pu\n0,10\n2,20\n")
    with pytest.raises(DataError, match="percent"):
        read_regulation_signal(pct)
    bad = tmp_path / "bad.csv"
    bad.write_text("time,value\n0,1\n")
    with pytest.raises(DataError, match="header"):
        read_regulation_signal(bad)


def one_ev_fleet(**kw: float) -> Fleet:
    return one_ev(**{"soc0_pu": 0.8, **kw})


def test_reserve_by_hand() -> None:
    # Already at target (baseline idle), 36 kWh above the 20 % floor. For 30 min: power-limited, 7.2 kW.
    f = one_ev_fleet()
    r = run_reserve(f, lead_s=600.0, duration_s=1800.0)
    assert r.reserve_kw[0] == pytest.approx(7.2)
    # For 10 h: energy-limited, 36 kWh * 0.95 / 10 h = 3.42 kW.
    r10 = run_reserve(f, lead_s=0.0, duration_s=36000.0)
    assert r10.reserve_kw[0] == pytest.approx(36 * 0.95 / 10)
    # Not available when the EV leaves inside the window (steps 1-2 after a 15-min lead, gone at step 2).
    assert run_reserve(one_ev_fleet(departure_step=2), lead_s=600.0, duration_s=1800.0).reserve_kw[0] == 0.0
    # Leaving at step 4 (3,600 s), the window [600, 2,400] s ends 1,200 s = 1/3 h before: it must keep
    # 48 - 7.2 * 0.95 / 3 = 45.72 kWh to still reach the target, so it can give 2.28 kWh over 0.5 h:
    # 2.28 * 0.95 / 0.5 = 4.332 kW.
    late = run_reserve(one_ev_fleet(departure_step=4), lead_s=600.0, duration_s=1800.0)
    assert late.reserve_kw[0] == pytest.approx(2.28 * 0.95 / 0.5)


def test_reserve_lead_time_is_honoured_inside_a_step() -> None:
    # A 10-min product on a 15-min grid: delivered from 10 min into the step, not from the next step.
    # One EV charging at 7.2 kW from 12 kWh (the 20 % floor), leaving after 24 h (its target stays reachable).
    # At t0 = 600 s it holds 12 + 7.2 * 0.95 * (10/60) = 13.14 kWh; over 30 min it may fall to the floor:
    # 1.14 kWh -> discharge 1.14 * 0.95 / 0.5 = 2.166 kW. Reserve = 7.2 + 2.166 = 9.366 kW.
    # (Rounding the lead up to one step would give 12 + 1.71 -> 7.2 + 3.249 = 10.449 kW.)
    r = run_reserve(one_ev(), lead_s=600.0, duration_s=1800.0)
    assert r.reserve_kw[0] == pytest.approx(7.2 + 1.14 * 0.95 / 0.5)
    assert r.from_charging_kw[0] == pytest.approx(7.2)
    assert (r.lead_s, r.duration_s) == (600.0, 1800.0)
    # Windows ending after the 24 h horizon: t * 900 + 2,400 > 86,400 s for t = 94, 95 -> two steps, reserve 0.
    assert r.n_past_horizon == 2 and r.reserve_kw[93] > 0 and not r.reserve_kw[94:].any()
    # An EV leaving at 45 min (step 3) serves a 10 + 35 min window (ends at 45 min) but not a 15 + 45 min one.
    assert run_reserve(one_ev(departure_step=3), lead_s=600.0, duration_s=2100.0).n_available[0] == 1
    assert run_reserve(one_ev(departure_step=3), lead_s=600.0, duration_s=2101.0).n_available[0] == 0


def test_demand_response_keeps_targets_and_rebounds() -> None:
    from v2gtwin.scenario import DEFAULT_SCENARIO
    from v2gtwin.study import build_fleet

    fleet = build_fleet(DEFAULT_SCENARIO)
    dr = run_demand_response(fleet, 16, 20, 28)
    assert dr.n_unmet == dr.n_unmet_baseline  # only the EVs whose target was out of reach anyway
    assert np.all(dr.p_dr_kw[20:28] <= dr.p_baseline_kw[20:28] + 1e-9)
    assert dr.peak_reduction_kw > 0 and dr.rebound_peak_kw > dr.rebound_baseline_kw
    with pytest.raises(DataError, match="event steps"):
        run_demand_response(fleet, 20, 16, 28)


def test_cascade_without_ders_equals_the_single_area_dynamics() -> None:
    sysp = SystemParams(s_base_kw=100000.0, p_gen_kw=60000.0, h_s=3.0, t_turb_s=0.5)
    empty = DerPopulation(("none",), np.zeros(1), np.array([50.0]), np.array([0.16]))
    c = run_cascade(sysp, 5000.0, empty, ufls=())
    none = DroopFleet(*(np.zeros(0) for _ in range(4)), np.ones(0), np.ones(0))
    d = run_dynamics(none, sysp, 5000.0)
    np.testing.assert_allclose(c.f_hz - 60.0, d.df_hz, atol=1e-9)


def test_cascade_modes_trip_logic() -> None:
    sysp = SystemParams(s_base_kw=100000.0, p_gen_kw=60000.0, h_s=3.0, t_turb_s=0.5)
    pop = DerPopulation(tuple(["legacy"] * 10), np.full(10, 800.0), np.full(10, 59.3), np.full(10, 0.16))
    ufls = (UflsStage(59.0, 0.06),)
    sim = run_cascade(sysp, 12000.0, pop, "simultaneous", ufls=ufls)
    ramp = run_cascade(sysp, 12000.0, pop, "ramp", ufls=ufls, ramp_pu_per_s=0.1)
    assert sim.tripped_by_group["legacy"] == pytest.approx(8000.0)
    # UFLS stages are numbered from 1: the only (first) stage acted.
    assert sim.ufls_stages == (1,) and sim.load_shed_kw == pytest.approx(6000.0)
    assert ramp.nadir_hz > sim.nadir_hz and ramp.ufls_stages == ()
    with pytest.raises(DataError, match="mode"):
        run_cascade(sysp, 1000.0, pop, "instant")  # type: ignore[arg-type]


def _first_order_step(a_kw: float, t: np.ndarray, d: float, tau: float) -> np.ndarray:
    # M x' + D x = -A (step at t = 0): x = -(A/D)(1 - exp(-t/tau)), tau = M/D.
    return -(a_kw / d) * (1 - np.exp(-t / tau))


def _first_order_ramp(p_kw: float, r: float, t: np.ndarray, d: float, tau: float) -> np.ndarray:
    # M x' + D x = -P min(r t, 1): the response to the ramp P r t is g(t) = -(P r / D)(t - tau (1 - e^(-t/tau)))
    # (check: M g' + D g = -P r tau (1 - e) - P r (t - tau (1 - e)) = -P r t); the ramp stops at T = 1/r, so
    # by superposition x(t) = g(t) - g(t - T) for t >= T.
    def g(s: np.ndarray) -> np.ndarray:
        s = np.clip(s, 0.0, None)
        return -(p_kw * r / d) * (s - tau * (1 - np.exp(-s / tau)))

    return g(t) - g(t - 1.0 / r)


def test_cascade_fleet_ramp_against_the_closed_form_step_and_ramp() -> None:
    # Single area without governor (P_gen = 0): M d(df)/dt = -dP(t) - D df, M = 2 H S / f0 = 16,666.7 kW s/Hz,
    # D = 1,666.7 kW/Hz, tau = 10 s. Loss 1,000 kW at t = 0; 2,000 kW of legacy PV and 1,000 kW of V2G
    # trip at once (setting 70 Hz, clearing 0 s: they trip in the first step).
    sysp = SystemParams(s_base_kw=100000.0, h_s=5.0, p_gen_kw=0.0)
    d, tau, r = 100000.0 / 60.0, 10.0, 0.1
    pop = DerPopulation(
        ("PV legacy", "V2G"), np.array([2000.0, 1000.0]), np.full(2, 70.0), np.zeros(2), np.array([False, True])
    )
    res = {
        m: run_cascade(sysp, 1000.0, pop, m, ufls=(), ramp_pu_per_s=r) for m in ("simultaneous", "fleet_ramp", "ramp")
    }
    t = res["simultaneous"].t_s
    # Everything at once: a 4,000 kW step.
    np.testing.assert_allclose(res["simultaneous"].f_hz - 60.0, _first_order_step(4000.0, t, d, tau), atol=1e-6)
    # Legacy PV at once (3,000 kW step with the loss), the V2G fleet ramping 1,000 kW down over 10 s. The model
    # advances trips once per 10 ms step (a unit is at 1 - r dt (k + 1) during step k): a ramp shifted by
    # dt/2 against the continuous one, at most P r dt / 2 / D = 1000 * 0.1 * 0.005 / 1666.7 = 3e-4 Hz off.
    fleet_ramp = _first_order_step(3000.0, t, d, tau) + _first_order_ramp(1000.0, r, t, d, tau)
    np.testing.assert_allclose(res["fleet_ramp"].f_hz - 60.0, fleet_ramp, atol=3.1e-4)
    every = _first_order_step(1000.0, t, d, tau) + _first_order_ramp(3000.0, r, t, d, tau)
    np.testing.assert_allclose(res["ramp"].f_hz - 60.0, every, atol=3 * 3.1e-4)
    assert res["fleet_ramp"].ramped_kw == 1000.0 and res["ramp"].ramped_kw == 3000.0
    # The system is linear and the ramps have the same shape, so the fleet's share of the nadir gain is its
    # share of the ramped power: 1,000 / 3,000.
    effect = calc_fleet_ramp_effect(res)
    assert effect["fleet_share_of_gain"] == pytest.approx(1 / 3, rel=1e-9)
    expected_gain = fleet_ramp[-1] - _first_order_step(4000.0, t, d, tau)[-1]  # nadir at t = 30 s (monotone)
    assert effect["nadir_gain_fleet_ramp_hz"] == pytest.approx(expected_gain, abs=3.1e-4)


def test_cascade_loads_drop_at_once_in_every_mode_and_the_share_is_none_without_a_gain() -> None:
    sysp = SystemParams(s_base_kw=100000.0, h_s=5.0, p_gen_kw=0.0)
    # Only a charging-EV load of the fleet trips (-500 kW): no generation to ramp, every mode is the same:
    # a net step of 1,000 - 500 = 500 kW.
    pop = DerPopulation(("EV charging",), np.array([-500.0]), np.array([70.0]), np.zeros(1), np.array([True]))
    res = {m: run_cascade(sysp, 1000.0, pop, m, ufls=()) for m in ("simultaneous", "fleet_ramp", "ramp")}
    t = res["ramp"].t_s
    for c in res.values():
        np.testing.assert_allclose(c.f_hz - 60.0, _first_order_step(500.0, t, 100000.0 / 60.0, 10.0), atol=1e-6)
        assert c.ramped_kw == 0.0
    assert calc_fleet_ramp_effect(res)["fleet_share_of_gain"] is None
    with pytest.raises(DataError, match="fleet_ramp"):
        calc_fleet_ramp_effect({"simultaneous": res["simultaneous"]})


def test_two_area_agc_fleet_delayed_by_the_path_is_the_plain_loop_until_the_delay() -> None:
    # A command delay of 5 s = 100 steps of 0.05 s: the fleet's first request (step 0) reaches it at step 100.
    # Until t = 5 s the loop is exactly one whose fleet is dispatched (the conventional units get z minus the
    # fleet's request) but never moves (independent reference: a fleet lag of 1e12 s, no delay machinery);
    # after it the fleet responds. Undelayed, the fleet already responds in the first second.
    plain = AgcArea()
    fleet = AgcArea(ev_up_kw=20000.0, ev_down_kw=20000.0)
    kw = dict(t_end_s=60.0, k_i_per_s=0.5)
    frozen = AgcArea(ev_up_kw=20000.0, ev_down_kw=20000.0, t_ev_s=1e12)
    no_fleet = run_two_area_agc(frozen, plain, (20000.0, 0.0), **kw)  # type: ignore[arg-type]
    delayed = run_two_area_agc(fleet, plain, (20000.0, 0.0), ev_delay_s=5.0, **kw)  # type: ignore[arg-type]
    undelayed = run_two_area_agc(fleet, plain, (20000.0, 0.0), **kw)  # type: ignore[arg-type]
    before = delayed.t_s <= 5.0 + 1e-9
    assert np.abs(delayed.p_ev_kw[before]).max() == 0.0
    np.testing.assert_allclose(delayed.df_hz[before], no_fleet.df_hz[before], rtol=0, atol=1e-9)
    np.testing.assert_allclose(delayed.p_tie_kw[before], no_fleet.p_tie_kw[before], rtol=0, atol=1e-3)
    assert np.abs(delayed.p_ev_kw[delayed.t_s > 5.5, 0]).min() > 0.0
    assert np.abs(undelayed.p_ev_kw[(undelayed.t_s > 0.5) & (undelayed.t_s <= 1.0), 0]).min() > 0.0


def test_agc_analysis_delays_the_fleet_in_the_loop_and_keeps_the_undelayed_run() -> None:
    # The command path's delay samples (4 s, 6 s) reach the two-area loop: no fleet response before 4 s (the
    # earliest command lands then); mean 5 s (hand); the "without delay" figures are those of the same
    # analysis run with no delay (independent run).
    from v2gtwin.fleet import run_uncontrolled, synthesize_fleet
    from v2gtwin.grid.bulk import run_agc_analysis
    from v2gtwin.scenario import Scenario

    scen = Scenario(fleet={"n_evs": 100})
    fleet = synthesize_fleet(scen.fleet, scen.time, scen.feeder.n_bus, np.random.default_rng(3))
    base = run_uncontrolled(fleet)
    args = (fleet, base, scen.frequency, scen.time, scen.seed)
    delayed = run_agc_analysis(*args, delay_s=[4.0, 6.0])
    plain = run_agc_analysis(*args)
    t = delayed.agc.t_s
    assert np.abs(delayed.agc.p_ev_kw[t <= 4.0]).max() == 0.0
    assert np.abs(plain.agc.p_ev_kw[(t > 0.5) & (t <= 4.0), 0]).max() > 0.0
    assert delayed.delay_mean_s == pytest.approx(5.0)
    assert delayed.restore_without_delay_s == plain.agc.restore_s
    assert delayed.regulation_without_delay is not None
    for alloc, r in plain.regulation.items():
        assert delayed.regulation_without_delay[alloc].score.composite == r.score.composite
        assert delayed.regulation[alloc].score.composite != r.score.composite


@pytest.mark.parametrize("target_kw", [350.0, -350.0, 1500.0])
def test_regulation_split_is_the_water_filling_closed_form(target_kw: float) -> None:
    # The split of one step's set-point is water-filling: p_i = min(room_i, lam w_i) with lam such that the
    # shares sum to |target| (or every EV at its room when the fleet cannot give it all). Reference: lam by
    # bisection on that sum, with room_i and w_i computed here from the allocation rule in the docstring.
    from v2gtwin.grid.agc import _allocate_step

    rng = np.random.default_rng(3)
    n, dt_h = 300, 2.0 / 3600.0
    cap = rng.uniform(40, 100, n)
    soc = rng.uniform(0.2, 0.9, n)
    soc_min, soc_max = np.full(n, 0.2), np.full(n, 0.9)
    p0 = rng.uniform(0, 7, n)
    pch, pdis = np.full(n, 7.2), np.where(rng.random(n) < 0.8, 7.2, 0.0)
    eta = np.full(n, 0.95)
    room, weight, p_out, active = np.empty(n), np.empty(n), np.empty(n), np.empty(n, dtype=np.int64)
    args = (soc, cap, soc_min, soc_max, p0, pch, pdis, eta, eta, dt_h, True, room, weight, p_out, active)
    _allocate_step(target_kw, *args)
    if target_kw >= 0:
        r = np.maximum(p0 + np.minimum(pdis, np.maximum((soc - soc_min) * cap * eta / dt_h, 0)), 0)
        w = r * np.maximum(soc - soc_min, 0)
    else:
        r = np.maximum(np.minimum(pch, np.maximum((soc_max - soc) * cap / (eta * dt_h), 0)) - p0, 0)
        w = r * np.maximum(soc_max - soc, 0)
    want = min(abs(target_kw), float(r[w > 0].sum()))
    lo, hi = 0.0, 1e12
    for _ in range(200):
        lam = 0.5 * (lo + hi)
        lo, hi = (lam, hi) if np.minimum(r, lam * w).sum() < want else (lo, lam)
    ref = np.sign(target_kw) * np.minimum(r, hi * w)
    np.testing.assert_allclose(p_out, ref, rtol=0, atol=1e-6)
    assert abs(p_out.sum()) == pytest.approx(want, rel=1e-9)
