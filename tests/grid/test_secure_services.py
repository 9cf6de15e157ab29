"""Every service within the network: reserve, DR, regulation range, V2G offer and bid with hand-built envelopes.

Each expectation is a closed form of the per-bus rule (grid/secure.py) on a case small enough to work by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from tests.fleets import one_ev
from v2gtwin.fleet import Fleet, run_uncontrolled, synthesize_fleet
from v2gtwin.grid.bulk import run_agc_analysis, summarize_agc, summarize_dr, summarize_reserve
from v2gtwin.grid.secure import NetworkLimits, build_network_limits
from v2gtwin.grid.services import run_demand_response, run_reserve
from v2gtwin.markets.analysis import (
    calc_regulation_headroom_kw,
    calc_v2g_offer,
    run_bid_analysis,
    run_market_analysis,
    summarize_bid,
    summarize_market,
)
from v2gtwin.scenario import Scenario


@dataclass(frozen=True)
class Env:
    feeder_name: str
    rule: str
    p_import_max_kw: np.ndarray
    p_export_max_kw: np.ndarray


def _limits(n_steps: int, imp: list[float], exp: list[float], ev_bus: list[int]) -> NetworkLimits:
    env = Env("F", "equal_per_ev", np.tile(imp, (n_steps, 1)), np.tile(exp, (n_steps, 1)))
    return build_network_limits([env], np.zeros(len(ev_bus), dtype=int), ev_bus)


def test_reserve_export_limit_one_ev() -> None:
    # One EV, 0.5 -> 0.8 pu of 60 kWh, 7.2 kW both ways, plugged all day: it charges at 7.2 kW for the first
    # steps, and its reserve r (stop charging, then discharge) is up to 14.4 kW. With an export limit E = 2 kW
    # at its bus and no import limit, the bus may go from p0 down to -2 kW: secure = min(r, p0 + 2).
    fleet = one_ev(soc0_pu=0.5)
    base = run_uncontrolled(fleet)
    free = run_reserve(fleet, base, lead_s=600.0, duration_s=1800.0)
    res = run_reserve(fleet, base, lead_s=600.0, duration_s=1800.0, limits=_limits(96, [1e6], [2.0], [0]))
    np.testing.assert_allclose(res.reserve_kw, free.reserve_kw)  # the unconstrained figure does not change
    k = (np.arange(96) * 900 + 600) // 900  # step holding each window's start
    p0 = base.p_kw[np.minimum(k, 95), 0]
    expected = np.minimum(free.reserve_kw, np.where(free.reserve_kw > 0, p0 + 2.0, 0.0))
    assert res.reserve_secure_kw is not None
    np.testing.assert_allclose(res.reserve_secure_kw, expected, atol=1e-9)
    assert free.reserve_kw.max() == pytest.approx(14.4)  # baseline 7.2 + full discharge 7.2
    assert res.reserve_secure_kw.max() == pytest.approx(9.2)  # 7.2 stopped + 2 exported
    s = summarize_reserve(res)
    assert s["max_secure_kw"] == pytest.approx(9.2)
    assert s["max_network_gap_kw"] == pytest.approx(14.4 - 9.2)
    # The mean over every start step of the same closed form (the windows past the horizon count 0 in both).
    assert s["mean_secure_kw"] == pytest.approx(expected.mean(), abs=1e-12)
    assert s["mean_secure_kw"] < s["mean_kw"] == pytest.approx(free.reserve_kw.mean())
    assert "max_secure_kw" not in summarize_reserve(free)  # without limits nothing changes


def test_dr_secure_power_closed_forms() -> None:
    fleet = one_ev(soc0_pu=0.5)
    free = run_demand_response(fleet, 0, 2, 20)
    # (a) export limit 0, no import limit: the bus never exports; increases pass -> p_sec = max(p_dr, 0).
    a = run_demand_response(fleet, 0, 2, 20, limits=_limits(96, [1e6], [0.0], [0]))
    assert a.p_dr_secure_kw is not None
    want_a = np.maximum(free.p_dr_kw, 0.0)
    np.testing.assert_allclose(a.p_dr_secure_kw, want_a, atol=1e-9)
    # The event's figures from the clipped power (event steps 2-19): the discharge is cut, so less reduction.
    ev = slice(2, 20)
    sa = summarize_dr(a)
    base_ev = free.p_baseline_kw[ev]
    assert sa["reduction_mean_secure_kw"] == pytest.approx((base_ev - want_a[ev]).mean(), abs=1e-9)
    assert sa["peak_reduction_secure_kw"] == pytest.approx(base_ev.max() - want_a[ev].max(), abs=1e-9)
    assert sa["reduction_mean_secure_kw"] < sa["reduction_mean_kw"]
    # (b) import limit 3 kW, no export limit: an increase stops at max(3, baseline) (a bus charging 7.2 kW in
    # the baseline is already above 3: it may not rise further, but it may come down).
    b = run_demand_response(fleet, 0, 2, 20, limits=_limits(96, [3.0], [1e6], [0]))
    up = free.p_dr_kw > free.p_baseline_kw
    want = np.where(up, np.maximum(free.p_baseline_kw, np.minimum(free.p_dr_kw, 3.0)), free.p_dr_kw)
    assert b.p_dr_secure_kw is not None
    np.testing.assert_allclose(b.p_dr_secure_kw, want, atol=1e-9)
    sb = summarize_dr(b)
    assert sb["reduction_mean_secure_kw"] == pytest.approx((base_ev - want[ev]).mean(), abs=1e-9)
    assert sb["peak_reduction_secure_kw"] == pytest.approx(base_ev.max() - want[ev].max(), abs=1e-9)
    # The rebound after the event (7.2 kW from a baseline already done charging) is cut to 3 kW.
    assert free.rebound_peak_kw == pytest.approx(7.2)
    assert b.rebound_peak_secure_kw == pytest.approx(3.0)
    s = summarize_dr(b)
    assert s["rebound_peak_network_gap_kw"] == pytest.approx(4.2)
    # (c) a two-step event (steps 2-3) in which the EV, charging 7.2 kW in the baseline, discharges 7.2 kW;
    # export limit 2 kW: the bus goes down to -2 kW only. Reduction unconstrained 7.2 + 7.2 = 14.4 kW at both
    # steps, network-secure 7.2 + 2 = 9.2 kW (mean and peak alike).
    free_c = run_demand_response(fleet, 0, 2, 4)
    c = summarize_dr(run_demand_response(fleet, 0, 2, 4, limits=_limits(96, [1e6], [2.0], [0])))
    assert free_c.p_baseline_kw[2:4] == pytest.approx([7.2, 7.2]) and free_c.p_dr_kw[2:4] == pytest.approx([-7.2, -7.2])
    assert c["peak_reduction_kw"] == pytest.approx(14.4) and c["reduction_mean_kw"] == pytest.approx(14.4)
    assert c["peak_reduction_secure_kw"] == pytest.approx(9.2)
    assert c["reduction_mean_secure_kw"] == pytest.approx(9.2)
    assert "secure_rule" in s and "secure_rule" not in summarize_dr(free)


def _two_bus_fleet() -> Fleet:
    # Three V2G EVs plugged all day: two on bus 0 (7.2 and 11 kW discharge), one on bus 1 (7.2 kW).
    base = one_ev()
    return Fleet(
        **{
            k: np.repeat(getattr(base, k), 3)
            for k in (
                "capacity_kwh",
                "soc0_pu",
                "soc_target_pu",
                "soc_min_pu",
                "soc_max_pu",
                "p_charge_max_kw",
                "eta_charge",
                "eta_discharge",
                "arrival_step",
                "departure_step",
                "kind",
            )
        },
        p_discharge_max_kw=np.array([7.2, 11.0, 7.2]),
        bus=np.array([0, 0, 1]),
        dt_s=900.0,
        n_steps=96,
    )


def test_v2g_offer_secure_is_sum_of_bus_minimum() -> None:
    scen = Scenario()
    fleet = _two_bus_fleet()
    limits = _limits(96, [100.0, 100.0], [5.0, 50.0], [0, 0, 1])
    base = run_uncontrolled(fleet)
    market = run_market_analysis(fleet, base, scen.markets, scen.time, limits=limits)
    share = scen.markets.v2g_share
    offer, _ = calc_v2g_offer(fleet, scen.markets, scen.time)
    assert offer == pytest.approx(share * 25.4)
    # bus 0: min(share * 18.2, 5); bus 1: min(share * 7.2, 50).
    want = min(share * 18.2, 5.0) + min(share * 7.2, 50.0)
    s = summarize_market(market)
    assert s["v2g_offer_secure_kw"] == pytest.approx(want)
    assert s["v2g_offer_network_gap_kw"] == pytest.approx(share * 25.4 - want)
    assert "v2g_offer_secure_kw" not in summarize_market(run_market_analysis(fleet, base, scen.markets, scen.time))


def test_regulation_range_within_the_network() -> None:
    scen = Scenario(fleet={"n_evs": 200})
    rng = np.random.default_rng(3)
    fleet = synthesize_fleet(scen.fleet, scen.time, scen.feeder.n_bus, rng)
    base = run_uncontrolled(fleet)
    n_bus = scen.feeder.n_bus
    wide = _limits(scen.time.n_steps, [1e6] * n_bus, [1e6] * n_bus, list(fleet.bus))
    shut = _limits(scen.time.n_steps, [0.0] * n_bus, [0.0] * n_bus, list(fleet.bus))
    a = run_agc_analysis(fleet, base, scen.frequency, scen.time, scen.seed, limits=wide)
    assert a.fleet_range_secure_kw == pytest.approx(a.fleet_range_kw)  # envelopes never bind
    z = run_agc_analysis(fleet, base, scen.frequency, scen.time, scen.seed, limits=shut)
    # Envelopes of zero: a bus charging in the baseline may only come down to 0 and not rise, an idle bus may
    # do neither -> no EV can move both ways.
    assert z.fleet_range_secure_kw == 0.0 < z.fleet_range_kw
    s = summarize_agc(z)
    assert s["fleet_range_network_gap_kw"] == pytest.approx(z.fleet_range_kw)
    assert s["capacity_secure_kw"] == 0.0


def test_bid_secure_scales_with_the_bound() -> None:
    # A network that carries half of every day's headroom: the empirical quantile and the expected profit
    # (positively homogeneous in the availability) both halve.
    scen = Scenario(fleet={"n_evs": 60}, markets={"bid_days": 5})
    b = run_bid_analysis(scen, secure_headroom=lambda f, s: 0.5 * calc_regulation_headroom_kw(f, s))
    assert b.bid_secure is not None and b.samples_secure_kw is not None
    np.testing.assert_allclose(b.samples_secure_kw, 0.5 * b.samples_kw)
    assert b.bid_secure.bid_kw == pytest.approx(0.5 * b.bid.bid_kw)
    assert b.bid_secure.expected_profit == pytest.approx(0.5 * b.bid.expected_profit)
    s = summarize_bid(b)
    assert s["bid_network_gap_kw"] == pytest.approx(0.5 * b.bid.bid_kw)
    assert s["availability_mean_secure_kw"] == pytest.approx(0.5 * s["availability_mean_kw"])
    assert s["expected_profit_secure_per_h"] == pytest.approx(0.5 * s["expected_profit_per_h"])
    assert s["expected_profit_per_h"] > 0.0 and s["availability_mean_kw"] > 0.0
    assert "bid_secure_kw" not in summarize_bid(run_bid_analysis(scen))


def test_regulation_range_bounded_by_the_envelopes() -> None:
    scen = Scenario(fleet={"n_evs": 100})
    fleet = synthesize_fleet(scen.fleet, scen.time, scen.feeder.n_bus, np.random.default_rng(5))
    base = run_uncontrolled(fleet)
    n_bus = scen.feeder.n_bus
    limits = _limits(scen.time.n_steps, [4.0] * n_bus, [3.0] * n_bus, list(fleet.bus))
    a = run_agc_analysis(fleet, base, scen.frequency, scen.time, scen.seed, limits=limits)
    step = scen.time.step_at(scen.frequency.event_hour, "event_hour")
    plugged = (fleet.arrival_step <= step) & (step < fleet.departure_step)
    assert a.fleet_range_secure_kw is not None
    assert a.fleet_range_secure_kw <= a.fleet_range_kw
    # Every bus's secure band is at most its smaller envelope side (3 kW): the total is at most 3 x buses used.
    assert a.fleet_range_secure_kw <= 3.0 * np.unique(fleet.bus[plugged]).size + 1e-9
