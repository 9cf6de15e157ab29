"""Figures of the study report, drawn with matplotlib's object API (no pyplot state, no backend switch)."""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from matplotlib.figure import Figure

from v2gtwin.study import FeederSection, FleetSection, MarketsSection, ServicesSection

if TYPE_CHECKING:
    from v2gtwin.cyber.fleet_link import CyberRun

__all__ = [
    "feeder_paths",
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


def _clock_ticks(ax, fleet: FleetSection) -> None:  # type: ignore[no-untyped-def]
    t = fleet.time_h
    if t.size == 0:
        return
    horizon = float(t[-1] + (t[1] - t[0] if t.size > 1 else 1.0))
    step = 3.0 if horizon <= 48 else 12.0
    ticks = np.arange(0.0, horizon + 1e-9, step)
    start = float(fleet.clock_h[0])
    ax.set_xticks(ticks)
    ax.set_xticklabels([format_clock(start + x) for x in ticks])
    ax.set_xlim(0, horizon)
    ax.set_xlabel("local time (hh:mm)")
    ax.grid(alpha=0.3)


def fig_arrivals(fleet: FleetSection) -> Figure:
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
    _clock_ticks(ax, fleet)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="upper left", fontsize=8)
    ax.set_title("Arrivals, departures and EVs plugged in")
    return fig


def fig_power_envelope(fleet: FleetSection) -> Figure:
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
    _clock_ticks(ax, fleet)
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title("Uncontrolled load against the flexibility envelope (power)")
    return fig


def fig_energy_envelope(fleet: FleetSection) -> Figure:
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
    _clock_ticks(ax, fleet)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("Virtual battery: energy band")
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
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax.set_title("State of charge")
    return fig


