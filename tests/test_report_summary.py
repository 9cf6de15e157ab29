"""The report's frame without a study run: the summary's pass/fail, the box standing in for a section whose step
failed, the computed explanations ("surprises") on hand-built results."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import numpy as np

from v2gtwin.report import SECTIONS
from v2gtwin.report.summary import render_section, summary_html
from v2gtwin.report.surprises import delivered_vs_needed, loss_aware_vs_uniform, robust_vs_per_ev
from v2gtwin.scenario import parse_scenario
from v2gtwin.study_summary import calc_kpis


def _result(scenario_data: dict[str, Any] | None = None, **sections: Any) -> Any:
    names = ("fleet", "feeder", "services", "markets", "network", "cyber_path", "compliance", "cyber")
    names += ("protection", "battery", "resilience")
    base: dict[str, Any] = dict.fromkeys(names) | {"failures": {}, "skipped": {}, "timings_s": {}}
    return SimpleNamespace(scenario=parse_scenario(scenario_data or {}), **(base | sections))


def _row(page: str, key: str) -> str:
    m = re.search(rf'<tr class="kpi" data-key="{key}"[^>]*>(.*?)</tr>', page)
    assert m, key
    return m.group(1)


def test_summary_shows_fail_when_the_limit_is_above_the_minimum() -> None:
    # Lowest voltage of the day 0.9412 pu (hand-set series); limit 0.95 pu above it: FAIL; 0.94 below: PASS.
    feeder = SimpleNamespace(
        timeseries=SimpleNamespace(v_min_fleet_pu=np.array([0.97, 0.9412, 0.955])),
        fleet_hosting=SimpleNamespace(scale=2.0),
    )
    bad = _result({"feeder": {"v_min_pu": 0.95}}, feeder=feeder)
    good = _result({"feeder": {"v_min_pu": 0.94}}, feeder=feeder)
    row_bad = _row(summary_html(bad, calc_kpis(bad)), "v_min_pu")
    row_good = _row(summary_html(good, calc_kpis(good)), "v_min_pu")
    assert "0.9412 pu" in row_bad and "≥ 0.95 pu" in row_bad and "FAIL" in row_bad
    assert "0.9412 pu" in row_good and "≥ 0.94 pu" in row_good and "PASS" in row_good
    assert "1 FAIL" in summary_html(bad, calc_kpis(bad))


def test_failed_step_gets_a_box_and_its_indicators_say_not_computed() -> None:
    res = _result(failures={"schedule": "InfeasibleError: import cap below the base load"})
    kpis = calc_kpis(res)
    markets = next(s for s in SECTIONS if s.anchor == "markets")
    drawn: list[str] = []
    page = render_section(markets, res, kpis, drawn)
    assert page.startswith('<section id="markets"')
    assert "schedule failed: InfeasibleError: import cap below the base load" in page
    assert "not computed" in _row(page, "p_schedule_import_max_kw")
    summary = summary_html(res, kpis)
    assert "schedule</b> failed" in summary and "FAIL" in _row(summary, "n_steps_failed")
    assert drawn == []


def test_section_that_raises_is_replaced_by_a_box_and_listed() -> None:
    def broken(result: Any) -> str:
        raise KeyError("p_peak_kw")

    section = SECTIONS[0].__class__("fleet", "Fleet", broken, (), ())
    drawn: list[str] = []
    page = render_section(section, _result(), [], drawn)
    assert "could not be drawn" in page and drawn == ["Fleet: KeyError: 'p_peak_kw'"]
    assert "Fleet: KeyError" in summary_html(_result(), [], drawn)


def _dispatch(losses: dict[str, float]) -> Any:
    return SimpleNamespace(dispatch=SimpleNamespace(policies=tuple(losses), losses_kwh=np.array(list(losses.values()))))


def test_loss_aware_sentence_says_lose_only_when_it_loses() -> None:
    # loss_aware 103 kWh against uniform 100 kWh: loses 3.00 kWh, 3.0 %; loss_optimal 97: saves 3.00 kWh.
    s = loss_aware_vs_uniform(_result(feeder=_dispatch({"uniform": 100.0, "loss_aware": 103.0, "loss_optimal": 97.0})))
    assert s.startswith("loss_aware charging loses 3.00 kWh (3.0 %) more than uniform")
    assert "loss_optimal, which weighs where and when together, saves 3.00 kWh" in s
    # 98 against 100: saves 2.00 kWh (2.0 %), and no word of losing.
    s = loss_aware_vs_uniform(_result(feeder=_dispatch({"uniform": 100.0, "loss_aware": 98.0})))
    assert s == "loss_aware charging saves 2.00 kWh (2.0 %) against uniform charging of the same energy."
    assert loss_aware_vs_uniform(_result()) == ""


def test_delivered_above_needed_is_explained_with_the_efficiency() -> None:
    # Needed 950 kWh (battery side), unmet 0, delivered 1,000 kWh (grid side): the batteries took 950 kWh,
    # 0.950 of the delivered energy.
    fleet = SimpleNamespace(
        summary={"energy_need_total_kwh": 950.0, "energy_delivered_kwh": 1000.0, "energy_unmet_kwh": 0.0, "n_unmet": 0}
    )
    s = delivered_vs_needed(_result(fleet=fleet))
    assert "Energy delivered (1,000 kWh) exceeds the energy needed (950 kWh)" in s and "950 kWh, 0.950" in s
    fleet.summary["energy_delivered_kwh"] = 900.0  # below the need: nothing to explain
    assert delivered_vs_needed(_result(fleet=fleet)) == ""


def test_robust_sentence_splits_the_site_cost() -> None:
    # Two 12-h steps (horizon 24 h), prices 50 and 100 per MWh, net load 1,000 and 2,000 kW:
    # site = (50 x 1000 + 100 x 2000) x 12 / 1000 = 3,000; robust cost 3,100 -> the fleet's part 100.
    rb = SimpleNamespace(
        omegas=(0.0, 1.0),
        results=(SimpleNamespace(cost_per_horizon=3100.0), None),
        horizon_h=24.0,
        mu_kw=np.array([1000.0, 2000.0]),
    )
    sc = SimpleNamespace(
        price_per_mwh=np.array([50.0, 100.0]), individual=SimpleNamespace(cost_per_horizon=80.0), n_evs=10
    )
    s = robust_vs_per_ev(_result(markets=SimpleNamespace(robust=rb, schedule=sc)))
    assert "(3,100.0 USD) is not comparable with the per-EV LP's (80.0 USD)" in s
    assert "3,000.0 USD of it the forecast net load" in s and "100.0 USD the feeder's EVs" in s
    assert "negative" not in s


def test_regulation_bid_above_offered_capacity_is_explained() -> None:
    """The finding: "capacity offered 1,706 kW" beside "bid (newsvendor) 4,327 kW" with no word on why."""
    from v2gtwin.report.surprises import regulation_bid_vs_offered

    agc = SimpleNamespace(capacity_kw=1706.0, fleet_range_kw=3412.0)  # 0.5 (the default share) x 3412 = 1706
    bid = SimpleNamespace(
        bid=SimpleNamespace(bid_kw=4327.0, fractile=0.6),
        samples_kw=np.array([4000.0, 4500.0, 5000.0]),  # mean 4500
        event_clock="18:00",
        source="simulated fleet days",
    )
    s = regulation_bid_vs_offered(_result(services=SimpleNamespace(agc=agc), markets=SimpleNamespace(bid=bid)))
    assert "regulation bid exceeds the capacity offered" in s
    assert "(1,706 kW) is reg_capacity_share = 0.5 of" in s and "(3,412 kW)" in s
    assert "(4,327 kW) is the 0.600 fractile" in s and "on 3 seeded fleet days at 18:00 (mean 4,500 kW)" in s
    # A bid at or below the offered capacity needs no explanation.
    low = SimpleNamespace(**{**vars(bid), "bid": SimpleNamespace(bid_kw=1000.0, fractile=0.6)})
    assert regulation_bid_vs_offered(_result(services=SimpleNamespace(agc=agc), markets=SimpleNamespace(bid=low))) == ""
