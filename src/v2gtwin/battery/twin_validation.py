"""Twin validation workflow: simulate a chamber experiment from a degradation law plus measurement noise, fit a
right and a wrong fade model, and measure how often the lack-of-fit test accepts the one and rejects the other.

Degradation law (the "truth" of the simulated experiment)
    Cycle fade of graphite/LiFePO4 cells after a test of ``n_cycles`` cycles, with Arrhenius temperature
    dependence whose activation energy falls with C-rate (Wang et al. 2011, Eq. 5)::

        Q_loss [%] = B * exp((-E_a + eta * C) / (R * T)) * Ah^z,    Ah = 2 * DoD * Q_cell * n_cycles

    ``E_a`` = 31,700 J/mol, ``eta`` = 370.3 J/(mol C-rate), ``z`` = 0.55 (Wang et al. 2011). ``B`` sets the scale
    only: the paper fits it per C-rate and implementations quote 30,330 to 31,630; the value (30,330 here) and
    the throughput convention (charge plus discharge Ah) do not change the test's size or power, which work on
    ``ln Q_loss`` with relative noise. The lead may swap in the fleet model of :mod:`v2gtwin.battery.degradation`.

Measurement noise
    Multiplicative: ``q = Q_loss * exp(sigma * eps)``, eps ~ N(0, 1) independent per cell test (``sigma`` ~ the
    relative standard deviation of a capacity-fade measurement). On ``ln q`` the noise is additive and equal in
    every run, so both fitted models are linear least squares and the lack-of-fit F test is exact: the right
    model is accepted with probability 1 - alpha, and the power against a wrong model is the noncentral-F
    probability with noncentrality ``||(I - H) mu||^2 / sigma^2`` (mu = true ``ln Q_loss`` per run, H the
    wrong model's hat matrix).

Fade models (fitted to ``ln q``; registry :data:`FADE_MODELS`)
    ``arrhenius``   ``[1, 1/T, C/T, ln DoD]`` -- the law's own form (right model);
    ``linear_temp`` ``[1, T, C, ln DoD]``     -- temperature and C-rate linear instead of Arrhenius (wrong).

References
----------
J. Wang, P. Liu, J. Hicks-Garner, E. Sherman, S. Soukiazian, M. Verbrugge, H. Tataria, J. Musser,
P. Finamore, "Cycle-life model for graphite-LiFePO4 cells", *J. Power Sources* 196(8), 2011, pp. 3942-3948.
D. C. Montgomery, G. C. Runger, *Applied Statistics and Probability for Engineers*, 3rd ed., Wiley, 2003,
supplement S11 (lack-of-fit test).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from scipy import stats

from v2gtwin.battery.anova import LackOfFit, SplitPlotAnova, calc_lack_of_fit_f, run_lack_of_fit, run_split_plot_anova
from v2gtwin.battery.doe import SplitPlotDesign
from v2gtwin.errors import DataError, ScenarioError

__all__ = [
    "B_WANG",
    "EA_J_PER_MOL",
    "ETA_J_PER_MOL",
    "FADE_MODELS",
    "R_J_PER_MOL_K",
    "Z_AH",
    "ExperimentAnalysis",
    "FadeModelFit",
    "TwinValidation",
    "calc_q_loss_wang_pct",
    "fit_fade_model",
    "run_experiment_analysis",
    "run_twin_validation",
    "simulate_experiment",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

#: Molar gas constant [J/(mol K)] (CODATA 2018, exact).
R_J_PER_MOL_K = 8.314462618
#: Activation energy of cycle fade [J/mol] (Wang et al. 2011, Eq. 5).
EA_J_PER_MOL = 31_700.0
#: Fall of the activation energy per unit C-rate [J/mol per C-rate] (Wang et al. 2011, Eq. 5).
ETA_J_PER_MOL = 370.3
#: Power-law exponent of the Ah throughput [-] (Wang et al. 2011, Eq. 5).
Z_AH = 0.55
#: Pre-exponential factor [% / Ah^z] (Wang et al. 2011 fit it per C-rate; sets the scale only, see module notes).
B_WANG = 30_330.0
ZERO_C_IN_K = 273.15


def calc_q_loss_wang_pct(
    temp_c: npt.ArrayLike,
    dod_pu: npt.ArrayLike,
    c_rate: npt.ArrayLike,
    *,
    n_cycles: float = 500.0,
    capacity_ah: float = 2.3,
    b: float = B_WANG,
) -> FloatArray:
    """Capacity loss after ``n_cycles`` cycles by the Wang et al. (2011) cycle-life law.

    Parameters
    ----------
    temp_c : array_like
        Cell temperature [°C].
    dod_pu : array_like
        Depth of discharge of each cycle [pu of capacity].
    c_rate : array_like
        Cycling current [1/h, C-rate].
    n_cycles : float
        Cycles of the test [-].
    capacity_ah : float
        Nominal cell capacity [Ah] (it only scales the Ah throughput).
    b : float
        Pre-exponential factor [% / Ah^z].

    Returns
    -------
    FloatArray
        Capacity loss [% of the initial capacity].

    Notes
    -----
    ``Q_loss = b * exp((-E_a + eta * C) / (R * T)) * Ah^z`` with ``Ah = 2 * DoD * capacity_ah * n_cycles``.

    References
    ----------
    J. Wang et al., "Cycle-life model for graphite-LiFePO4 cells", J. Power Sources 196(8), 2011, Eq. 5.
    """
    t_k = np.asarray(temp_c, dtype=float) + ZERO_C_IN_K
    c = np.asarray(c_rate, dtype=float)
    ah = 2.0 * np.asarray(dod_pu, dtype=float) * capacity_ah * n_cycles
    return np.asarray(b * np.exp((-EA_J_PER_MOL + ETA_J_PER_MOL * c) / (R_J_PER_MOL_K * t_k)) * ah**Z_AH)


def _x_arrhenius(temp_c: FloatArray, dod_pu: FloatArray, c_rate: FloatArray) -> FloatArray:
    t_k = temp_c + ZERO_C_IN_K
    return np.column_stack([np.ones_like(t_k), 1.0 / t_k, c_rate / t_k, np.log(dod_pu)])


def _x_linear_temp(temp_c: FloatArray, dod_pu: FloatArray, c_rate: FloatArray) -> FloatArray:
    return np.column_stack([np.ones_like(temp_c), temp_c, c_rate, np.log(dod_pu)])


#: Fade models fitted to ln(q_loss_pct): name -> design-matrix builder (temp_c, dod_pu, c_rate) -> (n, p).
FADE_MODELS: dict[str, Callable[[FloatArray, FloatArray, FloatArray], FloatArray]] = {
    "arrhenius": _x_arrhenius,
    "linear_temp": _x_linear_temp,
}


@dataclass(frozen=True)
class FadeModelFit:
    """A fade model fitted to ln(q_loss_pct) by least squares, with its lack-of-fit test."""

    model: str
    params: tuple[float, ...]
    lack_of_fit: LackOfFit

    def summary(self, alpha: float = 0.05) -> dict[str, Any]:
        return {
            "model": self.model,
            "params": list(self.params),
            **self.lack_of_fit.summary(),
            "rejected": self.lack_of_fit.rejects(alpha),
        }


def _design_points(temp_c: FloatArray, dod_pu: FloatArray, c_rate: FloatArray) -> FloatArray:
    return np.column_stack([temp_c, dod_pu, c_rate])


def fit_fade_model(
    model: str, temp_c: npt.ArrayLike, dod_pu: npt.ArrayLike, c_rate: npt.ArrayLike, q_loss_pct: npt.ArrayLike
) -> FadeModelFit:
    """Fit a fade model of :data:`FADE_MODELS` to ln(q_loss_pct) and test its lack of fit.

    Raises
    ------
    ScenarioError
        Unknown model name.
    DataError
        A non-positive capacity loss (no logarithm), or no pure error / lack-of-fit degrees of freedom.
    """
    if model not in FADE_MODELS:
        raise ScenarioError(f"fade model {model!r} is unknown; choose one of {sorted(FADE_MODELS)}")
    t, d, c = (np.asarray(v, dtype=float).ravel() for v in (temp_c, dod_pu, c_rate))
    q = np.asarray(q_loss_pct, dtype=float).ravel()
    if not np.all(np.isfinite(q)) or np.any(q <= 0):
        raise DataError("q_loss_pct must be finite and > 0 in every run to fit a fade model on its logarithm")
    if np.any(d <= 0):
        raise DataError("dod_pu must be > 0 in every run")
    x = FADE_MODELS[model](t, d, c)
    y = np.log(q)
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    rank = int(np.linalg.matrix_rank(x))
    lof = run_lack_of_fit(y, x @ beta, _design_points(t, d, c), rank)
    return FadeModelFit(model, tuple(float(b) for b in beta), lof)


def simulate_experiment(
    design: SplitPlotDesign, noise_rel: float, rng: np.random.Generator, *, n_cycles: float = 500.0
) -> FloatArray:
    """Capacity loss [%] of every cell test of ``design`` by :func:`calc_q_loss_wang_pct` times
    ``exp(noise_rel * eps)`` (independent standard normal eps per test)."""
    if not 0.0 <= noise_rel <= 1.0:
        raise ScenarioError(f"noise: relative measurement noise must be in [0, 1], got {noise_rel}")
    q = calc_q_loss_wang_pct(design.temp_c, design.dod_pu, design.c_rate, n_cycles=n_cycles)
    return np.asarray(q * np.exp(noise_rel * rng.standard_normal(q.shape)))


#: Exact power below which ``doe validate`` warns that the wrong model is hard to reject (0.8, the usual target
#: power of a test: J. Cohen, Statistical Power Analysis for the Behavioral Sciences, 2nd ed., 1988, Ch. 2) [-].
ADEQUATE_POWER: Final = 0.8


@dataclass(frozen=True)
class TwinValidation:
    """Outcome of repeated simulated experiments: per model, how often the lack-of-fit test rejects it.

    ``rejection_rate`` is the share of experiments with p < alpha [-], ``rejection_rate_se`` its binomial
    standard error, and ``rejection_rate_theory`` the exact probability (noncentral F; alpha for the right
    model).
    """

    n_experiments: int
    alpha: float
    noise_rel: float
    n_runs: int
    n_points: int
    rejection_rate: dict[str, float]
    rejection_rate_se: dict[str, float]
    rejection_rate_theory: dict[str, float]
    noncentrality: dict[str, float]

    def summary(self) -> dict[str, Any]:
        right = "arrhenius"
        return {
            "n_experiments": self.n_experiments,
            "alpha": self.alpha,
            "noise_rel": self.noise_rel,
            "n_runs": self.n_runs,
            "n_points": self.n_points,
            "acceptance_rate_right_model": 1.0 - self.rejection_rate[right],
            "models": {
                m: {
                    "rejection_rate": self.rejection_rate[m],
                    "rejection_rate_se": self.rejection_rate_se[m],
                    "rejection_rate_theory": self.rejection_rate_theory[m],
                    "noncentrality": self.noncentrality[m],
                }
                for m in self.rejection_rate
            },
            "notes": self.notes(),
        }

    def notes(self) -> list[str]:
        """Plain-language warnings: a wrong model whose exact rejection probability is below
        :data:`ADEQUATE_POWER` (the test cannot tell it from the right one with this design and noise)."""
        out = []
        for m, p in self.rejection_rate_theory.items():
            if m != "arrhenius" and p < ADEQUATE_POWER:
                out.append(
                    f"the test rejects the wrong model {m!r} with probability {p:.3f} only (below "
                    f"{ADEQUATE_POWER:g}): over this temperature range 1/T is nearly linear in T, so the linear and "
                    "Arrhenius laws nearly coincide; widen the range (e.g. --temperatures-c 0,30,60), add "
                    "replicates or lower the noise"
                )
        return out


def run_twin_validation(
    design: SplitPlotDesign,
    n_experiments: int,
    rng: np.random.Generator,
    *,
    noise_rel: float = 0.03,
    alpha: float = 0.05,
    n_cycles: float = 500.0,
) -> TwinValidation:
    """Simulate ``n_experiments`` experiments of ``design`` and test every model of :data:`FADE_MODELS`.

    Parameters
    ----------
    design : SplitPlotDesign
        The run sheet (its temperatures, DoD and C-rate per cell test).
    n_experiments : int
        Simulated experiments (>= 1).
    rng : numpy.random.Generator
        Source of the measurement noise.
    noise_rel : float
        Relative measurement noise sigma [-] (0 < sigma <= 1).
    alpha : float
        Level of the lack-of-fit test (0 < alpha < 1).
    n_cycles : float
        Cycles of each test [-].

    Returns
    -------
    TwinValidation
    """
    if n_experiments < 1:
        raise ScenarioError(f"experiments: must be >= 1, got {n_experiments}")
    if not 0.0 < alpha < 1.0:
        raise ScenarioError(f"alpha: must be in (0, 1), got {alpha}")
    if not 0.0 < noise_rel <= 1.0:
        raise ScenarioError(f"noise: relative measurement noise must be in (0, 1], got {noise_rel}")
    t, d, c = design.temp_c, design.dod_pu, design.c_rate
    mu = np.log(calc_q_loss_wang_pct(t, d, c, n_cycles=n_cycles))
    y = mu[:, None] + noise_rel * rng.standard_normal((mu.size, int(n_experiments)))
    points = _design_points(t, d, c)
    n_points = int(np.unique(points, axis=0).shape[0])
    rate: dict[str, float] = {}
    se: dict[str, float] = {}
    theory: dict[str, float] = {}
    lam: dict[str, float] = {}
    for name, build in FADE_MODELS.items():
        x = build(t, d, c)
        p = int(np.linalg.matrix_rank(x))
        if n_points - p < 1 or mu.size - n_points < 1:
            raise DataError(
                f"model {name!r}: {mu.size} runs at {n_points} design points leave no degrees of freedom for "
                "pure error or lack of fit"
            )
        beta, *_ = np.linalg.lstsq(x, y, rcond=None)
        _, pval = calc_lack_of_fit_f(y, x @ beta, points, p)
        r = float(np.mean(pval < alpha))
        rate[name] = r
        se[name] = float(np.sqrt(r * (1.0 - r) / n_experiments))
        b_mu, *_ = np.linalg.lstsq(x, mu, rcond=None)
        lam[name] = float(np.sum((mu - x @ b_mu) ** 2) / noise_rel**2)
        df_lof, df_pe = n_points - p, mu.size - n_points
        f_crit = stats.f.isf(alpha, df_lof, df_pe)
        theory[name] = float(stats.ncf.sf(f_crit, df_lof, df_pe, lam[name])) if lam[name] > 1e-12 else alpha
    return TwinValidation(
        n_experiments=int(n_experiments),
        alpha=float(alpha),
        noise_rel=float(noise_rel),
        n_runs=int(mu.size),
        n_points=n_points,
        rejection_rate=rate,
        rejection_rate_se=se,
        rejection_rate_theory=theory,
        noncentrality=lam,
    )


@dataclass(frozen=True)
class ExperimentAnalysis:
    """Analysis of one chamber experiment: the split-plot ANOVA of the response and the lack-of-fit test of each
    fade model of :data:`FADE_MODELS` (fitted to its logarithm)."""

    response: str
    alpha: float
    whole_plot_factors: tuple[str, ...]
    subplot_factors: tuple[str, ...]
    anova: SplitPlotAnova
    fits: dict[str, FadeModelFit]
    notes: tuple[str, ...]

    def summary(self) -> dict[str, Any]:
        """Plain data: the ``doe analyze --json`` output."""
        return {
            "response": self.response,
            "alpha": self.alpha,
            "n_runs": self.anova.n_obs,
            "n_whole_plots": self.anova.n_whole_plots,
            "whole_plot_factors": list(self.whole_plot_factors),
            "subplot_factors": list(self.subplot_factors),
            "anova": self.anova.summary(),
            "lack_of_fit": {name: fit.summary(self.alpha) for name, fit in self.fits.items()},
            "notes": list(self.notes),
        }


def run_experiment_analysis(
    columns: Mapping[str, Any], response: str = "q_loss_pct", *, block: str | None = None, alpha: float = 0.05
) -> ExperimentAnalysis:
    """Analyse a chamber experiment (a run sheet with results, see :func:`v2gtwin.battery.doe.read_run_sheet`).

    The whole-plot factor is ``temp_c`` (constant within a ``whole_plot``); the subplot factors are those of
    ``dod_pu`` and ``c_rate`` that take more than one level. Temperature is tested against the whole-plot error,
    the subplot factors and all interactions against the pooled subplot error; each fade model is fitted to
    ``ln(response)`` and tested for lack of fit against the pure error of repeated (temperature, DoD, C-rate)
    points.

    Raises
    ------
    DataError
        Fewer than two temperatures, no subplot factor that varies, a whole-plot error or pure error without
        degrees of freedom (too few replicates), or a non-positive response.
    """
    if not 0.0 < alpha < 1.0:
        raise ScenarioError(f"alpha: must be in (0, 1), got {alpha}")
    t = np.asarray(columns["temp_c"], dtype=float)
    if np.unique(t).size < 2:
        raise DataError("temp_c takes one level only: the experiment needs at least two chamber temperatures")
    sub = tuple(c for c in ("dod_pu", "c_rate") if np.unique(np.asarray(columns[c], dtype=float)).size > 1)
    notes: list[str] = []
    fixed = [c for c in ("dod_pu", "c_rate") if c not in sub]
    if fixed:
        notes.append(f"{', '.join(fixed)} take(s) one level only: not a factor of the ANOVA")
    if not sub:
        raise DataError("neither dod_pu nor c_rate varies: a split-plot analysis needs a subplot factor")
    anova = run_split_plot_anova(columns, response, ["temp_c"], list(sub), "whole_plot", block=block)
    fits = {
        name: fit_fade_model(name, t, columns["dod_pu"], columns["c_rate"], columns[response]) for name in FADE_MODELS
    }
    notes.append(
        "lack of fit: runs are treated as independent; chamber-to-chamber variation (the ANOVA's whole-plot "
        "error) enters pure error and lack of fit alike, so compare its size with the subplot error"
    )
    notes.extend(anova.notes)
    return ExperimentAnalysis(
        response=response,
        alpha=float(alpha),
        whole_plot_factors=("temp_c",),
        subplot_factors=sub,
        anova=anova,
        fits=fits,
        notes=tuple(notes),
    )
