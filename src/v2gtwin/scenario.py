"""Scenario input models: frozen pydantic models, TOML loading and the built-in default scenario.

A scenario describes one whole study: the random seed, the time grid, the EV fleet and the feeder. Later
sections (markets, protection, cyber, ...) are added as further sub-models. Unknown keys are errors, every
numeric field carries its unit in its name and its allowed range in its ``Field``.
"""

from __future__ import annotations

import datetime as _dt
import math
import zoneinfo
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import tomli_w
from pydantic import BaseModel, Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic.fields import FieldInfo

from v2gtwin._scenario_base import _Model, read_toml_file, resolve_input_file
from v2gtwin.errors import ScenarioError
from v2gtwin.ieee1547 import read_ieee1547
from v2gtwin.scenario_battery import BatterySpec
from v2gtwin.scenario_compliance import ComplianceSpec
from v2gtwin.scenario_markets import MarketsSpec
from v2gtwin.scenario_network import SYNTHETIC_FEEDER_DEFAULTS, NetworkFeederSpec, NetworkSpec
from v2gtwin.scenario_protection import AggregatorSpec, DeviceSpec, ProtectionSpec, RelayCurve, ResilienceSpec

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DEFAULT_SCENARIO",
    "FEEDER_N_BUS",
    "SYNTHETIC_FEEDER_DEFAULTS",
    "AggregatorSpec",
    "BatterySpec",
    "ComplianceSpec",
    "DeviceSpec",
    "FeederSpec",
    "FleetSpec",
    "FrequencySpec",
    "MarketsSpec",
    "NetworkFeederSpec",
    "NetworkSpec",
    "ProtectionSpec",
    "RelayCurve",
    "ResilienceSpec",
    "Scenario",
    "TimeGrid",
    "format_validation_error",
    "load_scenario",
    "parse_scenario",
    "scenario_schema",
    "scenario_to_toml",
]


