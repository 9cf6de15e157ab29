"""Checks on matplotlib figures, written apart from the report's own legend placement (they share no code with
v2gtwin.report.figure_layout): what a reader sees, measured in display coordinates."""

from __future__ import annotations

import re

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

#: A clock-time tick label: HH:MM or HH:MM:SS, optionally a second line with the day (+1d, or 16 Jan).
CLOCK_LABEL = re.compile(r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?(\n(\+\d+d|\d{1,2} [A-Z][a-z]{2}))?$")


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
