"""Coordination against hand computations: CTI of a pair, sympathetic tripping on back-feed, blinding by an
aggregator between the relay and the fault, proposed settings, the failing fleet size against a brute-force
scan, and the default IEEE 33-bus scheme against pandapower's load currents."""

from __future__ import annotations

import math

import numpy as np
import pytest

from v2gtwin.errors import DataError
from v2gtwin.grid.feeder import Feeder, ieee33, to_pandapower
from v2gtwin.grid.protection.coordination import (
    CoordinationOptions,
    calc_device_currents,
    check_coordination,
    run_coordination,
)
from v2gtwin.grid.protection.devices import (
    Device,
    Scheme,
    calc_load_current_a,
    find_lateral_heads,
    place_default_devices,
)
from v2gtwin.grid.protection.faults import Aggregators, GridSource
from v2gtwin.grid.protection.search import find_failing_scale, propose_settings

SRC = GridSource(s_sc_mva=100.0, r_over_x=0.1, c_factor=1.1)
V_PRE = 1.1 * 10_000 / math.sqrt(3.0)  # equivalent source voltage at 10 kV [V]
Z_Q = complex(0.1094541, 1.094541)  # 1.1 * 10^2 / 100 ohm at R/X 0.1


def iec_si(i: float, pickup: float, tms: float) -> float:
    """IEC 60255-151 standard inverse, written out here independently of the package."""
    m = i / pickup
    return tms * 0.14 / (m**0.02 - 1.0) if m > 1 else math.inf


def feeder(parent: list[int], z: list[complex]) -> Feeder:
    n = len(parent)
    return Feeder(
        name="test",
        parent=np.array(parent),
        r_ohm=np.array([c.real for c in z]),
        x_ohm=np.array([c.imag for c in z]),
        v_base_kv=10.0,
        p_load_kw=np.zeros(n),
        q_load_kvar=np.zeros(n),
        ampacity_a=np.full(n, np.inf),
    )


def y_feeder() -> Feeder:
    """0 -(1+2j)- 1, then two laterals 1 -(0.5+0.5j)- 2 and 1 -(0.5+0.5j)- 3."""
    return feeder([-1, 0, 1, 1], [0j, 1 + 2j, 0.5 + 0.5j, 0.5 + 0.5j])


def test_cti_of_a_pair_by_hand() -> None:
    f = y_feeder()
    devs = [
        Device("H", 1, "iec_si", 300.0, 0.3),
        Device("A", 2, "iec_si", 100.0, 0.1),
        Device("B", 3, "iec_si", 100.0, 0.1),
    ]
    scheme = Scheme.build(f, devs)
    assert scheme.upstream.tolist() == [-1, 0, 0] and scheme.zone.tolist() == [-1, 0, 1, 2]
    opts = CoordinationOptions(t_ride_through_s=None)
    cur = calc_device_currents(f, SRC, None, scheme, opts)
    chk = check_coordination(f, scheme, cur, opts)
    # Fault at bus 2 (A's zone): |V / (Z_Q + z1 + z2)|, the same current through H and A.
    i2 = abs(V_PRE / (Z_Q + (1 + 2j) + (0.5 + 0.5j)))  # = 1612.543 A
    k = chk.down.tolist().index(1)
    assert chk.fault_bus[k] == 2 and chk.i_down_a[k] == pytest.approx(i2, rel=1e-6)
    assert chk.cti_s[k] == pytest.approx(iec_si(i2, 300.0, 0.3) - iec_si(i2, 100.0, 0.1), rel=1e-6)
    assert not chk.miscoordinated.any() and chk.ok