class TimeGrid(_Model):
    """Fixed-step time grid of the study."""

    dt_s: float = Field(900.0, gt=0.0, le=86_400.0, description="Time step [s].")
    n_steps: int = Field(96, ge=1, le=1_000_000, description="Number of time steps [-].")
    start_hour: float = Field(
        12.0,
        ge=0.0,
        lt=24.0,
        description="Local clock time of the start of step 0 [h]. The default (noon) keeps overnight home "
        "charging sessions whole inside a 24 h horizon.",
    )
    start_date: str = Field(
        "2025-01-15",
        pattern=r"^\d{4}-\d{2}-\d{2}$",
        description="Local calendar date (YYYY-MM-DD) of the start of step 0; it dates the results' time index "
        "and the rows of CSV input files. The default is a winter weekday, the day type of the built-in base load "
        "(IEEE RTS-79 winter weekday); the built-in synthetic profiles do not depend on it.",
    )
    time_zone: str = Field(
        "UTC",
        min_length=1,
        max_length=64,
        description="IANA time zone (e.g. 'America/Los_Angeles', 'Europe/Berlin') of start_date and start_hour, "
        "and of the results' time index. Steps are of fixed length dt_s in absolute time: across a daylight-saving "
        "change the index's local clock shifts by the hour while clock_label keeps counting from start_hour.",
    )

    @field_validator("start_date")
    @classmethod
    def _real_date(cls, value: str) -> str:
        try:
            _dt.date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"not a calendar date (YYYY-MM-DD): {value!r}") from None
        return value

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown IANA time zone {value!r}; use a name such as 'UTC', 'America/New_York', 'Europe/Berlin'"
            ) from None
        return value

    @model_validator(mode="after")
    def _start_exists(self) -> TimeGrid:
        # The local start must exist once: not in a daylight-saving gap, not in a repeated hour.
        self.start_datetime()
        return self

    def start_datetime(self) -> _dt.datetime:
        """The start of step 0: ``start_date`` at ``start_hour`` local time in ``time_zone`` (tz-aware).

        Raises
        ------
        ValueError
            The local time does not exist (skipped by a daylight-saving change) or exists twice (repeated).
        """
        zone = zoneinfo.ZoneInfo(self.time_zone)
        naive = _dt.datetime.fromisoformat(self.start_date) + _dt.timedelta(hours=self.start_hour)
        first, second = naive.replace(tzinfo=zone, fold=0), naive.replace(tzinfo=zone, fold=1)
        skipped = first.astimezone(_dt.UTC).astimezone(zone).replace(tzinfo=None) != naive
        if skipped or first.utcoffset() != second.utcoffset():
            raise ValueError(
                f"start_date {self.start_date} at start_hour {self.start_hour:g} h "
                f"{'does not exist' if skipped else 'exists twice'} in {self.time_zone} (daylight-saving change); "
                "pick another start"
            )
        return first

    def index(self) -> pd.DatetimeIndex:
        """The start of every step as a tz-aware :class:`pandas.DatetimeIndex` named ``time`` (``n_steps``
        entries ``dt_s`` apart in absolute time, in ``time_zone``, with its frequency set)."""
        import pandas as pd

        return pd.date_range(
            start=pd.Timestamp(self.start_datetime()).tz_convert(self.time_zone),
            periods=self.n_steps,
            freq=pd.Timedelta(seconds=self.dt_s),
            name="time",
        )

    @property
    def dt_h(self) -> float:
        """Time step [h]."""
        return self.dt_s / 3600.0

    @property
    def horizon_h(self) -> float:
        """Length of the horizon [h]."""
        return self.dt_s * self.n_steps / 3600.0

    def step_at(self, hour: float, name: str = "hour") -> int:
        """The step that starts at (or just before) the local clock time ``hour`` [h].

        The one clock-to-step conversion of the package: a clock time outside the horizon is a ScenarioError
        naming ``name`` (never clamped). The horizon may span midnight: 02:00 after a noon start is step
        ``14 h / dt_h``.
        """
        if not math.isfinite(hour) or not 0.0 <= hour < 24.0:
            raise ScenarioError(f"{name} = {hour!r}: must be a clock time in [0, 24) h")
        offset_h = (hour - self.start_hour) % 24.0
        step = math.floor(offset_h / self.dt_h + 1e-9)
        if step >= self.n_steps:
            raise ScenarioError(
                f"{name} = {hour:g} h lies outside the horizon "
                f"(starts {self.start_hour:g} h, lasts {self.horizon_h:g} h)"
            )
        return step

    def clock_label(self, step: int) -> str:
        """Local clock time at the start of ``step`` as ``HH:MM`` (``+1d`` once the horizon passes midnight)."""
        minutes = round((self.start_hour * 3600.0 + step * self.dt_s) / 60.0)
        day, rem = divmod(minutes, 24 * 60)
        label = f"{rem // 60:02d}:{rem % 60:02d}"
        return label if day == 0 else f"{label} +{day}d"


