"""The study orchestrator: scenario -> StudyResult, a short fixed sequence of thin steps.

``StudyChain(scenario).run()`` reads like the study it performs. Each step calls one pure function and
stores what it returns; later issues add their steps (feeder, frequency, markets, ...) to :attr:`STEPS`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from v2gtwin.fleet import (
    Envelope,
    Fleet,
    SocResult,
    calc_envelope,
    calc_plugged_energy_kwh,
    run_uncontrolled,
    summarize_fleet,
    synthesize_fleet,
)
from v2gtwin.scenario import Scenario

__all__ = ["FLEET_SOURCES", "FleetSection", "StudyChain", "StudyResult", "build_fleet"]

logger = logging.getLogger(__name__)

FloatArray = np.ndarray


def _fleet_synthetic(scenario: Scenario, rng: np.random.Generator) -> Fleet:
    return synthesize_fleet(scenario.fleet, scenario.time, scenario.feeder.n_bus, rng)


def _fleet_acn(scenario: Scenario, rng: np.random.Generator) -> Fleet:
    from v2gtwin.acn import fleet_from_acn, read_acn_sessions

    sessions = read_acn_sessions(scenario.fleet.acn_site)
    return fleet_from_acn(
        sessions, scenario.fleet.acn_date, scenario.fleet, scenario.time, scenario.feeder.n_bus, rng
    )


#: How a scenario's fleet is built, by ``fleet.source``.
FLEET_SOURCES: dict[str, Callable[[Scenario, np.random.Generator], Fleet]] = {
    "synthetic": _fleet_synthetic,
    "acn": _fleet_acn,
}


def build_fleet(scenario: Scenario) -> Fleet:
    """The scenario's fleet, drawn with a generator seeded from ``scenario.seed``."""
    rng = np.random.default_rng(scenario.seed)
    return FLEET_SOURCES[scenario.fleet.source](scenario, rng)


@dataclass(frozen=True)
class FleetSection:
    """Fleet results of a study, one value per step unless stated.

    Attributes
    ----------
    summary : fleet and uncontrolled-charging statistics (units in the keys).
    time_h : start of each step, hours after the start of the horizon [h].
    clock_h : local clock time of the start of each step [h].
    arrivals : EVs arriving at the start of the step [-].
    departures : EVs leaving at the start of the step [-].
    n_plugged : EVs plugged in during the step [-].
    p_uncontrolled_kw : aggregate power of uncontrolled charging [kW].
    e_uncontrolled_kwh : stored energy of the plugged EVs at the end of the step, uncontrolled [kWh].
    p_max_kw, p_min_kw : aggregate power envelope [kW].
    e_lower_kwh, e_upper_kwh : aggregate energy envelope [kWh].
    n_infeasible : EVs whose target is out of reach even at full power [-].
    soc_arrival_pu : SoC of each EV at arrival [pu].
    soc_departure_pu : SoC of each EV at departure, uncontrolled [pu].
    """

    summary: dict[str, float]
    time_h: FloatArray
    clock_h: FloatArray
    arrivals: FloatArray
    departures: FloatArray
    n_plugged: FloatArray
    p_uncontrolled_kw: FloatArray
    e_uncontrolled_kwh: FloatArray
    p_max_kw: FloatArray
    p_min_kw: FloatArray
    e_lower_kwh: FloatArray
    e_upper_kwh: FloatArray
    n_infeasible: int
    soc_arrival_pu: FloatArray
    soc_departure_pu: FloatArray

    def to_frame(self) -> pd.DataFrame:
        """The per-step series as one DataFrame."""
        return pd.DataFrame(
            {
                "time_h": self.time_h,
                "clock_h": self.clock_h,
                "arrivals": self.arrivals,
                "departures": self.departures,
                "n_plugged": self.n_plugged,
                "p_uncontrolled_kw": self.p_uncontrolled_kw,
                "e_uncontrolled_kwh": self.e_uncontrolled_kwh,
                "p_max_kw": self.p_max_kw,
                "p_min_kw": self.p_min_kw,
                "e_lower_kwh": self.e_lower_kwh,
                "e_upper_kwh": self.e_upper_kwh,
            }
        )


@dataclass(frozen=True)
class StudyResult:
    """Everything a study found; the report reads only this.

    Attributes
    ----------
    scenario : the scenario studied.
    fleet : fleet section.
    timings_s : wall time of each step [s].
    """

    scenario: Scenario
    fleet: FleetSection
    timings_s: dict[str, float] = field(default_factory=dict)

    def to_dict(self, *, series: bool = True) -> dict[str, Any]:
        """JSON-ready dict; ``series=False`` leaves out the per-step arrays (per-EV arrays never go in)."""
        fleet: dict[str, Any] = {"summary": self.fleet.summary, "n_infeasible": self.fleet.n_infeasible}
        if series:
            n_steps = self.scenario.time.n_steps
            for key, value in asdict(self.fleet).items():
                if isinstance(value, np.ndarray) and value.shape == (n_steps,):
                    fleet[key] = value.tolist()
        return {
            "scenario": self.scenario.model_dump(mode="json"),
            "fleet": fleet,
            "timings_s": self.timings_s,
        }


class StudyChain:
    """Run a whole study on one scenario: build fleet -> envelope -> uncontrolled charging -> result.

    Parameters
    ----------
    scenario : the scenario.
    on_step : called as ``on_step(name, index, total)`` before each step (a progress bar hooks in here).
    """

    STEPS: tuple[str, ...] = ("build_fleet", "envelope", "uncontrolled")

    def __init__(self, scenario: Scenario, on_step: Callable[[str, int, int], None] | None = None) -> None:
        self.scenario = scenario
        self.on_step = on_step
        self.fleet: Fleet | None = None
        self.envelope_: Envelope | None = None
        self.uncontrolled_: SocResult | None = None
        self.timings_s: dict[str, float] = {}

    def run(self) -> StudyResult:
        """Run every step in order and return the result."""
        for i, name in enumerate(self.STEPS):
            if self.on_step is not None:
                self.on_step(name, i, len(self.STEPS))
            t0 = time.perf_counter()
            getattr(self, name)()
            self.timings_s[name] = time.perf_counter() - t0
            logger.debug("step %s took %.3f s", name, self.timings_s[name])
        return self.result()

    # --- steps -------------------------------------------------------------------------------------------
    def build_fleet(self) -> None:
        self.fleet = build_fleet(self.scenario)

    def envelope(self) -> None:
        self.envelope_ = calc_envelope(self._fleet())

    def uncontrolled(self) -> None:
        self.uncontrolled_ = run_uncontrolled(self._fleet())

    # --- assembly ----------------------------------------------------------------------------------------
    def _fleet(self) -> Fleet:
        if self.fleet is None:
            raise RuntimeError("build_fleet must run first")
        return self.fleet

    def result(self) -> StudyResult:
        """Assemble the :class:`StudyResult` from the finished steps."""
        fleet = self._fleet()
        env, unc = self.envelope_, self.uncontrolled_
        if env is None or unc is None:
            raise RuntimeError("envelope and uncontrolled must run first")
        t = self.scenario.time
        steps = np.arange(t.n_steps)
        arr_in = fleet.arrival_step[fleet.arrival_step < fleet.departure_step]
        dep_in = fleet.departure_step[fleet.arrival_step < fleet.departure_step]
        idx = np.arange(fleet.n)
        section = FleetSection(
            summary=summarize_fleet(fleet, unc) | {"n_infeasible": float(env.n_infeasible)},
            time_h=steps * t.dt_h,
            clock_h=(t.start_hour + steps * t.dt_h) % 24.0,
            arrivals=np.bincount(arr_in, minlength=t.n_steps + 1)[: t.n_steps].astype(float),
            departures=np.bincount(dep_in, minlength=t.n_steps + 1)[: t.n_steps].astype(float),
            n_plugged=env.n_plugged.astype(float),
            p_uncontrolled_kw=unc.p_kw.sum(axis=1),
            e_uncontrolled_kwh=calc_plugged_energy_kwh(fleet, unc.soc_pu),
            p_max_kw=env.p_max_kw,
            p_min_kw=env.p_min_kw,
            e_lower_kwh=env.e_lower_kwh,
            e_upper_kwh=env.e_upper_kwh,
            n_infeasible=env.n_infeasible,
            soc_arrival_pu=np.asarray(fleet.soc0_pu, dtype=float),
            soc_departure_pu=np.asarray(
                unc.soc_pu[np.minimum(fleet.departure_step, t.n_steps), idx], dtype=float
            ),
        )
        return StudyResult(scenario=self.scenario, fleet=section, timings_s=dict(self.timings_s))
