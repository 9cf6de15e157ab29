"""Benchmark: the compliance audit of a large asset register.

Builds a register of ``--inverters`` inverter entries (every fifth on legacy trip settings, every seventh
without a UL 1741 SB listing) behind ``--inverters / 10`` settlement meters (every third of class 0.5), validates
it (pydantic, like ``load_register``) and runs every rule. Prints one JSON line: ``inverters``, ``meters``,
``findings``, ``fails``, ``validate_s`` and ``audit_s`` (wall time, best of ``--repeat``), ``findings_per_s``.
"""

from __future__ import annotations

import argparse
import json
import time

from v2gtwin.compliance.audit import run_audit
from v2gtwin.compliance.register import parse_register

TRIP = {
    "ov2_pu": 1.2,
    "ov2_s": 0.16,
    "ov1_pu": 1.1,
    "ov1_s": 13.0,
    "uv1_pu": 0.88,
    "uv1_s": 21.0,
    "uv2_pu": 0.5,
    "uv2_s": 2.0,
    "of2_hz": 62.0,
    "of2_s": 0.16,
    "of1_hz": 61.2,
    "of1_s": 300.0,
    "uf1_hz": 58.5,
    "uf1_s": 300.0,
    "uf2_hz": 56.5,
    "uf2_s": 0.16,
}


def build(n_inv: int) -> dict:  # type: ignore[type-arg]
    inverters = []
    for i in range(n_inv):
        trip = dict(TRIP)
        if i % 5 == 0:
            trip.update(uf1_hz=59.3, uf1_s=0.16)
        inverters.append(
            {
                "id": f"INV-{i}",
                "site": "S",
                "rating_kw": 11.0,
                "count": 10,
                "certifications": [] if i % 7 == 0 else ["UL 1741 SB"],
                "normal_category": "B",
                "abnormal_category": "III",
                "trip": trip,
                "volt_var": {
                    "v1_pu": 0.92,
                    "q1_pct": 44.0,
                    "v2_pu": 0.98,
                    "q2_pct": 0.0,
                    "v3_pu": 1.02,
                    "q3_pct": 0.0,
                    "v4_pu": 1.08,
                    "q4_pct": -44.0,
                    "t_response_s": 5.0,
                },
                "freq_droop": {"db_of_hz": 0.036, "db_uf_hz": 0.036, "k_of_pu": 0.05, "k_uf_pu": 0.05},
            }
        )
    n_met = max(1, n_inv // 10)
    meters = [
        {
            "id": f"M-{j}",
            "site": "S",
            "accuracy_class": "0.5" if j % 3 == 0 else "0.2",
            "dedicated": True,
            "directional": True,
            "interval_min": 5,
            "revenue_grade": True,
            "covers": [f"INV-{i}" for i in range(j * 10, min(n_inv, (j + 1) * 10))],
        }
        for j in range(n_met)
    ]
    return {
        "aggregation": {"name": "bench", "distribution_review": "approved", "telemetry": True},
        "sites": [{"id": "S"}],
        "inverters": inverters,
        "meters": meters,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--inverters", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    data = build(a.inverters)
    best_v = best_a = float("inf")
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        reg = parse_register(data, "bench")
        t1 = time.perf_counter()
        result = run_audit(reg)
        t2 = time.perf_counter()
        best_v, best_a = min(best_v, t1 - t0), min(best_a, t2 - t1)
    n = len(result.findings)
    print(
        json.dumps(
            {
                "inverters": a.inverters,
                "meters": len(reg.meters),
                "findings": n,
                "fails": result.counts["fail"],
                "validate_s": round(best_v, 3),
                "audit_s": round(best_a, 3),
                "findings_per_s": round(n / best_a),
            }
        )
    )


if __name__ == "__main__":
    main()