def fig_acn_comparison(real: dict[str, np.ndarray], synthetic: dict[str, np.ndarray]) -> Figure:
    """Histograms of real (ACN-Data) and synthetic workplace sessions: arrival, duration, energy."""
    fig = Figure(figsize=(11.0, 3.2))
    panels = (
        ("arrival_clock_h", "arrival clock time [h]", (5.0, 12.0)),
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
        if k == 0:
            ax.set_ylabel("density")
            ax.legend(fontsize=8)
    fig.suptitle("Workplace sessions: synthetic generator against ACN-Data morning sessions")
    return fig


def fig_feeder_vmin(fleet: FleetSection, feeder: FeederSection, v_min_limit_pu: float) -> Figure:
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
    _clock_ticks(ax, fleet)
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title(f"Feeder {feeder.name}: lowest voltage over the day")
    return fig


def feeder_paths(parent: npt.ArrayLike) -> list[list[int]]:
    """The feeder split into paths from the substation: the main feeder (the path to the deepest bus) first,
    then each lateral from the bus it branches off to its end, in topological order (``parent[i] < i``).

    Every bus other than the source lies on exactly one path after that path's first bus; a lateral's first
    bus is the (already drawn) bus it leaves from, so its line joins the rest of the feeder.
    """
    par = np.asarray(parent, dtype=np.int64)
    n = par.size
    depth = np.zeros(n, dtype=np.int64)
    for i in range(1, n):
        depth[i] = depth[par[i]] + 1
    is_leaf = np.ones(n, dtype=bool)
    is_leaf[par[1:]] = False
    drawn = np.zeros(n, dtype=bool)
    drawn[0] = True
    paths: list[list[int]] = []
    for leaf in sorted(np.flatnonzero(is_leaf), key=lambda b: (-depth[b], b)):
        path = [int(leaf)]
        while not drawn[path[-1]]:
            drawn[path[-1]] = True
            path.append(int(par[path[-1]]))
        paths.append(path[::-1])
    return paths


def fig_voltage_profile(feeder: FeederSection, worst_clock: str = "") -> Figure:
    """Voltage of every bus at the worst step (``worst_clock``: its local clock time, for the title), against
    the number of branches from the substation: the main feeder and each lateral drawn as its own line from
    the bus it leaves (:func:`feeder_paths`), so laterals do not make a sawtooth; without the feeder's
    topology, markers only in feeder order."""
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
        ax.set_xlabel("bus (feeder order)")
    else:
        paths = feeder_paths(feeder.parent)
        depth = np.zeros(feeder.n_bus, dtype=np.int64)
        for i in range(1, feeder.n_bus):
            depth[i] = depth[feeder.parent[i]] + 1
        for v, color, label in series:
            for k, path in enumerate(paths):
                ax.plot(
                    depth[path], v[path], ".-", color=color, lw=1.4 if k == 0 else 0.9, label=label if k == 0 else None
                )
        if feeder.n_bus <= 40:  # name each path's end bus
            for path in paths:
                end = path[-1]
                ax.annotate(
                    str(feeder.bus_labels[end]),
                    (depth[end], ts.v_profile_fleet_pu[end]),
                    fontsize=7,
                    xytext=(3, -3),
                    textcoords="offset points",
                )
        ax.set_xlabel("branches from the substation (each lateral its own line, labelled by its end bus)")
    ax.set_ylabel("voltage [pu]")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    at = f"{worst_clock}, step {ts.worst_step}" if worst_clock else f"step {ts.worst_step}"
    ax.set_title(f"Voltage along the feeder at the worst step ({at})")
    return fig


def fig_hosting(feeder: FeederSection) -> Figure:
    """Hosting capacity per node, without and with volt-var."""
    fig = Figure(figsize=(_W, _H))
    ax = fig.add_subplot()
    h = feeder.hosting
    x = np.arange(h.bus_labels.size)
    ax.bar(x, h.p_host_kw, color="tab:blue", label="hosting capacity")
    if feeder.hosting_voltvar is not None:
        gain = np.clip(feeder.hosting_voltvar.p_host_kw - h.p_host_kw, 0, None)
        ax.bar(x, gain, bottom=h.p_host_kw, color="tab:green", alpha=0.7, label="gain with volt-var")
    ax.set_yscale("log")
    if x.size <= 40:
        ax.set_xticks(x)
        ax.set_xticklabels([str(b) for b in h.bus_labels], fontsize=7)
    ax.set_xlabel("bus")
    ax.set_ylabel("EV charging at that bus alone [kW]")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    ax.set_title(f"EV hosting capacity per node (v >= {h.v_min_pu:g} pu, at the base-load peak)")
    return fig


def fig_dispatch(fleet: FleetSection, feeder: FeederSection) -> Figure:
    """Aggregate EV charging of each dispatch policy."""
    fig = Figure(figsize=(_W, _H))
    ax = fig.add_subplot()
    d = feeder.dispatch
    colors = {
        "uniform": "tab:gray",
        "random": "tab:purple",
        "loss_aware": "tab:blue",
        "loss_optimal": "tab:green",
    }
    for name, series, losses in zip(d.policies, d.p_ev_total_kw, d.losses_kwh, strict=True):
        ax.step(
            fleet.time_h,
            series / 1e3,
            where="post",
            color=colors.get(name),
            lw=1.4,
            label=f"{name}: EV losses {losses - d.losses_base_kwh:,.1f} kWh",
        )
    ax.set_ylabel("EV charging [MW]")
    _clock_ticks(ax, fleet)
    ax.legend(fontsize=8)
    ax.set_title("Charging the same EV energy four ways (losses by exact AC power flow)")
    return fig


def fig_frequency_event(services: ServicesSection, step_mw: float) -> Figure:
    """Frequency after the load step, with and without the fleet, and the fleet's response."""
    fa = services.frequency
    fig = Figure(figsize=(_W, _H))
    ax = fig.add_subplot()
    ax.plot(fa.dynamics_without.t_s, fa.dynamics_without.df_hz, color="tab:gray", label="without the fleet")
    ax.plot(fa.dynamics.t_s, fa.dynamics.df_hz, color="tab:blue", label=f"with {fa.n_evs} EVs on droop")
    ax.axhline(fa.steady.df_hz, color="tab:blue", ls=":", lw=0.8, label="closed-form settling (with fleet)")
    ax.set_xlabel("time after the step [s]")
    ax.set_ylabel("frequency deviation [Hz]")
    ax.grid(alpha=0.3)
    ax2 = ax.twinx()
    ax2.plot(fa.dynamics.t_s, fa.dynamics.p_fleet_kw, color="tab:orange", lw=1.0)
    ax2.set_ylabel("fleet response [kW] (orange)")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(f"Primary response to a {step_mw:g} MW load step")
    return fig


def fig_agc(services: ServicesSection) -> Figure:
    """Two-area AGC: area-1 frequency and tie-line flow, with and without the fleet."""
    ag = services.agc
    fig = Figure(figsize=(_W, _H * 1.3))
    ax1 = fig.add_subplot(2, 1, 1)
    ax2 = fig.add_subplot(2, 1, 2, sharex=ax1)
    for res, label, color in ((ag.agc_without, "without fleet", "tab:gray"), (ag.agc, "with fleet in AGC", "tab:blue")):
        ax1.plot(res.t_s / 60, res.df_hz[:, 0], color=color, label=label)
        ax2.plot(res.t_s / 60, res.p_tie_kw / 1e3, color=color, label=label)
    ax1.set_ylabel("area-1 Δf [Hz]")
    ax2.set_ylabel("tie flow 1→2 [MW]")
    ax2.set_xlabel("time [min]")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    ax1.legend(fontsize=8)
    ax1.set_title("AGC after a load step in area 1: frequency and interchange back to schedule")
    return fig


def fig_regulation(services: ServicesSection) -> Figure:
    """Regulation signal and the fleet's response (first 20 minutes), both allocations."""
    ag = services.agc
    fig = Figure(figsize=(_W, _H))
    ax = fig.add_subplot()
    first = next(iter(ag.regulation.values()))
    n = min(first.signal_pu.size, int(20 * 60 / ag.dt_s))
    t = np.arange(n) * ag.dt_s / 60
    ax.plot(t, first.signal_pu[:n], color="k", lw=1.2, label="regulation signal")
    for (name, r), color in zip(ag.regulation.items(), ("tab:red", "tab:green"), strict=False):
        ax.plot(t, r.response_pu[:n], color=color, lw=0.9, ls="--", label=f"{name}: score {r.score.composite:.3f}")
    ax.set_xlabel("time [min]")
    ax.set_ylabel("pu of regulation capacity")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"Following a RegD-like signal with {first.capacity_kw / 1e3:.2f} MW of capacity")
    return fig


