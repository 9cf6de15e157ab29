"""What a simulated station reports about itself: its identity, its device model (NotifyReport, answering
GetBaseReport) and, on OCPP 2.1, its IEEE 1547 settings as DER controls (ReportDERControl, answering
GetDERControl). The settings are configurable per station (:class:`SimSettings`), so that a test can make one
station non-compliant.

Curve conventions (the ``x`` / ``y`` of a ``DERCurveType``, whose meaning OCPP 2.1 leaves to the curve type):
the DER controls of OCPP 2.1 follow IEEE 2030.5's ``DERCurve``, and v2gtwin uses its axes — a must-trip curve's
``x`` is the clearing time [s] and ``y`` the voltage in % of nominal (``yUnit`` ``PctEffectiveV``) or the
frequency in Hz (``yUnit`` ``Not_Applicable``); a volt-var curve's ``x`` is the voltage in % of nominal and ``y``
the reactive power in % of the maximum (``PctMaxVar``; positive = injected, over-excited, as in IEEE 1547).
:mod:`v2gtwin.compliance.from_csms` reads them the same way and refuses other units.
FreqDroop's ``overFreq`` / ``underFreq`` ("start of droop") are frequencies [Hz]: nominal ± the dead band.

Default settings: IEEE 1547-2018's default trip settings for abnormal-performance Category III and the
frequency trips common to all categories, the Category B default volt-var curve and the default frequency droop
(dead band 0.036 Hz, droop 5 %, response time 5 s).

References
----------
IEEE Std 1547-2018, *Standard for Interconnection and Interoperability of Distributed Energy Resources with
Associated Electric Power Systems Interfaces*: default voltage trip settings (clause 6.4.1, Tables 11–13),
default frequency trip settings (clause 6.5.1; the table number not verified), volt-var default curve (clause 5.3.3,
Table 8, Category B), frequency-droop defaults (clause 6.5.2.7). The same values as the package's IEEE 1547 table
(``v2gtwin/data/ieee1547_2018.toml``), written here so that the central system's package stays free of it.
IEEE Std 2030.5-2018, ``DERCurve`` / ``CurveData`` (independent variable on x, dependent on y).
OCA, *OCPP 2.1 Edition 1*, block R (DER control); *OCPP 2.0.1 Part 2 Appendices*, standardized components and
variables (``ChargingStation.VendorName``, ``ChargingStation.Model``, ``EVSE.Power`` with ``maxLimit``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

__all__ = ["F_NOMINAL_HZ", "SimSettings", "der_control_lists", "device_model_report"]

F_NOMINAL_HZ = 60.0  # IEEE 1547-2018 is a North American standard: 60 Hz nominal


@dataclass(frozen=True)
class SimSettings:
    """A simulated station's identity and IEEE 1547 settings (the defaults: see the module's docstring).

    vendor, model, firmware, serial_number : what BootNotification says. der_controls : whether the station has
    DER controls to report (OCPP 2.1 only; False: it answers GetDERControl with NotSupported).
    ov2_pu ... uf2_s : must-trip settings, voltage in pu of nominal [pu], frequency [Hz], clearing time [s].
    vv_v1_pu ... vv_q4_pct : volt-var curve points, voltage [pu] and reactive power [% of maximum, + injected];
    vv_t_response_s : its open-loop response time [s]. droop_db_of_hz, droop_db_uf_hz : droop dead bands [Hz];
    droop_k_of_pu, droop_k_uf_pu : droops [pu]; droop_t_response_s : response time [s].

    A non-compliant station for a test: ``dataclasses.replace(SimSettings(), uf2_hz=59.3)`` (the legacy
    IEEE 1547-2003-era under-frequency trip).
    """

    vendor: str = "v2gtwin"
    model: str = "v2gtwin-sim"
    firmware: str = "1.0.0"
    serial_number: str = ""
    der_controls: bool = True
    ov2_pu: float = 1.20
    ov2_s: float = 0.16
    ov1_pu: float = 1.10
    ov1_s: float = 13.0
    uv1_pu: float = 0.88
    uv1_s: float = 21.0
    uv2_pu: float = 0.50
    uv2_s: float = 2.0
    of2_hz: float = 62.0
    of2_s: float = 0.16
    of1_hz: float = 61.2
    of1_s: float = 300.0
    uf1_hz: float = 58.5
    uf1_s: float = 300.0
    uf2_hz: float = 56.5
    uf2_s: float = 0.16
    vv_v1_pu: float = 0.92
    vv_q1_pct: float = 44.0
    vv_v2_pu: float = 0.98
    vv_q2_pct: float = 0.0
    vv_v3_pu: float = 1.02
    vv_q3_pct: float = 0.0
    vv_v4_pu: float = 1.08
    vv_q4_pct: float = -44.0
    vv_t_response_s: float = 5.0
    droop_db_of_hz: float = 0.036
    droop_db_uf_hz: float = 0.036
    droop_k_of_pu: float = 0.05
    droop_k_uf_pu: float = 0.05
    droop_t_response_s: float = 5.0


def _attr(component: dict[str, Any], variable: str, value: str, data_type: str, **chars: Any) -> dict[str, Any]:
    return {
        "component": component,
        "variable": {"name": variable},
        "variableAttribute": [{"type": "Actual", "value": value, "mutability": "ReadOnly"}],
        "variableCharacteristics": {"dataType": data_type, "supportsMonitoring": False, **chars},
    }


def device_model_report(settings: SimSettings, p_max_w: float, power_w: float) -> list[dict[str, Any]]:
    """NotifyReport's ``reportData`` (wire format) of a one-EVSE simulated station: the station's vendor and
    model, and EVSE 1's power now with its rating as ``maxLimit`` [W]."""
    station, evse = {"name": "ChargingStation"}, {"name": "EVSE", "evse": {"id": 1}}
    return [
        _attr(station, "VendorName", settings.vendor, "string"),
        _attr(station, "Model", settings.model, "string"),
        _attr(evse, "Power", f"{power_w:.1f}", "decimal", unit="W", maxLimit=float(p_max_w)),
    ]


