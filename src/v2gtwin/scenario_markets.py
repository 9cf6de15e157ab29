"""Scenario input model of the markets and schedules (``[markets]``). Re-exported by :mod:`v2gtwin.scenario`,
whose ``Scenario`` holds it; same conventions (frozen, unknown keys are errors, units in the names, ranges in the
``Field``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from v2gtwin._scenario_base import _Model, resolve_input_file

__all__ = ["MarketsSpec"]


class MarketsSpec(_Model):
    """Markets and scheduling: the day's prices, the TOU/RTP market, the aggregator's pricing and bids."""

    price_base_per_mwh: float = Field(40.0, ge=-500.0, le=10_000.0, description="Off-peak energy price [currency/MWh].")
    price_peak_per_mwh: float = Field(120.0, ge=-500.0, le=10_000.0, description="Peak energy price [currency/MWh].")
    price_csv: str | None = Field(
        None,
        min_length=1,
        description="Energy price per step from a CSV file (columns time, price_per_mwh in the scenario's currency; "
        "docs/data_in.md); replaces the synthetic curve of price_base_per_mwh / price_peak_per_mwh. Relative to "
        "the scenario file.",
    )
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

    @field_validator("price_csv")
    @classmethod
    def _price_file(cls, value: str | None, info: ValidationInfo) -> str | None:
        return resolve_input_file(value, (info.context or {}).get("base_dir"), "price CSV")

    @model_validator(mode="after")
    def _check(self) -> MarketsSpec:
        if len(self.gen_capacity_mw) != len(self.gen_cost_per_mwh):
            raise ValueError("gen_capacity_mw and gen_cost_per_mwh must have the same length")
        if self.tou_peak_start_hour >= self.tou_peak_end_hour:
            raise ValueError("tou_peak_start_hour must be before tou_peak_end_hour")
        if any(o < 0 for o in self.robust_omegas):
            raise ValueError("robust_omegas must be >= 0")
        return self