def fig_reserve_dr(fleet: FleetSection, services: ServicesSection) -> Figure:
    """Contingency reserve over the day, and the demand-response event."""
    fig = Figure(figsize=(_W, _H * 1.3))
    ax1 = fig.add_subplot(2, 1, 1)
    ax2 = fig.add_subplot(2, 1, 2, sharex=ax1)
    r = services.reserve
    ax1.step(fleet.time_h, r.reserve_kw / 1e3, where="post", color="tab:purple", label="reserve")
    ax1.step(
        fleet.time_h,
        r.from_charging_kw / 1e3,
        where="post",
        color="tab:purple",
        ls=":",
        label="of which: stopping charging",
    )
    if r.reserve_secure_kw is not None:  # what the network carries (sold within the operating envelopes)
        ax1.step(fleet.time_h, r.reserve_secure_kw / 1e3, where="post", color="k", lw=1.2, label="network-secure")
    ax1.set_ylabel("reserve [MW]")
    ax1.legend(fontsize=8)
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
    ax2.legend(fontsize=7, loc="upper right")
    _clock_ticks(ax2, fleet)
    ax1.grid(alpha=0.3)
    return fig


def fig_cascade(services: ServicesSection) -> Figure:
    """Frequency in the cascade event for every disconnection mode."""
    fig = Figure(figsize=(_W, _H))
    ax = fig.add_subplot()
    colors = {"simultaneous": "tab:red", "fleet_ramp": "tab:orange", "ramp": "tab:green", "random_delay": "tab:blue"}
    for mode, c in services.cascade.items():
        shed = f", UFLS shed {c.load_shed_kw / 1e3:.1f} MW" if c.load_shed_kw else ", no UFLS"
        ax.plot(c.t_s, c.f_hz, color=colors.get(mode), label=f"{mode}: nadir {c.nadir_hz:.3f} Hz{shed}")
    ax.set_xlabel("time after the generation loss [s]")
    ax.set_ylabel("frequency [Hz]")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Under-frequency cascade: trips at once, fleet ramping, all ramping, random delays")
    return fig


