"""Figures of the bulk-grid services: primary response, AGC, regulation following, reserve and demand
response, the under-frequency cascade. Time axes carry local clock time (the events at the scenario's
``frequency.event_hour``); legends where they hide no data."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from v2gtwin.report.figure_layout import Clock, place_legend, set_clock_axis
from v2gtwin.study import FleetSection, ServicesSection

__all__ = [
    "fig_agc",
    "fig_cascade",
    "fig_frequency_event",
    "fig_regulation",
    "fig_reserve_dr",
    "regulation_headroom_pu",
]

_W, _H = 8.0, 3.4


def _event(clock: Clock | None) -> Clock:
    """The event's clock; without one, the axis counts from 00:00 and says so in its label."""
    return clock if clock is not None else Clock(0.0)


def _what(clock: Clock | None, what: str) -> str:
    """The x label's words: local time, or (no clock given) time counted from the event as 00:00."""
    return "local time" if clock is not None else f"time after the {what}, counted from 00:00"


def fig_frequency_event(services: ServicesSection, step_mw: float, clock: Clock | None = None) -> Figure:
    """Frequency after the load step, with and without the fleet, and the fleet's response; ``clock``: when
    the step happens (local clock time of the event's step)."""
    fa = services.frequency
    fig = Figure(figsize=(_W, _H))
    ax = fig.add_subplot()
    ax.plot(fa.dynamics_without.t_s, fa.dynamics_without.df_hz, color="tab:gray", label="without the fleet")
    ax.plot(fa.dynamics.t_s, fa.dynamics.df_hz, color="tab:blue", label=f"with {fa.n_evs} EVs on droop")
    ax.axhline(fa.steady.df_hz, color="tab:blue", ls=":", lw=0.8, label="closed-form settling (with fleet)")
    ax.set_ylabel("frequency deviation [Hz]")
    ax.grid(alpha=0.3)
    ax2 = ax.twinx()
    ax2.plot(fa.dynamics.t_s, fa.dynamics.p_fleet_kw, color="tab:orange", lw=1.0, label="fleet response (right)")
    ax2.set_ylabel("fleet response [kW] (orange)")
    c = _event(clock)
    set_clock_axis(
        ax, float(fa.dynamics.t_s[-1]), c.start_clock_h, x_unit_s=1.0, start=c.start, what=_what(clock, "load step")
    )
    ax.set_title(f"Primary response to a {step_mw:g} MW load step")
    place_legend(ax)
    return fig


def fig_agc(services: ServicesSection, clock: Clock | None = None) -> Figure:
    """Two-area AGC: area-1 frequency and tie-line flow, with and without the fleet; ``clock``: when the load
    step happens."""
    ag = services.agc
    fig = Figure(figsize=(_W, _H * 1.3))
    ax1 = fig.add_subplot(2, 1, 1)
    ax2 = fig.add_subplot(2, 1, 2, sharex=ax1)
    for res, label, color in ((ag.agc_without, "without fleet", "tab:gray"), (ag.agc, "with fleet in AGC", "tab:blue")):
        ax1.plot(res.t_s / 60, res.df_hz[:, 0], color=color, label=label)
        ax2.plot(res.t_s / 60, res.p_tie_kw / 1e3, color=color, label=label)
    ax1.set_ylabel("area-1 Δf [Hz]")
    ax2.set_ylabel("tie flow 1→2 [MW]")
    c = _event(clock)
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        set_clock_axis(
            ax,
            float(ag.agc.t_s[-1]) / 60,
            c.start_clock_h,
            x_unit_s=60.0,
            start=c.start,
            what=_what(clock, "load step"),
        )
    ax1.set_xlabel("")
    ax1.tick_params(labelbottom=False)
    ax1.set_title("AGC after a load step in area 1: frequency and interchange back to schedule")
    place_legend(ax1)
    return fig