class FleetSpec(_Model):
    """The EV fleet: how it is synthesised (or read from real sessions) and its technical parameters."""

    source: Literal["synthetic", "acn", "csv"] = Field(
        "synthetic",
        description="'synthetic': seeded generator (residential + workplace); 'acn': real ACN-Data sessions "
        "of one day (needs the optional extra v2gtwin[acn]); 'csv': your own sessions from sessions_csv.",
    )
    sessions_csv: str | None = Field(
        None,
        min_length=1,
        description="Charging sessions for source='csv': a CSV file, one row per session (docs/data_in.md); "
        "relative to the scenario file.",
    )
    n_evs: int = Field(1000, ge=1, le=10_000_000, description="Number of EVs (synthetic source) [-].")
    residential_share: float = Field(
        0.7, ge=0.0, le=1.0, description="Share of EVs charging at home overnight; the rest at work [-]."
    )
    v2g_share: float = Field(
        1.0, ge=0.0, le=1.0, description="Share of EVs able to discharge (bidirectional charger) [-]."
    )
    battery_capacity_kwh: tuple[float, ...] = Field(
        (40.0, 60.0, 75.0, 100.0),
        min_length=1,
        max_length=32,
        description="Usable battery capacities of the fleet's vehicle classes [kWh].",
    )
    battery_share: tuple[float, ...] = Field(
        (0.2, 0.35, 0.3, 0.15),
        min_length=1,
        max_length=32,
        description="Share of each battery class; same length as battery_capacity_kwh, sums to 1 [-].",
    )
    p_charge_home_kw: float = Field(7.2, gt=0.0, le=1000.0, description="Home charger power [kW].")
    p_charge_work_kw: float = Field(6.6, gt=0.0, le=1000.0, description="Workplace charger power [kW].")
    eta_charge: float = Field(0.95, gt=0.0, le=1.0, description="Grid-to-battery efficiency [-].")
    eta_discharge: float = Field(0.95, gt=0.0, le=1.0, description="Battery-to-grid efficiency [-].")
    soc_min_pu: float = Field(
        0.2, ge=0.0, le=1.0, description="Minimum (mobility) SoC below which V2G may not discharge [pu]."
    )
    soc_target_pu: float = Field(0.8, ge=0.0, le=1.0, description="SoC wanted at departure [pu].")
    soc_max_pu: float = Field(1.0, gt=0.0, le=1.0, description="Maximum SoC [pu].")
    daily_distance_mean_km: float = Field(
        48.3, gt=0.0, le=1000.0, description="Mean daily distance of home-charging EVs [km]."
    )
    consumption_kwh_per_km: float = Field(0.19, gt=0.0, le=2.0, description="Energy use per distance driven [kWh/km].")
    acn_site: Literal["caltech", "jpl", "both"] = Field("jpl", description="ACN-Data site for source='acn'.")
    acn_date: str = Field(
        "2019-07-09",
        pattern=r"^\d{4}-\d{2}-\d{2}$",
        description="Day (YYYY-MM-DD, local time) of the ACN-Data sessions for source='acn'.",
    )

    @field_validator("sessions_csv")
    @classmethod
    def _sessions_file(cls, value: str | None, info: ValidationInfo) -> str | None:
        return resolve_input_file(value, (info.context or {}).get("base_dir"), "sessions CSV")

    @model_validator(mode="after")
    def _check_consistency(self) -> FleetSpec:
        if (self.source == "csv") != (self.sessions_csv is not None):
            raise ValueError("source = 'csv' and sessions_csv go together: set both (or neither)")
        if len(self.battery_capacity_kwh) != len(self.battery_share):
            raise ValueError(
                f"battery_share has {len(self.battery_share)} entries but battery_capacity_kwh has "
                f"{len(self.battery_capacity_kwh)}; they must have the same length"
            )
        if any(c <= 0 for c in self.battery_capacity_kwh):
            raise ValueError("battery_capacity_kwh entries must be > 0")
        if any(s < 0 for s in self.battery_share) or not math.isclose(sum(self.battery_share), 1.0, abs_tol=1e-6):
            raise ValueError(f"battery_share entries must be >= 0 and sum to 1 (got {sum(self.battery_share)})")
        if not self.soc_min_pu <= self.soc_target_pu <= self.soc_max_pu:
            raise ValueError(
                "SoC limits must satisfy soc_min_pu <= soc_target_pu <= soc_max_pu "
                f"(got {self.soc_min_pu} / {self.soc_target_pu} / {self.soc_max_pu})"
            )
        return self


#: Number of buses of each built-in feeder (bus 0 is the source / slack bus); None: set by the scenario.
FEEDER_N_BUS: dict[str, int | None] = {"ieee33": 33, "synthetic": None}


