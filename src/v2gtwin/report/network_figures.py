"""Figures of the fleet on a network of feeders (take arrays; the report calls them)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from matplotlib.figure import Figure

from v2gtwin.report.figure_layout import Clock, clock_tick_labels

__all__ = ["fig_envelope_heatmap"]


def fig_envelope_heatmap(
    feeder_names: Sequence[str],
    bus_labels: Sequence[Sequence[str]],
    p_import_max_kw: Sequence[npt.ArrayLike],
    p_export_max_kw: Sequence[npt.ArrayLike],
    clock_labels: Sequence[str],
    clock: Clock | None = None,
    dt_s: float | None = None,
) -> Figure:
    """Dynamic operating envelopes as heat maps, bus x time: import (charging) limit left, export (V2G) right.

    Parameters
    ----------
    feeder_names : name of each feeder; bus_labels : each feeder's bus labels (the source's).
    p_import_max_kw, p_export_max_kw : per feeder, (n_steps, n_bus) largest EV import / export at each bus [kW].
    clock_labels : local clock time "HH:MM" of the start of each step (the tick labels when ``clock`` is not
        given).
    clock, dt_s : the clock of step 0 and the step length [s]: tick labels from them, dated when the clock is
        (:func:`~v2gtwin.report.figure_layout.clock_tick_labels`).

    Every bus of every feeder is drawn (feeders stacked, separated by lines); with few buses the rows carry the
    buses' labels, with several feeders the feeders' names.
    """
    imp = np.concatenate([np.asarray(a, dtype=float) for a in p_import_max_kw], axis=1)
    exp = np.concatenate([np.asarray(a, dtype=float) for a in p_export_max_kw], axis=1)
    sizes = [len(b) for b in bus_labels]
    edges = np.cumsum([0, *sizes])
    n_steps, n_node = imp.shape
    fig = Figure(figsize=(8.0, min(2.5 + 0.12 * n_node, 7.0)), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for ax, data, title in ((axes[0], imp, "import (charging) limit"), (axes[1], exp, "export (V2G) limit")):
        im = ax.imshow(
            data.T,
            aspect="auto",
            origin="upper",
            interpolation="nearest",
            cmap="viridis",
            extent=(0, n_steps, n_node, 0),
        )
        fig.colorbar(im, ax=ax, label="kW", fraction=0.06, pad=0.03)
        ax.set_title(title, fontsize=10)
        for e in edges[1:-1]:
            ax.axhline(e, color="white", lw=0.8)
        every = max(1, n_steps // 4)
        ticks = np.arange(0, n_steps, every)
        ax.set_xticks(ticks + 0.5)
        if clock is not None and dt_s is not None:
            texts = clock_tick_labels(ticks * dt_s, clock.start_clock_h, clock.start)
        else:
            texts = [clock_labels[int(t)] for t in ticks]
        ax.set_xticklabels(texts, fontsize=8, rotation=30, ha="right")
        ax.set_xlabel("local time (hh:mm)")
    if len(sizes) == 1 and n_node <= 40:
        axes[0].set_yticks(np.arange(n_node) + 0.5)
        axes[0].set_yticklabels(list(bus_labels[0]), fontsize=6)
        axes[0].set_ylabel(f"bus of {feeder_names[0]}")
    elif len(sizes) <= 30:
        axes[0].set_yticks((edges[:-1] + edges[1:]) / 2.0)
        axes[0].set_yticklabels(list(feeder_names), fontsize=7)
        axes[0].set_ylabel("feeder (its buses stacked)")
    else:
        axes[0].set_ylabel(f"bus ({len(sizes)} feeders stacked)")
    return fig
