"""The fleet's tables: per step (arrivals, plugged EVs, uncontrolled charging, envelope) and per EV."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from v2gtwin.tables._util import step_frame

if TYPE_CHECKING:
    from v2gtwin.fleet import Fleet
    from v2gtwin.scenario import TimeGrid
    from v2gtwin.study_result import FleetSection

__all__ = ["KIND_NAMES", "ev_frame", "fleet_frames"]

#: Label of each ``Fleet.kind`` code in the per-EV table.
KIND_NAMES: dict[int, str] = {0: "home", 1: "work"}


def ev_frame(fleet: Fleet, time: TimeGrid) -> pd.DataFrame:
    """One row per EV (index ``ev``, its position in the fleet): when it is plugged in (``arrival_time``,
    ``departure_time`` on the scenario's calendar, and the steps), its battery, charger, SoC limits, bus and
    ``energy_need_grid_kwh``, the grid-side energy it needs to reach its target (battery-side need / eta_charge),
    capped at what its stay allows at full power (p_charge_max_kw x stay) [kWh] — unlike the fleet summary's
    ``energy_need_total_kwh``, which is battery side and uncapped."""
    from v2gtwin.study_result import calc_ev_energy_need_kwh

    start = time.index()[0]

    def at(steps: np.ndarray) -> pd.DatetimeIndex:  # vectorised: start + steps x dt_s
        return start + pd.to_timedelta(np.asarray(steps, dtype=np.float64) * time.dt_s, unit="s")

    kind = np.asarray(fleet.kind)
    labels = [KIND_NAMES.get(k, str(k)) for k in range(int(kind.max(initial=0)) + 1)]
    return pd.DataFrame(
        {
            "arrival_time": at(fleet.arrival_step),
            "departure_time": at(fleet.departure_step),
            "arrival_step": fleet.arrival_step,
            "departure_step": fleet.departure_step,
            "capacity_kwh": fleet.capacity_kwh,
            "soc_arrival_pu": fleet.soc0_pu,
            "soc_target_pu": fleet.soc_target_pu,
            "soc_min_pu": fleet.soc_min_pu,
            "soc_max_pu": fleet.soc_max_pu,
            "p_charge_max_kw": fleet.p_charge_max_kw,
            "p_discharge_max_kw": fleet.p_discharge_max_kw,
            "eta_charge": fleet.eta_charge,
            "eta_discharge": fleet.eta_discharge,
            "bus": fleet.bus,
            "kind": pd.Categorical.from_codes(kind, categories=pd.Index(labels)),  # type: ignore[arg-type]  # stubs: codes
            "energy_need_grid_kwh": calc_ev_energy_need_kwh(fleet),
        },
        index=pd.RangeIndex(fleet.n, name="ev"),
    )


def fleet_frames(section: FleetSection, time: TimeGrid) -> dict[str, pd.DataFrame]:
    """``fleet_steps``: the per-step series of results.json's fleet section on the time index; ``fleet_evs``:
    one row per EV (:func:`ev_frame` when the section holds its fleet, else the arrival and departure SoC) with
    ``soc_departure_pu``, the SoC it leaves with under uncontrolled charging."""
    frame = section.to_frame()
    steps = step_frame(time, {str(c): frame[c].to_numpy() for c in frame.columns})
    fleet = getattr(section, "fleet", None)
    if fleet is not None:
        evs = ev_frame(fleet, time)
    else:
        evs = pd.DataFrame(
            {"soc_arrival_pu": section.soc_arrival_pu}, index=pd.RangeIndex(section.soc_arrival_pu.size, name="ev")
        )
    evs["soc_departure_pu"] = section.soc_departure_pu
    return {"fleet_steps": steps, "fleet_evs": evs}