def test_sympathetic_trip_on_backfeed_from_a_healthy_lateral() -> None:
    f = y_feeder()
    aggs = Aggregators(bus=np.array([3]), s_rated_kva=np.array([2000.0]), k=1.5, label=("V2G 3",))
    i_a = 1.5 * 2000.0 / (math.sqrt(3.0) * 10.0)  # 173.205 A fed back through B for a fault on lateral A
    devs = [
        Device("H", 1, "iec_si", 300.0, 0.3),
        Device("A", 2, "iec_si", 100.0, 0.3),
        Device("B", 3, "iec_si", 100.0, 0.05),  # B: t(173.2 A) = 0.05 x 0.14 / (1.7321^0.02 - 1) = 0.636 s
    ]
    scheme = Scheme.build(f, devs)
    opts = CoordinationOptions(t_ride_through_s=1.0)
    base, v2g, _, _ = run_coordination(f, SRC, aggs, scheme, opts)
    assert v2g.i_backfeed_a[2] == pytest.approx(i_a, rel=1e-9)
    assert v2g.t_backfeed_s[2] == pytest.approx(iec_si(i_a, 100.0, 0.05), rel=1e-9)
    # A clears a fault at bus 2 in about 0.3 x 0.14 / ((1.6e3 / 100)^0.02 - 1) = 0.73 s > 0.636 s: B trips first.
    assert v2g.sympathetic.tolist() == [False, False, True]
    assert not base.sympathetic.any()
    # With B's pickup above the back-feed it stays put.
    safe = scheme.with_settings([300.0, 100.0, 180.0], [0.3, 0.3, 0.05])
    _, v2g_safe, _, _ = run_coordination(f, SRC, aggs, safe, opts)
    assert not v2g_safe.sympathetic.any()


def test_blinding_by_an_aggregator_between_relay_and_fault() -> None:
    # Chain 0 -(1+2j)- 1 -(0.5+0.5j)- 2, head relay on branch 1, 20 MVA of V2G at bus 1 (k = 2, -90 deg):
    # I_a = 2 x 20000 / (sqrt(3) x 10) = 2309.40 A. Fault at 2: without V2G the relay sees 1612.543 A; with it,
    # |I_grid - I_a z2 / Z_22| = 1351.537 A, below the 1400 A pickup for the 1 s ride-through; after it the grid's
    # 1612.543 A (M = 1.151816) needs 0.1 x 0.14 / 0.0028308 = 4.9456 s: operation at 5.9456 s.
    f = feeder([-1, 0, 1], [0j, 1 + 2j, 0.5 + 0.5j])
    aggs = Aggregators(bus=np.array([1]), s_rated_kva=np.array([20_000.0]), k=2.0)
    scheme = Scheme.build(f, [Device("H", 1, "iec_si", 1400.0, 0.1)])
    opts = CoordinationOptions(t_ride_through_s=1.0, t_max_s=5.5, combination="phasor", angle_deg=-90.0)
    base, v2g, _, cur = run_coordination(f, SRC, aggs, scheme, opts)
    assert cur.i_first_a[2, 0] == pytest.approx(1351.537, rel=1e-6)
    assert base.t_blind_s[0] == pytest.approx(4.9456, rel=1e-4) and not base.blinded[0]
    assert v2g.t_blind_s[0] == pytest.approx(5.9456, rel=1e-4) and v2g.blinded[0]


def test_device_that_can_never_trip_is_named() -> None:
    f = y_feeder()
    scheme = Scheme.build(f, [Device("H", 1, "iec_si", 300.0, 0.3), Device("R-far", 2, "iec_si", 99_000.0, 0.1)])
    with pytest.raises(DataError, match=r"device R-far: pickup 99,000 A .* it can never trip"):
        run_coordination(f, SRC, None, scheme, CoordinationOptions())


