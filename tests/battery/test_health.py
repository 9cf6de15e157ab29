"""The study's battery section (battery.health): the V2G fleet is aged on its scheduled day, the comparison runs
are the flat cost's own runs, and the schedule's paid degradation cost is the discharge-weighted mean of each EV's
own cost. References: an independent rerun of the schedule with the flat cost, hand sums over the EVs."""

from __future__ import annotations

import numpy as np
import pytest

from v2gtwin.battery.cost import degradation_cost_per_mwh
from v2gtwin.battery.health import calc_discharge_weighted_cost_per_mwh, run_battery_health_analysis
from v2gtwin.fleet import run_uncontrolled
from v2gtwin.markets.scheduling import run_schedule_analysis
from v2gtwin.scenario import Scenario


@pytest.fixture(scope="module")
def small_study():  # type: ignore[no-untyped-def]
    from v2gtwin.study import build_fleet

    scen = Scenario(fleet={"n_evs": 60}, battery={"years": 3, "lfp_share": 0.5})
    fleet = build_fleet(scen)
    unc = run_uncontrolled(fleet)
    cost = degradation_cost_per_mwh(scen, fleet, unc.soc_pu)
    sched = run_schedule_analysis(
        fleet, unc, scen.markets, scen.time, scen.seed, scen.currency, cost.per_ev_per_mwh, cost.source
    )
    bh = run_battery_health_analysis(scen, fleet, unc, cost, sched)
    return scen, fleet, unc, cost, sched, bh


def test_discharge_weighted_cost_by_hand() -> None:
    # Two steps, three EVs discharging 2, 0 and 6 kW-steps (EV 1 only charges); costs 10, 99, 30:
    # (10 x 2 + 30 x 6) / (2 + 6) = 200 / 8 = 25 (EV 1 discharges nothing and does not count).
    p = np.array([[-1.0, 5.0, -2.0], [-1.0, 0.0, -4.0]])
    assert calc_discharge_weighted_cost_per_mwh(p, [10.0, 99.0, 30.0]) == pytest.approx(25.0, rel=1e-15)
    assert calc_discharge_weighted_cost_per_mwh(np.abs(p), [10.0, 99.0, 30.0]) is None


def test_schedule_pays_each_evs_own_cost(small_study) -> None:  # type: ignore[no-untyped-def]
    _, _, _, cost, sched, bh = small_study
    # Independent sum over the EVs of the schedule (its ev_index into the fleet) of c_i E_i / sum E_i.
    num = den = 0.0
    for j, i in enumerate(sched.ev_index):
        e = -np.clip(sched.p_ev_kw[:, j], None, 0.0).sum()
        num += cost.per_ev_per_mwh[i] * e
        den += e
    assert den > 0  # the schedule discharges
    assert bh.compare["schedule_degradation_per_mwh_discharge_weighted_model"] == pytest.approx(num / den, rel=1e-12)
    assert bh.compare["schedule_degradation_per_mwh_aggregate_batteries_model"] == sched.degradation_per_mwh


def test_flat_figures_are_a_flat_run(small_study) -> None:  # type: ignore[no-untyped-def]
    # The *_flat figures must be those of the same schedule solved with the flat cost for every EV.
    scen, fleet, unc, _, _, bh = small_study
    flat = scen.markets.degradation_per_mwh
    ref = run_schedule_analysis(
        fleet, unc, scen.markets, scen.time, scen.seed, scen.currency, np.full(fleet.n, flat), "flat"
    ).summary()
    assert bh.compare["schedule_cost_per_horizon_flat"] == pytest.approx(ref["disaggregated_cost_per_horizon"])
    assert bh.compare["schedule_energy_discharged_kwh_flat"] == pytest.approx(ref["energy_discharged_kwh"])
    assert bh.compare["schedule_degradation_per_mwh_discharge_weighted_flat"] == pytest.approx(flat, rel=1e-12)


def test_v2g_fleet_is_aged_on_its_scheduled_day(small_study) -> None:  # type: ignore[no-untyped-def]
    # The schedule discharges and recharges: its EVs move more charge a day than when they only charge, so their
    # equivalent full cycles and cycle loss are higher (mutation caught: ageing the V2G fleet on the uncontrolled
    # day gives equal figures).
    _, _, _, _, sched, bh = small_study
    dis = -np.clip(sched.p_ev_kw, None, 0.0).sum(axis=0) > 1e-6
    assert dis.any()
    assert np.all(bh.fade_v2g.efc_per_day[dis] > bh.fade_uncontrolled.efc_per_day[dis])
    assert bh.fade_v2g.q_loss_cyc_pu[:, -1].mean() > bh.fade_uncontrolled.q_loss_cyc_pu[:, -1].mean()
