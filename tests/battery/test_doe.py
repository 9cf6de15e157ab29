"""Split-plot run sheets (structure, randomisation, bad input), the run-sheet CSV, the twin validation study
(acceptance rate and power of the lack-of-fit test against their exact distributions) and the `doe` commands."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from tests.cli_helpers import assert_one_line_error, run_cli
from v2gtwin.battery.doe import build_split_plot_design, read_run_sheet
from v2gtwin.battery.twin_validation import (
    calc_q_loss_wang_pct,
    fit_fade_model,
    run_twin_validation,
    simulate_experiment,
)
from v2gtwin.errors import DataError, ScenarioError


@given(
    n_temp=st.integers(2, 5),
    n_dod=st.integers(1, 4),
    n_rate=st.integers(1, 3),
    chambers=st.integers(1, 7),
    reps=st.integers(2, 4),
    seed=st.integers(0, 2**31),
)
def test_design_structure(n_temp: int, n_dod: int, n_rate: int, chambers: int, reps: int, seed: int) -> None:
    temps = [10.0 + 10 * k for k in range(n_temp)]
    dods = [0.1 * (k + 1) for k in range(n_dod)]
    rates = [0.5 * (k + 1) for k in range(n_rate)]
    d = build_split_plot_design(temps, dods, rates, chambers, reps, seed)
    n_sub = n_dod * n_rate
    assert d.n_runs == n_temp * reps * n_sub
    assert d.run_order.tolist() == list(range(1, d.n_runs + 1))
    # Every temperature on exactly `reps` whole plots; temperature constant within a whole plot.
    wp_temp = {int(w): set(d.temp_c[d.whole_plot == w].tolist()) for w in np.unique(d.whole_plot)}
    assert all(len(v) == 1 for v in wp_temp.values())
    assert Counter(next(iter(v)) for v in wp_temp.values()) == dict.fromkeys(temps, reps)
    # Every DoD x C-rate combination exactly once in every whole plot; subplot positions 1..n_sub.
    for w in np.unique(d.whole_plot):
        m = d.whole_plot == w
        assert sorted(zip(d.dod_pu[m].tolist(), d.c_rate[m].tolist(), strict=True)) == sorted(
            (x, c) for x in dods for c in rates
        )
        assert sorted(d.subplot_order[m].tolist()) == list(range(1, n_sub + 1))
        assert np.unique(d.chamber[m]).size == 1 and np.unique(d.round[m]).size == 1
    # At most `chambers` whole plots per round, each in its own chamber; rounds = ceil(whole plots / chambers).
    for r in np.unique(d.round):
        wps = np.unique(d.whole_plot[d.round == r])
        chs = [int(d.chamber[d.whole_plot == w][0]) for w in wps]
        assert len(wps) <= chambers and len(set(chs)) == len(chs) and max(chs) <= chambers
    assert d.n_rounds == -(-n_temp * reps // chambers)


def test_design_is_seeded_and_randomised_uniformly() -> None:
    a = build_split_plot_design([25, 35, 45], [0.2, 0.5, 0.8], [0.5, 1], 2, 2, seed=11)
    b = build_split_plot_design([25, 35, 45], [0.2, 0.5, 0.8], [0.5, 1], 2, 2, seed=11)
    assert a.to_csv() == b.to_csv()
    # Over 3000 seeds the first chamber-run's temperature is each of the 3 levels with probability 1/3, and the
    # first cell of a whole plot each of the 6 DoD x C-rate combinations with probability 1/6: chi-square test
    # of uniformity at the 0.1 % level (fails if whole-plot or subplot order were not randomised).
    first_t, first_cell = Counter(), Counter()
    for s in range(3000):
        d = build_split_plot_design([25, 35, 45], [0.2, 0.5, 0.8], [0.5, 1], 2, 2, seed=s)
        first_t[float(d.temp_c[0])] += 1
        first_cell[(float(d.dod_pu[0]), float(d.c_rate[0]))] += 1
    assert len(first_t) == 3 and len(first_cell) == 6
    assert stats.chisquare(list(first_t.values())).pvalue > 1e-3
    assert stats.chisquare(list(first_cell.values())).pvalue > 1e-3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_replicates": 1}, "replicates: must be an integer from 2"),
        ({"n_chambers": 0}, "chambers: must be an integer from 1 to 1000"),
        ({"temp_c": [25]}, "at least 2 levels"),
        ({"temp_c": [25, 25]}, "levels must be distinct"),
        ({"temp_c": [25, 95]}, r"outside the allowed range \[-40, 80\]"),
        ({"dod_pu": [0.0, 0.5]}, r"outside the allowed range \(0, 1\]"),
        ({"cells_per_chamber": 5}, "needs 6 cells .* holds 5"),
        ({"n_chambers": 1, "max_rounds": 5}, "take 6 rounds, more than the 5 allowed; use at least 2 chambers"),
    ],
)
def test_design_that_cannot_be_built(kwargs: dict, match: str) -> None:
    args = {"temp_c": [25, 35, 45], "dod_pu": [0.2, 0.5, 0.8], "c_rate": [0.5, 1], "n_chambers": 2}
    args |= {"n_replicates": 2, "seed": 1} | kwargs
    with pytest.raises(ScenarioError, match=match):
        build_split_plot_design(**args)


def test_run_sheet_round_trip_and_bad_files(tmp_path: Path) -> None:
    d = build_split_plot_design([25, 35, 45], [0.2, 0.5, 0.8], [0.5, 1], 2, 2, seed=3)
    q = np.linspace(1.0, 9.0, d.n_runs)
    path = tmp_path / "runs.csv"
    path.write_text(d.to_csv(q))
    cols = read_run_sheet(path)
    np.testing.assert_array_equal(cols["temp_c"], d.temp_c)
    np.testing.assert_array_equal(cols["dod_pu"], d.dod_pu)
    np.testing.assert_array_equal(cols["q_loss_pct"], q)
    (tmp_path / "empty.csv").write_text(d.to_csv())  # response column left empty for the laboratory
    with pytest.raises(DataError, match="column 'q_loss_pct' is empty in data row 1 \\(36 bad"):
        read_run_sheet(tmp_path / "empty.csv")
    (tmp_path / "short.csv").write_text("whole_plot,temp_c,q_loss_pct\n1,25,1.0\n")
    with pytest.raises(DataError, match="lacks the column\\(s\\) dod_pu, c_rate"):
        read_run_sheet(tmp_path / "short.csv")


def test_wang_law_by_hand() -> None:
    # 25 degC, DoD 0.8, C/2, 500 cycles of a 2.3 Ah cell: Ah = 2 * 0.8 * 2.3 * 500 = 1840;
    # (-31700 + 370.3 * 0.5) / (8.314462618 * 298.15) = -12.71295 -> exp = 3.01188e-6; 1840^0.55 = 62.4669;
    # 30330 * 3.01188e-6 * 62.4669 = 5.7064 %.
    assert float(calc_q_loss_wang_pct(25.0, 0.8, 0.5)) == pytest.approx(5.7064, rel=1e-4)
    # 45 degC, DoD 0.2, 1C: Ah = 2 * 0.2 * 2.3 * 500 = 460; (-31700 + 370.3) / (8.314462618 * 318.15) = -11.84377
    # -> 7.18314e-6; 460^0.55 = 29.1418; 30330 * 7.18314e-6 * 29.1418 = 6.3490 %.
    assert float(calc_q_loss_wang_pct(45.0, 0.2, 1.0)) == pytest.approx(6.3490, rel=1e-4)


def test_fit_recovers_the_law_without_noise() -> None:
    # Noise-free data from the law: the Arrhenius model (ln q = b0 + b1/T + b2 C/T + b3 ln DoD) holds exactly,
    # so b1 = -E_a/R = -31700/8.314462618 = -3812.6, b2 = eta/R = 370.3/8.314462618 = 44.537, b3 = z = 0.55.
    d = build_split_plot_design([15, 30, 45], [0.2, 0.5, 0.8], [0.5, 1, 2], 3, 2, seed=5)
    q = calc_q_loss_wang_pct(d.temp_c, d.dod_pu, d.c_rate) * np.exp(1e-9 * np.arange(d.n_runs) % 2)
    fit = fit_fade_model("arrhenius", d.temp_c, d.dod_pu, d.c_rate, q)
    assert fit.params[1:] == pytest.approx((-3812.6, 44.537, 0.55), rel=1e-4)


@pytest.mark.parametrize("temps", [[25, 35, 45], [10, 25, 45]])
def test_twin_validation_size_and_power(temps: list[float]) -> None:
    d = build_split_plot_design(temps, [0.2, 0.5, 0.8], [0.5, 1], 2, 2, seed=1)
    n, alpha, sigma = 2000, 0.05, 0.02
    v = run_twin_validation(d, n, np.random.default_rng(42), noise_rel=sigma, alpha=alpha)
    # The right (Arrhenius) model: rejections ~ Binomial(n, alpha); accept |rate - alpha| <= 4 binomial sd.
    sd = np.sqrt(alpha * (1 - alpha) / n)
    assert abs(v.rejection_rate["arrhenius"] - alpha) <= 4 * sd
    # The wrong (linear-temperature) model: rejections ~ Binomial(n, power), power from the noncentral F with
    # lambda = ||(I - H) mu||^2 / sigma^2, computed here by a QR projection of the true ln Q_loss.
    mu = np.log(calc_q_loss_wang_pct(d.temp_c, d.dod_pu, d.c_rate))
    x = np.column_stack([np.ones(d.n_runs), d.temp_c, d.c_rate, np.log(d.dod_pu)])
    qm, _ = np.linalg.qr(x)
    lam = float(np.sum((mu - qm @ (qm.T @ mu)) ** 2) / sigma**2)
    m = 3 * 3 * 2  # design points
    df_lof, df_pe = m - 4, d.n_runs - m
    power = stats.ncf.sf(stats.f.isf(alpha, df_lof, df_pe), df_lof, df_pe, lam)
    sd_p = np.sqrt(power * (1 - power) / n)
    assert abs(v.rejection_rate["linear_temp"] - power) <= 4 * max(sd_p, 1 / n)
    assert v.rejection_rate_theory["linear_temp"] == pytest.approx(power, rel=1e-6)
    if temps == [10, 25, 45]:
        assert power > 0.8  # a wider temperature range exposes the wrong temperature law (0.11 at 25-45 degC)


def test_simulated_experiment_noise_level() -> None:
    # ln(q / Q_loss) ~ N(0, sigma^2): the sample sd of 36 x 200 draws is within 3 % of sigma = 0.05.
    d = build_split_plot_design([25, 35, 45], [0.2, 0.5, 0.8], [0.5, 1], 2, 2, seed=1)
    rng = np.random.default_rng(0)
    r = np.concatenate(
        [
            np.log(simulate_experiment(d, 0.05, rng) / calc_q_loss_wang_pct(d.temp_c, d.dod_pu, d.c_rate))
            for _ in range(200)
        ]
    )
    assert r.std() == pytest.approx(0.05, rel=0.03)


def test_cli_design_analyze_round_trip(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "runs.csv"
    code, text, err = run_cli(
        capsys, "doe", "design", "--temperatures-c", "25,35,45", "--dod", "0.2,0.5,0.8", "--c-rate", "0.5,1",
        "--chambers", "2", "--replicates", "2", "--seed", "1", "--simulate-noise", "0.03", "--out", str(out), "--json",
    )  # fmt: skip
    assert code == 0, err
    res = json.loads(text)
    assert res["n_runs"] == 36 and res["n_rounds"] == 3 and len(res["runs"]) == 36
    assert out.exists() and res["notes"]
    code, text, err = run_cli(capsys, "doe", "analyze", str(out), "--json")
    assert code == 0, err
    res = json.loads(text)
    rows = {r["source"]: r for r in res["anova"]["rows"]}
    assert rows["temp_c"]["error"] == "whole-plot error" and rows["temp_c"]["df"] == 2
    assert rows["whole-plot error"]["df"] == 3 and rows["dod_pu:c_rate"]["error"] == "subplot error"
    assert set(res["lack_of_fit"]) == {"arrhenius", "linear_temp"}
    assert res["lack_of_fit"]["arrhenius"]["df_pure_error"] == 18


def test_cli_bad_input(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert_one_line_error(*run_cli(capsys, "doe", "design", "--replicates", "1")[::2])
    assert_one_line_error(*run_cli(capsys, "doe", "design", "--cells-per-chamber", "4")[::2])
    assert_one_line_error(*run_cli(capsys, "doe", "design", "--temperatures-c", "25,abc")[::2])
    assert_one_line_error(*run_cli(capsys, "doe", "analyze", str(tmp_path / "nope.csv"))[::2])
    sheet = tmp_path / "runs.csv"
    sheet.write_text(build_split_plot_design([25, 35], [0.5, 0.8], [1], 2, 2, seed=1).to_csv())
    code, _, err = run_cli(capsys, "doe", "analyze", str(sheet))
    assert_one_line_error(code, err)
    assert "q_loss_pct" in err and "empty" in err
    # One run per design point: no pure error.
    d = build_split_plot_design([25, 35], [0.5, 0.8], [1], 2, 2, seed=1)
    lines = d.to_csv(np.ones(d.n_runs)).splitlines()
    keep = [lines[0]] + [ln for ln in lines[1:] if ln.split(",")[4] == "1"]  # replicate 1 only
    sheet.write_text("\n".join(keep) + "\n")
    code, _, err = run_cli(capsys, "doe", "analyze", str(sheet))
    assert_one_line_error(code, err)
    # Replicate 1 only leaves one chamber-run per temperature: it is the whole-plot error that is missing (the
    # check that comes first). A sheet with whole-plot error but no repeated design point cannot reach the
    # pure-error check through `doe analyze`: every run its own (temp, DoD, C-rate) point saturates the full
    # factorial subplot model, so the subplot error has 0 df first; the pure-error message is checked on
    # run_lack_of_fit in test_anova.py.
    assert "whole-plot error has 0 degrees of freedom" in err


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["design", "--seed", "-1"], "--seed"),
        (["validate", "--seed", "-1", "--experiments", "2"], "--seed"),
        (["design", "--chambers", "99999999999999999999"], "--chambers"),
        (["design", "--chambers", "0"], "--chambers"),
        (["design", "--replicates", "101"], "--replicates"),
        (["design", "--cells-per-chamber", "0"], "--cells-per-chamber"),
        (["design", "--max-rounds", "0"], "--max-rounds"),
    ],
)
def test_cli_out_of_range_options_are_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], option: str
) -> None:
    # Before the bounds: ValueError / OverflowError tracebacks with exit code 1.
    code, _, err = run_cli(capsys, "doe", *args)
    assert_one_line_error(code, err)
    assert option in err


def test_design_library_bounds() -> None:
    with pytest.raises(ScenarioError, match="chambers: must be an integer from 1 to 1000"):
        build_split_plot_design([25, 35], [0.5], [1.0], 10**20, 2, seed=1)
    with pytest.raises(ScenarioError, match="seed: must be an integer >= 0"):
        build_split_plot_design([25, 35], [0.5], [1.0], 2, 2, seed=-1)


def test_subplots_are_randomised_anew_in_each_whole_plot() -> None:
    # 3 DoD x 2 C-rates = 6 subplot treatments, 3 temperatures x 4 replicates = 12 whole plots. If one permutation
    # were reused, all 12 whole plots would share one order; independent permutations share it with probability
    # (1/720)^11. The treatment in the first subplot position over the whole plots: under independent uniform
    # permutations each of the 6 treatments is equally likely there (chi-square goodness of fit, loose level).
    d = build_split_plot_design([25, 35, 45], [0.2, 0.5, 0.8], [0.5, 1.0], 3, 4, seed=11)
    orders = {tuple(zip(d.dod_pu[d.whole_plot == w], d.c_rate[d.whole_plot == w], strict=True)) for w in range(1, 13)}
    assert len(orders) > 1
    firsts = Counter()
    for seed in range(60):
        e = build_split_plot_design([25, 35, 45], [0.2, 0.5, 0.8], [0.5, 1.0], 3, 4, seed=seed)
        for w in range(1, 13):
            k = int(np.flatnonzero(e.whole_plot == w)[0])
            firsts[(e.dod_pu[k], e.c_rate[k])] += 1
    counts = np.array(list(firsts.values()))
    assert counts.size == 6 and stats.chisquare(counts).pvalue > 1e-4
    # Replicate numbers count each temperature's chamber-runs in run order: 1..4 for every temperature.
    for t in (25.0, 35.0, 45.0):
        wps = np.unique(d.whole_plot[d.temp_c == t])
        reps = [int(d.replicate[d.whole_plot == w][0]) for w in wps]
        assert reps == [1, 2, 3, 4]


def test_cli_validate(capsys: pytest.CaptureFixture[str]) -> None:
    code, text, err = run_cli(capsys, "doe", "validate", "--experiments", "300", "--noise", "0.02", "--json")
    assert code == 0, err
    res = json.loads(text)
    assert res["n_experiments"] == 300 and res["n_runs"] == 36 and res["n_points"] == 18
    assert set(res["models"]) == {"arrhenius", "linear_temp"}
    assert res["models"]["arrhenius"]["rejection_rate_theory"] == 0.05
    assert res["acceptance_rate_right_model"] == pytest.approx(1 - res["models"]["arrhenius"]["rejection_rate"])
    assert_one_line_error(*run_cli(capsys, "doe", "validate", "--experiments", "0")[::2])
    assert_one_line_error(*run_cli(capsys, "doe", "validate", "--noise", "0")[::2])


def test_cli_validate_warns_when_the_wrong_model_is_hard_to_reject(capsys: pytest.CaptureFixture[str]) -> None:
    # At 25-45 degC 1/T is nearly linear in T: the linear-temperature model's exact rejection probability is
    # ~0.07 (noncentral F, lambda ~1.5), far below 0.8, and the output must say so; over 0-60 degC it is ~1 and
    # no note is given.
    code, text, err = run_cli(capsys, "doe", "validate", "--experiments", "20", "--json")
    assert code == 0, err
    res = json.loads(text)
    assert res["models"]["linear_temp"]["rejection_rate_theory"] < 0.8
    assert len(res["notes"]) == 1 and "widen the range" in res["notes"][0]
    code, text, err = run_cli(capsys, "doe", "validate", "--experiments", "20", "--temperatures-c", "0,30,60", "--json")
    assert code == 0, err
    res = json.loads(text)
    assert res["models"]["linear_temp"]["rejection_rate_theory"] > 0.8 and res["notes"] == []
