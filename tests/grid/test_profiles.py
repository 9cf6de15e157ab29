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