def fig_market(markets: MarketsSection, currency: str) -> Figure:
    """Left: supply and demand in the peak period; right: RTP and TOU prices over the day with V2G dispatch;
    money in ``currency``."""
    m = markets.market
    rtp, tou, demand, supply = m["rtp"], m["tou"], m["demand"], m["supply"]
    fig = Figure(figsize=(11.0, 3.6))
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    t = int(np.argmax(rtp.q_kw))
    caps = np.asarray(supply.capacity_kw, float) / 1e3
    costs = np.asarray(supply.cost_per_mwh, float)
    v2g = float(np.broadcast_to(supply.v2g_p_max_kw, (rtp.q_kw.size,))[t]) / 1e3
    steps = sorted([*zip(costs, caps, strict=True), (supply.v2g_cost_per_mwh, v2g)])
    x, y = [0.0], [steps[0][0]]
    for c, k in steps:
        x += [x[-1], x[-1] + k]
        y += [c, c]
    ax1.plot(x[1:], y[1:], color="tab:blue", label="supply (merit order, V2G at its degradation cost)")
    q = np.linspace(0.01, max(x) * 1.1, 200)
    d_t = type(demand)(
        **{
            **demand.__dict__,
            **(
                {"a_per_mwh": demand.a_per_mwh[t : t + 1], "b_per_mwh_per_kw": demand.b_per_mwh_per_kw[t : t + 1]}
                if demand.kind == "linear"
                else {"scale_kw": demand.scale_kw[t : t + 1]}
            ),
        }
    )
    ax1.plot(q, d_t.price_per_mwh(q * 1e3), color="tab:orange", label=f"demand, hour {t}")
    ax1.plot(rtp.q_kw[t] / 1e3, rtp.price_per_mwh[t], "o", color="k", label="RTP")
    ax1.plot(tou.q_kw[t] / 1e3, tou.price_per_mwh[t], "s", color="tab:red", label="TOU")
    ax1.set_ylim(0, max(y) * 1.6)
    ax1.set_xlabel("MW")
    ax1.set_ylabel(f"price [{currency}/MWh]")
    ax1.legend(fontsize=7)
    ax1.grid(alpha=0.3)
    ax1.set_title("Peak hour")
    h = np.arange(rtp.q_kw.size)
    ax2.step(h, rtp.price_per_mwh, where="post", color="k", label="RTP price")
    ax2.step(h, tou.price_per_mwh, where="post", color="tab:red", label="TOU price")
    ax2.set_xlabel("hour")
    ax2.set_ylabel(f"price [{currency}/MWh]")
    ax2b = ax2.twinx()
    ax2b.bar(h, rtp.v2g_kw / 1e3, color="tab:green", alpha=0.3, align="edge", width=1.0)
    ax2b.set_ylabel("V2G discharge under RTP [MW] (bars)")
    ax2.legend(fontsize=7, loc="upper left")
    ax2.grid(alpha=0.3)
    ax2.set_title(f"Deadweight loss of TOU: {m['deadweight_loss']:,.0f} {currency}/day")
    return fig


