"""Analysis of validation experiments: the split-plot ANOVA with its two error strata, and the lack-of-fit test.

Split-plot ANOVA
    The sums of squares come from nested ordinary-least-squares fits (statsmodels ``OLS``), one term added at a
    time: the drop in the residual sum of squares is the term's sum of squares, the drop in residual degrees of
    freedom (the rank of the design matrix) its degrees of freedom. Terms of whole-plot factors only (chamber
    temperature) are tested against the **whole-plot error** -- the variation between whole plots (chamber-runs)
    that the blocks and whole-plot factors do not explain, adjusted for the subplot terms,
    ``SS_WPE = SSR(block + WP terms + SP terms) - SSR(block + whole plot + SP terms)`` (with balanced data the same
    as ``SSR(block + WP terms) - SSR(whole plot)``; with a missing cell only the adjusted form leaves the subplot
    effects out of the whole-plot error).
    Every term that involves a subplot factor is tested against the **subplot error**: the residual of the model
    with one mean per whole plot plus all subplot terms (pooled), or -- the textbook analysis with blocks --
    against its own block-by-term interaction (``subplot_error="by_term"``).

Lack of fit
    With repeated runs at the same design point, the residual sum of squares of a fitted model splits into pure
    error (within design points) and lack of fit::

        SS_PE  = sum_i sum_u (y_iu - ybar_i)^2             df_PE  = n - m
        SS_LOF = SS_E - SS_PE                                df_LOF = m - p
        F0     = (SS_LOF / df_LOF) / (SS_PE / df_PE)         ~ F(df_LOF, df_PE) when the model is right

    with n runs, m distinct design points and p fitted parameters (Montgomery & Runger 2003, Eqs. S11-1 to S11-5).

References
----------
D. C. Montgomery, *Design and Analysis of Experiments*, 9th ed., Wiley, 2017, Section 14.4 (the split-plot
design; the paper tensile-strength example).
D. C. Montgomery, G. C. Runger, *Applied Statistics and Probability for Engineers*, 3rd ed., Wiley, 2003,
supplement S11 to Chapter 11 (lack-of-fit test; Example S11-1, Table S11-1).
"""

from __future__ import annotations

import itertools
import logging
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy import stats

from v2gtwin.errors import DataError

__all__ = [
    "AnovaRow",
    "LackOfFit",
    "SplitPlotAnova",
    "calc_lack_of_fit_f",
    "run_lack_of_fit",
    "run_split_plot_anova",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
SubplotError = Literal["pooled", "by_term"]


@dataclass(frozen=True)
class AnovaRow:
    """One line of an ANOVA table.

    ``stratum`` is ``"block"``, ``"whole_plot"`` or ``"subplot"``; ``error`` names the row whose mean square is
    the denominator of ``f`` (empty for error and block rows, whose ``f`` and ``p`` are None).
    """

    source: str
    stratum: str
    df: int
    ss: float
    ms: float
    f: float | None = None
    p: float | None = None
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "stratum": self.stratum,
            "df": self.df,
            "ss": self.ss,
            "ms": self.ms,
            "f": self.f,
            "p": self.p,
            "error": self.error or None,
        }


