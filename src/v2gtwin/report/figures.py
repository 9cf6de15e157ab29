"""Figures of the study report, drawn with matplotlib's object API (no pyplot state, no backend switch).

Every figure function returns a :class:`~matplotlib.figure.Figure`; :func:`to_png_base64` encodes it for the
HTML. Legends go where they hide no data (:func:`~v2gtwin.report.figure_layout.place_legend`), time axes carry
local clock time, money axes the scenario's currency. The bulk-grid services' figures live in
``service_figures``, the markets' in ``market_figures`` (re-exported here).
"""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from matplotlib.figure import Figure

from v2gtwin.report.figure_layout import Clock, place_legend, set_clock_axis
from v2gtwin.report.market_figures import fig_bid, fig_market, fig_robust, fig_schedule
from v2gtwin.report.service_figures import fig_agc, fig_cascade, fig_frequency_event, fig_regulation, fig_reserve_dr
from v2gtwin.study import FeederSection, FleetSection

if TYPE_CHECKING:
    from v2gtwin.cyber.fleet_link import CyberRun

__all__ = [
    "Clock",
    "electrical_distance_ohm",
    "fig_acn_comparison",
    "fig_agc",
    "fig_arrivals",
    "fig_bid",
    "fig_cascade",
    "fig_dispatch",
    "fig_energy_envelope",
    "fig_feeder_vmin",
    "fig_frequency_event",
    "fig_hosting",
    "fig_market",
    "fig_power_envelope",
    "fig_regulation",
    "fig_reserve_dr",
    "fig_robust",
    "fig_schedule",
    "fig_soc",
    "fig_voltage_profile",
    "format_clock",
    "root_leaf_paths",
    "to_png_base64",
]

_W, _H = 8.0, 3.4


