"""The asset register an aggregator audits: sites, EVSEs / bidirectional inverters, meters, the aggregation and
the retail programmes its resources are enrolled in.

Read from TOML (:func:`load_register`), validated like scenarios (frozen pydantic models, unknown keys are errors);
the inverters and meters may also come from CSV files named in the TOML (``inverters_csv``, ``meters_csv``; one row
per asset, nested settings as dotted column names such as ``trip.uf2_hz``). Every error is one line naming the
file, the asset's id and the field.

Validation rejects what cannot be a setting at all (a trip frequency of 0.985 looks like per-unit, a voltage of 240
looks like volts, an unknown category or accuracy class, a meter covering an unknown inverter); whether a
plausible setting lies inside the standard's allowed range is the audit's question (:mod:`v2gtwin.compliance.audit`),
not the loader's.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from v2gtwin._scenario_base import _Model, read_toml_file
from v2gtwin.compliance.register_io import format_error, read_csv
from v2gtwin.errors import ScenarioError

__all__ = [
    "ACCURACY_CLASSES",
    "SERVICES",
    "Aggregation",
    "FreqDroopSettings",
    "Inverter",
    "Meter",
    "MeterSum",
    "Register",
    "RemediationCosts",
    "RetailEnrolment",
    "Site",
    "TripSettings",
    "VoltVarSettings",
    "load_register",
    "parse_register",
    "with_aggregation",
]

#: Accuracy classes a meter may declare: ANSI C12.20 classes 0.1, 0.2, 0.5 (the accuracy limit in percent at the
#: class's test points), the coarser 1.0 and 2.0 of internal or sub-meters (e.g. IEC 62053-21 classes 1 and 2), and
#: "none" (no declared accuracy).
ACCURACY_CLASSES = ("0.1", "0.2", "0.5", "1.0", "2.0", "none")

AccuracyClass = Literal["0.1", "0.2", "0.5", "1.0", "2.0", "none"]

#: Services a resource may be paid for, in the wholesale market or a retail programme (compared after stripping,
#: lower-casing and writing spaces and hyphens as underscores: "Frequency Response" = "frequency_response").
SERVICES = ("energy", "capacity", "regulation", "reserve", "frequency_response", "ramping", "voltage_support")
Service = Literal["energy", "capacity", "regulation", "reserve", "frequency_response", "ramping", "voltage_support"]


def _services_norm(v: Any) -> Any:
    """Services as their canonical names (``" Energy "`` -> ``"energy"``); anything else is left to the Literal."""
    if isinstance(v, (list, tuple)):
        return ["_".join(x.strip().casefold().replace("-", " ").split()) if isinstance(x, str) else x for x in v]
    return v


#: A single unit above this rating is not an EVSE or V2G inverter (the largest charging standard, MCS, goes to
#: 3.75 MW): the number is taken for watts [kW].
_RATING_MAX_KW = 4000.0


def _class_as_text(v: Any) -> Any:
    """An accuracy class given as a number (0.2) as the text the models take ('0.2')."""
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)) and math.isfinite(v):
        return f"{float(v):.1f}"
    return v


#: Plausible ranges of a setting's unit (not the standard's allowed ranges): outside them the value is in the
#: wrong unit or a typo, and the error says what it looks like (a frequency of 0.985 looks like per-unit).
_F_HZ = (40.0, 70.0)
_V_PU = (0.0, 2.0)


def _check_hz(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if 0.0 < value <= 2.0:
        raise ValueError(f"{value} looks like per-unit of nominal frequency; give {name} in Hz (40 to 70)")
    if not _F_HZ[0] <= value <= _F_HZ[1]:
        raise ValueError(f"{value} Hz is not a power-system frequency; give {name} in Hz (40 to 70)")
    return value


def _check_pu(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if value > 10.0:
        raise ValueError(f"{value} looks like volts; give {name} in per-unit of nominal voltage (0 to 2)")
    if not _V_PU[0] < value <= _V_PU[1]:
        raise ValueError(f"{value} is outside 0 to 2; give {name} in per-unit of nominal voltage")
    return value


class TripSettings(_Model):
    """Configured voltage and frequency trip settings (IEEE 1547-2018 clause 6.4.1, Tables 11-13 for voltage;
    clause 6.5.1 for frequency): a threshold and a clearing time per element; any may be missing (not assessed)."""

    ov2_pu: float | None = Field(None, description="OV2 threshold [pu of nominal voltage].")
    ov2_s: float | None = Field(None, ge=0.0, le=1e5, description="OV2 clearing time [s].")
    ov1_pu: float | None = Field(None, description="OV1 threshold [pu of nominal voltage].")
    ov1_s: float | None = Field(None, ge=0.0, le=1e5, description="OV1 clearing time [s].")
    uv1_pu: float | None = Field(None, description="UV1 threshold [pu of nominal voltage].")
    uv1_s: float | None = Field(None, ge=0.0, le=1e5, description="UV1 clearing time [s].")
    uv2_pu: float | None = Field(None, description="UV2 threshold [pu of nominal voltage].")
    uv2_s: float | None = Field(None, ge=0.0, le=1e5, description="UV2 clearing time [s].")
    of2_hz: float | None = Field(None, description="OF2 threshold [Hz].")
    of2_s: float | None = Field(None, ge=0.0, le=1e5, description="OF2 clearing time [s].")
    of1_hz: float | None = Field(None, description="OF1 threshold [Hz].")
    of1_s: float | None = Field(None, ge=0.0, le=1e5, description="OF1 clearing time [s].")
    uf1_hz: float | None = Field(None, description="UF1 threshold [Hz].")
    uf1_s: float | None = Field(None, ge=0.0, le=1e5, description="UF1 clearing time [s].")
    uf2_hz: float | None = Field(None, description="UF2 threshold [Hz].")
    uf2_s: float | None = Field(None, ge=0.0, le=1e5, description="UF2 clearing time [s].")

    @field_validator("ov2_pu", "ov1_pu", "uv1_pu", "uv2_pu")
    @classmethod
    def _v_unit(cls, v: float | None, info: Any) -> float | None:
        return _check_pu(info.field_name, v)

    @field_validator("of2_hz", "of1_hz", "uf1_hz", "uf2_hz")
    @classmethod
    def _f_unit(cls, v: float | None, info: Any) -> float | None:
        return _check_hz(info.field_name, v)


class VoltVarSettings(_Model):
    """Volt-var curve (IEEE 1547-2018 clause 5.3.3, Table 8): four (V, Q) points, Q in percent of the nameplate
    apparent power, + = injected (capacitive)."""

    enabled: bool = Field(True, description="Whether the volt-var function is enabled.")
    vref_pu: float = Field(
        1.0,
        description="Reference voltage VRef of the curve [pu of nominal voltage] (adjustable, 0.95 to 1.05 pu; "
        "V1-V4's allowed ranges are relative to it).",
    )
    v1_pu: float = Field(description="V1 [pu of nominal voltage].")
    q1_pct: float = Field(ge=-100.0, le=100.0, description="Q1 [% of nameplate apparent power, + injected].")
    v2_pu: float = Field(description="V2 [pu of nominal voltage].")
    q2_pct: float = Field(ge=-100.0, le=100.0, description="Q2 [% of nameplate apparent power, + injected].")
    v3_pu: float = Field(description="V3 [pu of nominal voltage].")
    q3_pct: float = Field(ge=-100.0, le=100.0, description="Q3 [% of nameplate apparent power, + injected].")
    v4_pu: float = Field(description="V4 [pu of nominal voltage].")
    q4_pct: float = Field(ge=-100.0, le=100.0, description="Q4 [% of nameplate apparent power, + injected].")
    t_response_s: float | None = Field(None, gt=0.0, le=1e4, description="Open-loop response time [s].")

    @field_validator("vref_pu", "v1_pu", "v2_pu", "v3_pu", "v4_pu")
    @classmethod
    def _v_unit(cls, v: float, info: Any) -> float:
        _check_pu(info.field_name, v)
        return v

    @model_validator(mode="after")
    def _ordered(self) -> VoltVarSettings:
        if not self.v1_pu <= self.v2_pu <= self.v3_pu <= self.v4_pu:
            raise ValueError(
                f"volt-var voltages must not decrease: v1_pu <= v2_pu <= v3_pu <= v4_pu; got "
                f"{self.v1_pu}, {self.v2_pu}, {self.v3_pu}, {self.v4_pu}"
            )
        return self


class FreqDroopSettings(_Model):
    """Frequency droop (frequency-watt) settings (IEEE 1547-2018 clause 6.5.2.7)."""

    db_of_hz: float = Field(ge=0.0, description="Over-frequency deadband dbOF [Hz].")
    db_uf_hz: float = Field(ge=0.0, description="Under-frequency deadband dbUF [Hz].")
    k_of_pu: float = Field(gt=0.0, description="Over-frequency droop kOF [pu frequency per pu power].")
    k_uf_pu: float = Field(gt=0.0, description="Under-frequency droop kUF [pu frequency per pu power].")
    t_response_s: float | None = Field(
        None, gt=0.0, le=1e4, description="Open-loop response time [s] (the fastest when the units' differ)."
    )
    t_response_max_s: float | None = Field(
        None,
        gt=0.0,
        le=1e4,
        description="Slowest open-loop response time among the entry's units when they differ [s]; checked against "
        "the same range as t_response_s.",
    )

    @model_validator(mode="after")
    def _response_order(self) -> FreqDroopSettings:
        if self.t_response_max_s is not None and (
            self.t_response_s is None or self.t_response_max_s < self.t_response_s
        ):
            raise ValueError("t_response_max_s needs t_response_s (the fastest) and must not be below it")
        return self

    @field_validator("db_of_hz", "db_uf_hz")
    @classmethod
    def _db_unit(cls, v: float, info: Any) -> float:
        if v > 5.0:
            raise ValueError(f"{v} Hz is not a deadband (a frequency?); give {info.field_name} in Hz (0 to 5)")
        return v

    @field_validator("k_of_pu", "k_uf_pu")
    @classmethod
    def _k_unit(cls, v: float, info: Any) -> float:
        if v > 1.0:
            raise ValueError(f"{v} looks like percent; give {info.field_name} in per-unit (5 % droop = 0.05)")
        return v


class Site(_Model):
    """A site of the aggregation."""

    id: str = Field(min_length=1, max_length=60, description="Site id, unique in the register.")
    name: str = Field("", max_length=200, description="Site name.")
    utility: str = Field("", max_length=200, description="Distribution utility serving the site.")


class Inverter(_Model):
    """An EVSE / bidirectional inverter type at a site (``count`` identical units)."""

    id: str = Field(min_length=1, max_length=60, description="Asset id, unique in the register.")
    site: str = Field(min_length=1, max_length=60, description="Id of its site.")
    vendor: str = Field("", max_length=200, description="Vendor (OCPP BootNotification chargePointVendor).")
    model: str = Field("", max_length=200, description="Model (OCPP BootNotification chargePointModel).")
    firmware: str = Field("", max_length=200, description="Firmware version.")
    rating_kw: float = Field(gt=0.0, le=1e5, description="Active-power rating of one unit [kW].")
    rating_kva: float | None = Field(
        None,
        gt=0.0,
        le=1e5,
        description="Nameplate apparent power of one unit [kVA], >= rating_kw (default: rating_kw).",
    )
    count: int = Field(1, ge=1, le=10_000_000, description="Identical units at the site.")
    certifications: tuple[str, ...] = Field((), description="Certifications, e.g. 'UL 1741 SB', 'IEEE 1547.1-2020'.")
    normal_category: Literal["A", "B"] | None = Field(
        None, description="IEEE 1547-2018 normal operating performance category (clause 4.3): A or B."
    )
    abnormal_category: Literal["I", "II", "III"] | None = Field(
        None, description="IEEE 1547-2018 abnormal operating performance category (clause 4.3): I, II or III."
    )
    source: Literal["register", "csms"] = Field(
        "register", description="Where the entry comes from: the register file or the central system."
    )
    trip: TripSettings | None = Field(None, description="Configured trip settings (missing: not assessed).")
    volt_var: VoltVarSettings | None = Field(None, description="Volt-var settings (missing: not assessed).")
    freq_droop: FreqDroopSettings | None = Field(None, description="Frequency droop settings (missing: not assessed).")

    @field_validator("rating_kw", "rating_kva")
    @classmethod
    def _rating_unit(cls, v: float | None, info: Any) -> float | None:
        if v is not None and v > _RATING_MAX_KW:
            unit = "W" if info.field_name == "rating_kw" else "VA"
            raise ValueError(
                f"{v:g} looks like {unit}; give {info.field_name} in k{unit} (one unit: at most {_RATING_MAX_KW:g})"
            )
        return v

    @model_validator(mode="after")
    def _kva_covers_kw(self) -> Inverter:
        if self.rating_kva is not None and self.rating_kva < self.rating_kw:
            raise ValueError(
                f"rating_kva {self.rating_kva:g} is below rating_kw {self.rating_kw:g}: the apparent power rating "
                "must be at least the active power rating"
            )
        return self

    @property
    def s_rated_kva(self) -> float:
        """Nameplate apparent power of one unit [kVA] (``rating_kva``, else ``rating_kw``)."""
        return self.rating_kva if self.rating_kva is not None else self.rating_kw


class Meter(_Model):
    """A meter and the inverters it measures."""

    id: str = Field(min_length=1, max_length=60, description="Meter id, unique in the register.")
    site: str = Field(min_length=1, max_length=60, description="Id of its site.")
    accuracy_class: AccuracyClass = Field(
        description="Accuracy class: ANSI C12.20 '0.1', '0.2', '0.5'; '1.0', '2.0' (sub-meters); 'none'."
    )
    dedicated: bool = Field(description="Measures only the aggregated resources (not the host's other load).")
    directional: bool = Field(description="Registers import and export separately.")
    interval_min: float = Field(gt=0.0, le=1440.0, description="Interval length of its data [min].")
    revenue_grade: bool = Field(description="Certified revenue-grade (approved for settlement).")
    covers: tuple[str, ...] = Field((), description="Ids of the inverters it measures.")
    e_kwh: float | None = Field(
        None,
        ge=-1e9,
        le=1e9,
        description="Shorthand for a meter whose flow went one way only over the assessment period: its energy, "
        "signed (+ import, - export) [kWh]; give e_import_kwh and e_export_kwh instead when it went both ways. "
        "Used by meter sums.",
    )
    e_import_kwh: float | None = Field(
        None, ge=0.0, le=1e9, description="Energy it registered as import over the assessment period [kWh]."
    )
    e_export_kwh: float | None = Field(
        None, ge=0.0, le=1e9, description="Energy it registered as export over the assessment period [kWh]."
    )

    @field_validator("accuracy_class", mode="before")
    @classmethod
    def _class_text(cls, v: Any) -> Any:
        return _class_as_text(v)

    @model_validator(mode="after")
    def _one_energy_form(self) -> Meter:
        if self.e_kwh is not None and (self.e_import_kwh is not None or self.e_export_kwh is not None):
            raise ValueError("give either e_kwh (one-directional shorthand) or e_import_kwh and e_export_kwh, not both")
        if (self.e_import_kwh is None) != (self.e_export_kwh is None):
            raise ValueError("give both e_import_kwh and e_export_kwh (0 for a direction with no flow)")
        return self

    @property
    def e_import_export_kwh(self) -> tuple[float, float] | None:
        """(import, export) it registered [kWh]: ``e_import_kwh`` and ``e_export_kwh``, else the signed ``e_kwh``
        shorthand split by its sign; None when no energy is given."""
        if self.e_import_kwh is not None and self.e_export_kwh is not None:
            return (self.e_import_kwh, self.e_export_kwh)
        if self.e_kwh is None:
            return None
        return (max(self.e_kwh, 0.0), max(-self.e_kwh, 0.0))


class MeterSum(_Model):
    """Energy of a resource taken as the sum of several meters' readings (e.g. internal EVSE meters)."""

    id: str = Field(min_length=1, max_length=60, description="Id of the summed quantity, unique in the register.")
    meters: tuple[str, ...] = Field(min_length=1, description="Ids of the meters summed.")
    covers: tuple[str, ...] = Field((), description="Ids of the inverters it stands in for a meter of.")


