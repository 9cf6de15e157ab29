"""The charger part of the asset register, from what the central system knows (``v2gtwin comply --from-csms``).

Each station the central system's store holds becomes an inverter of the register (``id`` = the station id,
``source = "csms"``): vendor, model and firmware from its BootNotification, its rating from its device model
(NotifyReport), and — for an OCPP 2.1 station with DER controls — its IEEE 1547 trip, volt-var and frequency-droop
settings from ReportDERControl. :data:`MAPPING` is the table from the OCPP names to the register's fields.
Whatever the store cannot supply (the site, the IEEE 1547 categories, the certifications, the apparent-power
rating, meters, the aggregation...) comes from a register file; for a field both give, the central system wins.
Every field of every inverter says where it came from (:attr:`CsmsRegister.field_sources`), and everything that
could not be read is named in :attr:`CsmsRegister.notes` (never dropped silently).

Merge rule, per station: the register's inverter with the station's id is the base; every field the store
supplies replaces it (the central system reports what is installed; the register says what was planned). A
station the register does not list is placed at the register's site when it has exactly one (said in the notes);
with several sites it is an error naming the station (the store does not know where a station stands). The
register's inverters that the central system does not know are kept as they are (``source = "register"``, named
in the notes).

References
----------
OCA, *OCPP 2.0.1 Part 2 — Specification*: BootNotificationRequest (``chargingStation``: ``vendorName``, ``model``,
``firmwareVersion``), B07 Get Base Report and NotifyReportRequest; *Part 2 Appendices*: standardized components and
variables (``EVSE.Power``, whose ``maxLimit`` characteristic is the EVSE's maximum power, unit W).
OCA, *OCPP 2.1 Edition 1*, block R (DER control): ``DERControlEnumType`` (``HVMustTrip``, ``LVMustTrip``,
``HFMustTrip``, ``LFMustTrip``, ``VoltVar``, ``FreqDroop``), ``DERCurveType`` (``curveData`` x/y, ``yUnit``,
``responseTime``, ``reactivePowerParams.vRef``), ``FreqDroopType`` (``overFreq``, ``underFreq``, ``overDroop``,
``underDroop``, ``responseTime``); the schemas as shipped in the ``ocpp`` package.
IEEE Std 2030.5-2018, ``DERCurve``: the axes of the curves (see :mod:`v2gtwin.cyber.csms.sim_report`).
IEEE Std 1547-2018: the trip elements OV2, OV1, UV1, UV2, OF2, OF1, UF1, UF2; volt-var (clause 5.3.3) and
frequency droop (clause 6.5.2.7) parameters, the register's naming.
"""

from __future__ import annotations

import json
import logging
import math
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from v2gtwin.compliance.register import Register, parse_register
from v2gtwin.compliance.register_io import read_csv
from v2gtwin.errors import DataError, ScenarioError

__all__ = ["MAPPING", "CsmsRegister", "FieldMapping", "StationFacts", "read_station_facts", "register_from_csms"]

logger = logging.getLogger(__name__)

F_NOMINAL_HZ = 60.0  # IEEE 1547-2018 (North America): FreqDroop's start frequencies are nominal +/- dead band
_PCT = 100.0


@dataclass
class StationFacts:
    """What the store holds about one station, gathered for the mapping.

    station_id, vendor, model, firmware : from BootNotification. variables : (component, evse id, variable,
    attribute) -> (value, unit, max_limit) of its reported device model. der : control type -> the control in
    effect (wire-format dict of the *GetType element). notes : what could not be read, said in the output."""

    station_id: str
    vendor: str = ""
    model: str = ""
    firmware: str = ""
    variables: dict[tuple[str, int, str, str], tuple[str | None, str, float | None]] = field(default_factory=dict)
    der: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class FieldMapping:
    """One row of the mapping: the register field, where OCPP carries it, how it is converted, and a reader."""

    field: str
    message: str
    ocpp_name: str
    conversion: str
    read: Callable[[StationFacts], Any]


