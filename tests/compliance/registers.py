"""A fully compliant asset register (as a TOML-shaped dict) for the compliance tests to break one rule at a time.

Its settings are IEEE 1547-2018's published defaults for Category B / III (typed by hand: pyUL1741SB, NREL PyDSS,
EPRI OpenDER), its meter an ANSI C12.20 class 0.2 revenue meter at the 5-minute settlement interval.
"""

from __future__ import annotations

import copy
from typing import Any

TRIP_CAT_III = {
    "ov2_pu": 1.20,
    "ov2_s": 0.16,
    "ov1_pu": 1.10,
    "ov1_s": 13.0,
    "uv1_pu": 0.88,
    "uv1_s": 21.0,
    "uv2_pu": 0.50,
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

BASE: dict[str, Any] = {
    "currency": "EUR",
    "aggregation": {
        "name": "test aggregation",
        "market": "PJM",
        "min_size_kw": 100.0,
        "settlement_interval_min": 5,
        "distribution_review": "approved",
        "telemetry": True,
        "services": ["regulation", "energy"],
    },
    "sites": [{"id": "S1"}],
    "inverters": [
        {
            "id": "INV-1",
            "site": "S1",
            "rating_kw": 11.0,
            "count": 20,
            "certifications": ["UL 1741 SB", "IEEE 1547.1-2020"],
            "normal_category": "B",
            "abnormal_category": "III",
            "trip": dict(TRIP_CAT_III),
            "volt_var": {
                "enabled": True,
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
            "freq_droop": {"db_of_hz": 0.036, "db_uf_hz": 0.036, "k_of_pu": 0.05, "k_uf_pu": 0.05, "t_response_s": 5.0},
        }
    ],
    "meters": [
        {
            "id": "M-1",
            "site": "S1",
            "accuracy_class": "0.2",
            "dedicated": True,
            "directional": True,
            "interval_min": 5,
            "revenue_grade": True,
            "covers": ["INV-1"],
        },
    ],
}


def base() -> dict[str, Any]:
    """A deep copy of :data:`BASE` to change."""
    return copy.deepcopy(BASE)
