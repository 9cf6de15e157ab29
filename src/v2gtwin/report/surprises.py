"""Sentences that explain results a reader would not expect, each computed from the study's numbers: it says
"loses" only when a policy loses, gives the size, and is left out when its figures are missing."""

from __future__ import annotations

import html

import numpy as np

from v2gtwin.study_result import StudyResult

__all__ = ["delivered_vs_needed", "loss_aware_vs_uniform", "regulation_bid_vs_offered", "robust_vs_per_ev", "why_html"]


def why_html(sentence: str) -> str:
    """A sentence of explanation as its paragraph (empty when the sentence is)."""
    return f'<p class="why">{html.escape(sentence)}</p>' if sentence else ""


def delivered_vs_needed(result: StudyResult) -> str:
    """Why the energy delivered (grid side) can exceed the energy needed (battery side) while EVs still leave
    below target: the battery side gets delivered x charging efficiency."""
    f = result.fleet
    if f is None:
        return ""
    s = f.summary
    need, got, unmet = float(s["energy_need_total_kwh"]), float(s["energy_delivered_kwh"]), float(s["energy_unmet_kwh"])
    if got <= need or got <= 0.0:
        return ""
    stored = need - unmet  # uncontrolled charging stops at the target, so what the batteries took is need - unmet
    return (
        f"Energy delivered ({got:,.0f} kWh) exceeds the energy needed ({need:,.0f} kWh) although "
        f"{int(s['n_unmet']):,} EVs leave below their target: delivered is measured on the grid side, needed on "
        f"the battery side. The batteries took needed − unmet = {stored:,.0f} kWh, {stored / got:.3f} of what "
        "the grid delivered: the rest is the chargers' and batteries' charging loss."
    )


def loss_aware_vs_uniform(result: StudyResult) -> str:
    """loss_aware charging against uniform charging of the same energy: how much it saves or loses, and why
    it can lose."""
    if result.feeder is None:
        return ""
    d = result.feeder.dispatch
    losses = dict(zip(d.policies, (float(x) for x in d.losses_kwh), strict=True))
    if "loss_aware" not in losses or "uniform" not in losses:
        return ""
    la, uni = losses["loss_aware"], losses["uniform"]
    diff = la - uni
    pct = 100.0 * diff / uni if uni > 0 else float("nan")
    size = f"{abs(diff):,.2f} kWh" + (f" ({abs(pct):.1f} %)" if np.isfinite(pct) else "")
    if diff > 0:
        out = (
            f"loss_aware charging loses {size} more than uniform charging of the same energy: every EV charges "
            "at its own bus, so only the timing of each bus's energy can change; serving the low-sensitivity "
            "buses first at full power leaves the far-end EVs to charge late and together, and losses grow with "
            "the square of that bunching, which a linear sensitivity does not see."
        )
    elif diff < 0:
        out = f"loss_aware charging saves {size} against uniform charging of the same energy."
    else:
        out = "loss_aware and uniform charging lose the same energy."
    if "loss_optimal" in losses:
        lo = losses["loss_optimal"] - uni
        verb = "saves" if lo < 0 else "loses"
        out += f" loss_optimal, which weighs where and when together, {verb} {abs(lo):,.2f} kWh against uniform."
    return out


def robust_vs_per_ev(result: StudyResult) -> str:
    """Why the robust schedule's cost is not the per-EV LP's: it prices the site's whole net load, and the
    part of it that is the fleet's."""
    mk = result.markets
    if mk is None:
        return ""
    rb, sc = mk.robust, mk.schedule
    nominal = [
        r for om, r in zip(rb.omegas, rb.results, strict=True) if om == 0.0 and r is not None
    ]  # the nominal radius: no uncertainty margin
    if not nominal:
        return ""
    cur = result.scenario.currency
    rob = float(nominal[0].cost_per_horizon)
    dt_h = rb.horizon_h / len(rb.mu_kw)
    site = float(np.sum(sc.price_per_mwh * rb.mu_kw) * dt_h / 1000.0)
    lp = float(sc.individual.cost_per_horizon)
    fleet = rob - site
    sign = " (negative: its discharging earns more than its charging costs)" if fleet < 0 else ""
    return (
        f"The robust schedule's expected cost at Ω = 0 ({rob:,.1f} {cur}) is not comparable with the per-EV LP's "
        f"({lp:,.1f} {cur}): it prices the site's whole net load, {site:,.1f} {cur} of it the forecast net load "
        f"without the fleet and {fleet:,.1f} {cur} the feeder's EVs as one lossless virtual battery{sign}; the "
        f"per-EV LP prices only the charging of the {sc.n_evs:,} scheduled EVs of the whole fleet, "
        "with each EV's charging loss and degradation cost."
    )


def regulation_bid_vs_offered(result: StudyResult) -> str:
    """Why the newsvendor regulation bid (markets) can exceed the regulation capacity offered (services): the
    two are measured on different bases (:func:`v2gtwin.grid.bulk.run_agc_analysis`, whose range is the
    droop fleet's of :func:`v2gtwin.grid.bulk.build_droop_fleet`, and
    :func:`v2gtwin.markets.analysis.run_bid_analysis` with
    :func:`~v2gtwin.markets.analysis.calc_regulation_headroom_kw`)."""
    if result.services is None or result.markets is None:
        return ""
    ag, b = result.services.agc, result.markets.bid
    offered, bid = float(ag.capacity_kw), float(b.bid.bid_kw)
    if bid <= offered or offered <= 0.0:
        return ""
    share = result.scenario.frequency.reg_capacity_share
    offered_basis = (
        f"The regulation capacity offered ({offered:,.0f} kW) is reg_capacity_share = {share:g} of the fleet's "
        f"symmetric range on the study's day ({float(ag.fleet_range_kw):,.0f} kW): each EV plugged in at the event "
        "sums the smaller of its room up (its uncontrolled charging power plus its discharge limit, none at the SoC "
        "floor) and down (its charge limit minus that power, none when full)."
    )
    if b.samples_kw.size:
        bid_basis = (
            f"The bid ({bid:,.0f} kW) is the {b.bid.fractile:.3f} fractile (price / (price + penalty)) of the "
            f"availability on {b.samples_kw.size} seeded fleet days at {b.event_clock} (mean "
            f"{float(b.samples_kw.mean()):,.0f} kW), where each plugged EV counts as idle with the smaller of its "
            "charge and discharge limits, with no share held back."
        )
    else:
        bid_basis = (
            f"The bid ({bid:,.0f} kW) is the {b.bid.fractile:.3f} fractile (price / (price + penalty)) of the "
            f"availability given ({b.source}), not of this fleet's range."
        )
    return (
        f"The regulation bid exceeds the capacity offered: they stand on different bases. {offered_basis} {bid_basis}"
    )