class FeederSpec(_Model):
    """The distribution feeder the fleet is connected to, and the limits its studies use."""

    name: Literal["ieee33", "synthetic"] = Field(
        "ieee33",
        description="'ieee33': Baran & Wu's 33-bus 12.66 kV radial feeder (1989); 'synthetic': a seeded random "
        "radial feeder of synthetic_n_bus buses.",
    )
    synthetic_n_bus: int = Field(
        200, ge=2, le=200_000, description="Buses of the synthetic feeder (name='synthetic') [-]."
    )
    fleet_share: float = Field(
        1.0,
        gt=0.0,
        le=1.0,
        description="Share of the fleet charging on this feeder [-]: a large fleet studied for bulk services can "
        "put a representative part of itself on one feeder (a seeded sample of its EVs).",
    )
    peak_load_scale: float = Field(
        0.5,
        ge=0.0,
        le=3.0,
        description="Base-load peak of the day as a multiple of the feeder's nominal loads [-]; the daily "
        "shape is the IEEE RTS-79 winter-weekday profile.",
    )
    ampacity_a: float | None = Field(
        None, gt=0.0, le=1e5, description="One current rating for every branch [A]; omit for none."
    )
    v_min_pu: float = Field(
        0.95, gt=0.5, lt=1.0, description="Lowest allowed voltage for hosting capacity [pu] (ANSI C84.1 A)."
    )
    v_max_pu: float = Field(
        1.05,
        gt=1.0,
        lt=1.5,
        description="Highest allowed voltage for V2G export hosting and operating envelopes [pu] (ANSI C84.1 A); "
        "above v_min_pu by its range.",
    )
    voltvar_curve: Literal["none", "A", "B"] = Field(
        "B", description="IEEE 1547-2018 default volt-var curve on the EV inverters: 'A', 'B' or 'none'."
    )
    voltvar_priority: Literal["var", "watt"] = Field(
        "var", description="Inverter priority when P^2 + Q^2 exceeds the rating: 'var' curtails P."
    )
    s_over_p: float = Field(
        1.2, ge=1.0, le=3.0, description="Inverter apparent-power rating per kW of charger power [kVA/kW]."
    )
    base_load_csv: str | None = Field(
        None,
        min_length=1,
        description="The feeder's total base load per step from a CSV file (columns time, p_kw; docs/data_in.md), "
        "spread over the buses by their nominal loads; replaces the RTS-79 shape x peak_load_scale. Relative to "
        "the scenario file; not with [network] (whose feeders have their own profiles).",
    )

    @field_validator("base_load_csv")
    @classmethod
    def _base_load_file(cls, value: str | None, info: ValidationInfo) -> str | None:
        return resolve_input_file(value, (info.context or {}).get("base_dir"), "base load CSV")

    @property
    def n_bus(self) -> int:
        """Number of buses of the feeder [-]."""
        fixed = FEEDER_N_BUS[self.name]
        return self.synthetic_n_bus if fixed is None else fixed


#: The EVs' frequency-droop defaults: IEEE 1547-2018's, from the package's one table (:mod:`v2gtwin.ieee1547`).
_DROOP_DEFAULTS = read_ieee1547().defaults("freq_droop", "III")


