"""What the central system knows now, in memory, for the HTTP API and the dashboard: each EVSE's latest measured
power and state of charge, the EVs' declared power limits, the fleet's power and mean SoC over the last hours,
the last dispatch, and alarms.

Fed by the central system's group commit (:meth:`LiveState.on_values`, called with the meter values of each
committed message) and by the API's dispatches (:meth:`LiveState.on_dispatch`). No I/O, no numeric stack.
"""

from __future__ import annotations

import collections
import datetime as dt
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from v2gtwin.cyber.csms.outcomes import latency_note, percentile_s

__all__ = ["AlarmSettings", "LiveState", "ev_power_limits_w"]

#: Measurands whose latest value is kept: grid-side power (import positive, export negative) and SoC.
_POWER_IMPORT = "Power.Active.Import"
_POWER_EXPORT = "Power.Active.Export"
_SOC = "SoC"
#: Phases of an AC energy transfer mode (OCPP 2.0.1 Part 2, EnergyTransferModeEnumType; 2.1 adds AC_BPT and
#: AC_BPT_DER, taken as three-phase, the usual bidirectional AC wallbox).
_AC_PHASES = {"AC_single_phase": 1, "AC_two_phase": 2, "AC_three_phase": 3, "AC_BPT": 3, "AC_BPT_DER": 3}


def ev_power_limits_w(charging_needs: Mapping[str, Any], v2x: bool) -> tuple[float | None, float]:
    """The EV's declared charging limit and discharging limit [W] from its NotifyEVChargingNeeds (``ocpp``
    package keys, snake_case): ``(p_max_w, p_min_w)``, ``p_min_w`` <= 0 (0 unless ``v2x``).

    In order: the OCPP 2.1 ``ev_max_charge_power`` / ``ev_max_discharge_power`` of the AC or DC parameters; the
    DC ``ev_max_power``; for AC, the per-phase current limit times the voltage: ``sqrt(3) V I`` for three phases
    (``ev_max_voltage`` read as the line-to-line voltage), ``V I`` for one, ``2 V I / sqrt(3)`` for two. A V2X EV
    that declares no discharge limit gets its charge limit as discharge limit (symmetric converter).
    ``p_max_w`` is None when the EV declared none of these.

    References
    ----------
    OCPP 2.0.1 Part 2, ACChargingParametersType (evMaxCurrent: per phase; evMaxVoltage) and
    DCChargingParametersType (evMaxPower); OCPP 2.1 Part 2, the same types (evMaxChargePower,
    evMaxDischargePower).
    """
    ac = charging_needs.get("ac_charging_parameters") or {}
    dc = charging_needs.get("dc_charging_parameters") or {}
    params = ac or dc
    p_max: float | None = None
    if params.get("ev_max_charge_power") is not None:
        p_max = float(params["ev_max_charge_power"])
    elif dc.get("ev_max_power") is not None:
        p_max = float(dc["ev_max_power"])
    elif ac.get("ev_max_current") is not None and ac.get("ev_max_voltage") is not None:
        mode = str(getattr(charging_needs.get("requested_energy_transfer"), "value", "")) or str(
            charging_needs.get("requested_energy_transfer", "")
        )
        phases = _AC_PHASES.get(mode, 3)
        v, i = float(ac["ev_max_voltage"]), float(ac["ev_max_current"])
        p_max = {1: v * i, 2: 2.0 * v * i / math.sqrt(3.0), 3: math.sqrt(3.0) * v * i}[phases]
    if p_max is not None and not (math.isfinite(p_max) and p_max >= 0):
        p_max = None
    p_min = 0.0
    if v2x:
        dis = params.get("ev_max_discharge_power")
        if dis is not None and math.isfinite(float(dis)):
            p_min = -abs(float(dis))
        elif p_max is not None:
            p_min = -p_max
    return p_max, p_min


@dataclass(frozen=True)
class AlarmSettings:
    """When the dashboard raises an alarm.

    stale_after_s : a connected station that sent no meter value for longer than this [s] has stopped
    reporting. settle_s : time a station has to follow a set-point before it is checked [s].
    tolerance_kw : allowed gap between measured power and an accepted set-point [kW] (a charging limit of an
    EV without V2X is broken only by drawing more; a V2X set-point by any gap).
    """

    stale_after_s: float = 180.0
    settle_s: float = 30.0
    tolerance_kw: float = 0.5


@dataclass
class _Evse:
    p_w: float | None = None
    soc_pu: float | None = None
    measured_at: str = ""  # the station's timestamp of the latest value
    t_mono_s: float = -math.inf  # when the latest value was committed (monotonic clock)


@dataclass
class _SetPoint:
    p_w: float
    v2x: bool
    t_mono_s: float