def to_png_base64(fig: Figure) -> str:
    """The figure as a base64-encoded PNG (for embedding in HTML)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def format_clock(hours: float) -> str:
    """Clock time hh:mm of ``hours`` [h] (taken modulo 24)."""
    minutes = round((hours % 24.0) * 60) % (24 * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _fleet_axis(ax, fleet: FleetSection, clock: Clock | None) -> None:  # type: ignore[no-untyped-def]
    """Local clock time on ``ax``'s x axis (hours after the horizon's start), dated when ``clock`` is."""
    t = fleet.time_h
    if t.size == 0:
        return
    horizon = float(t[-1] + (t[1] - t[0] if t.size > 1 else 1.0))
    c = clock if clock is not None else Clock(float(fleet.clock_h[0]))
    set_clock_axis(ax, horizon, c.start_clock_h, start=c.start)
    ax.grid(alpha=0.3)


def fig_arrivals(fleet: FleetSection, clock: Clock | None = None) -> Figure:
    """Arrivals and departures per step, and EVs plugged in."""
    fig = Figure(figsize=(_W, _H))
    ax = fig.add_subplot()
    width = fleet.time_h[1] - fleet.time_h[0] if fleet.time_h.size > 1 else 1.0
    ax.bar(
        fleet.time_h,
        fleet.arrivals,
        width=width,
        align="edge",
        color="tab:green",
        alpha=0.7,
        label="arrivals",
    )
    ax.bar(
        fleet.time_h,
        -fleet.departures,
        width=width,
        align="edge",
        color="tab:red",
        alpha=0.7,
        label="departures",
    )
    ax.set_ylabel("EVs per step")
    ax2 = ax.twinx()
    ax2.step(fleet.time_h, fleet.n_plugged, where="post", color="k", lw=1.5, label="plugged in")
    ax2.set_ylabel("EVs plugged in")
    _fleet_axis(ax, fleet, clock)
    ax.set_title("Arrivals, departures and EVs plugged in")
    place_legend(ax)
    return fig


def fig_power_envelope(fleet: FleetSection, clock: Clock | None = None) -> Figure:
    """Uncontrolled aggregate power against the power envelope."""
    fig = Figure(figsize=(_W, _H))
    ax = fig.add_subplot()
    t = np.append(fleet.time_h, fleet.time_h[-1] + (fleet.time_h[1] - fleet.time_h[0] if fleet.time_h.size > 1 else 1))
    ax.fill_between(
        t[:-1],
        fleet.p_min_kw / 1e3,
        fleet.p_max_kw / 1e3,
        step="post",
        color="tab:blue",
        alpha=0.2,
        label="feasible aggregate power",
    )
    ax.step(
        fleet.time_h,
        fleet.p_uncontrolled_kw / 1e3,
        where="post",
        color="tab:orange",
        lw=1.8,
        label="uncontrolled charging",
    )
    ax.axhline(0, color="k", lw=0.6)
    ax.set_ylabel("aggregate power [MW]\n(+ charge, − discharge)")
    _fleet_axis(ax, fleet, clock)
    ax.set_title("Uncontrolled load against the flexibility envelope (power)")
    place_legend(ax)
    return fig


def fig_energy_envelope(fleet: FleetSection, clock: Clock | None = None) -> Figure:
    """Stored energy of the plugged-in EVs: uncontrolled against the energy band."""
    fig = Figure(figsize=(_W, _H))
    ax = fig.add_subplot()
    ax.fill_between(
        fleet.time_h,
        fleet.e_lower_kwh / 1e3,
        fleet.e_upper_kwh / 1e3,
        color="tab:blue",
        alpha=0.2,
        label="energy band (targets still reachable)",
    )
    ax.plot(fleet.time_h, fleet.e_uncontrolled_kwh / 1e3, color="tab:orange", lw=1.8, label="uncontrolled")
    ax.set_ylabel("stored energy of plugged EVs [MWh]")
    _fleet_axis(ax, fleet, clock)
    ax.set_title("Virtual battery: energy band")
    place_legend(ax)
    return fig


def fig_soc(fleet: FleetSection) -> Figure:
    """Distribution of SoC at arrival and at departure (uncontrolled)."""
    fig = Figure(figsize=(_W, _H))
    ax = fig.add_subplot()
    bins = [i / 40 for i in range(41)]
    ax.hist(fleet.soc_arrival_pu, bins=bins, alpha=0.6, label="at arrival", color="tab:gray")
    ax.hist(fleet.soc_departure_pu, bins=bins, alpha=0.6, label="at departure (uncontrolled)", color="tab:green")
    ax.set_xlabel("state of charge [pu]")
    ax.set_ylabel("EVs")
    ax.grid(alpha=0.3)
    ax.set_title("State of charge")
    place_legend(ax)
    return fig


def fig_acn_comparison(real: dict[str, np.ndarray], synthetic: dict[str, np.ndarray]) -> Figure:
    """Histograms of real (ACN-Data) and synthetic workplace sessions: arrival, duration, energy."""
    fig = Figure(figsize=(11.0, 3.2))
    panels = (
        ("arrival_clock_h", "arrival, local time (hh:mm)", (5.0, 12.0)),
        ("duration_h", "time plugged in [h]", (0.0, 16.0)),
        ("energy_kwh", "energy [kWh]", (0.0, 60.0)),
    )
    for k, (key, label, (lo, hi)) in enumerate(panels):
        ax = fig.add_subplot(1, 3, k + 1)
        bins = [lo + (hi - lo) * i / 40 for i in range(41)]
        ax.hist(real[key], bins=bins, density=True, alpha=0.55, color="tab:blue", label="ACN-Data (real)")
        ax.hist(synthetic[key], bins=bins, density=True, alpha=0.55, color="tab:orange", label="synthetic")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
        if key == "arrival_clock_h":
            hours = np.arange(2 * np.ceil(lo / 2), hi + 1e-9, 2.0)  # every two hours: the labels fit
            ax.set_xticks(hours)
            ax.set_xticklabels([format_clock(h) for h in hours], fontsize=8)
        if k == 0:
            ax.set_ylabel("density")
    fig.suptitle("Workplace sessions: synthetic generator against ACN-Data morning sessions")
    place_legend(fig.axes[0])
    return fig


def fig_feeder_vmin(
    fleet: FleetSection, feeder: FeederSection, v_min_limit_pu: float, clock: Clock | None = None
) -> Figure:
    """Lowest feeder voltage per step: base load, with the fleet, with the fleet and volt-var."""
    fig = Figure(figsize=(_W, _H))
    ax = fig.add_subplot()
    ts = feeder.timeseries
    t = fleet.time_h
    ax.step(t, ts.v_min_base_pu, where="post", color="tab:gray", label="base load only")
    ax.step(t, ts.v_min_fleet_pu, where="post", color="tab:red", label="with uncontrolled EV charging")
    if not np.array_equal(ts.v_min_voltvar_pu, ts.v_min_fleet_pu):
        ax.step(t, ts.v_min_voltvar_pu, where="post", color="tab:green", label="... and volt-var on EV inverters")
    ax.axhline(v_min_limit_pu, color="k", ls="--", lw=0.8, label=f"limit {v_min_limit_pu:g} pu")
    ax.set_ylabel("lowest bus voltage [pu]")
    ax2 = ax.twinx()
    ax2.fill_between(t, 0, feeder.p_ev_total_kw / 1e3, step="post", color="tab:orange", alpha=0.15)
    ax2.set_ylabel("EV charging [MW] (shaded)")
    _fleet_axis(ax, fleet, clock)
    ax.set_title(f"Feeder {feeder.name}: lowest voltage over the day")
    place_legend(ax)
    return fig


def root_leaf_paths(parent: npt.ArrayLike) -> list[list[int]]:
    """Every path from the source (bus 0) to a leaf bus, source first, deepest leaf first (then by feeder
    order); ``parent`` in topological order (``parent[i] < i``, -1 for the source).

    Each path is what a reader walks along the feeder: the trunk the paths share is repeated in each, so a
    lateral's voltage reads from the substation to its end without jumping back.
    """
    par = np.asarray(parent, dtype=np.int64)
    n = par.size
    depth = np.zeros(n, dtype=np.int64)
    for i in range(1, n):
        depth[i] = depth[par[i]] + 1
    is_leaf = np.ones(n, dtype=bool)
    is_leaf[par[1:]] = False
    paths: list[list[int]] = []
    for leaf in sorted(np.flatnonzero(is_leaf), key=lambda b: (-depth[b], b)):
        path = [int(leaf)]
        while path[-1] != 0:
            path.append(int(par[path[-1]]))
        paths.append(path[::-1])
    return paths


def electrical_distance_ohm(parent: npt.ArrayLike, r_ohm: npt.ArrayLike, x_ohm: npt.ArrayLike) -> np.ndarray:
    """Electrical distance of each bus from the source: the sum of ``|r + jx|`` of the branches on its path
    [ohm] (``r_ohm``, ``x_ohm``: of the branch feeding each bus, 0 for the source)."""
    par = np.asarray(parent, dtype=np.int64)
    z = np.hypot(np.asarray(r_ohm, dtype=float), np.asarray(x_ohm, dtype=float))
    out = np.zeros(par.size)
    for i in range(1, par.size):
        out[i] = out[par[i]] + z[i]
    return out


def fig_voltage_profile(feeder: FeederSection, worst_clock: str = "") -> Figure:
    """Voltage of every bus at the worst step (``worst_clock``: its local clock time, for the title) along each
    path from the substation to a feeder end (:func:`root_leaf_paths`), against the electrical distance from
    the substation (:func:`electrical_distance_ohm`; the number of branches when the section carries no branch
    impedances); without the feeder's topology, markers only in feeder order."""
    fig = Figure(figsize=(_W, _H))
    ax = fig.add_subplot()
    ts = feeder.timeseries
    series = [
        (ts.v_profile_base_pu, "tab:gray", "base load only"),
        (ts.v_profile_fleet_pu, "tab:red", "with EV charging"),
    ]
    if not np.array_equal(ts.v_profile_voltvar_pu, ts.v_profile_fleet_pu):
        series.append((ts.v_profile_voltvar_pu, "tab:green", "with EV charging and volt-var"))
    if feeder.parent is None:
        x = np.arange(feeder.n_bus)
        for v, color, label in series:
            ax.plot(x, v, ".", color=color, label=label)
        if feeder.n_bus <= 40:
            ax.set_xticks(x)
            ax.set_xticklabels([str(b) for b in feeder.bus_labels], fontsize=7)
        ax.set_xlabel("bus (feeder order; the feeder's topology is not known)")
    else:
        paths = root_leaf_paths(feeder.parent)
        r, xr = getattr(feeder, "r_ohm", None), getattr(feeder, "x_ohm", None)
        if r is not None and xr is not None:
            dist = electrical_distance_ohm(feeder.parent, r, xr)
            ax.set_xlabel("electrical distance from the substation, sum of |Z| along the path [ohm]")
        else:
            dist = electrical_distance_ohm(feeder.parent, np.ones(feeder.n_bus), np.zeros(feeder.n_bus))
            ax.set_xlabel("branches from the substation along the path")
        for v, color, label in series:
            for k, path in enumerate(paths):
                ax.plot(
                    dist[path], v[path], ".-", color=color, lw=1.4 if k == 0 else 0.9, label=label if k == 0 else None
                )
        if feeder.n_bus <= 40:  # name each path's end bus
            for path in paths:
                end = path[-1]
                ax.annotate(
                    str(feeder.bus_labels[end]),
                    (dist[end], ts.v_profile_fleet_pu[end]),
                    fontsize=7,
                    xytext=(3, -3),
                    textcoords="offset points",
                )
    ax.set_ylabel("voltage [pu]")
    ax.grid(alpha=0.3)
    at = f"{worst_clock}, step {ts.worst_step}" if worst_clock else f"step {ts.worst_step}"
    ax.set_title(f"Voltage along each path from the substation at the worst step ({at})", fontsize=11)
    place_legend(ax)
    return fig


