"""Split-plot factorial designs for cell-ageing tests in temperature chambers.

Chamber temperature is hard to change: a chamber is set to one temperature and holds a set of cells for the whole
test. The chamber-run is therefore the **whole plot** (whole-plot factor: temperature), and the cells inside it are
the **subplots** (subplot factors: depth of discharge and C-rate, every combination once per chamber-run). With
``n_chambers`` chambers, whole plots run in *rounds* of at most ``n_chambers`` at once.

Randomisation within the restrictions (Montgomery 2017, Section 14.4): the order of the whole plots (each
temperature ``n_replicates`` times) is a random permutation, which fixes the round and the chamber of each; within
each whole plot, the order (channel, position) of the subplot combinations is a second random permutation. The
whole plots are thus *completely randomised*; the analysis (:mod:`v2gtwin.battery.anova`) tests temperature
against the whole-plot error (replicate chamber-runs within a temperature, ``n_temp (n_replicates - 1)`` degrees
of freedom) and the subplot factors and their interactions against the subplot error.

References
----------
D. C. Montgomery, *Design and Analysis of Experiments*, 9th ed., Wiley, 2017, Chapter 14 (split-plot designs).
S. M. Kowalski, P. A. Parker, G. G. Vining, "Tutorial: industrial split-plot experiments", *Quality Engineering*
19(1), 2007, pp. 1-15.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from v2gtwin.errors import ScenarioError

__all__ = [
    "RUN_SHEET_COLUMNS",
    "SplitPlotDesign",
    "build_split_plot_design",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Columns of the run sheet, in order (the response column ``q_loss_pct`` is left empty for the laboratory).
RUN_SHEET_COLUMNS: tuple[str, ...] = (
    "run_order",
    "round",
    "chamber",
    "whole_plot",
    "replicate",
    "subplot_order",
    "temp_c",
    "dod_pu",
    "c_rate",
    "q_loss_pct",
)

#: Allowed ranges of the factor levels (chamber temperature [°C], depth of discharge [pu], C-rate [1/h]).
TEMP_RANGE_C: tuple[float, float] = (-40.0, 80.0)
DOD_RANGE_PU: tuple[float, float] = (0.0, 1.0)  # exclusive of 0
C_RATE_RANGE: tuple[float, float] = (0.0, 10.0)  # exclusive of 0
#: Most chambers and replicates a design may have (one-line errors instead of overflows beyond) [-].
MAX_CHAMBERS: int = 1000
MAX_REPLICATES: int = 100


@dataclass(frozen=True)
class SplitPlotDesign:
    """A randomised split-plot run sheet: one entry per cell test (subplot), in run order.

    Attributes
    ----------
    run_order : IntArray
        1-based position of the test in the sheet [-].
    round : IntArray
        1-based round of chamber-runs the test belongs to (chamber-runs of one round run at the same time) [-].
    chamber : IntArray
        1-based chamber that holds the cell [-].
    whole_plot : IntArray
        1-based chamber-run (whole plot) id, numbered in run order [-].
    replicate : IntArray
        1-based replicate of the temperature this whole plot is [-].
    subplot_order : IntArray
        1-based position (channel) of the cell inside its whole plot, randomised [-].
    temp_c : FloatArray
        Chamber temperature [°C] (whole-plot factor).
    dod_pu : FloatArray
        Depth of discharge of the cycling [pu of capacity] (subplot factor).
    c_rate : FloatArray
        Cycling current as C-rate [1/h] (subplot factor).
    n_chambers, n_replicates, seed : int
        The inputs the sheet was built from.
    """

    run_order: IntArray
    round: IntArray
    chamber: IntArray
    whole_plot: IntArray
    replicate: IntArray
    subplot_order: IntArray
    temp_c: FloatArray
    dod_pu: FloatArray
    c_rate: FloatArray
    n_chambers: int
    n_replicates: int
    seed: int

    @property
    def n_runs(self) -> int:
        """Number of cell tests (subplots)."""
        return int(self.run_order.size)

    @property
    def n_whole_plots(self) -> int:
        """Number of chamber-runs (whole plots)."""
        return int(self.whole_plot.max()) if self.n_runs else 0

    @property
    def n_rounds(self) -> int:
        """Number of rounds of chamber-runs."""
        return int(self.round.max()) if self.n_runs else 0

    def rows(self) -> list[dict[str, Any]]:
        """The run sheet as a list of dicts (column -> value; the response column empty)."""
        out: list[dict[str, Any]] = []
        for i in range(self.n_runs):
            out.append(
                {
                    "run_order": int(self.run_order[i]),
                    "round": int(self.round[i]),
                    "chamber": int(self.chamber[i]),
                    "whole_plot": int(self.whole_plot[i]),
                    "replicate": int(self.replicate[i]),
                    "subplot_order": int(self.subplot_order[i]),
                    "temp_c": float(self.temp_c[i]),
                    "dod_pu": float(self.dod_pu[i]),
                    "c_rate": float(self.c_rate[i]),
                    "q_loss_pct": None,
                }
            )
        return out

    def to_csv(self, q_loss_pct: npt.ArrayLike | None = None) -> str:
        """The run sheet as CSV text (header :data:`RUN_SHEET_COLUMNS`); ``q_loss_pct`` fills the response column
        (e.g. a simulated experiment), else it is left empty for the laboratory to fill in."""
        q = None if q_loss_pct is None else np.asarray(q_loss_pct, dtype=float)
        if q is not None and q.shape != (self.n_runs,):
            raise ScenarioError(f"q_loss_pct has shape {q.shape}; the design has {self.n_runs} runs")
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(RUN_SHEET_COLUMNS)
        for i, row in enumerate(self.rows()):
            row["q_loss_pct"] = "" if q is None else repr(float(q[i]))
            writer.writerow([_csv_value(row[c]) for c in RUN_SHEET_COLUMNS])
        return buf.getvalue()

    def summary(self) -> dict[str, Any]:
        """Key numbers of the design (the ``doe design --json`` head)."""
        n_temp = int(np.unique(self.temp_c).size)
        n_sub = int(np.unique(np.stack([self.dod_pu, self.c_rate]), axis=1).shape[1])
        return {
            "n_runs": self.n_runs,
            "n_whole_plots": self.n_whole_plots,
            "n_rounds": self.n_rounds,
            "n_chambers": self.n_chambers,
            "n_replicates": self.n_replicates,
            "cells_per_whole_plot": n_sub,
            "temp_c": sorted({float(t) for t in self.temp_c}),
            "dod_pu": sorted({float(d) for d in self.dod_pu}),
            "c_rate": sorted({float(c) for c in self.c_rate}),
            "df_whole_plot_error": n_temp * (self.n_replicates - 1),
            "seed": self.seed,
        }


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if not value.is_integer() else f"{value:g}"
    return str(value)


def _check_levels(name: str, levels: npt.ArrayLike, lo: float, hi: float, *, lo_open: bool) -> FloatArray:
    arr = np.asarray(levels, dtype=float).ravel()
    if arr.size == 0:
        raise ScenarioError(f"{name}: give at least one level")
    if not np.all(np.isfinite(arr)):
        raise ScenarioError(f"{name}: levels must be finite numbers, got {arr.tolist()}")
    bad = arr[(arr <= lo) | (arr > hi)] if lo_open else arr[(arr < lo) | (arr > hi)]
    if bad.size:
        bracket = "(" if lo_open else "["
        raise ScenarioError(f"{name}: level {bad[0]:g} is outside the allowed range {bracket}{lo:g}, {hi:g}]")
    if np.unique(arr).size != arr.size:
        raise ScenarioError(f"{name}: levels must be distinct, got {arr.tolist()}")
    return arr


def build_split_plot_design(
    temp_c: npt.ArrayLike,
    dod_pu: npt.ArrayLike,
    c_rate: npt.ArrayLike,
    n_chambers: int,
    n_replicates: int,
    seed: int,
    *,
    cells_per_chamber: int | None = None,
    max_rounds: int | None = None,
) -> SplitPlotDesign:
    """Build a randomised split-plot run sheet: temperature on chamber-runs, DoD x C-rate on the cells inside.

    Parameters
    ----------
    temp_c : array_like
        Chamber temperatures [°C], distinct, in [-40, 80] (whole-plot factor; at least 2 levels).
    dod_pu : array_like
        Depths of discharge [pu of capacity], distinct, in (0, 1] (subplot factor).
    c_rate : array_like
        C-rates [1/h], distinct, in (0, 10] (subplot factor).
    n_chambers : int
        Chambers available, i.e. chamber-runs (whole plots) that run at the same time (>= 1).
    n_replicates : int
        Chamber-runs per temperature (>= 2: the whole-plot error needs replicated whole plots).
    seed : int
        Seed of the randomisation (``numpy.random.default_rng(seed)``).
    cells_per_chamber : int, optional
        Cells (test channels) a chamber holds; a whole plot needs ``len(dod_pu) * len(c_rate)``.
    max_rounds : int, optional
        Rounds of chamber-runs the test campaign may take; the design needs
        ``ceil(len(temp_c) * n_replicates / n_chambers)``.

    Returns
    -------
    SplitPlotDesign

    Raises
    ------
    ScenarioError
        A level out of range or repeated, too few temperatures or replicates, or a design that the chambers
        cannot hold (cells per chamber) or run in the allowed rounds; the message names the option and its range.
    """
    temps = _check_levels("temperatures (temp_c)", temp_c, *TEMP_RANGE_C, lo_open=False)
    dods = _check_levels("depths of discharge (dod_pu)", dod_pu, *DOD_RANGE_PU, lo_open=True)
    rates = _check_levels("C-rates (c_rate)", c_rate, *C_RATE_RANGE, lo_open=True)
    if temps.size < 2:
        raise ScenarioError("temperatures (temp_c): give at least 2 levels (one level has no temperature effect)")
    if int(n_chambers) != n_chambers or not 1 <= n_chambers <= MAX_CHAMBERS:
        raise ScenarioError(f"chambers: must be an integer from 1 to {MAX_CHAMBERS}, got {n_chambers}")
    if int(n_replicates) != n_replicates or not 2 <= n_replicates <= MAX_REPLICATES:
        raise ScenarioError(
            f"replicates: must be an integer from 2 (the whole-plot error needs at least two chamber-runs per "
            f"temperature) to {MAX_REPLICATES}, got {n_replicates}"
        )
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise ScenarioError(f"seed: must be an integer >= 0, got {seed}")
    n_sub = dods.size * rates.size
    if cells_per_chamber is not None:
        if cells_per_chamber < 1:
            raise ScenarioError(f"cells per chamber: must be >= 1, got {cells_per_chamber}")
        if n_sub > cells_per_chamber:
            raise ScenarioError(
                f"cannot build the design: a chamber-run needs {n_sub} cells ({dods.size} DoD x {rates.size} "
                f"C-rate levels) but a chamber holds {cells_per_chamber}; use fewer subplot levels or larger chambers"
            )
    n_wp = temps.size * int(n_replicates)
    n_rounds = math.ceil(n_wp / int(n_chambers))
    if max_rounds is not None:
        if max_rounds < 1:
            raise ScenarioError(f"max rounds: must be >= 1, got {max_rounds}")
        if n_rounds > max_rounds:
            raise ScenarioError(
                f"cannot build the design: {n_wp} chamber-runs ({temps.size} temperatures x {n_replicates} "
                f"replicates) in {n_chambers} chambers take {n_rounds} rounds, more than the {max_rounds} allowed; "
                f"use at least {math.ceil(n_wp / max_rounds)} chambers or fewer replicates"
            )
    if n_chambers > n_wp:
        logger.info("%d chambers for %d chamber-runs: %d chambers stay idle", n_chambers, n_wp, n_chambers - n_wp)

    rng = np.random.default_rng(seed)
    # Whole plots: each temperature n_replicates times, in a random order (completely randomised whole plots).
    wp_temp_idx = np.repeat(np.arange(temps.size), int(n_replicates))
    wp_rep = np.tile(np.arange(1, int(n_replicates) + 1), temps.size)
    order = rng.permutation(n_wp)
    wp_temp_idx, wp_rep = wp_temp_idx[order], wp_rep[order]
    # Replicate numbers count the runs of a temperature in run order (1 = first chamber-run at that temperature).
    seen: dict[int, int] = {}
    for k, t in enumerate(wp_temp_idx):
        seen[int(t)] = seen.get(int(t), 0) + 1
        wp_rep[k] = seen[int(t)]
    wp_round = np.arange(n_wp) // int(n_chambers) + 1
    wp_chamber = np.arange(n_wp) % int(n_chambers) + 1
    # Subplots: every DoD x C-rate combination once per whole plot, in a random order within the whole plot.
    sub_dod = np.repeat(dods, rates.size)
    sub_rate = np.tile(rates, dods.size)
    perms = np.stack([rng.permutation(n_sub) for _ in range(n_wp)])  # (n_wp, n_sub)
    n = n_wp * n_sub
    wp = np.repeat(np.arange(n_wp), n_sub)
    return SplitPlotDesign(
        run_order=np.arange(1, n + 1, dtype=np.int64),
        round=wp_round[wp].astype(np.int64),
        chamber=wp_chamber[wp].astype(np.int64),
        whole_plot=(wp + 1).astype(np.int64),
        replicate=wp_rep[wp].astype(np.int64),
        subplot_order=np.tile(np.arange(1, n_sub + 1), n_wp).astype(np.int64),
        temp_c=temps[wp_temp_idx[wp]].astype(np.float64),
        dod_pu=sub_dod[perms.ravel()].astype(np.float64),
        c_rate=sub_rate[perms.ravel()].astype(np.float64),
        n_chambers=int(n_chambers),
        n_replicates=int(n_replicates),
        seed=int(seed),
    )


#: Columns ``read_run_sheet`` needs (besides the response): the structure and the factor levels of each test.
REQUIRED_COLUMNS: tuple[str, ...] = ("whole_plot", "temp_c", "dod_pu", "c_rate")


def read_run_sheet(path: str | Any, response: str = "q_loss_pct") -> dict[str, np.ndarray]:
    """Read a run sheet with results (CSV, header row) as columns.

    Parameters
    ----------
    path : str or path-like
        CSV file with at least the columns :data:`REQUIRED_COLUMNS` and ``response`` (more columns are kept).
    response : str
        Column of the measured response.

    Returns
    -------
    dict of str to ndarray
        Every column; the required ones and the response as float arrays (``whole_plot`` as given).

    Raises
    ------
    DataError
        Unreadable file, missing columns, or an empty, non-numeric or non-finite value in a needed column;
        the message names the column and the first bad row.
    """
    from pathlib import Path

    import pandas as pd

    from v2gtwin.errors import DataError

    p = Path(path)
    try:
        frame = pd.read_csv(p, dtype=str, keep_default_na=False)
    except FileNotFoundError as exc:
        raise DataError(f"run sheet {str(p)!r} not found") from exc
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"run sheet {str(p)!r} is not a readable CSV file: {exc}") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    needed = [*REQUIRED_COLUMNS, response]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataError(
            f"run sheet {p.name!r} lacks the column(s) {', '.join(missing)} (needs {', '.join(needed)}; "
            f"has {', '.join(frame.columns) or 'none'})"
        )
    if len(frame) == 0:
        raise DataError(f"run sheet {p.name!r} has no rows")
    out: dict[str, np.ndarray] = {c: frame[c].to_numpy() for c in frame.columns}
    for c in needed:
        raw = frame[c].str.strip()
        values = np.array([_parse_float(v) for v in raw], dtype=float)  # exact: Python's float() round-trips
        bad = ~np.isfinite(values)
        if bad.any():
            k = int(np.argmax(bad))
            what = "is empty" if raw.iloc[k] == "" else f"is {raw.iloc[k]!r}, not a finite number"
            raise DataError(
                f"run sheet {p.name!r}: column {c!r} {what} in data row {k + 1} ({int(bad.sum())} bad value(s))"
            )
        out[c] = values
    return out


def _parse_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan
