"""The command path of a scenario: its default path, retries, the services' deadlines and threshold."""

from __future__ import annotations

import numpy as np

from v2gtwin.cyber.path import Path, RetryPolicy
from v2gtwin.cyber.path_analysis import PathAnalysis, run_path_analysis
from v2gtwin.cyber.path_defaults import build_default_path, build_services
from v2gtwin.scenario import Scenario

__all__ = ["REG_SIGNAL_DT_S", "run_path_study"]

#: Period of the regulation signal the study follows (its AGC step generates a 2-s RegD-like signal) [s].
REG_SIGNAL_DT_S = 2.0


def run_path_study(scenario: Scenario, path: Path | None = None, *, n_samples: int = 100_000) -> PathAnalysis:
    """The scenario's command path (``[cyber] path``, or ``path``) with its retries, checked against primary
    response, AGC / regulation (one 2-s signal period), contingency reserve (``frequency.reserve_lead_min``)
    and demand response (``frequency.dr_notify_hour`` to ``dr_start_hour``); Monte Carlo seeded from the
    scenario's seed."""
    cy, fr = scenario.cyber, scenario.frequency
    dr_lead_s = ((fr.dr_start_hour - fr.dr_notify_hour) % 24.0) * 3600.0
    services = build_services(REG_SIGNAL_DT_S, fr.reserve_lead_min * 60.0, dr_lead_s)
    return run_path_analysis(
        path if path is not None else build_default_path(cy.path),
        RetryPolicy(cy.retry_timeout_s, cy.retry_max_attempts),
        services,
        cy.deadline_miss_max,
        np.random.default_rng([scenario.seed, 14]),
        n_samples=n_samples,
    )
