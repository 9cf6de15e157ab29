"""The live fleet: what the central system reports (its HTTP API's ``/stations`` and ``/charging-needs``) as the
package's :class:`~v2gtwin.fleet.Fleet` on a time grid that starts now.

Pure functions on plain JSON-like values and numpy arrays; no I/O. :func:`read_live_state` joins the two answers
into a :class:`LiveState` (one row per plugged-in EVSE that declared a charging need), :func:`build_live_fleet`
turns it into a fleet whose step 0 starts now, with every assumption counted in :class:`LiveFleetNotes`.

What OCPP does not say, and what is assumed instead (each counted, never silent):

* Battery capacity: NotifyEVChargingNeeds carries it only for DC (``evEnergyCapacity``); without it the EV gets
  the scenario's share-weighted mean class capacity (``n_capacity_assumed``).
* A need without an energy request is left out (``n_needs_incomplete`` of the state): nothing to schedule.
* The SoC target: the EV asks for ``e_request_kwh`` (``energyAmount``, energy into the battery) when it plugs in.
  The loop tracks the request in energy, not in SoC (so an assumed capacity does not move the target): in a
  :data:`NeedBook` it keeps, per need, the energy stored since it first saw the need, the EVSE's reported power
  (``p_kw``, taken as held since the previous cycle) times the time between cycles, times ``eta_charge`` (charging)
  or over ``eta_discharge`` (discharging). The target is the SoC now plus what is left of the request over the
  capacity, ``soc + max(E - e_stored, 0) / C``, at most ``soc_max_pu``. Without any SoC reading the EV is taken to
  arrive at ``soc_target_pu - e_request / capacity`` of the scenario's fleet (the rule of
  :func:`v2gtwin.fleet.fleet_from_sessions`; ``n_soc_assumed``).
* Departure: step ``floor((departure - now) / dt_s)``, at least 1 (an EV past its departure time that is still
  plugged in gets this one step: ``n_past_departure``), at most the horizon (the part of the request beyond it is
  scaled by the share of the stay inside the horizon, as :func:`v2gtwin.fleet.place_sessions` does:
  ``n_departure_beyond_horizon``). An EV that gave no departure time is taken to stay to the horizon's end
  (``n_departure_assumed``).
* A target out of reach at full power is cut to what full power reaches (``n_target_cut``): the schedule then
  charges that EV flat out instead of dropping it.
"""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from v2gtwin.errors import DataError
from v2gtwin.fleet import KIND_HOME, SOC_ARRIVAL_FLOOR_PU, Fleet
from v2gtwin.scenario import FleetSpec, TimeGrid

__all__ = [
    "LiveFleetNotes",
    "LiveState",
    "NeedBook",
    "NeedEntry",
    "build_live_fleet",
    "calc_live_time_grid",
    "need_key",
    "parse_utc",
    "read_live_state",
    "update_need_book",
]

FloatArray = npt.NDArray[np.float64]


class NeedEntry(NamedTuple):
    """The loop's memory of one need: ``soc_first_pu`` the SoC when the loop first saw it (NaN: no reading yet)
    [pu]; ``e_stored_kwh`` the energy stored into the battery since then [kWh]; ``t_utc_s`` the time of the last
    reading, POSIX seconds [s]."""

    soc_first_pu: float
    e_stored_kwh: float
    t_utc_s: float


#: The loop's memory of each need: need key -> :class:`NeedEntry`.
NeedBook = Mapping[str, NeedEntry]


def parse_utc(text: str, name: str) -> dt.datetime:
    """An ISO-8601 time (``Z`` or an offset; a time without one is taken as UTC) as an aware UTC datetime."""
    try:
        t = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise DataError(f"{name} = {text!r}: not an ISO-8601 time") from None
    return (t if t.tzinfo else t.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def need_key(station_id: str, evse_id: int, departure_time: str, e_request_kwh: float) -> str:
    """The identity of one charging need: the same EV at the same EVSE asking the same thing."""
    return f"{station_id}|{evse_id}|{departure_time}|{e_request_kwh:.3f}"


@dataclass(frozen=True)
class LiveState:
    """The live fleet at time ``t_utc``: one entry per plugged-in EVSE of a connected station with a charging need.

    Attributes
    ----------
    t_utc : when the state was read.
    station_id, evse_id : where each EV is plugged in [-].
    key : :func:`need_key` of each EV's need [-].
    soc_pu : latest reported state of charge (NaN when none was reported) [pu].
    e_request_kwh : energy the EV asked for when it plugged in [kWh].
    departure_s : time from ``t_utc`` to the EV's departure (negative: past due; NaN: the EV gave none) [s].
    p_max_kw : largest charging power, the smaller of the station's and the EV's [kW].
    p_min_kw : most negative power (discharge) both allow; 0 without V2X [kW].
    v2x : the EV declared a bidirectional transfer [-].
    capacity_kwh : battery capacity when reported, else NaN [kWh].
    p_now_kw : the EVSE's present power (NaN when none was reported) [kW].
    n_stations, n_connected : stations known and connected [-].
    n_needs_unmatched : needs of stations not connected (left out) [-].
    n_needs_incomplete : needs without an energy request (left out: nothing to schedule) [-].
    """

    t_utc: dt.datetime
    station_id: tuple[str, ...]
    evse_id: npt.NDArray[np.int64]
    key: tuple[str, ...]
    soc_pu: FloatArray
    e_request_kwh: FloatArray
    departure_s: FloatArray
    p_max_kw: FloatArray
    p_min_kw: FloatArray
    v2x: npt.NDArray[np.bool_]
    capacity_kwh: FloatArray
    p_now_kw: FloatArray
    n_stations: int = 0
    n_connected: int = 0
    n_needs_unmatched: int = 0
    n_needs_incomplete: int = 0

    @property
    def n(self) -> int:
        """EVs in the state [-]."""
        return len(self.station_id)


def _num(value: Any, name: str, default: float = math.nan) -> float:
    if value is None:
        return default
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise DataError(f"{name} = {value!r}: not a number") from None
    if not math.isfinite(x):
        raise DataError(f"{name} = {value!r}: must be finite")
    return x


def read_live_state(stations: Mapping[str, Any], needs: Mapping[str, Any], t_utc: dt.datetime) -> LiveState:
    """Join the API's ``GET /api/v1/stations`` and ``GET /api/v1/charging-needs`` answers at time ``t_utc``.

    Parameters
    ----------
    stations : ``{"stations": [{"station_id", "connected", "evses": [{"evse_id", "p_kw", "soc_pu", "p_max_kw",
        "p_min_kw", ...}]}]}``.
    needs : ``{"needs": [{"station_id", "evse_id", "departure_time", "e_request_kwh", "soc_pu", "p_max_kw",
        "p_min_kw", "v2x", "capacity_kwh" (optional)}]}``.
    t_utc : the time the state describes (aware).

    Returns
    -------
    LiveState
        The needs of connected stations, in the order of ``needs``. Limits: the smaller charging limit of the
        EVSE and the EV, the smaller discharge magnitude (0 without ``v2x``); SoC: the EVSE's latest reading,
        else the need's.

    Raises
    ------
    DataError
        A field that is missing, not a number, not finite or not an ISO-8601 time, naming it.
    """
    if t_utc.tzinfo is None:
        raise DataError("t_utc: must carry a time zone")
    evses: dict[tuple[str, int], Mapping[str, Any]] = {}
    connected: set[str] = set()
    rows = stations.get("stations")
    if not isinstance(rows, list):
        raise DataError("stations: expected {'stations': [...]}")
    for s in rows:
        sid = str(s.get("station_id"))
        if s.get("connected"):
            connected.add(sid)
        for e in s.get("evses") or []:
            evses[(sid, int(e.get("evse_id", 0)))] = e
    cols: dict[str, list[Any]] = {k: [] for k in ("sid", "evse", "key", "soc", "e", "dep", "pmax", "pmin", "v2x")}
    cols |= {"cap": [], "pnow": []}
    unmatched = incomplete = 0
    need_rows = needs.get("needs")
    if not isinstance(need_rows, list):
        raise DataError("charging needs: expected {'needs': [...]}")
    for k, nd in enumerate(need_rows):
        sid = str(nd.get("station_id"))
        evse_id = int(_num(nd.get("evse_id"), f"needs[{k}].evse_id", 1.0))
        if sid not in connected:
            unmatched += 1
            continue
        ev = evses.get((sid, evse_id), {})
        dep_text = nd.get("departure_time")
        if nd.get("e_request_kwh") is None:  # the EV did not say how much it wants: nothing to schedule
            incomplete += 1
            continue
        e_req = _num(nd.get("e_request_kwh"), f"needs[{k}].e_request_kwh")
        if not e_req >= 0:
            raise DataError(f"needs[{k}].e_request_kwh = {nd.get('e_request_kwh')!r}: must be a number >= 0")
        v2x = bool(nd.get("v2x"))
        p_max = min(
            _num(ev.get("p_max_kw"), f"stations.{sid}.evses.p_max_kw", math.inf),
            _num(nd.get("p_max_kw"), f"needs[{k}].p_max_kw", math.inf),
        )
        if not math.isfinite(p_max) or p_max < 0:
            raise DataError(f"needs[{k}].p_max_kw: station {sid} reports no finite charging limit >= 0")
        p_min = max(
            _num(ev.get("p_min_kw"), f"stations.{sid}.evses.p_min_kw", -math.inf),
            _num(nd.get("p_min_kw"), f"needs[{k}].p_min_kw", -math.inf),
        )
        p_min = min(p_min, 0.0) if v2x and math.isfinite(p_min) else 0.0
        soc = _num(ev.get("soc_pu"), f"stations.{sid}.evses.soc_pu")
        if math.isnan(soc):
            soc = _num(nd.get("soc_pu"), f"needs[{k}].soc_pu")
        if not (math.isnan(soc) or 0.0 <= soc <= 1.0):
            raise DataError(f"station {sid}: soc_pu = {soc}: allowed range 0..1")
        cols["sid"].append(sid)
        cols["evse"].append(evse_id)
        cols["key"].append(need_key(sid, evse_id, str(dep_text), e_req))
        cols["soc"].append(soc)
        cols["e"].append(e_req)
        dep = math.nan if dep_text is None else (parse_utc(dep_text, f"needs[{k}].departure_time") - t_utc)
        cols["dep"].append(dep if isinstance(dep, float) else dep.total_seconds())
        cols["pmax"].append(p_max)
        cols["pmin"].append(p_min)
        cols["v2x"].append(v2x)
        cols["cap"].append(_num(nd.get("capacity_kwh"), f"needs[{k}].capacity_kwh"))
        cols["pnow"].append(_num(ev.get("p_kw"), f"stations.{sid}.evses.p_kw"))
    f = np.asarray
    return LiveState(
        t_utc=t_utc,
        station_id=tuple(cols["sid"]),
        evse_id=f(cols["evse"], dtype=np.int64),
        key=tuple(cols["key"]),
        soc_pu=f(cols["soc"], dtype=float),
        e_request_kwh=f(cols["e"], dtype=float),
        departure_s=f(cols["dep"], dtype=float),
        p_max_kw=f(cols["pmax"], dtype=float),
        p_min_kw=f(cols["pmin"], dtype=float),
        v2x=f(cols["v2x"], dtype=bool),
        capacity_kwh=f(cols["cap"], dtype=float),
        p_now_kw=f(cols["pnow"], dtype=float),
        n_stations=len(rows),
        n_connected=len(connected),
        n_needs_unmatched=unmatched,
        n_needs_incomplete=incomplete,
    )


def update_need_book(
    book: NeedBook, state: LiveState, eta_charge: float = 0.95, eta_discharge: float = 0.95
) -> dict[str, NeedEntry]:
    """The loop's memory after seeing ``state``: each need present now, with the SoC at its first reading (a need
    first seen without a reading takes its first later one) and the energy stored since the loop first saw it.

    Notes
    -----
    For a need already in the book, with the EVSE's reported power ``p`` [kW] (taken as held since the last
    reading; none reported: 0) over the ``dt`` [h] since then, the stored energy grows by ``p eta_c dt`` when
    charging and ``p dt / eta_d`` when discharging (the efficiencies of the scenario's fleet). Needs no longer
    present are forgotten.
    """
    out: dict[str, NeedEntry] = {}
    t_s = state.t_utc.timestamp()
    for k, soc, p in zip(state.key, state.soc_pu.tolist(), state.p_now_kw.tolist(), strict=True):
        old = book.get(k)
        if old is None:
            out[k] = NeedEntry(soc, 0.0, t_s)
            continue
        p_kw = 0.0 if math.isnan(p) else p
        dt_h = max(t_s - old.t_utc_s, 0.0) / 3600.0
        stored = p_kw * dt_h * (eta_charge if p_kw >= 0 else 1.0 / eta_discharge)
        first = old.soc_first_pu if not math.isnan(old.soc_first_pu) else soc
        out[k] = NeedEntry(first, old.e_stored_kwh + stored, t_s)
    return out


def calc_live_time_grid(
    t_utc: dt.datetime, departure_s: FloatArray, dt_s: float, n_steps_max: int, time_zone: str
) -> TimeGrid:
    """The time grid of one cycle: step ``dt_s`` from ``t_utc`` to the latest departure, at least one step and at
    most ``n_steps_max`` (all of them when an EV gave no departure time). Its ``start_date`` and ``start_hour`` are
    ``t_utc``'s local date and clock hour in ``time_zone`` (the scenario's IANA zone, never the machine's), so
    prices and profiles are read at the scenario's clock on any machine.

    In the hour a daylight-saving change repeats, the local clock time is ambiguous and a :class:`TimeGrid` in
    ``time_zone`` cannot hold it: the grid then takes the fixed-offset IANA zone of that instant (e.g.
    ``Etc/GMT+4`` for UTC-4, the same clock and date), named in its ``time_zone``; an offset that is not a whole
    hour has no such zone and is an error.

    Raises
    ------
    DataError
        ``t_utc`` falls in a repeated hour of ``time_zone`` whose offset is not a whole number of hours.
    """
    known = departure_s[np.isfinite(departure_s)]
    latest = float(known.max()) if known.size and known.size == departure_s.size else math.inf
    n = n_steps_max if not math.isfinite(latest) else min(max(1, math.ceil(latest / dt_s - 1e-9)), n_steps_max)
    local = t_utc.astimezone(zoneinfo.ZoneInfo(time_zone))
    offset = local.utcoffset()
    if offset is not None and local.replace(fold=1 - local.fold).utcoffset() != offset:  # a repeated hour
        hours = offset.total_seconds() / 3600.0
        if hours != int(hours):
            raise DataError(
                f"time.time_zone: {time_zone} repeats {local:%Y-%m-%d %H:%M} (daylight-saving change) at a UTC "
                f"offset of {hours:g} h, which no fixed-offset zone names; the cycle's grid cannot start there"
            )
        time_zone = "UTC" if hours == 0 else f"Etc/GMT{'-' if hours > 0 else '+'}{abs(int(hours))}"
    hour = local.hour + local.minute / 60.0 + local.second / 3600.0
    return TimeGrid(
        dt_s=dt_s, n_steps=n, start_hour=hour % 24.0, start_date=local.date().isoformat(), time_zone=time_zone
    )


@dataclass(frozen=True)
class LiveFleetNotes:
    """What :func:`build_live_fleet` assumed or cut, counted (JSON-ready through :meth:`to_dict`); ``extra``: the
    state's counts of stations, connected stations and needs left out."""

    n_evs: int
    n_capacity_assumed: int
    capacity_assumed_kwh: float
    n_soc_assumed: int
    n_past_departure: int
    n_departure_assumed: int
    n_departure_beyond_horizon: int
    n_target_cut: int
    e_target_cut_kwh: float
    e_request_remaining_kwh: float
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The counts and amounts (units in the keys)."""
        return {
            "n_evs": self.n_evs,
            "n_capacity_assumed": self.n_capacity_assumed,
            "capacity_assumed_kwh": self.capacity_assumed_kwh,
            "n_soc_assumed": self.n_soc_assumed,
            "n_past_departure": self.n_past_departure,
            "n_departure_assumed": self.n_departure_assumed,
            "n_departure_beyond_horizon": self.n_departure_beyond_horizon,
            "n_target_cut": self.n_target_cut,
            "e_target_cut_kwh": self.e_target_cut_kwh,
            "e_request_remaining_kwh": self.e_request_remaining_kwh,
        } | self.extra


def build_live_fleet(state: LiveState, book: NeedBook, spec: FleetSpec, time: TimeGrid) -> tuple[Fleet, LiveFleetNotes]:
    """The live EVs as a :class:`~v2gtwin.fleet.Fleet` on ``time`` (step 0 = now; every EV plugged in from step 0).

    Parameters
    ----------
    state : the live state.
    book : need key -> SoC at the need's first reading and energy stored since (:func:`update_need_book` of this
        state).
    spec : the scenario's fleet section (capacity classes, SoC limits, efficiencies).
    time : the cycle's time grid (:func:`calc_live_time_grid`).

    Returns
    -------
    fleet, notes

    Notes
    -----
    With capacity ``C``, request ``E``, energy stored since the loop first saw the need ``E_s``, SoC at first
    sight ``s1`` and now ``s`` (no reading now: ``s1 + E_s / C``): target ``min(s + max(E - E_s, 0) / C, soc_max)``
    (the request tracked in energy: a wrong ``C`` changes the SoC numbers, not the energy scheduled); departure
    step ``d = clip(floor(departure_s / dt_s), 1, n_steps)``; an EV
    leaving after the horizon keeps the share ``n_steps dt_s / departure_s`` of its remaining energy
    ``(target - s) C`` as its target within the horizon; a target above ``s + P_c eta_c dt_h d / C`` is cut
    to it. Assumptions are listed in the module docstring.
    """
    n = state.n
    caps = np.asarray(spec.battery_capacity_kwh, dtype=float)
    cap_assumed = float((caps * np.asarray(spec.battery_share, dtype=float)).sum())
    has_cap = np.isfinite(state.capacity_kwh) & (state.capacity_kwh > 0)
    cap = np.where(has_cap, state.capacity_kwh, cap_assumed)
    entries = [book.get(k) for k in state.key]
    first = np.asarray([math.nan if e is None else e.soc_first_pu for e in entries], dtype=float).reshape(n)
    e_stored = np.asarray([0.0 if e is None else e.e_stored_kwh for e in entries], dtype=float).reshape(n)
    first = np.where(np.isnan(first), state.soc_pu, first)
    no_soc = np.isnan(state.soc_pu) & np.isnan(first)
    floor_pu = min(SOC_ARRIVAL_FLOOR_PU, spec.soc_target_pu)
    guess = np.clip(spec.soc_target_pu - state.e_request_kwh / cap, floor_pu, spec.soc_target_pu)
    first = np.where(np.isnan(first), guess, first)
    soc = np.where(np.isnan(state.soc_pu), np.clip(first + e_stored / cap, 0.0, 1.0), state.soc_pu)
    soc_max = np.maximum(spec.soc_max_pu, soc)
    target = np.minimum(soc + np.clip(state.e_request_kwh - e_stored, 0.0, None) / cap, soc_max)
    target = np.maximum(target, 0.0)
    no_dep = np.isnan(state.departure_s)
    dep_raw = np.where(no_dep, time.n_steps, np.floor(np.nan_to_num(state.departure_s) / time.dt_s + 1e-9))
    past = dep_raw < 1
    beyond = dep_raw > time.n_steps
    dep = np.clip(dep_raw, 1, time.n_steps).astype(np.int64)
    remaining = np.clip(target - soc, 0.0, None)
    share = np.where(beyond, time.n_steps * time.dt_s / np.maximum(state.departure_s, 1e-9), 1.0)
    target = np.where(remaining > 0, soc + remaining * share, target)
    reach = soc + state.p_max_kw * spec.eta_charge * time.dt_h * dep / cap
    cut = target > reach + 1e-12
    e_cut = float(((target - reach) * cap)[cut].sum())
    target = np.where(cut, reach, target)
    target = np.minimum(target, soc_max)
    fleet = Fleet(
        capacity_kwh=cap,
        soc0_pu=soc,
        soc_target_pu=target,
        soc_min_pu=np.minimum(np.full(n, spec.soc_min_pu), soc_max),
        soc_max_pu=soc_max,
        p_charge_max_kw=state.p_max_kw,
        p_discharge_max_kw=-state.p_min_kw,
        eta_charge=np.full(n, spec.eta_charge),
        eta_discharge=np.full(n, spec.eta_discharge),
        arrival_step=np.zeros(n, dtype=np.int64),
        departure_step=dep,
        bus=np.zeros(n, dtype=np.int64),
        kind=np.full(n, KIND_HOME, dtype=np.int64),
        dt_s=time.dt_s,
        n_steps=time.n_steps,
    )
    notes = LiveFleetNotes(
        n_evs=n,
        n_capacity_assumed=int((~has_cap).sum()),
        capacity_assumed_kwh=cap_assumed,
        n_soc_assumed=int(no_soc.sum()),
        n_past_departure=int(past.sum()),
        n_departure_assumed=int(no_dep.sum()),
        n_departure_beyond_horizon=int(beyond.sum()),
        n_target_cut=int(cut.sum()),
        e_target_cut_kwh=e_cut,
        e_request_remaining_kwh=float((np.clip(target - soc, 0.0, None) * cap).sum()),
        extra={
            "n_stations": state.n_stations,
            "n_connected": state.n_connected,
            "n_needs_unmatched": state.n_needs_unmatched,
            "n_needs_incomplete": state.n_needs_incomplete,
        },
    )
    return fleet, notes
