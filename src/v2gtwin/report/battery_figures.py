"""Figure of the fleet's virtual batteries on a network: outer, inner and network-secure power bands."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from matplotlib.figure import Figure

from v2gtwin.report.figure_layout import Clock, place_legend, set_clock_axis

__all__ = ["fig_network_battery"]

#: Colour and label of each kind of battery, widest first.
_STYLE: dict[str, tuple[str, str]] = {
    "outer": ("tab:gray", "outer (sum of the EVs' bounds)"),
    "inner": ("tab:blue", "inner (disaggregable)"),
    "network_secure": ("tab:red", "network-secure inner"),
}


def fig_network_battery(
    time_h: npt.ArrayLike,
    bands_kw: dict[str, tuple[npt.ArrayLike, npt.ArrayLike]],
    clock_labels: Sequence[str],
    clock: Clock | None = None,
) -> Figure:
    """The fleet's power band over the day for each battery: ``bands_kw[kind] = (p_min_kw, p_max_kw)``, (n_steps,)
    each, + charging [kW]; ``clock_labels``: "HH:MM" of each step's start (the ticks when ``clock``, the clock
    of step 0, is not given)."""
    t = np.asarray(time_h, dtype=float)
    fig = Figure(figsize=(8.0, 3.4))
    ax = fig.add_subplot()
    for kind, (lo, hi) in bands_kw.items():
        color, label = _STYLE.get(kind, ("k", kind))
        lo_a, hi_a = np.asarray(lo, dtype=float) / 1e3, np.asarray(hi, dtype=float) / 1e3
        ax.step(t, hi_a, where="post", color=color, label=label)
        ax.step(t, lo_a, where="post", color=color)
        if kind == "network_secure":
            ax.fill_between(t, lo_a, hi_a, step="post", color=color, alpha=0.12)
    ax.axhline(0.0, color="k", lw=0.5)
    if clock is not None and t.size:
        set_clock_axis(ax, float(t[-1] + (t[1] - t[0] if t.size > 1 else 1.0)), clock.start_clock_h, start=clock.start)
    else:
        step = max(1, len(clock_labels) // 8)
        ax.set_xticks(t[::step])
        ax.set_xticklabels(list(clock_labels)[::step], fontsize=8)
        ax.set_xlabel("local time (hh:mm)")
    ax.set_ylabel("fleet power [MW] (+ charging)")
    ax.grid(alpha=0.3)
    ax.set_title("Virtual battery power band: outer, inner and network-secure")
    place_legend(ax, fontsize=7)
    return fig
