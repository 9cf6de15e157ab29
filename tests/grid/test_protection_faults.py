"""Fault currents: hand-computed phasor sums on a 3-bus chain, IEC 60909's closed form at the source bus, and
pandapower's IEC 60909 short circuit (``calc_sc``) on the IEEE 33-bus feeder with V2G aggregators."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from v2gtwin.errors import DataError
from v2gtwin.grid.feeder import Feeder, ieee33, to_pandapower
from v2gtwin.grid.protection.faults import (
    Aggregators,
    GridSource,
    calc_branch_fault_currents,
    calc_source_impedance_ohm,
    run_faults,
)


def chain3() -> Feeder:
    """0 -(1 + 2j ohm)- 1 -(0.5 + 0.5j ohm)- 2 at 10 kV."""
    return Feeder(
        name="chain3",
        parent=np.array([-1, 0, 1]),
        r_ohm=np.array([0.0, 1.0, 0.5]),
        x_ohm=np.array([0.0, 2.0, 0.5]),
        v_base_kv=10.0,
        p_load_kw=np.zeros(3),
        q_load_kvar=np.zeros(3),
        ampacity_a=np.full(3, np.inf),
    )


SRC = GridSource(s_sc_mva=100.0, r_over_x=0.1, c_factor=1.1)


def test_source_impedance_iec60909_eq1() -> None:
    # Z_Q = c U^2 / S''k = 1.1 * 10^2 / 100 = 1.1 ohm; X = 1.1 / sqrt(1 + 0.1^2) = 1.094541, R = 0.1094541.
    z = calc_source_impedance_ohm(SRC, 10.0)
    assert z.real == pytest.approx(0.1094541, rel=1e-6) and z.imag == pytest.approx(1.094541, rel=1e-6)


def test_fault_at_source_bus_is_s_sc_over_sqrt3_u() -> None:
    # IEC 60909: at the connection point I''k = c U_n / (sqrt(3) Z_Q) = S''k / (sqrt(3) U_n)
    # = 100 MVA / (sqrt(3) * 10 kV) = 5773.50 A, whatever c (it cancels).
    res = run_faults(chain3(), GridSource(100.0, 0.3, 1.0))
    assert res.i_fault_a[0] == pytest.approx(5773.503, rel=1e-6)


def test_hand_computed_phasor_sum_three_bus_chain() -> None:
    # Hand computation (10 kV, c = 1.1): V = 1.1 * 10000 / sqrt(3) = 6350.853 V.
    # Z_11 = Z_Q + z1 = 1.109454 + 3.094541j (|.| = 3.287411); Z_22 = Z_11 + z2 = 1.609454 + 3.594541j (3.938409).
    # Grid alone: I(1) = 6350.853 / 3.287411 = 1931.871 A, I(2) = 6350.853 / 3.938409 = 1612.543 A.
    # Aggregator at bus 1: 1000 kVA, k = 1.5 -> 1.5 * 1000 / (sqrt(3) * 10) = 86.6025 A at -90 deg (reactive).
    # Fault at 2: its share Z_12 / Z_22 = Z_11 / Z_22 -> 5.5416 - 72.0749j (72.2876 A);
    #   phasor sum |(658.9751 - 1471.7492j) + (5.5416 - 72.0749j)| = 1680.766 A; IEC sum 1612.543 + 72.288 = 1684.830 A.
    # Fault at 1: the aggregator's whole current: |(651.9786 - 1818.5291j) - 86.6025j| = 2013.604 A.
    f = chain3()
    aggs = Aggregators(bus=np.array([1]), s_rated_kva=np.array([1000.0]), k=1.5)
    base = run_faults(f, SRC)
    assert base.i_fault_a[1:] == pytest.approx([1931.871, 1612.543], rel=1e-6)
    ph = run_faults(f, SRC, aggs, combination="phasor", angle_deg=-90.0)
    iec = run_faults(f, SRC, aggs, combination="iec60909", angle_deg=-90.0)
    assert ph.i_fault_v2g_a[2] == pytest.approx(72.2876, rel=1e-5)
    assert ph.i_fault_a[2] == pytest.approx(1680.766, rel=1e-6)
    assert iec.i_fault_a[2] == pytest.approx(1684.830, rel=1e-6)
    assert ph.i_fault_a[1] == pytest.approx(2013.604, rel=1e-6)
    # Branch currents (KCL on the subtree): fault at 2, branch 1 carries I_f - I_a = I_grid(2) - I_a z2 / Z_22,
    # |.| = 1601.586 A; branch 2 the whole 1680.766 A. Fault at 1: branch 1 the grid's 1931.871 A, branch 2 none.
    br = np.abs(calc_branch_fault_currents(f, ph, aggs, [1, 2]))
    assert br[2] == pytest.approx([1601.586, 1680.766], rel=1e-6)
    assert br[1, 0] == pytest.approx(1931.871, rel=1e-6) and br[1, 1] == 0.0


def test_backfeed_on_a_healthy_branch_is_the_aggregator_current() -> None:
    # Aggregator at bus 2, fault at bus 1: the branch 1-2 carries the aggregator's current back, -86.6025 A.
    f = chain3()
    aggs = Aggregators(bus=np.array([2]), s_rated_kva=np.array([1000.0]), k=1.5)
    res = run_faults(f, SRC, aggs, combination="phasor", angle_deg=0.0)
    br = calc_branch_fault_currents(f, res, aggs, [2])
    assert br[1, 0] == pytest.approx(-86.60254 + 0j, abs=1e-4)


@pytest.mark.parametrize("angle_deg", [None, -90.0, 30.0])
def test_matches_pandapower_calc_sc_on_ieee33(angle_deg: float | None) -> None:
    import pandapower as pp
    import pandapower.shortcircuit as sc

    f = ieee33()
    buses = np.array([5, 12, 20, 28, 32])  # feeder indices (Baran & Wu buses 6, 13, 21, 29, 33)
    s_kva = np.array([800.0, 500.0, 1200.0, 600.0, 300.0])
    k = np.array([1.5, 2.0, 1.5, 1.8, 1.2])
    net = to_pandapower(f)
    net.ext_grid["s_sc_max_mva"] = 100.0
    net.ext_grid["rx_max"] = 0.1
    net.load["in_service"] = False  # IEC 60909 neglects loads; so does our model
    for b, s, kk in zip(buses, s_kva, k, strict=True):
        pp.create_sgen(net, int(b), p_mw=0.0, sn_mva=s / 1000.0, k=float(kk), generator_type="current_source")
    if angle_deg is not None:
        net.sgen["current_angle_degree"] = angle_deg
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandapower: "branch results are in beta mode"
        sc.calc_sc(net, case="max", branch_results=True, return_all_currents=True, ip=False)
    aggs = Aggregators(bus=buses, s_rated_kva=s_kva, k=k)
    ours = run_faults(f, SRC, aggs, combination="iec60909", angle_deg=angle_deg)
    # Bus currents: pandapower adds the magnitudes of the grid's and the current sources' parts (IEC 60909).
    assert ours.i_fault_a == pytest.approx(net.res_bus_sc.ikss_ka.to_numpy() * 1000.0, rel=0.01)
    assert ours.i_fault_a == pytest.approx(net.res_bus_sc.ikss_ka.to_numpy() * 1000.0, rel=1e-9)
    # Branch currents as phasors (line i feeds feeder bus i + 1; 'from' current flows into the line downstream).
    res = net.res_line_sc
    pp_ph = np.zeros((f.n_bus, f.n_bus - 1), dtype=complex)
    for (line, bus), row in res.iterrows():
        pp_ph[bus, line] = row.ikss_from_ka * 1000.0 * np.exp(1j * np.deg2rad(row.ikss_from_degree))
    ph = calc_branch_fault_currents(f, ours, aggs, np.arange(1, f.n_bus))
    big = np.abs(pp_ph) > 1.0
    assert np.abs(ph[big]) == pytest.approx(np.abs(pp_ph[big]), rel=0.01)
    assert np.max(np.abs(ph[big] - pp_ph[big]) / np.abs(pp_ph[big])) < 1e-6
    assert np.all(np.abs(ph[~big]) < 1.0)


def test_k_outside_physical_range_names_the_aggregator() -> None:
    with pytest.raises(DataError, match=r"V2G at 7: k .* allowed range 1.0 to 3.0, got 3.5"):
        Aggregators(bus=np.array([6]), s_rated_kva=np.array([100.0]), k=3.5, label=("V2G at 7",))


def test_missing_or_bad_short_circuit_data_is_an_error() -> None:
    with pytest.raises(DataError, match="s_sc_mva"):
        GridSource(s_sc_mva=float("nan"))
    with pytest.raises(DataError, match="c_factor"):
        GridSource(s_sc_mva=100.0, c_factor=1.3)


def test_fault_current_falls_along_the_feeder_without_v2g() -> None:
    # Property of a radial feeder fed from one end: every bus sees less current than its parent (impedances add).
    f = ieee33()
    i = run_faults(f, SRC).i_fault_a
    assert np.all(i[1:] < i[f.parent[1:]])
    assert math.isfinite(i.sum())


def test_tree_sums_match_a_dense_nodal_solve_on_a_random_feeder() -> None:
    # Brute force, independent of the tree sums: build the nodal admittance matrix of a seeded random 60-bus
    # feeder (the grid's Z_Q as a shunt at bus 0), short each bus in turn (superposition: the pre-fault source
    # voltage drives -V at the fault, the aggregators inject their currents) and solve the dense linear system.
    from v2gtwin.grid.feeder import synthetic_feeder

    f = synthetic_feeder(60, np.random.default_rng(7))
    n = f.n_bus
    rng = np.random.default_rng(8)
    buses = np.sort(rng.choice(np.arange(1, n), size=6, replace=False))
    aggs = Aggregators(bus=buses, s_rated_kva=rng.uniform(200.0, 900.0, 6), k=1.7)
    ours = run_faults(f, SRC, aggs, combination="phasor", angle_deg=30.0)
    y = np.zeros((n, n), dtype=complex)
    for j in range(1, n):
        yb = 1.0 / complex(f.r_ohm[j], f.x_ohm[j])
        p = f.parent[j]
        y[p, p] += yb
        y[j, j] += yb
        y[p, j] -= yb
        y[j, p] -= yb
    y[0, 0] += 1.0 / calc_source_impedance_ohm(SRC, f.v_base_kv)
    v_pre = 1.1 * f.v_base_kv * 1000.0 / math.sqrt(3.0)
    i_inj = np.zeros(n, dtype=complex)
    i_inj[buses] = 1.7 * aggs.s_rated_kva / (math.sqrt(3.0) * f.v_base_kv) * np.exp(1j * math.radians(30.0))
    z = np.linalg.inv(y)
    for fb in range(n):
        # Fault current = (pre-fault voltage + voltage the injections raise at fb) / Z_ff.
        expected = (v_pre + z[fb] @ i_inj) / z[fb, fb]
        assert ours.i_fault_a[fb] == pytest.approx(abs(expected), rel=1e-9)


def test_missing_short_circuit_power_in_the_scenario_is_named() -> None:
    from v2gtwin.grid.protection.analysis import grid_source
    from v2gtwin.scenario import ProtectionSpec

    with pytest.raises(DataError, match=r"protection\.s_sc_mva: the grid.s short-circuit power is missing"):
        grid_source(ProtectionSpec(s_sc_mva=None))