def _control(control_type: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
    element = {"id": f"{control_type}-default", "isDefault": True, "isSuperseded": False, key: body}
    if key == "curve":
        element["curveType"] = control_type
    return element


def _curve(points: list[tuple[float, float]], y_unit: str, **extra: Any) -> dict[str, Any]:
    data = [{"x": round(x, 6), "y": round(y, 6)} for x, y in points]  # 1.1 * 100 is 110.00000000000001
    return {"priority": 0, "yUnit": y_unit, "curveData": data, **extra}


def der_control_lists(settings: SimSettings, control_type: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """ReportDERControl's lists (wire format: ``curve``, ``freqDroop``) of the station's default DER controls,
    of one ``control_type`` or all; empty when the station has none."""
    if not settings.der_controls:
        return {}
    s = settings
    pct = 100.0
    curves = {
        "HVMustTrip": _curve([(s.ov2_s, s.ov2_pu * pct), (s.ov1_s, s.ov1_pu * pct)], "PctEffectiveV"),
        "LVMustTrip": _curve([(s.uv2_s, s.uv2_pu * pct), (s.uv1_s, s.uv1_pu * pct)], "PctEffectiveV"),
        "HFMustTrip": _curve([(s.of2_s, s.of2_hz), (s.of1_s, s.of1_hz)], "Not_Applicable"),
        "LFMustTrip": _curve([(s.uf2_s, s.uf2_hz), (s.uf1_s, s.uf1_hz)], "Not_Applicable"),
        "VoltVar": _curve(
            [
                (s.vv_v1_pu * pct, s.vv_q1_pct),
                (s.vv_v2_pu * pct, s.vv_q2_pct),
                (s.vv_v3_pu * pct, s.vv_q3_pct),
                (s.vv_v4_pu * pct, s.vv_q4_pct),
            ],
            "PctMaxVar",
            responseTime=s.vv_t_response_s,
        ),
    }
    droop = {
        "priority": 0,
        "overFreq": round(F_NOMINAL_HZ + s.droop_db_of_hz, 6),
        "underFreq": round(F_NOMINAL_HZ - s.droop_db_uf_hz, 6),
        "overDroop": s.droop_k_of_pu,
        "underDroop": s.droop_k_uf_pu,
        "responseTime": s.droop_t_response_s,
    }
    out: dict[str, list[dict[str, Any]]] = {}
    chosen = [c for c in curves if control_type in (None, c)]
    if chosen:
        out["curve"] = [_control(c, "curve", curves[c]) for c in chosen]
    if control_type in (None, "FreqDroop"):
        out["freqDroop"] = [_control("FreqDroop", "freqDroop", droop)]
    return out


def now_iso() -> str:
    """The time now, OCPP's date-time format."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