@dataclass(frozen=True)
class SplitPlotAnova:
    """A split-plot ANOVA table (rows in stratum order) and what it was computed from."""

    response: str
    rows: tuple[AnovaRow, ...]
    n_obs: int
    n_whole_plots: int
    balanced: bool
    notes: tuple[str, ...] = field(default_factory=tuple)

    def row(self, source: str) -> AnovaRow:
        """The row named ``source`` (e.g. ``"temp_c"``, ``"temp_c:dod_pu"``, ``"whole-plot error"``)."""
        for r in self.rows:
            if r.source == source:
                return r
        raise KeyError(source)

    def to_frame(self) -> Any:
        """The table as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame([r.to_dict() for r in self.rows])

    def summary(self) -> dict[str, Any]:
        """The table and its context as plain data (the ``doe analyze --json`` key ``anova``)."""
        return {
            "response": self.response,
            "n_obs": self.n_obs,
            "n_whole_plots": self.n_whole_plots,
            "balanced": self.balanced,
            "rows": [r.to_dict() for r in self.rows],
            "notes": list(self.notes),
        }


def _as_columns(data: Any, names: Sequence[str]) -> dict[str, np.ndarray]:
    cols: dict[str, np.ndarray] = {}
    for name in names:
        try:
            cols[name] = np.asarray(data[name])
        except (KeyError, IndexError) as exc:
            raise DataError(f"column {name!r} is missing") from exc
    n = {c.shape[0] for c in cols.values()}
    if len(n) != 1:
        raise DataError("columns have different lengths")
    return cols


def _levels(values: np.ndarray) -> np.ndarray:
    """Integer codes of the distinct values (sorted)."""
    return np.unique(values, return_inverse=True)[1].ravel()


def run_split_plot_anova(
    data: Mapping[str, Any] | Any,
    response: str,
    whole_plot_factors: Sequence[str],
    subplot_factors: Sequence[str],
    whole_plot: str,
    *,
    block: str | None = None,
    subplot_error: SubplotError = "pooled",
) -> SplitPlotAnova:
    """Split-plot ANOVA with the correct error strata (all factors categorical, full factorial model).

    Parameters
    ----------
    data : mapping or DataFrame
        Columns by name.
    response : str
        Column of the measured response (e.g. ``q_loss_pct``).
    whole_plot_factors : sequence of str
        Factors constant within a whole plot (e.g. ``["temp_c"]``).
    subplot_factors : sequence of str
        Factors varied within whole plots (e.g. ``["dod_pu", "c_rate"]``).
    whole_plot : str
        Column identifying the whole plot (chamber-run); ids must be unique across blocks.
    block : str, optional
        Column of blocks (e.g. days, rounds run as complete replicates) that whole plots are grouped in.
    subplot_error : {"pooled", "by_term"}
        ``"pooled"``: every subplot term against the residual (the usual analysis). ``"by_term"`` (needs
        ``block``): each subplot term against its interaction with the block, as in Montgomery's table.

    Returns
    -------
    SplitPlotAnova

    Raises
    ------
    DataError
        A column missing or not finite, a whole-plot factor that varies within a whole plot, or an error
        stratum without degrees of freedom (too few replicated whole plots).
    """
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import SingularMatrixWarning

    wp_f, sp_f = list(whole_plot_factors), list(subplot_factors)
    if not wp_f or not sp_f:
        raise DataError("a split-plot analysis needs at least one whole-plot factor and one subplot factor")
    if subplot_error == "by_term" and block is None:
        raise DataError("subplot_error='by_term' needs a block column")
    names = [response, whole_plot, *wp_f, *sp_f, *([block] if block else [])]
    cols = _as_columns(data, names)
    y = np.asarray(cols[response], dtype=float)
    if not np.all(np.isfinite(y)):
        raise DataError(f"column {response!r} has {int(np.sum(~np.isfinite(y)))} missing or non-finite values")
    wp = _levels(cols[whole_plot])
    frame: dict[str, np.ndarray] = {"wp": wp}
    alias: dict[str, str] = {}
    for k, name in enumerate([*wp_f, *sp_f]):
        alias[name] = f"f{k}"
        frame[f"f{k}"] = _levels(cols[name])
    if block:
        frame["blk"] = _levels(cols[block])
    for name in [*wp_f, *sp_f]:
        if np.unique(frame[alias[name]]).size < 2:
            raise DataError(f"factor {name!r} takes one level only; a factor of the analysis needs at least two")
    for name in [*wp_f, *([block] if block else [])]:
        codes = frame[alias.get(name, "blk")]
        n_per_wp = np.array([np.unique(codes[wp == w]).size for w in np.unique(wp)])
        if np.any(n_per_wp > 1):
            bad = np.unique(cols[whole_plot])[int(np.argmax(n_per_wp > 1))]
            what = "a block" if name == block else "a whole-plot factor"
            raise DataError(
                f"{name!r} varies within whole plot {bad}; {what} must be constant there (whole-plot ids must be "
                "unique across blocks)"
            )

    def term(factors: Sequence[str]) -> tuple[str, ...]:
        return tuple(alias[f] for f in factors)

    def indicators(keys: tuple[str, ...]) -> np.ndarray:
        """One column per observed level combination of the factors ``keys`` (full dummy coding)."""
        cell = np.unique(np.stack([frame[k] for k in keys], axis=1), axis=0, return_inverse=True)[1].ravel()
        return np.eye(int(cell.max()) + 1)[cell]

    def fit(terms: Sequence[tuple[str, ...]]) -> tuple[float, int]:
        # Redundant (full) dummy coding: the column space, hence the sums of squares, is that of any coding;
        # statsmodels' OLS uses the pseudo-inverse and counts degrees of freedom by the matrix rank.
        x = np.hstack([np.ones((y.size, 1)), *(indicators(t) for t in terms)])
        with warnings.catch_warnings():  # aliased columns are expected (see above)
            warnings.simplefilter("ignore", SingularMatrixWarning)
            res = sm.OLS(y, x).fit()
        return float(res.ssr), round(float(res.df_resid))

    subsets = [list(c) for r in range(1, len(wp_f) + len(sp_f) + 1) for c in itertools.combinations(wp_f + sp_f, r)]
    wp_terms = [s for s in subsets if all(f in wp_f for f in s)]
    sp_terms = [s for s in subsets if any(f in sp_f for f in s)]

    rows: list[AnovaRow] = []
    used: list[tuple[str, ...]] = []
    ssr, dfr = fit(used)
    ss_total, df_total = ssr, dfr

    def add(source: str, stratum: str, new_terms: Sequence[tuple[str, ...]]) -> AnovaRow:
        nonlocal ssr, dfr
        used.extend(new_terms)
        ssr_new, dfr_new = fit(used)
        df = dfr - dfr_new
        ss = max(ssr - ssr_new, 0.0)
        ssr, dfr = ssr_new, dfr_new
        return AnovaRow(source, stratum, df, ss, ss / df if df > 0 else math.nan)

    if block:
        rows.append(add(block, "block", [("blk",)]))
    wp_rows = [add(":".join(s), "whole_plot", [term(s)]) for s in wp_terms]
    # Whole-plot error adjusted for the subplot terms: SSR(block + WP terms + SP terms) - SSR(block + whole plot
    # + SP terms). With balanced data it equals SSR(block + WP terms) - SSR(whole plot); with a cell missing the
    # unadjusted difference would also hold the subplot effects that the missing cell unbalances.
    sp_keys = [term(s) for s in sp_terms]
    ssr_a, dfr_a = fit([*used, *sp_keys])
    ssr_b, dfr_b = fit([*used, ("wp",), *sp_keys])
    wpe_df = dfr_a - dfr_b
    wpe_ss = max(ssr_a - ssr_b, 0.0)
    wpe = AnovaRow("whole-plot error", "whole_plot", wpe_df, wpe_ss, wpe_ss / wpe_df if wpe_df > 0 else math.nan)
    used.append(("wp",))
    ssr, dfr = fit(used)
    if wpe.df < 1:
        raise DataError(
            "too few replicated whole plots: the whole-plot error has 0 degrees of freedom (each whole-plot factor "
            "level needs at least two whole plots)"
        )
    sp_rows = [add(":".join(s), "subplot", [term(s)]) for s in sp_terms]
    by_term_err: list[AnovaRow] = []
    if subplot_error == "by_term":
        by_term_err = [add(f"{block}:{':'.join(s)}", "subplot", [("blk", *term(s))]) for s in sp_terms]
    ss_res, df_res = ssr, dfr
    spe = AnovaRow("subplot error", "subplot", df_res, ss_res, ss_res / df_res if df_res > 0 else math.nan)

    def tested(r: AnovaRow, err: AnovaRow) -> AnovaRow:
        if r.df < 1 or err.df < 1 or not err.ms > 0:
            return r
        f = r.ms / err.ms
        return AnovaRow(r.source, r.stratum, r.df, r.ss, r.ms, f, float(stats.f.sf(f, r.df, err.df)), err.source)

    dropped = [r.source for r in (*wp_rows, *sp_rows) if r.df < 1]
    wp_rows = [r for r in wp_rows if r.df >= 1]
    if subplot_error == "by_term":
        pairs = [(r, e) for r, e in zip(sp_rows, by_term_err, strict=True) if r.df >= 1]
        sp_rows, by_term_err = [r for r, _ in pairs], [e for _, e in pairs]
    else:
        sp_rows = [r for r in sp_rows if r.df >= 1]
    out: list[AnovaRow] = list(rows)
    out += [tested(r, wpe) for r in wp_rows] + [wpe]
    if subplot_error == "by_term":
        for r, e in zip(sp_rows, by_term_err, strict=True):
            out += [tested(r, e), e]
        if df_res > 0:
            out.append(spe)
    else:
        if df_res < 1:
            raise DataError(
                "the subplot error has 0 degrees of freedom: every subplot combination appears once in a single "
                "whole plot per whole-plot level; replicate the whole plots"
            )
        out += [tested(r, spe) for r in sp_rows] + [spe]
    out.append(AnovaRow("total", "total", df_total, ss_total, ss_total / df_total if df_total else math.nan))
    cell = np.stack([frame[alias[f]] for f in [*wp_f, *sp_f]], axis=1)
    counts = np.unique(cell, axis=0, return_counts=True)[1]
    wp_sizes = np.bincount(wp)
    balanced = bool(np.all(counts == counts[0]) and np.all(wp_sizes == wp_sizes[0]))
    ss_sum = sum(r.ss for r in out[:-1])
    if balanced and not math.isclose(ss_sum, ss_total, rel_tol=1e-9, abs_tol=1e-9 * max(ss_total, 1.0)):
        logger.warning("strata sums of squares add to %.6g, total %.6g", ss_sum, ss_total)
    notes: list[str] = []
    if dropped:
        notes.append(f"not estimable from these runs (0 degrees of freedom), left out: {', '.join(dropped)}")
    if not balanced:
        notes.append(
            "unbalanced data: sequential (type I) sums of squares in the order of the table; the whole-plot error "
            "is adjusted for the subplot terms, so the strata no longer add up to the total"
        )
    if block:
        wp_cells = np.stack([frame["blk"], *(frame[alias[f]] for f in wp_f)], axis=1)
        n_cells = np.unique(wp_cells, axis=0).shape[0]
        n_full = np.unique(frame["blk"]).size * np.unique(wp_cells[:, 1:], axis=0).shape[0]
        if n_cells < n_full:
            notes.append(
                f"incomplete blocks: not every block holds every whole-plot level ({n_cells} of {n_full} "
                "combinations); the whole-plot terms are adjusted for blocks (sequential sums of squares)"
            )
    return SplitPlotAnova(
        response=response,
        rows=tuple(out),
        n_obs=int(y.size),
        n_whole_plots=int(np.unique(wp).size),
        balanced=balanced,
        notes=tuple(notes),
    )


@dataclass(frozen=True)
class LackOfFit:
    """Lack-of-fit test of a fitted model against pure error from repeated runs.

    Sums of squares in the response's unit squared; ``f`` is ``ms_lack_of_fit / ms_pure_error`` and ``p`` its
    upper-tail probability under F(``df_lack_of_fit``, ``df_pure_error``).
    """

    ss_residual: float
    df_residual: int
    ss_pure_error: float
    df_pure_error: int
    ss_lack_of_fit: float
    df_lack_of_fit: int
    f: float
    p: float
    n_obs: int
    n_points: int
    n_params: int

    @property
    def ms_pure_error(self) -> float:
        return self.ss_pure_error / self.df_pure_error

    @property
    def ms_lack_of_fit(self) -> float:
        return self.ss_lack_of_fit / self.df_lack_of_fit

    def rejects(self, alpha: float = 0.05) -> bool:
        """True when the model is rejected at level ``alpha`` (``p < alpha``)."""
        return self.p < alpha

    def summary(self) -> dict[str, Any]:
        return {
            "n_obs": self.n_obs,
            "n_points": self.n_points,
            "n_params": self.n_params,
            "ss_residual": self.ss_residual,
            "df_residual": self.df_residual,
            "ss_pure_error": self.ss_pure_error,
            "df_pure_error": self.df_pure_error,
            "ms_pure_error": self.ms_pure_error,
            "ss_lack_of_fit": self.ss_lack_of_fit,
            "df_lack_of_fit": self.df_lack_of_fit,
            "ms_lack_of_fit": self.ms_lack_of_fit,
            "f": self.f,
            "p": self.p,
        }


def _lof_dfs(groups: np.ndarray, n_params: int) -> tuple[np.ndarray, int, int, int]:
    if groups.ndim > 1:
        codes = np.unique(groups.reshape(groups.shape[0], -1), axis=0, return_inverse=True)[1].ravel()
    else:
        codes = _levels(groups)
    n, m = codes.size, int(codes.max()) + 1 if codes.size else 0
    df_pe, df_lof = n - m, m - int(n_params)
    if df_pe < 1:
        raise DataError(
            f"no repeated runs: {n} runs at {m} distinct design points leave 0 degrees of freedom for pure error "
            "(test at least one design point twice)"
        )
    if df_lof < 1:
        raise DataError(
            f"the model has {n_params} parameters for {m} distinct design points: no degrees of freedom for lack "
            "of fit (use more design points than parameters)"
        )
    return codes, m, df_pe, df_lof


def calc_lack_of_fit_f(
    y: npt.ArrayLike, y_fit: npt.ArrayLike, groups: npt.ArrayLike, n_params: int
) -> tuple[FloatArray, FloatArray]:
    """Lack-of-fit F statistics and p-values, vectorised over responses.

    Parameters
    ----------
    y, y_fit : array_like, shape (n,) or (n, k)
        Observed and fitted responses (k responses fitted by the same design, e.g. simulated experiments).
    groups : array_like, shape (n,) or (n, q)
        Design point of each run (rows with equal values are repeated runs).
    n_params : int
        Parameters estimated by the fitted model.

    Returns
    -------
    f, p : FloatArray, shape (k,) or ()
    """
    yy = np.asarray(y, dtype=float)
    yf = np.asarray(y_fit, dtype=float)
    codes, m, df_pe, df_lof = _lof_dfs(np.asarray(groups), n_params)
    y2 = yy.reshape(yy.shape[0], -1)
    ss_e = np.sum((y2 - yf.reshape(y2.shape)) ** 2, axis=0)
    sums = np.zeros((m, y2.shape[1]))
    np.add.at(sums, codes, y2)
    counts = np.bincount(codes, minlength=m)[:, None]
    ss_pe = np.sum(y2**2, axis=0) - np.sum(sums**2 / counts, axis=0)
    ss_pe = np.maximum(ss_pe, 0.0)
    ss_lof = np.maximum(ss_e - ss_pe, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = (ss_lof / df_lof) / (ss_pe / df_pe)
    p = stats.f.sf(f, df_lof, df_pe)
    shape = yy.shape[1:]
    return f.reshape(shape), np.asarray(p, dtype=float).reshape(shape)


def run_lack_of_fit(y: npt.ArrayLike, y_fit: npt.ArrayLike, groups: npt.ArrayLike, n_params: int) -> LackOfFit:
    """Lack-of-fit test of one fitted model (see the module's equations).

    Parameters
    ----------
    y, y_fit : array_like, shape (n,)
        Observed and fitted responses.
    groups : array_like, shape (n,) or (n, q)
        Design point of each run: rows with equal values are repeated runs (pure error).
    n_params : int
        Parameters estimated by the model (p).

    Returns
    -------
    LackOfFit

    Raises
    ------
    DataError
        Non-finite values, no repeated runs (no pure error), or no more design points than parameters.
    """
    yy = np.asarray(y, dtype=float).ravel()
    yf = np.asarray(y_fit, dtype=float).ravel()
    if yy.shape != yf.shape or len(np.asarray(groups)) != yy.size:
        raise DataError("y, y_fit and groups must have the same number of runs")
    if not (np.all(np.isfinite(yy)) and np.all(np.isfinite(yf))):
        raise DataError("the response or the fitted values contain missing or non-finite values")
    codes, m, df_pe, df_lof = _lof_dfs(np.asarray(groups), n_params)
    ss_e = float(np.sum((yy - yf) ** 2))
    means = np.bincount(codes, weights=yy, minlength=m) / np.bincount(codes, minlength=m)
    ss_pe = float(np.sum((yy - means[codes]) ** 2))
    ss_lof = max(ss_e - ss_pe, 0.0)
    if ss_pe > 0:
        f = (ss_lof / df_lof) / (ss_pe / df_pe)
        p = float(stats.f.sf(f, df_lof, df_pe))
    else:
        raise DataError("the repeated runs agree exactly (pure error is 0): the lack-of-fit F is undefined")
    return LackOfFit(
        ss_residual=ss_e,
        df_residual=yy.size - int(n_params),
        ss_pure_error=ss_pe,
        df_pure_error=df_pe,
        ss_lack_of_fit=ss_lof,
        df_lack_of_fit=df_lof,
        f=float(f),
        p=p,
        n_obs=int(yy.size),
        n_points=m,
        n_params=int(n_params),
    )