def fig_hosting(feeder: FeederSection) -> Figure:
    """Hosting capacity per node on a linear scale (top; bars cut at the axis's top carry their value), and
    the gain volt-var on the EV's inverter adds at each node (bottom, when volt-var is on)."""
    h = feeder.hosting
    vv = feeder.hosting_voltvar
    fig = Figure(figsize=(_W, _H * (1.45 if vv is not None else 1.0)))
    if vv is not None:
        ax, ax_gain = fig.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    else:
        ax, ax_gain = fig.add_subplot(), None
    x = np.arange(h.bus_labels.size)
    p = np.asarray(h.p_host_kw, dtype=float) / 1e3
    gain = None if vv is None else np.asarray(vv.p_host_kw, dtype=float) / 1e3 - p
    top = p if gain is None else p + np.maximum(gain, 0.0)
    # A few buses near the substation host far more than the rest (tens of times the median): the axis stops
    # above the largest value within 5 x the median, and the bars it cuts carry their value.
    within = top[top <= 5.0 * float(np.median(top))] if top.size else top
    y_top = max(float(np.max(within, initial=0.0)) * 1.15, 1e-6)
    ax.bar(x, p, color="tab:blue", label="hosting capacity without volt-var")
    if gain is not None:
        ax.bar(x, np.maximum(gain, 0.0), bottom=p, color="tab:green", alpha=0.7, label="... added by volt-var")
    for k in np.flatnonzero(top > y_top):
        ax.annotate(
            f"{top[k]:,.1f}↑",
            (x[k], y_top),
            xytext=(0, -2),
            textcoords="offset points",
            ha="center",
            va="top",
            fontsize=6,
            rotation=90,
            color="w",
        )
    ax.set_ylim(0.0, y_top)
    ax.set_ylabel("EV charging at that bus alone [MW]")
    ax.grid(alpha=0.3, axis="y")
    ax.set_title(f"EV hosting capacity per node (v >= {h.v_min_pu:g} pu, at the base-load peak)")
    bottom_ax = ax
    if ax_gain is not None and gain is not None:
        ax_gain.bar(x, gain * 1e3, color="tab:green")
        ax_gain.axhline(0.0, color="k", lw=0.6)
        ax_gain.set_ylabel("volt-var gain [kW]")
        ax_gain.grid(alpha=0.3, axis="y")
        bottom_ax = ax_gain
    if x.size <= 40:
        bottom_ax.set_xticks(x)
        bottom_ax.set_xticklabels([str(b) for b in h.bus_labels], fontsize=7)
    bottom_ax.set_xlabel("bus (feeder order; values above the top of the axis written on the bar)")
    place_legend(ax)
    return fig