@dataclass
class LiveState:
    """The central system's latest telemetry and the dashboard's history (see the module docstring).

    history_h : hours of fleet history kept [h]; sample_every_s : spacing of its points [s].
    """

    alarms: AlarmSettings = field(default_factory=AlarmSettings)
    history_h: float = 6.0
    sample_every_s: float = 10.0
    evses: dict[tuple[str, int], _Evse] = field(default_factory=dict)
    limits_w: dict[str, tuple[float | None, float]] = field(default_factory=dict)
    set_points: dict[str, _SetPoint] = field(default_factory=dict)
    last_dispatch: dict[str, Any] | None = None
    _started: float = field(init=False, default=0.0)  # when this state began watching (monotonic)
    version: int = 0  # bumped on every change (the event stream sends when it moved)

    def __post_init__(self) -> None:
        self._started = time.monotonic()
        n = max(1, int(self.history_h * 3600.0 / max(self.sample_every_s, 1e-3)))
        self.history: collections.deque[dict[str, Any]] = collections.deque(maxlen=n)

    def on_values(self, values: Sequence[tuple[str, int, list[tuple[str, str, float, str]]]]) -> None:
        """Committed meter values (station id, EVSE id, rows of (timestamp, measurand, value, unit)): each
        EVSE's latest power (W or kW converted to W; export counted negative) and SoC (Percent to per unit)."""
        now = time.monotonic()
        for sid, evse_id, rows in values:
            p_w: float | None = None
            soc: float | None = None
            stamp = ""
            for t, measurand, value, unit in rows:
                scale = 1000.0 if unit == "kW" else 1.0
                if measurand == _POWER_IMPORT:
                    p_w = (p_w or 0.0) + value * scale
                elif measurand == _POWER_EXPORT:
                    p_w = (p_w or 0.0) - value * scale
                elif measurand == _SOC:
                    soc = value / 100.0
                else:
                    continue
                stamp = t
            if p_w is None and soc is None:
                continue
            ev = self.evses.setdefault((sid, evse_id), _Evse())
            if p_w is not None:
                ev.p_w = p_w
            if soc is not None:
                ev.soc_pu = soc
            ev.measured_at, ev.t_mono_s = stamp, now
            self.version += 1

    def on_dispatch(
        self, set_points_w: Mapping[str, float], results: Mapping[str, Mapping[str, Any]], v2x: Mapping[str, bool]
    ) -> None:
        """A dispatch's set-points [W] and per-station outcomes: the accepted set-points are checked by the
        'not followed' alarm; the dispatch's summary is kept for the dashboard."""
        now = time.monotonic()
        # Every station counts: one that did not accept ranks above every latency (as `csms dispatch` reports).
        lat = [r["latency_s"] if r["status"] == "Accepted" else None for r in results.values()]
        counts = collections.Counter(str(r["status"]) for r in results.values())
        for sid, r in results.items():
            if r["status"] == "Accepted":
                self.set_points[sid] = _SetPoint(float(set_points_w[sid]), bool(v2x.get(sid, False)), now)
        self.last_dispatch = {
            "sent_at": _utc_now(),
            "stations": len(results),
            "outcomes": dict(counts),
            "p_set_total_kw": sum(set_points_w.values()) / 1000.0,
            "latency_p50_s": percentile_s(lat, 0.5),
            "latency_p99_s": percentile_s(lat, 0.99),
            "latency_max_s": percentile_s(lat, 1.0),
            "latency_note": latency_note(lat, dict(counts)),
        }
        self.version += 1

    def fleet_now(self, connected: set[str]) -> dict[str, Any]:
        """The connected stations' total measured power [kW], mean SoC of those reporting one [-], and how many
        report each."""
        p = [e.p_w for (sid, _), e in self.evses.items() if sid in connected and e.p_w is not None]
        soc = [e.soc_pu for (sid, _), e in self.evses.items() if sid in connected and e.soc_pu is not None]
        return {
            "t": _utc_now(),
            "p_kw": sum(p) / 1000.0,
            "soc_mean_pu": sum(soc) / len(soc) if soc else None,
            "n_power": len(p),
            "n_soc": len(soc),
        }

    def sample(self, connected: set[str]) -> dict[str, Any]:
        """Append the fleet's present point to the history and return it."""
        point = self.fleet_now(connected)
        self.history.append(point)
        return point

    def alarm_list(self, connected: set[str]) -> list[dict[str, Any]]:
        """Alarms now: connected stations silent for longer than ``stale_after_s`` (or never reporting since
        this process started watching, once that long has passed), and stations whose measured power is off
        their accepted set-point by more than ``tolerance_kw`` once ``settle_s`` has passed since it was sent."""
        now = time.monotonic()
        out: list[dict[str, Any]] = []
        latest: dict[str, float] = {}
        p_by_station: dict[str, float] = {}
        for (sid, _), e in self.evses.items():
            latest[sid] = max(latest.get(sid, -math.inf), e.t_mono_s)
            if e.p_w is not None:
                p_by_station[sid] = p_by_station.get(sid, 0.0) + e.p_w
        for sid in sorted(connected):
            age = now - latest.get(sid, self._started)
            if age > self.alarms.stale_after_s:
                out.append({"station_id": sid, "kind": "stopped reporting", "silent_s": round(age, 1)})
        tol_w = self.alarms.tolerance_kw * 1000.0
        for sid, sp in sorted(self.set_points.items()):
            if sid not in connected or now - sp.t_mono_s < self.alarms.settle_s or sid not in p_by_station:
                continue
            if latest.get(sid, -math.inf) < sp.t_mono_s + self.alarms.settle_s:
                continue  # no value measured after the settling time yet
            p = p_by_station[sid]
            off = abs(p - sp.p_w) > tol_w if sp.v2x else p > sp.p_w + tol_w
            if off:
                out.append(
                    {
                        "station_id": sid,
                        "kind": "set-point not followed",
                        "p_set_kw": sp.p_w / 1000.0,
                        "p_kw": p / 1000.0,
                    }
                )
        return out


def _utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
