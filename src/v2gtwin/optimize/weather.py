"""Weather-driven uncertainty of a site's net load: a temperature-driven (HVAC) share of the base load and PV on
the site, with the mean and covariance of their day-ahead forecast errors estimated from a typical
meteorological year that pvlib ships.

Data: the TMY3 files in pvlib's ``pvlib/data`` (:data:`WEATHER_SITES`), NREL's National Solar Radiation
Database 1991-2005 typical meteorological years (Wilcox & Marion, "Users Manual for TMY3 Data Sets",
NREL/TP-581-43156, 2008): 8,760 hourly values, each calendar month taken from one "typical" source year.

Site net load on weather day d at step k (hour of the year ``h(d, k)``, the hour that contains the step's
start: hourly values are held over the step):

    x_d,k = (1 - s) base_k + s mean(base) DH_h / mean_year(DH) - P_pv,h
    DH_h  = |T_air,h - T_bal|                      (degree-hours, T_bal = 18.3 degC = 65 degF)

``s`` the temperature-driven share of the base load (over the year, its HVAC energy is ``s`` x the base
load's), the degree-hour model of heating and cooling load with the 65 degF base of US degree days (ASHRAE
Handbook - Fundamentals, ch. "Energy estimating and modeling methods", degree-day method). PV output is
pvlib's: solar position (``pvlib.solarposition.get_solarposition``, NREL SPA), plane-of-array irradiance with
the isotropic sky (``pvlib.irradiance.get_total_irradiance``), SAPM cell temperature (King, Boyson &
Kratochvil, SAND2004-3535, 2004; open rack, glass/polymer), the PVWatts DC model and PVWatts' default system
losses (``pvlib.pvsystem.pvwatts_dc`` and ``pvwatts_losses``; Dobos, "PVWatts Version 5 Manual",
NREL/TP-6A20-62641, 2014), inverter losses neglected.

Forecast: persistence — the forecast for day d+1 is day d, so the error is ``x_d+1 - x_d`` (the base share
cancels). Pairs of days whose steps touch two calendar months are left out: a TMY's months come from
different years, so such a pair is no real day-to-day change. Mean and covariance are the sample mean and the
unbiased sample covariance of the remaining pairs.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from v2gtwin.errors import DataError

__all__ = [
    "T_BALANCE_C",
    "WEATHER_SITES",
    "WeatherUncertainty",
    "WeatherYear",
    "calc_day_rows",
    "calc_forecast_errors",
    "calc_hvac_degree_hours",
    "calc_pv_power_kw",
    "calc_weather_uncertainty",
    "read_tmy_weather",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Balance temperature of the degree-hour model [degC] (65 degF, the base of US heating and cooling degree days).
T_BALANCE_C = 18.3
#: PVWatts' temperature coefficient of a standard module [1/degC] (Dobos 2014, table 2).
GAMMA_PDC_PER_C = -0.0047

#: ``{site: (file in pvlib/data, description)}``: the TMY3 files the pvlib 0.16.1 wheel ships.
WEATHER_SITES: dict[str, tuple[str, str]] = {
    "greensboro_nc": ("723170TYA.CSV", "TMY3 station 723170, Greensboro Piedmont Triad Intl., NC, USA"),
    "sand_point_ak": ("703165TY.csv", "TMY3 station 703165, Sand Point, AK, USA"),
}


@dataclass(frozen=True)
class WeatherYear:
    """One typical year of hourly weather (row i = the hour starting at i h after 1 January 00:00 local
    standard time) with the sun's position at mid-hour.

    Attributes
    ----------
    site, source : site key and a description of the file. latitude_deg, longitude_deg [deg], altitude_m [m].
    ghi_w_m2, dni_w_m2, dhi_w_m2 : global horizontal, direct normal, diffuse horizontal irradiance [W/m^2].
    t_air_c : air temperature [degC]. wind_m_s : wind speed [m/s]. month : calendar month [-].
    zenith_deg, azimuth_deg : apparent solar zenith and solar azimuth at mid-hour [deg].
    """

    site: str
    source: str
    latitude_deg: float
    longitude_deg: float
    altitude_m: float
    ghi_w_m2: FloatArray
    dni_w_m2: FloatArray
    dhi_w_m2: FloatArray
    t_air_c: FloatArray
    wind_m_s: FloatArray
    month: IntArray
    zenith_deg: FloatArray
    azimuth_deg: FloatArray


def read_tmy_weather(site: str = "greensboro_nc") -> WeatherYear:
    """Read a TMY3 file shipped with pvlib (``pvlib.iotools.read_tmy3``) and add the solar position.

    Raises
    ------
    DataError
        Unknown site, or pvlib (or its file) missing.
    """
    if site not in WEATHER_SITES:
        raise DataError(f"weather site: must be one of {', '.join(WEATHER_SITES)}, got {site!r}")
    try:
        import pvlib
        from pvlib.iotools import read_tmy3
    except ImportError:
        raise DataError("weather uncertainty needs pvlib (pip install pvlib)") from None
    name, desc = WEATHER_SITES[site]
    path = Path(pvlib.__file__).parent / "data" / name
    if not path.is_file():
        raise DataError(f"weather site {site}: pvlib {pvlib.__version__} does not ship data/{name}")
    data, meta = read_tmy3(str(path), coerce_year=1990, map_variables=True)
    if len(data) != 8760:
        raise DataError(f"weather site {site}: expected 8760 hourly rows in {name}, got {len(data)}")
    # Rows are in file order: row i is the hour ending at (i + 1) h, i.e. starting at i h after 1 January 00:00
    # local standard time (the index of the last row, 24:00 on 31 December, is coerced to 1 January: not used).
    import pandas as pd

    hour_start = pd.date_range("1990-01-01 00:00", periods=8760, freq="h", tz=data.index.tz)
    sun = pvlib.solarposition.get_solarposition(
        hour_start + pd.Timedelta(minutes=30), meta["latitude"], meta["longitude"], altitude=meta["altitude"]
    )
    months = np.asarray(pd.to_datetime(data["Date (MM/DD/YYYY)"], format="%m/%d/%Y").dt.month, dtype=np.int64)
    return WeatherYear(
        site=site,
        source=f"{desc}; pvlib {pvlib.__version__} data/{name} (NREL NSRDB 1991-2005 TMY3)",
        latitude_deg=float(meta["latitude"]),
        longitude_deg=float(meta["longitude"]),
        altitude_m=float(meta["altitude"]),
        ghi_w_m2=np.asarray(data["ghi"], dtype=float),
        dni_w_m2=np.asarray(data["dni"], dtype=float),
        dhi_w_m2=np.asarray(data["dhi"], dtype=float),
        t_air_c=np.asarray(data["temp_air"], dtype=float),
        wind_m_s=np.asarray(data["wind_speed"], dtype=float),
        month=months,
        zenith_deg=np.asarray(sun["apparent_zenith"], dtype=float),
        azimuth_deg=np.asarray(sun["azimuth"], dtype=float),
    )


def calc_pv_power_kw(
    ghi_w_m2: npt.ArrayLike,
    dni_w_m2: npt.ArrayLike,
    dhi_w_m2: npt.ArrayLike,
    t_air_c: npt.ArrayLike,
    wind_m_s: npt.ArrayLike,
    zenith_deg: npt.ArrayLike,
    azimuth_deg: npt.ArrayLike,
    *,
    p_dc0_kw: float,
    tilt_deg: float = 25.0,
    surface_azimuth_deg: float = 180.0,
    albedo: float = 0.2,
) -> FloatArray:
    """PV output [kW] of an array of DC rating ``p_dc0_kw`` [kW] with pvlib's models (module docstring).

    Notes
    -----
    ``E = DNI cos(AOI) + DHI (1 + cos beta) / 2 + GHI albedo (1 - cos beta) / 2`` (isotropic sky, tilt beta),
    ``T_cell = T_air + E exp(a + b WS) + E / 1000 dT`` (SAPM; a = -3.56, b = -0.075, dT = 3 for an open rack,
    glass/polymer module), ``P = p_dc0 E / 1000 (1 + gamma (T_cell - 25)) (1 - L)`` with gamma = -0.0047 /degC
    (PVWatts' standard module) and L = 14.08 % (PVWatts' default losses).

    References
    ----------
    King, Boyson & Kratochvil, "Photovoltaic array performance model", SAND2004-3535, 2004.
    Dobos, "PVWatts Version 5 Manual", NREL/TP-6A20-62641, 2014.
    """
    import pvlib

    if not (math.isfinite(p_dc0_kw) and p_dc0_kw >= 0):
        raise DataError(f"p_dc0_kw: must be finite and >= 0, got {p_dc0_kw!r}")
    poa = pvlib.irradiance.get_total_irradiance(
        tilt_deg,
        surface_azimuth_deg,
        np.asarray(zenith_deg, float),
        np.asarray(azimuth_deg, float),
        np.asarray(dni_w_m2, float),
        np.asarray(ghi_w_m2, float),
        np.asarray(dhi_w_m2, float),
        albedo=albedo,
        model="isotropic",
    )
    e_poa = np.asarray(poa["poa_global"], dtype=float)
    if not np.isfinite(e_poa).all():
        i = int(np.argmin(np.isfinite(e_poa)))
        raise DataError(f"weather: plane-of-array irradiance is not finite at hour {i} (check the irradiance inputs)")
    params = pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"]["open_rack_glass_polymer"]
    t_cell = pvlib.temperature.sapm_cell(e_poa, np.asarray(t_air_c, float), np.asarray(wind_m_s, float), **params)
    p_dc = pvlib.pvsystem.pvwatts_dc(e_poa, t_cell, p_dc0_kw, GAMMA_PDC_PER_C)
    loss = pvlib.pvsystem.pvwatts_losses() / 100.0
    return np.asarray(p_dc * (1.0 - loss), dtype=float)


def calc_hvac_degree_hours(t_air_c: npt.ArrayLike, t_balance_c: float = T_BALANCE_C) -> FloatArray:
    """Heating plus cooling degree-hours of each hour, ``|T_air - T_bal|`` [K h per h]."""
    return np.abs(np.asarray(t_air_c, dtype=float) - t_balance_c)


def calc_day_rows(day_of_year: int, start_hour: float, dt_h: float, n_steps: int) -> IntArray:
    """Rows (hours of the year, 0-based) holding each step of a horizon that starts on ``day_of_year`` (1-based)
    at ``start_hour`` [h]: the hour that contains the step's start.

    Raises
    ------
    DataError
        The horizon runs past the end of the year.
    """
    x_h = start_hour + dt_h * np.arange(n_steps)
    rows = (day_of_year - 1) * 24 + np.floor(x_h + 1e-9).astype(np.int64)
    if day_of_year < 1 or rows[-1] >= 8760:
        raise DataError(
            f"weather_day_of_year = {day_of_year}: the horizon must lie inside the weather year "
            f"(days 1 to {365 - math.ceil((start_hour + dt_h * n_steps) / 24.0) + 1} for this time grid)"
        )
    return rows


def calc_forecast_errors(
    hourly_kw: npt.ArrayLike,
    month: npt.ArrayLike,
    start_hour: float,
    dt_h: float,
    n_steps: int,
    *,
    around_day: int | None = None,
    window_days: int | None = None,
) -> tuple[FloatArray, IntArray]:
    """Persistence forecast errors ``x_d+1 - x_d`` on the time grid for every pair of days of the year whose
    steps stay inside one calendar month (and, with ``window_days``, whose day d+1 lies within that many days
    of ``around_day``, counted around the turn of the year: the season of the day scheduled).

    Returns (errors, shape (n_pairs, n_steps) [kW]; the first day d of each pair, 1-based).
    """
    x = np.asarray(hourly_kw, dtype=float)
    mon = np.asarray(month)
    days = []
    for d in range(1, 366):
        try:
            nxt = calc_day_rows(d + 1, start_hour, dt_h, n_steps)
        except DataError:
            break
        rows = calc_day_rows(d, start_hour, dt_h, n_steps)
        if window_days is not None and around_day is not None:
            gap = abs(d + 1 - around_day)
            if min(gap, 365 - gap) > window_days:
                continue
        if np.all(mon[rows[0] : nxt[-1] + 1] == mon[rows[0]]):
            days.append(d)
    if len(days) < 2:
        raise DataError("weather: fewer than two pairs of days inside one month for this time grid")
    err = np.stack(
        [
            x[calc_day_rows(d + 1, start_hour, dt_h, n_steps)] - x[calc_day_rows(d, start_hour, dt_h, n_steps)]
            for d in days
        ]
    )
    return err, np.asarray(days, dtype=np.int64)


@dataclass(frozen=True)
class WeatherUncertainty:
    """Day-ahead net-load forecast of a site and the statistics of its errors, on the study's time grid.

    Attributes
    ----------
    forecast_kw : the persistence forecast for the day (the net load of the day before) [kW].
    mean_error_kw, sigma_kw2 : mean [kW] and covariance [kW^2] of the forecast errors.
    mu_kw : forecast plus mean error: the expected net load [kW].
    errors_kw : the observed errors, shape (n_pairs, n_steps) [kW].
    pv_forecast_kw, hvac_forecast_kw : PV output and HVAC load in the forecast [kW].
    p_pv_dc0_kw : PV rating [kW]. source : weather data. forecast : the forecast method, in words.
    """

    forecast_kw: FloatArray
    mean_error_kw: FloatArray
    sigma_kw2: FloatArray
    mu_kw: FloatArray
    errors_kw: FloatArray
    pv_forecast_kw: FloatArray
    hvac_forecast_kw: FloatArray
    p_pv_dc0_kw: float
    source: str
    forecast: str


def calc_weather_uncertainty(
    weather: WeatherYear,
    base_load_kw: npt.ArrayLike,
    *,
    hvac_share: float,
    pv_share: float,
    day_of_year: int,
    start_hour: float,
    dt_h: float,
    window_days: int | None = 45,
) -> WeatherUncertainty:
    """The site's weather-driven net load (module docstring) for the horizon starting on ``day_of_year``.

    ``base_load_kw`` [kW] is the site's load per step on the time grid; ``hvac_share`` [-] its
    temperature-driven share; ``pv_share`` [-] the PV rating as a share of its peak. The error statistics
    use the pairs of days within ``window_days`` of the day (the whole year with ``None``).
    """
    base = np.asarray(base_load_kw, dtype=float)
    n = base.size
    if not 0.0 <= hvac_share <= 1.0:
        raise DataError(f"hvac_share: must be in [0, 1], got {hvac_share!r}")
    if not 0.0 <= pv_share <= 10.0:
        raise DataError(f"pv_share: must be in [0, 10], got {pv_share!r}")
    if n < 1 or not np.isfinite(base).all():
        raise DataError("base_load_kw: need at least one finite value per step")
    dh = calc_hvac_degree_hours(weather.t_air_c)
    hvac_kw = hvac_share * float(base.mean()) * dh / float(dh.mean())
    p_dc0 = pv_share * float(base.max())
    pv_kw = calc_pv_power_kw(
        weather.ghi_w_m2,
        weather.dni_w_m2,
        weather.dhi_w_m2,
        weather.t_air_c,
        weather.wind_m_s,
        weather.zenith_deg,
        weather.azimuth_deg,
        p_dc0_kw=p_dc0,
    )
    weather_kw = hvac_kw - pv_kw  # the weather-driven part of the net load, hourly over the year
    errors, _ = calc_forecast_errors(
        weather_kw, weather.month, start_hour, dt_h, n, around_day=day_of_year, window_days=window_days
    )
    rows_before = calc_day_rows(day_of_year - 1, start_hour, dt_h, n) if day_of_year > 1 else None
    if rows_before is None:
        raise DataError("weather_day_of_year: must be >= 2 (the persistence forecast needs the day before)")
    calc_day_rows(day_of_year, start_hour, dt_h, n)  # the day itself must lie in the year
    forecast = (1.0 - hvac_share) * base + weather_kw[rows_before]
    mean_err = errors.mean(axis=0)
    sigma = np.cov(errors, rowvar=False, ddof=1).reshape(n, n)
    return WeatherUncertainty(
        forecast_kw=forecast,
        mean_error_kw=mean_err,
        sigma_kw2=np.asarray(sigma, dtype=float),
        mu_kw=forecast + mean_err,
        errors_kw=errors,
        pv_forecast_kw=pv_kw[rows_before],
        hvac_forecast_kw=hvac_kw[rows_before],
        p_pv_dc0_kw=p_dc0,
        source=weather.source,
        forecast=(
            f"persistence (day {day_of_year} = day {day_of_year - 1}); errors from {errors.shape[0]} pairs of "
            "consecutive days inside one month"
            + ("" if window_days is None else f" within {window_days} days of day {day_of_year}")
            + "; hourly values held over each step"
        ),
    )