class FrequencySpec(_Model):
    """Bulk-grid services: the system the fleet serves and the events studied."""

    f_nom_hz: float = Field(60.0, ge=50.0, le=60.0, description="Nominal frequency: 50 or 60 [Hz].")
    system_mw: float = Field(100.0, gt=0.0, le=1e6, description="Rating of the (single-area) system [MW].")
    h_s: float = Field(5.0, gt=0.0, le=30.0, description="Inertia constant of the system [s].")
    load_damping_pu: float = Field(
        1.0, ge=0.0, le=10.0, description="Load damping D: % load change per % frequency change [-]."
    )
    gen_mw: float = Field(100.0, ge=0.0, le=1e6, description="Governor-controlled generation [MW].")
    r_pu: float = Field(0.05, gt=0.0, le=1.0, description="Governor droop R [pu].")
    t_gov_s: float = Field(0.2, gt=0.0, le=30.0, description="Governor time constant [s].")
    t_turb_s: float = Field(0.3, gt=0.0, le=30.0, description="Turbine time constant [s].")
    step_mw: float = Field(5.0, gt=-1e5, lt=1e5, description="Load step of the primary-response event [MW].")
    event_hour: float = Field(20.0, ge=0.0, lt=24.0, description="Clock time of the frequency events [h].")
    ev_deadband_hz: float = Field(
        _DROOP_DEFAULTS["db_uf_hz"],
        ge=0.0,
        le=1.0,
        description="EV frequency-droop deadband (IEEE 1547-2018 default 0.036) [Hz].",
    )
    ev_droop_pu: float = Field(
        _DROOP_DEFAULTS["k_uf_pu"], gt=0.0, le=1.0, description="EV frequency droop (IEEE 1547 default 5 %) [pu]."
    )
    ev_t_response_min_s: float = Field(0.2, gt=0.0, le=60.0, description="Fastest EV response time constant [s].")
    ev_t_response_max_s: float = Field(1.0, gt=0.0, le=60.0, description="Slowest EV response time constant [s].")
    agc_area_mw: float = Field(1000.0, gt=0.0, le=1e6, description="Rating of each of the two AGC areas [MW].")
    agc_step_mw: float = Field(20.0, gt=-1e5, lt=1e5, description="Load step in area 1 for the AGC study [MW].")
    agc_ramp_pct_per_min: float = Field(
        2.0, gt=0.0, le=100.0, description="Ramp limit of conventional AGC units [% of rating per minute]."
    )
    agc_k_i_per_s: float = Field(0.05, ge=0.0, le=10.0, description="Integral gain of the AGC [1/s].")
    reg_capacity_share: float = Field(
        0.5, gt=0.0, le=1.0, description="Regulation capacity bid as a share of the fleet's symmetric headroom [-]."
    )
    reg_minutes: float = Field(60.0, ge=10.0, le=1440.0, description="Length of the regulation run [min].")
    reserve_lead_min: float = Field(10.0, ge=0.0, le=120.0, description="Reserve delivery lead time [min].")
    reserve_duration_min: float = Field(30.0, gt=0.0, le=480.0, description="Reserve sustain duration [min].")
    dr_notify_hour: float = Field(16.0, ge=0.0, lt=24.0, description="Demand-response notification time [h].")
    dr_start_hour: float = Field(17.0, ge=0.0, lt=24.0, description="Demand-response event start [h].")
    dr_end_hour: float = Field(19.0, ge=0.0, lt=24.0, description="Demand-response event end [h].")
    dr_allow_discharge: bool = Field(True, description="Let V2G EVs discharge during the event.")
    cascade_loss_mw: float = Field(12.0, gt=0.0, le=1e5, description="Generation lost in the cascade event [MW].")
    cascade_h_s: float = Field(
        3.0, gt=0.0, le=30.0, description="Inertia of the low-inertia system for the cascade [s]."
    )
    cascade_gen_mw: float = Field(
        60.0, ge=0.0, le=1e6, description="Governor-controlled generation in the cascade [MW]."
    )
    pv_legacy_mw: float = Field(8.0, ge=0.0, le=1e5, description="Legacy DER (59.3 Hz / 0.16 s) PV output [MW].")
    pv_1547_mw: float = Field(8.0, ge=0.0, le=1e5, description="IEEE 1547-2018 PV output [MW].")
    cascade_v2g_share: float = Field(
        0.5, ge=0.0, le=1.0, description="Share of the plugged V2G EVs discharging at full power at the cascade [-]."
    )
    v2g_legacy_share: float = Field(
        0.5, ge=0.0, le=1.0, description="Share of discharging V2G EVs on legacy trip settings [-]."
    )
    ramp_pct_per_s: float = Field(
        10.0, gt=0.0, le=1000.0, description="Staggered ramp-down rate of tripping DERs [% of output per second]."
    )
    random_delay_max_s: float = Field(2.0, ge=0.16, le=60.0, description="Longest randomised trip delay [s].")

    @model_validator(mode="after")
    def _check(self) -> FrequencySpec:
        if self.f_nom_hz not in (50.0, 60.0):
            raise ValueError(f"f_nom_hz must be 50 or 60, got {self.f_nom_hz}")
        if self.ev_t_response_min_s > self.ev_t_response_max_s:
            raise ValueError("ev_t_response_min_s must not exceed ev_t_response_max_s")
        # The DR clock hours are ordered in STEP order by Scenario._check_clock_times (an event may span
        # midnight: 22:00 notice, 23:00 start, 01:00 end).
        return self


#: Processor presets of the TLS handshake model (v2gtwin.cyber.handshake_profiles.CPU_PRESETS).
CpuPresetName = Literal["host", "cortex-a53", "cortex-a7", "cortex-m7", "cortex-m4"]


