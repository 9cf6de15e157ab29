"""Scenario input models of protection (``[protection]``: the grid's short-circuit data, the V2G aggregators, the
devices) and resilience (``[resilience]``: a critical facility through an upstream outage). Re-exported by
:mod:`v2gtwin.scenario`, whose ``Scenario`` holds them; same conventions (frozen, unknown keys are errors, units in
the names, ranges in the ``Field``)."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from v2gtwin._scenario_base import _Model

__all__ = ["AggregatorSpec", "DeviceSpec", "ProtectionSpec", "RelayCurve", "ResilienceSpec"]

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
        "envelope",
        description="Cap on V2G power into the island: 'envelope' (the default: the feeder's export operating "
        "envelope at facility_bus, lowest over the outage's steps — the limit the rest of the study sells within), "
        "'explicit' (v2g_cap_kw) or 'none' (nameplate only).",
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
