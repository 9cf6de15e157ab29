"""Tests of the feeder, markets and resilience tables (v2gtwin.tables.grid, .markets) on hand-built sections of a
4-step day, every value worked out by hand, and of the unit suffix of every numeric column."""

from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np
import pandas as pd

from v2gtwin.scenario import TimeGrid
from v2gtwin.tables.grid import feeder_frames, resilience_frames
from v2gtwin.tables.markets import markets_frames

TIME = TimeGrid(dt_s=900.0, n_steps=4, start_hour=12.0, start_date="2025-01-15", time_zone="Europe/Berlin")


def _feeder() -> SimpleNamespace:
    ts = SimpleNamespace(
        v_min_base_pu=np.array([0.99, 0.98, 0.97, 0.98]),
        v_min_fleet_pu=np.array([0.98, 0.96, 0.95, 0.97]),
        v_min_voltvar_pu=np.array([0.985, 0.97, 0.96, 0.975]),
        losses_base_kw=np.array([1.0, 2.0, 3.0, 2.0]),
        losses_fleet_kw=np.array([1.5, 3.0, 4.5, 2.5]),
        losses_voltvar_kw=np.array([1.6, 3.1, 4.6, 2.6]),
        q_voltvar_kvar=np.array([0.0, 5.0, 10.0, 2.0]),
        # Bus voltages at the worst step: base (no EVs) above fleet (with EVs) at every bus but the source.
        v_profile_base_pu=np.array([1.0, 0.99, 0.97]),
        v_profile_fleet_pu=np.array([1.0, 0.97, 0.95]),
        v_profile_voltvar_pu=np.array([1.0, 0.98, 0.96]),
        worst_step=2,
    )
    hosting = SimpleNamespace(to_frame=lambda: pd.DataFrame({"bus": ["1", "2"], "p_host_kw": [300.0, 200.0]}))
    dispatch = SimpleNamespace(
        policies=("uncontrolled", "loss_aware"),
        losses_kwh=(7.0, 5.5),
        losses_base_kwh=4.0,
        energy_kwh=(100.0, 100.0),
        v_min_pu=(0.95, 0.96),
        p_ev_total_kw=np.array([[40.0, 30.0, 20.0, 10.0], [25.0, 25.0, 25.0, 25.0]]),
    )
    return SimpleNamespace(
        timeseries=ts,
        p_base_total_kw=np.array([100.0, 120.0, 140.0, 110.0]),
        p_ev_total_kw=np.array([40.0, 30.0, 20.0, 10.0]),
        bus_labels=["0", "1", "2"],
        parent=np.array([-1, 0, 1]),
        hosting=hosting,
        hosting_voltvar=None,
        dispatch=dispatch,
    )


def test_feeder_tables_by_hand() -> None:
    f = feeder_frames(_feeder(), TIME)  # type: ignore[arg-type]
    buses = f["feeder_buses"]
    assert buses["parent_bus"].tolist() == [None, "0", "1"]
    assert buses["v_worst_base_pu"].tolist() == [1.0, 0.99, 0.97]
    assert buses["v_worst_fleet_pu"].tolist() == [1.0, 0.97, 0.95]
    assert buses.attrs["worst_step"] == 2
    losses = f["losses"].set_index("policy")
    # Losses due to the EVs = policy losses - base losses: 7.0 - 4.0 = 3.0 kWh; 5.5 - 4.0 = 1.5 kWh.
    assert losses["losses_due_to_evs_kwh"].tolist() == [3.0, 1.5]
    steps = f["feeder_steps"]
    assert steps.index.equals(TIME.index())
    assert steps["v_min_fleet_pu"].tolist() == [0.98, 0.96, 0.95, 0.97]
    ls = f["losses_steps"]
    assert ls["p_ev_uncontrolled_kw"].tolist() == [40.0, 30.0, 20.0, 10.0]
    assert ls["p_ev_loss_aware_kw"].tolist() == [25.0] * 4


def _markets() -> SimpleNamespace:
    rtp = SimpleNamespace(
        price_per_mwh=np.arange(24.0), system_price_per_mwh=np.arange(24.0), q_kw=np.ones(24), v2g_kw=np.zeros(24)
    )
    aggregate = SimpleNamespace(
        p_charge_kw=np.array([10.0, 0.0, 5.0, 0.0]),
        p_discharge_kw=np.array([0.0, 4.0, 0.0, 2.0]),
        e_kwh=np.array([50.0, 52.5, 51.5, 52.75, 52.25]),  # at the start of the day and after each step
    )
    schedule = SimpleNamespace(
        individual=SimpleNamespace(p_total_kw=np.array([80.0, 100.0, 100.5, 20.0])),
        aggregate=aggregate,
        disaggregated_kw=np.array([[6.0, 4.0], [0.0, -4.0], [5.0, 0.0], [-1.0, -1.0]]),
        price_per_mwh=np.array([50.0, 60.0, 70.0, 40.0]),
        inner=None,
        import_cap_kw=100.0,
    )
    robust = SimpleNamespace(summary=lambda: {"radii": {"0.5": {"omega": 0.5, "expected_cost_per_horizon": 3.0}}})
    bid = SimpleNamespace(bids_kw=[0.0, 10.0], profit_exact_per_h=[0.0, 1.0], profit_mc_per_h=[0.0, 0.9])
    return SimpleNamespace(
        market={"rtp": rtp, "tou": rtp},
        schedule=schedule,
        robust=robust,
        bid=bid,
        summary=lambda: {"schedule": {"cost_per_horizon": 12.5}},
    )


