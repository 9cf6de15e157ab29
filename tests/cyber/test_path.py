"""Command-path model: convolution and Monte Carlo against closed forms, reliability, retries, services,
the delayed fleet response, and the CLI.

Every reference here is a closed form written out in the test (hypoexponential, Erlang, gamma with integer
shape, geometric attempts) or a brute-force simulation written independently of the code under test.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tests.cli_helpers import assert_one_line_error, run_cli
from v2gtwin.cyber.path import (
    Path,
    RetryPolicy,
    Segment,
    calc_attempt_grid,
    calc_landing_grid,
    sample_attempt_s,
    sample_landing_s,
)
from v2gtwin.cyber.path_analysis import run_path_analysis
from v2gtwin.cyber.path_defaults import PATHS, build_services
from v2gtwin.errors import DataError
from v2gtwin.grid.agc import calc_lag_weights, run_regulation

# Dvoretzky-Kiefer-Wolfowitz: P(sup |F_n - F| > eps) <= 2 exp(-2 n eps^2); n = 200,000 and eps = 0.005 gives
# a bound of 2 exp(-10) = 9e-5 for a false failure.
N_MC = 200_000
EPS_MC = 0.005


def seg(name: str, fixed: float = 0.0, mean: float = 0.0, dist: str = "none", cv: float = 1.0, proc: float = 0.0,
        p: float = 1.0) -> Segment:  # fmt: skip
    return Segment(name, fixed, mean, dist, cv, proc, p, "test")


def ecdf(samples: np.ndarray, t: np.ndarray, n: int) -> np.ndarray:
    return np.searchsorted(np.sort(samples), t, side="right") / n


def erlang_cdf(t: np.ndarray, k: int, scale: float) -> np.ndarray:
    """P(Gamma(k, scale) <= t) for an integer k: 1 - exp(-x) sum_{j<k} x^j / j!."""
    x = t / scale
    return 1.0 - np.exp(-x) * sum(x**j / math.factorial(j) for j in range(k))


T = np.array([0.005, 0.02, 0.05, 0.08, 0.12, 0.2, 0.35])


def test_sum_of_two_exponentials_is_hypoexponential() -> None:
    # X1 ~ Exp(mean a), X2 ~ Exp(mean b), a != b: P(X1 + X2 <= t) = 1 - (b e^{-t/b} - a e^{-t/a}) / (b - a).
    a, b = 0.02, 0.05
    path = Path((seg("x", mean=a, dist="exponential"), seg("y", mean=b, dist="exponential")))
    ref = 1.0 - (b * np.exp(-T / b) - a * np.exp(-T / a)) / (b - a)
    g = calc_attempt_grid(path)
    assert np.interp(T, g.t_s, g.cdf) == pytest.approx(ref, abs=2e-5)
    lat, ok = sample_attempt_s(path, np.random.default_rng(1), N_MC)
    assert ok.all()
    assert np.abs(ecdf(lat, T, N_MC) - ref).max() < EPS_MC
    assert path.mean_s == pytest.approx(a + b)
    assert g.mean_given_landed_s == pytest.approx(a + b, rel=1e-3)


def test_equal_exponentials_are_erlang_and_fixed_parts_shift() -> None:
    # Three Exp(mean 0.03) plus fixed 0.01 s and processing 0.005 s: 0.015 s + Erlang(3, 0.03).
    m = 0.03
    path = Path(
        (
            seg("a", fixed=0.01, mean=m, dist="exponential"),
            seg("b", mean=m, dist="exponential", proc=0.005),
            seg("c", mean=m, dist="exponential"),
        )
    )
    ref = np.where(T > 0.015, erlang_cdf(np.maximum(T - 0.015, 0.0), 3, m), 0.0)
    g = calc_attempt_grid(path)
    assert np.interp(T, g.t_s, g.cdf) == pytest.approx(ref, abs=2e-4)
    lat, _ = sample_attempt_s(path, np.random.default_rng(2), N_MC)
    assert np.abs(ecdf(lat, T, N_MC) - ref).max() < EPS_MC
    assert lat.min() >= 0.015


def test_gamma_sum_with_equal_scale_is_gamma() -> None:
    # Gamma(shape 4, scale 0.025) [mean 0.1, cv 1/2] + Gamma(shape 2, scale 0.025) [mean 0.05, cv 1/sqrt 2]
    # = Gamma(shape 6, scale 0.025).
    path = Path((seg("a", mean=0.1, dist="gamma", cv=0.5), seg("b", mean=0.05, dist="gamma", cv=math.sqrt(0.5))))
    ref = erlang_cdf(T, 6, 0.025)
    g = calc_attempt_grid(path)
    assert np.interp(T, g.t_s, g.cdf) == pytest.approx(ref, abs=2e-5)
    lat, _ = sample_attempt_s(path, np.random.default_rng(3), N_MC)
    assert np.abs(ecdf(lat, T, N_MC) - ref).max() < EPS_MC
    assert path.var_s2 == pytest.approx(6 * 0.025**2)


def test_lognormal_part_convolution_agrees_with_monte_carlo() -> None:
    # No closed form for a lognormal sum: convolution and Monte Carlo against each other, and the moments.
    path = Path((seg("a", mean=0.05, dist="lognormal", cv=0.8), seg("b", fixed=0.01, mean=0.02, dist="exponential")))
    g = calc_attempt_grid(path)
    lat, _ = sample_attempt_s(path, np.random.default_rng(4), N_MC)
    assert np.abs(ecdf(lat, T, N_MC) - np.interp(T, g.t_s, g.cdf)).max() < EPS_MC
    assert g.mean_given_landed_s == pytest.approx(0.08, rel=2e-3)
    assert path.var_s2 == pytest.approx(0.04**2 + 0.02**2)


def test_none_random_part_is_a_constant() -> None:
    # random_dist "none" with random_mean_s 0.1: the latency is 0.02 + 0.1 + 0.03 = 0.15 s exactly.
    path = Path((seg("a", fixed=0.02, mean=0.1, dist="none", proc=0.03),))
    assert path.mean_s == pytest.approx(0.15)
    assert path.var_s2 == 0.0
    g = calc_attempt_grid(path)
    assert g.prob_by(0.149) == pytest.approx(0.0, abs=1e-9)
    assert g.prob_by(0.151) == pytest.approx(1.0, abs=1e-9)
    lat, _ = sample_attempt_s(path, np.random.default_rng(10), 100)
    assert lat == pytest.approx(np.full(100, 0.15))


def test_reliability_is_the_product() -> None:
    path = Path((seg("a", p=0.99), seg("b", p=0.95), seg("c", p=0.9)))
    assert path.p_success == pytest.approx(0.99 * 0.95 * 0.9)
    _, ok = sample_attempt_s(path, np.random.default_rng(5), N_MC)
    # binomial standard deviation sqrt(p(1-p)/n) = 0.001; 5 sigma
    assert ok.mean() == pytest.approx(0.84645, abs=0.005)
    g = calc_attempt_grid(path)
    assert g.cdf[-1] == pytest.approx(0.84645)


def test_retries_with_deterministic_latency_are_geometric() -> None:
    # Latency d = 0.3 s < timeout 1 s, one attempt gets through with p = 0.9 x 0.8 = 0.72, 4 attempts: the
    # command lands at k + 0.3 s with probability (1 - p)^k p, never with (1 - p)^4 = 0.28^4 = 0.00614656.
    path = Path((seg("a", fixed=0.2, p=0.9), seg("b", proc=0.1, p=0.8)))
    retry = RetryPolicy(timeout_s=1.0, max_attempts=4)
    p = 0.72
    g = calc_landing_grid(path, retry)
    for k in range(4):
        assert g.prob_by(k + 0.29) == pytest.approx(1 - (1 - p) ** k, abs=1e-9)
        assert g.prob_by(k + 0.31) == pytest.approx(1 - (1 - p) ** (k + 1), abs=1e-9)
    assert g.p_success == pytest.approx(1 - 0.00614656)
    assert g.quantile_s(0.5) == pytest.approx(0.3, abs=2 * g.dt_s)  # 0.72 >= 0.5 on the first attempt
    assert g.quantile_s(0.9) == pytest.approx(1.3, abs=2 * g.dt_s)  # 0.72 < 0.9 <= 1 - 0.28^2 = 0.9216
    assert g.quantile_s(0.95) == pytest.approx(2.3, abs=2 * g.dt_s)  # 0.9216 < 0.95 <= 1 - 0.28^3 = 0.978
    assert g.quantile_s(0.999) is None  # never reached: 0.99385 < 0.999
    # mean given landed: sum_k (k + 0.3) 0.28^k 0.72 / (1 - 0.28^4)
    mean = sum((k + 0.3) * 0.28**k * 0.72 for k in range(4)) / (1 - 0.28**4)
    assert g.mean_given_landed_s == pytest.approx(mean, abs=1e-3)
    t, landed = sample_landing_s(path, retry, np.random.default_rng(6), N_MC)
    counts = np.array([np.count_nonzero(np.isclose(t[landed], k + 0.3)) for k in range(4)]) / N_MC
    assert counts == pytest.approx([0.28**k * 0.72 for k in range(4)], abs=0.005)


def test_retries_with_random_latency_against_brute_force() -> None:
    # Exponential latency (mean 0.4 s) with a 0.5 s timeout: late attempts overlap with retries. Brute force:
    # per command, send attempts at 0, T, 2T, each lost with 1 - p, and take the earliest arrival.
    path = Path((seg("a", fixed=0.1, mean=0.4, dist="exponential", p=0.8),))
    retry = RetryPolicy(timeout_s=0.5, max_attempts=3)
    rng = np.random.default_rng(7)
    arrive = np.full(N_MC, np.inf)
    for k in range(3):
        lat = 0.1 + rng.exponential(0.4, N_MC)
        got = rng.random(N_MC) < 0.8
        arrive = np.where(got, np.minimum(arrive, k * 0.5 + lat), arrive)
    t = np.array([0.2, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0])
    brute = np.count_nonzero(arrive[:, None] <= t, axis=0) / N_MC
    g = calc_landing_grid(path, retry)
    assert np.array([g.prob_by(x) for x in t]) == pytest.approx(brute, abs=EPS_MC)
    assert g.p_success == pytest.approx(1 - 0.2**3)


def test_with_segment_replaces_the_hop() -> None:
    path = PATHS["lte"]()
    measured = Segment("csms->charger (measured OCPP)", 0.002, 0.001, "exponential", 1.0, 0.0, 1.0, "measured: x")
    new = path.with_segment(measured)
    assert [s.name for s in new.segments] == ["csms", "csms->charger (measured OCPP)", new.segments[2].name]
    assert new.mean_s == pytest.approx(path.mean_s - 0.04 + 0.003)
    with pytest.raises(DataError, match="no hop 'EV->battery'"):
        path.with_segment(Segment("EV->battery", 0, 0, "none", 0, 0, 1, "x"))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"p_success": 1.5}, r"p_success = 1.5 is not a probability in \[0, 1\]"),
        ({"p_success": -0.1}, "p_success"),
        ({"fixed_s": -0.01}, r"fixed_s = -0.01 is not a finite latency >= 0 s"),
        ({"random_mean_s": float("nan")}, "random_mean_s"),
        ({"processing_s": -1.0}, "processing_s"),
        ({"random_dist": "weibull"}, "random_dist = 'weibull' is not one of none, exponential, gamma, lognormal"),
        ({"random_dist": "gamma", "random_cv": 0.0}, "random_cv"),
        # An exponential part has cv 1; cv 2 used to be accepted, treated as 1 and echoed as 2.
        ({"random_dist": "exponential", "random_cv": 2.0}, "random_cv = 2.0: an exponential random part has cv 1"),
    ],
)
def test_bad_segment_is_a_clear_error(kwargs: dict[str, object], match: str) -> None:
    base: dict[str, object] = dict(
        name="x", fixed_s=0.0, random_mean_s=0.1, random_dist="exponential", random_cv=1.0, processing_s=0.0,
        p_success=1.0, source="t",
    )  # fmt: skip
    with pytest.raises(DataError, match=match):
        Segment(**(base | kwargs))  # type: ignore[arg-type]


def test_bad_retry_policy() -> None:
    with pytest.raises(DataError, match="timeout_s"):
        RetryPolicy(timeout_s=0.0)
    with pytest.raises(DataError, match=r"max_attempts = 0 is not an integer in \[1, 100\]"):
        RetryPolicy(max_attempts=0)


def test_services_flag_the_deadline_the_path_misses() -> None:
    # Deterministic 3 s path with p = 0.9 and no retry: AGC (2 s deadline) is missed with probability 1, the
    # reserve (600 s) and DR (3600 s) with 1 - 0.9 = 0.1; threshold 0.05 flags all three; primary response
    # needs no path and is never flagged.
    path = Path((seg("slow", fixed=3.0, p=0.9),))
    services = build_services(2.0, 600.0, 3600.0)
    res = run_path_analysis(path, RetryPolicy(10.0, 1), services, 0.05, np.random.default_rng(8), n_samples=10_000)
    rows = {r["service"]: r for r in res.service_rows()}
    assert rows["primary frequency response"]["needs_path"] is False
    assert rows["primary frequency response"]["flagged"] is False
    assert rows["AGC / regulation"]["p_miss"] == pytest.approx(1.0)
    assert rows["contingency reserve"]["p_miss"] == pytest.approx(0.1, abs=1e-9)
    assert rows["demand response"]["p_miss_mc"] == pytest.approx(0.1, abs=0.015)  # 5 sigma of 10,000 draws
    assert res.summary()["flagged"] == ["AGC / regulation", "contingency reserve", "demand response"]
    res2 = run_path_analysis(path, RetryPolicy(10.0, 1), services, 0.2, np.random.default_rng(8), n_samples=10_000)
    assert res2.summary()["flagged"] == ["AGC / regulation"]


def test_lag_weights_fractional_delay() -> None:
    # d = 2.5 s on a 2 s grid: k = 1, f = 0.25 -> weights 0.75 on lag 1, 0.25 on lag 2. Two samples 0 and
    # 2.5 s: (1, 0, 0) / 2 + (0, 0.75, 0.25) / 2.
    assert calc_lag_weights(2.5, 2.0)[:3] == pytest.approx([0.0, 0.75, 0.25])
    assert calc_lag_weights([0.0, 2.5], 2.0)[:3] == pytest.approx([0.5, 0.375, 0.125])
    with pytest.raises(DataError, match="delay_s"):
        calc_lag_weights(-1.0, 2.0)


def test_regulation_response_is_the_delayed_signal() -> None:
    # A fleet with ample headroom follows its set-point exactly, so the response is the signal delayed by the
    # path. Brute force: the set-point is held for each 2 s step; the fleet sees it d later; average the
    # delayed set-point over each step on a 1 ms sub-grid.
    rng = np.random.default_rng(9)
    sig = np.clip(rng.normal(0, 0.4, 400), -1, 1)
    dt, d = 2.0, 0.7
    sub = (np.arange(sig.size * 2000) + 0.5) * 0.001  # cell midpoints, 2000 per 2 s step
    seen = np.where(sub - d >= 0, sig[np.clip(((sub - d) // dt).astype(int), 0, None)], 0.0)
    brute = seen.reshape(sig.size, -1).mean(axis=1)
    n = 200
    big = np.full(n, 1000.0)
    res = run_regulation(
        sig, dt, 100.0, np.full(n, 0.5), big, np.zeros(n), np.ones(n), np.zeros(n), np.full(n, 50.0),
        np.full(n, 50.0), np.ones(n), np.ones(n), "pro_rata", delay_s=d,
    )  # fmt: skip
    assert res.response_pu == pytest.approx(brute, abs=1e-6)


def test_cli_cyber_path_json_and_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "cyber", "path", "--json", "--path", "nbiot")
    assert code == 0, err
    data = json.loads(out)
    assert data["path"] == "NB-IoT"
    rows = {r["service"]: r for r in data["services"]}
    assert rows["primary frequency response"]["p_miss"] is None
    # NB-IoT's 1.8 s mean latency misses the 2 s AGC signal far more often than 1 %; the convolution's figure
    # agrees with the Monte Carlo one (100,000 draws: 5 sigma < 0.007).
    agc = rows["AGC / regulation"]
    assert agc["p_miss"] == pytest.approx(agc["p_miss_mc"], abs=0.007)
    assert agc["p_miss"] > 0.1
    assert data["flagged"] == ["AGC / regulation"]
    # The deadlines come from the scenario: reserve lead 10 min = 600 s; DR notice 16:00 -> 17:00 = 3600 s.
    assert rows["contingency reserve"]["deadline_s"] == 600.0
    assert rows["demand response"]["deadline_s"] == 3600.0
    code, out, err = run_cli(capsys, "cyber", "path", "--deadline-miss-max", "2")
    assert_one_line_error(code, err)
    assert "cyber.deadline_miss_max" in err and "<= 1" in err


def test_study_delays_the_regulation_response_by_the_path() -> None:
    # Default LTE path: one attempt has mean latency 0.005 + 0.04 + 0.195 = 0.24 s and gets through with
    # p = 0.995 x 0.999 = 0.994005; with a 1 s timeout and 3 attempts (latency << timeout), a landed command
    # is k s late with probability q^k p / (1 - q^3), q = 1 - p, so its mean delay is
    # 0.24 + (q p + 2 q^2 p) / (1 - q^3) s = 0.24603 s. Monte Carlo of 100,000: sd about 0.1 / 316 = 0.0003.
    from v2gtwin.report.cyber_path import cyber_path_section
    from v2gtwin.scenario import parse_scenario
    from v2gtwin.study import StudyChain

    # The default path's assumed 5 ms csms segment (no OCPP measurement in its place).
    cyber = {"measure_ocpp_exchanges": 0}
    scen = parse_scenario({"fleet": {"n_evs": 200}, "time": {"n_steps": 48, "dt_s": 1800}, "cyber": cyber})
    chain = StudyChain(scen)
    for step in ("build_fleet", "envelope", "uncontrolled", "network", "frequency", "cyber_path", "agc"):
        getattr(chain, step)()
    p = 0.995 * 0.999
    q = 1 - p
    mean = 0.24 + (q * p + 2 * q * q * p) / (1 - q**3)
    assert chain.cyber_path_ is not None and chain.agc_ is not None
    assert chain.cyber_path_.grid.mean_given_landed_s == pytest.approx(mean, abs=2e-4)
    assert chain.agc_.delay_mean_s == pytest.approx(mean, abs=0.0015)
    assert chain.agc_.regulation_without_delay is not None
    # Without the delay, a fleet with this much headroom follows the signal exactly: precision 1.
    assert chain.agc_.regulation_without_delay["pro_rata"].score.precision == pytest.approx(1.0, abs=1e-9)
    assert chain.agc_.regulation["pro_rata"].score.precision < 1.0 - 1e-4

    class _Result:  # what the section reads of a StudyResult
        cyber_path = chain.cyber_path_
        services = type("S", (), {"agc": chain.agc_})()

    html = cyber_path_section(_Result())  # type: ignore[arg-type]
    assert (
        "Command path" in html and "AGC / regulation" in html and html.count("<img") == 2
    )  # landing-time CDF, handshake breakdown
    assert "without delay" in html


def test_mass_beyond_a_short_grid_is_the_closed_form_tail() -> None:
    # One exponential segment (mean 1 s, p = 0.9) on a grid of 300 + 2 cells of 0.01 s: the last cell's upper
    # edge is (301 + 1/2) x 0.01 = 3.015 s, so the mass the grid leaves out is p e^{-3.015} = 0.0441413.
    from v2gtwin.cyber.path import calc_attempt_grid

    p = Path((Segment("x", 0.0, 1.0, "exponential", 1.0, 0.0, 0.9, "t"),))
    g = calc_attempt_grid(p, dt_s=0.01, n_grid=300)
    assert g.t_s[-1] == pytest.approx(3.015)
    assert g.mass_beyond_grid == pytest.approx(0.9 * math.exp(-3.015), rel=1e-9)
    assert g.cdf[-1] + g.mass_beyond_grid == pytest.approx(0.9, rel=1e-12)