def _same_series(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.allclose(a, b, rtol=1e-9, atol=1e-6))


def fig_dispatch(fleet: FleetSection, feeder: FeederSection, clock: Clock | None = None) -> Figure:
    """Aggregate EV charging of the baseline policy (``uniform``: every EV at its flat rate; top) and every
    other policy's difference from it (bottom), so that policies with the same aggregate do not hide each
    other: those are one line, named together."""
    d = feeder.dispatch
    fig = Figure(figsize=(_W, _H * 1.4))
    ax, ax_d = fig.subplots(2, 1, sharex=True, height_ratios=(1, 1))
    colors = {"uniform": "tab:gray", "random": "tab:purple", "loss_aware": "tab:blue", "loss_optimal": "tab:green"}
    series = {name: np.asarray(p, dtype=float) / 1e3 for name, p in zip(d.policies, d.p_ev_total_kw, strict=True)}
    losses = {name: lo - d.losses_base_kwh for name, lo in zip(d.policies, d.losses_kwh, strict=True)}
    base = "uniform" if "uniform" in series else d.policies[0]
    t = fleet.time_h
    ax.step(
        t,
        series[base],
        where="post",
        color=colors.get(base, "k"),
        lw=1.4,
        label=f"{base} (the baseline): EV losses {losses[base]:,.1f} kWh",
    )
    ax.set_ylabel("EV charging [MW]")
    ax.set_title(f"Charging the same EV energy four ways: {base} and the others' difference from it", fontsize=11)
    groups: list[list[str]] = []
    for name in d.policies:
        if name == base:
            continue
        diff = series[name] - series[base]
        same = next((g for g in groups if _same_series(series[g[0]] - series[base], diff)), None)
        if same is None:
            groups.append([name])
        else:
            same.append(name)
    for g in groups:
        diff = series[g[0]] - series[base]
        label = ", ".join(f"{n} ({losses[n] - losses[base]:+,.1f} kWh of losses)" for n in g)
        if np.allclose(diff, 0.0, atol=1e-6):
            label += ": same aggregate, differs in which EV charges"
        ax_d.step(t, diff, where="post", color=colors.get(g[0], "k"), lw=1.4, label=label)
    ax_d.axhline(0.0, color="k", lw=0.6)
    ax_d.set_ylabel(f"minus {base} [MW]")
    _fleet_axis(ax, fleet, clock)
    _fleet_axis(ax_d, fleet, clock)
    ax.set_xlabel("")
    place_legend(ax)
    place_legend(ax_d)
    return fig