def test_proposed_settings_restore_cti_by_hand() -> None:
    f = y_feeder()
    # H too fast for A: miscoordinated without V2G already.
    scheme = Scheme.build(
        f,
        [
            Device("H", 1, "iec_si", 300.0, 0.1),
            Device("A", 2, "iec_si", 100.0, 0.1),
            Device("B", 3, "iec_si", 100.0, 0.1),
        ],
    )
    opts = CoordinationOptions(t_ride_through_s=None, t_max_s=10.0)
    cur = calc_device_currents(f, SRC, None, scheme, opts)
    assert check_coordination(f, scheme, cur, opts).miscoordinated.any()
    prop = propose_settings(f, scheme, [cur], opts)
    assert prop.feasible.all() and prop.restored
    i2 = abs(V_PRE / (Z_Q + (1 + 2j) + (0.5 + 0.5j)))  # close-in fault of A and of B: 1612.543 A
    tds_h = prop.tds[0]
    cti = iec_si(i2, prop.pickup_a[0], tds_h) - iec_si(i2, prop.pickup_a[1], prop.tds[1])
    assert cti >= 0.3 - 1e-9
    # Smallest in 0.01 steps: one step less misses the margin.
    assert iec_si(i2, prop.pickup_a[0], tds_h - 0.01) - iec_si(i2, prop.pickup_a[1], prop.tds[1]) < 0.3


def test_failing_fleet_size_matches_a_brute_force_scan() -> None:
    f = y_feeder()
    aggs = Aggregators(bus=np.array([3]), s_rated_kva=np.array([500.0]), k=1.5)
    scheme = Scheme.build(
        f,
        [
            Device("H", 1, "iec_si", 300.0, 0.3),
            Device("A", 2, "iec_si", 100.0, 0.3),
            Device("B", 3, "iec_si", 60.0, 0.05),
        ],
    )
    opts = CoordinationOptions(t_ride_through_s=1.0, t_max_s=10.0)
    found = find_failing_scale(f, SRC, aggs, scheme, opts, scale_max=20.0, tol=0.001)
    scan = np.linspace(0.0, 20.0, 4001)
    bad = [
        not check_coordination(f, scheme, calc_device_currents(f, SRC, aggs.scaled(s), scheme, opts), opts).ok
        for s in scan
    ]
    first = scan[int(np.argmax(bad))]
    assert found.scale is not None and found.scale == pytest.approx(first, abs=0.006)
    assert found.first_issue == {"sympathetic": 1}


def test_default_ieee33_scheme_against_pandapower_load_currents() -> None:
    import pandapower as pp

    f = ieee33()
    head, laterals = find_lateral_heads(f)
    # Baran & Wu: the main line 1-18, laterals starting at buses 19, 23 and 26 (from 2, 3 and 6).
    assert f.bus_labels[head] == "2" and f.bus_labels[laterals].tolist() == ["19", "23", "26"]
    net = to_pandapower(f)
    pp.runpp(net)
    i_pp = np.concatenate(([0.0], net.res_line.i_ka.to_numpy() * 1000.0))
    i_load = calc_load_current_a(f, f.p_load_kw, f.q_load_kvar)
    assert i_load[1:] == pytest.approx(i_pp[1:], rel=1e-6)
    devs = place_default_devices(f, i_load)
    assert [d.pickup_a for d in devs] == [math.ceil(1.5 * i_pp[d.branch]) for d in devs]
    scheme = Scheme.build(f, devs)
    # At the full nominal load (the scenario uses half of it at peak) the 316 A head pickup makes the backup
    # time at bus 18 about 2.4 s: allow 3 s here.
    opts = CoordinationOptions(t_max_s=3.0)
    cur = calc_device_currents(f, SRC, None, scheme, opts)
    prop = propose_settings(f, scheme, [cur], opts, i_load_max_a=i_load)
    assert prop.restored
    # The head relay's dial is the smallest giving every lateral CTI >= 0.3 s at its close-in fault.
    for d in (1, 2, 3):
        b = devs[d].branch
        i_f = cur.i_first_a[b, d]
        t_d = iec_si(i_f, prop.pickup_a[d], prop.tds[d])
        assert iec_si(i_f, prop.pickup_a[0], prop.tds[0]) - t_d >= 0.3 - 1e-9
    assert (
        min(
            iec_si(cur.i_first_a[devs[d].branch, d], prop.pickup_a[0], prop.tds[0] - 0.01)
            - iec_si(cur.i_first_a[devs[d].branch, d], prop.pickup_a[d], prop.tds[d])
            for d in (1, 2, 3)
        )
        < 0.3
    )


