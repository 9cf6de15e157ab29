"""Weather-driven net-load uncertainty: pvlib's PV chain against a hand-computed clear case, and the forecast
error statistics against an independent pandas computation on the TMY3 file."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pvlib  # a dependency of v2gtwin: its absence is an error, not a skip
import pytest

from v2gtwin.errors import DataError
from v2gtwin.optimize.weather import (
    T_BALANCE_C,
    calc_day_rows,
    calc_forecast_errors,
    calc_pv_power_kw,
    calc_weather_uncertainty,
    read_tmy_weather,
)


def test_pv_clear_case_by_hand() -> None:
    # Sun at zenith 30 deg, azimuth 180; module tilted 30 deg facing south: angle of incidence 0.
    # DNI 800, DHI 100, GHI = 800 cos 30 + 100 = 792.820 W/m2, albedo 0.2.
    # POA = 800 + 100 (1 + cos 30)/2 + 792.820 x 0.2 (1 - cos 30)/2 = 800 + 93.301 + 10.622 = 903.923 W/m2.
    # SAPM (open rack, glass/polymer: a -3.56, b -0.075, dT 3), air 25 degC, wind 1 m/s:
    # T_cell = 25 + 903.923 exp(-3.635) + 0.903923 x 3 = 25 + 23.846 + 2.712 = 51.557 degC.
    # PVWatts: 100 kW x 0.903923 x (1 - 0.0047 x 26.557) x (1 - 0.14076) = 67.97 kW.
    c30 = math.cos(math.radians(30))
    poa = 800 + 100 * (1 + c30) / 2 + (800 * c30 + 100) * 0.2 * (1 - c30) / 2
    t_cell = 25 + poa * math.exp(-3.56 - 0.075) + poa / 1000 * 3
    expected = 100 * poa / 1000 * (1 - 0.0047 * (t_cell - 25)) * (1 - 0.1407566)
    assert expected == pytest.approx(67.97, abs=0.01)
    p = calc_pv_power_kw(
        [800 * c30 + 100, 0.0], [800, 0.0], [100, 0.0], [25, 5], [1, 1], [30, 100], [180, 0],
        p_dc0_kw=100.0, tilt_deg=30.0, surface_azimuth_deg=180.0, albedo=0.2,
    )  # fmt: skip
    assert p[0] == pytest.approx(expected, rel=1e-6)
    assert p[1] == 0.0  # night
    with pytest.raises(DataError, match="p_dc0_kw"):
        calc_pv_power_kw([1], [1], [1], [1], [1], [1], [1], p_dc0_kw=float("nan"))


def _tmy_frame():  # type: ignore[no-untyped-def]
    import pandas as pd

    path = Path(pvlib.__file__).parent / "data" / "723170TYA.CSV"
    df = pd.read_csv(path, skiprows=1)
    df["date"] = pd.to_datetime(df["Date (MM/DD/YYYY)"], format="%m/%d/%Y")
    return df


def test_weather_year_reads_the_file() -> None:
    w = read_tmy_weather("greensboro_nc")
    df = _tmy_frame()
    np.testing.assert_array_equal(w.t_air_c, df["Dry-bulb (C)"].to_numpy())
    np.testing.assert_array_equal(w.ghi_w_m2, df["GHI (W/m^2)"].to_numpy())
    # Around local solar noon of the June solstice (hour 12 of day 172), the zenith is about latitude - 23.44.
    assert w.zenith_deg[171 * 24 + 12] == pytest.approx(36.1 - 23.44, abs=1.5)
    with pytest.raises(DataError, match="weather site"):
        read_tmy_weather("atlantis")


def _pv_from_csv_kw(df, p_dc0_kw: float) -> np.ndarray:  # type: ignore[no-untyped-def]
    """PV output [kW] per hour from the CSV columns read by pandas: the sun's position by pvlib at the middle of
    each hour, its time taken from the file's own date and hour-ending clock (local standard time, UTC-5) and
    its site from the file's header line; the PV chain itself is checked by hand in the clear case above."""
    import pandas as pd

    path = Path(pvlib.__file__).parent / "data" / "723170TYA.CSV"
    header = path.read_text().splitlines()[0].split(",")
    lat_deg, lon_deg, alt_m = float(header[4]), float(header[5]), float(header[6])
    # TMY months come from different years: put every row in one non-leap year (1990), as the study does.
    day = pd.to_datetime("1990/" + df["Date (MM/DD/YYYY)"].str[:5], format="%Y/%m/%d")
    hour_end = day + pd.to_timedelta(df["Time (HH:MM)"].str[:2].astype(int), unit="h")
    mid = pd.DatetimeIndex(hour_end - pd.Timedelta(minutes=30)).tz_localize("Etc/GMT+5")
    sun = pvlib.solarposition.get_solarposition(mid, lat_deg, lon_deg, altitude=alt_m)
    return calc_pv_power_kw(
        df["GHI (W/m^2)"], df["DNI (W/m^2)"], df["DHI (W/m^2)"], df["Dry-bulb (C)"], df["Wspd (m/s)"],
        sun["apparent_zenith"].to_numpy(), sun["azimuth"].to_numpy(), p_dc0_kw=p_dc0_kw,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("window_days", "pv_share", "day_of_year", "n_pairs"),
    [
        # Whole year: 365 - 1 pairs, less the 11 that straddle a month boundary.
        (None, 0.0, 100, 365 - 1 - 11),
        # The study's 45-day seasonal window around day 360 wraps around the year: day d + 1 in 315..365
        # (51 pairs) or 2..40 (39 pairs); d + 1 = 335 (1 December) and 32 (1 February) start a month: 88.
        (45, 0.0, 360, 51 + 39 - 2),
        (45, 0.5, 360, 51 + 39 - 2),
        # Mid-summer with PV: d + 1 in 125..215 (91 pairs), less 1 June (152), 1 July (182), 1 August (213): 88.
        (45, 0.5, 170, 91 - 3),
    ],
)
def test_persistence_error_statistics_against_pandas(
    window_days: int | None, pv_share: float, day_of_year: int, n_pairs: int
) -> None:
    # Independent: the hourly dry-bulb temperature (and PV output) from the CSV by pandas, degree-hours, a
    # day x hour table, the day-to-day differences of days in the same calendar month whose second day lies
    # within window_days of the day (distance counted around the year in pandas), pandas' mean and covariance.
    import pandas as pd

    df = _tmy_frame()
    base = np.linspace(800.0, 1200.0, 24)
    dh = (df["Dry-bulb (C)"] - 18.3).abs()
    k = 0.4 * base.mean() / dh.mean()  # kW per degree-hour
    pv = _pv_from_csv_kw(df, pv_share * base.max()) if pv_share > 0 else np.zeros(len(df))
    table = (k * dh - pv).to_numpy().reshape(365, 24)  # the weather-driven net load [kW], day x hour
    month = df["date"].dt.month.to_numpy().reshape(365, 24)[:, 0]
    diff = pd.DataFrame(table).diff().iloc[1:]  # row i: day i + 1 minus day i (0-based)
    keep = month[1:] == month[:-1]
    if window_days is not None:
        doy_next = np.arange(2, 366)  # the second day of each pair, 1-based
        dist = np.minimum((doy_next - day_of_year) % 365, (day_of_year - doy_next) % 365)
        keep &= dist <= window_days
    ref = diff[keep]
    assert len(ref) == n_pairs
    w = read_tmy_weather()
    u = calc_weather_uncertainty(
        w, base, hvac_share=0.4, pv_share=pv_share, day_of_year=day_of_year, start_hour=0.0, dt_h=1.0,
        window_days=window_days,
    )  # fmt: skip
    assert u.errors_kw.shape == (n_pairs, 24)
    scale = float(np.abs(table).max())
    np.testing.assert_allclose(u.sigma_kw2, ref.cov().to_numpy(), rtol=1e-9, atol=1e-9 * scale**2)
    np.testing.assert_allclose(u.mean_error_kw, ref.mean().to_numpy(), rtol=1e-9, atol=1e-9 * scale)
    # The forecast is the day before (persistence): (1 - s) base + k DH - PV of that day.
    np.testing.assert_allclose(u.forecast_kw, 0.6 * base + table[day_of_year - 2], rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(u.pv_forecast_kw, pv.reshape(365, 24)[day_of_year - 2], rtol=1e-12, atol=1e-12)
    if pv_share > 0:
        assert u.pv_forecast_kw.max() > 0.1 * pv_share * base.max()  # the PV case does have PV in it
    assert T_BALANCE_C == 18.3


def test_errors_on_a_noon_start_quarter_hour_grid() -> None:
    # Step k of a day d starting at 12:00 with 15-minute steps lies in hour 12 + k // 4 of day d (k < 48) or
    # hour k // 4 - 12 of day d + 1: rows (d - 1) 24 + 12 + k // 4.
    x = np.arange(8760, dtype=float) ** 1.5
    month = np.repeat(np.arange(1, 13), 730)  # made-up months of 730 hours
    err, days = calc_forecast_errors(x, month, 12.0, 0.25, 96)
    d = int(days[5])
    rows = (d - 1) * 24 + 12 + np.arange(96) // 4
    np.testing.assert_allclose(err[5], x[rows + 24] - x[rows])
    np.testing.assert_array_equal(calc_day_rows(d, 12.0, 0.25, 96), rows)
    with pytest.raises(DataError, match="weather_day_of_year = 365"):
        calc_day_rows(365, 12.0, 0.25, 96)
