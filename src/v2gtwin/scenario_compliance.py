"""Scenario input model of the compliance step (``[compliance]``): the IEEE 1547 categories and certification the
study's own V2G inverters are audited under. Re-exported by :mod:`v2gtwin.scenario`, whose ``Scenario`` holds it;
same conventions (frozen, unknown keys are errors)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from v2gtwin._scenario_base import _Model

__all__ = ["ComplianceSpec"]


class ComplianceSpec(_Model):
    """How the study's own inverters are declared for the IEEE 1547-2018 audit (``v2gtwin study``'s compliance
    section). Their settings are the ones the simulations use: the trip table's defaults (the cascade's
    ``V2G IEEE 1547`` group), the legacy 59.3 Hz / 0.16 s trip (its ``V2G legacy`` group), the ``[frequency]``
    droop and the ``[feeder]`` volt-var curve."""

    abnormal_category: Literal["I", "II", "III"] = Field(
        "III", description="IEEE 1547-2018 abnormal operating performance category of the fleet's V2G inverters."
    )
    ul1741sb: bool = Field(True, description="The fleet's IEEE 1547-2018 V2G inverters are listed to UL 1741 SB.")