def test_default_scheme_that_cannot_be_coordinated_is_named_not_raised() -> None:
    # At the full nominal load the 33-bus head relay needs a 316 A pickup; its backup reach to bus 18 then takes
    # more than the 2 s blinding limit at the dial its CTI needs (see the test above): the study goes on, and a note
    # names the device and why.
    from v2gtwin.grid.protection.analysis import run_protection_analysis
    from v2gtwin.scenario import ProtectionSpec

    f = ieee33()
    no_evs = np.zeros(0)
    spec = ProtectionSpec(s_sc_mva=100.0, r_over_x=0.1)  # grid data set: no note about defaults
    an = run_protection_analysis(f, spec, no_evs.astype(int), no_evs, f.p_load_kw, f.q_load_kvar)
    (note,) = an.notes
    assert note.startswith("default scheme: R2 (head) keeps pickup 316 A") and "2.0 s" in note
    assert an.summary()["notes"] == [note] and an.aggregators.n == 0 and an.scale.scale is None


def test_backfeed_stops_at_the_ride_through_time() -> None:
    # The sympathetic case above (B operates on its 173.2 A back-feed at 0.636 s, A clears the fault at bus 2
    # at about 0.73 s), but the inverters trip after 0.5 s: B's integral of 1/t(I) only reaches 0.5 / 0.636 =
    # 0.79 < 1 before the back-feed stops, so B does not operate.
    f = y_feeder()
    aggs = Aggregators(bus=np.array([3]), s_rated_kva=np.array([2000.0]), k=1.5)
    scheme = Scheme.build(
        f,
        [
            Device("H", 1, "iec_si", 300.0, 0.3),
            Device("A", 2, "iec_si", 100.0, 0.3),
            Device("B", 3, "iec_si", 100.0, 0.05),
        ],
    )
    _, v2g_long, _, _ = run_coordination(f, SRC, aggs, scheme, CoordinationOptions(t_ride_through_s=1.0))
    _, v2g_short, _, _ = run_coordination(f, SRC, aggs, scheme, CoordinationOptions(t_ride_through_s=0.5))
    assert v2g_long.sympathetic[2] and not v2g_short.sympathetic[2]


def test_a_fault_elsewhere_is_cleared_by_the_first_device_to_operate() -> None:
    # Y feeder, 2 MVA of V2G at bus 3 (k 1.5, purely reactive, phasor sum), ride-through for the whole fault.
    # B's back-feed: 1.5 x 2000 / (sqrt(3) x 10) = 173.205 A. Faults B does not protect:
    #   bus 1 (H's zone): H sees the grid's part alone, |V / Z_11| = 1931.871 A (the aggregator's current reaches
    #     the fault through branch 1-3 only, not through H) -> t_H = iec_si(1931.871, 300, 0.3) = 1.107 s;
    #   bus 2 (A's zone): A operates first, at about 0.73 s; H, slower (it sees less), is only its backup;
    #   the adjacent feeder (source bus): a head relay like H at the grid's 5773.5 A, 0.69 s.
    # So the slowest clearing elsewhere is H's 1.107 s at bus 1, not H's backup time at bus 2 (~1.25 s).
    # B set to operate on its back-feed at 1.17 s, between the two, is therefore not sympathetic.
    f = y_feeder()
    aggs = Aggregators(bus=np.array([3]), s_rated_kva=np.array([2000.0]), k=1.5)
    i_a = 1.5 * 2000.0 / (math.sqrt(3.0) * 10.0)
    i_1 = abs(V_PRE / (Z_Q + (1 + 2j)))  # 1931.871 A
    t_h1 = iec_si(i_1, 300.0, 0.3)
    tds_b = 1.17 / iec_si(i_a, 100.0, 1.0)
    scheme = Scheme.build(
        f,
        [
            Device("H", 1, "iec_si", 300.0, 0.3),
            Device("A", 2, "iec_si", 100.0, 0.3),
            Device("B", 3, "iec_si", 100.0, tds_b),
        ],
    )
    opts = CoordinationOptions(t_ride_through_s=None, combination="phasor", angle_deg=-90.0)
    _, v2g, _, cur = run_coordination(f, SRC, aggs, scheme, opts)
    assert t_h1 == pytest.approx(1.107, abs=1e-3)
    # H's backup time for the fault at bus 2 is slower than 1.17 s: the wrong rule (last device) would trip B.
    assert iec_si(cur.i_first_a[2, 0], 300.0, 0.3) > 1.2
    assert v2g.t_clear_slowest_s[2] == pytest.approx(t_h1, rel=1e-6)  # Z_Q above is rounded to 7 digits
    assert v2g.t_backfeed_s[2] == pytest.approx(1.17, rel=1e-9)
    assert not v2g.sympathetic[2]


