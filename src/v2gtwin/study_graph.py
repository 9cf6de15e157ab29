"""The study's steps as a graph: each step declares the steps it needs and what it produces; asking for some
results runs exactly the steps they need, each once, in an order derived from the needs.

This module holds the declarative side (:class:`Step`, :func:`check_steps`, :func:`plan_steps`) and the one-line
record of a failed step (:func:`describe_error`, :func:`skip_reason`); :class:`v2gtwin.study.StudyChain` runs the
plan and keeps what each step produced.
"""

from __future__ import annotations

import graphlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from v2gtwin.errors import ConvergenceError, InfeasibleError, StepFailedError, V2GTwinError

__all__ = [
    "NOT_ASKED",
    "SECTION_STEPS",
    "STUDY_STEPS",
    "Step",
    "StudyGraphError",
    "check_steps",
    "describe_error",
    "drop_tracebacks",
    "is_bad_input",
    "plan_steps",
    "skip_reason",
]

#: Why a step that no target needs did not run.
NOT_ASKED = "not asked for"


class StudyGraphError(V2GTwinError, ValueError):
    """A study graph is malformed (a cycle, a need that is no step) or a target is not one of its steps."""


@dataclass(frozen=True)
class Step:
    """One step of the study.

    Attributes
    ----------
    name : the step's name (also the :class:`~v2gtwin.study.StudyChain` method that performs it).
    needs : the steps whose products it reads.
    produces : the chain attributes it sets (what later steps and the result read); the first is what
        :meth:`v2gtwin.study.StudyChain.get` returns.
    doc : one line for people (the table in docs/ARCHITECTURE.md).
    """

    name: str
    needs: tuple[str, ...]
    produces: tuple[str, ...]
    doc: str = ""


#: The study's steps: what each needs (the steps whose products it reads, hand-checked against its method in
#: study.py) and produces (the :class:`~v2gtwin.study.StudyChain` attributes it sets), in the order of today's study.
STUDY_STEPS: tuple[Step, ...] = (
    Step("build_fleet", (), ("fleet",), "the scenario's fleet (synthetic, ACN sessions)"),
    Step("envelope", ("build_fleet",), ("envelope_",), "the fleet's power and energy envelope"),
    Step("uncontrolled", ("build_fleet",), ("uncontrolled_",), "uncontrolled charging (SoC per EV)"),
    Step(
        "network",
        ("build_fleet", "uncontrolled"),
        ("network_", "envelopes_", "network_limits_", "network_battery_", "fleet"),
        "the fleet placed on its network of feeders, their power flows and operating envelopes (no-op "
        "without [network])",
    ),
    Step(
        "feeder",
        ("build_fleet", "uncontrolled", "network"),
        ("feeder_", "feeder_notes", "base_load_", "p_ev_bus_kw", "feeder_fleet", "feeder_ts"),
        "the detail feeder's day of power flows (base, with the fleet, with volt-var)",
    ),
    Step("hosting", ("feeder",), ("hosting_",), "hosting capacity per node and of the fleet"),
    Step("losses", ("feeder",), ("dispatch_",), "loss-aware vs uniform vs random charging"),
    Step("protection", ("feeder",), ("protection_",), "fault currents and relay coordination"),
    Step("frequency", ("build_fleet", "uncontrolled"), ("frequency_",), "primary frequency response"),
    Step("cyber_path", (), ("cyber_path_",), "the command path against the services' deadlines"),
    Step(
        "agc",
        ("build_fleet", "uncontrolled", "network", "cyber_path"),
        ("agc_",),
        "AGC and regulation, delayed by the command path",
    ),
    Step("reserve", ("build_fleet", "uncontrolled", "network"), ("reserve_",), "reserve and demand response"),
    Step("cascade", ("build_fleet", "uncontrolled"), ("cascade_",), "under-frequency cascade"),
    Step("battery_cost", ("build_fleet", "uncontrolled"), ("battery_cost_",), "V2G degradation cost per EV"),
    Step(
        "markets",
        ("build_fleet", "uncontrolled", "network", "battery_cost", "cyber_path"),
        ("markets_",),
        "TOU vs RTP, Stackelberg prices, regulation bid",
    ),
    Step(
        "schedule",
        ("build_fleet", "uncontrolled", "network", "feeder", "battery_cost"),
        ("schedule_", "network_schedule_"),
        "day-ahead and robust schedules (and on the network's feeders)",
    ),
    Step(
        "battery",
        ("build_fleet", "uncontrolled", "battery_cost", "markets", "schedule"),
        ("battery_",),
        "capacity fade uncontrolled vs scheduled",
    ),
    Step(
        "resilience",
        ("build_fleet", "uncontrolled", "feeder"),
        ("resilience_",),
        "a critical facility through an outage",
    ),
    Step("cyber", ("build_fleet",), ("cyber_",), "dispatch through the OCPP central system"),
    Step("compliance", ("build_fleet",), ("compliance_",), "IEEE 1547-2018 audit of the study's inverters"),
)