class CyberSpec(_Model):
    """The control path: the study's short dispatch run through the OCPP central system."""

    n_stations: int = Field(
        50,
        ge=0,
        le=2000,
        description="Simulated charging stations (the fleet's first EVs) dispatched in the study; 0 skips it [-].",
    )
    path: Literal["lte", "nbiot", "wired"] = Field(
        "lte", description="Default command path: central system -> (LTE | NB-IoT | wired internet) -> charger -> EV."
    )
    retry_timeout_s: float = Field(
        1.0, gt=0.0, le=3600.0, description="Time a command waits for its acknowledgement before a retry [s]."
    )
    retry_max_attempts: int = Field(
        3, ge=1, le=100, description="Attempts of a command at most, the first included [-]."
    )
    deadline_miss_max: float = Field(
        0.01, ge=0.0, le=1.0, description="A service is flagged when the path misses its deadline more often [-]."
    )
    iso15118_loop: Literal["dc-2", "ac-2", "dc-20", "ac-20"] = Field(
        "dc-2",
        description="Charge loop of the default ISO 15118 segment: dc-2 (ISO 15118-2 CurrentDemandReq, 0.25 s), "
        "ac-2 (ChargingStatusReq, 2 s), dc-20 / ac-20 (ISO 15118-20 charge loop, 0.5 s).",
    )
    cpu_ev: float | CpuPresetName = Field(
        "cortex-a7", description="EV's TLS processor: time there / time here [-] (> 0) or a preset (docs/cyber.md)."
    )
    cpu_charger: float | CpuPresetName = Field(
        "cortex-a53", description="Charger's TLS processor: factor [-] (> 0) or a preset (docs/cyber.md)."
    )
    cpu_csms: float | CpuPresetName = Field(
        "host", description="Central system's TLS processor: factor [-] (> 0) or a preset (docs/cyber.md)."
    )
    measure_ocpp_exchanges: int = Field(
        15,
        ge=0,
        le=200,
        description="Real OCPP round trips measured per delay in the study's cyber_path step; 0 skips it [-].",
    )
    iso15118_measurement: str | None = Field(
        None,
        min_length=1,
        description="JSON file written by `v2gtwin cyber iso15118 --measure --json`; its measured segment "
        "replaces the default ISO 15118 segment (None: the documented default).",
    )

    @model_validator(mode="after")
    def _cpu_factors_positive(self) -> CyberSpec:
        for name in ("cpu_ev", "cpu_charger", "cpu_csms"):
            v = getattr(self, name)
            if not isinstance(v, str) and not (math.isfinite(v) and v > 0.0):
                raise ValueError(f"cyber.{name} must be a finite number > 0 or a preset name (got {v})")
        return self


