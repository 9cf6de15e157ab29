"""Scenario input models: frozen pydantic models, TOML loading and the built-in default scenario.

A scenario describes one whole study: the random seed, the time grid, the EV fleet and the feeder. Later
sections (markets, protection, cyber, ...) are added as further sub-models. Unknown keys are errors, every
numeric field carries its unit in its name and its allowed range in its ``Field``.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any, Literal

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.fields import FieldInfo

from v2gtwin.errors import ScenarioError
from v2gtwin.scenario_network import SYNTHETIC_FEEDER_DEFAULTS, NetworkFeederSpec, NetworkSpec

__all__ = [
    "DEFAULT_SCENARIO",
    "FEEDER_N_BUS",
    "SYNTHETIC_FEEDER_DEFAULTS",
    "FeederSpec",
    "FleetSpec",
    "FrequencySpec",
    "MarketsSpec",
    "NetworkFeederSpec",
    "NetworkSpec",
    "ProtectionSpec",
    "ResilienceSpec",
    "Scenario",
    "TimeGrid",
    "format_validation_error",
    "load_scenario",
    "parse_scenario",
    "scenario_schema",
    "scenario_to_toml",
]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


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

    source: Literal["synthetic", "acn"] = Field(
        "synthetic",
        description="'synthetic': seeded generator (residential + workplace); 'acn': real ACN-Data sessions "
        "of one day (needs the optional extra v2gtwin[acn]).",
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

    @model_validator(mode="after")
    def _check_consistency(self) -> FleetSpec:
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

    @property
    def n_bus(self) -> int:
        """Number of buses of the feeder [-]."""
        fixed = FEEDER_N_BUS[self.name]
        return self.synthetic_n_bus if fixed is None else fixed


#: Relay curves a scenario may name (the keys of ``v2gtwin.grid.protection.relays.CURVES``).
RelayCurve = Literal["iec_si", "iec_vi", "iec_ei", "iec_lti", "ieee_mi", "ieee_vi", "ieee_ei", "definite_time"]


class DeviceSpec(_Model):
    """One protective device of the feeder: where it sits and how it is set."""

    label: str = Field(min_length=1, max_length=60, description="Name shown in every output.")
    bus: str = Field(
        min_length=1,
        max_length=60,
        description="Label of the bus its branch feeds, as the feeder publishes it (Baran & Wu's 1-33 for "
        "ieee33); the device sits at the upstream end of that branch.",
    )
    kind: Literal["relay", "recloser"] = Field("relay", description="Device kind (a recloser: its delayed curve).")
    curve: RelayCurve = Field("iec_si", description="Time-current curve (IEC 60255-151, IEEE C37.112, definite time).")
    pickup_a: float = Field(gt=0.0, le=1e6, description="Pickup current [A].")
    tds: float = Field(gt=0.0, le=100.0, description="Time-dial setting [-] (definite time: the delay [s]).")


class AggregatorSpec(_Model):
    """A V2G aggregator placed by hand for the protection study (instead of the fleet's chargers)."""

    bus: str = Field(min_length=1, max_length=60, description="Label of its bus, as the feeder publishes it.")
    s_rated_kva: float = Field(gt=0.0, le=1e6, description="Rated apparent power of its inverters [kVA].")


class ProtectionSpec(_Model):
    """Fault currents and overcurrent protection of the feeder, with and without the V2G aggregators."""

    s_sc_mva: float | None = Field(
        100.0,
        gt=0.0,
        le=1e5,
        description="Short-circuit power S''k of the upstream grid at the feeder head [MVA] (IEC 60909).",
    )
    r_over_x: float = Field(0.1, ge=0.0, le=10.0, description="R/X ratio of the upstream grid's impedance [-].")
    c_factor: float = Field(
        1.1, ge=0.9, le=1.1, description="IEC 60909 voltage factor c (1.1: maximum currents at MV) [-]."
    )
    k: float = Field(
        1.5, ge=1.0, le=3.0, description="Fault current of the V2G inverters as a multiple of rated current [-]."
    )
    angle_deg: float | None = Field(
        None,
        ge=-180.0,
        le=180.0,
        description="Angle of the V2G fault current to the pre-fault voltage [deg]; omit for IEC 60909's "
        "assumption (in phase with the voltage it raises at its own bus: the largest contribution).",
    )
    combination: Literal["iec60909", "phasor"] = Field(
        "iec60909",
        description="Bus fault current: 'iec60909' adds the grid's and the V2G parts' magnitudes, 'phasor' "
        "their phasors.",
    )
    t_ride_through_s: float = Field(
        1.0, ge=0.0, le=600.0, description="How long the V2G inverters sustain their fault current [s]."
    )
    cti_margin_s: float = Field(0.3, gt=0.0, le=2.0, description="Smallest acceptable coordination interval [s].")
    t_max_s: float = Field(
        2.0,
        gt=0.0,
        le=600.0,
        description="Slowest acceptable operating time in a device's reach; slower is blinding [s].",
    )
    pickup_margin: float = Field(
        1.5, ge=1.0, le=5.0, description="Pickup as a multiple of the largest load current (default scheme) [-]."
    )
    v2g_share: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description="Share of the feeder's V2G chargers (all plugged in: the worst case) feeding a fault [-].",
    )
    scale_max: float = Field(
        20.0, gt=0.0, le=1000.0, description="Largest fleet-size factor searched for the first failure [-]."
    )
    aggregators: tuple[AggregatorSpec, ...] = Field(
        (),
        max_length=10_000,
        description="V2G aggregators by bus; empty: one per bus holding the fleet's V2G chargers (their discharge "
        "power x feeder.s_over_p x v2g_share).",
    )
    devices: tuple[DeviceSpec, ...] = Field(
        (),
        max_length=10_000,
        description="Protective devices; empty: the default scheme (a feeder-head relay and one at each lateral "
        "head, pickups from the load, time dials coordinated without V2G).",
    )


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
        0.036, ge=0.0, le=1.0, description="EV frequency-droop deadband (IEEE 1547-2018 default 0.036) [Hz]."
    )
    ev_droop_pu: float = Field(0.05, gt=0.0, le=1.0, description="EV frequency droop (IEEE 1547 default 5 %) [pu].")
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


