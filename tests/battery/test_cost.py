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


def _parked_lfp(years: int) -> tuple[Scenario, Fleet, np.ndarray]:
    scen = Scenario(
        battery={
            "lfp_share": 1.0,
            "years": years,
            "replacement_cost_per_kwh": 100.0,
            "eol_fade_pu": 0.2,
            "v2g_probe_kwh": 6.0,
            "temp_c": 25.0,
        }
    )
    f = one_ev(soc0_pu=0.5, soc_target_pu=0.5)
    return scen, f, np.full((97, 1), 0.5)  # plugged in all day at 0.5: the duty cycle is flat


def test_fleet_cost_per_mwh_is_the_closed_form_over_the_years() -> None:
    # One parked LFP EV, years = 2: all its cycle ageing is the probe's 0.1 EFC a day at DoD 0.1 (see the test
    # above), so over 2 years q_cyc = (q5 x 0.1 x 365 x 2)^q6 and the cost per MWh is
    # 1000 x q_cyc / (6 kWh x 365 x 2) x 60 kWh x 100 per kWh / 0.2. Mutations caught: dropping `* years` from
    # the energy (cost x2), per-kWh -> per-MWh factor 100 instead of 1000 (cost / 10).
    from v2gtwin.battery.lfp import PARAMS as P

    scen, f, soc = _parked_lfp(2)
    q5 = abs(P["q5_b0"] + P["q5_b1"] * 0.1 + P["q5_b2"])
    expected = 1000.0 * (q5 * 0.1 * 365 * 2) ** P["q6"] / (6.0 * 365 * 2) * 60.0 * 100.0 / 0.2
    c = degradation_cost_per_mwh(scen, f, soc)
    assert c.source == "model" and c.n_probed == 1
    # Within 7 %, and below: the model scales each day's cycles by the capacity left (calendar loss ~3-5 % at
    # 25 degC over 2 years), which the closed form leaves out.
    assert 0.93 * expected < c.per_ev_per_mwh[0] < expected
    # The table's (lfp, 25 degC) row is this EV's own day (the LFP median day of a one-EV fleet): the same cost.
    row = {(r["chemistry"], r["temp_c"]): r for r in c.table}
    assert row[("lfp", 25.0)]["cost_per_mwh"] == pytest.approx(c.per_ev_per_mwh[0], rel=1e-12)
    assert ("nmc", 25.0) not in row  # no NMC EV: no NMC day to price
    # Each row at its own temperature (mutation: every row at 25 degC): at 45 degC the calendar loss is larger,
    # so less capacity is left, the same SoC swing moves less charge and the cycle loss is smaller.
    assert row[("lfp", 45.0)]["cost_per_mwh"] < row[("lfp", 25.0)]["cost_per_mwh"]


def test_cost_is_averaged_over_the_battery_life_only() -> None:
    # A hot NMC EV (60 degC): calendar alone passes 20 % in year 1 (alpha_cap ~ 2.4e-3/day^0.75 x 365^0.75 ~
    # 0.2-0.3), so its life is 1 year and its cost must be the 1-year cost whatever `years` says.
    f = one_ev(soc0_pu=0.5, soc_target_pu=0.5)
    duty = np.full((1, 96), 0.5)
    probe, _ = add_v2g_probe(duty, f, 6.0)
    kw = dict(replacement_cost_per_kwh=100.0, eol_fade_pu=0.2)
    one = calc_marginal_cost_per_kwh(duty, 0.25, 60.0, "nmc", [60.0], probe, 6.0, years=1, **kw)[0]
    ten = calc_marginal_cost_per_kwh(duty, 0.25, 60.0, "nmc", [60.0], probe, 6.0, years=10, **kw)[0]
    assert ten == pytest.approx(one, rel=1e-12)
    # At 25 degC the battery lasts the 10 years: the 10-year average differs from the 1-year one.
    one25 = calc_marginal_cost_per_kwh(duty, 0.25, 25.0, "nmc", [60.0], probe, 6.0, years=1, **kw)[0]
    ten25 = calc_marginal_cost_per_kwh(duty, 0.25, 25.0, "nmc", [60.0], probe, 6.0, years=10, **kw)[0]
    assert ten25 < one25  # sqrt(Q) law: the average marginal cost falls with throughput


def test_no_ev_with_room_says_flat() -> None:
    # A 100 kWh probe on a 60 kWh battery leaves 0-1 for every EV: no EV is priced by the models.
    scen = Scenario(battery={"v2g_probe_kwh": 100.0})
    f = one_ev(soc0_pu=0.5, soc_target_pu=0.5)
    c = degradation_cost_per_mwh(scen, f, np.full((97, 1), 0.5))
    assert c.source == "flat (no EV had room)" and c.n_probed == 0
    assert c.per_ev_per_mwh[0] == scen.markets.degradation_per_mwh