def _text(attr: str) -> Callable[[StationFacts], Any]:
    return lambda f: getattr(f, attr) or None


def _rating_kw(f: StationFacts) -> float | None:
    """Sum of the EVSEs' ``Power`` ``maxLimit`` (W or kW), else ``ChargingStation.Power``'s."""
    per_evse = {k: v for k, v in f.variables.items() if k[0] == "EVSE" and k[2] == "Power" and v[2] is not None}
    station = {k: v for k, v in f.variables.items() if k[0] == "ChargingStation" and k[2] == "Power"}
    chosen = per_evse or {k: v for k, v in station.items() if v[2] is not None}
    if not chosen:
        return None
    total_kw = 0.0
    for evse_id in sorted({k[1] for k in chosen}):
        _, unit, max_limit = next(v for k, v in chosen.items() if k[1] == evse_id)
        scale = {"W": 1e-3, "kW": 1.0}.get(unit)
        if scale is None or max_limit is None or not (math.isfinite(max_limit) and max_limit > 0):
            f.notes.append(f"station '{f.station_id}': Power maxLimit {max_limit} {unit!r} not read (unit W or kW)")
            return None
        total_kw += max_limit * scale
    if len(chosen) > 1:
        f.notes.append(f"station '{f.station_id}': rating_kw is the sum of {len(chosen)} EVSEs' Power maxLimit")
    return total_kw


# Trip curves: control type -> (y unit expected, scale of y to the register's unit, the register's elements in
# ascending order of threshold, the unit suffix of the threshold). The two points of a curve are told apart by their
# threshold (y), with the package's one convention (the register, the example, the study's legacy group):
# element 1 is the one closer to nominal (OV1 below OV2, UV1 above UV2, OF1 below OF2, UF1 above UF2), element 2
# the deeper excursion. Clearing times cannot tell them apart in general: IEEE 1547-2003's two under-frequency
# elements (59.3 Hz and 57.0 Hz for DR <= 30 kW) both clear in 0.16 s. A station with the legacy 59.3 Hz / 0.16 s
# element is read as UF1 = 59.3 Hz / 0.16 s, as the register and the study write it, and fails the UF1 rule.
_TRIP_CURVES = {
    "HVMustTrip": ("PctEffectiveV", 1 / _PCT, ("ov1", "ov2"), "_pu"),
    "LVMustTrip": ("PctEffectiveV", 1 / _PCT, ("uv2", "uv1"), "_pu"),
    "HFMustTrip": ("Not_Applicable", 1.0, ("of1", "of2"), "_hz"),
    "LFMustTrip": ("Not_Applicable", 1.0, ("uf2", "uf1"), "_hz"),
}


def _curve_points(f: StationFacts, control_type: str, y_unit: str, n: int) -> list[tuple[float, float]] | None:
    control = f.der.get(control_type)
    if control is None:
        return None
    curve = control.get("curve") or {}
    points = [(float(p["x"]), float(p["y"])) for p in curve.get("curveData") or []]
    if not all(math.isfinite(v) for p in points for v in p):
        f.notes.append(f"station '{f.station_id}': {control_type} not read: a point that is not a finite number")
        f.der.pop(control_type)
        return None
    if curve.get("yUnit") != y_unit:
        f.notes.append(
            f"station '{f.station_id}': {control_type} not read: yUnit {curve.get('yUnit')!r}, expected {y_unit!r}"
        )
        f.der.pop(control_type)
        return None
    if len(points) != n or (control_type != "VoltVar" and len({y for _, y in points}) != n):
        f.notes.append(
            f"station '{f.station_id}': {control_type} not read: {len(points)} points, the register's settings "
            f"need {n}{' with distinct thresholds (y)' if control_type != 'VoltVar' else ''}"
        )
        f.der.pop(control_type)
        return None
    return points


def _trip_reader(control_type: str, rank: int, what: str) -> Callable[[StationFacts], Any]:
    y_unit, scale, _, _ = _TRIP_CURVES[control_type]

    def read(f: StationFacts) -> float | None:
        points = _curve_points(f, control_type, y_unit, 2)
        if points is None:
            return None
        x, y = sorted(points, key=lambda p: p[1])[rank]  # by threshold (see _TRIP_CURVES)
        return round(y * scale, 9) if what == "threshold" else x

    return read


def _volt_var_reader(i: int, what: str) -> Callable[[StationFacts], Any]:
    def read(f: StationFacts) -> float | None:
        points = _curve_points(f, "VoltVar", "PctMaxVar", 4)
        if points is None:
            return None
        v_ref_pct = ((f.der["VoltVar"]["curve"].get("reactivePowerParams") or {}).get("vRef")) or _PCT
        x, y = points[i]
        return round(x / _PCT * v_ref_pct / _PCT, 9) if what == "v" else y

    return read


def _volt_var_vref(f: StationFacts) -> float | None:
    if _curve_points(f, "VoltVar", "PctMaxVar", 4) is None:
        return None
    v_ref_pct = (f.der["VoltVar"]["curve"].get("reactivePowerParams") or {}).get("vRef")
    return round(float(v_ref_pct) / _PCT, 9) if v_ref_pct else None


def _volt_var_response(f: StationFacts) -> float | None:
    if _curve_points(f, "VoltVar", "PctMaxVar", 4) is None:
        return None
    t = f.der["VoltVar"]["curve"].get("responseTime")
    return float(t) if t else None  # 0: "no limit" (OCPP 2.1), not a response time


def _volt_var_enabled(f: StationFacts) -> bool | None:
    return True if _curve_points(f, "VoltVar", "PctMaxVar", 4) is not None else None


def _droop_reader(key: str) -> Callable[[StationFacts], Any]:
    def read(f: StationFacts) -> float | None:
        control = f.der.get("FreqDroop")
        if control is None:
            return None
        body = control.get("freqDroop") or {}
        over, under = float(body.get("overFreq", 0.0)), float(body.get("underFreq", 0.0))
        numbers = [over, under, *(float(body.get(k) or 0.0) for k in ("overDroop", "underDroop", "responseTime"))]
        if not all(math.isfinite(v) for v in numbers):
            f.notes.append(f"station '{f.station_id}': FreqDroop not read: a value that is not a finite number")
            f.der.pop("FreqDroop")
            return None
        if not (over >= F_NOMINAL_HZ >= under > 0.0):
            f.notes.append(
                f"station '{f.station_id}': FreqDroop not read: overFreq {over} Hz and underFreq {under} Hz must "
                f"bracket the nominal {F_NOMINAL_HZ} Hz (they are the frequencies where droop starts)"
            )
            f.der.pop("FreqDroop")
            return None
        t = body.get("responseTime")
        value = {
            "db_of_hz": over - F_NOMINAL_HZ,
            "db_uf_hz": F_NOMINAL_HZ - under,
            "k_of_pu": body.get("overDroop"),
            "k_uf_pu": body.get("underDroop"),
            "t_response_s": float(t) if t else None,
        }[key]
        return None if value is None else round(float(value), 9)

    return read


MAPPING: tuple[FieldMapping, ...] = (
    FieldMapping("vendor", "BootNotification", "chargingStation.vendorName", "as sent", _text("vendor")),
    FieldMapping("model", "BootNotification", "chargingStation.model", "as sent", _text("model")),
    FieldMapping("firmware", "BootNotification", "chargingStation.firmwareVersion", "as sent", _text("firmware")),
    FieldMapping(
        "rating_kw",
        "NotifyReport",
        "EVSE.Power, characteristic maxLimit (OCPP 2.0.1 Part 2 Appendices)",
        "W / 1000 (kW as is); summed over EVSEs; else ChargingStation.Power",
        _rating_kw,
    ),
    *(
        FieldMapping(
            f"trip.{element}{suffix if what == 'threshold' else '_s'}",
            "ReportDERControl",
            f"{ctype} curve (OCPP 2.1 DERControlEnumType), point with the "
            f"{'lowest' if rank == 0 else 'highest'} threshold y",
            (f"y [{'% of nominal voltage' if suffix == '_pu' else 'Hz'}]" + (" / 100" if suffix == "_pu" else ""))
            if what == "threshold"
            else "x [s] (clearing time)",
            _trip_reader(ctype, rank, what),
        )
        for ctype, (_, _, elements, suffix) in _TRIP_CURVES.items()
        for rank, element in enumerate(elements)
        for what in ("threshold", "time")
    ),
    FieldMapping(
        "volt_var.enabled", "ReportDERControl", "VoltVar curve in effect", "true when reported", _volt_var_enabled
    ),
    *(
        FieldMapping(
            f"volt_var.{'v' if what == 'v' else 'q'}{i + 1}_{'pu' if what == 'v' else 'pct'}",
            "ReportDERControl",
            f"VoltVar curve (OCPP 2.1), curveData[{i}].{'x' if what == 'v' else 'y'}",
            "x [% of nominal voltage] / 100, x vRef / 100 when given"
            if what == "v"
            else "y [% of maximum reactive power, PctMaxVar], taken as % of nameplate apparent power",
            _volt_var_reader(i, what),
        )
        for i in range(4)
        for what in ("v", "q")
    ),
    FieldMapping(
        "volt_var.vref_pu",
        "ReportDERControl",
        "VoltVar curve, reactivePowerParams.vRef",
        "vRef [% of nominal voltage] / 100 (not given: the register's, else 1.0 pu)",
        _volt_var_vref,
    ),
    FieldMapping(
        "volt_var.t_response_s",
        "ReportDERControl",
        "VoltVar curve, responseTime",
        "s (0 = no limit: not a response time, not mapped)",
        _volt_var_response,
    ),
    FieldMapping(
        "freq_droop.db_of_hz", "ReportDERControl", "FreqDroop.overFreq", "overFreq - 60 Hz", _droop_reader("db_of_hz")
    ),
    FieldMapping(
        "freq_droop.db_uf_hz", "ReportDERControl", "FreqDroop.underFreq", "60 Hz - underFreq", _droop_reader("db_uf_hz")
    ),
    FieldMapping(
        "freq_droop.k_of_pu", "ReportDERControl", "FreqDroop.overDroop", "as sent (per unit)", _droop_reader("k_of_pu")
    ),
    FieldMapping(
        "freq_droop.k_uf_pu", "ReportDERControl", "FreqDroop.underDroop", "as sent (per unit)", _droop_reader("k_uf_pu")
    ),
    FieldMapping(
        "freq_droop.t_response_s", "ReportDERControl", "FreqDroop.responseTime", "s", _droop_reader("t_response_s")
    ),
)


@dataclass(frozen=True)
class CsmsRegister:
    """A register built from the central system's store (and a register file).

    register : the merged, validated register. field_sources : inverter id -> register field (dotted for nested
    settings, e.g. ``trip.uf2_hz``) -> ``"csms"`` or ``"register"`` (``"missing"`` for the placeholder site
    ``unknown`` of a station when there is no register at all). stations : the station ids the store holds.
    notes : everything that could not be read or was decided on the way (one sentence each)."""

    register: Register
    field_sources: dict[str, dict[str, str]]
    stations: tuple[str, ...]
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """``stations``, ``field_sources`` and ``notes`` (the audit's ``from_csms`` key)."""
        return {"stations": list(self.stations), "field_sources": self.field_sources, "notes": list(self.notes)}