class MarketsSpec(_Model):
    """Markets and scheduling: the day's prices, the TOU/RTP market, the aggregator's pricing and bids."""

    price_base_per_mwh: float = Field(40.0, ge=-500.0, le=10_000.0, description="Off-peak energy price [currency/MWh].")
    price_peak_per_mwh: float = Field(120.0, ge=-500.0, le=10_000.0, description="Peak energy price [currency/MWh].")
    peak_demand_mw: float = Field(100.0, gt=0.0, le=1e6, description="Peak demand of the market's day [MW].")
    demand_kind: Literal["linear", "constant_elasticity"] = Field("linear", description="Demand curve form.")
    elasticity: float = Field(
        -0.2, gt=-5.0, lt=0.0, description="Price elasticity of demand at the reference point [-]."
    )
    p_ref_per_mwh: float = Field(
        60.0, gt=0.0, le=10_000.0, description="Reference price of the demand curves [currency/MWh]."
    )
    gen_capacity_mw: tuple[float, ...] = Field(
        (60.0, 30.0, 25.0), min_length=1, max_length=50, description="Generator capacities in merit order [MW]."
    )
    gen_cost_per_mwh: tuple[float, ...] = Field(
        (20.0, 50.0, 120.0), min_length=1, max_length=50, description="Generator marginal costs [currency/MWh]."
    )
    v2g_share: float = Field(
        0.5, ge=0.0, le=1.0, description="Share of the fleet's evening discharge capacity offered to the market [-]."
    )
    v2g_energy_share: float = Field(
        0.3, ge=0.0, le=1.0, description="Share of the fleet's energy above its targets offered over the day [-]."
    )
    v2g_offer_hour: float = Field(
        18.0,
        ge=0.0,
        lt=24.0,
        description="Clock time at which the EVs plugged in make the fleet's V2G power offer; must lie in the "
        "horizon [h].",
    )
    degradation_per_mwh: float = Field(
        30.0,
        ge=0.0,
        le=10_000.0,
        description="Battery degradation cost per MWh discharged (placeholder) [currency/MWh].",
    )
    tou_peak_start_hour: int = Field(16, ge=0, le=23, description="Start of the TOU peak block [h].")
    tou_peak_end_hour: int = Field(21, ge=1, le=24, description="End of the TOU peak block [h].")
    charging_cost_per_kwh: float = Field(0.10, ge=0.0, le=10.0, description="Aggregator's energy cost [currency/kWh].")
    x_cap_share: float = Field(
        0.8, gt=0.0, le=1.0, description="Aggregator's energy limit as a share of the EVs' unconstrained demand [-]."
    )
    discharge_value_per_kwh: float = Field(
        0.20,
        gt=0.0,
        le=10.0,
        description="Value to the aggregator of V2G energy it buys back from the EVs (its resale price) "
        "[currency/kWh].",
    )
    discharge_cap_share: float = Field(
        0.8,
        gt=0.0,
        le=1.0,
        description="Aggregator's limit on V2G energy bought back, share of the EVs' offer at that value [-].",
    )
    reg_price_per_mw: float = Field(
        30.0, gt=0.0, le=1e5, description="Regulation payment per MW delivered [currency/MW-h]."
    )
    reg_penalty_per_mw: float = Field(60.0, gt=0.0, le=1e5, description="Penalty per MW of shortfall [currency/MW-h].")
    bid_days: int = Field(
        40, ge=5, le=2000, description="Seeded fleet days simulated for the empirical availability [-]."
    )
    schedule_max_evs: int = Field(
        20_000,
        ge=1,
        le=10_000_000,
        description="Largest fleet scheduled EV by EV in the study; larger fleets schedule a seeded sample of "
        "this size (about 5 s per 10,000 EVs x 96 steps) [-].",
    )
    schedule_solver: Literal["chain", "highs"] = Field(
        "chain",
        description="LP solver of the per-EV schedule: 'chain' (v2gtwin's structure-exploiting interior point; "
        "HiGHS, with a warning, when it does not converge) or 'highs' (HiGHS interior point).",
    )
    import_cap_share: float = Field(
        0.8, gt=0.0, le=10.0, description="Site import cap for the schedule, share of the uncontrolled peak [-]."
    )
    robust_sd_share: float = Field(
        0.08, ge=0.0, le=1.0, description="Standard deviation of the site's net load, share of its mean [-]."
    )
    robust_correlation: float = Field(
        0.9, ge=0.0, lt=1.0, description="Correlation of net load between adjacent steps [-]."
    )
    robust_omegas: tuple[float, ...] = Field(
        (0.0, 1.0, 2.0, 3.0),
        min_length=1,
        max_length=10,
        description="Radii of the uncertainty ellipsoid to compare [-].",
    )
    robust_memory_steps: int = Field(
        4, ge=1, le=100_000, description="Past observations the fleet's affine recourse rule may use [steps]."
    )
    robust_cap_share: float = Field(
        1.2,
        gt=0.0,
        le=10.0,
        description="Site import cap in the robust schedule, share of the mean net-load peak [-].",
    )
    robust_uncertainty: Literal["weather", "synthetic"] = Field(
        "weather",
        description="Where the net-load uncertainty comes from: 'weather' (persistence forecast errors of a "
        "temperature-driven load share and PV, estimated from a TMY3 year shipped with pvlib) or 'synthetic' "
        "(sd robust_sd_share x the load, correlation robust_correlation between adjacent steps).",
    )
    robust_violation_prob: float | None = Field(
        None,
        gt=0.0,
        lt=1.0,
        description="Violation probability to guarantee; when set, the radius comes from it (robust_radius_bound) "
        "and replaces robust_omegas (the nominal schedule is kept for comparison) [-].",
    )
    robust_radius_bound: Literal["chi2", "cantelli"] = Field(
        "cantelli",
        description="Bound from violation probability to radius: 'chi2' (Gaussian errors, any constraint of the "
        "day) or 'cantelli' (any distribution with the estimated mean and covariance, each constraint alone).",
    )
    weather_site: Literal["greensboro_nc", "sand_point_ak"] = Field(
        "greensboro_nc", description="TMY3 weather year (shipped with pvlib) of the weather uncertainty."
    )
    weather_day_of_year: int = Field(
        196, ge=2, le=364, description="Day of the weather year the schedule is for (1 = 1 January) [-]."
    )
    weather_window_days: int = Field(
        45,
        ge=1,
        le=183,
        description="Forecast errors are estimated from the pairs of days within this many days of the day [d].",
    )
    weather_hvac_share: float = Field(
        0.3, ge=0.0, le=1.0, description="Temperature-driven (heating and cooling) share of the site's load [-]."
    )
    weather_pv_share: float = Field(
        0.3, ge=0.0, le=10.0, description="PV on the site: DC rating as a share of the site's peak load [-]."
    )

    @model_validator(mode="after")
    def _check(self) -> MarketsSpec:
        if len(self.gen_capacity_mw) != len(self.gen_cost_per_mwh):
            raise ValueError("gen_capacity_mw and gen_cost_per_mwh must have the same length")
        if self.tou_peak_start_hour >= self.tou_peak_end_hour:
            raise ValueError("tou_peak_start_hour must be before tou_peak_end_hour")
        if any(o < 0 for o in self.robust_omegas):
            raise ValueError("robust_omegas must be >= 0")
        return self


