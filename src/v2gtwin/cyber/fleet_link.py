"""The link between the fleet model and the simulated stations: EVs of a :class:`~v2gtwin.fleet.Fleet` as
:class:`~v2gtwin.cyber.csms.simulator.SimEV` values (the simulator itself stays free of the numeric stack),
and a short dispatch run — simulated stations and the central system in one event loop — for the study."""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from v2gtwin.cyber.csms.outcomes import percentile_s
from v2gtwin.cyber.csms.simulator import SimEV
from v2gtwin.fleet import Fleet

__all__ = ["CyberRun", "fleet_to_sim_evs", "run_dispatch_demo"]


def fleet_to_sim_evs(fleet: Fleet, n: int | None = None) -> list[SimEV]:
    """The first ``n`` EVs of ``fleet`` (all by default) as simulated-station EVs, plugged in as on arrival."""
    k = fleet.n if n is None else min(n, fleet.n)
    dwell_h = (fleet.departure_step - fleet.arrival_step) * fleet.dt_h
    return [
        SimEV(
            capacity_kwh=float(fleet.capacity_kwh[i]),
            soc0_pu=float(fleet.soc0_pu[i]),
            p_max_w=float(fleet.p_charge_max_kw[i] * 1000.0),
            v2x=bool(fleet.p_discharge_max_kw[i] > 0),
            target_soc_pu=float(fleet.soc_target_pu[i]),
            departure_h=float(max(dwell_h[i], 0.25)),
            efficiency=float(fleet.eta_charge[i]),
        )
        for i in range(k)
    ]


@dataclass(frozen=True)
class CyberRun:
    """A short dispatch run of simulated stations against the central system.

    Attributes
    ----------
    n_stations : stations simulated. n_v2x : of which V2X (OCPP 2.1). set_points_w : per station [W].
    outcome : per station, as :meth:`Csms.dispatch` returns it. settled_s : per accepted station, time from
    the start of the fan-out to its acceptance [s] (``summary`` gives the median over every station, one
    that did not accept ranking above every time). sent, acknowledged : profiles sent / accepted.
    values_stored : meter values committed. power_after_w : each station's power after the dispatch [W].
    """

    n_stations: int
    n_v2x: int
    set_points_w: dict[str, float]
    outcome: dict[str, dict[str, Any]]
    settled_s: list[float]
    sent: int
    acknowledged: int
    values_stored: int
    power_after_w: dict[str, float]

    def to_frames(self) -> dict[str, Any]:
        """``cyber_stations`` as a pandas DataFrame: :func:`v2gtwin.tables.other.cyber_frames`."""
        from v2gtwin.tables.other import cyber_frames

        return cyber_frames(self)

    def summary(self) -> dict[str, Any]:
        """Headline figures (JSON-ready)."""
        # The median over every station: one that did not accept ranks above every time (null past half).
        times = [r["settled_s"] if r["status"] == "Accepted" else None for r in self.outcome.values()]
        return {
            "n_stations": self.n_stations,
            "n_v2x": self.n_v2x,
            "profiles_sent": self.sent,
            "profiles_acknowledged": self.acknowledged,
            "fanout_p50_s": percentile_s(times, 0.5),
            "fanout_max_s": max(self.settled_s) if self.settled_s else None,  # the slowest acceptance
            "meter_values_stored": self.values_stored,
            "followed": sum(abs(self.power_after_w[k] - v) < 1.0 for k, v in self.set_points_w.items()),
        }


async def _run(evs: list[SimEV], set_points_w: list[float], db_url: str) -> CyberRun:
    from v2gtwin.cyber.csms.server import Csms
    from v2gtwin.cyber.csms.simulator import run_station
    from v2gtwin.cyber.csms.store import Store

    store = Store(db_url)
    async with Csms(store, port=0) as csms:
        url = f"ws://127.0.0.1:{csms.port}"
        ids = [f"STUDY-{k:04d}" for k in range(len(evs))]
        stop = asyncio.Event()
        readies = [asyncio.Event() for _ in evs]
        live: dict[str, Any] = {}
        try:
            tasks = [
                asyncio.create_task(run_station(url, sid, ev=ev, reports=1, ready=r, stop=stop, registry=live))
                for sid, ev, r in zip(ids, evs, readies, strict=True)
            ]
            await asyncio.gather(*(r.wait() for r in readies))
            targets = dict(zip(ids, set_points_w, strict=True))
            outcome = await csms.dispatch(targets, timeout_s=10.0)
            power = {sid: float(live[sid].power_w()) for sid in ids if sid in live}
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            stop.set()
    sent = sum(1 for r in outcome.values() if r["attempts"] > 0)
    return CyberRun(
        n_stations=len(evs),
        n_v2x=sum(ev.v2x for ev in evs),
        set_points_w=targets,
        outcome=outcome,
        settled_s=[r["settled_s"] for r in outcome.values() if r["status"] == "Accepted"],
        sent=sent,
        acknowledged=sum(r["status"] == "Accepted" for r in outcome.values()),
        values_stored=store.count_meter_values(),
        power_after_w=power,
    )


def run_dispatch_demo(fleet: Fleet, n_stations: int = 50, seed: int = 0) -> CyberRun:
    """Plug the first ``n_stations`` EVs of ``fleet`` into simulated stations on loopback, let them boot and
    report, and dispatch one set-point each through the central system: charging at half power for EVs
    without V2X, discharging at half power for V2X EVs (a demand-response event). The database is a
    temporary SQLite file."""
    import numpy as np

    evs = fleet_to_sim_evs(fleet, n_stations)
    rng = np.random.default_rng([seed, 61])
    set_points = [(-0.5 if ev.v2x else 0.5) * ev.p_max_w * float(rng.uniform(0.8, 1.0)) for ev in evs]
    with tempfile.TemporaryDirectory() as d:
        return asyncio.run(_run(evs, set_points, f"sqlite:///{Path(d) / 'study-csms.sqlite'}"))