def _effective(rows: list[Any], station_id: str, notes: list[str]) -> dict[str, dict[str, Any]]:
    """Per control type, the control in effect among the reported ones: not superseded, then default before
    scheduled, then the lowest priority value (0 highest); a tie is resolved by control id and said."""
    by_type: dict[str, list[Any]] = {}
    for r in rows:
        if not r.is_superseded:
            by_type.setdefault(r.control_type, []).append(r)
    out = {}
    for ctype, cands in by_type.items():
        cands.sort(key=lambda r: (not r.is_default, r.priority, r.control_id))
        if len(cands) > 1 and (cands[0].is_default, cands[0].priority) == (cands[1].is_default, cands[1].priority):
            notes.append(
                f"station '{station_id}': {len(cands)} {ctype} controls of the same priority; "
                f"'{cands[0].control_id}' read (first by id)"
            )
        out[ctype] = json.loads(cands[0].body_json)
    return out


def read_station_facts(store: Any) -> list[StationFacts]:
    """What the store (:class:`~v2gtwin.cyber.csms.store.Store`) holds about each booted station."""
    variables: dict[str, list[Any]] = {}
    for v in store.reported_variables():
        variables.setdefault(v.station_id, []).append(v)
    controls: dict[str, list[Any]] = {}
    for c in store.der_controls():
        controls.setdefault(c.station_id, []).append(c)
    out = []
    for st in store.stations():
        if not st.vendor:  # never booted (a provisioned password, a connection without a boot)
            continue
        f = StationFacts(st.station_id, st.vendor, st.model, st.firmware or "")
        for v in variables.get(st.station_id, []):
            f.variables[(v.component, v.evse_id, v.variable, v.attribute)] = (v.value, v.unit, v.max_limit)
        if st.station_id not in variables:
            f.notes.append(f"station '{st.station_id}': no device model reported (GetBaseReport)")
        f.der = _effective(controls.get(st.station_id, []), st.station_id, f.notes)
        if not f.der:
            f.notes.append(f"station '{st.station_id}': no DER controls reported (OCPP 2.1 GetDERControl)")
        out.append(f)
    return out


def _get(d: dict[str, Any], path: str) -> Any:
    head, _, rest = path.partition(".")
    if not rest:
        return d.get(head)
    sub = d.get(head)
    return _get(sub, rest) if isinstance(sub, dict) else None


def _set(d: dict[str, Any], path: str, value: Any) -> None:
    head, _, rest = path.partition(".")
    if not rest:
        d[head] = value
        return
    sub = d.get(head)
    if not isinstance(sub, dict):
        sub = d[head] = {}
    _set(sub, rest, value)