class Aggregation(_Model):
    """The aggregation offered to the wholesale market (FERC Order 2222, 18 CFR 35.28(g)(12))."""

    name: str = Field("", max_length=200, description="Name of the aggregation.")
    market: str = Field("", max_length=60, description="Market (RTO/ISO), e.g. 'PJM'.")
    min_size_kw: float = Field(
        100.0, gt=0.0, le=1e6, description="Market's minimum aggregation size [kW] (FERC Order 2222 cap: 100 kW)."
    )
    settlement_interval_min: float = Field(
        5.0, gt=0.0, le=1440.0, description="Market's settlement interval [min] (metering interval limit)."
    )
    required_accuracy_class: Literal["0.1", "0.2", "0.5"] = Field(
        "0.2", description="ANSI C12.20 class the market requires of settlement meters (this or better)."
    )
    total_size_kw: float | None = Field(
        None, gt=0.0, le=1e8, description="Declared size [kW] (default: sum of inverters' rating_kw x count)."
    )
    distribution_review: Literal["approved", "pending", "not_filed"] | None = Field(
        None, description="Status of the distribution utility's review of the aggregation (missing: not assessed)."
    )
    telemetry: bool | None = Field(
        None, description="Real-time telemetry to the market operator in place (missing: not assessed)."
    )
    services: tuple[Service, ...] = Field(
        (), description=f"Wholesale services offered: {', '.join(SERVICES)} (missing: double counting not assessed)."
    )

    @field_validator("required_accuracy_class", mode="before")
    @classmethod
    def _class_text(cls, v: Any) -> Any:
        return _class_as_text(v)

    @field_validator("services", mode="before")
    @classmethod
    def _services(cls, v: Any) -> Any:
        return _services_norm(v)