def regulation_headroom_pu(fleet_range_kw: float, capacity_kw: float, response_pu: np.ndarray) -> np.ndarray:
    """Power the fleet still has beyond its response, in pu of the regulation capacity: its symmetric power
    range (both directions, at the event step) minus ``|response|``, ``fleet_range_kw / capacity_kw -
    |response_pu|`` [pu]; 0 capacity: an empty array's worth of zeros."""
    resp = np.asarray(response_pu, dtype=float)
    if capacity_kw <= 0:
        return np.zeros_like(resp)
    return fleet_range_kw / capacity_kw - np.abs(resp)


def fig_regulation(services: ServicesSection, clock: Clock | None = None, minutes: float = 20.0) -> Figure:
    """Regulation signal and the fleet's response (top), the tracking error response - signal (middle) and the
    headroom left (bottom: :func:`regulation_headroom_pu`), first ``minutes`` from ``clock`` (the event), for
    each allocation."""
    ag = services.agc
    fig = Figure(figsize=(_W, _H * 1.8))
    ax, ax_err, ax_head = fig.subplots(3, 1, sharex=True, height_ratios=(2, 1, 1))
    first = next(iter(ag.regulation.values()))
    n = min(first.signal_pu.size, int(minutes * 60 / ag.dt_s))
    t = np.arange(n) * ag.dt_s / 60
    ax.plot(t, first.signal_pu[:n], color="k", lw=1.2, label="regulation signal")
    colours = ("tab:red", "tab:green", "tab:blue", "tab:purple")
    # Allocations whose responses coincide over the window are one line, named together (else one hides the other).
    groups: list[list[str]] = []
    for name, r in ag.regulation.items():
        same = next(
            (g for g in groups if np.allclose(ag.regulation[g[0]].response_pu[:n], r.response_pu[:n], atol=1e-9)),
            None,
        )
        if same is None:
            groups.append([name])
        else:
            same.append(name)
    for g, color in zip(groups, colours, strict=False):
        r = ag.regulation[g[0]]
        who = " = ".join(g)
        err = r.response_pu[:n] - r.signal_pu[:n]
        rms = float(np.sqrt(np.mean(err**2))) if n else 0.0
        scores = ", ".join(f"{ag.regulation[k].score.composite:.3f}" for k in g)
        ax.plot(t, r.response_pu[:n], color=color, lw=0.9, ls="--", label=f"{who}: score {scores}")
        ax_err.plot(t, err, color=color, lw=0.9, label=f"{who}: RMS {rms:.3f} pu")
        head = regulation_headroom_pu(ag.fleet_range_kw, r.capacity_kw, r.response_pu[:n])
        ax_head.plot(t, head, color=color, lw=0.9, label=f"{who}: least {float(head.min(initial=np.inf)):.2f} pu")
    ax_err.axhline(0.0, color="k", lw=0.6)
    ax_head.axhline(0.0, color="k", lw=0.6)
    ax.set_ylabel("pu of capacity")
    ax_err.set_ylabel("error [pu]\nresponse − signal")
    ax_head.set_ylabel("headroom [pu]")
    c = _event(clock)
    for a in (ax, ax_err, ax_head):
        a.grid(alpha=0.3)
        set_clock_axis(a, n * ag.dt_s / 60, c.start_clock_h, x_unit_s=60.0, start=c.start, what=_what(clock, "start"))
        if a is not ax_head:
            a.set_xlabel("")
    ax.set_title(
        f"Following a RegD-like signal with {first.capacity_kw / 1e3:.2f} MW of capacity (fleet range "
        f"{ag.fleet_range_kw / 1e3:.2f} MW)",
        fontsize=11,
    )
    for a in (ax, ax_err, ax_head):
        place_legend(a, fontsize=7)
    return fig


