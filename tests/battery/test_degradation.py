"""Tests of the fleet capacity-fade models (v2gtwin.battery.degradation, .nmc, .lfp, .cycles, .states).

References: NREL's BLAST-Lite 1.1.1 outputs committed under tests/data/blast_lite (made by
scripts/blast_lite_reference.py in its own venv), the ``rainflow`` package (ASTM E1049), closed forms of the
models (power laws in time, the Arrhenius factor), and hand-computed rainflow cases.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import require_part
from v2gtwin.battery import nmc
from v2gtwin.battery.cycles import calc_cycle_dod_pu, extract_cycles
from v2gtwin.battery.degradation import CHEMISTRIES, calc_fade, summarize_fade
from v2gtwin.battery.states import (
    calc_power_state_unit,
    step_power_b_state,
    step_power_state,
    step_sigmoid_state,
)
from v2gtwin.errors import DataError

DATA = Path(__file__).resolve().parent.parent / "data" / "blast_lite"
FILES = {"nmc": "nmc111_gr_Sanyo2Ah_2014.json", "lfp": "lfp_gr_SonyMurata3Ah_2018.json"}
KEYS = ("q_loss_pu", "q_loss_cal_pu", "q_loss_cyc_pu")

# Tolerance against BLAST-Lite: 1e-9 relative. Both sides evaluate the same equations in the same order of
# periods in double precision; what differs is only floating-point rounding (the sigmoid slope is written in
# an algebraically equal closed form here, the calendar state as rate x one shared sequence, numpy 2's
# trapezoid vs numpy 1's trapz), which measured at most 4e-13 relative over 10 years. A transcription error in
# any parameter or a different state update would show at 1e-4 or more.
RTOL_BLAST = 1e-9


def _reference(chem: str) -> dict:
    return json.loads((DATA / FILES[chem]).read_text())


def _inputs(prof: dict) -> tuple[np.ndarray, float, np.ndarray]:
    soc = np.asarray(prof["soc_pu"], dtype=float)[None, :]
    temp = np.asarray(prof["temp_c"], dtype=float)
    return soc, float(prof["dt_h"]), (temp[None, :] if temp.ndim else temp)


def test_reference_files_name_their_source():
    for chem, fname in FILES.items():
        head = _reference(chem)["header"]
        assert head["blast_lite_version"] == "1.1.1"
        assert head["model_class"].startswith("blast.models.")
        assert head["years"] == 10 and head["date"]
        assert chem in CHEMISTRIES, fname


@pytest.mark.parametrize("chem", sorted(FILES))
def test_matches_blast_lite_on_every_reference_profile(chem):
    ref = _reference(chem)
    assert set(ref["profiles"]) == {
        "calendar_soc80_25c",
        "calendar_soc80_45c",
        "daily_dod50_35c",
        "daily_dod80_35c",
        "cycling_4x_dod90_25c",
        "v2g_day_25c",
    }
    for name, prof in ref["profiles"].items():
        soc, dt_h, temp = _inputs(prof)
        # BLAST-Lite takes the day's max - min as its depth of discharge: the like-for-like method
        res = calc_fade(soc, dt_h, temp, ref["header"]["years"], chem, dod_method="range")
        for key in KEYS:
            np.testing.assert_allclose(
                getattr(res, key)[0], ref["results"][name][key], rtol=RTOL_BLAST, atol=1e-15, err_msg=f"{name} {key}"
            )


N_FLEET = 17_000


def test_fleet_of_mixed_profiles_and_chemistries_matches_blast_lite_per_ev():
    # 17,000 EVs (not a multiple of the NMC kernel's 512-EV or the LFP loop's 8192-EV blocks, so LFP runs on
    # threads), each one of the reference profiles and one of the two chemistries, temperatures given per EV
    # and step: every EV must match its own BLAST-Lite run.
    refs = {c: _reference(c) for c in FILES}
    names = sorted(refs["nmc"]["profiles"])
    rng = np.random.default_rng(7)
    pick = rng.integers(0, len(names), N_FLEET)
    chem = [("nmc", "lfp")[k] for k in rng.integers(0, 2, N_FLEET)]
    profs = [refs["nmc"]["profiles"][names[k]] for k in pick]
    soc = np.array([p["soc_pu"] for p in profs])
    temp = np.array([np.broadcast_to(np.asarray(p["temp_c"], dtype=float), (96,)) for p in profs])
    res = calc_fade(soc, 0.25, temp, 10, chem, dod_method="range")
    assert res.chemistry == tuple(chem)
    for i in range(0, N_FLEET, 97):
        want = refs[chem[i]]["results"][names[pick[i]]]["q_loss_pu"]
        np.testing.assert_allclose(res.q_loss_pu[i], want, rtol=RTOL_BLAST)


def test_calendar_fade_follows_t_to_the_0p75_at_constant_conditions():
    # Schmalstieg: q_cal = alpha t^0.75 at constant SoC and temperature. The daily state steps follow the tangent
    # of this concave curve, so they sit a little above it: the excess decays like 1/n (about 0.16 % after 365
    # steps, 0.02 % after 3650), never below the curve.
    soc = np.full((1, 96), 0.5)
    res = calc_fade(soc, 0.25, 25.0, 10, "nmc")
    alpha = (7.543 * nmc.calc_ocv_v(0.5) - 23.75) * 1e6 * math.exp(-6976.0 / 298.15)
    t_days = 365.0 * np.arange(1, 11)
    exact = alpha * t_days**0.75
    ratio = res.q_loss_cal_pu[0] / exact
    assert np.all(ratio >= 1.0)
    assert ratio[0] < 1.005 and ratio[-1] < 1.001
    # the growth from year 1 to year 10 is 10^0.75 = 5.623 (to the same tolerance)
    assert res.q_loss_cal_pu[0, -1] / res.q_loss_cal_pu[0, 0] == pytest.approx(10**0.75, rel=5e-3)
    assert np.all(res.q_loss_cyc_pu == 0.0)  # a constant SoC moves no charge


def test_calendar_fade_temperature_ratio_is_the_arrhenius_factor():
    # alpha_cap ~ exp(-6976 / T): between 25 and 45 degC at the same SoC, the calendar loss ratio at any time is
    # exp(6976 (1/298.15 - 1/318.15)) = exp(1.47085...) = 4.3531...
    soc = np.full((2, 96), 0.8)
    res = calc_fade(soc, 0.25, np.array([25.0, 45.0]), 3, "nmc")
    want = math.exp(6976.0 * (1.0 / 298.15 - 1.0 / 318.15))
    np.testing.assert_allclose(res.q_loss_cal_pu[1] / res.q_loss_cal_pu[0], want, rtol=1e-12)


def test_power_state_steps_against_the_closed_form():
    # from a fresh state one step is the trajectory itself: k dx^p
    assert step_power_state(0.0, 4.0, 0.01, 0.5) == pytest.approx(0.01 * 2.0, rel=1e-15)
    # from y0 the slope is k p (y0/k)^((p-1)/p): y0 = 0.02, k = 0.01, p = 0.5 -> 0.01 * 0.5 * (2)^-1 = 0.0025
    assert step_power_state(0.02, 1.0, 0.01, 0.5) == pytest.approx(0.0025, rel=1e-15)
    # p = 0.75: y0 = 0.08 = k * 8^0.75 at x = 8 (k = 0.08 / 8^0.75); slope k 0.75 8^-0.25 = 0.75 * 0.08 / 8
    k = 0.08 / 8**0.75
    assert step_power_state(0.08, 1.0, k, 0.75) == pytest.approx(0.0075, rel=1e-12)
    # the shared sequence: the first value is dx^p, then tangent steps above the curve
    u = calc_power_state_unit(2.0, 0.75, 3)
    assert u[0] == pytest.approx(2.0**0.75, rel=1e-15)
    assert u[1] == pytest.approx(u[0] + 0.75 * u[0] ** (-1.0 / 3.0) * 2.0, rel=1e-15)


def test_sigmoid_and_power_b_slopes_are_the_trajectories_derivatives():
    # The step from y0 is the trajectory's slope at the x that gives y0, times dx. Reference: the closed-form
    # trajectory differentiated numerically (central difference, h = 1e-4 of x) at that x.
    y_inf, k, p, x = 0.12, 0.003, 1.4, 150.0

    def sig(x):
        return 2 * y_inf * (0.5 - 1 / (1 + math.exp((k * x) ** p)))

    h = 1e-4 * x
    slope = (sig(x + h) - sig(x - h)) / (2 * h)
    assert step_sigmoid_state(sig(x), 1.0, y_inf, k, p) == pytest.approx(slope, rel=1e-7)
    assert step_sigmoid_state(0.0, x, y_inf, k, p) == pytest.approx(sig(x), rel=1e-14)  # fresh: the trajectory
    assert step_sigmoid_state(y_inf, 1.0, y_inf, k, p) == 0.0  # at the asymptote it does not grow

    kb, pb = 2e-5, 1.13

    def pw(x):
        return (kb * x) ** pb

    slope = (pw(x + h) - pw(x - h)) / (2 * h)
    assert step_power_b_state(pw(x), 1.0, kb, pb) == pytest.approx(slope, rel=1e-7)
    assert step_power_b_state(0.0, x, kb, pb) == pytest.approx(pw(x), rel=1e-14)


def test_rainflow_counter_equals_the_rainflow_package_on_random_series():
    try:
        import rainflow
    except ImportError:  # pragma: no cover - the dev extra installs it
        require_part(False, "the rainflow package (pip install rainflow==3.2)")
        return
    rng = np.random.default_rng(2024)
    for n in (0, 1, 2, 3, 4, 5, 8, 25, 96, 300):
        for trial in range(60):
            # integer levels give repeated values and ties (the reversal rule's edge cases); floats the rest
            x = rng.integers(0, 4, n).astype(float) if trial % 2 else rng.random(n)
            assert extract_cycles(x) == list(rainflow.extract_cycles(x)), (n, x.tolist())


def test_periodic_dod_of_a_v2g_day_by_hand():
    # The V2G reference day, rotated to start at its highest SoC 0.85 (12:00) and closed with it, has the
    # reversals 0.85, 0.45, 0.80, 0.65, 0.85: one full cycle 0.80-0.65 (range 0.15) and one full cycle
    # 0.85-0.45 (range 0.40). Throughput-weighted DoD = (0.15^2 + 0.40^2) / (0.15 + 0.40) = 0.1825 / 0.55.
    prof = _reference("nmc")["profiles"]["v2g_day_25c"]
    soc = np.asarray(prof["soc_pu"])[None, :]
    assert calc_cycle_dod_pu(soc)[0] == pytest.approx(0.1825 / 0.55, rel=1e-12)
    # one charge and one discharge a day: the rainflow DoD is the range
    day = _reference("nmc")["profiles"]["daily_dod80_35c"]
    assert calc_cycle_dod_pu(np.asarray(day["soc_pu"])[None, :])[0] == pytest.approx(0.8, rel=1e-12)
    # a constant SoC has no cycles
    assert calc_cycle_dod_pu(np.full((1, 10), 0.5))[0] == 0.0


def test_rainflow_dod_lowers_cycle_fade_of_the_v2g_day_against_the_range():
    # beta_cap grows with DoD (4.081e-3 per unit), so the same day counted with its smaller rainflow DoD must
    # age less by cycling, and identically by calendar
    prof = _reference("nmc")["profiles"]["v2g_day_25c"]
    soc, dt_h, temp = _inputs(prof)
    rf = calc_fade(soc, dt_h, temp, 2, "nmc")
    rg = calc_fade(soc, dt_h, temp, 2, "nmc", dod_method="range")
    assert rf.dod_method == "rainflow" and rg.dod_method == "range"
    assert np.all(rf.q_loss_cyc_pu < rg.q_loss_cyc_pu)
    np.testing.assert_array_equal(rf.q_loss_cal_pu, rg.q_loss_cal_pu)


def test_efc_per_day_by_hand():
    # daily_dod80: 0.9 -> 0.1 -> 0.9, total |dSoC| = 1.6, i.e. 0.8 equivalent full cycles a day
    prof = _reference("lfp")["profiles"]["daily_dod80_35c"]
    soc, dt_h, temp = _inputs(prof)
    assert calc_fade(soc, dt_h, temp, 1, "lfp").efc_per_day[0] == pytest.approx(0.8, rel=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"soc_pu": np.full((2, 96), 1.2)}, "soc_pu must be finite and within 0-1"),
        ({"soc_pu": np.full((2, 96), np.nan)}, "soc_pu must be finite"),
        ({"soc_pu": np.full(96, 0.5)}, "soc_pu must be a non-empty (n_ev, n_t)"),
        ({"dt_h": 0.5}, "must be 24 h"),
        ({"dt_h": -1.0}, "dt_h must be a positive"),
        ({"temp_c": np.nan}, "temp_c must be finite and within 0 to 60"),
        ({"temp_c": np.zeros(3)}, "temp_c must be a scalar"),
        ({"years": 0}, "years must be a whole number from 1 to 30"),
        ({"years": 2.5}, "years must be a whole number"),
        ({"chemistry": "nca"}, "chemistry 'nca' is not known; allowed: nmc, lfp"),
        ({"chemistry": ["nmc"]}, "chemistry must be one name or one per EV (2)"),
        ({"capacity_kwh": np.array([60.0, -1.0])}, "capacity_kwh must be (2,) positive"),
        ({"dod_method": "peak"}, "dod_method must be 'rainflow' or 'range'"),
    ],
)
def test_bad_input_is_one_clear_error(kwargs, message):
    args = {"soc_pu": np.full((2, 96), 0.5), "dt_h": 0.25, "temp_c": 25.0, "years": 1}
    args.update({k: v for k, v in kwargs.items() if k in args})
    extra = {k: v for k, v in kwargs.items() if k not in args}
    with pytest.raises(DataError) as err:
        calc_fade(**args, **extra)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    chem=st.sampled_from(CHEMISTRIES),
    temp=st.floats(0.0, 60.0),
)
def test_fade_invariants_on_random_days(seed, chem, temp):
    # Invariants of any duty cycle: losses finite, >= 0, growing year on year (every slope is >= 0), total =
    # calendar + cycle, and the rainflow DoD never above the day's range (each cycle's range is within it).
    rng = np.random.default_rng(seed)
    soc = np.clip(np.cumsum(rng.normal(0, 0.03, (5, 96)), axis=1) + rng.uniform(0.2, 0.8, (5, 1)), 0.0, 1.0)
    res = calc_fade(soc, 0.25, temp, 3, chem)
    assert np.all(np.isfinite(res.q_loss_pu)) and np.all(res.q_loss_pu >= 0.0)
    assert np.all(np.diff(res.q_loss_pu, axis=1) >= 0.0)
    np.testing.assert_allclose(res.q_loss_pu, res.q_loss_cal_pu + res.q_loss_cyc_pu, rtol=1e-15)
    assert res.dod_pu is not None
    assert np.all(res.dod_pu <= soc.max(axis=1) - soc.min(axis=1) + 1e-15)


@pytest.mark.parametrize("chem", CHEMISTRIES)
def test_loss_saturates_at_one_and_never_heals(chem):
    # A hot, hard-cycled cell (60 degC, three 80 % swings a day, 30 years): NMC's calendar term alone passes 1
    # within a few years (alpha_cap at 60 degC ~ 2.4e-3 /day^0.75: 2.4e-3 x 1095^0.75 ~ 0.46 after 3 years,
    # ~1.5 after 30). A capacity cannot go below 0: the total loss must stay <= 1, every state must stay
    # non-decreasing (a negative throughput would shrink the cycle state: "healing"), and once the total is 1
    # the cycle state must not move (no capacity, no charge moved). Mutations caught: dropping the
    # max(ah, 0) in nmc._run (the cycle loss falls), dropping the cap in calc_fade (loss > 1).
    t = np.arange(96)
    soc = np.tile(0.5 + 0.4 * np.sin(2 * np.pi * 3 * t / 96), (2, 1))
    res = calc_fade(soc, 0.25, 60.0, 30, chem)
    assert np.all(res.q_loss_pu <= 1.0 + 1e-12)
    assert np.all(np.diff(res.q_loss_cyc_pu, axis=1) >= 0.0)
    assert np.all(np.diff(res.q_loss_cal_pu, axis=1) >= -1e-15) or chem == "nmc"
    dead = res.q_loss_pu[0] >= 1.0 - 1e-12
    if chem == "nmc":
        assert dead.any()  # the case must reach saturation to test it
        first = int(np.argmax(dead))
        assert np.all(res.q_loss_cyc_pu[0, first + 1 :] == res.q_loss_cyc_pu[0, first])
        assert res.years_to_fade(0.2)[0] == int(np.argmax(res.q_loss_pu[0] >= 0.2)) + 1


def test_summary_counts_evs_past_end_of_life():
    # Two EVs: one idle at 25 degC (calendar only, < 20 % after 2 years), one cycled hard at 60 degC (NMC past
    # 20 % in year 1, as above): year 1 counts exactly one past an end of life of 0.2.
    t = np.arange(96)
    soc = np.vstack([np.full(96, 0.5), 0.5 + 0.4 * np.sin(2 * np.pi * 3 * t / 96)])
    res = calc_fade(soc, 0.25, np.array([25.0, 60.0]), 2, "nmc")
    out = summarize_fade(res, None, 0.2)
    assert res.q_loss_pu[0, 1] < 0.2 <= res.q_loss_pu[1, 0]
    assert out["by_year"]["year_1"]["n_evs_past_eol"] == 1
    assert out["by_year"]["year_1"]["n_evs_dead"] == 0


def test_temperatures_outside_the_cycling_tests_are_named():
    # BLAST-Lite 1.1.1 experimental_range["cycling_temperature"] = [20, 40] for both models.
    from v2gtwin.battery.degradation import calc_extrapolation_note

    assert calc_extrapolation_note(25.0) is None and calc_extrapolation_note(40.0) is None
    assert "outside the 20-40 degC" in (calc_extrapolation_note(45.0) or "")
    assert "extrapolated" in (calc_extrapolation_note(0.0) or "")