class RetailEnrolment(_Model):
    """Resources of the register also enrolled in a retail (utility or state) programme."""

    program: str = Field(min_length=1, max_length=200, description="Name of the retail programme.")
    resources: tuple[str, ...] = Field(min_length=1, description="Ids of the inverters enrolled.")
    services: tuple[Service, ...] = Field((), description=f"Services the programme pays for: {', '.join(SERVICES)}.")

    @field_validator("services", mode="before")
    @classmethod
    def _services(cls, v: Any) -> Any:
        return _services_norm(v)


class RemediationCosts(_Model):
    """Optional one-off cost of each remediation action, per unit acted on [the register's currency]."""

    replace_meter: float | None = Field(None, ge=0.0, le=1e9, description="Per meter replaced.")
    install_meter: float | None = Field(None, ge=0.0, le=1e9, description="Per meter installed.")
    certify_inverter: float | None = Field(None, ge=0.0, le=1e9, description="Per inverter certified.")
    reconfigure_inverter: float | None = Field(None, ge=0.0, le=1e9, description="Per inverter reconfigured.")
    file_utility_review: float | None = Field(None, ge=0.0, le=1e9, description="Per review filed.")
    withdraw_retail: float | None = Field(None, ge=0.0, le=1e9, description="Per resource withdrawn.")
    add_telemetry: float | None = Field(None, ge=0.0, le=1e9, description="Per aggregation equipped.")
    grow_aggregation: float | None = Field(None, ge=0.0, le=1e9, description="Per aggregation grown.")


