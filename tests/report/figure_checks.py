"""Checks on matplotlib figures, written apart from the report's own legend placement (they share no code with
v2gtwin.report.figure_layout): what a reader sees, measured in display coordinates."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

#: A clock-time tick label: HH:MM or HH:MM:SS, optionally a second line with the day (+1d, or 16 Jan).
CLOCK_LABEL = re.compile(r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?([\n ](\+\d+d|\d{1,2} [A-Z][a-z]{2}))?$")


def _drawn_points(line: Line2D, per_segment: int = 25) -> np.ndarray:
    """Points along what ``line`` draws, in display coordinates: its vertices, the corners of a step drawing
    and ``per_segment`` points along every segment between them (so a segment crossing a box is seen even
    when no vertex lies in it)."""
    x = np.asarray(line.get_xdata(), dtype=float)
    y = np.asarray(line.get_ydata(), dtype=float)
    style = line.get_drawstyle()
    if style in ("steps-post", "steps-pre", "steps-mid", "steps") and x.size > 1:
        if style == "steps-pre" or style == "steps":
            x, y = np.repeat(x, 2)[:-1], np.repeat(y, 2)[1:]
        elif style == "steps-post":
            x, y = np.repeat(x, 2)[1:], np.repeat(y, 2)[:-1]
        else:
            mid = (x[:-1] + x[1:]) / 2
            x = np.concatenate([[x[0]], np.repeat(mid, 2), [x[-1]]])
            y = np.repeat(y, 2)
    pts = line.get_transform().transform(np.column_stack([x, y]))
    pts = pts[np.isfinite(pts).all(axis=1)]
    if line.get_linestyle() in ("None", "", " ", "none") or pts.shape[0] < 2:
        return pts
    f = np.linspace(0.0, 1.0, per_segment)[:, None, None]
    seg = pts[:-1][None] * (1 - f) + pts[1:][None] * f
    return np.concatenate([pts, seg.reshape(-1, 2)])


def legend_covers(fig: Figure) -> list[str]:
    """For every legend of ``fig``: the lines and bars of any axes that reach into its box (empty: none)."""
    fig.draw_without_rendering()
    renderer = fig._get_renderer()  # type: ignore[attr-defined]
    legends = [leg for ax in fig.axes if (leg := ax.get_legend()) is not None] + list(fig.legends)
    found = []
    for leg in legends:
        box = leg.get_window_extent(renderer)
        for ax in fig.axes:
            for line in ax.get_lines():
                if not line.get_visible():
                    continue
                pts = _drawn_points(line)
                inside = (pts[:, 0] > box.x0) & (pts[:, 0] < box.x1) & (pts[:, 1] > box.y0) & (pts[:, 1] < box.y1)
                if inside.any():
                    found.append(f"line {line.get_label()!r} under legend {[t.get_text() for t in leg.texts]}")
            for patch in ax.patches:
                if isinstance(patch, Rectangle) and patch.get_visible():
                    ext = patch.get_window_extent(renderer)
                    if ext.width > 0 and ext.height > 0 and ext.overlaps(box):
                        found.append(f"bar at {ext.x0:.0f},{ext.y0:.0f} px under a legend")
    return found


def clock_axes(fig: Figure) -> list[Axes]:
    """The axes whose x axis is labelled as local time."""
    return [ax for ax in fig.axes if "local time" in ax.get_xlabel()]


def tick_texts(ax: Axes) -> list[str]:
    """The x tick labels of ``ax`` as set (a drawn figure's labels)."""
    return [t.get_text() for t in ax.get_xticklabels()]


#: x axes that measure a duration of an exchange, not a time of day (latencies of the command path and of the
#: OCPP fan-out, the TLS handshake's parts): no clock applies.
DURATION_AXES = (
    "time after the central system sends the command [s]",
    "time from the start of the fan-out [ms]",
    "time [ms] (stacked; the sum is the serial handshake time)",
)

_MONEY_WORDS = re.compile(r"price|cost|profit|surplus|welfare|revenue|payment", re.IGNORECASE)


def figure_problems(fig: Figure, currency: str) -> list[str]:
    """What a report figure hides or leaves unsaid: data under a legend, a time axis without clock-time ticks,
    a money axis without ``currency``."""
    title = next((a.get_title() for a in fig.axes if a.get_title()), "?")
    out = [f"{title}: {p}" for p in legend_covers(fig)]
    for ax in fig.axes:
        xlabel = ax.get_xlabel()
        if "local time" in xlabel:
            bad = [t for t in tick_texts(ax) if t and not CLOCK_LABEL.match(t)]
            if bad:
                out.append(f"{title}: tick labels {bad} of {xlabel!r} are not clock times")
        elif re.search(r"\btime\b|\[s\]|\[min\]|\[h\]|\bhour\b", xlabel) and xlabel not in DURATION_AXES:
            out.append(f"{title}: time axis {xlabel!r} without clock time")
        for label in (xlabel, ax.get_ylabel()):
            if _MONEY_WORDS.search(label) and currency not in label:
                out.append(f"{title}: money axis {label!r} without {currency}")
    return out


def record_figures(monkeypatch: pytest.MonkeyPatch) -> list[Figure]:
    """From now on (for the test), every figure saved (encoded for the report) is also kept in the list
    returned."""
    kept: list[Figure] = []
    save = Figure.savefig

    def savefig(self: Figure, *args: Any, **kwargs: Any) -> None:
        kept.append(self)
        save(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    return kept
