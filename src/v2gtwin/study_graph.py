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

from v2gtwin.errors import V2GTwinError

__all__ = [
    "NOT_ASKED",
    "Step",
    "StudyGraphError",
    "check_steps",
    "describe_error",
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
    produces : the chain attributes it sets (what later steps and the result read).
    doc : one line for people (the table in docs/ARCHITECTURE.md).
    """

    name: str
    needs: tuple[str, ...]
    produces: tuple[str, ...]
    doc: str = ""


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


def skip_reason(step: Step, failures: Mapping[str, str], skipped: Mapping[str, str]) -> str | None:
    """Why ``step`` cannot run (one line naming the failed step at the root), or None when every need ran."""
    for need in step.needs:
        if need in failures:
            return f"needs {need}, which failed"
        if need in skipped:
            return f"needs {need}, which {skipped[need]}"
    return None
