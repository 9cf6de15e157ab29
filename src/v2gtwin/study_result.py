"""The study's result: one section per area (fleet, feeder, services, markets) and :class:`StudyResult`, which
holds them with the network, protection, resilience and cyber results and turns them into JSON. Built by
:class:`v2gtwin.study.StudyChain`; read by the report and the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from v2gtwin.fleet import (
    Envelope,
    Fleet,
    SocResult,
    calc_plugged_energy_kwh,
    summarize_fleet,
)
from v2gtwin.grid.analysis import (
    DispatchComparison,
    FeederTimeSeries,
)
from v2gtwin.grid.bulk import (
    AgcAnalysis,
    FrequencyAnalysis,
    summarize_agc,
    summarize_cascade,
    summarize_dr,
    summarize_droop,
    summarize_dynamics,
    summarize_reserve,
)
from v2gtwin.grid.cascade import CascadeResult
from v2gtwin.grid.hosting import FleetHostingResult, HostingResult
from v2gtwin.grid.network_analysis import NetworkSection
from v2gtwin.grid.protection.analysis import ProtectionAnalysis
from v2gtwin.grid.resilience_analysis import ResilienceAnalysis
from v2gtwin.grid.secure import tabulate_secure_figures
from v2gtwin.grid.services import DemandResponseResult, ReserveResult
from v2gtwin.markets.analysis import (
    BidAnalysis,
    StackelbergAnalysis,
    summarize_bid,
    summarize_market,
    summarize_stackelberg,
)
from v2gtwin.markets.scheduling import (
    NetworkScheduleAnalysis,
    RobustAnalysis,
    ScheduleAnalysis,
)
from v2gtwin.optimize.network_battery import NetworkBattery
from v2gtwin.scenario import Scenario, TimeGrid

__all__ = [
    "FeederSection",
    "FleetSection",
    "MarketsSection",
    "ServicesSection",
    "StudyResult",
    "build_fleet_section",
    "calc_ev_energy_need_kwh",
]

if TYPE_CHECKING:
    from v2gtwin.battery.health import BatteryHealthAnalysis
    from v2gtwin.compliance.audit import AuditResult
    from v2gtwin.cyber.fleet_link import CyberRun
    from v2gtwin.cyber.path_analysis import PathAnalysis

FloatArray = np.ndarray


@dataclass(frozen=True)
class FleetSection:
    """Fleet results of a study, one value per step unless stated.

    Attributes
    ----------
    summary : fleet and uncontrolled-charging statistics (units in the keys).
    time_h : start of each step, hours after the start of the horizon [h].
    clock_h : local clock time of the start of each step [h].
    arrivals : EVs arriving at the start of the step (integers) [-].
    departures : EVs leaving at the start of the step (integers) [-].
    n_plugged : EVs plugged in during the step (integers) [-].
    p_uncontrolled_kw : aggregate power of uncontrolled charging [kW].
    e_uncontrolled_kwh : stored energy of the plugged EVs at the end of the step, uncontrolled [kWh].
    p_max_kw, p_min_kw : aggregate power envelope [kW].
    e_lower_kwh, e_upper_kwh : aggregate energy envelope [kWh].
    n_infeasible : EVs whose target is out of reach even at full power [-].
    soc_arrival_pu : SoC of each EV at arrival [pu].
    soc_departure_pu : SoC of each EV at departure, uncontrolled [pu].
    fleet : the fleet itself, for the per-EV table (:meth:`to_frames`); None: only the SoC columns.
    """

    summary: dict[str, float | int]
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
    fleet: Fleet | None = None

    def to_frames(self, time: TimeGrid) -> dict[str, pd.DataFrame]:
        """``fleet_steps`` (per step, on ``time.index()``) and ``fleet_evs`` (per EV):
        :func:`v2gtwin.tables.fleet.fleet_frames`."""
        from v2gtwin.tables.fleet import fleet_frames

        return fleet_frames(self, time)

    def to_dict(self, *, series: bool = True) -> dict[str, Any]:
        """The fleet section of results.json, and of ``v2gtwin fleet summary --json`` (``series=False``).

        ``summary`` holds the statistics (counts as integers); ``series=True`` adds the per-step arrays.
        """
        out: dict[str, Any] = {"summary": dict(self.summary)}
        if series:  # the per-step fields by name (a per-EV array of the same length must not slip in)
            out |= {key: getattr(self, key) for key in self.to_frame().columns}
        return out

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
class FeederSection:
    """Feeder results of a study.

    Attributes
    ----------
    name : feeder name.
    n_bus : buses [-].
    bus_labels : label of each bus in feeder order, as the feeder's source publishes it [-].
    p_base_total_kw : base load of the feeder per step [kW].
    p_ev_total_kw : uncontrolled EV charging on the feeder per step [kW].
    timeseries : power flows of the day (base, with fleet, with volt-var).
    hosting : per-node hosting capacity at the base-load peak.
    hosting_voltvar : the same with volt-var on the EV inverter (None when volt-var is off).
    fleet_hosting : the largest scaling of the fleet's uncontrolled charging the feeder carries.
    dispatch : loss-aware vs uniform vs random charging of the same EV energy.
    parent : upstream bus of each bus in feeder order (-1 for the source), for drawing the feeder's paths
        (None when not known) [-].
    r_ohm, x_ohm : series resistance and reactance of the branch feeding each bus (0 for the source), for the
        electrical distance along the feeder's paths (None when not known) [ohm].
    envelopes : the network's operating envelopes, one per feeder (``grid.envelopes.OperatingEnvelope``;
        empty when the fleet is not on a network).
    notes : what a reader must know about this feeder (which feeder of the network it is, how it was built).
    """

    name: str
    n_bus: int
    bus_labels: np.ndarray
    p_base_total_kw: FloatArray
    p_ev_total_kw: FloatArray
    timeseries: FeederTimeSeries
    hosting: HostingResult
    hosting_voltvar: HostingResult | None
    fleet_hosting: FleetHostingResult
    dispatch: DispatchComparison
    parent: np.ndarray | None = None
    envelopes: tuple[Any, ...] = ()
    notes: tuple[str, ...] = ()
    r_ohm: np.ndarray | None = None
    x_ohm: np.ndarray | None = None

    def to_frames(self, time: TimeGrid) -> dict[str, pd.DataFrame]:
        """Per step, per bus, hosting, losses: :func:`v2gtwin.tables.grid.feeder_frames`."""
        from v2gtwin.tables.grid import feeder_frames

        return feeder_frames(self, time)

    def summary(self) -> dict[str, Any]:
        """Headline figures (JSON-ready)."""
        ts = self.timeseries
        dt = {p: lo for p, lo in zip(self.dispatch.policies, self.dispatch.losses_kwh, strict=True)}
        out: dict[str, Any] = {
            "feeder": self.name,
            "n_bus": self.n_bus,
            "v_min_base_pu": float(ts.v_min_base_pu.min()),
            "v_min_fleet_pu": float(ts.v_min_fleet_pu.min()),
            "v_min_voltvar_pu": float(ts.v_min_voltvar_pu.min()),
            "worst_step": ts.worst_step,
            "v_min_fleet_bus": str(self.bus_labels[int(np.argmin(ts.v_profile_fleet_pu))]),
            "hosting_min_kw": float(self.hosting.p_host_kw.min()),
            "hosting_median_kw": float(np.median(self.hosting.p_host_kw)),
            "fleet_hosting_scale": self.fleet_hosting.scale,
            "fleet_hosting_binding": self.fleet_hosting.binding,
            "dispatch_losses_kwh": dt,
        }
        if self.hosting_voltvar is not None:
            out["hosting_voltvar_median_kw"] = float(np.median(self.hosting_voltvar.p_host_kw))
        if self.notes:
            out["notes"] = list(self.notes)
        return out


@dataclass(frozen=True)
class ServicesSection:
    """Bulk-grid services of the fleet.

    Attributes
    ----------
    frequency : primary response to the scenario's load step (steady state and dynamics).
    agc : the AGC loop and regulation-signal following.
    reserve : contingency reserve over the day. dr : the demand-response event.
    cascade : the under-frequency cascade in every disconnection mode.
    step_mw : the primary-response load step [MW].
    path_verdicts : per summary key (``reserve``, ``dr``), the command path's verdict on that service
        (:meth:`v2gtwin.cyber.path_analysis.PathAnalysis.verdict`); empty when no path was checked.
    """

    frequency: FrequencyAnalysis
    agc: AgcAnalysis
    reserve: ReserveResult
    dr: DemandResponseResult
    cascade: dict[str, CascadeResult]
    step_mw: float
    path_verdicts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_frames(self, time: TimeGrid) -> dict[str, pd.DataFrame]:
        """Per step, per service, the cascade: :func:`v2gtwin.tables.grid.services_frames`."""
        from v2gtwin.tables.grid import services_frames

        return services_frames(self, time)

    def summary(self) -> dict[str, Any]:
        """Headline figures (JSON-ready), one key per ``v2gtwin frequency`` command, each the dict that
        command prints with ``--json``."""
        out = {
            "droop": summarize_droop(self.frequency, self.step_mw),
            "dynamics": summarize_dynamics(self.frequency, self.step_mw),
            "agc": summarize_agc(self.agc),
            "reserve": summarize_reserve(self.reserve),
            "dr": summarize_dr(self.dr),
            "cascade": summarize_cascade(self.cascade),
        }
        for key, v in self.path_verdicts.items():  # a service the path cannot deliver is not sold
            out[key]["path"] = v | ({} if v["deliverable"] else {"note": "not deliverable over this path: not sold"})
        return out


@dataclass(frozen=True)
class MarketsSection:
    """Markets and scheduling.

    Attributes
    ----------
    market : {'rtp', 'tou', 'deadweight_loss', 'demand', 'supply'} of the TOU vs RTP comparison.
    stackelberg : the aggregator's optimal charging and discharging prices. bid : the newsvendor regulation bid.
    schedule : day-ahead schedules (individual, aggregate, disaggregated). robust : robust schedules.
    network_schedule : the day-ahead schedule on the network's feeders, unconstrained and network-secure,
        checked by exact AC (None when services are not sold within a network).
    """

    market: dict[str, Any]
    stackelberg: StackelbergAnalysis
    bid: BidAnalysis
    schedule: ScheduleAnalysis
    robust: RobustAnalysis
    network_schedule: NetworkScheduleAnalysis | None = None

    def to_frames(self, time: TimeGrid, currency: str) -> dict[str, pd.DataFrame]:
        """Market hours, schedule per step, robust, bid, headline figures:
        :func:`v2gtwin.tables.markets.markets_frames`."""
        from v2gtwin.tables.markets import markets_frames

        return markets_frames(self, time, currency)

    def summary(self) -> dict[str, Any]:
        """Headline figures (JSON-ready)."""
        sc, rb = self.schedule, self.robust
        extra = {} if self.network_schedule is None else {"network_schedule": self.network_schedule.summary()}
        return {
            # The same dicts the CLI's market compare, market stackelberg and bid print.
            "market": summarize_market(self.market),
            "stackelberg": summarize_stackelberg(self.stackelberg),
            "bid": summarize_bid(self.bid),
            "schedule": sc.summary(),
            "robust": rb.summary(),
        } | extra


def calc_ev_energy_need_kwh(fleet: Fleet) -> FloatArray:
    """Grid-side energy [kWh] each EV needs to reach its target, limited to what its stay allows."""
    need = np.clip(fleet.soc_target_pu - fleet.soc0_pu, 0.0, None) * fleet.capacity_kwh / fleet.eta_charge
    most = fleet.p_charge_max_kw * (fleet.departure_step - fleet.arrival_step) * fleet.dt_h
    return np.asarray(np.minimum(need, most))


@dataclass(frozen=True)
class StudyResult:
    """Everything a study found; the report reads only this.

    Attributes
    ----------
    scenario : the scenario studied.
    fleet : fleet section (None, like every section below, when one of its steps failed or was not asked for).
    feeder : feeder section.
    services : bulk-grid services section.
    markets : markets and scheduling section.
    cyber : the dispatch run through the OCPP central system (None when the scenario skips it).
    network : the fleet on its network of feeders (None when the scenario has no [network] section).
    timings_s : wall time of each step [s].
    protection : fault currents and relay coordination without and with V2G (None when not run).
    resilience : the critical facility through the scenario's outage, with and without V2G (None: not run).
    network_battery : the fleet's outer, inner and network-secure inner virtual batteries per feeder (None
        unless the fleet sits on a network with ``network_secure`` on).
    battery : battery health: the V2G degradation cost, the fleet's fade uncontrolled vs V2G, the schedule and
        V2G offer priced by the models and by the flat placeholder (None when not run).
    cyber_path : the command path's latency and reliability against the services' deadlines (None: not run).
    compliance : IEEE 1547-2018 audit of the study's own V2G inverters (None when not run).
    failures : per failed step, ``"ErrorType: one-line message"``.
    skipped : per step that did not run and did not fail, why (``"needs feeder, which failed"``,
        ``"not asked for"``).
    """

    scenario: Scenario
    fleet: FleetSection | None = None
    feeder: FeederSection | None = None
    services: ServicesSection | None = None
    markets: MarketsSection | None = None
    cyber: CyberRun | None = None
    network: NetworkSection | None = None
    timings_s: dict[str, float] = field(default_factory=dict)
    protection: ProtectionAnalysis | None = None
    resilience: ResilienceAnalysis | None = None
    network_battery: NetworkBattery | None = None
    battery: BatteryHealthAnalysis | None = None
    cyber_path: PathAnalysis | None = None
    compliance: AuditResult | None = None
    failures: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when no step failed (steps not asked for do not count)."""
        return not self.failures

    def to_frames(self) -> dict[str, pd.DataFrame]:
        """Every result as tidy pandas tables by stable name (``fleet_steps``, ``fleet_evs``, ``feeder_steps``,
        ...: :data:`v2gtwin.tables.TABLE_NAMES`); per-step tables are indexed by the scenario's tz-aware time
        index, column names carry their unit. A section that is None (its step failed or did not run) gives
        no table; ``study_steps`` says which steps ran, failed or were skipped."""
        from v2gtwin.tables import collect_frames

        return collect_frames(self)

    def to_dict(self, *, series: bool = True) -> dict[str, Any]:
        """JSON-ready dict; ``series=False`` leaves out the per-step arrays (per-EV arrays never go in). A
        section that was not computed is null; ``ok``, ``failures`` and ``skipped`` say why."""
        services = None if self.services is None else self._services_dict(series)
        markets = None if self.markets is None else self._markets_dict(series)
        # Each service unconstrained, network-secure and the difference (when the fleet sits on a network).
        rows = (
            []
            if services is None or markets is None
            else tabulate_secure_figures(services["summary"], markets["summary"])
        )
        if rows and services is not None:
            services["network_secure"] = rows
            if series and (sv := self.services) is not None and sv.reserve.reserve_secure_kw is not None:
                services["reserve_secure_kw"] = sv.reserve.reserve_secure_kw.tolist()
        return {
            "currency": self.scenario.currency,
            "ok": self.ok,
            "failures": dict(self.failures),
            "skipped": dict(self.skipped),
            "scenario": self.scenario.model_dump(mode="json"),
            "fleet": None if self.fleet is None else self.fleet.to_dict(series=series),
            "feeder": None if self.feeder is None else _feeder_dict(self.feeder, series),
            "services": services,
            "markets": markets,
            "cyber": None if self.cyber is None else self.cyber.summary(),
            "network": None if self.network is None else self.network.to_dict(series=series),
            "timings_s": self.timings_s,
            "protection": None if self.protection is None else self.protection.to_dict(),
            "resilience": None if self.resilience is None else _resilience_dict(self.resilience, series),
            "network_battery": None if (nb := self.network_battery) is None else _battery_dict(nb, series),
            "battery": None if self.battery is None else self.battery.summary(),
            "cyber_path": None if self.cyber_path is None else self.cyber_path.summary(),
            "compliance": None if self.compliance is None else self.compliance.to_dict(),
        }

    def _services_dict(self, series: bool) -> dict[str, Any]:
        sv = self.services
        assert sv is not None
        out: dict[str, Any] = {"summary": sv.summary()}
        if series:
            out["reserve_kw"] = sv.reserve.reserve_kw.tolist()
            out["dr_p_kw"] = sv.dr.p_dr_kw.tolist()
        return out

    def _markets_dict(self, series: bool) -> dict[str, Any]:
        mk = self.markets
        assert mk is not None
        out: dict[str, Any] = {"summary": mk.summary()}
        if series:
            out["price_per_mwh"] = mk.schedule.price_per_mwh.tolist()
            out["schedule_p_kw"] = mk.schedule.individual.p_total_kw.tolist()
        return out