class CyberSpec(_Model):
    """The control path: the study's short dispatch run through the OCPP central system."""

    n_stations: int = Field(
        50,
        ge=0,
        le=2000,
        description="Simulated charging stations (the fleet's first EVs) dispatched in the study; 0 skips it [-].",
    )


class ResilienceSpec(_Model):
    """A microgrid around a critical facility (a hospital by default) through an upstream outage, with and
    without the V2G fleet plugged in nearby (``v2gtwin resilience``; method in docs/resilience.md)."""

    facility_bus: str = Field(
        "18",
        min_length=1,
        max_length=100,
        description="Label of the feeder bus the facility connects at, as the feeder's source publishes it "
        "(Baran & Wu's 1-33 for ieee33); names the island's V2G cap when cap_source='envelope'.",
    )
    critical_peak_kw: float = Field(500.0, gt=0.0, le=1e6, description="Peak of the critical load [kW].")
    critical_shape: Literal["hospital", "flat"] = Field(
        "hospital",
        description="Daily shape of the critical load: 'hospital' (0.8 of peak at night, 1.0 08:00-18:00: an "
        "assumption for a facility that runs around the clock) or 'flat'.",
    )
    outage_start_hour: float = Field(18.0, ge=0.0, lt=24.0, description="Clock time the upstream grid is lost [h].")
    outage_duration_h: float = Field(
        4.0, gt=0.0, le=168.0, description="Length of the outage; it must end inside the horizon [h]."
    )
    gen_kw: float = Field(350.0, ge=0.0, le=1e6, description="Backup generator rating (0: none) [kW].")
    gen_start_delay_s: float = Field(
        10.0, ge=0.0, le=3600.0, description="Generator start-up until it takes load (NFPA 110 Type 10: 10 s) [s]."
    )
    gen_energy_kwh: float | None = Field(
        None, ge=0.0, le=1e8, description="Electrical energy the generator's fuel gives; omit for enough [kWh]."
    )
    pv_peak_kw: float = Field(
        0.0, ge=0.0, le=1e6, description="On-site PV peak (half-sine from 06:00 to 18:00, an assumption) [kW]."
    )
    battery_kw: float = Field(0.0, ge=0.0, le=1e6, description="Stationary battery power [kW].")
    battery_kwh: float = Field(0.0, ge=0.0, le=1e7, description="Energy the battery can deliver in the outage [kWh].")
    acceptable_level: float = Field(
        0.9, gt=0.0, le=1.0, description="Performance level Q that counts as recovered (T_r) [-]."
    )
    shed_blocks_pu: tuple[float, ...] = Field(
        (),
        max_length=20,
        description="Priority blocks of the critical load (shares in priority order, summing to 1), shed whole; "
        "empty: shed continuously [-].",
    )
    fleet_share: float = Field(
        0.05,
        ge=0.0,
        le=1.0,
        description="Share of the scenario's fleet plugged in near the facility (a seeded sample of its EVs) [-].",
    )
    v2g_floor: Literal["target", "soc_min"] = Field(
        "target",
        description="How low V2G may take an EV in the outage: 'target' (its departure target stays reachable "
        "by charging at full power once the grid is back) or 'soc_min' (down to its minimum SoC).",
    )
    v2g_delay_s: float = Field(5.0, ge=0.0, le=3600.0, description="Aggregator's communication and decision delay [s].")
    v2g_tau_s: float = Field(2.0, ge=0.0, le=3600.0, description="Time constant of the fleet's response [s].")
    v2g_ramp_kw_per_s: float | None = Field(
        None, gt=0.0, le=1e6, description="Ramp limit of the fleet's output; omit for none [kW/s]."
    )
    cap_source: Literal["none", "explicit", "envelope"] = Field(
        "none",
        description="Cap on V2G power into the island: 'none', 'explicit' (v2g_cap_kw) or 'envelope' (the "
        "feeder's export operating envelope at facility_bus, lowest over the outage's steps).",
    )
    v2g_cap_kw: float | None = Field(None, gt=0.0, le=1e6, description="The cap for cap_source='explicit' [kW].")
    dt_sim_s: float = Field(
        1.0,
        gt=0.0,
        le=60.0,
        description="Simulation step of the outage; the delays and the duration are whole numbers of it [s].",
    )
    sweep_n_evs: tuple[int, ...] = Field(
        (0, 2, 5, 10, 20, 50, 100),
        min_length=1,
        max_length=50,
        description="Fleet sizes (EVs near the facility, nested seeded samples of the fleet) for the sweep [-].",
    )

    @model_validator(mode="after")
    def _check(self) -> ResilienceSpec:
        if self.shed_blocks_pu and (
            any(b <= 0 for b in self.shed_blocks_pu) or not math.isclose(sum(self.shed_blocks_pu), 1.0, abs_tol=1e-6)
        ):
            raise ValueError(f"shed_blocks_pu entries must be > 0 and sum to 1 (got {sum(self.shed_blocks_pu)})")
        if any(n < 0 for n in self.sweep_n_evs):
            raise ValueError("sweep_n_evs entries must be >= 0")
        if self.cap_source == "explicit" and self.v2g_cap_kw is None:
            raise ValueError("cap_source = 'explicit' needs v2g_cap_kw")
        for name in ("outage_duration_h", "gen_start_delay_s", "v2g_delay_s"):
            value_s = getattr(self, name) * (3600.0 if name.endswith("_h") else 1.0)
            k = value_s / self.dt_sim_s
            if abs(k - round(k)) > 1e-6:
                raise ValueError(f"{name} must be a whole number of dt_sim_s = {self.dt_sim_s:g} s (got {value_s:g} s)")
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
        rs = self.resilience
        end_h = (rs.outage_start_hour - self.time.start_hour) % 24.0 + rs.outage_duration_h
        if end_h > self.time.horizon_h + 1e-9:
            raise ValueError(
                f"resilience.outage_start_hour, outage_duration_h: the outage ({rs.outage_start_hour:g} h for "
                f"{rs.outage_duration_h:g} h) ends {end_h:g} h after the horizon's start, past its end "
                f"({self.time.horizon_h:g} h)"
            )
        return self


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
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(f"{p}: no such scenario file") from None
    except IsADirectoryError:
        raise ScenarioError(f"{p}: is a directory, expected a scenario TOML file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{p}: cannot read scenario file ({exc.__class__.__name__}: {exc})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{p}: not valid TOML: {exc}") from None
    return parse_scenario(data, source=str(p), base_dir=p.parent)


def scenario_to_toml(scenario: Scenario) -> str:
    """Render a scenario as TOML text that :func:`load_scenario` reads back to an equal scenario."""
    return tomli_w.dumps(scenario.model_dump(mode="json", exclude_none=True))


def scenario_schema() -> dict[str, Any]:
    """The JSON schema of the scenario file."""
    return Scenario.model_json_schema()
