"""The V2G degradation cost (battery.cost) and its use by the schedules, the V2G offer and the regulation bid.

References are closed forms (the probe's energy and mean, the LP's discharge threshold, the newsvendor's
fractile) and hand-computed cases; calc_fade itself is checked against BLAST-Lite in test_degradation.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from tests.fleets import one_ev
from v2gtwin.battery.cost import (
    add_v2g_probe,
    assign_chemistry,
    calc_daily_duty_soc,
    calc_marginal_cost_per_kwh,
    degradation_cost_per_mwh,
)
from v2gtwin.errors import DataError
from v2gtwin.fleet import Fleet, run_uncontrolled
from v2gtwin.markets.analysis import run_bid_analysis
from v2gtwin.markets.newsvendor import Availability
from v2gtwin.optimize.schedule import solve_fleet_schedule
from v2gtwin.scenario import Scenario


def _fleet(n_steps: int = 8, arrival: int = 2, departure: int = 6, soc0: float = 0.5) -> Fleet:
    return one_ev(
        dt_s=24 * 3600 / n_steps,
        n_steps=n_steps,
        arrival_step=arrival,
        departure_step=departure,
        soc0_pu=soc0,
        soc_target_pu=0.6,
    )


def test_daily_duty_soc_by_hand() -> None:
    # 8 steps of 3 h; plugged in steps 2..5. SoC at boundaries 0..8: 0.5 before arrival, rises 0.5 -> 0.6 -> 0.6.
    f = _fleet()
    soc = np.array([[0.5, 0.5, 0.5, 0.55, 0.6, 0.6, 0.6, 0.6, 0.6]]).T
    duty = calc_daily_duty_soc(f, soc)
    # Plugged steps take the SoC at their start: 0.5, 0.55, 0.6, 0.6. Away steps 6, 7, 0, 1 (4 steps): the SoC
    # falls from 0.6 at departure (step 6) to 0.5 at arrival (step 2), 0.025 a step: 0.6, 0.575, 0.55, 0.525.
    expected = [0.55, 0.525, 0.5, 0.55, 0.6, 0.6, 0.6, 0.575]
    np.testing.assert_allclose(duty[0], expected, atol=1e-12)


def test_probe_discharges_its_energy_and_keeps_the_mean() -> None:
    # A flat day at 0.5 pu; plugged all day (96 steps); probe 6 kWh on 60 kWh: amplitude 0.05 pu.
    f = one_ev(soc0_pu=0.5, soc_target_pu=0.5)
    duty = np.full((1, 96), 0.5)
    probe, ok = add_v2g_probe(duty, f, 6.0)
    assert ok[0]
    # A sampled sine over one whole period sums to 0 (the mean SoC is kept) ...
    assert probe.mean() == pytest.approx(0.5, abs=1e-12)
    # ... and falls from its top (+0.05 at a quarter... sign: -A sin) : its SoC drops by 2 A = 0.1 pu = 6 kWh,
    # the discharge (sum of the decreases, closing the day back to the first sample).
    s = np.append(probe[0], probe[0, 0])
    drop_kwh = -np.clip(np.diff(s), None, 0).sum() * 60.0
    assert drop_kwh == pytest.approx(6.0, rel=1e-3)


def test_probe_refused_without_v2g_or_room() -> None:
    f = one_ev(soc0_pu=0.5, soc_target_pu=0.5, p_discharge_max_kw=0.0)
    _, ok = add_v2g_probe(np.full((1, 96), 0.5), f, 6.0)
    assert not ok[0]
    g = one_ev(soc0_pu=0.22, soc_target_pu=0.22)  # 0.22 - 0.05 < soc_min 0.2
    _, ok = add_v2g_probe(np.full((1, 96), 0.22), g, 6.0)
    assert not ok[0]
    with pytest.raises(DataError, match="v2g_probe_kwh"):
        add_v2g_probe(np.full((1, 96), 0.5), f, 0.0)


def test_cost_scales_with_replacement_cost_and_end_of_life() -> None:
    # cost = dq / E x capacity x replacement / eol: linear in replacement, inverse in eol (closed form).
    f = one_ev(soc0_pu=0.5, soc_target_pu=0.5)
    duty = np.full((1, 96), 0.5)  # a parked day: all its cycle ageing is the probe's
    probe, _ = add_v2g_probe(duty, f, 6.0)

    def cost(repl: float, eol: float) -> float:
        return float(
            calc_marginal_cost_per_kwh(
                duty, 0.25, 25.0, "nmc", [60.0], probe, 6.0, years=2, replacement_cost_per_kwh=repl, eol_fade_pu=eol
            )[0]
        )

    base = cost(100.0, 0.2)
    assert base > 0
    assert cost(250.0, 0.2) == pytest.approx(2.5 * base, rel=1e-12)
    assert cost(100.0, 0.4) == pytest.approx(0.5 * base, rel=1e-12)
    with pytest.raises(DataError, match="eol_fade_pu"):
        cost(100.0, 1.0)


def test_flat_cost_is_the_placeholder_for_every_ev() -> None:
    scen = Scenario(fleet={"n_evs": 40}, battery={"degradation_cost": "flat"}, markets={"degradation_per_mwh": 42.0})
    from v2gtwin.study import build_fleet

    fleet = build_fleet(scen)
    c = degradation_cost_per_mwh(scen, fleet)
    assert c.source == "flat" and np.all(c.per_ev_per_mwh == 42.0)


def test_model_cost_nmc_above_lfp_and_finite() -> None:
    scen = Scenario(fleet={"n_evs": 60}, battery={"lfp_share": 0.5})
    from v2gtwin.study import build_fleet

    fleet = build_fleet(scen)
    c = degradation_cost_per_mwh(scen, fleet, run_uncontrolled(fleet).soc_pu)
    assert c.per_ev_per_mwh.shape == (60,) and np.all(np.isfinite(c.per_ev_per_mwh))
    assert np.all(c.per_ev_per_mwh >= 0)
    chem = np.asarray(c.chemistry)
    assert (chem == "lfp").sum() == 30  # round(0.5 x 60)
    s = c.summary()
    assert s["cost_median_by_chemistry_per_mwh"]["nmc"] > s["cost_median_by_chemistry_per_mwh"]["lfp"]


def test_assign_chemistry_share() -> None:
    chem = assign_chemistry(1000, 0.3, 7)
    assert chem.count("lfp") == 300 and chem.count("nmc") == 700


def test_schedule_discharges_only_below_the_threshold() -> None:
    # Two steps of 1 h, prices 200 then 20 per MWh; each EV may discharge at step 0 and recharge at step 1.
    # Discharging 1 kWh (battery 1/eta_d) and recharging it costs (20 / (eta_c eta_d)) / 1000 per kWh sold,
    # earns (200 - deg) / 1000: it pays iff deg < 200 - 20 / 0.95^2 = 177.84 per MWh.
    threshold = 200.0 - 20.0 / 0.95**2
    n = 2
    f = Fleet(
        capacity_kwh=np.full(n, 60.0),
        soc0_pu=np.full(n, 0.5),
        soc_target_pu=np.full(n, 0.5),
        soc_min_pu=np.full(n, 0.2),
        soc_max_pu=np.full(n, 1.0),
        p_charge_max_kw=np.full(n, 7.2),
        p_discharge_max_kw=np.full(n, 7.2),
        eta_charge=np.full(n, 0.95),
        eta_discharge=np.full(n, 0.95),
        arrival_step=np.zeros(n, int),
        departure_step=np.full(n, 2),
        bus=np.ones(n, int),
        kind=np.zeros(n, int),
        dt_s=3600.0,
        n_steps=2,
    )
    r = solve_fleet_schedule(f, [200.0, 20.0], degradation_per_mwh=[threshold - 5.0, threshold + 5.0])
    # Below the threshold it discharges as much as step 1 can put back: 7.2 x 0.95 kWh stored, 0.95 of it sold.
    assert r.p_kw[0, 0] == pytest.approx(-7.2 * 0.95**2, abs=1e-5)
    assert r.p_kw[0, 1] == pytest.approx(0.0, abs=1e-5)  # above: idles
    with pytest.raises(DataError, match="degradation_per_mwh"):
        solve_fleet_schedule(f, [200.0, 20.0], degradation_per_mwh=[1.0, 2.0, 3.0])
    with pytest.raises(DataError, match="degradation_per_mwh"):
        solve_fleet_schedule(f, [200.0, 20.0], degradation_per_mwh=[-1.0, 2.0])


def test_bid_prices_battery_wear_as_a_newsvendor() -> None:
    # Normal availability N(1000, 200) kW; p = 30, lambda = 60 per MW-h; wear c = deg x u per kW-h.
    # Profit p b - lambda E(b-A)+ - c E min(b, A) = (p - c) b - (lambda - c) E(b-A)+: fractile (p-c)/(p+lambda-2c).
    scen = Scenario(markets={"reg_price_per_mw": 30.0, "reg_penalty_per_mw": 60.0})
    av = Availability("normal", mean_kw=1000.0, sd_kw=200.0)
    b0 = run_bid_analysis(scen, av)
    b = run_bid_analysis(scen, av, degradation_per_mwh=40.0)
    c = 40.0 * b.reg_discharge_kwh_per_kw_h  # per MW-h
    assert 0.0 < b.reg_discharge_kwh_per_kw_h < 0.5  # a zero-mean signal in [-1, 1] discharges under half the time
    q = (30.0 - c) / (30.0 + 60.0 - 2 * c)
    assert b.bid.fractile == pytest.approx(q, rel=1e-9)
    assert b.bid.bid_kw == pytest.approx(1000.0 + 200.0 * stats.norm.ppf(q), rel=1e-6)
    assert b.bid.bid_kw < b0.bid.bid_kw
    with pytest.raises(DataError, match="reg_price_per_mw"):
        run_bid_analysis(scen, av, degradation_per_mwh=1e6)


def test_lfp_cost_of_a_probe_on_a_parked_day_matches_the_closed_form() -> None:
    # A parked day (SoC 0.5, no cycling of its own) plus the probe: 6 kWh on 60 kWh, a sampled sine of amplitude
    # 0.05 pu (a sample on each peak): DoD 0.1, sum |dSoC| = 4 x 0.05 = 0.2, so 0.1 equivalent full cycles a day.
    # Gasper et al. (2022) cycle law (BLAST-Lite 1.1.1 parameters, lfp.PARAMS): q_cyc = (q5 EFC)^q6 with
    # q5 = |b0 + b1 DoD + b2 exp(DoD^2 C^3)| (C ~ 0.013/h: the exponential is 1 to 1e-8).
    from v2gtwin.battery.lfp import PARAMS as P

    q5 = abs(P["q5_b0"] + P["q5_b1"] * 0.1 + P["q5_b2"])
    q_cyc = (q5 * 0.1 * 365) ** P["q6"]
    expected_per_kwh = q_cyc / (6.0 * 365) * 60.0 * 100.0 / 0.2
    f = one_ev(soc0_pu=0.5, soc_target_pu=0.5)
    duty = np.full((1, 96), 0.5)
    probe, _ = add_v2g_probe(duty, f, 6.0)
    got = calc_marginal_cost_per_kwh(
        duty, 0.25, 25.0, "lfp", [60.0], probe, 6.0, years=1, replacement_cost_per_kwh=100.0, eol_fade_pu=0.2
    )[0]
    # Within 6 %: the model scales each day's cycles by the capacity left (about 97 % over the first year of
    # calendar loss at 25 degC, 0.97^1.13 = 0.966), which the closed form leaves out.
    assert got == pytest.approx(expected_per_kwh, rel=0.06)
    assert got < expected_per_kwh  # and that scaling only lowers it
