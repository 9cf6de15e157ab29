"""Scenario input models of the network of feeders (``[network]``, ``[[network.feeders]]``): the fleet on N
feeders. Re-exported by :mod:`v2gtwin.scenario`, whose ``Scenario`` holds them; same conventions (frozen, unknown
keys are errors, units in the names, ranges in the ``Field``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from v2gtwin._scenario_base import _Model

__all__ = ["SYNTHETIC_FEEDER_DEFAULTS", "NetworkFeederSpec", "NetworkSpec"]


#: Defaults of a synthetic network feeder's keys left unset: buses [-], nominal load [kW], strength [pu].
SYNTHETIC_FEEDER_DEFAULTS: dict[str, float] = {"n_bus": 60, "total_load_kw": 4000.0, "v_min_base_pu": 0.95}


class NetworkFeederSpec(_Model):
    """One kind of feeder of the network (``[[network.feeders]]``): ``count`` feeders built alike (synthetic
    ones each with its own seeded topology), each with its own seeded variation of the daily base load."""

    source: Literal["ieee33", "synthetic", "file"] = Field(
        description="'ieee33': Baran & Wu's 33-bus 12.66 kV feeder; 'synthetic': a seeded random radial feeder "
        "(n_bus, total_load_kw, v_min_base_pu); 'file': a MATPOWER (.m) or OpenDSS (.dss) model at path."
    )
    count: int = Field(1, ge=1, le=1000, description="How many feeders of this kind [-].")
    name: str | None = Field(
        None, min_length=1, max_length=100, description="Name of the feeders (numbered when count > 1)."
    )
    n_bus: int | None = Field(
        None, ge=2, le=5000, description="Buses of a synthetic feeder, source bus included (default 60) [-]."
    )
    total_load_kw: float | None = Field(
        None, gt=0.0, le=1e6, description="Nominal load of a synthetic feeder, sum over its buses (default 4000) [kW]."
    )
    v_min_base_pu: float | None = Field(
        None,
        gt=0.5,
        lt=1.0,
        description="Strength of a synthetic feeder: its impedances are scaled so that the lowest voltage "
        "under the nominal load (LinDistFlow) is this value; lower = weaker feeder (default 0.95) [pu].",
    )
    path: str | None = Field(
        None,
        min_length=1,
        description="MATPOWER (.m) or OpenDSS (.dss) file (source='file'), relative to the scenario file.",
    )
    peak_load_scale: float = Field(
        0.5, ge=0.0, le=3.0, description="Base-load peak of the day as a multiple of the nominal loads [-]."
    )
    peak_scale_spread: float = Field(
        0.1,
        ge=0.0,
        lt=1.0,
        description="Seeded per-feeder variation of peak_load_scale: each feeder's is multiplied by a uniform "
        "draw in [1 - spread, 1 + spread] [-].",
    )
    shift_max_h: float = Field(
        0.5,
        ge=0.0,
        le=6.0,
        description="Seeded per-feeder shift of the daily shape: a uniform draw in [-shift, +shift] [h].",
    )
    profile: Literal["residential", "commercial", "mixed", "rts79"] = Field(
        "residential",
        description="Daily base-load shape: BDEW H25 household or G25 commercial January working day, their "
        "mean ('mixed'), or the IEEE RTS-79 winter weekday system load.",
    )
    ampacity_a: float | None = Field(
        None,
        gt=0.0,
        le=1e5,
        description="Rating of every branch without one in the data [A] (built-in feeders have none); unset: "
        "OpenDSS's default Line NormAmps, 400 A (said in the output).",
    )

    @field_validator("path")
    @classmethod
    def _resolve_path(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        base = (info.context or {}).get("base_dir")
        path = Path(value).expanduser()
        if not path.is_absolute() and base is not None:
            path = Path(base) / path
        if path.is_dir():
            raise ValueError(f"a directory, not a feeder file: {str(path)!r}")
        if not path.is_file():
            raise ValueError(f"no such feeder file: {str(path)!r}")
        return str(path)

    @model_validator(mode="after")
    def _check_source(self) -> NetworkFeederSpec:
        if self.source == "file" and self.path is None:
            raise ValueError("source = 'file' needs path (a MATPOWER .m or OpenDSS .dss file)")
        only = {"path": "file", "n_bus": "synthetic", "total_load_kw": "synthetic", "v_min_base_pu": "synthetic"}
        for key, source in only.items():
            if getattr(self, key) is not None and self.source != source:
                raise ValueError(f"{key} is only for source = '{source}' (this feeder: source = '{self.source}')")
        return self


class NetworkSpec(_Model):
    """The fleet on a network of feeders (``[network]``); without it the fleet sits on the one ``[feeder]``."""

    feeders: tuple[NetworkFeederSpec, ...] = Field(
        min_length=1, max_length=100, description="Kinds of feeders ([[network.feeders]] tables)."
    )
    network_secure: bool | None = Field(
        None,
        description="Sell every service within the network's operating envelopes; unset = true (the fleet sits "
        "on feeders).",
    )
    allocation_rule: Literal["equal_per_ev", "proportional_to_rating", "per_bus_max"] = Field(
        "equal_per_ev",
        description="How a feeder's operating envelope is shared among its buses: equal per EV, proportional "
        "to charger rating, or each bus's maximum taken alone (an optimistic bound).",
    )
    require_ratings: bool = Field(
        False,
        description="Every branch must have a rating in its data or from the feeder's ampacity_a: a branch "
        "without one is an error naming the feeder (its file) and the branch, instead of the 400 A default.",
    )
    v_min_pu: float = Field(0.95, gt=0.5, lt=1.0, description="Lowest allowed voltage [pu] (ANSI C84.1 Range A).")
    v_max_pu: float = Field(1.05, gt=1.0, lt=1.5, description="Highest allowed voltage [pu] (ANSI C84.1 Range A).")

    @model_validator(mode="after")
    def _check(self) -> NetworkSpec:
        n = sum(f.count for f in self.feeders)
        if n > 1000:
            raise ValueError(f"the network has {n} feeders (sum of count); allowed at most 1000")
        return self

    @property
    def n_feeders(self) -> int:
        """Number of feeders of the network [-]."""
        return sum(f.count for f in self.feeders)

    @property
    def secure(self) -> bool:
        """Whether services are sold within the operating envelopes (``network_secure``, unset = true)."""
        return True if self.network_secure is None else self.network_secure
