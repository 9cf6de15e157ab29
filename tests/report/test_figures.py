"""The report's figures show their point: each test builds a figure from a small hand-made case and inspects the
matplotlib objects (legend boxes in display coordinates, the data of each line, axis labels and ticks)."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from tests.report.figure_checks import CLOCK_LABEL, clock_axes, legend_covers, tick_texts
from v2gtwin.report.figure_layout import Clock, clock_tick_labels, set_clock_axis
from v2gtwin.report.figures import (
    electrical_distance_ohm,
    fig_bid,
    fig_dispatch,
    fig_feeder_vmin,
    fig_hosting,
    fig_power_envelope,
    fig_regulation,
    fig_schedule,
    fig_voltage_profile,
    root_leaf_paths,
)

N = 96  # a day of 15-minute steps from noon
T_H = np.arange(N) * 0.25


def _fleet(**extra: Any) -> Any:
    return SimpleNamespace(time_h=T_H, clock_h=(12.0 + T_H) % 24.0, **extra)


def _vmin_case() -> tuple[Any, Any]:
    # The lowest voltage dips to 0.948 pu in the first hours (15:00-17:00: steps 12-19), down in the lower left
    # where the old figure put its legend ("lower left"), and the EV load is shaded on the twin axis.
    base = np.full(N, 0.975)
    fleet_v = base.copy()
    fleet_v[12:20] = 0.948
    ts = SimpleNamespace(v_min_base_pu=base, v_min_fleet_pu=fleet_v, v_min_voltvar_pu=fleet_v + 0.001)
    feeder = SimpleNamespace(name="test", timeseries=ts, p_ev_total_kw=np.where((T_H > 3) & (T_H < 8), 300.0, 0.0))
    return _fleet(), feeder


def test_vmin_legend_leaves_the_lowest_voltage_visible() -> None:
    fleet, feeder = _vmin_case()
    fig = fig_feeder_vmin(fleet, feeder, 0.95)
    assert fig.axes[0].get_legend() is not None
    assert legend_covers(fig) == []


def test_envelope_legend_leaves_the_uncontrolled_curve_visible() -> None:
    # No V2G (the band's floor is 0): the uncontrolled curve runs low (300 kW) for six hours from noon, in the
    # lower left where the old figure put its legend, then rises to 4.5 MW until midnight.
    p_max = np.full(N, 5000.0)
    unc = np.where(T_H < 6, 300.0, np.where(T_H < 12, 4500.0, 100.0))
    fig = fig_power_envelope(_fleet(p_max_kw=p_max, p_min_kw=np.zeros(N), p_uncontrolled_kw=unc))
    assert fig.axes[0].get_legend() is not None
    assert legend_covers(fig) == []


def test_voltage_profile_follows_every_path_from_the_source_by_electrical_distance() -> None:
    # Feeder 0-1-2 with a lateral 1-3-4: branch impedances |z| = |r + jx| = 5 (3+4j), 13 (5+12j), 1 (1+0j),
    # 10 (6+8j) ohm for buses 1..4. Paths source -> leaf, deepest first: [0, 1, 3, 4] then [0, 1, 2].
    # Electrical distance: bus 1: 5; bus 2: 5 + 13 = 18; bus 3: 5 + 1 = 6; bus 4: 6 + 10 = 16 ohm.
    parent = np.array([-1, 0, 1, 1, 3])
    r = np.array([0.0, 3.0, 5.0, 1.0, 6.0])
    x = np.array([0.0, 4.0, 12.0, 0.0, 8.0])
    assert root_leaf_paths(parent) == [[0, 1, 3, 4], [0, 1, 2]]
    np.testing.assert_allclose(electrical_distance_ohm(parent, r, x), [0.0, 5.0, 18.0, 6.0, 16.0])
    v = np.array([1.0, 0.99, 0.97, 0.985, 0.96])
    ts = SimpleNamespace(v_profile_base_pu=v + 0.005, v_profile_fleet_pu=v, v_profile_voltvar_pu=v, worst_step=7)
    section = SimpleNamespace(
        timeseries=ts, n_bus=5, bus_labels=np.array(["a", "b", "c", "d", "e"]), parent=parent, r_ohm=r, x_ohm=x
    )
    fig = fig_voltage_profile(section, "18:30")  # type: ignore[arg-type]
    ax = fig.axes[0]
    drawn = sorted(
        (tuple(ln.get_xdata()), tuple(ln.get_ydata())) for ln in ax.get_lines() if ln.get_color() == "tab:red"
    )
    # Each path starts at the substation (x = 0, 1.0 pu) and only moves away from it.
    assert drawn == sorted([((0.0, 5.0, 6.0, 16.0), (1.0, 0.99, 0.985, 0.96)), ((0.0, 5.0, 18.0), (1.0, 0.99, 0.97))])
    assert "ohm" in ax.get_xlabel()
    assert legend_covers(fig) == []


def _hosting_case() -> Any:
    # Two buses near the substation host 6 and 5 MW, the rest 0.1-0.4 MW; volt-var adds 10-40 kW.
    p = np.array([6000.0, 5000.0, 400.0, 300.0, 200.0, 100.0])
    gain = np.array([0.0, 0.0, 40.0, 30.0, 20.0, 10.0])
    plain = SimpleNamespace(bus_labels=np.arange(2, 8), p_host_kw=p, v_min_pu=0.95)
    vv = SimpleNamespace(bus_labels=np.arange(2, 8), p_host_kw=p + gain, v_min_pu=0.95)
    return SimpleNamespace(hosting=plain, hosting_voltvar=vv)


def test_hosting_is_linear_with_the_voltvar_gain_drawn_apart() -> None:
    fig = fig_hosting(_hosting_case())
    ax, ax_gain = fig.axes[0], fig.axes[1]
    assert ax.get_yscale() == "linear" and ax_gain.get_yscale() == "linear"
    # The gain panel's bars are volt-var minus plain, in kW: 0, 0, 40, 30, 20, 10.
    np.testing.assert_allclose([b.get_height() for b in ax_gain.patches], [0, 0, 40, 30, 20, 10])
    # The two large buses are cut at the axis's top and carry their value (6.0 and 5.0 MW) as text.
    top = ax.get_ylim()[1]
    assert top < 5.0
    assert sorted(t.get_text() for t in ax.texts) == ["5.0↑", "6.0↑"]
    # The small buses stay readable: the smallest (0.1 MW) is at least 5 % of the axis.
    assert 0.1 / top >= 0.05
    assert legend_covers(fig) == []


def test_dispatch_policies_are_shown_as_differences_from_uniform() -> None:
    uniform = np.where(T_H < 12, 100.0, 50.0)
    shifted = np.where(T_H < 12, 40.0, 110.0)  # same energy: 48 x 100 + 48 x 50 = 48 x 40 + 48 x 110
    d = SimpleNamespace(
        policies=("uniform", "random", "loss_aware", "loss_optimal"),
        losses_base_kwh=10.0,
        losses_kwh=(60.0, 60.5, 58.0, 52.0),
        p_ev_total_kw=np.vstack([uniform, uniform, uniform, shifted]),
    )
    fig = fig_dispatch(_fleet(), SimpleNamespace(dispatch=d))
    top, diff = fig.axes[0], fig.axes[1]
    assert next(ln.get_label() for ln in top.get_lines()).startswith("uniform (the baseline)")
    lines = {
        ln.get_label(): np.asarray(ln.get_ydata()) for ln in diff.get_lines() if not ln.get_label().startswith("_")
    }
    # random and loss_aware share uniform's aggregate: one line at 0, both named; losses against uniform's 60 kWh.
    same = next(k for k in lines if k.startswith("random"))
    assert "loss_aware (-2.0 kWh of losses)" in same and "random (+0.5 kWh of losses)" in same
    np.testing.assert_allclose(lines[same], 0.0)
    opt = next(k for k in lines if k.startswith("loss_optimal"))
    np.testing.assert_allclose(lines[opt], (shifted - uniform) / 1e3)  # [MW]: -0.06 before midnight, +0.06 after
    assert "uniform" in diff.get_ylabel()
    assert legend_covers(fig) == []


def test_regulation_shows_tracking_error_and_headroom() -> None:
    # 10 samples of 2 s; capacity 1000 kW out of a fleet range of 2500 kW (2.5 pu of capacity).
    sig = np.array([0.0, 0.5, 1.0, 0.5, 0.0, -0.5, -1.0, -0.5, 0.0, 0.2])
    resp = np.array([0.0, 0.5, 0.8, 0.5, 0.0, -0.5, -0.9, -0.5, 0.0, 0.2])
    reg = SimpleNamespace(capacity_kw=1000.0, signal_pu=sig, response_pu=resp, score=SimpleNamespace(composite=0.9))
    agc = SimpleNamespace(regulation={"soc_aware": reg}, dt_s=2.0, fleet_range_kw=2500.0)
    fig = fig_regulation(SimpleNamespace(agc=agc), Clock(20.0), minutes=20 / 60)
    assert len(fig.axes) == 3
    err = fig.axes[1].get_lines()[0]
    np.testing.assert_allclose(err.get_ydata(), resp - sig)  # -0.2 at the peak, +0.1 at the trough
    head = fig.axes[2].get_lines()[0]
    # headroom = 2.5 - |response|: 2.5, 2.0, 1.7, 2.0, 2.5, 2.0, 1.6, 2.0, 2.5, 2.3
    np.testing.assert_allclose(head.get_ydata(), [2.5, 2.0, 1.7, 2.0, 2.5, 2.0, 1.6, 2.0, 2.5, 2.3])
    assert "least 1.60 pu" in head.get_label()
    assert all(CLOCK_LABEL.match(t) for t in tick_texts(fig.axes[2]))
    assert tick_texts(fig.axes[2])[0] == "20:00:00"
    assert legend_covers(fig) == []


def test_regulation_allocations_with_the_same_response_are_one_line() -> None:
    sig = np.array([0.0, 0.5, 1.0, 0.5])
    same = SimpleNamespace(
        capacity_kw=1000.0, signal_pu=sig, response_pu=sig * 0.9, score=SimpleNamespace(composite=0.9)
    )
    other = SimpleNamespace(capacity_kw=1000.0, signal_pu=sig, response_pu=sig, score=SimpleNamespace(composite=1.0))
    agc = SimpleNamespace(
        regulation={"pro_rata": same, "soc_aware": same, "ideal": other}, dt_s=2.0, fleet_range_kw=2e3
    )
    fig = fig_regulation(SimpleNamespace(agc=agc), Clock(20.0), minutes=8 / 60)
    labels = [ln.get_label() for ln in fig.axes[1].get_lines() if not ln.get_label().startswith("_")]
    # Errors -0.1 x signal = 0, -0.05, -0.1, -0.05: RMS sqrt((0 + 0.0025 + 0.01 + 0.0025) / 4) = sqrt(0.00375) = 0.061.
    assert labels == ["pro_rata = soc_aware: RMS 0.061 pu", "ideal: RMS 0.000 pu"]


def _schedule_case(per_ev_kw: np.ndarray) -> tuple[Any, Any]:
    sc = SimpleNamespace(
        individual=SimpleNamespace(p_total_kw=per_ev_kw),
        disaggregated_kw=np.minimum(per_ev_kw, 800.0),
        import_cap_kw=1000.0,
        price_per_mwh=np.where(T_H < 6, 120.0, 40.0),
    )
    fleet = _fleet(p_uncontrolled_kw=np.full(N, 500.0))
    return fleet, SimpleNamespace(schedule=sc, network_schedule=None)


def test_schedule_flags_the_steps_above_the_import_cap() -> None:
    per_ev = np.full(N, 900.0)
    per_ev[[40, 41, 70]] = [1000.5, 1200.0, 1100.0]  # 0.5 kW over counts: above the solvers' 1e-3 kW tolerance
    fleet, markets = _schedule_case(per_ev)
    fig = fig_schedule(fleet, markets, "EUR")
    ax = fig.axes[0]
    # One shaded span per step above the cap 1000 kW: steps 40, 41, 70 (22:00, 22:15 and 05:30 the next day).
    spans = sorted(round(p.get_x() / 0.25) for p in ax.patches if p.get_gid() == "above_cap")
    assert spans == [40, 41, 70]
    labels = [ln.get_label() for ln in ax.get_lines()]
    assert any(lab.startswith("per-EV LP: 3 step(s) above the cap") for lab in labels)
    assert "uncontrolled (all EVs)" in labels  # 500 kW: never above, no count
    cap = next(ln for ln in ax.get_lines() if ln.get_label().startswith("import cap"))
    assert cap.get_ydata()[0] == pytest.approx(1.0)  # [MW]
    assert "EUR" in fig.axes[1].get_ylabel()
    assert legend_covers(fig) == []


def test_schedule_within_the_cap_flags_nothing() -> None:
    fleet, markets = _schedule_case(np.full(N, 1000.0))  # at the cap, not above it
    ax = fig_schedule(fleet, markets, "EUR").axes[0]
    assert not [p for p in ax.patches if p.get_gid() == "above_cap"]


def test_money_axes_carry_the_currency() -> None:
    bids = np.linspace(1000.0, 5000.0, 20)
    profit = -((bids - 3000.0) ** 2) / 1e5 + 90.0
    b = SimpleNamespace(
        bids_kw=bids,
        profit_exact_per_h=profit,
        profit_mc_per_h=profit + 0.5,
        availability=SimpleNamespace(kind="empirical"),
        bid=SimpleNamespace(bid_kw=3000.0),
        bid_secure=None,
        source="test",
    )
    fig = fig_bid(SimpleNamespace(bid=b), "CHF")
    assert fig.axes[0].get_ylabel() == "expected profit [CHF/h]"
    assert legend_covers(fig) == []


def test_time_axes_carry_clock_time_across_midnight() -> None:
    fleet, feeder = _vmin_case()
    fig = fig_feeder_vmin(fleet, feeder, 0.95)
    (ax,) = clock_axes(fig)
    labels = tick_texts(ax)
    # Noon start, 24 h, 3-hourly ticks: 12:00 ... 21:00, then midnight of the next day, ..., noon again.
    assert labels == ["12:00", "15:00", "18:00", "21:00", "00:00\n+1d", "03:00", "06:00", "09:00", "12:00"]
    np.testing.assert_allclose(ax.get_xticks(), np.arange(0, 25, 3))


def test_dated_clock_follows_the_time_zone_across_a_daylight_saving_change() -> None:
    # Europe/Berlin moves from CET (UTC+1) to CEST (UTC+2) at 01:00 UTC on 30 March 2025. Start 29 March 12:00
    # CET = 11:00 UTC. +12 h = 23:00 UTC = 00:00 CET on the 30th; +15 h = 02:00 UTC = 04:00 CEST.
    start = dt.datetime(2025, 3, 29, 12, 0, tzinfo=zoneinfo.ZoneInfo("Europe/Berlin"))
    labels = clock_tick_labels([0.0, 12 * 3600.0, 15 * 3600.0], 12.0, start)
    assert labels == ["12:00\n29 Mar", "00:00\n30 Mar", "04:00"]
    # Undated: the same offsets on a plain clock, days counted as in TimeGrid.clock_label.
    assert clock_tick_labels([0.0, 12 * 3600.0, 15 * 3600.0], 12.0) == ["12:00", "00:00\n+1d", "03:00"]


def test_event_clock_in_seconds() -> None:
    from matplotlib.figure import Figure

    ax = Figure().add_subplot()
    # 30 s from 19:59:50: ticks on round 5 s (or coarser) clock times, the first at 19:59:50 itself.
    set_clock_axis(ax, 30.0, 19 + 59 / 60 + 50 / 3600, x_unit_s=1.0)
    labels = tick_texts(ax)
    assert labels[0] == "19:59:50" and "20:00:00" in labels
    assert all(CLOCK_LABEL.match(t) for t in labels)


def test_clock_of_a_dated_time_grid_and_an_event_later_that_night() -> None:
    # A time grid that offers its start as a tz-aware datetime (start_date and time_zone): 15 Jan 2025 18:00 in
    # New York (EST, UTC-5). An event 7.5 h later is 01:30 on 16 Jan; undated, the same offset is 25.5 h on the
    # clock of the first day, which the labels show as 01:30 +1d.
    zone = zoneinfo.ZoneInfo("America/New_York")
    grid = SimpleNamespace(start_hour=18.0, start_datetime=lambda: dt.datetime(2025, 1, 15, 18, 0, tzinfo=zone))
    later = Clock.of(grid).after(7.5)
    assert later.start == dt.datetime(2025, 1, 16, 1, 30, tzinfo=zone)
    assert later.start_clock_h == pytest.approx(1.5)
    assert clock_tick_labels([0.0], later.start_clock_h, later.start) == ["01:30\n16 Jan"]
    plain = Clock.of(SimpleNamespace(start_hour=18.0)).after(7.5)
    assert plain.start is None and clock_tick_labels([0.0], plain.start_clock_h) == ["01:30\n+1d"]


def test_envelope_heat_map_ticks_are_clock_times_with_the_day() -> None:
    from v2gtwin.report.network_figures import fig_envelope_heatmap

    # 8 hourly steps from 22:00, one feeder of 3 buses: a tick every 8 // 4 = 2 steps, at 22:00, 00:00 (next
    # day), 02:00, 04:00.
    lim = np.ones((8, 3))
    fig = fig_envelope_heatmap(["f"], [["1", "2", "3"]], [lim], [lim], ["-"] * 8, Clock(22.0), 3600.0)
    assert tick_texts(fig.axes[0]) == ["22:00", "00:00\n+1d", "02:00", "04:00"]