class Register(_Model):
    """The whole asset register."""

    currency: str = Field("USD", min_length=1, max_length=10, description="Currency of every cost in it.")
    aggregation: Aggregation = Field(default_factory=Aggregation, description="The aggregation.")
    sites: tuple[Site, ...] = Field((), description="Sites.")
    inverters: tuple[Inverter, ...] = Field((), description="EVSEs / bidirectional inverters.")
    meters: tuple[Meter, ...] = Field((), description="Meters.")
    meter_sums: tuple[MeterSum, ...] = Field((), description="Quantities taken as sums of meters.")
    retail_enrolments: tuple[RetailEnrolment, ...] = Field((), description="Retail programme enrolments.")
    remediation_costs: RemediationCosts = Field(
        default_factory=RemediationCosts, description="Optional cost per remediation action."
    )

    @model_validator(mode="after")
    def _references(self) -> Register:
        def unique(kind: str, ids: list[str]) -> set[str]:
            seen: set[str] = set()
            for i in ids:
                if i in seen:
                    raise ValueError(f"{kind} '{i}': id used twice")
                seen.add(i)
            return seen

        sites = unique("site", [s.id for s in self.sites])
        invs = unique("inverter", [i.id for i in self.inverters])
        meters = unique("meter", [m.id for m in self.meters])
        unique("meter sum", [m.id for m in self.meter_sums])
        for inv in self.inverters:
            if sites and inv.site not in sites:
                raise ValueError(f"inverter '{inv.id}': field site: unknown site '{inv.site}'")
        for m in self.meters:
            if sites and m.site not in sites:
                raise ValueError(f"meter '{m.id}': field site: unknown site '{m.site}'")
            for c in m.covers:
                if c not in invs:
                    raise ValueError(f"meter '{m.id}': field covers: unknown inverter '{c}'")
        for s in self.meter_sums:
            for mid in s.meters:
                if mid not in meters:
                    raise ValueError(f"meter sum '{s.id}': field meters: unknown meter '{mid}'")
            for c in s.covers:
                if c not in invs:
                    raise ValueError(f"meter sum '{s.id}': field covers: unknown inverter '{c}'")
        for e in self.retail_enrolments:
            for r in e.resources:
                if r not in invs:
                    raise ValueError(f"retail enrolment '{e.program}': field resources: unknown inverter '{r}'")
        return self

    @property
    def rated_size_kw(self) -> float:
        """The sum of the inverters' rating_kw x count [kW]."""
        return float(sum(i.rating_kw * i.count for i in self.inverters))

    @property
    def total_size_kw(self) -> float:
        """The aggregation's size [kW]: declared, else :attr:`rated_size_kw`."""
        if self.aggregation.total_size_kw is not None:
            return self.aggregation.total_size_kw
        return self.rated_size_kw


