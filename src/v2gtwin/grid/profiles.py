"""Daily base-load shapes for feeder studies.

Each shape is 24 hourly values in percent of the day's peak hour, hour 0 = 00:00-01:00 local time:

* ``rts79``: IEEE RTS-79 winter weekday (a system load: the single-feeder study's shape);
* ``residential``: BDEW H25 household profile, January working day;
* ``commercial``: BDEW G25 commercial (trade and services) profile, January working day;
* ``mixed``: the mean of ``residential`` and ``commercial`` (each in pu of its own peak), in percent of its
  peak.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from v2gtwin.errors import DataError

__all__ = [
    "BDEW_G25_JANUARY_WORKDAY_PCT",
    "BDEW_H25_JANUARY_WORKDAY_PCT",
    "DAILY_SHAPES_PCT",
    "RTS79_WINTER_WEEKDAY_PCT",
    "calc_daily_profile",
]

#: Hourly load in percent of the daily peak, winter weekday (weeks 1-8 and 44-52), hour 0 = 00:00-01:00.
#: IEEE Reliability Test System Task Force, "IEEE Reliability Test System", IEEE Trans. PAS-98(6), 1979,
#: Table 3.
RTS79_WINTER_WEEKDAY_PCT: tuple[float, ...] = (
    67, 63, 60, 59, 59, 60, 74, 86, 95, 96, 96, 95,
    95, 95, 93, 94, 99, 100, 100, 96, 91, 83, 73, 63,
)  # fmt: skip

#: Household load (BDEW standard load profile H25), January working day ("WT"): the four quarter-hour values
#: of each hour averaged, in percent of the highest hour (18:00-19:00), rounded to 0.1 %.
#: BDEW Bundesverband der Energie- und Wasserwirtschaft, "Standardlastprofile Strom" (2025 profiles H25, G25),
#: quarter-hour values per month and day type, as tabulated in oemof demandlib (bdew_data/h25.csv).
BDEW_H25_JANUARY_WORKDAY_PCT: tuple[float, ...] = (
    44.6, 38.3, 36.3, 35.9, 37.5, 42.7, 55.2, 60.0, 56.4, 54.5, 55.0, 60.3,
    63.0, 62.5, 61.0, 63.0, 72.0, 90.0, 100.0, 99.0, 90.3, 80.7, 71.3, 57.3,
)  # fmt: skip

#: Commercial load (BDEW standard load profile G25, trade and services), January working day, as
#: :data:`BDEW_H25_JANUARY_WORKDAY_PCT` (highest hour 10:00-11:00); same source (bdew_data/g25.csv).
BDEW_G25_JANUARY_WORKDAY_PCT: tuple[float, ...] = (
    21.6, 21.1, 21.0, 21.3, 22.9, 28.2, 40.8, 65.8, 87.7, 95.5, 100.0, 99.2,
    91.1, 84.6, 83.8, 80.5, 74.3, 66.5, 51.8, 39.6, 32.9, 28.4, 24.9, 23.0,
)  # fmt: skip


def _mixed() -> tuple[float, ...]:
    mean = (np.asarray(BDEW_H25_JANUARY_WORKDAY_PCT) + np.asarray(BDEW_G25_JANUARY_WORKDAY_PCT)) / 2.0
    return tuple(float(v) for v in mean / mean.max() * 100.0)


#: Daily shapes by name (24 hourly values in percent of the day's peak hour).
DAILY_SHAPES_PCT: dict[str, tuple[float, ...]] = {
    "rts79": RTS79_WINTER_WEEKDAY_PCT,
    "residential": BDEW_H25_JANUARY_WORKDAY_PCT,
    "commercial": BDEW_G25_JANUARY_WORKDAY_PCT,
    "mixed": _mixed(),
}


def calc_daily_profile(
    n_steps: int, dt_s: float, start_hour: float, shape: str = "rts79", shift_h: float = 0.0
) -> npt.NDArray[np.float64]:
    """Base-load multiplier of each step [pu of the daily peak]: the value of ``shape`` (a key of
    :data:`DAILY_SHAPES_PCT`; default the RTS-79 winter weekday) in the hour in which the step starts (local
    clock time ``start_hour + t * dt``), the whole day delayed by ``shift_h`` [h] (negative: earlier)."""
    if shape not in DAILY_SHAPES_PCT:
        raise DataError(f"shape = {shape!r}: allowed {', '.join(DAILY_SHAPES_PCT)}")
    clock_h = (start_hour + np.arange(n_steps) * dt_s / 3600.0 - shift_h) % 24.0
    hour = np.floor(clock_h + 1e-9).astype(int) % 24
    return np.asarray(DAILY_SHAPES_PCT[shape], dtype=float)[hour] / 100.0