def _feeder_dict(fd: FeederSection, series: bool) -> dict[str, Any]:
    """The feeder section of results.json."""
    out: dict[str, Any] = {
        "summary": fd.summary(),
        "hosting": fd.hosting.to_frame().to_dict(orient="list"),
        "dispatch": fd.dispatch.to_dict(),
    }
    if fd.hosting_voltvar is not None:
        out["hosting_voltvar"] = fd.hosting_voltvar.to_frame().to_dict(orient="list")
    if series:
        ts = fd.timeseries
        out |= {
            "p_base_total_kw": fd.p_base_total_kw.tolist(),
            "p_ev_total_kw": fd.p_ev_total_kw.tolist(),
            "v_min_base_pu": ts.v_min_base_pu.tolist(),
            "v_min_fleet_pu": ts.v_min_fleet_pu.tolist(),
            "v_min_voltvar_pu": ts.v_min_voltvar_pu.tolist(),
            "losses_fleet_kw": ts.losses_fleet_kw.tolist(),
        }
    return out


def _battery_dict(nb: NetworkBattery, series: bool) -> dict[str, Any]:
    """The network_battery section of results.json: the summary and the fleet's power bands over the day."""
    return {"summary": nb.summary()} | ({"series": nb.series()} if series else {})


def _resilience_dict(res: ResilienceAnalysis, series: bool) -> dict[str, Any]:
    """The resilience section of results.json: the summary ``v2gtwin resilience --json`` prints, and Q(t)."""
    return {"summary": res.summary()} | ({"series": res.series()} if series else {})


