"""Benchmark: the command-path model's two methods on the default paths (LTE, NB-IoT, wired internet), 1 s
timeout, 3 attempts.

Prints one JSON line: per path, ``convolution_ms`` (best of ``--repeat`` runs of ``calc_landing_grid``, its
``grid_points``), ``monte_carlo_ms`` (best of ``--repeat`` runs of ``sample_landing_s`` with ``--samples``
commands), and the p99 landing time by each method (``p99_conv_s``, ``p99_mc_s``) as a cross-check, with the
convolution's ``grid_dt_s`` and ``mass_beyond_grid`` and the Monte Carlo p99's sampling error ``p99_mc_se_s``.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from v2gtwin.cyber.path import RetryPolicy, calc_landing_grid, sample_landing_s
from v2gtwin.cyber.path_defaults import PATHS


def _p99_se_s(landed_sorted_s: np.ndarray, n: int) -> float | None:
    """Standard error of the Monte Carlo p99 [s]: +-1 binomial standard error of the rank, sqrt(n 0.99 0.01),
    read off the sorted landing times (half the distance between the two ranks)."""
    d = int(np.ceil(np.sqrt(n * 0.99 * 0.01)))
    k = int(np.ceil(0.99 * n)) - 1
    if k + d >= landed_sorted_s.size or k - d < 0:
        return None
    return float(0.5 * (landed_sorted_s[k + d] - landed_sorted_s[k - d]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--samples", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    retry = RetryPolicy(timeout_s=1.0, max_attempts=3)
    out = {}
    for name, build in PATHS.items():
        path = build()
        conv, mc = [], []
        for i in range(args.repeat):
            t0 = time.perf_counter()
            grid = calc_landing_grid(path, retry)
            conv.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            t, landed = sample_landing_s(path, retry, np.random.default_rng(i), args.samples)
            mc.append(time.perf_counter() - t0)
        k = int(np.ceil(0.99 * args.samples)) - 1
        lt = np.sort(t[landed])
        out[name] = {
            "convolution_ms": round(min(conv) * 1e3, 2),
            "grid_points": int(grid.t_s.size),
            "monte_carlo_ms": round(min(mc) * 1e3, 2),
            "samples": args.samples,
            "p99_conv_s": grid.quantile_s(0.99),
            "p99_mc_s": float(lt[k]) if k < lt.size else None,
            "grid_dt_s": grid.dt_s,
            "mass_beyond_grid": grid.mass_beyond_grid,
            # Sampling error of the Monte Carlo p99: the binomial standard error of its coverage, 0.99 x 0.01 / n,
            # turned into time through the local spread of the sorted samples around the p99 (order statistics).
            "p99_mc_se_s": _p99_se_s(lt, args.samples),
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
