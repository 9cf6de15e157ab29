"""The study orchestrator: scenario -> StudyResult, thin steps run as a graph.

``StudyChain(scenario).run()`` reads like the study it performs. Each step calls one pure function and stores
what it returns; :attr:`StudyChain.STEP_TABLE` declares what each step needs and produces, and
``run(targets)`` runs exactly the steps the targets need, each once. A step that fails is recorded in the
result (``failures``) and the steps that need it are skipped (``skipped``); the others still run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from v2gtwin.cyber.service_names import SERVICE_DR, SERVICE_REGULATION, SERVICE_RESERVE
from v2gtwin.errors import StepFailedError
from v2gtwin.fleet import (
    Envelope,
    Fleet,
    SocResult,
    calc_bus_power_kw,
    calc_envelope,
    calc_plugged,
    run_uncontrolled,
    synthesize_fleet,
)
from v2gtwin.grid.analysis import (
    DispatchComparison,
    FeederTimeSeries,
    build_feeder,
    calc_base_load,
    run_dispatch_comparison,
    run_feeder_timeseries,
    run_hosting_analysis,
)
from v2gtwin.grid.bulk import (
    AgcAnalysis,
    FrequencyAnalysis,
    run_agc_analysis,
    run_cascade_analysis,
    run_frequency_analysis,
    run_reserve_dr_analysis,
)
from v2gtwin.grid.cascade import CascadeResult
from v2gtwin.grid.feeder import Feeder
from v2gtwin.grid.hosting import FleetHostingResult, HostingResult
from v2gtwin.grid.network import build_network
from v2gtwin.grid.network_analysis import NetworkSection, run_network_analysis
from v2gtwin.grid.protection.analysis import ProtectionAnalysis, run_protection_analysis
from v2gtwin.grid.resilience_analysis import ResilienceAnalysis, run_resilience_analysis
from v2gtwin.grid.secure import NetworkLimits, build_network_limits
from v2gtwin.grid.services import DemandResponseResult, ReserveResult
from v2gtwin.markets.analysis import (
    BidAnalysis,
    StackelbergAnalysis,
    gate_bid_by_path,
    run_market_analysis,
    run_stackelberg_analysis,
)
from v2gtwin.markets.scheduling import (
    NetworkScheduleAnalysis,
    RobustAnalysis,
    ScheduleAnalysis,
    run_network_schedule_analysis,
    run_robust_analysis,
    run_schedule_analysis,
)
from v2gtwin.optimize.network_battery import NetworkBattery, calc_network_battery
from v2gtwin.scenario import Scenario
from v2gtwin.study_graph import (
    NOT_ASKED,
    SECTION_STEPS,
    STUDY_STEPS,
    Step,
    check_steps,
    describe_error,
    drop_tracebacks,
    is_bad_input,
    plan_steps,
    skip_reason,
)
from v2gtwin.study_network import run_bid_analysis_within
from v2gtwin.study_result import (
    FeederSection,
    FleetSection,
    MarketsSection,
    ServicesSection,
    StudyResult,
    build_fleet_section,
    calc_ev_energy_need_kwh,
)

__all__ = [
    "FLEET_SOURCES",
    "FeederSection",
    "FleetSection",
    "MarketsSection",
    "ServicesSection",
    "Step",
    "StudyChain",
    "StudyResult",
    "build_fleet",
    "build_fleet_section",
    "calc_ev_energy_need_kwh",
]

if TYPE_CHECKING:
    from v2gtwin.battery.cost import DegradationCost
    from v2gtwin.battery.health import BatteryHealthAnalysis
    from v2gtwin.compliance.audit import AuditResult
    from v2gtwin.cyber.fleet_link import CyberRun
    from v2gtwin.cyber.path_analysis import PathAnalysis

logger = logging.getLogger(__name__)

FloatArray = np.ndarray


def _fleet_synthetic(scenario: Scenario, rng: np.random.Generator) -> Fleet:
    return synthesize_fleet(scenario.fleet, scenario.time, scenario.feeder.n_bus, rng)


def _fleet_acn(scenario: Scenario, rng: np.random.Generator) -> Fleet:
    from v2gtwin.acn import fleet_from_acn, read_acn_sessions

    sessions = read_acn_sessions(scenario.fleet.acn_site)
    return fleet_from_acn(sessions, scenario.fleet.acn_date, scenario.fleet, scenario.time, scenario.feeder.n_bus, rng)


def _fleet_csv(scenario: Scenario, rng: np.random.Generator) -> Fleet:
    from v2gtwin.data_in import read_sessions_csv

    path = scenario.fleet.sessions_csv
    if path is None:  # the scenario's validation makes source = 'csv' name a file
        raise RuntimeError("fleet.source = 'csv' needs fleet.sessions_csv")
    return read_sessions_csv(path, scenario.fleet, scenario.time, scenario.feeder.n_bus, rng)


#: How a scenario's fleet is built, by ``fleet.source``.
FLEET_SOURCES: dict[str, Callable[[Scenario, np.random.Generator], Fleet]] = {
    "synthetic": _fleet_synthetic,
    "acn": _fleet_acn,
    "csv": _fleet_csv,
}


def build_fleet(scenario: Scenario) -> Fleet:
    """The scenario's fleet, drawn with a generator seeded from ``scenario.seed``."""
    rng = np.random.default_rng(scenario.seed)
    return FLEET_SOURCES[scenario.fleet.source](scenario, rng)