class Scenario(_Model):
    """One whole study."""

    name: str = Field("default", min_length=1, max_length=200, description="Name shown in the report.")
    seed: int = Field(20261125, ge=0, le=2**63 - 1, description="Seed of every random draw [-].")
    currency: str = Field(
        "USD",
        pattern=r"^[A-Z]{3}$",
        description="Currency of every money amount and price: a three-letter upper-case ISO 4217 code (USD, EUR).",
    )
    time: TimeGrid = Field(default_factory=TimeGrid)
    fleet: FleetSpec = Field(default_factory=FleetSpec)
    feeder: FeederSpec = Field(default_factory=FeederSpec)
    frequency: FrequencySpec = Field(default_factory=FrequencySpec)
    markets: MarketsSpec = Field(default_factory=MarketsSpec)
    cyber: CyberSpec = Field(default_factory=CyberSpec)
    protection: ProtectionSpec = Field(default_factory=ProtectionSpec)
    resilience: ResilienceSpec = Field(default_factory=ResilienceSpec)
    battery: BatterySpec = Field(default_factory=BatterySpec)
    compliance: ComplianceSpec = Field(default_factory=ComplianceSpec)
    network: NetworkSpec | None = Field(
        None,
        description="The fleet on a network of feeders; unset: the whole fleet on the one [feeder] (whose "
        "detail studies run on the network's first feeder when the network is set).",
    )

    @model_validator(mode="after")
    def _check_clock_times(self) -> Scenario:
        """Every clock time a run turns into a step lies in the horizon, and the demand-response event is
        ordered notice <= start < end in step (horizon) order, so an event may span midnight.

        ``markets.tou_peak_*_hour`` are not checked here: they mark hours of the market's own 24-hour clock
        day, not steps of the horizon.
        """
        steps: dict[str, int] = {}
        problems: list[str] = []
        for name in CLOCK_FIELDS:
            section, key = name.split(".")
            try:
                steps[name] = self.time.step_at(getattr(getattr(self, section), key), name)
            except ScenarioError as exc:
                problems.append(str(exc))
        if problems:  # every field outside the horizon, on one line
            raise ValueError("; ".join(problems))
        f = self.frequency
        notify, start, end = (steps[f"frequency.dr_{k}_hour"] for k in ("notify", "start", "end"))
        if not notify <= start < end:
            raise ValueError(
                "frequency.dr_notify_hour, dr_start_hour, dr_end_hour: need notice <= start < end in horizon "
                f"order; got {f.dr_notify_hour:g} h, {f.dr_start_hour:g} h, {f.dr_end_hour:g} h = steps "
                f"{notify}, {start}, {end} of a horizon starting {self.time.start_hour:g} h"
            )
        self._check_input_files()
        rs = self.resilience
        end_h = (rs.outage_start_hour - self.time.start_hour) % 24.0 + rs.outage_duration_h
        if end_h > self.time.horizon_h + 1e-9:
            raise ValueError(
                f"resilience.outage_start_hour, outage_duration_h: the outage ({rs.outage_start_hour:g} h for "
                f"{rs.outage_duration_h:g} h) ends {end_h:g} h after the horizon's start, past its end "
                f"({self.time.horizon_h:g} h)"
            )
        return self

    def _check_input_files(self) -> None:
        """The CSV files the scenario names are read once here against its time grid, so a bad file is an error
        when the scenario is loaded (one line naming file, line and column), not in the middle of a study."""
        from v2gtwin import data_in

        if self.feeder.base_load_csv is not None:
            if self.network is not None:
                raise ValueError(
                    "feeder.base_load_csv: not used with [network] (each feeder of the network has its own "
                    "profile); remove one of them"
                )
            data_in.read_base_load_csv(self.feeder.base_load_csv, self.time)
        if self.markets.price_csv is not None:
            data_in.read_price_csv(self.markets.price_csv, self.time)
        if self.fleet.sessions_csv is not None:
            import numpy as np

            data_in.read_sessions_csv(
                self.fleet.sessions_csv, self.fleet, self.time, self.feeder.n_bus, np.random.default_rng(0)
            )

    def replace(self, **changes: Any) -> Scenario:
        """A new scenario with ``changes``, validated like a scenario file: the one way to derive a scenario in
        Python.

        A section given as a dict is merged key by key into the current section (``fleet={"n_evs": 10_000}``
        changes ``n_evs`` and keeps the rest of ``[fleet]``); any other value replaces the key (``seed=7``,
        ``network=None``). Relative file paths in ``changes`` are taken relative to the working directory.

        Raises
        ------
        ScenarioError
            An unknown key or a value out of range, on one line naming the field and the allowed range, e.g.
            ``Scenario.replace: fleet.n_evs: Input should be greater than or equal to 1; got 0; allowed range:
            >= 1``.

        Examples
        --------
        >>> from v2gtwin.scenario import DEFAULT_SCENARIO
        >>> DEFAULT_SCENARIO.replace(fleet={"n_evs": 10_000}).fleet.n_evs
        10000
        """
        data = self.model_dump(mode="json")
        for key, value in changes.items():
            current = data.get(key)
            if isinstance(value, dict) and isinstance(current, dict):
                data[key] = current | value
            else:
                data[key] = value
        return parse_scenario(data, source="Scenario.replace")

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Scenario:
        """A copy; with ``update``, derived and validated through :meth:`replace` (pydantic's own
        ``model_copy(update=...)`` skips validation and would leave e.g. ``fleet`` a dict)."""
        if update:
            return self.replace(**dict(update))
        return super().model_copy(deep=deep)


#: Clock-time fields [h] that a run converts to a step of the horizon (``TimeGrid.step_at``).
CLOCK_FIELDS: tuple[str, ...] = (
    "frequency.event_hour",
    "frequency.dr_notify_hour",
    "frequency.dr_start_hour",
    "frequency.dr_end_hour",
    "markets.v2g_offer_hour",
    "resilience.outage_start_hour",
)


