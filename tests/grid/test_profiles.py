"""The daily base-load shape: IEEE RTS-79 Table 3, winter weekday."""

from __future__ import annotations

import numpy as np

from v2gtwin.grid.profiles import calc_daily_profile


def test_hourly_values_of_the_published_table() -> None:
    # RTS-79 Table 3, winter weekday: 67 % at 00-01 h, peak 100 % at 17-19 h, 63 % at 23-24 h.
    prof = calc_daily_profile(24, 3600.0, 0.0)
    assert prof[0] == 0.67 and prof[17] == 1.0 and prof[18] == 1.0 and prof[23] == 0.63
    assert prof.max() == 1.0 and prof.argmin() in (3, 4)


def test_quarter_hours_from_noon_follow_the_clock() -> None:
    prof = calc_daily_profile(96, 900.0, 12.0)
    # Step 0 starts at 12:00 (95 %), step 16 at 16:00 (99 %), step 20 at 17:00 (100 %), step 48 at 00:00 (67 %).
    np.testing.assert_allclose(prof[[0, 16, 20, 48]], [0.95, 0.99, 1.0, 0.67])
    np.testing.assert_allclose(prof[:4], 0.95)


def test_bdew_shapes_against_their_quarter_hour_source_values() -> None:
    # BDEW H25 / G25, January working day, quarter-hour values as tabulated in demandlib's bdew_data/*.csv.
    # H25 00:00-01:00: 20.126, 18.915, 17.959, 17.202 (mean 18.551); peak hour 18:00-19:00 mean 41.635.
    # G25 07:00-08:00: 38.015, 42.134, 46.767, 52.068 (mean 44.746); peak hour 10:00-11:00 mean 68.030.
    res = calc_daily_profile(24, 3600.0, 0.0, "residential")
    com = calc_daily_profile(24, 3600.0, 0.0, "commercial")
    assert res.argmax() == 18 and com.argmax() == 10 and res.max() == com.max() == 1.0
    np.testing.assert_allclose(res[0], 18.551 / 41.635, atol=5e-4)  # table rounded to 0.1 %
    np.testing.assert_allclose(com[7], 44.746 / 68.030, atol=5e-4)
    mixed = calc_daily_profile(24, 3600.0, 0.0, "mixed")
    np.testing.assert_allclose(mixed, (res + com) / (res + com).max())


def test_shift_delays_the_whole_day() -> None:
    # A one-hour delay: the value at 19:00 is the unshifted value of 18:00 (the residential peak).
    shifted = calc_daily_profile(24, 3600.0, 0.0, "residential", shift_h=1.0)
    plain = calc_daily_profile(24, 3600.0, 0.0, "residential")
    np.testing.assert_array_equal(shifted, np.roll(plain, 1))
    assert shifted[19] == 1.0


def test_unknown_shape_is_an_error() -> None:
    import pytest

    from v2gtwin.errors import DataError

    with pytest.raises(DataError, match="shape = 'industrial'"):
        calc_daily_profile(4, 900.0, 0.0, "industrial")
