"""The study's own inverters as an asset register, with the settings the study's simulations use, so that the
same IEEE 1547 rules audit what the frequency and cascade steps simulate (one source of truth: every default here
and there comes from :mod:`v2gtwin.ieee1547`).

Two entries:

- ``V2G-1547``: the fleet's V2G chargers on IEEE 1547-2018 settings (the cascade's ``V2G IEEE 1547`` group):
  the trip table's defaults for the declared abnormal category, the ``[frequency]`` droop (deadband, droop and
  the fastest and slowest EVs' open-loop response times) and the ``[feeder]`` volt-var curve;
- ``V2G-legacy``: the share ``[frequency] v2g_legacy_share`` on the legacy under-frequency trip
  (59.3 Hz / 0.16 s, the cascade's ``V2G legacy`` group), with the same droop (the frequency step gives it to
  every plugged-in EV). It must fail: that population, tripping together in a
  frequency dip, is what the cascade study is about.
"""

from __future__ import annotations

import math

import numpy as np

from v2gtwin.compliance.register import Register, parse_register
from v2gtwin.fleet import Fleet
from v2gtwin.ieee1547 import read_ieee1547
from v2gtwin.scenario import Scenario

__all__ = ["LEGACY_NOTE", "build_study_register", "study_notes"]

#: Why the legacy group fails, printed under the study's findings.
LEGACY_NOTE = (
    "V2G-legacy fails IEEE1547-TRIP-UF1 on purpose: its IEEE 1547-2003-era under-frequency trip "
    "({uf_hz:g} Hz / {uf_s:g} s) is the population the cascade study models dropping off together in a frequency "
    "dip; the V2G-1547 entry carries the settings of the fleet's other V2G chargers."
)


def _olrt_s(tau_s: float) -> float:
    """Open-loop response time (to 90 % of a step) of a first-order lag with time constant ``tau_s``: ln(10) tau."""
    return math.log(10.0) * tau_s


def build_study_register(scenario: Scenario, fleet: Fleet) -> Register:
    """The study's V2G inverters (IEEE 1547-2018 and legacy groups) as a :class:`Register`.

    Units: the fleet's V2G-capable EVs (``p_discharge_max_kw > 0``), split by ``frequency.v2g_legacy_share``;
    rating: their mean discharge limit [kW].
    """
    table = read_ieee1547()
    fs, cs = scenario.frequency, scenario.compliance
    v2g = fleet.p_discharge_max_kw > 0
    n_v2g = int(v2g.sum())
    rating_kw = float(np.mean(fleet.p_discharge_max_kw[v2g])) if n_v2g else 0.0  # no entries when n_v2g == 0
    n_legacy = round(n_v2g * fs.v2g_legacy_share)
    n_1547 = n_v2g - n_legacy
    normal = scenario.feeder.voltvar_curve if scenario.feeder.voltvar_curve in ("A", "B") else "B"
    trip = table.defaults("trip", cs.abnormal_category)
    # The frequency step gives every plugged-in EV (legacy trip or not) this droop, with time constants drawn
    # between the scenario's bounds (grid.bulk.build_droop_fleet): audit the fastest and the slowest.
    droop = {
        "db_of_hz": fs.ev_deadband_hz,
        "db_uf_hz": fs.ev_deadband_hz,
        "k_of_pu": fs.ev_droop_pu,
        "k_uf_pu": fs.ev_droop_pu,
        "t_response_s": _olrt_s(fs.ev_t_response_min_s),
        "t_response_max_s": _olrt_s(fs.ev_t_response_max_s),
    }
    inverters = []
    if n_1547 > 0:
        entry: dict[str, object] = {
            "id": "V2G-1547",
            "site": "fleet",
            "model": "fleet V2G charger (IEEE 1547-2018 settings)",
            "rating_kw": rating_kw,
            "count": n_1547,
            "certifications": ["UL 1741 SB"] if cs.ul1741sb else [],
            "normal_category": normal,
            "abnormal_category": cs.abnormal_category,
            "trip": trip,
            "freq_droop": droop,
        }
        if scenario.feeder.voltvar_curve in ("A", "B"):  # the feeder step's curve: the same table's defaults
            entry["volt_var"] = {"enabled": True, **table.defaults("volt_var", scenario.feeder.voltvar_curve)}
        inverters.append(entry)
    if n_legacy > 0:
        inverters.append(
            {
                "id": "V2G-legacy",
                "site": "fleet",
                "model": "fleet V2G charger (legacy IEEE 1547-2003 trip)",
                "rating_kw": rating_kw,
                "count": n_legacy,
                "certifications": ["UL 1741"],
                "normal_category": normal,
                "abnormal_category": cs.abnormal_category,
                "trip": {"uf1_hz": table.legacy.uf_hz, "uf1_s": table.legacy.uf_s},
                "freq_droop": droop,
            }
        )
    data = {
        "currency": scenario.currency,
        "aggregation": {"name": f"{scenario.name}: the study's V2G fleet", "services": ["regulation", "reserve"]},
        "sites": [{"id": "fleet", "name": "the study's fleet"}],
        "inverters": inverters,
    }
    return parse_register(data, "study fleet")


def study_notes(scenario: Scenario) -> tuple[str, ...]:
    """The sentences the study's compliance section prints under its findings."""
    legacy = read_ieee1547().legacy
    fs = scenario.frequency
    no_vv = (
        (
            "The feeder runs no volt-var ([feeder] voltvar_curve = 'none'): the inverters are declared normal "
            "category B and their volt-var is not assessed.",
        )
        if scenario.feeder.voltvar_curve not in ("A", "B")
        else ()
    )
    return (
        *no_vv,
        LEGACY_NOTE.format(uf_hz=legacy.uf_hz, uf_s=legacy.uf_s),
        f"The fleet's droop responses are first-order lags with time constants {fs.ev_t_response_min_s:g} to "
        f"{fs.ev_t_response_max_s:g} s, i.e. open-loop response times (to 90 %, ln(10) x tau) of "
        f"{_olrt_s(fs.ev_t_response_min_s):.2f} to {_olrt_s(fs.ev_t_response_max_s):.2f} s; the audit checks "
        "both the fastest (t_response_s) and the slowest (t_response_max_s), in both groups: the frequency step "
        "gives every plugged-in EV the droop.",
        "Only the IEEE 1547 rules run on the study's assets: the scenario has no meters or market enrolments "
        "(audit an asset register with 'v2gtwin comply' for those).",
        "Charging-only EVSEs are loads, outside IEEE 1547's scope, and are not audited.",
    )