def _leaves(d: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for k, v in d.items():
        if isinstance(v, dict):
            out += _leaves(v, f"{prefix}{k}.")
        elif v is not None and v != [] and v != ():
            out.append(f"{prefix}{k}")
    return out


def _open_store(db_url: str) -> tuple[Any, str]:
    """The store at ``db_url`` and the URL as shown in messages (password hidden); a one-line DataError when it
    cannot be opened, an SQLite file does not exist (opening would create an empty one) or the database has no
    ``stations`` table (not a central system's)."""
    from sqlalchemy import create_engine, inspect
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from v2gtwin.cyber.csms.store import Store

    shown = db_url
    try:
        url = make_url(db_url)
        shown = url.render_as_string(hide_password=True)
        database = url.database
        if (
            url.get_backend_name() == "sqlite"
            and database not in (None, "", ":memory:")
            and not Path(database).is_file()
        ):
            raise DataError(f"--from-csms {shown}: no such database file {database!r}")
        engine = create_engine(url)
        try:
            tables = set(inspect(engine).get_table_names())
        finally:
            engine.dispose()
        if "stations" not in tables:
            raise DataError(f"--from-csms {shown}: not a v2gtwin central system's database (no stations table)")
        return Store(db_url), shown
    except DataError:
        raise
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise DataError(
            f"--from-csms {shown}: cannot open the database ({exc.__class__.__name__}; expected an SQLAlchemy URL "
            "such as sqlite:///csms.sqlite)"
        ) from None


def _read_register_dict(path: Path) -> dict[str, Any]:
    """The register file as a dict, its CSV inverters read in, so that the store's values merge into them before
    validation (a register may leave out what the central system reports, e.g. ``rating_kw``). One-line errors
    as :func:`~v2gtwin.compliance.register.load_register`'s."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such register file") from None
    except IsADirectoryError:
        raise ScenarioError(f"{path}: is a directory, expected a register TOML file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read register file ({exc.__class__.__name__}: {exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from None
    csv_path = data.pop("inverters_csv", None)
    if isinstance(csv_path, str):
        p = Path(csv_path)
        data["inverters"] = list(data.get("inverters", [])) + read_csv(
            p if p.is_absolute() else path.parent / p, "inverters"
        )
    return data


def register_from_csms(db_url: str, register: str | Path | Register | None = None) -> CsmsRegister:
    """The register with its charger part built from the central system's store at ``db_url`` (an SQLAlchemy
    URL), the rest from ``register`` (a register file, an already loaded :class:`Register`, or None).

    Raises
    ------
    DataError
        The database cannot be opened or is not a central system's; a station the register does not list when
        the register has several sites.
    ScenarioError
        The register file is invalid, or the merged register fails validation (the message names the inverter,
        the field and, for a value from the store, the database).
    """
    base_dir: Path | None = None
    if isinstance(register, (str, Path)):
        data = _read_register_dict(Path(register))
        base_dir = Path(register).parent
    else:
        data = register.model_dump(mode="python") if register is not None else {}
    store, shown = _open_store(db_url)
    try:
        facts = read_station_facts(store)
    finally:
        store.engine.dispose()
    inverters: list[dict[str, Any]] = [dict(i) for i in data.get("inverters", [])]
    by_id = {i["id"]: i for i in inverters}
    base_ids = set(by_id)
    sites = [s["id"] for s in data.get("sites", [])]
    notes: list[str] = []
    sources: dict[str, dict[str, str]] = {}
    for f in facts:
        entry = by_id.get(f.station_id)
        if entry is None:
            if len(sites) > 1:
                raise DataError(
                    f"--from-csms {shown}: station '{f.station_id}' is not in the register, which has "
                    f"{len(sites)} sites: add an inverter with id '{f.station_id}' and its site"
                )
            site = sites[0] if sites else "unknown"
            notes.append(f"station '{f.station_id}' is not in the register: placed at site '{site}'")
            entry = {"id": f.station_id, "site": site}
            inverters.append(entry)
            by_id[f.station_id] = entry
        src = {leaf: "register" for leaf in _leaves(entry) if leaf not in ("id", "source")}
        if f.station_id not in base_ids and not sites:
            src["site"] = "missing"  # a placeholder: neither the store nor a register knows it
        for m in MAPPING:
            value = m.read(f)
            if value is None:
                continue
            _set(entry, m.field, value)
            src[m.field] = "csms"
        entry["source"] = "csms"
        for k in ("trip", "volt_var", "freq_droop"):
            if isinstance(entry.get(k), dict):
                entry[k] = {kk: vv for kk, vv in entry[k].items() if vv is not None} or None
        sources[f.station_id] = dict(sorted(src.items()))
        notes += f.notes
    vv_read = sorted(sid for sid, src in sources.items() if src.get("volt_var.q1_pct") == "csms")
    if vv_read:
        notes.append(
            f"volt-var reactive power of {len(vv_read)} station(s) read in % of the station's maximum reactive power "
            "(OCPP PctMaxVar) as % of its nameplate apparent power: the same when the inverter's var rating equals "
            "its kVA rating"
        )
    station_ids = {f.station_id for f in facts}
    for inv in inverters:
        if inv["id"] not in station_ids:
            notes.append(f"inverter '{inv['id']}' is not known to the central system: register values only")
            sources[inv["id"]] = {leaf: "register" for leaf in _leaves(inv) if leaf not in ("id", "source")}
    data["inverters"] = inverters
    where = f"--from-csms {shown}" + (f" with {register}" if isinstance(register, (str, Path)) else "")
    merged = parse_register(data, source=where, base_dir=base_dir)
    return CsmsRegister(merged, sources, tuple(sorted(station_ids)), tuple(notes))
