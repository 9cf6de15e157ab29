"""Daily base-load shapes for feeder studies."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["RTS79_WINTER_WEEKDAY_PCT", "calc_daily_profile"]

#: Hourly load in percent of the daily peak, winter weekday (weeks 1-8 and 44-52), hour 0 = 00:00-01:00.
#: IEEE Reliability Test System Task Force, "IEEE Reliability Test System", IEEE Trans. PAS-98(6), 1979,
#: Table 3.
RTS79_WINTER_WEEKDAY_PCT: tuple[float, ...] = (
    67, 63, 60, 59, 59, 60, 74, 86, 95, 96, 96, 95,
    95, 95, 93, 94, 99, 100, 100, 96, 91, 83, 73, 63,
)  # fmt: skip


def calc_daily_profile(n_steps: int, dt_s: float, start_hour: float) -> npt.NDArray[np.float64]:
    """Base-load multiplier of each step [pu of the daily peak]: the RTS-79 winter-weekday value of the hour
    in which the step starts (local clock time ``start_hour + t * dt``)."""
    clock_h = (start_hour + np.arange(n_steps) * dt_s / 3600.0) % 24.0
    return np.asarray(RTS79_WINTER_WEEKDAY_PCT, dtype=float)[np.floor(clock_h + 1e-9).astype(int) % 24] / 100.0
