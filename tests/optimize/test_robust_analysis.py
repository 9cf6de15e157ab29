"""The robust analysis' wiring: the scenario chooses the uncertainty (synthetic covariance or weather), bare
radii carry the chi-square promise, a violation probability adds its radius; the example scenario validates."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import chi2

from v2gtwin.markets.scheduling import run_robust_analysis
from v2gtwin.scenario import MarketsSpec, TimeGrid, load_scenario

from .test_schedule import small_fleet

TIME = TimeGrid(n_steps=24, dt_s=3600, start_hour=12)
BASE = 300.0 + 100.0 * np.sin(np.arange(24) / 24 * 2 * np.pi)


def test_synthetic_uncertainty_and_bare_radii() -> None:
    spec = MarketsSpec(
        robust_uncertainty="synthetic", robust_omegas=(0.0, 1.0), robust_cap_share=1.5, robust_radius_bound="chi2"
    )
    rb = run_robust_analysis(small_fleet(), BASE, spec, TIME, seed=1)
    # sd = 0.08 x the load on the diagonal of the synthetic covariance; full rank.
    np.testing.assert_allclose(rb.sd_kw, 0.08 * BASE, rtol=1e-12)
    assert rb.n_dims == 24 and rb.rates_observed == ()
    s = rb.summary()
    assert rb.currency == "USD" and s["horizon_h"] == 24.0 and s["uncertainty"] == "synthetic"
    # Omega = 1 with 24 dimensions promises P(chi2_24 > 1) = 1 - 1.1e-13: nothing, and says so (None).
    assert chi2.sf(1.0, 24) > 1 - 1e-9
    assert s["radii"]["omega_1"]["violation_prob_promised_at_most"] is None
    assert s["radii"]["omega_0"]["solver"] == "clarabel"


def test_weather_uncertainty_with_a_violation_probability() -> None:
    spec = MarketsSpec(robust_violation_prob=0.1, robust_radius_bound="cantelli", robust_cap_share=2.0)
    rb = run_robust_analysis(small_fleet(), BASE, spec, TIME, seed=1, currency="EUR")
    s = rb.summary()
    assert "723170TYA.CSV" in s["source"] and s["forecast"].startswith("persistence (day 196 = day 195)")
    # Cantelli at 0.1: Omega = sqrt(0.9 / 0.1) = 3; the nominal schedule first.
    assert rb.omegas == pytest.approx((0.0, 3.0))
    assert s["radii"]["omega_3"]["violation_prob_promised_at_most"] == pytest.approx(0.1)
    assert rb.currency == "EUR" and s["observed_days"] > 50
    assert math.isfinite(s["radii"]["omega_3"]["violation_rate_observed"])


def test_example_scenario_validates() -> None:
    scen = load_scenario(Path(__file__).resolve().parents[2] / "examples" / "robust_weather.toml")
    assert scen.markets.robust_violation_prob == 0.05 and scen.markets.robust_uncertainty == "weather"


def test_infeasible_radius_is_recorded_and_the_others_go_on() -> None:
    fleet = small_fleet()
    spec = MarketsSpec(
        robust_uncertainty="synthetic",
        robust_sd_share=0.5,
        robust_omegas=(0.0, 2.0),
        robust_cap_share=1.2,
        robust_radius_bound="cantelli",
    )
    # Certificate by hand: the import cap needs mu_t + p_min_t + Omega sd_t <= cap in every period (with
    # ||L_t + Y_t|| >= sd_t - ||Y_t|| and pbar_t - Omega ||Y_t|| >= p_min_t). sd = 0.5 mu, cap = 1.2 x 400 kW;
    # at the peak mu = 400 kW, Omega = 2 needs 400 + p_min + 400 <= 480, i.e. a discharge of 320 kW.
    from v2gtwin.fleet import calc_envelope

    p_min = calc_envelope(small_fleet()).p_min_kw
    cap = 1.2 * BASE.max()
    assert np.any(BASE + p_min + 2.0 * 0.5 * BASE > cap)  # Omega = 2 cannot hold
    assert np.all(BASE + p_min <= cap)  # Omega = 0 is not ruled out (the solver then finds a schedule)
    rb = run_robust_analysis(fleet, BASE, spec, TIME, seed=1)
    s = rb.summary()
    assert rb.feasible == (True, False) and s["n_radii_feasible"] == 1
    bad = s["radii"]["omega_2"]
    assert bad["feasible"] is False and "infeasible at Omega = 2" in bad["infeasible_reason"]
    assert "import cap" in bad["infeasible_reason"]
    assert bad["violation_prob_promised_at_most"] == pytest.approx(1 / (1 + 2.0**2))  # Cantelli 1/(1+Omega^2)
    ok = s["radii"]["omega_0"]
    assert ok["feasible"] is True and ok["violation_prob_promised_at_most"] is None  # Omega = 0 promises nothing
    assert math.isfinite(ok["expected_cost_per_horizon"]) and rb.violation_rate[1] is None