#: The built-in default scenario (``v2gtwin scenario show`` prints it as TOML): the 1,000 EVs spread by load
#: share over four feeders (Baran & Wu's 33-bus and three seeded synthetic 60-bus feeders of 4 MW), about 250
#: EVs per feeder. A scenario file without a [network] section keeps the whole fleet on the one [feeder].
DEFAULT_SCENARIO = Scenario(
    network=NetworkSpec(
        feeders=(
            NetworkFeederSpec(source="ieee33"),
            NetworkFeederSpec(source="synthetic", count=3, n_bus=60, total_load_kw=4000.0, v_min_base_pu=0.95),
        )
    )
)


def _bounds_of(fi: FieldInfo) -> str:
    parts = []
    for m in fi.metadata:
        for attr, sym in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            val = getattr(m, attr, None)
            if val is not None:
                parts.append(f"{sym} {val}")
    return " and ".join(parts)


def _field_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> FieldInfo | None:
    current: Any = model
    fi: FieldInfo | None = None
    for key in loc:
        if isinstance(key, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return fi
        fi = current.model_fields.get(key)
        if fi is None:
            return None
        current = fi.annotation
    return fi


def _allowed_keys(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    parent = _field_at(model, loc[:-1]) if len(loc) > 1 else None
    target: Any = parent.annotation if parent is not None else model
    if isinstance(target, type) and issubclass(target, BaseModel):
        return sorted(target.model_fields)
    return []


def format_validation_error(exc: ValidationError, source: str) -> str:
    """Turn a pydantic ``ValidationError`` on a :class:`Scenario` into one line.

    The line names the source, the field path, the problem, the bad value and the allowed range or keys.
    """
    errors = exc.errors()
    # An error on a container that another error sits inside is its consequence (a list whose bad entry was
    # dropped is then "too short"): only the cause is reported, and only causes are counted.
    locs = [tuple(e["loc"]) for e in errors]
    errors = [
        e
        for e, loc in zip(errors, locs, strict=True)
        if not any(len(o) > len(loc) and o[: len(loc)] == loc for o in locs)
    ]
    err = errors[0]
    loc = tuple(err["loc"])
    path = ".".join(str(p) for p in loc) or "(top level)"
    kind = err["type"]
    value = err.get("input")
    if kind == "extra_forbidden":
        allowed = _allowed_keys(Scenario, loc)
        msg = f"unknown key '{loc[-1]}'" + (f"; allowed keys: {', '.join(allowed)}" if allowed else "")
    else:
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        fi = _field_at(Scenario, loc)
        bounds = _bounds_of(fi) if fi is not None else ""
        if not isinstance(value, dict):
            msg += f"; got {value!r}"
        if bounds:
            msg += f"; allowed range: {bounds}"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    if not loc:  # a check across sections names its fields in the message itself
        return f"{source}: {msg}{more}".replace("\n", " ")
    return f"{source}: {path}: {msg}{more}".replace("\n", " ")


def parse_scenario(data: dict[str, Any], source: str = "<scenario>", base_dir: str | Path | None = None) -> Scenario:
    """Validate a scenario given as a (TOML-shaped) dict; relative file paths in it (``network.feeders.path``)
    are taken relative to ``base_dir`` (default: the working directory).

    Raises
    ------
    ScenarioError
        With a one-line message naming ``source``, the field path, the bad value and the allowed range.
    """
    try:
        return Scenario.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        raise ScenarioError(format_validation_error(exc, source)) from None


def load_scenario(path: str | Path | None) -> Scenario:
    """Read and validate a scenario TOML file; ``None`` returns :data:`DEFAULT_SCENARIO`.

    Raises
    ------
    ScenarioError
        The file cannot be read, is not valid TOML, or fails validation.
    """
    if path is None:
        return DEFAULT_SCENARIO
    p = Path(path)
    return parse_scenario(read_toml_file(p, "scenario"), source=str(p), base_dir=p.parent)


def scenario_to_toml(scenario: Scenario) -> str:
    """Render a scenario as TOML text that :func:`load_scenario` reads back to an equal scenario."""
    return tomli_w.dumps(scenario.model_dump(mode="json", exclude_none=True))


def scenario_schema() -> dict[str, Any]:
    """The JSON schema of the scenario file."""
    return Scenario.model_json_schema()