def _default_fleet(n: int, lfp_share: float) -> tuple[Scenario, Fleet, np.ndarray]:
    from v2gtwin.study import build_fleet

    scen = Scenario(fleet={"n_evs": n}, battery={"lfp_share": lfp_share})
    fleet = build_fleet(scen)
    return scen, fleet, run_uncontrolled(fleet).soc_pu


def test_negative_costs_are_clamped_to_zero_and_named() -> None:
    # Independent reference: the raw marginal cost of each probed EV (calc_marginal_cost_per_kwh directly).
    # Mutation caught: np.abs instead of the clamp (a negative cost would become positive, not 0).
    scen, fleet, soc = _default_fleet(200, 1.0)
    spec = scen.battery
    duty = calc_daily_duty_soc(fleet, soc)
    probe, ok = add_v2g_probe(duty, fleet, spec.v2g_probe_kwh)
    idx = np.flatnonzero(ok)
    raw = 1000.0 * calc_marginal_cost_per_kwh(
        duty[idx], fleet.dt_h, spec.temp_c, "lfp", fleet.capacity_kwh[idx], probe[idx], spec.v2g_probe_kwh,
        years=spec.years, replacement_cost_per_kwh=spec.replacement_cost_per_kwh, eol_fade_pu=spec.eol_fade_pu,
    )  # fmt: skip
    assert np.any(raw < 0)  # the case exercises the clamp
    c = degradation_cost_per_mwh(scen, fleet, soc)
    np.testing.assert_allclose(c.per_ev_per_mwh[idx], np.maximum(raw, 0.0), rtol=1e-12)
    assert any(f"{int((raw < 0).sum())} EVs ({int((raw < 0).sum())} LFP) have a negative" in n for n in c.notes)


def test_evs_without_room_take_their_own_chemistry_median_and_table_per_chemistry() -> None:
    # EVs the probe cannot fit take the median of the probed EVs of their own chemistry (NMC and LFP costs
    # differ by an order of magnitude, so a mixed median would be wrong for one of them); each chemistry's table
    # row at the scenario's temperature is the cost of that chemistry's median probed EV (upper median).
    scen, fleet, soc = _default_fleet(120, 0.5)
    spec = scen.battery
    c = degradation_cost_per_mwh(scen, fleet, soc)
    chem = np.asarray(c.chemistry)
    _, ok = add_v2g_probe(calc_daily_duty_soc(fleet, soc), fleet, spec.v2g_probe_kwh)
    assert np.any(~ok)  # the default fleet has EVs without room
    row = {(r["chemistry"], r["temp_c"]): r["cost_per_mwh"] for r in c.table}
    for k in ("nmc", "lfp"):
        own = c.per_ev_per_mwh[ok & (chem == k)]
        assert own.size > 0
        if np.any(~ok & (chem == k)):
            np.testing.assert_allclose(c.per_ev_per_mwh[~ok & (chem == k)], np.median(own), rtol=1e-12)
        assert row[(k, spec.temp_c)] == pytest.approx(np.sort(own)[own.size // 2], rel=1e-9, abs=1e-9)


def test_cost_in_blocks_of_evs_equals_each_ev_costed_alone() -> None:
    # Reference: each probed EV costed on its own (a one-EV fleet through calc_daily_duty_soc, add_v2g_probe and
    # calc_marginal_cost_per_kwh), against the fleet costed 7 EVs at a time (blocks that split the fleet
    # unevenly: 7, 7, 7, 7, 2) and in one block.
    scen = Scenario(fleet={"n_evs": 30}, battery={"lfp_share": 0.5})
    from v2gtwin.study import build_fleet

    fleet = build_fleet(scen)
    soc = run_uncontrolled(fleet).soc_pu
    spec = scen.battery
    blocks = degradation_cost_per_mwh(scen, fleet, soc, chunk_evs=7)
    whole = degradation_cost_per_mwh(scen, fleet, soc, chunk_evs=10**6)
    np.testing.assert_allclose(blocks.per_ev_per_mwh, whole.per_ev_per_mwh, rtol=1e-12)
    assert blocks.n_probed == whole.n_probed > 0
    n_alone = 0
    for i in range(fleet.n):
        one = fleet.subset([i])
        duty = calc_daily_duty_soc(one, soc[:, i : i + 1])
        probe, ok = add_v2g_probe(duty, one, spec.v2g_probe_kwh)
        if not ok[0]:
            continue
        c_kwh = calc_marginal_cost_per_kwh(
            duty,
            fleet.dt_h,
            spec.temp_c,
            blocks.chemistry[i],
            one.capacity_kwh,
            probe,
            spec.v2g_probe_kwh,
            years=spec.years,
            replacement_cost_per_kwh=spec.replacement_cost_per_kwh,
            eol_fade_pu=spec.eol_fade_pu,
        )
        assert blocks.per_ev_per_mwh[i] == pytest.approx(max(0.0, 1000.0 * float(c_kwh[0])), rel=1e-12)
        n_alone += 1
    assert n_alone == blocks.n_probed
    with pytest.raises(DataError, match="chunk_evs"):
        degradation_cost_per_mwh(scen, fleet, soc, chunk_evs=0)
