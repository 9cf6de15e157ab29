"""Split-plot ANOVA and lack-of-fit test against published textbook tables and independent computations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from statsmodels.stats.anova import anova_lm

from v2gtwin.battery.anova import calc_lack_of_fit_f, run_lack_of_fit, run_split_plot_anova
from v2gtwin.battery.doe import build_split_plot_design
from v2gtwin.errors import DataError

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def tensile() -> pd.DataFrame:
    return pd.read_csv(DATA / "montgomery_tensile_split_plot.csv", comment="#")


def test_tensile_split_plot_reproduces_montgomery_table(tensile: pd.DataFrame) -> None:
    # Montgomery, Design and Analysis of Experiments, Section 14.4, the ANOVA of the tensile-strength split plot
    # (replicates = blocks, method A on whole plots, temperature B on subplots; B tested against R x B and AB
    # against R x A x B as in the book). Published: SS, df, F0.
    a = run_split_plot_anova(
        tensile, "strength", ["method"], ["temperature_f"], "whole_plot", block="replicate", subplot_error="by_term"
    )
    published = {  # source: (SS, df)
        "replicate": (77.55, 2),
        "method": (128.39, 2),
        "whole-plot error": (36.28, 4),
        "temperature_f": (434.08, 3),
        "replicate:temperature_f": (20.67, 6),
        "method:temperature_f": (75.17, 6),
        "replicate:method:temperature_f": (50.83, 12),
        "total": (822.97, 35),
    }
    for source, (ss, df) in published.items():
        row = a.row(source)
        assert row.df == df, source
        assert row.ss == pytest.approx(ss, abs=0.006), source  # the book prints two decimals
    # F0 as published: A 7.08 (64.20 / 9.07), AB 2.96 (12.53 / 4.24); B 41.94 = 144.69 / 3.45, where the book's
    # MS_RB is 20.67 / 6 = 3.445 rounded up to 3.45: unrounded, 144.694 / 3.444 = 42.01 (0.2 % above).
    assert a.row("method").f == pytest.approx(7.08, abs=0.005)
    assert a.row("method").error == "whole-plot error"
    assert a.row("temperature_f").f == pytest.approx(41.94, rel=0.003)
    assert a.row("temperature_f").error == "replicate:temperature_f"
    assert a.row("method:temperature_f").f == pytest.approx(2.96, abs=0.005)
    assert a.balanced


def test_tensile_pooled_subplot_error(tensile: pd.DataFrame) -> None:
    # The usual analysis pools R x B and R x A x B into the subplot error: (20.67 + 50.83) / (6 + 12) = 3.972 on
    # 18 df, so F_B = 144.69 / 3.972 = 36.43 and F_AB = 12.53 / 3.972 = 3.154 (from the book's SS).
    a = run_split_plot_anova(tensile, "strength", ["method"], ["temperature_f"], "whole_plot", block="replicate")
    spe = a.row("subplot error")
    assert spe.df == 18 and spe.ss == pytest.approx(71.50, abs=0.01)
    assert a.row("temperature_f").f == pytest.approx(36.43, abs=0.01)
    assert a.row("method:temperature_f").f == pytest.approx(3.154, abs=0.005)
    assert a.row("method").f == pytest.approx(7.08, abs=0.005)  # whole-plot test unchanged


def test_crd_whole_plots_against_closed_form_strata() -> None:
    # A design of v2gtwin.battery.doe (whole plots completely randomised, no blocks) with a random response; the
    # strata by group means (balanced split plot, a temperatures, r whole plots each, b subplot cells):
    #   SS_T = b r sum_T (ybar_T - ybar)^2,  SS_WPE = b sum_wp (ybar_wp - ybar_T(wp))^2,
    #   SS_SPE = sum (y - ybar_wp - ybar_{T,S} + ybar_T)^2 (residual of the full model with whole-plot means).
    d = build_split_plot_design([25, 35, 45], [0.2, 0.5, 0.8], [0.5, 1.0], 2, 3, seed=7)
    rng = np.random.default_rng(3)
    y = rng.normal(size=d.n_runs) + 0.3 * (d.temp_c / 10) + rng.normal(size=d.n_whole_plots)[d.whole_plot - 1]
    frame = pd.DataFrame({"y": y, "temp_c": d.temp_c, "dod_pu": d.dod_pu, "c_rate": d.c_rate, "wp": d.whole_plot})
    a = run_split_plot_anova(frame, "y", ["temp_c"], ["dod_pu", "c_rate"], "wp")
    g = frame.assign(cell=frame.dod_pu.astype(str) + "/" + frame.c_rate.astype(str))
    ybar = y.mean()
    yt = g.groupby("temp_c").y.transform("mean").to_numpy()
    ywp = g.groupby("wp").y.transform("mean").to_numpy()
    yts = g.groupby(["temp_c", "cell"]).y.transform("mean").to_numpy()
    ss_t = np.sum((yt - ybar) ** 2)
    ss_wpe = np.sum((ywp - yt) ** 2)
    ss_spe = np.sum((y - ywp - yts + yt) ** 2)
    assert a.row("temp_c").ss == pytest.approx(ss_t, rel=1e-9)
    assert a.row("whole-plot error").ss == pytest.approx(ss_wpe, rel=1e-9)
    assert a.row("whole-plot error").df == 3 * (3 - 1)
    assert a.row("subplot error").ss == pytest.approx(ss_spe, rel=1e-9)
    assert a.row("subplot error").df == 3 * (3 - 1) * (6 - 1)
    assert a.row("temp_c").f == pytest.approx((ss_t / 2) / (ss_wpe / 6), rel=1e-9)
    assert a.row("dod_pu").error == "subplot error"


def test_split_plot_errors(tensile: pd.DataFrame) -> None:
    bad = tensile.assign(method=(np.arange(len(tensile)) // 3) % 3)  # method now varies inside a batch
    with pytest.raises(DataError, match="varies within whole plot"):
        run_split_plot_anova(bad, "strength", ["method"], ["temperature_f"], "whole_plot")
    one_rep = tensile[tensile.replicate == 1]  # one whole plot per method: no whole-plot error
    with pytest.raises(DataError, match="whole-plot error has 0 degrees of freedom"):
        run_split_plot_anova(one_rep, "strength", ["method"], ["temperature_f"], "whole_plot")
    with pytest.raises(DataError, match="'missing'"):
        run_split_plot_anova(tensile, "missing", ["method"], ["temperature_f"], "whole_plot")


@pytest.fixture(scope="module")
def lof_data() -> pd.DataFrame:
    return pd.read_csv(DATA / "montgomery_runger_lack_of_fit.csv", comment="#")


def test_lack_of_fit_reproduces_montgomery_runger_table(lof_data: pd.DataFrame) -> None:
    # Montgomery & Runger (2003), Example S11-1 and Table S11-1: y^ = 1.697 + 0.259 x; residual 7.3372 on 14 df;
    # lack of fit 4.3005 on 7 df (MS 0.6144); pure error 3.0366 on 7 df; f0 = 1.42, P = 0.3276.
    x, y = lof_data.x.to_numpy(), lof_data.y.to_numpy()
    b1, b0 = np.polyfit(x, y, 1)
    assert (b0, b1) == (pytest.approx(1.697, abs=5e-4), pytest.approx(0.259, abs=5e-4))
    lof = run_lack_of_fit(y, b0 + b1 * x, x, n_params=2)
    assert lof.ss_residual == pytest.approx(7.3372, abs=1e-4) and lof.df_residual == 14
    assert lof.ss_pure_error == pytest.approx(3.0366, abs=1e-4) and lof.df_pure_error == 7
    assert lof.ss_lack_of_fit == pytest.approx(4.3005, abs=1e-4) and lof.df_lack_of_fit == 7
    assert lof.ms_lack_of_fit == pytest.approx(0.6144, abs=1e-4)
    assert lof.f == pytest.approx(1.42, abs=0.005)
    # The book's P = 0.3276; the F(7, 7) tail at the unrounded f0 = 1.4162 is 0.3288.
    assert lof.p == pytest.approx(0.3276, abs=0.002)
    assert not lof.rejects(0.05)


def test_lack_of_fit_equals_extra_sum_of_squares_f_of_statsmodels(lof_data: pd.DataFrame) -> None:
    # Independent route: the lack-of-fit F is the extra-sum-of-squares F of the fitted model against the full
    # cell-means model (one mean per level of x), computed by statsmodels' anova_lm.
    full = smf.ols("y ~ C(x)", lof_data).fit()
    line = smf.ols("y ~ x", lof_data).fit()
    ref = anova_lm(line, full)
    lof = run_lack_of_fit(lof_data.y, line.fittedvalues, lof_data.x, 2)
    assert lof.f == pytest.approx(float(ref.F.iloc[1]), rel=1e-10)
    assert lof.p == pytest.approx(float(ref["Pr(>F)"].iloc[1]), rel=1e-10)
    f, p = calc_lack_of_fit_f(lof_data.y, line.fittedvalues, lof_data.x, 2)
    assert float(f) == pytest.approx(float(ref.F.iloc[1]), rel=1e-10)
    assert float(p) == pytest.approx(float(ref["Pr(>F)"].iloc[1]), rel=1e-10)


def test_lack_of_fit_errors() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0])
    with pytest.raises(DataError, match="no repeated runs"):
        run_lack_of_fit([1, 2, 3, 4], [1, 2, 3, 4], x, 2)
    with pytest.raises(DataError, match="no degrees of freedom for lack of fit"):
        run_lack_of_fit([1, 1.1, 2, 2.2], [1, 1, 2, 2], [1, 1, 2, 2], 2)


def test_strata_agree_with_reml_variance_components() -> None:
    # Independent route through statsmodels' MixedLM (REML, random intercept per chamber-run): for a balanced
    # split plot, REML's variance components equal the ANOVA estimators when these are positive:
    # sigma2_subplot = MS_SPE and sigma2_wholeplot = (MS_WPE - MS_SPE) / b (b = 6 cells per chamber-run).
    d = build_split_plot_design([25, 35, 45], [0.2, 0.5, 0.8], [0.5, 1.0], 3, 4, seed=2)
    rng = np.random.default_rng(8)
    y = 5 + 0.1 * d.temp_c + 2 * d.dod_pu + rng.normal(0, 1.5, d.n_whole_plots)[d.whole_plot - 1]
    y = y + rng.normal(0, 0.5, d.n_runs)
    frame = pd.DataFrame({"y": y, "temp_c": d.temp_c, "dod_pu": d.dod_pu, "c_rate": d.c_rate, "wp": d.whole_plot})
    a = run_split_plot_anova(frame, "y", ["temp_c"], ["dod_pu", "c_rate"], "wp")
    ms_wpe, ms_spe = a.row("whole-plot error").ms, a.row("subplot error").ms
    assert ms_wpe > ms_spe
    m = smf.mixedlm("y ~ C(temp_c) * C(dod_pu) * C(c_rate)", frame, groups=frame["wp"]).fit(reml=True)
    assert m.scale == pytest.approx(ms_spe, rel=1e-4)
    assert float(m.cov_re.iloc[0, 0]) == pytest.approx((ms_wpe - ms_spe) / 6, rel=1e-3)


def test_one_level_factor_is_an_error(tensile: pd.DataFrame) -> None:
    one = tensile[tensile.temperature_f == 200]
    with pytest.raises(DataError, match="'temperature_f' takes one level only"):
        run_split_plot_anova(one, "strength", ["method"], ["temperature_f"], "whole_plot")


def test_incomplete_blocks_are_named(tensile: pd.DataFrame) -> None:
    # Montgomery's days are complete blocks (every method every day): no note. Rounds of a 2-chamber design with
    # 3 temperatures are not (a round holds 2 of the 3 temperatures): the table says so.
    a = run_split_plot_anova(tensile, "strength", ["method"], ["temperature_f"], "whole_plot", block="replicate")
    assert not any("incomplete blocks" in n for n in a.notes)
    d = build_split_plot_design([25, 35, 45], [0.2, 0.8], [0.5, 1.0], 2, 2, seed=1)
    y = np.random.default_rng(0).normal(size=d.n_runs)
    frame = pd.DataFrame({"y": y, "t": d.temp_c, "dod": d.dod_pu, "c": d.c_rate, "wp": d.whole_plot, "r": d.round})
    b = run_split_plot_anova(frame, "y", ["t"], ["dod", "c"], "wp", block="r")
    assert any("incomplete blocks" in n for n in b.notes)


def test_terms_without_degrees_of_freedom_are_named_and_left_out() -> None:
    # Without the (DoD 0.8, C-rate 1) cells, the DoD x C-rate interaction (and its interaction with temperature)
    # cannot be estimated: left out of the table, named in the notes; the strata still add up to the total.
    d = build_split_plot_design([25, 45], [0.2, 0.8], [0.5, 1.0], 2, 2, seed=1)
    f = pd.DataFrame(
        {"y": np.random.default_rng(0).normal(size=d.n_runs), "t": d.temp_c, "dod": d.dod_pu, "c": d.c_rate}
    ).assign(wp=d.whole_plot)
    g = f[~((f.dod == 0.8) & (f.c == 1.0))]
    a = run_split_plot_anova(g, "y", ["t"], ["dod", "c"], "wp")
    sources = {r.source for r in a.rows}
    assert "dod:c" not in sources and "t:dod:c" not in sources
    assert any("dod:c, t:dod:c" in n for n in a.notes)
    assert sum(r.ss for r in a.rows[:-1]) == pytest.approx(a.row("total").ss, rel=1e-12)
    assert a.row("total").ss == pytest.approx(float(np.sum((g.y - g.y.mean()) ** 2)), rel=1e-12)


@pytest.mark.filterwarnings("ignore:The design matrix is rank-deficient")
def test_whole_plot_error_with_a_missing_cell_is_adjusted_for_the_subplot_terms() -> None:
    # A 3-temperature x (3 DoD x 2 C-rate) split plot with 2 chamber-runs per temperature (36 runs), one run
    # deleted. Independent reference: statsmodels' formula OLS (patsy treatment coding, not our dummy coding) of
    # the nested models y ~ temp * dod * c and y ~ C(wp) + temp * dod * c; the whole-plot error is the drop in
    # the residual sum of squares and degrees of freedom between them (Montgomery 2017, Section 14.4: the
    # whole-plot error is the whole-plot variation the whole-plot factors do not explain, here with the
    # subplot effects removed). Mutation caught: the whole-plot error fitted before the subplot terms
    # (SSR(temp) - SSR(wp)), which with the missing cell also holds part of the DoD effect.
    d = build_split_plot_design([25, 35, 45], [0.2, 0.5, 0.8], [0.5, 1.0], 2, 2, seed=3)
    rng = np.random.default_rng(5)
    wp_effect = rng.normal(0, 0.05, d.whole_plot.max() + 1)
    y = 0.03 * d.temp_c + 2.0 * d.dod_pu + 0.3 * d.c_rate + wp_effect[d.whole_plot] + rng.normal(0, 0.05, d.n_runs)
    df = (
        pd.DataFrame({"y": y, "wp": d.whole_plot, "temp": d.temp_c, "dod": d.dod_pu, "c": d.c_rate})
        .drop(index=7)
        .reset_index(drop=True)
    )
    a = run_split_plot_anova(df, "y", ["temp"], ["dod", "c"], "wp")
    full = smf.ols("y ~ C(temp) * C(dod) * C(c)", df).fit()
    with_wp = smf.ols("y ~ C(wp) + C(temp) * C(dod) * C(c)", df).fit()
    wpe = a.row("whole-plot error")
    assert wpe.df == round(full.df_resid - with_wp.df_resid) == 3
    assert wpe.ss == pytest.approx(full.ssr - with_wp.ssr, rel=1e-9)
    assert not a.balanced and any("adjusted for the subplot terms" in n for n in a.notes)
    # The temperature F uses it.
    assert a.row("temp").f == pytest.approx(a.row("temp").ms / wpe.ms, rel=1e-12)