def test_grid_short_circuit_data_left_to_the_defaults_is_named() -> None:
    # The scenario's [protection] gives s_sc_mva = 100 MVA and r_over_x = 0.1 as defaults; a scenario that sets
    # neither (or one) must say that the fault currents rest on assumed grid data, naming what was assumed.
    from v2gtwin.grid.protection.analysis import grid_source_notes
    from v2gtwin.scenario import parse_scenario

    (both,) = grid_source_notes(parse_scenario({}).protection)
    assert "s_sc_mva = 100, r_over_x = 0.1" in both
    (one,) = grid_source_notes(parse_scenario({"protection": {"s_sc_mva": 250.0}}).protection)
    assert "r_over_x = 0.1" in one and "s_sc_mva" not in one.split("(")[0]
    assert grid_source_notes(parse_scenario({"protection": {"s_sc_mva": 250.0, "r_over_x": 0.2}}).protection) == ()


def chain4() -> Feeder:
    """0 -(1+2j)- 1 -(0.5+0.5j)- 2 -(0.5+0.5j)- 3 at 10 kV."""
    return feeder([-1, 0, 1, 2], [0j, 1 + 2j, 0.5 + 0.5j, 0.5 + 0.5j])


def test_cti_is_taken_at_the_close_in_fault_of_the_downstream_zone() -> None:
    # A on branch 2 protects buses 2 and 3; the largest current through it is for the fault at bus 2 (nearest the
    # source): |V / (Z_Q + z1 + z2)| = 1612.543 A, not the 1378.8 A of bus 3. The CTI is H's time minus A's there.
    f = chain4()
    scheme = Scheme.build(f, [Device("H", 1, "iec_si", 300.0, 0.3), Device("A", 2, "iec_si", 100.0, 0.1)])
    opts = CoordinationOptions(t_ride_through_s=None, t_max_s=10.0)
    chk = check_coordination(f, scheme, calc_device_currents(f, SRC, None, scheme, opts), opts)
    i2 = abs(V_PRE / (Z_Q + (1 + 2j) + (0.5 + 0.5j)))
    assert chk.fault_bus.tolist() == [2]
    assert chk.cti_s[0] == pytest.approx(iec_si(i2, 300.0, 0.3) - iec_si(i2, 100.0, 0.1), rel=1e-6)


