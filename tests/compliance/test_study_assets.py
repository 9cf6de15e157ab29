"""The study's own inverters audited with the settings its simulations use (behaviour check, point 3)."""

from __future__ import annotations

import math

import pytest

from v2gtwin.compliance.audit import run_audit, status_of
from v2gtwin.compliance.study_assets import build_study_register, study_notes
from v2gtwin.grid.cascade import IEEE1547_UF1, LEGACY_UF
from v2gtwin.scenario import DEFAULT_SCENARIO, Scenario
from v2gtwin.study import build_fleet


def _audit(scen: Scenario):  # type: ignore[no-untyped-def]
    reg = build_study_register(scen, build_fleet(scen))
    return reg, run_audit(reg, ("ieee1547",), study_notes(scen))


def test_default_study_legacy_group_fails_and_the_1547_group_passes() -> None:
    reg, result = _audit(DEFAULT_SCENARIO)
    inv = {i.id: i for i in reg.inverters}
    # The settings audited are the cascade's: UF1 58.5 Hz / 300 s and the legacy 59.3 Hz / 0.16 s.
    assert (inv["V2G-1547"].trip.uf1_hz, inv["V2G-1547"].trip.uf1_s) == IEEE1547_UF1 == (58.5, 300.0)  # type: ignore[union-attr]
    assert (inv["V2G-legacy"].trip.uf1_hz, inv["V2G-legacy"].trip.uf1_s) == LEGACY_UF == (59.3, 0.16)  # type: ignore[union-attr]
    assert status_of(result.findings, "IEEE1547-TRIP-UF1", "V2G-legacy") == "fail"
    assert status_of(result.findings, "UL1741SB-CERT", "V2G-legacy") == "fail"
    assert all(f.status in ("pass", "not-assessed") for f in result.findings if f.asset == "V2G-1547")
    assert status_of(result.findings, "IEEE1547-FD", "V2G-1547") == "pass"
    assert any("cascade study" in n for n in result.notes)
    # The groups split the fleet's V2G-capable EVs by v2g_legacy_share (0.5 by default).
    fleet = build_fleet(DEFAULT_SCENARIO)
    n_v2g = int((fleet.p_discharge_max_kw > 0).sum())
    assert inv["V2G-1547"].count + inv["V2G-legacy"].count == n_v2g
    assert inv["V2G-legacy"].count == round(0.5 * n_v2g)


def test_scenario_droop_is_what_is_audited() -> None:
    # A 1 % droop (k = 0.01) is steeper than IEEE 1547-2018 allows (0.02 at the least for Category III).
    scen = DEFAULT_SCENARIO.model_copy(
        update={"frequency": DEFAULT_SCENARIO.frequency.model_copy(update={"ev_droop_pu": 0.01})}
    )
    reg, result = _audit(scen)
    assert reg.inverters[0].freq_droop.k_uf_pu == 0.01  # type: ignore[union-attr]
    assert status_of(result.findings, "IEEE1547-FD", "V2G-1547") == "fail"


def test_fastest_response_time_is_checked_against_the_category() -> None:
    # tau_min = 0.2 s gives an open-loop response time of ln(10) x 0.2 = 0.46 s: inside Category III's 0.2-10 s,
    # below Categories I and II's 1 s.
    assert math.log(10) * 0.2 == pytest.approx(0.4605, abs=1e-4)
    for cat, expected in (("III", "pass"), ("II", "fail")):
        scen = DEFAULT_SCENARIO.model_copy(
            update={"compliance": DEFAULT_SCENARIO.compliance.model_copy(update={"abnormal_category": cat})}
        )
        reg, result = _audit(scen)
        fd = reg.inverters[0].freq_droop
        assert fd is not None
        # The 90 % response time of a first-order lag: 1 - exp(-t / tau) = 0.9 -> t = ln(10) tau.
        assert fd.t_response_s == pytest.approx(math.log(10) * 0.2)
        assert fd.t_response_max_s == pytest.approx(math.log(10) * DEFAULT_SCENARIO.frequency.ev_t_response_max_s)
        assert status_of(result.findings, "IEEE1547-FD", "V2G-1547") == expected, cat


def test_slowest_response_time_and_the_legacy_group_are_audited() -> None:
    # tau_max = 20 s: ln(10) x 20 = 46.05 s, above the 10 s upper end (one source: a warning, not a pass), in both
    # groups (every plugged-in EV gets the droop in the frequency step).
    scen = DEFAULT_SCENARIO.model_copy(
        update={"frequency": DEFAULT_SCENARIO.frequency.model_copy(update={"ev_t_response_max_s": 20.0})}
    )
    reg, result = _audit(scen)
    inv = {i.id: i for i in reg.inverters}
    assert inv["V2G-legacy"].freq_droop is not None
    assert inv["V2G-legacy"].freq_droop.t_response_max_s == pytest.approx(46.0517, abs=1e-4)
    for asset in ("V2G-1547", "V2G-legacy"):
        f = next(f for f in result.findings if f.rule == "IEEE1547-FD" and f.asset == asset)
        assert f.status == "warning" and "t_response_max_s 46.0517 s above 10 s" in f.evidence, f.evidence