def fig_cyber(run: CyberRun) -> Figure:
    """Dispatch through the OCPP central system: when each station accepted its set-point, and the power each
    simulated EV then drew or fed back against its set-point."""
    fig = Figure(figsize=(_W, _H))
    ax1, ax2 = fig.subplots(1, 2)
    settled = np.sort(np.asarray(run.settled_s)) * 1e3
    if settled.size:
        # The share of every station sent a profile, so the curve stops short of 1 when some did not accept.
        n = max(run.sent, settled.size)
        ax1.step(settled, np.arange(1, settled.size + 1) / n, where="post", color="tab:blue")
    ax1.set_ylim(0.0, 1.02)
    ax1.set_xlabel("time from the start of the fan-out [ms]")
    ax1.set_ylabel("share of stations sent a profile that accepted")
    ax1.set_title(f"SetChargingProfile fan-out ({run.acknowledged}/{run.sent} acknowledged)", fontsize=9)
    ax1.grid(alpha=0.3)
    keys = [k for k in run.set_points_w if k in run.power_after_w]
    sp = np.array([run.set_points_w[k] for k in keys]) / 1e3
    pw = np.array([run.power_after_w[k] for k in keys]) / 1e3
    ax2.scatter(sp, pw, s=12, color="tab:orange")
    if sp.size:
        lim = [min(sp.min(), pw.min(), 0.0) - 0.5, max(sp.max(), pw.max(), 0.0) + 0.5]
        ax2.plot(lim, lim, color="k", lw=0.8, ls=":")
    ax2.set_xlabel("set-point sent [kW] (negative: discharge)")
    ax2.set_ylabel("station power after [kW]")
    ax2.set_title("Stations follow their set-points", fontsize=9)
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    return fig
