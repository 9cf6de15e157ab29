"""Key indicators of a study, each judged against the scenario's limit: the report's summary, results.json's
``summary_kpis`` and a sweep's row per scenario.

Every section of a :class:`~v2gtwin.study_result.StudyResult` may be None (its step failed or was not asked
for); its indicators then carry ``value=None`` and ``passed=None``. A value is never clamped or filled in.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    from v2gtwin.scenario import Scenario
    from v2gtwin.study_result import StudyResult

__all__ = ["SCHEDULE_CAP_RTOL", "Kpi", "calc_kpis", "calc_scenario_hash", "summary_json"]

#: Relative tolerance of the schedule's import against its cap: the LP solvers meet a constraint to about
#: 1e-6 of its size, so a peak above the cap by less than this counts as on the cap [-].
SCHEDULE_CAP_RTOL = 1e-6


@dataclass(frozen=True)
class Kpi:
    """One key indicator of a study.

    Attributes
    ----------
    key : name with its unit, e.g. ``v_min_pu`` (a sweep's column).
    label : for people.
    value : the study's figure in ``unit`` (None: its step failed, was not run, or the figure does not exist
        for this scenario; ``note`` says which).
    unit : "pu", "kW", "%", the scenario's currency, "-".
    limit : the limit it is judged against (None: none).
    passed : the value is within the limit (None: no limit or no value).
    section : anchor id of the report section that explains it.
    limit_kind : "upper" (pass when value <= limit) or "lower" (pass when value >= limit).
    note : why the value is None, or what the limit is (its source); empty when nothing to add.
    """

    key: str
    label: str
    value: float | int | None
    unit: str
    limit: float | None
    passed: bool | None
    section: str
    limit_kind: Literal["upper", "lower"] = "upper"
    note: str = ""


def _kpi(
    key: str,
    label: str,
    value: float | int | None,
    unit: str,
    section: str,
    limit: float | None = None,
    limit_kind: Literal["upper", "lower"] = "upper",
    note: str = "",
    tol: float = 0.0,
) -> Kpi:
    """A Kpi judged against ``limit`` (``tol``: absolute slack allowed beyond it, stated in ``note``)."""
    # A non-finite value is not judged; the strict JSON writer then refuses it, naming where it came from.
    passed: bool | None = None
    if value is not None and limit is not None and np.isfinite(value):
        passed = bool(value <= limit + tol) if limit_kind == "upper" else bool(value >= limit - tol)
    # A count (``n_*``) stays an integer (a JSON integer); every other value is a float.
    val = None if value is None else int(value) if key.startswith("n_") else float(value)
    return Kpi(key, label, val, unit, limit, passed, section, limit_kind, note)


def _missing(step: str, result: StudyResult) -> str:
    """Why a section is None: the failure, skip reason or absence of ``step`` or, when ``step`` itself ran, of the
    other steps of the result section(s) it belongs to (:data:`~v2gtwin.study_graph.SECTION_STEPS`)."""
    from v2gtwin.study_graph import SECTION_STEPS

    fail = getattr(result, "failures", {}) or {}
    skip = getattr(result, "skipped", {}) or {}
    if step in fail:
        return f"step {step} failed: {fail[step]}"
    if step in skip:
        return f"step {step} skipped: {skip[step]}"
    ran = set(getattr(result, "timings_s", {}) or {}) - set(fail)
    if step not in ran:
        return f"step {step} not run"
    why = []  # the step ran: name its section's steps that did not
    for name in dict.fromkeys(n for names in SECTION_STEPS.values() if step in names for n in names):
        if name in fail:
            why.append(f"step {name} failed: {fail[name]}")
        elif name in skip:
            why.append(f"step {name} skipped: {skip[name]}")
        elif name not in ran:
            why.append(f"step {name} not run")
    return "; ".join(why) if why else f"step {step} not run"


def _voltage(result: StudyResult) -> list[Kpi]:
    sc = result.scenario
    label = "lowest bus voltage with uncontrolled EV charging"
    if result.network is not None:  # every feeder of the network, against the network's limit
        s = result.network.summary()
        rows = s["feeders"]
        v_lim = sc.network.v_min_pu if sc.network is not None else sc.feeder.v_min_pu
        n_collapsed = sum(int(r["n_steps_collapsed"]) for r in rows)
        if n_collapsed:
            why = f"voltage collapse: no power-flow solution at {n_collapsed} steps"
            v = _kpi("v_min_pu", label + " (every feeder)", None, "pu", "feeder", v_lim, "lower", why)
            return [replace(v, passed=False)]
        v_min = min(float(r["v_min_uncontrolled_pu"]) for r in rows)
        return [_kpi("v_min_pu", label + " (every feeder)", v_min, "pu", "feeder", v_lim, "lower")]
    if result.feeder is None:
        return [_kpi("v_min_pu", label, None, "pu", "feeder", sc.feeder.v_min_pu, "lower", _missing("feeder", result))]
    v_min = float(result.feeder.timeseries.v_min_fleet_pu.min())
    return [_kpi("v_min_pu", label, v_min, "pu", "feeder", sc.feeder.v_min_pu, "lower")]


def _thermal(result: StudyResult) -> list[Kpi]:
    label = "highest branch loading with uncontrolled EV charging"
    if result.network is None:
        note = (
            "branch currents are kept only for a fleet on a [network]"
            if result.feeder is not None
            else _missing("network", result)
        )
        return [_kpi("branch_loading_max_pct", label, None, "%", "feeder", 100.0, note=note)]
    loads = [r["branch_loading_max_pu"] for r in result.network.summary()["feeders"]]
    rated = [float(x) for x in loads if x is not None]
    if not rated:
        return [_kpi("branch_loading_max_pct", label, None, "%", "feeder", 100.0, note="no branch has a rating")]
    return [_kpi("branch_loading_max_pct", label + " (every rated branch)", 100.0 * max(rated), "%", "feeder", 100.0)]


def _hosting(result: StudyResult) -> list[Kpi]:
    label = "fleet hosting: largest scaling of the uncontrolled charging the feeder carries"
    if result.feeder is None:
        return [_kpi("fleet_hosting_scale", label, None, "-", "feeder", 1.0, "lower", _missing("hosting", result))]
    scale = result.feeder.fleet_hosting.scale
    if not np.isfinite(scale):
        return [_kpi("fleet_hosting_scale", label, None, "-", "feeder", 1.0, "lower", "no limit found")]
    return [_kpi("fleet_hosting_scale", label, scale, "-", "feeder", 1.0, "lower")]


def _fleet(result: StudyResult) -> list[Kpi]:
    f = result.fleet
    if f is None:
        why = _missing("build_fleet", result)
        return [
            _kpi("p_peak_kw", "peak of uncontrolled charging", None, "kW", "fleet", note=why),
            _kpi("share_evs_at_target_pct", "EVs leaving at their target, uncontrolled", None, "%", "fleet", note=why),
        ]
    n = int(f.summary["n_evs"])
    share = 100.0 * (n - int(f.summary["n_unmet"])) / n if n else None
    return [
        _kpi("p_peak_kw", "peak of uncontrolled charging", float(f.summary["p_peak_kw"]), "kW", "fleet"),
        _kpi(
            "share_evs_at_target_pct",
            "EVs leaving at their target, uncontrolled",
            share,
            "%",
            "fleet",
            note=f"{int(f.summary['n_infeasible'])} EVs cannot reach their target even at full power",
        ),
    ]


_SCHED_PEAK = "highest import of the day-ahead schedule (per-EV LP) against the import cap"
_SCHED_COST = "cost of the day-ahead schedule (per-EV LP)"


def _schedule(result: StudyResult) -> list[Kpi]:
    cur = result.scenario.currency
    if result.markets is None:
        why = _missing("schedule", result)
        return [
            _kpi("p_schedule_import_max_kw", _SCHED_PEAK, None, "kW", "markets", note=why),
            _kpi("schedule_cost_per_horizon", _SCHED_COST, None, cur, "markets", note=why),
        ]
    sched = result.markets.schedule
    cap = float(sched.import_cap_kw)
    peak = float(np.max(sched.individual.p_total_kw))
    tol = SCHEDULE_CAP_RTOL * abs(cap)
    return [
        _kpi(
            "p_schedule_import_max_kw",
            _SCHED_PEAK,
            peak,
            "kW",
            "markets",
            cap if np.isfinite(cap) else None,
            note=f"on the cap within the solver's tolerance ({SCHEDULE_CAP_RTOL:g} of the cap) counts as within",
            tol=tol,
        ),
        _kpi(
            "schedule_cost_per_horizon",
            _SCHED_COST,
            float(sched.individual.cost_per_horizon),
            cur,
            "markets",
        ),
    ]


_NADIR = "frequency nadir after the load step, with the fleet"
_REG_SCORE = "PJM regulation performance score (best allocation)"


def _services(result: StudyResult) -> list[Kpi]:
    if result.services is None:
        why = _missing("agc", result)
        return [
            _kpi("nadir_hz", _NADIR, None, "Hz", "services", note=why),
            _kpi("regulation_score", _REG_SCORE, None, "-", "services", note=why),
        ]
    s = result.services.summary()
    score = max(float(v["score"]) for v in s["agc"]["regulation"].values())
    return [
        _kpi("nadir_hz", _NADIR, s["dynamics"]["nadir_hz"], "Hz", "services"),
        _kpi("regulation_score", _REG_SCORE, score, "-", "services"),
    ]


def _deadline(result: StudyResult) -> list[Kpi]:
    label = "command path: highest P(miss deadline) over the services that need it"
    lim = result.scenario.cyber.deadline_miss_max
    if result.cyber_path is None:
        return [_kpi("deadline_miss_max_pu", label, None, "pu", "cyber-path", lim, note=_missing("cyber_path", result))]
    p = [float(r["p_miss"]) for r in result.cyber_path.service_rows() if r["needs_path"] and r["p_miss"] is not None]
    if not p:
        return [_kpi("deadline_miss_max_pu", label, None, "pu", "cyber-path", lim, note="no service has a deadline")]
    return [_kpi("deadline_miss_max_pu", label, max(p), "pu", "cyber-path", lim)]


def _compliance(result: StudyResult) -> list[Kpi]:
    label = "IEEE 1547-2018 findings that fail"
    if result.compliance is None:
        return [_kpi("n_compliance_fail", label, None, "-", "compliance", 0.0, note=_missing("compliance", result))]
    n_fail = result.compliance.counts["fail"]
    why = "the section's notes say why" if n_fail and result.compliance.notes else ""
    return [_kpi("n_compliance_fail", label, n_fail, "-", "compliance", 0.0, note=why)]


def _resilience(result: StudyResult) -> list[Kpi]:
    label = "critical energy unserved through the outage, with V2G"
    if result.resilience is None:
        return [_kpi("energy_unserved_v2g_kwh", label, None, "kWh", "resilience", note=_missing("resilience", result))]
    return [
        _kpi(
            "energy_unserved_v2g_kwh",
            label,
            result.resilience.summary()["with_v2g"]["energy_unserved_kwh"],
            "kWh",
            "resilience",
        )
    ]


def _battery(result: StudyResult) -> list[Kpi]:
    b = result.scenario.battery
    if result.battery is None:
        label = f"mean capacity fade after {b.years} years under the V2G schedule"
        why = _missing("battery", result)
        return [_kpi("q_loss_v2g_mean_pu", label, None, "pu", "battery", b.eol_fade_pu, note=why)]
    fade = result.battery.summary()["fade_v2g"]
    label = f"mean capacity fade after {fade['years']} years under the V2G schedule"
    q_loss = fade["by_year"][f"year_{fade['years']}"]["q_loss_mean_pu"]
    note = "limit: the end of life, battery.eol_fade_pu"
    return [_kpi("q_loss_v2g_mean_pu", label, q_loss, "pu", "battery", b.eol_fade_pu, note=note)]


def _run(result: StudyResult) -> list[Kpi]:
    fail = getattr(result, "failures", {}) or {}
    return [_kpi("n_steps_failed", "study steps that failed", len(fail), "-", "run", 0.0)]


#: The indicators, in the order of the report's summary (one function per topic; each reads sections that may
#: be None).
KPI_FUNCTIONS: tuple[Callable[[StudyResult], list[Kpi]], ...] = (
    _run,
    _voltage,
    _thermal,
    _hosting,
    _fleet,
    _schedule,
    _services,
    _deadline,
    _battery,
    _resilience,
    _compliance,
)


def calc_kpis(result: StudyResult) -> list[Kpi]:
    """The study's key indicators, each with the scenario's limit and pass/fail where it has one.

    Parameters
    ----------
    result : the study's result; any section may be None (failed or not run): its indicators are then None.

    Returns
    -------
    list of Kpi, in the report's order.
    """
    return [k for fn in KPI_FUNCTIONS for k in fn(result)]


def calc_scenario_hash(scenario: Scenario) -> str:
    """sha256 (hex) of the scenario's canonical JSON (keys sorted, no whitespace): equal scenarios, equal hash."""
    data: Any = scenario.model_dump(mode="json")
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def summary_json(result: StudyResult) -> dict[str, Any]:
    """What results.json adds to :meth:`StudyResult.to_dict`: ``scenario_hash`` and ``summary_kpis``."""
    return {
        "scenario_hash": calc_scenario_hash(result.scenario),
        "summary_kpis": [asdict(k) for k in calc_kpis(result)],
    }