class StudyChain:
    """Run a whole study on one scenario: build fleet -> envelope -> uncontrolled charging -> feeder power
    flows -> hosting capacity -> loss-aware charging -> fault currents and relay coordination -> primary frequency
    response -> AGC and regulation -> reserve and demand response -> cascade -> markets (TOU/RTP, Stackelberg,
    bid) -> schedules -> resilience of a critical facility through an outage -> dispatch through the OCPP central
    system -> result.

    The steps form a graph (:attr:`STEP_TABLE`: what each needs and produces); :meth:`run` with targets runs only
    the steps they need, each once, and records a failed step instead of stopping (see docs/ARCHITECTURE.md).

    Parameters
    ----------
    scenario : the scenario.
    on_step : called as ``on_step(name, index, total)`` before each step to run (``total``: the steps the targets
        need; a progress bar hooks in here).
    """

    #: The steps: what each needs and produces (the order is derived from the needs; see docs/ARCHITECTURE.md).
    STEP_TABLE: ClassVar[tuple[Step, ...]] = STUDY_STEPS
    #: Every step's name, in the order a whole study runs them (derived from the needs).
    STEPS: ClassVar[tuple[str, ...]] = check_steps(STUDY_STEPS)
    #: Which steps each section of :class:`StudyResult` is built from (None when one of them did not run).
    SECTION_STEPS: ClassVar[Mapping[str, tuple[str, ...]]] = SECTION_STEPS

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.STEPS = check_steps(cls.STEP_TABLE)  # a subclass with more steps gets its own checked order

    def __init__(self, scenario: Scenario, on_step: Callable[[str, int, int], None] | None = None) -> None:
        self.scenario = scenario
        self.on_step = on_step
        self.steps: dict[str, Step] = {s.name: s for s in self.STEP_TABLE}
        self.done: set[str] = set()
        self.failures: dict[str, str] = {}
        self.skipped: dict[str, str] = {}
        self.errors: dict[str, BaseException] = {}
        self.fleet: Fleet | None = None
        self.envelope_: Envelope | None = None
        self.uncontrolled_: SocResult | None = None
        self.network_: NetworkSection | None = None
        self.feeder_: Feeder | None = None
        self.feeder_notes: tuple[str, ...] = ()
        self.base_load_: tuple[FloatArray, FloatArray] | None = None
        self.p_ev_bus_kw: FloatArray | None = None
        self.feeder_fleet: Fleet | None = None
        self.feeder_ts: FeederTimeSeries | None = None
        self.hosting_: tuple[HostingResult, HostingResult | None, FleetHostingResult] | None = None
        self.dispatch_: DispatchComparison | None = None
        self.frequency_: FrequencyAnalysis | None = None
        self.agc_: AgcAnalysis | None = None
        self.cyber_path_: PathAnalysis | None = None
        self.reserve_: tuple[ReserveResult, DemandResponseResult] | None = None
        self.cascade_: dict[str, CascadeResult] | None = None
        self.markets_: tuple[dict[str, Any], StackelbergAnalysis, BidAnalysis] | None = None
        self.schedule_: tuple[ScheduleAnalysis, RobustAnalysis] | None = None
        self.cyber_: CyberRun | None = None
        self.battery_cost_: DegradationCost | None = None
        self.battery_: BatteryHealthAnalysis | None = None
        self.protection_: ProtectionAnalysis | None = None
        self.resilience_: ResilienceAnalysis | None = None
        # The network's operating envelopes (one per feeder) and, flattened with the EVs' places, the limits
        # every service is sold within; None / empty: services unconstrained.
        self.envelopes_: tuple[Any, ...] = ()
        self.network_limits_: NetworkLimits | None = None
        self.network_schedule_: NetworkScheduleAnalysis | None = None
        self.network_battery_: NetworkBattery | None = None
        self.compliance_: AuditResult | None = None
        self.timings_s: dict[str, float] = {}

    def run(self, targets: Iterable[str] | None = None) -> StudyResult:
        """Run the steps ``targets`` (step names, or one name) need (None: every step), each once, and return the
        result.

        A step that raises is recorded in ``failures`` (its traceback is logged at DEBUG) and the steps that
        need it are recorded in ``skipped``; the others still run. Steps that already ran (or failed) on this
        chain are not run again. A target that is one step of a result section (e.g. ``hosting`` of the feeder
        section) runs every step of that section (:data:`SECTION_STEPS`), so the section it was asked for is in
        the result; every section whose steps did not all run is None.

        Raises
        ------
        StudyGraphError
            A target is not a step.
        """
        asked = [targets] if isinstance(targets, str) else targets
        if asked is not None:  # a section is filled only from all its steps: asking for one asks for its section
            asked = list(dict.fromkeys(n for t in asked for n in _section_of(t, self.SECTION_STEPS)))
        plan = plan_steps(self.steps, self.STEPS, asked)
        for i, name in enumerate(plan):
            if self.on_step is not None:
                self.on_step(name, i, len(plan))
            self._run_step(name)
        return self.result()

    def get(self, step: str) -> Any:
        """Run ``step`` and what it needs, and return its first product (e.g. ``get("losses")`` is the
        dispatch comparison; ``None`` for a step with nothing to do, e.g. ``network`` without [network]).

        Raises
        ------
        V2GTwinError
            The step, or one it needs, failed on bad input (:func:`~v2gtwin.study_graph.is_bad_input`: the CLI
            exits 2); the original error is raised again.
        StepFailedError
            It failed with any other error (the computation failed: the CLI exits 1); the original is its cause.
        StudyGraphError
            ``step`` is not a step.
        """
        for name in plan_steps(self.steps, self.STEPS, [step]):
            self._run_step(name)
            if name in self.errors:
                exc = self.errors[name]
                if is_bad_input(exc):
                    raise exc
                raise StepFailedError(f"step {name} failed: {self.failures[name]}") from exc
        return getattr(self, self.steps[step].produces[0])

    def _run_step(self, name: str) -> None:
        if name in self.done or name in self.failures:
            return
        why = skip_reason(self.steps[name], self.failures, self.skipped)
        if why is not None:
            self.skipped[name] = why
            logger.info("step %s skipped: %s", name, why)
            return
        self.skipped.pop(name, None)
        t0 = time.perf_counter()
        try:
            getattr(self, name)()
        except Exception as exc:
            # Every Exception, MemoryError included (a failed allocation in one step of a huge study leaves the
            # process able to finish the others and write the report); KeyboardInterrupt and SystemExit stop it.
            self.failures[name] = describe_error(exc)
            logger.info("step %s failed: %s", name, self.failures[name])
            logger.debug("step %s traceback", name, exc_info=exc)
            # Kept without its traceback: the frames hold the step's arrays (gigabytes in a 1,000,000-EV study).
            self.errors[name] = drop_tracebacks(exc)
        else:
            self.done.add(name)
        finally:
            self.timings_s[name] = time.perf_counter() - t0
            logger.debug("step %s took %.3f s", name, self.timings_s[name])

    # --- steps -------------------------------------------------------------------------------------------
    def build_fleet(self) -> None:
        self.fleet = build_fleet(self.scenario)

    def envelope(self) -> None:
        self.envelope_ = calc_envelope(self._fleet())

    def uncontrolled(self) -> None:
        self.uncontrolled_ = run_uncontrolled(self._fleet())

    def network(self) -> None:
        """The fleet on its network of feeders (scenario ``[network]``): build the feeders, place the EVs by
        load share (each EV's ``bus`` becomes its bus within its feeder), the day's power flows per feeder and
        the operating envelopes."""
        sc = self.scenario
        if sc.network is None:
            return
        net = build_network(sc.network, self._fleet(), sc.time, sc.seed)
        self.fleet = net.place(self._fleet())
        unc = self._require(self.uncontrolled_, "uncontrolled")
        self.network_ = run_network_analysis(sc.network, net, self.fleet, unc.p_kw, sc.time)
        self.envelopes_ = self.network_.envelopes
        if sc.network.secure:  # every service is sold within the feeders' operating envelopes
            self.network_limits_ = lim = build_network_limits(self.envelopes_, net.ev_feeder, net.ev_bus)
            # The fleet's outer, inner and network-secure inner virtual batteries, per feeder and summed.
            self.network_battery_ = calc_network_battery(
                self.fleet, lim.ev_node, lim.node_feeder, lim.feeder_names, lim.p_import_max_kw, lim.p_export_max_kw
            )

    def feeder(self) -> None:
        spec, fleet = self.scenario.feeder, self._fleet()
        unc = self._require(self.uncontrolled_, "uncontrolled")
        if self.scenario.network is not None:
            # The single-feeder detail studies run on the network's first feeder and the EVs placed on it.
            section: NetworkSection = self._require(self.network_, "network")
            net, k = section.network, section.detail_feeder
            self.feeder_ = feeder = net.feeders[k]
            self.base_load_ = p, q = net.p_base_kw[k], net.q_base_kvar[k]
            idx = net.evs_of(k)
            fleet, p_ev = fleet.subset(idx), unc.p_kw[:, idx]
            self.feeder_notes = (
                f"feeder {k + 1} of the network's {net.n_feeders} ({feeder.name}), with its {idx.size} of the "
                f"fleet's {net.ev_feeder.size} EVs; [feeder] name, synthetic_n_bus, peak_load_scale, ampacity_a "
                "and fleet_share are not used (the [network] section sets them)",
                *feeder.notes,
            )
            self._feeder_flows(feeder, fleet, p_ev, p, q)
            return
        self.feeder_ = feeder = build_feeder(spec, self.scenario.seed)
        self.feeder_notes = feeder.notes  # where its ratings come from (none in the published 33-bus case)
        if spec.base_load_csv is None:
            self.base_load_ = p, q = calc_base_load(feeder, spec, self.scenario.time)
        else:  # the user's own total, spread over the buses by their nominal loads
            from v2gtwin.data_in import read_base_load_csv, spread_base_load

            total = read_base_load_csv(spec.base_load_csv, self.scenario.time)
            self.base_load_ = p, q = spread_base_load(total, feeder.p_load_kw, feeder.q_load_kvar)
            self.feeder_notes = (
                *self.feeder_notes,
                f"base load from {spec.base_load_csv} (feeder total spread over the buses by their nominal loads; "
                "peak_load_scale not used)",
            )
        p_ev = unc.p_kw
        if spec.fleet_share < 1.0:
            # A representative part of the fleet charges on this feeder: a seeded sample of its EVs.
            rng = np.random.default_rng([self.scenario.seed, 11])
            keep = np.sort(rng.choice(fleet.n, size=max(1, round(spec.fleet_share * fleet.n)), replace=False))
            fleet, p_ev = fleet.subset(keep), unc.p_kw[:, keep]
        self._feeder_flows(feeder, fleet, p_ev, p, q)

    def _feeder_flows(self, feeder: Feeder, fleet: Fleet, p_ev: FloatArray, p: FloatArray, q: FloatArray) -> None:
        spec = self.scenario.feeder
        self.feeder_fleet = fleet
        self.p_ev_bus_kw = calc_bus_power_kw(fleet, p_ev, feeder.n_bus)
        s_inv = calc_bus_power_kw(fleet, calc_plugged(fleet) * fleet.p_charge_max_kw, feeder.n_bus) * spec.s_over_p
        self.feeder_ts = run_feeder_timeseries(feeder, p, q, self.p_ev_bus_kw, s_inv, spec)

    def hosting(self) -> None:
        p, q = self._require(self.base_load_, "feeder")
        feeder = self._require(self.feeder_, "feeder")
        p_ev = self._require(self.p_ev_bus_kw, "feeder")
        self.hosting_ = run_hosting_analysis(feeder, p, q, p_ev, self.scenario.feeder)

    def losses(self) -> None:
        fleet = self._require(self.feeder_fleet, "feeder")
        p, q = self._require(self.base_load_, "feeder")
        self.dispatch_ = run_dispatch_comparison(
            self._require(self.feeder_, "feeder"),
            p,
            q,
            fleet.bus,
            fleet.arrival_step,
            fleet.departure_step,
            calc_ev_energy_need_kwh(fleet),
            fleet.p_charge_max_kw,
            fleet.dt_s,
            self.scenario.seed,
        )

    def protection(self) -> None:
        # Fault currents and relay coordination of the feeder, without and with its V2G chargers; the relays'
        # largest load current includes the fleet's uncontrolled charging.
        fleet = self._require(self.feeder_fleet, "feeder")
        p, q = self._require(self.base_load_, "feeder")
        p_ev = self._require(self.p_ev_bus_kw, "feeder")
        sc = self.scenario
        self.protection_ = run_protection_analysis(
            self._require(self.feeder_, "feeder"),
            sc.protection,
            fleet.bus,
            fleet.p_discharge_max_kw,
            p + p_ev,
            q,
            s_over_p=sc.feeder.s_over_p,
        )

    def frequency(self) -> None:
        sc = self.scenario
        unc = self._require(self.uncontrolled_, "uncontrolled")
        self.frequency_ = run_frequency_analysis(self._fleet(), unc, sc.frequency, sc.time, sc.seed)

    def cyber_path(self) -> None:
        """The command path (scenario ``[cyber]``) against the services' deadlines; its delays feed ``agc``."""
        from v2gtwin.cyber.path_study import run_path_study

        self.cyber_path_ = run_path_study(self.scenario)

    def agc(self) -> None:
        sc = self.scenario
        unc = self._require(self.uncontrolled_, "uncontrolled")
        # The fleet's AGC and regulation response arrives after the command path's delay (landed commands).
        delays = 0.0 if self.cyber_path_ is None else self.cyber_path_.samples_s
        self.agc_ = run_agc_analysis(
            self._fleet(), unc, sc.frequency, sc.time, sc.seed, limits=self.network_limits_, delay_s=delays
        )

    def reserve(self) -> None:
        sc = self.scenario
        unc = self._require(self.uncontrolled_, "uncontrolled")
        self.reserve_ = run_reserve_dr_analysis(self._fleet(), unc, sc.frequency, sc.time, self.network_limits_)

    def cascade(self) -> None:
        sc = self.scenario
        unc = self._require(self.uncontrolled_, "uncontrolled")
        self.cascade_ = run_cascade_analysis(self._fleet(), unc, sc.frequency, sc.time, sc.seed)

    def battery_cost(self) -> None:
        """The battery's cost per MWh discharged, per EV: what the markets and schedules price V2G at."""
        from v2gtwin.battery.cost import degradation_cost_per_mwh

        unc = self._require(self.uncontrolled_, "uncontrolled")
        self.battery_cost_ = degradation_cost_per_mwh(self.scenario, self._fleet(), unc.soc_pu)

    def _degradation(self) -> tuple[Any, float, str]:
        """(per-EV cost, the fleet's one cost, its source): the battery_cost step's, which must have run (the
        markets and schedules are never priced with a silent default)."""
        c = self._require(self.battery_cost_, "battery_cost")
        from v2gtwin.markets.scheduling import calc_fleet_degradation_per_mwh

        return c.per_ev_per_mwh, calc_fleet_degradation_per_mwh(self._fleet(), c.per_ev_per_mwh), c.source

    def markets(self) -> None:
        sc, fleet = self.scenario, self._fleet()
        unc = self._require(self.uncontrolled_, "uncontrolled")
        limits = self.network_limits_
        deg, deg_fleet, _ = self._degradation()
        self.markets_ = (
            run_market_analysis(fleet, unc, sc.markets, sc.time, limits, deg),
            run_stackelberg_analysis(fleet, sc.markets, sc.seed, deg),
            gate_bid_by_path(run_bid_analysis_within(sc, limits, deg_fleet), self._path_verdict(SERVICE_REGULATION)),
        )

    def _path_verdict(self, service: str) -> dict[str, Any] | None:
        """The command path's verdict on ``service`` (None when the cyber_path step did not run)."""
        return None if self.cyber_path_ is None else self.cyber_path_.verdict(service)

    def schedule(self) -> None:
        sc, fleet = self.scenario, self._fleet()
        unc = self._require(self.uncontrolled_, "uncontrolled")
        p_base, _ = self._require(self.base_load_, "feeder")
        deg, _, source = self._degradation()
        fleet_wide = run_schedule_analysis(
            fleet, unc, sc.markets, sc.time, sc.seed, sc.currency, degradation_per_mwh=deg, degradation_source=source
        )
        self.schedule_ = (
            fleet_wide,
            # The site is the feeder: its base load and the EVs charging on it.
            run_robust_analysis(
                self._require(self.feeder_fleet, "feeder"),
                p_base.sum(axis=1),
                sc.markets,
                sc.time,
                sc.seed,
                sc.currency,
            ),
        )
        self.network_schedule_ = self.run_network_schedule(fleet_wide)

    def run_network_schedule(self, fleet_wide: ScheduleAnalysis) -> NetworkScheduleAnalysis | None:
        """With services sold within the network (after the network step): the day-ahead schedule on the
        feeders, unconstrained and within their linearised limits, under the import cap split among them, and
        ``fleet_wide`` (the network-blind schedule) through every feeder's exact power flow; None otherwise."""
        sc = self.scenario
        if self.network_limits_ is None or self.network_ is None or sc.network is None:
            return None
        net = self.network_.network
        return run_network_schedule_analysis(
            self._fleet(),
            net.linear_models(),
            net.ev_feeder,
            net.ev_bus,
            sc.markets,
            sc.time,
            v_min_pu=sc.network.v_min_pu,
            v_max_pu=sc.network.v_max_pu,
            currency=sc.currency,
            fleet_wide=fleet_wide,
            degradation_per_mwh=self._degradation()[0],
        )

    def battery(self) -> None:
        """The fleet's capacity fade uncontrolled vs under the schedule, and the schedule and V2G offer priced
        by the battery models and by the flat placeholder."""
        from v2gtwin.battery.health import run_battery_health_analysis

        schedule, _ = self._require(self.schedule_, "schedule")
        market = self._require(self.markets_, "markets")[0]
        self.battery_ = run_battery_health_analysis(
            self.scenario,
            self._fleet(),
            self._require(self.uncontrolled_, "uncontrolled"),
            self._require(self.battery_cost_, "battery_cost"),
            schedule,
            market,
        )

    def resilience(self) -> None:
        sc = self.scenario
        p, q = self._require(self.base_load_, "feeder")
        self.resilience_ = run_resilience_analysis(
            self._fleet(),
            self._require(self.uncontrolled_, "uncontrolled"),
            sc.resilience,
            sc.time,
            sc.seed,
            feeder=self.feeder_,
            p_base_kw=p,
            q_base_kvar=q,
            v_limits_pu=(sc.feeder.v_min_pu, sc.feeder.v_max_pu)
            if sc.network is None
            else (sc.network.v_min_pu, sc.network.v_max_pu),
        )

    def cyber(self) -> None:
        n = self.scenario.cyber.n_stations
        if n > 0:
            # Imported here: the central system's stack (websockets, ocpp, SQLAlchemy) loads only when used.
            from v2gtwin.cyber.fleet_link import run_dispatch_demo

            self.cyber_ = run_dispatch_demo(self._fleet(), n, self.scenario.seed)

    def compliance(self) -> None:
        """IEEE 1547-2018 audit of the study's own V2G inverters, with the trip, droop and volt-var settings the
        frequency, cascade and feeder steps simulate (the legacy group fails on purpose: see the notes)."""
        from v2gtwin.compliance.audit import run_audit
        from v2gtwin.compliance.study_assets import build_study_register, study_notes

        register = build_study_register(self.scenario, self._fleet())
        self.compliance_ = run_audit(register, ("ieee1547",), study_notes(self.scenario))

    # --- assembly ----------------------------------------------------------------------------------------
    @staticmethod
    def _require(value: Any, step: str) -> Any:
        if value is None:
            raise RuntimeError(f"step {step} must run first")
        return value

    def _fleet(self) -> Fleet:
        if self.fleet is None:
            raise RuntimeError("build_fleet must run first")
        return self.fleet

    def _ran(self, section: str) -> bool:
        """Whether every step the result's ``section`` is built from ran."""
        return all(n in self.done for n in self.SECTION_STEPS[section])

    def result(self) -> StudyResult:
        """Assemble the :class:`StudyResult` from the steps that ran; a section whose steps did not all run is
        None, and every step that did not run is named in ``failures`` or ``skipped`` with why."""
        fleet_section = feeder_section = services = markets = None
        if self._ran("fleet"):
            env, unc = self.envelope_, self.uncontrolled_
            assert env is not None and unc is not None
            fleet_section = build_fleet_section(self.scenario, self._fleet(), env, unc)
        if self._ran("feeder"):
            feeder_section = self._feeder_section()
        if self._ran("services"):
            reserve, dr = self._require(self.reserve_, "reserve")
            services = ServicesSection(
                frequency=self._require(self.frequency_, "frequency"),
                agc=self._require(self.agc_, "agc"),
                reserve=reserve,
                dr=dr,
                cascade=self._require(self.cascade_, "cascade"),
                step_mw=self.scenario.frequency.step_mw,
                path_verdicts={
                    k: v
                    for k, name in (("reserve", SERVICE_RESERVE), ("dr", SERVICE_DR))
                    if (v := self._path_verdict(name))
                },
            )
        if self._ran("markets"):
            market, stackelberg, bid = self._require(self.markets_, "markets")
            schedule, robust = self._require(self.schedule_, "schedule")
            markets = MarketsSection(market, stackelberg, bid, schedule, robust, self.network_schedule_)
        skipped = {n: NOT_ASKED for n in self.STEPS if n not in self.done and n not in self.failures}
        skipped |= {n: why for n, why in self.skipped.items() if n not in self.done}
        ran = self._ran  # a step that failed half-way may have set some of its products: never shown
        return StudyResult(
            scenario=self.scenario,
            fleet=fleet_section,
            feeder=feeder_section,
            services=services,
            markets=markets,
            cyber=self.cyber_ if ran("cyber") else None,
            network=self.network_ if ran("network") else None,
            timings_s=dict(self.timings_s),
            protection=self.protection_ if ran("protection") else None,
            resilience=self.resilience_ if ran("resilience") else None,
            network_battery=self.network_battery_ if ran("network_battery") else None,
            battery=self.battery_ if ran("battery") else None,
            cyber_path=self.cyber_path_ if ran("cyber_path") else None,
            compliance=self.compliance_ if ran("compliance") else None,
            failures=dict(self.failures),
            skipped={n: skipped[n] for n in self.STEPS if n in skipped},
        )

    def _feeder_section(self) -> FeederSection:
        feeder = self._require(self.feeder_, "feeder")
        p_base, _ = self._require(self.base_load_, "feeder")
        plain, vv, fleet_host = self._require(self.hosting_, "hosting")
        return FeederSection(
            name=feeder.name,
            n_bus=feeder.n_bus,
            bus_labels=feeder.bus_labels,
            p_base_total_kw=p_base.sum(axis=1),
            p_ev_total_kw=self._require(self.p_ev_bus_kw, "feeder").sum(axis=1),
            timeseries=self._require(self.feeder_ts, "feeder"),
            hosting=plain,
            hosting_voltvar=vv,
            fleet_hosting=fleet_host,
            dispatch=self._require(self.dispatch_, "losses"),
            parent=feeder.parent,
            envelopes=self.envelopes_,
            notes=self.feeder_notes,
            r_ohm=feeder.r_ohm,
            x_ohm=feeder.x_ohm,
        )


def _section_of(step: str, sections: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    """``step`` and the other steps of every result section it belongs to (``step`` alone when in none)."""
    out = [step]
    for names in sections.values():
        if step in names:
            out.extend(names)
    return tuple(dict.fromkeys(out))