def fig_reserve_dr(fleet: FleetSection, services: ServicesSection, clock: Clock | None = None) -> Figure:
    """Contingency reserve over the day, and the demand-response event."""
    fig = Figure(figsize=(_W, _H * 1.3))
    ax1 = fig.add_subplot(2, 1, 1)
    ax2 = fig.add_subplot(2, 1, 2, sharex=ax1)
    r = services.reserve
    secure = r.reserve_secure_kw
    carried = secure is not None and bool(np.allclose(secure, r.reserve_kw, rtol=1e-9, atol=1e-6))
    ax1.step(
        fleet.time_h,
        r.reserve_kw / 1e3,
        where="post",
        color="tab:purple",
        label="reserve (= network-secure: the network carries all of it)" if carried else "reserve",
    )
    ax1.step(
        fleet.time_h,
        r.from_charging_kw / 1e3,
        where="post",
        color="tab:purple",
        ls=":",
        label="of which: stopping charging",
    )
    if secure is not None and not carried:  # what the network carries (sold within the operating envelopes)
        ax1.step(fleet.time_h, secure / 1e3, where="post", color="k", lw=1.2, label="network-secure")
    ax1.set_ylabel("reserve [MW]")
    ax1.set_title(f"Reserve deliverable in {r.lead_s / 60:g} min for {r.duration_s / 60:g} min, and a DR event")
    d = services.dr
    ax2.step(fleet.time_h, d.p_baseline_kw / 1e3, where="post", color="tab:gray", label="baseline (uncontrolled)")
    ax2.step(fleet.time_h, d.p_dr_kw / 1e3, where="post", color="tab:green", label="with the DR event")
    if d.p_dr_secure_kw is not None:
        ax2.step(fleet.time_h, d.p_dr_secure_kw / 1e3, where="post", color="k", lw=1.0, label="... network-secure")
    dt = fleet.time_h[1] - fleet.time_h[0] if fleet.time_h.size > 1 else 1.0
    ax2.axvspan(d.start_step * dt, d.end_step * dt, color="tab:red", alpha=0.1, label="event")
    ax2.axvline(d.notify_step * dt, color="tab:red", ls=":", lw=0.8, label="notification")
    ax2.set_ylabel("fleet power [MW]")
    t = fleet.time_h
    if t.size:
        horizon = float(t[-1] + dt)
        c = clock if clock is not None else Clock(float(fleet.clock_h[0]))
        for a in (ax1, ax2):
            set_clock_axis(a, horizon, c.start_clock_h, start=c.start)
            a.grid(alpha=0.3)
        ax1.set_xlabel("")
        ax1.tick_params(labelbottom=False)
    place_legend(ax1)
    place_legend(ax2, fontsize=7)
    return fig


def fig_cascade(services: ServicesSection, clock: Clock | None = None) -> Figure:
    """Frequency in the cascade event for every disconnection mode; ``clock``: when the generation is lost."""
    fig = Figure(figsize=(_W, _H))
    ax = fig.add_subplot()
    colors = {"simultaneous": "tab:red", "fleet_ramp": "tab:orange", "ramp": "tab:green", "random_delay": "tab:blue"}
    t_end = 0.0
    for mode, c in services.cascade.items():
        shed = f", UFLS shed {c.load_shed_kw / 1e3:.1f} MW" if c.load_shed_kw else ", no UFLS"
        ax.plot(c.t_s, c.f_hz, color=colors.get(mode), label=f"{mode}: nadir {c.nadir_hz:.3f} Hz{shed}")
        t_end = max(t_end, float(c.t_s[-1]) if c.t_s.size else 0.0)
    ax.set_ylabel("frequency [Hz]")
    ax.grid(alpha=0.3)
    ev = _event(clock)
    set_clock_axis(ax, t_end, ev.start_clock_h, x_unit_s=1.0, start=ev.start, what=_what(clock, "generation loss"))
    ax.set_title("Under-frequency cascade: trips at once, fleet ramping, all ramping, random delays")
    place_legend(ax)
    return fig