def parse_register(data: dict[str, Any], source: str = "<register>", base_dir: str | Path | None = None) -> Register:
    """Validate a register given as a (TOML-shaped) dict.

    ``inverters_csv`` / ``meters_csv`` (paths relative to ``base_dir``) add CSV rows to ``inverters`` / ``meters``.

    Raises
    ------
    ScenarioError
        One line naming ``source``, the asset id and the field, the problem and the bad value.
    """
    data = dict(data)
    base = Path(base_dir) if base_dir is not None else Path(".")
    origins: dict[tuple[str, int], str] = {}
    for key, kind in (("inverters_csv", "inverters"), ("meters_csv", "meters")):
        csv_path = data.pop(key, None)
        if csv_path is None:
            continue
        if not isinstance(csv_path, str):
            raise ScenarioError(f"{source}: field {key}: expected a file path; got {csv_path!r}")
        p = Path(csv_path)
        full = p if p.is_absolute() else base / p
        rows = read_csv(full, kind)
        before = list(data.get(kind, []))
        for i in range(len(rows)):
            origins[(kind, len(before) + i)] = f"{full} row {i + 2}"  # row 1 is the header
        data[kind] = before + rows
    try:
        return Register.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(format_error(exc, data, source, Register, origins)) from None


def load_register(path: str | Path) -> Register:
    """Read and validate an asset register TOML file (with the CSV files it names).

    Raises
    ------
    ScenarioError
        The file cannot be read, is not valid TOML, or fails validation (one line naming asset and field).
    """
    p = Path(path)
    return parse_register(read_toml_file(p, "register"), source=str(p), base_dir=p.parent)


def with_aggregation(register: Register, source: str = "command line", **values: Any) -> Register:
    """The register with ``[aggregation]`` fields replaced (values of None are left as they are), validated like
    the file; errors name ``source`` and the field."""
    picked = {k: v for k, v in values.items() if v is not None}
    if not picked:
        return register
    data = register.model_dump(mode="json")
    data["aggregation"] = {**data["aggregation"], **picked}
    return parse_register(data, source)
