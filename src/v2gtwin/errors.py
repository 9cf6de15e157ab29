"""Exception hierarchy of v2gtwin.

Every error a user can cause derives from :class:`V2GTwinError`; the CLI turns any of them into one line on
stderr and exit code 2.
"""

from __future__ import annotations

__all__ = [
    "ClusterError",
    "ConvergenceError",
    "DataError",
    "InfeasibleError",
    "ScenarioError",
    "StepFailedError",
    "V2GTwinError",
]


class V2GTwinError(Exception):
    """Base class of every error raised on purpose by v2gtwin."""


class ScenarioError(V2GTwinError, ValueError):
    """A scenario file or scenario value is invalid (unknown key, value out of range, unreadable file)."""


class DataError(V2GTwinError, ValueError):
    """Input data (a time series, a session file, an array) is missing, malformed or inconsistent."""


class ConvergenceError(V2GTwinError, RuntimeError):
    """An iterative solver did not converge; the message names the step or element."""


class InfeasibleError(V2GTwinError, RuntimeError):
    """An optimisation or a requirement cannot be met; the message names the constraint family."""


class ClusterError(V2GTwinError, RuntimeError):
    """A compute cluster (a dask.distributed scheduler for a sweep) cannot be reached or used."""


class StepFailedError(V2GTwinError, RuntimeError):
    """A study step failed with an error that is not v2gtwin's own (the computation failed, not the input); the
    message names the step and the error. The CLI prints it on one line and exits 1."""