def build_fleet_section(scenario: Scenario, fleet: Fleet, env: Envelope, unc: SocResult) -> FleetSection:
    """The fleet section of a study from its fleet, envelope and uncontrolled charging (also what
    ``v2gtwin fleet summary`` prints, so both carry the same keys)."""
    t = scenario.time
    steps = np.arange(t.n_steps)
    arr_in = fleet.arrival_step[fleet.arrival_step < fleet.departure_step]
    dep_in = fleet.departure_step[fleet.arrival_step < fleet.departure_step]
    idx = np.arange(fleet.n)
    return FleetSection(
        summary=summarize_fleet(fleet, unc) | {"n_infeasible": int(env.n_infeasible)},
        time_h=steps * t.dt_h,
        clock_h=(t.start_hour + steps * t.dt_h) % 24.0,
        arrivals=np.bincount(arr_in, minlength=t.n_steps + 1)[: t.n_steps].astype(np.int64),
        departures=np.bincount(dep_in, minlength=t.n_steps + 1)[: t.n_steps].astype(np.int64),
        n_plugged=np.asarray(env.n_plugged, dtype=np.int64),
        p_uncontrolled_kw=unc.p_kw.sum(axis=1),
        e_uncontrolled_kwh=calc_plugged_energy_kwh(fleet, unc.soc_pu),
        p_max_kw=env.p_max_kw,
        p_min_kw=env.p_min_kw,
        e_lower_kwh=env.e_lower_kwh,
        e_upper_kwh=env.e_upper_kwh,
        n_infeasible=env.n_infeasible,
        soc_arrival_pu=np.asarray(fleet.soc0_pu, dtype=float),
        soc_departure_pu=np.asarray(unc.soc_pu[np.minimum(fleet.departure_step, t.n_steps), idx], dtype=float),
        fleet=fleet,
    )
