"""The command path against the services it must serve: latency distribution (convolution and Monte Carlo
side by side), reliability, retries, and the probability of missing each service's deadline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from v2gtwin.cyber.path import LatencyGrid, Path, RetryPolicy, calc_landing_grid, sample_landing_s
from v2gtwin.cyber.path_defaults import Service
from v2gtwin.cyber.service_names import SERVICE_DR, SERVICE_REGULATION, SERVICE_RESERVE
from v2gtwin.errors import DataError

__all__ = ["SERVICE_DR", "SERVICE_REGULATION", "SERVICE_RESERVE", "PathAnalysis", "run_path_analysis"]


FloatArray = npt.NDArray[np.float64]

_QUANTILES = (0.5, 0.95, 0.99)


@dataclass(frozen=True)
class PathAnalysis:
    """A path's latency and reliability and, per service, the probability of missing its deadline.

    Attributes
    ----------
    path, retry : the path and its retry policy.
    grid : landing-time distribution by convolution (with retries).
    samples_s : Monte Carlo landing times of the commands that landed [s]; ``n_samples`` commands were drawn.
    n_samples : Monte Carlo commands drawn [-]. p_land_mc : share of them that landed [-].
    services : the services checked. deadline_miss_max : the scenario's threshold [-].
    """

    path: Path
    retry: RetryPolicy
    grid: LatencyGrid
    samples_s: FloatArray
    n_samples: int
    p_land_mc: float
    services: tuple[Service, ...]
    deadline_miss_max: float

    def p_miss(self, deadline_s: float) -> float:
        """P(the command has not landed by ``deadline_s``), convolution [-]."""
        return max(0.0, 1.0 - self.grid.prob_by(deadline_s))

    def p_miss_mc(self, deadline_s: float) -> float:
        """The same by Monte Carlo [-]."""
        return 1.0 - float(np.count_nonzero(self.samples_s <= deadline_s)) / self.n_samples

    def _quantile_mc(self, q: float) -> float | None:
        k = int(np.ceil(q * self.n_samples)) - 1
        if k >= self.samples_s.size:
            return None
        return float(np.sort(self.samples_s)[k])

    def to_frames(self) -> dict[str, Any]:
        """``cyber_path_services`` as a pandas DataFrame: :func:`v2gtwin.tables.other.cyber_path_frames`."""
        from v2gtwin.tables.other import cyber_path_frames

        return cyber_path_frames(self)

    def service_rows(self) -> list[dict[str, Any]]:
        """One row per service: deadline, miss probability (both methods) and the flag."""
        rows = []
        for s in self.services:
            p = None if s.deadline_s is None else self.p_miss(s.deadline_s)
            rows.append(
                {
                    "service": s.name,
                    "deadline_s": s.deadline_s,
                    "needs_path": s.needs_path,
                    "p_miss": p,
                    "p_miss_mc": None if s.deadline_s is None else self.p_miss_mc(s.deadline_s),
                    "flagged": p is not None and p > self.deadline_miss_max,
                    "basis": s.basis,
                }
            )
        return rows

    def verdict(self, service: str) -> dict[str, Any] | None:
        """Whether ``service`` may be sold over this path: its row's deadline, P(miss) and the scenario's
        threshold, ``deliverable`` False when P(miss) exceeds the threshold (the service is then not sold);
        None when the table has no such service or it needs no path."""
        for r in self.service_rows():
            if r["service"] == service and r["needs_path"] and r["p_miss"] is not None:
                return {
                    "service": service,
                    "path": self.path.name,
                    "deadline_s": r["deadline_s"],
                    "p_miss": r["p_miss"],
                    "deadline_miss_max": self.deadline_miss_max,
                    "deliverable": not r["flagged"],
                }
        return None

    def cdf_points(self, n: int = 300) -> tuple[FloatArray, FloatArray]:
        """The landing CDF thinned to about ``n`` points for a figure ([s], [-])."""
        idx = np.unique(np.linspace(0, self.grid.t_s.size - 1, n).round().astype(int))
        return self.grid.t_s[idx], self.grid.cdf[idx]

    def summary(self) -> dict[str, Any]:
        """The JSON of ``v2gtwin cyber path --json`` and of results.json's ``cyber_path``."""
        g = self.grid
        return {
            "path": self.path.name,
            "segments": self.path.summary(),
            "p_success_attempt": self.path.p_success,
            "mean_attempt_s": self.path.mean_s,
            "retry_timeout_s": self.retry.timeout_s,
            "retry_max_attempts": self.retry.max_attempts,
            "p_land": g.p_success,
            "mean_given_landed_s": g.mean_given_landed_s,
            "quantiles_s": {f"p{round(q * 100)}": g.quantile_s(q) for q in _QUANTILES},
            "grid_dt_s": g.dt_s,
            "mass_beyond_grid": g.mass_beyond_grid,
            "monte_carlo": {
                "n_samples": self.n_samples,
                "p_land": self.p_land_mc,
                "mean_given_landed_s": float(self.samples_s.mean()) if self.samples_s.size else None,
                "quantiles_s": {f"p{round(q * 100)}": self._quantile_mc(q) for q in _QUANTILES},
            },
            "deadline_miss_max": self.deadline_miss_max,
            "services": self.service_rows(),
            "flagged": [r["service"] for r in self.service_rows() if r["flagged"]],
        }


def run_path_analysis(
    path: Path,
    retry: RetryPolicy,
    services: tuple[Service, ...],
    deadline_miss_max: float,
    rng: np.random.Generator,
    *,
    n_samples: int = 100_000,
) -> PathAnalysis:
    """Landing-time distribution of ``path`` with ``retry`` by convolution and by ``n_samples`` Monte Carlo
    commands, and each service's probability of missing its deadline, flagged above ``deadline_miss_max``."""
    if not 0.0 <= deadline_miss_max <= 1.0:
        raise DataError(f"cyber.deadline_miss_max = {deadline_miss_max!r} is not a probability in [0, 1]")
    grid = calc_landing_grid(path, retry)
    t, landed = sample_landing_s(path, retry, rng, n_samples)
    return PathAnalysis(
        path=path,
        retry=retry,
        grid=grid,
        samples_s=t[landed],
        n_samples=n_samples,
        p_land_mc=float(landed.mean()),
        services=services,
        deadline_miss_max=deadline_miss_max,
    )