#: Which steps each section of :class:`~v2gtwin.study_result.StudyResult` is built from (None when one did not run).
SECTION_STEPS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "fleet": ("build_fleet", "envelope", "uncontrolled"),
        "feeder": ("feeder", "hosting", "losses"),
        "services": ("frequency", "agc", "reserve", "cascade"),
        "markets": ("markets", "schedule"),
        "network": ("network",),
        "network_battery": ("network",),
        "protection": ("protection",),
        "resilience": ("resilience",),
        "battery": ("battery",),
        "cyber_path": ("cyber_path",),
        "cyber": ("cyber",),
        "compliance": ("compliance",),
    }
)


def check_steps(steps: Iterable[Step]) -> tuple[str, ...]:
    """Check a table of steps and return their names in a valid order (needs first; among the steps ready at
    once, the table's order).

    Raises
    ------
    StudyGraphError
        Two steps share a name, a step needs a step not in the table, or the needs form a cycle.
    """
    table = list(steps)
    names = [s.name for s in table]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise StudyGraphError(f"study steps: duplicate step names {dup}")
    known = set(names)
    for s in table:
        if missing := [n for n in s.needs if n not in known]:
            raise StudyGraphError(f"study step {s.name}: needs {missing}, which are not steps ({sorted(known)})")
    return _order({s.name: s.needs for s in table}, names)


def _order(needs: Mapping[str, tuple[str, ...]], preference: list[str]) -> tuple[str, ...]:
    """Topological order of ``needs`` (a name's needs come before it), ties broken by ``preference``."""
    rank = {n: i for i, n in enumerate(preference)}
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter(needs)
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        cycle = " -> ".join(exc.args[1]) if len(exc.args) > 1 else "?"
        raise StudyGraphError(f"study steps: the needs form a cycle ({cycle})") from None
    out: list[str] = []
    ready: list[str] = []
    while sorter.is_active():
        ready = sorted([*ready, *sorter.get_ready()], key=rank.__getitem__)
        name = ready.pop(0)
        out.append(name)
        sorter.done(name)
    return tuple(out)


def plan_steps(steps: Mapping[str, Step], order: tuple[str, ...], targets: Iterable[str] | None) -> tuple[str, ...]:
    """The steps ``targets`` need (themselves included), in ``order``; None: every step.

    Raises
    ------
    StudyGraphError
        A target is not a step (the message lists the steps).
    """
    if targets is None:
        return order
    wanted: set[str] = set()
    stack = list(targets)
    if bad := [t for t in stack if t not in steps]:
        raise StudyGraphError(f"study target {bad[0]!r}: not a step; one of {', '.join(order)}")
    while stack:
        name = stack.pop()
        if name not in wanted:
            wanted.add(name)
            stack.extend(steps[name].needs)
    return tuple(n for n in order if n in wanted)


def describe_error(exc: BaseException) -> str:
    """A failed step's record: ``"ErrorType: first line of the message"`` (one line)."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def drop_tracebacks(exc: BaseException) -> BaseException:
    """``exc`` with the tracebacks of it and of the errors it was raised from or during set to None (returned, for
    keeping): a traceback holds the frames of the failed step and every array they refer to."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        e.__traceback__ = None
        e = e.__cause__ or e.__context__
    return exc


def is_bad_input(exc: BaseException) -> bool:
    """Whether a step's error is bad input — one of v2gtwin's own errors about a scenario value or an input file,
    which the user must fix (the CLI exits 2) — rather than a computation that failed on valid input (a solver
    that did not converge, an infeasible optimisation, any other exception: the CLI exits 1)."""
    computation = (ConvergenceError, InfeasibleError, StepFailedError)
    return isinstance(exc, V2GTwinError) and not isinstance(exc, computation)


def skip_reason(step: Step, failures: Mapping[str, str], skipped: Mapping[str, str]) -> str | None:
    """Why ``step`` cannot run (one line naming the failed step at the root), or None when every need ran."""
    for need in step.needs:
        if need in failures:
            return f"needs {need}, which failed"
        if need in skipped:
            return f"needs {need}, which {skipped[need]}"
    return None
