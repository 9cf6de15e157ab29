"""Figures of markets and scheduling: TOU against RTP, the regulation bid, the day-ahead schedule against
its import cap, the robust schedule. Money axes carry the scenario's currency; time axes local clock time."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from v2gtwin.report.figure_layout import Clock, money_label, place_legend, set_clock_axis
from v2gtwin.study import FleetSection, MarketsSection

__all__ = ["fig_bid", "fig_market", "fig_robust", "fig_schedule", "steps_above_cap"]

_W, _H = 8.0, 3.4


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
    ax1.set_xlabel("quantity [MW]")
    ax1.set_ylabel(money_label("price", currency, "MWh"))
    ax1.grid(alpha=0.3)
    ax1.set_title("Peak hour")
    h = np.arange(rtp.q_kw.size)
    ax2.step(h, rtp.price_per_mwh, where="post", color="k", label="RTP price")
    ax2.step(h, tou.price_per_mwh, where="post", color="tab:red", label="TOU price")
    ax2.set_ylabel(money_label("price", currency, "MWh"))
    ax2b = ax2.twinx()
    ax2b.bar(h, rtp.v2g_kw / 1e3, color="tab:green", alpha=0.3, align="edge", width=1.0, label="V2G under RTP")
    ax2b.set_ylabel("V2G discharge under RTP [MW] (bars)")
    # The market's own 24-hour day (hour 0 = midnight), not the study's horizon.
    set_clock_axis(ax2, float(h.size), 0.0, what="market hour, local time")
    ax2.grid(alpha=0.3)
    ax2.set_title(f"Deadweight loss of TOU: {m['deadweight_loss']:,.0f} {currency}/day")
    place_legend(ax1, fontsize=7)
    place_legend(ax2, fontsize=7)
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
    ax.set_ylabel(money_label("expected profit", currency, "h"))
    ax.grid(alpha=0.3)
    ax.set_title(f"Newsvendor regulation bid ({b.source})")
    place_legend(ax)
    return fig


def steps_above_cap(p_kw: np.ndarray, cap_kw: float, tol_kw: float = 1e-3) -> np.ndarray:
    """Indices of the steps whose power ``p_kw`` [kW] exceeds the import cap ``cap_kw`` [kW] by more than
    ``tol_kw`` [kW] (the solvers' tolerance)."""
    return np.flatnonzero(np.asarray(p_kw, dtype=float) > cap_kw + tol_kw)


def fig_schedule(
    fleet: FleetSection, markets: MarketsSection, currency: str = "USD", clock: Clock | None = None
) -> Figure:
    """Prices, uncontrolled charging and the cost-optimal schedules under the import cap; every step where a
    series is above the cap is marked (x on the series) and shaded, and the count is in the legend."""
    sc = markets.schedule
    fig = Figure(figsize=(_W, _H * 1.15))
    ax = fig.add_subplot()
    t = np.asarray(fleet.time_h, dtype=float)
    dt = float(t[1] - t[0]) if t.size > 1 else 1.0
    blind = "" if markets.network_schedule is None else " (network-blind)"
    series: list[tuple[np.ndarray, dict[str, object], str]] = [
        (np.asarray(fleet.p_uncontrolled_kw, dtype=float), {"color": "tab:gray"}, "uncontrolled (all EVs)"),
        (np.asarray(sc.individual.p_total_kw, dtype=float), {"color": "tab:blue"}, f"per-EV LP{blind}"),
        (
            np.asarray(sc.disaggregated_kw, dtype=float),
            {"color": "tab:green", "ls": "--"},
            f"inner virtual battery, disaggregated{blind}",
        ),
    ]
    ns = markets.network_schedule
    if ns is not None:  # the schedule sold: per-bus batteries within the feeders' limits and the cap's split
        series.append(
            (
                np.asarray(ns.secure.p_ev_kw, dtype=float).sum(axis=1),
                {"color": "k", "lw": 1.6},
                "network-secure (the schedule sold)",
            )
        )
    cap = float(sc.import_cap_kw)
    flagged: set[int] = set()
    for p, style, label in series:
        over = steps_above_cap(p, cap)
        flagged.update(int(k) for k in over)
        note = f": {over.size} step(s) above the cap" if over.size else ""
        ax.step(t, p / 1e3, where="post", label=label + note, **style)  # type: ignore[arg-type]
        if over.size:
            ax.plot(t[over] + dt / 2, p[over] / 1e3, "x", color=str(style["color"]), ms=5)
    ax.axhline(cap / 1e3, color="tab:red", ls=":", label=f"import cap {cap / 1e3:,.2f} MW")
    for k, k_start in enumerate(sorted(flagged)):
        ax.axvspan(
            t[k_start],
            t[k_start] + dt,
            color="tab:red",
            alpha=0.12,
            lw=0,
            label="step above the cap" if k == 0 else None,
            gid="above_cap",
        )
    ax.set_ylabel("fleet power [MW]")
    ax2 = ax.twinx()
    ax2.step(t, sc.price_per_mwh, where="post", color="tab:orange", lw=0.8, label="price (right)")
    ax2.set_ylabel(money_label("price", currency, "MWh") + " (orange)")
    if t.size:
        c = clock if clock is not None else Clock(float(fleet.clock_h[0]))
        set_clock_axis(ax, float(t[-1] + dt), c.start_clock_h, start=c.start)
        ax.grid(alpha=0.3)
    ax.set_title("Day-ahead schedule against prices and the import cap")
    place_legend(ax, fontsize=7)
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
    ax.set_ylabel(money_label("expected cost over the horizon", rb.currency))
    ax2 = ax.twinx()
    ax2.plot(om[ok], rate[ok] * 100, "s--", color="tab:red", label="violation rate, Monte Carlo")
    ax2.plot(
        om, np.asarray(rb.promised) * 100, ":", color="tab:red", label=f"promised, at most ({rb.radius_bound} bound)"
    )
    ax2.set_ylabel("violation [%]")
    ax.grid(alpha=0.3)
    ax.set_title("Robust schedule: cost of robustness against violations")
    place_legend(ax)
    return fig
