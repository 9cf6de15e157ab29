"""Scenario input model of battery health (``[battery]``: the fleet's cell chemistry and temperature, the battery's
replacement cost and end of life, and which degradation cost the schedules and markets use). Re-exported by
:mod:`v2gtwin.scenario`, whose ``Scenario`` holds it; same conventions (frozen, unknown keys are errors, units in
the names, ranges in the ``Field``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from v2gtwin._scenario_base import _Model

__all__ = ["BatterySpec"]


class BatterySpec(_Model):
    """The fleet's batteries: what ageing costs and how the twin prices it.

    ``replacement_cost_per_kwh`` defaults to BloombergNEF's 2024 battery price survey (10 December 2024): the
    volume-weighted average lithium-ion pack price across end uses fell to 115 USD/kWh (97 USD/kWh for
    battery-electric-vehicle packs). It is a pack price, without the labour of a replacement: raise it for a
    retail replacement. ``eol_fade_pu`` defaults to the usual automotive end of life, 80 % of the rated capacity
    left (the USABC end-of-life criterion for EV batteries, USABC Electric Vehicle Battery Test Procedures
    Manual).
    """

    degradation_cost: Literal["model", "flat"] = Field(
        "model",
        description="Degradation cost the schedules, the V2G offer and the bids use: 'model' (from the battery "
        "models, per EV) or 'flat' (markets.degradation_per_mwh for every EV).",
    )
    lfp_share: float = Field(
        0.3, ge=0.0, le=1.0, description="Share of the fleet's EVs with LFP cells (the rest NMC), seeded draw [-]."
    )
    temp_c: float = Field(
        25.0,
        ge=0.0,
        le=60.0,
        description="Battery temperature over the day (0-60; the cycle terms were identified at 20-40, outside that "
        "the output names the extrapolation) [degC].",
    )
    replacement_cost_per_kwh: float = Field(
        115.0,
        gt=0.0,
        le=10_000.0,
        description="Cost of replacing a battery per kWh of its capacity (BloombergNEF 2024 pack price) "
        "[currency/kWh].",
    )
    eol_fade_pu: float = Field(
        0.2, gt=0.0, lt=1.0, description="Capacity loss at which the battery is replaced (0.2: 80 % left) [-]."
    )
    v2g_probe_kwh: float = Field(
        10.0,
        gt=0.0,
        le=100.0,
        description="Extra V2G discharge a day whose ageing gives the marginal cost (an evening's V2G session) [kWh].",
    )
    years: int = Field(10, ge=1, le=30, description="Years of ageing in the study's battery section [-].")
