"""What every report figure shares: a legend placed where it hides no data, clock time on time axes, the
currency on money axes.

Matplotlib's ``loc="best"`` only weighs the data of the axes the legend belongs to (not a twin axis), counts
vertices rather than the segments drawn between them, and settles for the least-bad place when no place is
free. :func:`place_legend` instead tries the corners and edges of the axes in turn and keeps the first where
no line, step, bar, band outline, marker or text of any axes of the figure crosses the legend's box; when none
is free the legend goes outside the axes. It draws the figure once to know the sizes, so it is called last,
after every artist, limit, tick and layout call.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backend_bases import RendererBase
from matplotlib.cbook import STEP_LOOKUP_MAP
from matplotlib.collections import Collection, PathCollection
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.path import Path
from matplotlib.transforms import Bbox

__all__ = [
    "LEGEND_LOCATIONS",
    "Clock",
    "clock_tick_labels",
    "money_label",
    "place_legend",
    "set_clock_axis",
]

#: Places inside the axes tried in turn (corners first: they hide least of a curve's shape).
LEGEND_LOCATIONS: tuple[str, ...] = (
    "upper right",
    "upper left",
    "lower left",
    "lower right",
    "upper center",
    "lower center",
    "center left",
    "center right",
)

#: Candidate spacings of clock ticks [s], smallest first.
_TICK_STEPS_S: tuple[int, ...] = (
    1,
    2,
    5,
    10,
    15,
    30,
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    10_800,
    21_600,
    43_200,
    86_400,
)


@dataclass(frozen=True)
class Clock:
    """When a time axis starts: local clock time [h] and, when the scenario dates its horizon, the same instant
    as a tz-aware datetime (else None: labels then count days as ``+1d``).

    Attributes
    ----------
    start_clock_h : local clock time of the axis's zero [h].
    start : the same instant, tz-aware (None when the scenario has no date).
    """

    start_clock_h: float
    start: dt.datetime | None = None

    @classmethod
    def of(cls, time: Any) -> Clock:
        """The clock of a :class:`~v2gtwin.scenario.TimeGrid`'s step 0 (dated when the grid has a start date
        and time zone, i.e. offers ``start_datetime()``)."""
        dated = getattr(time, "start_datetime", None)
        return cls(float(time.start_hour), dated() if callable(dated) else None)

    def after(self, offset_h: float) -> Clock:
        """The clock ``offset_h`` [h] later (absolute time; e.g. an event's step start)."""
        clock_h = self.start_clock_h + offset_h  # past 24 h: the labels count the days
        if self.start is None:
            return Clock(clock_h)
        later = (self.start.astimezone(dt.UTC) + dt.timedelta(hours=offset_h)).astimezone(self.start.tzinfo)
        return Clock(later.hour + later.minute / 60.0 + later.second / 3600.0, later)


def money_label(quantity: str, currency: str, per: str = "") -> str:
    """An axis label for an amount of money: ``quantity [currency/per]`` (e.g. ``price [EUR/MWh]``)."""
    return f"{quantity} [{currency}{'/' + per if per else ''}]"


def _renderer(fig: Figure) -> RendererBase:
    fig.draw_without_rendering()
    return fig._get_renderer()  # type: ignore[attr-defined]


def _line_vertices(line: Line2D) -> tuple[np.ndarray, bool]:
    """Display coordinates of what ``line`` draws (steps expanded), and whether segments join them."""
    xy = np.column_stack([np.asarray(line.get_xdata(), dtype=float), np.asarray(line.get_ydata(), dtype=float)])
    joined = line.get_linestyle() not in ("None", "none", "", " ") and xy.shape[0] > 1
    style = line.get_drawstyle() or "default"
    if joined and style != "default" and style in STEP_LOOKUP_MAP:
        xs, ys = STEP_LOOKUP_MAP[style](xy[:, 0], xy[:, 1])
        xy = np.column_stack([xs, ys])
    disp = line.get_transform().transform(xy)
    return disp[np.isfinite(disp).all(axis=1)], joined


def _hits(fig: Figure, box: Bbox, renderer: RendererBase, skip: object) -> bool:
    """Whether any data artist of any axes of ``fig`` (not ``skip``, the legend) reaches into ``box``."""
    for ax in fig.axes:
        for line in ax.get_lines():
            if not line.get_visible():
                continue
            pts, joined = _line_vertices(line)
            if pts.shape[0] == 0:
                continue
            if joined and Path(pts).intersects_bbox(box, filled=False):
                return True
            if line.get_marker() not in (None, "None", "none", "", " ") and box.count_contains(pts):
                return True
        for patch in ax.patches:
            if isinstance(patch, Patch) and patch.get_visible():
                ext = patch.get_window_extent(renderer)
                if ext.width > 0 and ext.height > 0 and ext.overlaps(box):
                    return True
        for coll in ax.collections:
            if not isinstance(coll, Collection) or not coll.get_visible():
                continue
            if isinstance(coll, PathCollection):  # scatter: its points
                offs = coll.get_offset_transform().transform(np.asarray(coll.get_offsets(), dtype=float))
                if box.count_contains(offs[np.isfinite(offs).all(axis=1)]):
                    return True
                continue
            trans = coll.get_transform()
            for path in coll.get_paths():  # a band's outline (fill_between): its edges are data
                verts = trans.transform(path.vertices)
                verts = verts[np.isfinite(verts).all(axis=1)]
                if verts.shape[0] > 1 and Path(verts).intersects_bbox(box, filled=False):
                    return True
        for text in ax.texts:
            if text.get_visible() and text.get_text() and text.get_window_extent(renderer).overlaps(box):
                return True
    return any(leg is not skip and leg.get_window_extent(renderer).overlaps(box) for leg in _legends(fig))


def _legends(fig: Figure) -> list[Legend]:
    found = [leg for ax in fig.axes if (leg := ax.get_legend()) is not None]
    return [*found, *fig.legends]


def _group(ax: Axes) -> list[Axes]:
    """``ax`` and the axes drawn on the same area (twins)."""
    pos = ax.get_position()
    fig = ax.get_figure(root=True)
    assert fig is not None
    return [a for a in fig.axes if np.allclose(a.get_position().bounds, pos.bounds)]


def _legend(ax: Axes, handles: Sequence[Any], labels: Sequence[str], **kwargs: Any) -> Legend:
    legend: Any = ax.legend
    return legend(list(handles), list(labels), **kwargs)


def place_legend(
    ax: Axes,
    handles: Sequence[Any] | None = None,
    labels: Sequence[str] | None = None,
    *,
    fontsize: float = 8,
    **kwargs: Any,
) -> Legend | None:
    """Add ``ax``'s legend where it covers no data of the figure (:data:`LEGEND_LOCATIONS` in turn), else
    outside the axes: right of it when nothing is drawn to its right (and it is narrower than 40 % of the
    figure, or something is drawn below the axes), else below it.

    ``handles``/``labels`` default to those of ``ax`` and its twins. Call it after everything else is drawn
    on the figure (it freezes a layout engine's positions so that the chosen place stays valid). Returns
    None when there is nothing to label.
    """
    fig = ax.get_figure(root=True)
    assert isinstance(fig, Figure)
    group = _group(ax)
    if handles is None or labels is None:
        pairs = [(h, lab) for a in group for h, lab in zip(*a.get_legend_handles_labels(), strict=True)]
        handles, labels = [h for h, _ in pairs], [lab for _, lab in pairs]
    if not handles:
        return None
    renderer = _renderer(fig)
    if fig.get_layout_engine() is not None:  # keep the positions just computed
        fig.set_layout_engine("none")
    for loc in LEGEND_LOCATIONS:
        leg = _legend(ax, handles, labels, loc=loc, fontsize=fontsize, **kwargs)
        if not _hits(fig, leg.get_window_extent(renderer), renderer, leg):
            return leg
    leg.remove()
    to_fig = fig.transFigure.inverted()
    tight = Bbox.union([b for a in group if (b := a.get_tightbbox(renderer)) is not None])
    (_, y0), (x1, _) = to_fig.transform(tight.get_points())
    pos = ax.get_position()
    right_free = not any(o not in group and o.get_position().x0 >= pos.x1 - 1e-6 for o in fig.axes)
    below_free = not any(o not in group and o.get_position().y1 <= pos.y0 + 1e-6 for o in fig.axes)
    if right_free and below_free:  # a wide legend (long labels) reads better below than widening the figure
        probe = _legend(ax, handles, labels, loc="upper left", fontsize=fontsize, **kwargs)
        wide = probe.get_window_extent(renderer).width > 0.4 * fig.bbox.width
        probe.remove()
        right_free = not wide
    if right_free:
        leg = _legend(
            ax,
            handles,
            labels,
            loc="upper left",
            bbox_to_anchor=(x1 + 0.01, pos.y1),
            bbox_transform=fig.transFigure,
            fontsize=fontsize,
            **kwargs,
        )
    else:
        leg = _legend(
            ax,
            handles,
            labels,
            loc="upper center",
            bbox_to_anchor=((pos.x0 + pos.x1) / 2.0, y0 - 0.01),
            bbox_transform=fig.transFigure,
            fontsize=fontsize,
            ncols=1 if max(len(str(lab)) for lab in labels) > 45 else 2,
            **kwargs,
        )
    return leg


def _fmt_clock(t: dt.datetime, with_seconds: bool) -> str:
    return t.strftime("%H:%M:%S" if with_seconds else "%H:%M")


def clock_tick_labels(
    offsets_s: Sequence[float] | np.ndarray,
    start_clock_h: float,
    start: dt.datetime | None = None,
    with_seconds: bool = False,
) -> list[str]:
    """Local clock time of each offset [s] after a start at clock time ``start_clock_h`` [h].

    ``HH:MM`` (``HH:MM:SS`` with ``with_seconds``); the first label and the first one of each new day carry a
    second line with the day: the date (``15 Jan``) when ``start`` (tz-aware) is known, else ``+1d``, ``+2d``
    ... as :meth:`v2gtwin.scenario.TimeGrid.clock_label` writes it (nothing on the first day). With ``start``
    the clock follows its time zone, daylight saving included (offsets are absolute time).
    """
    out: list[str] = []
    last_day: object = None
    for k, off in enumerate(np.asarray(offsets_s, dtype=float)):
        if start is not None:
            t = (start.astimezone(dt.UTC) + dt.timedelta(seconds=float(off))).astimezone(start.tzinfo)
            day: object = t.date()
            clock = _fmt_clock(t, with_seconds)
            tag = t.strftime("%d %b").lstrip("0")
        else:
            total_s = round(start_clock_h * 3600.0 + float(off))
            day, rem = divmod(total_s, 86_400)
            clock = f"{rem // 3600:02d}:{rem % 3600 // 60:02d}" + (f":{rem % 60:02d}" if with_seconds else "")
            tag = f"+{day}d" if day else ""
        if (k == 0 or day != last_day) and tag:
            clock += "\n" + tag
        last_day = day
        out.append(clock)
    return out


def set_clock_axis(
    ax: Axes,
    x_max: float,
    start_clock_h: float,
    *,
    x_unit_s: float = 3600.0,
    start: dt.datetime | None = None,
    what: str = "local time",
    max_ticks: int = 9,
) -> np.ndarray:
    """Clock-time ticks on ``ax``'s x axis, which runs from 0 to ``x_max`` in units of ``x_unit_s`` seconds
    after a start at local clock time ``start_clock_h`` [h] (``start``: the same instant, tz-aware, when the
    date is known). Ticks fall on round clock times; labels as :func:`clock_tick_labels`. Returns the tick
    positions (in x units)."""
    span_s = max(float(x_max) * x_unit_s, 1e-9)
    start_s = start_clock_h * 3600.0
    fig = ax.get_figure(root=True)
    if fig is not None:  # no more labels than fit side by side (hh:mm:ss about 0.65 in at 8 pt, hh:mm 0.45 in)
        width_in = ax.get_position().width * fig.get_figwidth()
        fine = span_s / max_ticks < 60 or start_s % 60 != 0
        max_ticks = max(2, min(max_ticks, int(width_in / (0.65 if fine else 0.45))))
    step_s = next((s for s in _TICK_STEPS_S if span_s / s <= max_ticks), _TICK_STEPS_S[-1])
    first_s = math.ceil(round(start_s, 6) / step_s) * step_s - start_s  # first round clock time at or after 0
    ticks_s = np.arange(first_s, span_s + 1e-6, step_s)
    with_seconds = step_s < 60 or bool(np.any(np.round(start_s + ticks_s) % 60))
    ticks = ticks_s / x_unit_s
    ax.set_xticks(ticks)
    ax.set_xticklabels(clock_tick_labels(ticks_s, start_clock_h, start, with_seconds), fontsize=8)
    ax.set_xlim(0.0, float(x_max))
    zone = f", {start.tzname()}" if start is not None and start.tzname() else ""
    ax.set_xlabel(f"{what} ({'hh:mm:ss' if with_seconds else 'hh:mm'}{zone})")
    return ticks
