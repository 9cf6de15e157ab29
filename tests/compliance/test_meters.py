"""Worst-case error of a sum of meters: by hand, against brute force over every error sign, and bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from v2gtwin.compliance.meters import calc_sum_error_bound_pct
from v2gtwin.errors import DataError


def _signed(c: list[float], e: list[float]) -> float:
    """The bound for one-directional meters given as signed energies (+ import, - export)."""
    e_arr = np.asarray(e, dtype=float)
    return calc_sum_error_bound_pct(c, np.clip(e_arr, 0, None), np.clip(-e_arr, 0, None))


def test_two_opposing_flows_by_hand() -> None:
    # Two class-1.0 EVSE meters: 40 kWh charging, 36 kWh V2G export. Errors up to 1 % x 40 = 0.40 kWh and
    # 1 % x 36 = 0.36 kWh add to 0.76 kWh on a net of 40 - 36 = 4 kWh: 0.76 / 4 = 19 % (95 x the 0.2 % class).
    assert _signed([1.0, 1.0], [40.0, -36.0]) == pytest.approx(19.0)


def test_one_bidirectional_meter_by_hand() -> None:
    # One class-0.5 EVSE meter that imported 40 kWh and exported 36 kWh: its net reading is 4 kWh, but each
    # register may be off by 0.5 % of its own reading: 0.5 % x 40 + 0.5 % x 36 = 0.38 kWh on 4 kWh = 9.5 %
    # (not 0.5 %, which a single signed net energy of 4 kWh would give).
    assert calc_sum_error_bound_pct([0.5], [40.0], [36.0]) == pytest.approx(9.5)
    # With a second, import-only class-0.2 meter of 100 kWh: (0.38 + 0.2) / (4 + 100) = 0.58 / 104 = 0.5577 %.
    assert calc_sum_error_bound_pct([0.5, 0.2], [40.0, 100.0], [36.0, 0.0]) == pytest.approx(0.58 / 104 * 100)


def test_same_class_same_sign_is_the_class() -> None:
    # Ten class-0.2 meters all importing: 0.2 % x sum|E| / |sum E| = 0.2 %.
    assert _signed([0.2] * 10, list(np.arange(1.0, 11.0))) == pytest.approx(0.2)


def test_mixed_classes_by_hand() -> None:
    # 0.2 % x 100 + 0.5 % x 50 + 1.0 % x 30 = 0.2 + 0.25 + 0.3 = 0.75 kWh on 100 + 50 - 30 = 120 kWh: 0.625 %.
    assert _signed([0.2, 0.5, 1.0], [100.0, 50.0, -30.0]) == pytest.approx(0.625)


def test_net_zero_is_unbounded_and_nothing_is_undefined() -> None:
    assert _signed([0.5, 0.5], [10.0, -10.0]) == float("inf")
    # No energy at all: 0 / 0, undefined (the audit reports the sum as not assessed), not a 0 % error.
    assert np.isnan(_signed([0.5, 0.5], [0.0, 0.0]))


@pytest.mark.parametrize("seed", range(5))
def test_bound_is_the_worst_vertex_by_brute_force(seed: int) -> None:
    # The error of each reading lies in [-c_i |E_i|, +c_i |E_i|] / 100; the largest |sum of errors| over that box
    # is at a vertex: enumerate all 2^n sign choices.
    rng = np.random.default_rng(seed)
    n = 7
    c = rng.choice([0.1, 0.2, 0.5, 1.0, 2.0], n)
    e = rng.normal(0.0, 30.0, n)
    worst_kwh = max(
        abs(sum(s * ci * abs(ei) / 100 for s, ci, ei in zip(signs, c, e, strict=True)))
        for signs in itertools.product((-1, 1), repeat=n)
    )
    assert _signed(list(c), list(e)) == pytest.approx(100 * worst_kwh / abs(e.sum()), rel=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_bidirectional_bound_is_the_worst_vertex_by_brute_force(seed: int) -> None:
    # Each meter has an import and an export register, each with its own error in [-c E, +c E] / 100; the net's
    # error is err_imp - err_exp summed: enumerate all 2^(2n) sign choices.
    rng = np.random.default_rng(seed)
    n = 4
    c = rng.choice([0.1, 0.2, 0.5, 1.0], n)
    imp = rng.uniform(0.0, 50.0, n)
    exp = rng.uniform(0.0, 50.0, n)
    worst_kwh = max(
        abs(
            sum(
                si * ci * ii / 100 - sx * ci * xi / 100
                for si, sx, ci, ii, xi in zip(s[:n], s[n:], c, imp, exp, strict=True)
            )
        )
        for s in itertools.product((-1, 1), repeat=2 * n)
    )
    assert calc_sum_error_bound_pct(c, imp, exp) == pytest.approx(100 * worst_kwh / abs((imp - exp).sum()), rel=1e-12)


def test_monte_carlo_errors_stay_inside_the_bound() -> None:
    rng = np.random.default_rng(1)
    c = np.array([1.0, 1.0, 0.5])
    e = np.array([40.0, -36.0, 10.0])
    bound = _signed(list(c), list(e))
    err = rng.uniform(-1, 1, (100_000, 3)) * c * np.abs(e) / 100
    rel_pct = 100 * np.abs(err.sum(axis=1)) / abs(e.sum())
    assert rel_pct.max() <= bound
    assert rel_pct.max() > 0.8 * bound  # the bound is not loose: random draws come close to it


@pytest.mark.parametrize(
    ("c", "imp", "exp"),
    [
        ([0.2], [1.0, 2.0], [0.0, 0.0]),
        ([], [], []),
        ([-0.2], [1.0], [0.0]),
        ([0.2], [float("nan")], [0.0]),
        ([[0.2]], [[1.0]], [[0.0]]),
        ([0.2], [-1.0], [0.0]),
    ],
)
def test_bad_input(c: list, imp: list, exp: list) -> None:  # type: ignore[type-arg]
    with pytest.raises(DataError, match="meter sum"):
        calc_sum_error_bound_pct(c, imp, exp)
