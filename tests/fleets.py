"""Hand-built fleets for the tests."""

from __future__ import annotations

import numpy as np

from v2gtwin.fleet import Fleet

ONE_EV = dict(
    capacity_kwh=60.0,
    soc0_pu=0.2,
    soc_target_pu=0.8,
    soc_min_pu=0.2,
    soc_max_pu=1.0,
    p_charge_max_kw=7.2,
    p_discharge_max_kw=7.2,
    eta_charge=0.95,
    eta_discharge=0.95,
    arrival_step=0,
    departure_step=96,
    bus=1,
    kind=0,
)


def one_ev(dt_s: float = 900.0, n_steps: int = 96, **changes: float) -> Fleet:
    """A one-EV fleet: 60 kWh, 0.2 -> 0.8 pu, 7.2 kW both ways, 95 % each way, plugged in all horizon."""
    attrs = {**ONE_EV, **changes}
    return Fleet(**{k: np.array([v]) for k, v in attrs.items()}, dt_s=dt_s, n_steps=n_steps)
