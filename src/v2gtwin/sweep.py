"""Parameter sweeps: the study (or the steps one result needs) over a Cartesian grid of scenario values.

A sweep is planned, then run:

- :func:`parse_param` reads one ``KEY=V1,V2,...`` (``fleet.n_evs=1000,10000``); :func:`plan_sweep` derives every
  scenario of the grid from a base scenario and validates all of them before any work, so that a bad key or
  value is one error naming it (:class:`~v2gtwin.errors.ScenarioError`), and nothing is run or written;
- :func:`v2gtwin.sweep_run.run_sweep` (module ``sweep_run``, which imports dask) sends one task per scenario to
  dask.distributed workers, stores each row as it arrives and gathers them into one Parquet table.

This module imports neither dask nor the study's numeric stack: :func:`run_case`, the task a worker runs,
imports the study when it runs.

A row holds the scenario's id (:func:`calc_scenario_id`), the swept values, ``status`` ("ok": every step asked
for ran; "failed": the study or one of its steps failed, with ``error`` and ``steps_failed``; "lost": the worker
died or the task was cancelled, rerun on resume), the wall time and the key indicators of the result.
"""

from __future__ import annotations

import itertools
import json
import math
import time
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from datetime import time as clock_time
from typing import TYPE_CHECKING, Any

from v2gtwin.errors import ScenarioError

if TYPE_CHECKING:
    from v2gtwin.scenario import Scenario
    from v2gtwin.study_result import StudyResult

__all__ = [
    "STATUS_FAILED",
    "STATUS_LOST",
    "STATUS_OK",
    "SweepCase",
    "SweepParam",
    "SweepPlan",
    "calc_scenario_id",
    "check_target",
    "derive_scenario",
    "parse_param",
    "plan_sweep",
    "run_case",
]

STATUS_OK = "ok"
STATUS_FAILED = "failed"
STATUS_LOST = "lost"

#: Hex digits of the scenario id (64 bits of SHA-256: a collision among a million scenarios has odds ~3e-8).
SCENARIO_ID_HEX = 16


@dataclass(frozen=True)
class SweepParam:
    """One swept scenario key and its values.

    Attributes
    ----------
    key : dotted path of the scenario field, e.g. ``fleet.n_evs`` (an integer segment indexes a list:
        ``network.feeders.0.count``).
    values : the values, in the order given (TOML values: numbers, booleans, quoted strings, [lists];
        anything else is taken as a bare string, e.g. ``ieee33``).
    text : the ``--param`` text it was read from (for messages).
    """

    key: str
    values: tuple[Any, ...]
    text: str

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(self.key.split("."))


@dataclass(frozen=True)
class SweepCase:
    """One scenario of the grid.

    Attributes
    ----------
    index : position in the grid (the first ``--param`` varies slowest) [-].
    params : the swept values as the validated scenario holds them, by key.
    scenario : the derived, validated scenario.
    scenario_id : :func:`calc_scenario_id` of it.
    """

    index: int
    params: dict[str, Any]
    scenario: Scenario
    scenario_id: str


@dataclass(frozen=True)
class SweepPlan:
    """A validated sweep: the base scenario's source, the swept parameters, the target and every case."""

    source: str
    params: tuple[SweepParam, ...]
    target: str | None
    cases: tuple[SweepCase, ...]

    @property
    def n_unique(self) -> int:
        """Distinct scenarios (two grid points may derive the same scenario: it runs once) [-]."""
        return len({c.scenario_id for c in self.cases})


# --- reading --param ---------------------------------------------------------------------------------------
def _split_top_level(text: str) -> list[str]:
    """Split at commas outside brackets and quotes: ``1,[2,3],'a,b'`` -> ``['1', '[2,3]', "'a,b'"]``."""
    parts: list[str] = []
    depth, quote, start = 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _parse_value(token: str) -> Any:
    """A TOML value (``1000``, ``0.8``, ``true``, ``'x'``, ``[40, 60]``), else the token as a bare string.

    A TOML date or time (``2019-07-09``) stays a string: scenario fields hold dates as text.
    """
    try:
        value = tomllib.loads(f"v = {token}")["v"]
    except tomllib.TOMLDecodeError:
        return token
    if isinstance(value, (date, datetime, clock_time)):
        return token
    return value


