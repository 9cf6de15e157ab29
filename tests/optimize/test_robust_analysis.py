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
    spec = MarketsSpec(robust_uncertainty="synthetic", robust_omegas=(0.0, 1.0), robust_cap_share=1.5)
    rb = run_robust_analysis(small_fleet(), BASE, spec, TIME, seed=1)
    # sd = 0.08 x the load on the diagonal of the synthetic covariance; full rank.
    np.testing.assert_allclose(rb.sd_kw, 0.08 * BASE, rtol=1e-12)
    assert rb.n_dims == 24 and rb.rates_observed == ()
    s = rb.summary()
    assert rb.currency == "USD" and s["horizon_h"] == 24.0 and s["uncertainty"] == "synthetic"
    # Omega = 1 with 24 dimensions promises P(chi2_24 > 1) = 1 - 1.1e-13: nothing, and says so.
    assert s["radii"]["omega_1"]["violation_prob_promised"] == pytest.approx(chi2.sf(1.0, 24))
    assert s["radii"]["omega_0"]["solver"] == "clarabel"


def test_weather_uncertainty_with_a_violation_probability() -> None:
    spec = MarketsSpec(robust_violation_prob=0.1, robust_radius_bound="cantelli", robust_cap_share=2.0)
    rb = run_robust_analysis(small_fleet(), BASE, spec, TIME, seed=1, currency="EUR")
    s = rb.summary()
    assert "723170TYA.CSV" in s["source"] and s["forecast"].startswith("persistence (day 196 = day 195)")
    # Cantelli at 0.1: Omega = sqrt(0.9 / 0.1) = 3; the nominal schedule first.
    assert rb.omegas == pytest.approx((0.0, 3.0))
    assert s["radii"]["omega_3"]["violation_prob_promised"] == pytest.approx(0.1)
    assert rb.currency == "EUR" and s["observed_days"] > 50
    assert math.isfinite(s["radii"]["omega_3"]["violation_rate_observed"])


def test_example_scenario_validates() -> None:
    scen = load_scenario(Path(__file__).resolve().parents[2] / "examples" / "robust_weather.toml")
    assert scen.markets.robust_violation_prob == 0.05 and scen.markets.robust_uncertainty == "weather"
