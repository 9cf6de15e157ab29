"""v2gtwin: a digital twin of a Vehicle-to-Grid and demand-response aggregator and of the grid it serves."""

from v2gtwin.errors import (
    ConvergenceError,
    DataError,
    InfeasibleError,
    ProtocolError,
    ScenarioError,
    V2GTwinError,
)
from v2gtwin.fleet import (
    Envelope,
    Fleet,
    SocResult,
    calc_envelope,
    run_uncontrolled,
    simulate_soc,
    synthesize_fleet,
)
from v2gtwin.scenario import DEFAULT_SCENARIO, Scenario, load_scenario

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_SCENARIO",
    "ConvergenceError",
    "DataError",
    "Envelope",
    "Fleet",
    "InfeasibleError",
    "ProtocolError",
    "Scenario",
    "ScenarioError",
    "SocResult",
    "V2GTwinError",
    "__version__",
    "calc_envelope",
    "load_scenario",
    "run_uncontrolled",
    "simulate_soc",
    "synthesize_fleet",
]