def fig_bid(markets: MarketsSection, currency: str) -> Figure:
    """Expected profit of regulation bids under the study's availability, exact and Monte Carlo."""
    b = markets.bid
    fig = Figure(figsize=(_W, _H))
    ax = fig.add_subplot()
    ax.plot(
        b.bids_kw / 1e3,
        b.profit_exact_per_h,
        color="tab:blue",
        label=f"expected profit (exact, {b.availability.kind} F)",
    )
    ax.plot(b.bids_kw / 1e3, b.profit_mc_per_h, color="tab:orange", ls="--", label="Monte Carlo estimate")
    ax.axvline(b.bid.bid_kw / 1e3, color="k", ls=":", label=f"b* = F⁻¹(p/(p+λ)) = {b.bid.bid_kw / 1e3:.2f} MW")
    if b.bid_secure is not None:  # the bid sold within the network's operating envelopes
        secure = b.bid_secure.bid_kw
        ax.axvline(secure / 1e3, color="tab:red", lw=1.2, label=f"network-secure b* = {secure / 1e3:.2f} MW")
    ax.set_xlabel("bid [MW]")
    ax.set_ylabel(f"expected profit [{currency}/h]")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"Newsvendor regulation bid ({b.source})")
    return fig


def fig_schedule(fleet: FleetSection, markets: MarketsSection, currency: str = "USD") -> Figure:
    """Prices, uncontrolled charging and the cost-optimal schedules under the import cap."""
    sc = markets.schedule
    fig = Figure(figsize=(_W, _H))
    ax = fig.add_subplot()
    ax.step(fleet.time_h, fleet.p_uncontrolled_kw / 1e3, where="post", color="tab:gray", label="uncontrolled (all EVs)")
    blind = "" if markets.network_schedule is None else " (network-blind)"
    ax.step(fleet.time_h, sc.individual.p_total_kw / 1e3, where="post", color="tab:blue", label=f"per-EV LP{blind}")
    ax.step(
        fleet.time_h,
        sc.disaggregated_kw / 1e3,
        where="post",
        color="tab:green",
        ls="--",
        label=f"inner virtual battery, disaggregated{blind}",
    )
    ax.axhline(sc.import_cap_kw / 1e3, color="tab:red", ls=":", label="import cap")
    ns = markets.network_schedule
    if ns is not None:  # the schedule sold: per-bus batteries within the feeders' limits and the cap's split
        ax.step(
            fleet.time_h,
            ns.secure.p_ev_kw.sum(axis=1) / 1e3,
            where="post",
            color="k",
            lw=1.6,
            label="network-secure (the schedule sold)",
        )
    ax.set_ylabel("fleet power [MW]")
    ax2 = ax.twinx()
    ax2.step(fleet.time_h, sc.price_per_mwh, where="post", color="tab:orange", lw=0.8)
    ax2.set_ylabel(f"price [{currency}/MWh] (orange)")
    _clock_ticks(ax, fleet)
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title("Day-ahead schedule against prices")
    return fig


def fig_robust(markets: MarketsSection) -> Figure:
    """Cost of robustness and Monte Carlo violation rate against the ellipsoid radius."""
    rb = markets.robust
    fig = Figure(figsize=(_W, _H))
    ax = fig.add_subplot()
    ok = np.asarray(rb.feasible, dtype=bool)
    om = np.asarray(rb.omegas, dtype=float)
    cost = np.array([np.nan if r is None else r.cost_per_horizon for r in rb.results])
    rate = np.array([np.nan if v is None else v for v in rb.violation_rate], dtype=float)
    ax.plot(om[ok], cost[ok], "o-", color="tab:blue", label="expected cost")
    for o in om[~ok]:  # an infeasible radius: no schedule holds for the whole set
        ax.axvline(o, color="tab:gray", ls="--", lw=0.8)
        ax.annotate("infeasible", (o, 0.5), xycoords=("data", "axes fraction"), rotation=90, fontsize=7, va="center")
    ax.set_xlabel("radius Ω of the uncertainty ellipsoid")
    ax.set_ylabel(f"expected cost over the horizon [{rb.currency}]")
    ax2 = ax.twinx()
    ax2.plot(om[ok], rate[ok] * 100, "s--", color="tab:red", label="violation rate, Monte Carlo")
    ax2.plot(
        om, np.asarray(rb.promised) * 100, ":", color="tab:red", label=f"promised, at most ({rb.radius_bound} bound)"
    )
    ax2.set_ylabel("violation [%]")
    ax.grid(alpha=0.3)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=8, loc="center right")
    ax.set_title("Robust schedule: cost of robustness against violations")
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
