"""The study's results as tidy pandas tables: one function per area (``tables.fleet``, ``tables.grid``,
``tables.markets``, ``tables.other``) and :func:`collect_frames`, which gathers every table of a
:class:`~v2gtwin.study_result.StudyResult` under a stable name.

Conventions: one row per observation; a per-step table is indexed by the scenario's tz-aware time index
(``TimeGrid.index()``, named ``time``); column names carry their unit and match results.json's keys; a table
holding money has a ``currency`` column; a long table of headline figures has ``quantity`` (the results.json
key path), ``value`` (a number) and ``text`` (anything else).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from v2gtwin.tables._util import rows_frame, step_frame, summary_frame

if TYPE_CHECKING:
    from v2gtwin.study_result import StudyResult

__all__ = ["TABLE_NAMES", "collect_frames", "rows_frame", "step_frame", "steps_frame", "summary_frame"]

#: Every table :func:`collect_frames` can return, by section, in order (a table is absent when its section is
#: None: its step failed, was not asked for, or the scenario does not run it).
TABLE_NAMES: dict[str, tuple[str, ...]] = {
    "study": ("study_steps",),
    "fleet": ("fleet_steps", "fleet_evs"),
    "feeder": ("feeder_steps", "feeder_buses", "hosting", "losses", "losses_steps"),
    "services": ("services_steps", "services", "cascade", "cascade_t"),
    "markets": ("market_hours", "schedule_steps", "robust", "bid_curve", "markets"),
    "network": ("network_feeders", "network_steps"),
    "network_battery": ("network_battery_steps",),
    "protection": ("protection_faults", "protection_devices", "protection_pairs"),
    "resilience": ("resilience_t", "resilience"),
    "battery": ("battery_evs", "battery"),
    "cyber_path": ("cyber_path_services",),
    "cyber": ("cyber_stations",),
    "compliance": ("compliance_findings",),
}


def steps_frame(result: StudyResult) -> pd.DataFrame:
    """``study_steps``: one row per study step that ran, failed or was skipped: ``status`` ('ok', 'failed',
    'skipped'), ``seconds`` (wall time; None when it did not run) and ``message`` (the error or why skipped)."""
    failures: dict[str, str] = getattr(result, "failures", None) or {}
    skipped: dict[str, str] = getattr(result, "skipped", None) or {}
    names = list(dict.fromkeys([*result.timings_s, *failures, *skipped]))
    rows: list[dict[str, Any]] = []
    for name in names:
        status = "failed" if name in failures else "skipped" if name in skipped else "ok"
        rows.append(
            {
                "step": name,
                "status": status,
                "seconds": result.timings_s.get(name),
                "message": failures.get(name) or skipped.get(name),
            }
        )
    return pd.DataFrame(rows, columns=["step", "status", "seconds", "message"])


def collect_frames(result: StudyResult) -> dict[str, pd.DataFrame]:
    """Every table of ``result`` by its stable name (:data:`TABLE_NAMES`); each section may be None (its step
    failed or was not run) and then gives no table."""
    time, currency = result.scenario.time, result.scenario.currency
    out: dict[str, pd.DataFrame] = {"study_steps": steps_frame(result)}
    sections: dict[str, Any] = {
        "fleet": lambda s: s.to_frames(time),
        "feeder": lambda s: s.to_frames(time),
        "services": lambda s: s.to_frames(time),
        "markets": lambda s: s.to_frames(time, currency),
        "network": lambda s: s.to_frames(),
        "network_battery": lambda s: s.to_frames(time),
        "protection": lambda s: s.to_frames(),
        "resilience": lambda s: s.to_frames(time),
        "battery": lambda s: s.to_frames(currency),
        "cyber_path": lambda s: s.to_frames(),
        "cyber": lambda s: s.to_frames(),
        "compliance": lambda s: s.to_frames(),
    }
    for name, make in sections.items():
        section = getattr(result, name, None)
        if section is not None:
            out |= make(section)
    return out