def test_blinding_of_the_backup_relay_for_a_fault_in_the_downstream_zone() -> None:
    # Chain 0-1-2-3; H (pickup 1200 A, TMS 0.1) backs up A on branch 3; 20 MVA of V2G at bus 2 (k 2, -90 deg,
    # I_a = 2309.40 A) sits between H and a fault at bus 3. H then sees I_grid(3) - I_a z3 / Z_33 (KCL on the
    # subtree of branch 1, Z_32 = Z_22), below its pickup while the inverters ride through (1 s); after that the
    # grid's 1378.8 A alone: operation at 1 s + t(1378.8 A), about 6.0 s. Without V2G: t(1378.8 A), about 5.0 s.
    # H's own zone is fast (bus 2: the aggregator's current does not pass H, 1612.5 A, 2.4 s), so only its backup
    # zone shows the blinding: limit 5.5 s.
    f = chain4()
    aggs = Aggregators(bus=np.array([2]), s_rated_kva=np.array([20_000.0]), k=2.0)
    scheme = Scheme.build(f, [Device("H", 1, "iec_si", 1200.0, 0.1), Device("A", 3, "iec_si", 100.0, 0.1)])
    opts = CoordinationOptions(t_ride_through_s=1.0, t_max_s=5.5, combination="phasor", angle_deg=-90.0)
    base, v2g, _, cur = run_coordination(f, SRC, aggs, scheme, opts)
    z33 = Z_Q + (1 + 2j) + 2 * (0.5 + 0.5j)
    i_a = -2j * 20_000.0 / (math.sqrt(3.0) * 10.0)
    i_grid3 = V_PRE / z33
    assert cur.i_first_a[3, 0] == pytest.approx(abs(i_grid3 - i_a * (0.5 + 0.5j) / z33), rel=1e-6)
    assert cur.i_first_a[3, 0] < 1200.0
    t_grid3 = iec_si(abs(i_grid3), 1200.0, 0.1)
    assert base.blind_bus[0] == 3 and base.t_blind_s[0] == pytest.approx(t_grid3, rel=1e-5)
    assert not base.blinded[0]
    assert v2g.blind_bus[0] == 3 and v2g.t_blind_s[0] == pytest.approx(1.0 + t_grid3, rel=1e-5)
    assert v2g.blinded.tolist() == [True, False]


def test_fault_plot_lines_follow_branches_not_lateral_ends() -> None:
    # Baran & Wu's IEEE 33-bus feeder plotted in bus-number order: the main line 1-18, then the laterals
    # 19-22 (fed from bus 2), 23-25 (from 3) and 26-33 (from 6). A line from 18 to 19, 22 to 23 or 25 to 26 would
    # join two buses no branch joins: the line must break exactly before buses 19, 23 and 26.
    from v2gtwin.report.protection import break_between_laterals

    f = ieee33()
    order = np.argsort([int(b) for b in f.bus_labels], kind="stable")
    x, y = break_between_laterals(order, f.parent, np.arange(f.n_bus, dtype=float))
    gaps = np.flatnonzero(np.isnan(y))
    assert y.size == f.n_bus + 3 and np.isnan(x[gaps]).all()
    before = [int(f.bus_labels[order[int(x[g - 1])]]) for g in gaps]
    after = [int(f.bus_labels[order[int(x[g + 1])]]) for g in gaps]
    assert before == [18, 22, 25] and after == [19, 23, 26]


def test_definite_time_pair_at_exactly_the_margin_is_coordinated() -> None:
    # Definite-time elements: H operates 0.5 s after pickup, A 0.2 s, whatever the current: CTI = 0.5 - 0.2 =
    # 0.3 s (exactly the double 0.3), which is not *below* the 0.3 s margin; 0.19 s more on A makes it 0.11 s.
    f = y_feeder()
    devs = [
        Device("H", 1, "definite_time", 300.0, 0.5),
        Device("A", 2, "definite_time", 100.0, 0.2),
        Device("B", 3, "definite_time", 100.0, 0.2),
    ]
    opts = CoordinationOptions(t_ride_through_s=None)
    scheme = Scheme.build(f, devs)
    chk = check_coordination(f, scheme, calc_device_currents(f, SRC, None, scheme, opts), opts)
    assert chk.cti_s.tolist() == [0.3, 0.3] and not chk.miscoordinated.any()
    slow = scheme.with_settings([300.0, 100.0, 100.0], [0.5, 0.39, 0.2])
    chk = check_coordination(f, slow, calc_device_currents(f, SRC, None, slow, opts), opts)
    assert chk.cti_s[0] == pytest.approx(0.11) and chk.miscoordinated.tolist() == [True, False]