def parse_param(text: str) -> SweepParam:
    """Read one ``--param KEY=V1,V2,...``.

    Raises
    ------
    ScenarioError
        No ``=``, an empty or malformed key (``a..b``), no values or an empty value (``a.b=``, ``a.b=1,,2``),
        or a value given twice.
    """
    key, sep, rest = text.partition("=")
    key = key.strip()
    where = f"--param {text!r}"
    if not sep:
        raise ScenarioError(f"{where}: expected KEY=V1,V2,... (e.g. fleet.n_evs=1000,10000)")
    if not key or any(not seg.strip() or seg != seg.strip() for seg in key.split(".")):
        raise ScenarioError(f"{where}: the key must be a dotted scenario path such as fleet.n_evs")
    tokens = [t.strip() for t in _split_top_level(rest)]
    if not rest.strip():
        raise ScenarioError(f"{where}: no values after '='; give at least one (KEY=V1,V2,...)")
    if any(not t for t in tokens):
        raise ScenarioError(f"{where}: an empty value between commas")
    values = tuple(_parse_value(t) for t in tokens)
    seen: list[Any] = []
    for token, value in zip(tokens, values, strict=True):
        if any(type(value) is type(s) and value == s for s in seen):
            raise ScenarioError(f"{where}: the value {token} is given twice")
        seen.append(value)
    return SweepParam(key=key, values=values, text=text)


# --- deriving scenarios ------------------------------------------------------------------------------------
def _list_index(node: list[Any], seg: str, where: str, at: tuple[str, ...]) -> int:
    """``seg`` as an index of the list at ``at``; else a :class:`ScenarioError` naming the entries it has."""
    if not seg.isdigit() or int(seg) >= len(node):
        raise ScenarioError(f"{where}: {'.'.join(at)}: no entry {seg} (the list has {len(node)}: 0 to {len(node) - 1})")
    return int(seg)


def _set_path(data: dict[str, Any], path: tuple[str, ...], value: Any, where: str) -> None:
    """Set ``data[path] = value`` in a scenario's dict (a missing section is created; pydantic names unknown
    keys); an integer segment indexes a list."""
    node: Any = data
    for depth, seg in enumerate(path[:-1]):
        here = ".".join(path[: depth + 1])
        if isinstance(node, list):
            node = node[_list_index(node, seg, where, path[:depth])]
        elif isinstance(node, dict):
            if node.get(seg) is None:
                if path[depth + 1].isdigit():
                    raise ScenarioError(f"{where}: {here} is not set in the scenario; set its list there first")
                node[seg] = {}
            node = node[seg]
        else:
            raise ScenarioError(f"{where}: {'.'.join(path[:depth])} is a value, not a section with keys")
        if not isinstance(node, (dict, list)):
            raise ScenarioError(f"{where}: {here} is a value, not a section with keys")
    if isinstance(node, list):
        node[_list_index(node, path[-1], where, path[:-1])] = value
    else:
        node[path[-1]] = value


def _get_path(data: Any, path: Sequence[str]) -> Any:
    for seg in path:
        data = data[int(seg)] if isinstance(data, list) else data[seg]
    return data


def derive_scenario(base: Scenario, changes: Mapping[str, Any], source: str) -> Scenario:
    """``base`` with the dotted keys of ``changes`` set, validated like a scenario file (through
    :meth:`Scenario.replace <v2gtwin.scenario.Scenario.replace>`, the one way to derive a scenario).

    Parameters
    ----------
    base : the scenario the sweep starts from.
    changes : values by dotted key (``{"fleet.n_evs": 1000}``; ``{"network.feeders.0.count": 2}``).
    source : names the case in messages (``"scen.toml with fleet.n_evs=0"``).

    Raises
    ------
    ScenarioError
        One line naming ``source``, the field, the value and the allowed range (or the allowed keys).
    """
    data = base.model_dump(mode="json")
    sections: dict[str, Any] = {}
    for key, value in changes.items():
        path = tuple(key.split("."))
        _set_path(data, path, value, source)
        sections[path[0]] = data[path[0]]
    try:
        return base.replace(**sections)
    except ScenarioError as exc:
        raise ScenarioError(f"{source}: {str(exc).removeprefix('Scenario.replace: ')}") from None


def calc_scenario_id(scenario: Scenario) -> str:
    """The scenario's id in a sweep: the first :data:`SCENARIO_ID_HEX` hex digits of its hash
    (:func:`v2gtwin.study_summary.calc_scenario_hash`, the report's: SHA-256 of its canonical JSON), so that
    equal scenarios share an id whichever way they were written."""
    from v2gtwin.study_summary import calc_scenario_hash

    return calc_scenario_hash(scenario)[:SCENARIO_ID_HEX]


def _describe(changes: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in changes.items())


def check_target(target: str, targets_allowed: Iterable[str] | None = None) -> str:
    """``--target``: one step name, or several joined by commas (``envelope,uncontrolled``: the fleet section),
    returned in the order the study runs them, each once.

    Raises
    ------
    ScenarioError
        An empty name or one that is not a step, naming the allowed steps.
    """
    if targets_allowed is None:
        from v2gtwin.study import StudyChain

        targets_allowed = StudyChain.STEPS
    allowed = tuple(targets_allowed)
    names = [n.strip() for n in target.split(",")]
    for n in names:
        if n not in allowed:
            raise ScenarioError(f"--target {target!r}: {n!r} is not a step of the study; allowed: {', '.join(allowed)}")
    return ",".join(a for a in allowed if a in names)


