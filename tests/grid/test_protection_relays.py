"""Relay curves against their standards' equations and constants, operation on time-varying currents against
hand integration and scipy quadrature, and the generator versus inverter fault current in time."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.optimize import brentq

from v2gtwin.errors import DataError
from v2gtwin.grid.protection.relays import (
    CURVES,
    calc_inverter_fault_current_a,
    calc_sync_gen_fault_current_a,
    calc_trip_time_s,
    calc_trip_time_two_level_s,
    calc_trip_time_varying_s,
)
from v2gtwin.scenario import DeviceSpec


@pytest.mark.parametrize(
    ("curve", "expected_s"),
    [
        # IEC 60255-151 Table 1, t = TMS k / (M^alpha - 1) at M = 10, TMS = 1:
        ("iec_si", 2.9706),  # 0.14 / (10^0.02 - 1) = 0.14 / 0.047129 = 2.971 s (the value relay manuals print)
        ("iec_vi", 1.5),  # 13.5 / 9
        ("iec_ei", 0.80808),  # 80 / 99
        ("iec_lti", 13.3333),  # 120 / 9
        # IEEE C37.112 Table 1, t = TD (A / (M^p - 1) + B) at M = 10, TD = 1:
        ("ieee_mi", 1.20676),  # 0.0515 / 0.047129 + 0.1140 = 1.09276 + 0.1140
        ("ieee_vi", 0.68908),  # 19.61 / 99 + 0.491
        ("ieee_ei", 0.40655),  # 28.2 / 99 + 0.1217
    ],
)
def test_published_curve_values_at_ten_times_pickup(curve: str, expected_s: float) -> None:
    assert float(calc_trip_time_s(curve, 1000.0, 100.0, 1.0)) == pytest.approx(expected_s, rel=1e-4)


def test_time_dial_scales_time_and_no_operation_at_or_below_pickup() -> None:
    t = calc_trip_time_s("iec_si", [1000.0, 100.0, 50.0], 100.0, 0.1)
    assert t[0] == pytest.approx(0.29706, rel=1e-4)  # 0.1 x 2.9706
    assert np.isinf(t[1:]).all()
    assert float(calc_trip_time_s("definite_time", 150.0, 100.0, 0.4)) == 0.4


def test_constant_current_integrates_to_the_closed_form() -> None:
    t = np.linspace(0.0, 5.0, 2001)
    got = calc_trip_time_varying_s("iec_vi", t, np.full(t.size, 400.0), 100.0, 0.5)
    assert got == pytest.approx(0.5 * 13.5 / 3.0, rel=1e-9)  # 2.25 s


def test_piecewise_current_against_hand_integration() -> None:
    # IEC SI, TMS 1, pickup 100 A: 200 A (M = 2) for 1 s, then 1000 A (M = 10).
    # t(2) = 0.14 / (2^0.02 - 1) = 10.0290 s; t(10) = 2.9706 s. After 1 s the integral is 1 / 10.0290 = 0.09971;
    # the rest, 0.90029, takes 0.90029 x 2.9706 = 2.6744 s: operation at 3.6744 s.
    t = np.array([0.0, 1.0, 1.0, 10.0])
    i = np.array([200.0, 200.0, 1000.0, 1000.0])
    assert calc_trip_time_varying_s("iec_si", t, i, 100.0, 1.0) == pytest.approx(3.6744, rel=1e-4)
    two = calc_trip_time_two_level_s("iec_si", 200.0, 1000.0, 100.0, 1.0, 1.0)
    assert float(two) == pytest.approx(3.6744, rel=1e-4)
    # The other way round (aggregators adding current then tripping at 1 s): 1000 A trips first, at 2.9706 s > 1 s:
    # 1 / 2.9706 = 0.33663 done, the rest 0.66337 at 200 A takes 6.6530 s: operation at 7.6530 s.
    assert float(calc_trip_time_two_level_s("iec_si", 1000.0, 200.0, 100.0, 1.0, 1.0)) == pytest.approx(7.6530, 1e-4)


def test_ramp_current_against_scipy_quadrature() -> None:
    # Current rising linearly from 150 A to 1500 A over 4 s (pickup 100 A, IEEE VI, TD 2): the operating time
    # solves int_0^T dt / t(I(t)) = 1, found here with scipy's quad and brentq, independently of our trapezoids.
    def rate(s: float) -> float:
        m = (150.0 + (1500.0 - 150.0) * s / 4.0) / 100.0
        return 1.0 / (2.0 * (19.61 / (m**2 - 1.0) + 0.491))

    expected = brentq(lambda x: quad(rate, 0.0, x)[0] - 1.0, 1e-6, 4.0)
    t = np.linspace(0.0, 4.0, 4001)
    got = calc_trip_time_varying_s("ieee_vi", t, 150.0 + 1350.0 * t / 4.0, 100.0, 2.0)
    assert got == pytest.approx(expected, rel=1e-4)


def test_definite_time_needs_the_whole_delay_above_pickup() -> None:
    t = np.array([0.0, 0.3, 0.3, 0.5, 0.5, 2.0])
    i = np.array([500.0, 500.0, 50.0, 50.0, 500.0, 500.0])
    # Above pickup 0-0.3 s (resets below it), again from 0.5 s: with a 0.4 s delay it operates at 0.9 s.
    assert calc_trip_time_varying_s("definite_time", t, i, 100.0, 0.4) == pytest.approx(0.9)


def test_generator_decays_inverter_stays_flat() -> None:
    # Kundur's expression at t = 0 gives E / X''d = 1 / 0.2 = 5 pu; for t >> T'd it tends to E / Xd = 1 / 1.8 pu.
    t = np.array([0.0, 0.1, 1.0, 30.0])
    gen = calc_sync_gen_fault_current_a(t, 100.0)
    assert gen[0] == pytest.approx(500.0)
    assert gen[-1] == pytest.approx(100.0 / 1.8, rel=1e-6)
    # At 1 s: (5 - 3.333) e^(-1/0.035) + (3.333 - 0.5556) e^(-1) + 0.5556 = 0 + 1.02188 + 0.55556 = 1.57744 pu.
    assert gen[2] == pytest.approx(157.744, rel=1e-4)
    assert np.all(np.diff(gen) < 0)
    inv = calc_inverter_fault_current_a(t, 100.0, 1.5, 0.5)
    assert inv.tolist() == [150.0, 150.0, 0.0, 0.0]
    assert calc_inverter_fault_current_a(t, 100.0, 1.5, None).tolist() == [150.0] * 4


def test_relay_on_decaying_generator_current_against_quadrature() -> None:
    # Pickup 40 A (the generator's lasting current is 100 / 1.8 = 55.6 A): the relay integrates the decaying
    # current and operates later than at the initial 500 A; scipy's quad + brentq on Kundur's expression agree.
    t = np.linspace(0.0, 20.0, 200001)
    i = calc_sync_gen_fault_current_a(t, 100.0)
    varying = calc_trip_time_varying_s("iec_si", t, i, 40.0, 0.2)

    def rate(s: float) -> float:
        return 1.0 / float(calc_trip_time_s("iec_si", calc_sync_gen_fault_current_a(s, 100.0), 40.0, 0.2))

    expected = brentq(lambda x: quad(rate, 0.0, x, limit=200, points=[0.035, 0.1])[0] - 1.0, 1e-6, 20.0)
    assert varying == pytest.approx(expected, rel=1e-4)
    assert varying > float(calc_trip_time_s("iec_si", i[0], 40.0, 0.2))
    # Pickup 120 A, above the lasting 55.6 A: the current decays below pickup before the relay operates.
    assert math.isinf(calc_trip_time_varying_s("iec_si", t, i, 120.0, 0.2))
    # An inverter at 1.5 x 100 A for 1 s then tripped never reaches a 200 A pickup at all.
    inv = calc_inverter_fault_current_a(t, 100.0, 1.5, 1.0)
    assert math.isinf(calc_trip_time_varying_s("iec_si", t, inv, 200.0, 0.2))


def test_unknown_curve_is_an_error_and_scenario_curves_are_the_registry() -> None:
    with pytest.raises(DataError, match="curve: must be one of"):
        calc_trip_time_s("iec_xx", 1.0, 1.0, 1.0)
    allowed = set(DeviceSpec.model_fields["curve"].annotation.__args__)  # type: ignore[union-attr]
    assert allowed == set(CURVES)
