"""The scenario glue of markets/analysis.py against hand-computed cases: a sign, unit or index error between the
scenario and a model fails one of these."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import BaseModel
from scipy import stats

from v2gtwin.errors import ScenarioError
from v2gtwin.fleet import Fleet, synthesize_fleet
from v2gtwin.markets.analysis import (
    calc_charging_followers,
    calc_discharge_followers,
    calc_market_demand,
    calc_regulation_headroom_kw,
    calc_v2g_offer,
    run_bid_analysis,
    run_market_analysis,
    run_stackelberg_analysis,
    summarize_bid,
    summarize_market,
    summarize_stackelberg,
)
from v2gtwin.markets.newsvendor import Availability
from v2gtwin.scenario import MarketsSpec, Scenario, TimeGrid

# Hourly grid from noon: step k starts at (12 + k) h.
HOURLY = TimeGrid(dt_s=3600.0, n_steps=24, start_hour=12.0)


def hand_fleet() -> Fleet:
    """Four EVs around the 18:00 step (step 6 of HOURLY).

    A: plugged 0..9, V2G 7 kW, 60 kWh, target 0.8, ceiling 1.0 -> 12 kWh above its target.
    B: plugged 7..19 (arrives one step after 18:00), V2G 11 kW, 40 kWh, 0.5 -> 0.9 ceiling -> 16 kWh.
    C: plugged 2..5 (leaves at the 18:00 step), no V2G, 50 kWh, 0.6 -> 1.0 -> 20 kWh (not V2G: not offered).
    D: plugged 6 only, V2G 5 kW, 20 kWh, target at the ceiling -> nothing above its target.
    """
    return Fleet(
        capacity_kwh=np.array([60.0, 40.0, 50.0, 20.0]),
        soc0_pu=np.array([0.2, 0.6, 0.5, 0.3]),
        soc_target_pu=np.array([0.8, 0.5, 0.6, 1.0]),
        soc_min_pu=np.array([0.1, 0.1, 0.1, 0.1]),
        soc_max_pu=np.array([1.0, 0.9, 1.0, 1.0]),
        p_charge_max_kw=np.array([7.2, 11.0, 3.7, 6.0]),
        p_discharge_max_kw=np.array([7.0, 11.0, 0.0, 5.0]),
        eta_charge=np.array([0.95, 0.9, 0.9, 1.0]),
        eta_discharge=np.array([0.95, 0.9, 0.9, 0.8]),
        arrival_step=np.array([0, 7, 2, 6]),
        departure_step=np.array([10, 20, 6, 7]),
        bus=np.array([1, 1, 1, 1]),
        kind=np.array([0, 0, 0, 1]),
        dt_s=3600.0,
        n_steps=24,
    )


def test_v2g_offer_by_hand() -> None:
    spec = MarketsSpec(v2g_share=0.5, v2g_energy_share=0.3, v2g_offer_hour=18.0)
    p_kw, e_kwh = calc_v2g_offer(hand_fleet(), spec, HOURLY)
    # 18:00 is step 6: A (0 <= 6 < 10) and D (6 <= 6 < 7) are plugged, B (arrives 7) and C (left at 6) not.
    # P = 0.5 x (7 + 5) = 6 kW (step 7 would give 0.5 x (7 + 11) = 9, step 5 0.5 x 7 = 3.5).
    assert p_kw == pytest.approx(6.0, abs=1e-12)
    # Energy: V2G EVs only, (ceiling - target) x capacity: A 12, B 16, D 0 -> 0.3 x 28 = 8.4 kWh.
    assert e_kwh == pytest.approx(8.4, abs=1e-12)
    # 19:00 is step 7: A and B plugged -> 0.5 x 18 = 9 kW.
    assert calc_v2g_offer(hand_fleet(), spec.model_copy(update={"v2g_offer_hour": 19.0}), HOURLY)[0] == 9.0


def test_v2g_offer_hour_outside_the_horizon_is_an_error() -> None:
    short = TimeGrid(dt_s=3600.0, n_steps=4, start_hour=12.0)  # 12:00-16:00
    with pytest.raises(ScenarioError, match=r"markets\.v2g_offer_hour = 18 h lies outside the horizon"):
        calc_v2g_offer(hand_fleet(), MarketsSpec(), short)


def test_market_demand_passes_through_the_reference_point_with_its_elasticity() -> None:
    # IEEE RTS-79 (IEEE Trans. PAS-98(6), 1979) winter weekday hourly load, % of peak, typed here independently.
    rts = np.array([67, 63, 60, 59, 59, 60, 74, 86, 95, 96, 96, 95, 95, 95, 93, 94, 99, 100, 100, 96, 91, 83, 73, 63])
    for kind in ("linear", "constant_elasticity"):
        spec = MarketsSpec(peak_demand_mw=50.0, p_ref_per_mwh=80.0, elasticity=-0.25, demand_kind=kind)
        d = calc_market_demand(spec)
        q_ref = 50_000.0 * rts / 100.0
        np.testing.assert_allclose(d.quantity_kw(np.full(24, 80.0)), q_ref, rtol=1e-12)
        # Point elasticity (dq/dp) p / q at the reference point, by central differences.
        h = 1e-4
        slope = (d.quantity_kw(np.full(24, 80.0 + h)) - d.quantity_kw(np.full(24, 80.0 - h))) / (2 * h)
        np.testing.assert_allclose(slope * 80.0 / q_ref, -0.25, rtol=1e-6)


def test_market_analysis_wires_the_offer_and_the_tou_block() -> None:
    spec = MarketsSpec(tou_peak_start_hour=16, tou_peak_end_hour=21, v2g_share=0.5, v2g_energy_share=0.3)
    m = run_market_analysis(hand_fleet(), None, spec, HOURLY)  # type: ignore[arg-type]
    assert m["supply"].v2g_p_max_kw == pytest.approx(6.0)
    assert m["supply"].v2g_energy_kwh == pytest.approx(8.4)
    assert m["supply"].v2g_cost_per_mwh == spec.degradation_per_mwh
    # Market hours 16..20 form the peak block: one TOU price there, another in every other hour.
    tou = m["tou"].price_per_mwh
    assert np.ptp(tou[16:21]) == 0 and np.ptp(np.r_[tou[:16], tou[21:]]) == 0 and tou[16] != tou[15]
    s = summarize_market(m)
    assert s["rtp"]["welfare_per_day"] == m["rtp"].welfare
    assert s["deadweight_loss_per_day"] == pytest.approx(m["rtp"].welfare - m["tou"].welfare)
    assert s["v2g_offer_hour"] == 18.0 and s["v2g_offer_kw"] == pytest.approx(6.0)


def test_charging_followers_by_hand() -> None:
    spec = MarketsSpec(charging_cost_per_kwh=0.1)
    a, b, xm = calc_charging_followers(hand_fleet(), spec, np.random.default_rng(0))
    # Grid-side need (target - soc0) x capacity / eta_charge: A (0.8 - 0.2) 60 / 0.95 = 37.8947 kWh;
    # B above its target, C (0.6 - 0.5) 50 / 0.9 = 5.5556, D (1.0 - 0.3) 20 / 1.0 = 14.
    np.testing.assert_allclose(xm, [36.0 / 0.95, 5.0 / 0.9, 14.0], rtol=1e-12)
    assert np.all((a >= 0.2) & (a <= 0.45))  # U(1.5 c + 0.05, 3 c + 0.15)
    # Each wants its whole need at a price of about the cost: (alpha - c) / beta in [x_max / 1.4, x_max / 0.6].
    want = (a - 0.1) / b
    assert np.all((want >= xm / 1.4 - 1e-9) & (want <= xm / 0.6 + 1e-9))


def test_discharge_followers_by_hand() -> None:
    spec = MarketsSpec(discharge_value_per_kwh=0.2, degradation_per_mwh=30.0)
    r, g, ym = calc_discharge_followers(hand_fleet(), spec, np.random.default_rng(0))
    # V2G EVs with energy above their targets, after discharge losses: A 12 x 0.95 = 11.4, B 16 x 0.9 = 14.4;
    # C is not V2G-capable, D has none.
    np.testing.assert_allclose(ym, [11.4, 14.4], rtol=1e-12)
    assert np.all((r >= 0.04) & (r <= 0.12))  # U(0.2 v, 0.6 v)
    # At the value v each offers about its whole energy: (v - r - d) / gamma in [y_max / 1.4, y_max / 0.6].
    offer = (0.2 - r - 0.03) / g
    assert np.all((offer >= ym / 1.4 - 1e-9) & (offer <= ym / 0.6 + 1e-9))


def _brute_force_margin(energy_kwh: np.ndarray, margin: np.ndarray, cap: float) -> float:
    ok = energy_kwh <= cap
    return float((margin * energy_kwh)[ok].max())


def test_stackelberg_analysis_caps_and_costs_by_hand() -> None:
    # The followers of the glue (same seeds), the game solved by brute force written here: a sign error in the
    # cost, a wrong cap or a swapped direction changes the optimum.
    scen = Scenario(fleet={"n_evs": 60}, markets={"x_cap_share": 0.5, "discharge_cap_share": 0.5})
    fleet = synthesize_fleet(scen.fleet, scen.time, scen.feeder.n_bus, np.random.default_rng(1))
    st = run_stackelberg_analysis(fleet, scen.markets, seed=7)
    pi = np.linspace(0.0, 1.0, 200_001)
    a, b, xm = calc_charging_followers(fleet, scen.markets, np.random.default_rng([7, 21]))
    c = scen.markets.charging_cost_per_kwh
    x = np.minimum(np.maximum((a[None, :] - pi[:, None]) / b[None, :], 0.0), xm[None, :]).sum(axis=1)
    x_at_cost = np.minimum(np.maximum((a - c) / b, 0.0), xm).sum()
    best = _brute_force_margin(x, pi - c, 0.5 * x_at_cost)
    # On a grid of step 5e-6 the brute force is at most (energy x step) below the exact optimum.
    assert best - 1e-9 <= st.charge.profit <= best + x.max() * 5e-6
    assert st.charge.energy_kwh <= 0.5 * x_at_cost + 1e-6
    r, g, ym = calc_discharge_followers(fleet, scen.markets, np.random.default_rng([7, 22]))
    v, d = scen.markets.discharge_value_per_kwh, scen.markets.degradation_per_mwh / 1000.0
    y = np.minimum(np.maximum((pi[:, None] - r[None, :] - d) / g[None, :], 0.0), ym[None, :]).sum(axis=1)
    y_at_value = np.minimum(np.maximum((v - r - d) / g, 0.0), ym).sum()
    best_d = _brute_force_margin(y, v - pi, 0.5 * y_at_value)
    assert best_d - 1e-9 <= st.discharge.profit <= best_d + y.max() * 5e-6
    assert st.discharge.energy_kwh <= 0.5 * y_at_value + 1e-6
    assert 0 < st.discharge.price_per_kwh < v
    s = summarize_stackelberg(st)
    assert set(s) == {"charge", "discharge"}
    assert s["discharge"]["profit_per_day"] == st.discharge.profit


def test_regulation_headroom_by_hand() -> None:
    f = hand_fleet()
    # Step 6: A min(7.2, 7) = 7 and D min(6, 5) = 5 -> 12 kW. Step 7: A 7 and B min(11, 11) = 11 -> 18 kW.
    # Step 3: A 7 and C min(3.7, 0) = 0 -> 7 kW.
    assert calc_regulation_headroom_kw(f, 6) == pytest.approx(12.0)
    assert calc_regulation_headroom_kw(f, 7) == pytest.approx(18.0)
    assert calc_regulation_headroom_kw(f, 3) == pytest.approx(7.0)


def test_bid_on_simulated_days_uses_the_event_hour() -> None:
    scen = Scenario(
        fleet={"n_evs": 80},
        time={"dt_s": 3600.0, "n_steps": 24, "start_hour": 12.0},
        frequency={"event_hour": 19.0},
        markets={"bid_days": 5},
    )
    b = run_bid_analysis(scen)
    # 19:00 is step 7 of an hourly grid from noon; headroom summed here from each seeded day's fleet.
    expected = []
    for day in range(5):
        f = synthesize_fleet(scen.fleet, scen.time, scen.feeder.n_bus, np.random.default_rng([scen.seed, 31, day]))
        on = (f.arrival_step <= 7) & (f.departure_step > 7)
        expected.append(np.minimum(f.p_charge_max_kw, f.p_discharge_max_kw)[on].sum())
    np.testing.assert_allclose(b.samples_kw, expected, rtol=1e-12)
    s = summarize_bid(b)
    assert s["event_hour"] == 19.0 and s["n_days"] == 5 and s["availability_kind"] == "empirical"
    short_grid = {"time": TimeGrid(dt_s=3600.0, n_steps=6, start_hour=12.0)}
    # Deriving the scenario already refuses the clock field outside the horizon ...
    with pytest.raises(ScenarioError, match=r"frequency\.event_hour = 19 h lies outside the horizon"):
        scen.model_copy(update=short_grid)
    # ... and the run checks again when handed an unvalidated copy (pydantic's model_copy, no validation).
    short = BaseModel.model_copy(scen, update=short_grid)
    with pytest.raises(ScenarioError, match=r"frequency\.event_hour = 19 h lies outside the horizon"):
        run_bid_analysis(short)


def test_bid_with_a_given_normal_availability_in_currency_per_hour() -> None:
    # Price 30 and penalty 60 per MW and hour, A ~ N(1500, 300) kW. Fractile 30 / 90 = 1/3; b* = mu + sd z with
    # z = Phi^-1(1/3). E[(b - A)^+] = sd (z Phi(z) + phi(z)); profit = p (b - short) - lambda short with
    # p = 0.030 and lambda = 0.060 per kW and hour.
    scen = Scenario(markets={"reg_price_per_mw": 30.0, "reg_penalty_per_mw": 60.0})
    b = run_bid_analysis(scen, Availability("normal", mean_kw=1500.0, sd_kw=300.0))
    z = stats.norm.ppf(1 / 3)
    bid = 1500.0 + 300.0 * z
    short = 300.0 * (z * stats.norm.cdf(z) + stats.norm.pdf(z))
    s = summarize_bid(b)
    assert s["bid_kw"] == pytest.approx(bid, rel=1e-9)
    assert s["expected_profit_per_h"] == pytest.approx(0.030 * (bid - short) - 0.060 * short, rel=1e-6)
    assert s["n_days"] is None and s["event_hour"] is None and s["bid_normal_fit_kw"] is None
    assert s["availability_mean_kw"] == pytest.approx(1500.0) and s["availability_sd_kw"] == pytest.approx(300.0)


def test_money_keys_name_their_period() -> None:
    scen = Scenario(fleet={"n_evs": 60}, markets={"bid_days": 5})
    fleet = synthesize_fleet(scen.fleet, scen.time, scen.feeder.n_bus, np.random.default_rng(1))
    summaries = [
        summarize_market(run_market_analysis(fleet, None, scen.markets, scen.time)),  # type: ignore[arg-type]
        summarize_stackelberg(run_stackelberg_analysis(fleet, scen.markets, scen.seed)),
        summarize_bid(run_bid_analysis(scen)),
    ]
    money = ("surplus", "welfare", "profit", "deadweight", "cost")

    def keys(d: dict) -> list[str]:  # type: ignore[type-arg]
        out = []
        for k, v in d.items():
            out += [k, *(keys(v) if isinstance(v, dict) else [])]
        return out

    for s in summaries:
        for k in keys(s):
            if any(w in k for w in money):
                assert k.endswith(("_per_day", "_per_h")), k


def test_stackelberg_without_v2g_evs_reports_no_trade() -> None:
    # No V2G-capable EV: no discharge follower, so no buy-back trade, named in the output (not an error that
    # stops the study, not a made-up price).
    scen = Scenario(fleet={"n_evs": 40, "v2g_share": 0.0})
    fleet = synthesize_fleet(scen.fleet, scen.time, scen.feeder.n_bus, np.random.default_rng(1))
    assert not np.any(fleet.p_discharge_max_kw > 0)
    s = summarize_stackelberg(run_stackelberg_analysis(fleet, scen.markets, seed=3))
    assert s["discharge"]["price_per_kwh"] is None and s["discharge"]["energy_kwh"] == 0.0
    assert "no V2G-capable EV" in s["discharge"]["no_trade"]
    assert s["charge"]["no_trade"] is None and s["charge"]["n_followers"] > 0