def plan_sweep(
    base: Scenario,
    params: Sequence[SweepParam],
    *,
    target: str | None = None,
    source: str = "<scenario>",
    targets_allowed: Iterable[str] | None = None,
) -> SweepPlan:
    """Every scenario of the grid of ``params`` over ``base``, validated before any work.

    Each value is first checked alone (so that a bad value is named by itself), then every combination (a
    check across fields may reject one).

    Parameters
    ----------
    base : the base scenario. params : the swept keys (:func:`parse_param`); each key at most once.
    target : the results to compute: a step of ``StudyChain.STEPS``, or several joined by commas
        (:func:`check_target`); None: the whole study.
    source : names the base scenario in messages (its file).
    targets_allowed : the step names ``target`` may hold, in the order a study runs them (default:
        ``StudyChain.STEPS``).

    Raises
    ------
    ScenarioError
        No parameter, a key given twice, an unknown target, an unknown key or a value out of range.
    """
    if not params:
        raise ScenarioError("--param: give at least one KEY=V1,V2,... (e.g. --param fleet.n_evs=1000,10000)")
    keys = [p.key for p in params]
    for key in keys:
        if keys.count(key) > 1:
            raise ScenarioError(f"--param {key}: given more than once; list all its values in one --param")
    if target is not None:
        target = check_target(target, targets_allowed)
    for p in params:  # each value alone: the message names the one bad value
        for v in p.values:
            derive_scenario(base, {p.key: v}, f"{source} with {p.key}={json.dumps(v)}")
    cases = []
    for index, combo in enumerate(itertools.product(*(p.values for p in params))):
        changes = dict(zip(keys, combo, strict=True))
        scen = derive_scenario(base, changes, f"{source} with {_describe(changes)}")
        dumped = scen.model_dump(mode="json")
        cases.append(
            SweepCase(
                index=index,
                params={p.key: _get_path(dumped, p.path) for p in params},
                scenario=scen,
                scenario_id=calc_scenario_id(scen),
            )
        )
    return SweepPlan(source=source, params=tuple(params), target=target, cases=tuple(cases))


# --- the task a worker runs --------------------------------------------------------------------------------
def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def calc_row_indicators(result: StudyResult) -> dict[str, Any]:
    """The key indicators of a result as row columns (:func:`v2gtwin.study_summary.calc_kpis`):
    ``{key: value}``, then ``{key + "_passed": passed}`` (None: no value, or no limit)."""
    from v2gtwin.study_summary import calc_kpis

    kpis = calc_kpis(result)
    return {k.key: k.value for k in kpis} | {f"{k.key}_passed": k.passed for k in kpis}


def _run_study(scenario: Scenario, target: str | None) -> StudyResult:
    """The study on ``scenario``: the steps ``target`` (step names joined by commas) needs, or every step."""
    from v2gtwin.study import StudyChain

    return StudyChain(scenario).run(targets=None if target is None else target.split(","))


def run_case(scenario_data: dict[str, Any], target: str | None) -> dict[str, Any]:
    """The task a worker runs: one scenario's study and its row (a small dict; nothing is written).

    Any error in this scenario is its row (``status`` "failed", ``error`` "Type: message"), never the sweep's:
    the scenario is validated again here (a data file it names must be readable on the worker), then the
    study runs. A step that failed inside the study is named in ``steps_failed``. An indicator that is not
    finite fails the row (nothing non-finite is written).

    Parameters
    ----------
    scenario_data : the derived scenario as JSON-ready dict (``model_dump(mode="json")``).
    target : the results to compute (step names joined by commas, :func:`check_target`); None: the whole study.
    """
    t0 = time.perf_counter()
    row: dict[str, Any] = {"status": STATUS_OK, "error": None, "steps_failed": ""}
    try:
        from v2gtwin.scenario import parse_scenario

        scen = parse_scenario(scenario_data, "<sweep case>")
        result = _run_study(scen, target)
        failures = dict(result.failures)
        indicators = calc_row_indicators(result)
        bad = [k for k, v in indicators.items() if isinstance(v, float) and not math.isfinite(v)]
        if bad:
            raise ValueError(f"indicators not finite: {', '.join(f'{k}={indicators[k]}' for k in bad)}")
        row |= indicators
        if failures:
            row["status"] = STATUS_FAILED
            row["steps_failed"] = ",".join(failures)
            row["error"] = "; ".join(f"{step}: {_one_line(msg)}" for step, msg in failures.items())
    except Exception as exc:  # one scenario's failure is its row, never the sweep's (MemoryError included)
        row["status"] = STATUS_FAILED
        row["error"] = f"{type(exc).__name__}: {_one_line(exc)}"
    row["time_s"] = time.perf_counter() - t0
    row["worker"] = _worker_address()
    return row


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return "local"
