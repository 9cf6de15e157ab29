"""Tables of battery health, the command path, the dispatch through the central system and compliance."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from v2gtwin.tables._util import rows_frame, summary_frame

if TYPE_CHECKING:
    from v2gtwin.battery.health import BatteryHealthAnalysis
    from v2gtwin.compliance.audit import AuditResult
    from v2gtwin.cyber.fleet_link import CyberRun
    from v2gtwin.cyber.path_analysis import PathAnalysis

__all__ = ["battery_frames", "compliance_frames", "cyber_frames", "cyber_path_frames"]


def battery_frames(analysis: BatteryHealthAnalysis, currency: str) -> dict[str, pd.DataFrame]:
    """``battery_evs`` (per EV: its V2G degradation cost per MWh discharged and its capacity fade after the
    study's years, uncontrolled and under the schedule) and ``battery`` (the headline figures, long)."""
    cost = np.asarray(analysis.cost.per_ev_per_mwh, dtype=float)
    cols: dict[str, object] = {"degradation_per_mwh": cost}
    for tag, fade in (("uncontrolled", analysis.fade_uncontrolled), ("v2g", analysis.fade_v2g)):
        q = np.asarray(fade.q_loss_pu, dtype=float)
        last = q[:, -1] if q.ndim == 2 else q  # (n_ev, n_years): the loss after the last year
        if last.shape == cost.shape:
            cols[f"q_loss_{tag}_pu"] = last
    evs = pd.DataFrame(cols, index=pd.RangeIndex(cost.size, name="ev"))
    evs["currency"] = currency
    return {"battery_evs": evs, "battery": summary_frame(analysis.summary())}


def cyber_path_frames(analysis: PathAnalysis) -> dict[str, pd.DataFrame]:
    """``cyber_path_services``: one row per service (deadline, miss probability exact and Monte Carlo, flag)."""
    return {"cyber_path_services": rows_frame(analysis.service_rows())}


def cyber_frames(run: CyberRun) -> dict[str, pd.DataFrame]:
    """``cyber_stations``: one row per simulated station of the dispatch run (set-point, outcome, power after)."""
    rows = []
    for sid, outcome in run.outcome.items():
        row = {"station": sid, "set_point_w": run.set_points_w.get(sid), "power_after_w": run.power_after_w.get(sid)}
        row |= {k: v for k, v in outcome.items() if isinstance(v, (str, int, float, bool)) or v is None}
        rows.append(row)
    return {"cyber_stations": rows_frame(rows)}


def compliance_frames(audit: AuditResult) -> dict[str, pd.DataFrame]:
    """``compliance_findings``: one row per finding (rule, asset, status, evidence, citation, action, units)."""
    return {"compliance_findings": rows_frame([f.to_dict() for f in audit.findings])}
