"""v2gtwin: a digital twin of a Vehicle-to-Grid and demand-response aggregator and of the grid it serves.

The top-level names are loaded on first use (PEP 562), so that importing a light subpackage — the OCPP central
system in ``v2gtwin.cyber.csms`` — does not pull in the numeric stack.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "ConvergenceError": "v2gtwin.errors",
    "DataError": "v2gtwin.errors",
    "InfeasibleError": "v2gtwin.errors",
    "ScenarioError": "v2gtwin.errors",
    "V2GTwinError": "v2gtwin.errors",
    "Envelope": "v2gtwin.fleet",
    "Fleet": "v2gtwin.fleet",
    "SocResult": "v2gtwin.fleet",
    "calc_envelope": "v2gtwin.fleet",
    "run_uncontrolled": "v2gtwin.fleet",
    "simulate_soc": "v2gtwin.fleet",
    "synthesize_fleet": "v2gtwin.fleet",
    "DEFAULT_SCENARIO": "v2gtwin.scenario",
    "Scenario": "v2gtwin.scenario",
    "load_scenario": "v2gtwin.scenario",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'v2gtwin' has no attribute {name!r}")
