"""Network-secure services (grid/secure.py): closed forms by hand, and the brute-force maximum under the rule."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

import numpy as np
import pytest
from scipy.optimize import linprog

from v2gtwin.errors import DataError
from v2gtwin.grid.secure import build_network_limits, calc_secure_band, calc_secure_change, summarize_gap


@dataclass(frozen=True)
class Env:
    """A hand-built operating envelope with the fields of the contract (grid/envelopes.OperatingEnvelope)."""

    feeder_name: str
    rule: str
    p_import_max_kw: np.ndarray
    p_export_max_kw: np.ndarray


def _env(name: str, imp: list[float], exp: list[float], n_steps: int = 1) -> Env:
    return Env(
        name,
        "equal_per_ev",
        np.tile(np.asarray(imp, float), (n_steps, 1)),
        np.tile(np.asarray(exp, float), (n_steps, 1)),
    )


def test_closed_form_two_feeders() -> None:
    # Feeder A: buses a0 (import 10, export 5), a1 (import 3, export 0); feeder B: bus b0 (import 20, export 8).
    limits = build_network_limits(
        [_env("A", [10.0, 3.0], [5.0, 0.0]), _env("B", [20.0], [8.0])],
        ev_feeder=[0, 0, 0, 1, 1],
        ev_bus=[0, 0, 1, 0, 0],
    )
    # Reserve-like request: every EV cuts its charging by 7 kW, from a baseline of 7 kW each except EV 2 (11 kW).
    p0 = np.array([7.0, 7.0, 11.0, 7.0, 7.0])
    dp = np.array([-7.0, -7.0, -7.0, -7.0, -7.0])
    res = calc_secure_change(limits, 0, p0, dp)
    # a0: P0 = 14, dP = -14, room = P0 + E = 19 >= 14 -> whole change, scale 1.
    # a1: P0 = 11 > import 3 (baseline already outside), dP = -7 toward the envelope, room = 11 + 0 = 11 -> 1.
    # b0: P0 = 14, dP = -14, room = 14 + 8 = 22 -> 1.
    np.testing.assert_allclose(res.scale_bus, [1.0, 1.0, 1.0])
    assert res.total_secure_kw == pytest.approx(-35.0)
    # V2G-like request on top: each EV goes to 6 kW of export, i.e. dp = -(p0 + 6).
    res = calc_secure_change(limits, 0, p0, -(p0 + 6.0))
    # a0: P0 14, dP -26, room 14 + 5 = 19 -> scale 19/26, secure -19 (bus ends at -5 = -export).
    # a1: P0 11, dP -17, room 11 + 0 = 11 -> scale 11/17, secure -11 (bus ends at 0).
    # b0: P0 14, dP -26, room 14 + 8 = 22 -> scale 22/26, secure -22.
    np.testing.assert_allclose(res.scale_bus, [19 / 26, 11 / 17, 22 / 26])
    np.testing.assert_allclose(res.dp_bus_secure_kw, [-19.0, -11.0, -22.0])
    np.testing.assert_allclose(res.dp_feeder_secure_kw, [-30.0, -22.0])
    np.testing.assert_allclose(res.dp_feeder_kw, [-43.0, -26.0])
    assert res.total_secure_kw == pytest.approx(-52.0)  # the sum over buses
    assert res.total_kw == pytest.approx(-69.0)
    assert res.n_bus_binding == 3
    # EVs at a bus share pro rata: EV 0 and 1 each give 19/26 of their 13 kW.
    np.testing.assert_allclose(res.dp_ev_kw[:2], [-13.0 * 19 / 26] * 2)


def test_increase_cut_at_import_limit_and_zero_headroom() -> None:
    limits = build_network_limits([_env("F", [10.0, 4.0, 0.0], [0.0, 0.0, 0.0])], [0, 0, 0, 0], [0, 1, 1, 2])
    p0 = np.array([2.0, 3.0, 3.0, 0.0])
    dp = np.array([20.0, 1.0, 3.0, 5.0])
    res = calc_secure_change(limits, 0, p0, dp)
    # bus 0: room 10 - 2 = 8 < 20 -> 8. bus 1: P0 6 > import 4 (outside), increase -> 0.
    # bus 2: zero headroom (import 0, P0 0) -> 0.
    np.testing.assert_allclose(res.dp_bus_secure_kw, [8.0, 0.0, 0.0])
    np.testing.assert_allclose(res.dp_ev_kw, [8.0, 0.0, 0.0, 0.0])
    assert res.n_bus_binding == 3


def test_window_takes_the_tightest_step() -> None:
    imp = np.array([[10.0], [4.0], [7.0]])
    env = Env("F", "per_bus_max", imp, np.zeros_like(imp))
    limits = build_network_limits([env], [0], [0])
    # Window steps 0..2: import min 4 -> an increase of 6 from 0 is cut to 4; step 0 alone lets 6 through.
    assert calc_secure_change(limits, [0, 1, 2], [0.0], [6.0]).total_secure_kw == pytest.approx(4.0)
    assert calc_secure_change(limits, 0, [0.0], [6.0]).total_secure_kw == pytest.approx(6.0)


def test_band_both_ways() -> None:
    limits = build_network_limits([_env("F", [5.0, 100.0], [2.0, 100.0])], [0, 0, 0], [0, 0, 1])
    # bus 0: two EVs idle (p0 0), band 4 kW each: up (charge) room 5 of 8 -> 5/8; down (export) room 2 of 8
    # -> 2/8; each EV keeps min(4*5/8, 4*2/8) = 1 kW. bus 1: band 3, rooms 100 -> 3.
    band, n_bind = calc_secure_band(limits, 0, [0.0, 0.0, 0.0], [4.0, 4.0, 3.0])
    np.testing.assert_allclose(band, [1.0, 1.0, 3.0])
    assert n_bind == 1


def _lp_max(ev_node: np.ndarray, p0: np.ndarray, dp: np.ndarray, imp: np.ndarray, exp: np.ndarray) -> float:
    """Largest |total change| any split gives (EV i gives x_i in [0, |dp_i|] in its own direction), each bus
    staying inside its envelope or moving toward it — solved by HiGHS (scipy), independent of the code."""
    n_node = imp.size
    sign = np.sign(dp)
    a = np.zeros((n_node, dp.size))
    a[ev_node, np.arange(dp.size)] = 1.0
    p0_bus = np.bincount(ev_node, p0, n_node)
    # every EV of a bus has the same sign in these cases: the bus's direction is that sign
    bus_sign = np.array([sign[ev_node == b][0] if (ev_node == b).any() else 1.0 for b in range(n_node)])
    room = np.where(bus_sign > 0, np.maximum(imp - p0_bus, 0), np.maximum(p0_bus + exp, 0))
    res = linprog(-np.ones(dp.size), A_ub=a, b_ub=room, bounds=list(zip(np.zeros(dp.size), np.abs(dp), strict=True)))
    assert res.status == 0
    return float(-res.fun)


@pytest.mark.parametrize("seed", range(25))
def test_random_cases_match_lp_maximum(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_f = int(rng.integers(1, 4))
    n_bus = rng.integers(1, 6, n_f)
    envs = [
        _env(
            f"F{f}",
            list(rng.uniform(0, 30, n_bus[f]) * (rng.random(n_bus[f]) > 0.2)),
            list(rng.uniform(0, 20, n_bus[f])),
        )
        for f in range(n_f)
    ]
    n_ev = int(rng.integers(1, 30))
    ev_f = rng.integers(0, n_f, n_ev)
    ev_b = np.array([rng.integers(0, n_bus[f]) for f in ev_f])
    limits = build_network_limits(envs, ev_f, ev_b)
    p0 = rng.uniform(-5, 11, n_ev)
    # Same direction at every bus: buses with even flattened index increase, odd ones decrease.
    sgn = np.where(limits.ev_node % 2 == 0, 1.0, -1.0)
    dp = sgn * rng.uniform(0, 15, n_ev)
    res = calc_secure_change(limits, 0, p0, dp)
    ref = _lp_max(limits.ev_node, p0, dp, limits.p_import_max_kw[0], limits.p_export_max_kw[0])
    assert np.abs(res.dp_ev_kw).sum() == pytest.approx(ref, rel=1e-7, abs=1e-7)
    # And the secure state of every bus is inside its envelope, or no farther out than its baseline.
    n_node = limits.p_import_max_kw.shape[1]
    p0_bus = np.bincount(limits.ev_node, p0, n_node)
    after = p0_bus + res.dp_bus_secure_kw
    assert (after <= np.maximum(limits.p_import_max_kw[0], p0_bus) + 1e-9).all()
    assert (after >= np.minimum(-limits.p_export_max_kw[0], p0_bus) - 1e-9).all()


def test_exhaustive_grid_on_a_tiny_bus() -> None:
    # Three EVs on one bus, import 9 kW, baseline 1 + 2 + 0 = 3 kW, requests +4, +5, +2: room 6 of 11.
    # Enumerate every split on a 0.25 kW grid: the best total within the room is 6 (= 11 * 6/11).
    limits = build_network_limits([_env("F", [9.0], [0.0])], [0, 0, 0], [0, 0, 0])
    p0, dp = np.array([1.0, 2.0, 0.0]), np.array([4.0, 5.0, 2.0])
    best = max(
        sum(x)
        for x in itertools.product(*(np.arange(0, d + 1e-9, 0.25) for d in dp))
        if p0.sum() + sum(x) <= 9.0 + 1e-12
    )
    assert calc_secure_change(limits, 0, p0, dp).total_secure_kw == pytest.approx(best)


def test_bad_input() -> None:
    with pytest.raises(DataError, match="p_import_max_kw must be finite"):
        build_network_limits([_env("F", [np.nan], [0.0])], [0], [0])
    with pytest.raises(DataError, match=re.escape("ev_bus of EV 1 = 3: allowed range 0..1 on feeder F")):
        build_network_limits([_env("F", [1.0, 1.0], [0.0, 0.0])], [0, 0], [0, 3])
    with pytest.raises(DataError, match=re.escape("ev_feeder: allowed range 0..0")):
        build_network_limits([_env("F", [1.0], [0.0])], [1], [0])
    limits = build_network_limits([_env("F", [1.0], [0.0], n_steps=4)], [0], [0])
    with pytest.raises(DataError, match="envelope steps"):
        calc_secure_change(limits, 4, [0.0], [1.0])
    with pytest.raises(DataError, match="one per EV"):
        calc_secure_change(limits, 0, [0.0, 1.0], [1.0])


def test_summarize_gap_keys() -> None:
    assert summarize_gap(5.0, 3.5, "reserve", "mw") == {
        "reserve_mw": 5.0,
        "reserve_secure_mw": 3.5,
        "reserve_network_gap_mw": 1.5,
    }