def test_markets_tables_by_hand() -> None:
    m = markets_frames(_markets(), TIME, "EUR")  # type: ignore[arg-type]
    s = m["schedule_steps"]
    # Net aggregate power = charge - discharge: 10 - 0, 0 - 4, 5 - 0, 0 - 2.
    assert s["p_aggregate_kw"].tolist() == [10.0, -4.0, 5.0, -2.0]
    # Stored energy at the end of each step: e_kwh without its initial value 50.
    assert s["e_aggregate_kwh"].tolist() == [52.5, 51.5, 52.75, 52.25]
    # Disaggregated total per step: 6 + 4, 0 - 4, 5 + 0, -1 - 1.
    assert s["p_disaggregated_kw"].tolist() == [10.0, -4.0, 5.0, -2.0]
    # Against the cap 100 kW: only 100.5 kW (step 2) is above; 100.0 is on the cap.
    assert s["above_import_cap"].tolist() == [False, False, True, False]
    assert (s["import_cap_kw"] == 100.0).all() and (s["currency"] == "EUR").all()
    h = m["market_hours"]
    assert h.index.name == "clock" and h.index[0] == "00:00" and h.index[13] == "13:00" and len(h) == 24
    assert h.loc["13:00", "price_rtp_per_mwh"] == 13.0


def _resilience() -> SimpleNamespace:
    t_s = np.array([0.0, 300.0, 600.0])

    def run(q: list[float], served: list[float]) -> SimpleNamespace:
        return SimpleNamespace(
            t_s=t_s,
            q=np.array(q),
            p_load_kw=np.array([10.0, 10.0, 10.0]),
            p_served_kw=np.array(served),
            p_pv_kw=np.zeros(3),
            p_gen_kw=np.zeros(3),
            p_battery_kw=np.zeros(3),
            p_v2g_kw=np.array([5.0, 4.0, 0.0]),
            e_v2g_kwh=np.array([9.0, 8.0, 7.0, 6.0]),
        )

    return SimpleNamespace(
        with_v2g=run([1.0, 1.0, 0.5], [10.0, 10.0, 5.0]),
        without_v2g=run([1.0, 0.5, 0.0], [10.0, 5.0, 0.0]),
        outage_start_step=2,
        summary=lambda: {"energy_unserved_kwh": 1.0},
    )


def test_resilience_series_starts_at_the_outage() -> None:
    r = resilience_frames(_resilience(), TIME)["resilience_t"]  # type: ignore[arg-type]
    # The outage starts at step 2 = 12:00 + 2 x 15 min = 12:30 local; then every 300 s.
    assert [t.strftime("%H:%M") for t in r.index] == ["12:30", "12:35", "12:40"]
    assert r.index[0] == pd.Timestamp("2025-01-15 12:30", tz="Europe/Berlin")
    assert r["q_with_v2g_pu"].tolist() == [1.0, 1.0, 0.5]
    assert r["q_without_v2g_pu"].tolist() == [1.0, 0.5, 0.0]
    assert r["e_v2g_kwh"].tolist() == [9.0, 8.0, 7.0]  # at the start of each step


#: Numeric columns that are counts, flags or plain numbers, not quantities with a unit.
UNITLESS = {"omega", "feasible", "above_import_cap", "value"}
UNIT = re.compile(r"_(kw|kwh|kvar|pu|pct|s|h|hz|per_mwh|per_h|per_horizon|per_day|a|kva)$")


def test_every_numeric_column_names_its_unit() -> None:
    frames = (
        feeder_frames(_feeder(), TIME)  # type: ignore[arg-type]
        | markets_frames(_markets(), TIME, "EUR")  # type: ignore[arg-type]
        | resilience_frames(_resilience(), TIME)  # type: ignore[arg-type]
    )
    bad = [
        f"{name}.{col}"
        for name, df in frames.items()
        for col in df.columns
        if pd.api.types.is_numeric_dtype(df[col]) and col not in UNITLESS and not UNIT.search(col)
    ]
    assert bad == []
    assert len(frames) == 12
