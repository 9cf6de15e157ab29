"""The report's battery section: the V2G degradation cost the study priced discharge at (by chemistry and
temperature), the fleet's capacity fade over the years under uncontrolled charging and under the V2G schedule, and
how the schedule and the V2G offer change against the flat placeholder. Reads the study result only."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure

from v2gtwin.report.figure_layout import place_legend
from v2gtwin.report.figures import to_png_base64

if TYPE_CHECKING:
    from v2gtwin.battery.health import BatteryHealthAnalysis
    from v2gtwin.study import StudyResult

__all__ = ["battery_health_section", "fig_fade"]

_W, _H = 8.0, 3.4


def fig_fade(bh: BatteryHealthAnalysis) -> Figure:
    """Remaining capacity by year, mean and 5-95 % band, uncontrolled vs V2G (left), and its calendar and
    cycle parts (right: the means)."""
    fig = Figure(figsize=(_W, _H))
    ax, ax2 = fig.subplots(1, 2)
    years = np.arange(0, bh.years + 1)
    # V2G first, uncontrolled dashed on top: the two medians often lie within a line's width of each other.
    for fade, colour, name, ls in (
        (bh.fade_v2g, "tab:blue", "V2G", "-"),
        (bh.fade_uncontrolled, "k", "uncontrolled", "--"),
    ):
        q = np.column_stack([np.zeros(fade.q_loss_pu.shape[0]), fade.q_loss_pu])
        left = 100.0 * (1.0 - q)
        mean = left.mean(axis=0)
        ax.plot(years, mean, color=colour, ls=ls, lw=1.6, label=f"{name}: {mean[-1]:.1f} % after {bh.years} y")
        ax.fill_between(
            years, np.percentile(left, 5, axis=0), np.percentile(left, 95, axis=0), color=colour, alpha=0.15
        )
        cal = np.concatenate([[0.0], fade.q_loss_cal_pu.mean(axis=0)]) * 100.0
        cyc = np.concatenate([[0.0], fade.q_loss_cyc_pu.mean(axis=0)]) * 100.0
        ax2.plot(years, cal, color=colour, ls="-", lw=1.4, label=f"calendar, {name}")
        ax2.plot(years, cyc, color=colour, ls=":", lw=1.6, label=f"cycle, {name}")
    ax.set_xlabel("years")
    ax.set_ylabel("capacity left [% of new]")
    ax.set_title("capacity left, mean (band: 5-95 % of EVs)", fontsize=9)
    ax.grid(alpha=0.3)
    ax2.set_xlabel("years")
    ax2.set_ylabel("capacity lost [% of new] (mean)")
    ax2.set_title("calendar and cycle parts", fontsize=9)
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    place_legend(ax)
    place_legend(ax2)
    return fig


def _figure(fig: Figure, caption: str) -> str:
    return (
        f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{to_png_base64(fig)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _table(head: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    h = "".join(f"<th>{html.escape(x)}</th>" for x in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{h}</tr>{body}</table>"


def _num(v: Any, fmt: str = ",.1f") -> str:
    return "n/a" if v is None else format(v, fmt)


def battery_health_section(result: StudyResult) -> str:
    """The HTML section (empty when the study did not run the battery step)."""
    bh = result.battery
    if bh is None:
        return ""
    s = bh.summary()
    cur = html.escape(result.scenario.currency)
    b = result.scenario.battery
    c, cmp_ = s["cost"], s["compare"]
    table_rows = [
        (r["chemistry"].upper(), f"{r['temp_c']:g}", f"{r['cost_per_mwh']:,.2f}", f"{r['life_years']}")
        for r in c["table"]
    ]
    fu, fv = s["fade_uncontrolled"], s["fade_v2g"]
    last = f"year_{bh.years}"
    lu, lv = fu["by_year"][last], fv["by_year"][last]
    fade_rows = [
        ("capacity lost after the last year, mean [%]", *(f"{100 * r['q_loss_mean_pu']:.2f}" for r in (lu, lv))),
        ("of which calendar, mean [%]", *(f"{100 * r['q_loss_cal_mean_pu']:.2f}" for r in (lu, lv))),
        ("of which cycle, mean [%]", *(f"{100 * r['q_loss_cyc_mean_pu']:.2f}" for r in (lu, lv))),
        ("equivalent full cycles a day, mean", f"{fu['efc_per_day_mean']:.3f}", f"{fv['efc_per_day_mean']:.3f}"),
        (
            f"EVs past {b.eol_fade_pu:.0%} loss (end of life) after the last year",
            *(f"{r['n_evs_past_eol']:,} of {bh.n_evs:,}" for r in (lu, lv)),
        ),
    ]
    compare_rows = [
        (
            f"degradation cost the schedule pays per MWh discharged, each EV at its own [{cur}/MWh]",
            _num(cmp_.get("schedule_degradation_per_mwh_discharge_weighted_model"), ".2f"),
            _num(cmp_.get("schedule_degradation_per_mwh_discharge_weighted_flat"), ".2f"),
        ),
        (
            f"degradation cost of the aggregate batteries (discharge-power-weighted mean) [{cur}/MWh]",
            _num(cmp_.get("schedule_degradation_per_mwh_aggregate_batteries_model"), ".2f"),
            _num(cmp_.get("schedule_degradation_per_mwh_aggregate_batteries_flat"), ".2f"),
        ),
        (
            f"schedule cost over the horizon [{cur}]",
            _num(cmp_.get("schedule_cost_per_horizon_model")),
            _num(cmp_.get("schedule_cost_per_horizon_flat")),
        ),
        (
            "energy the schedule discharges [kWh]",
            _num(cmp_.get("schedule_energy_discharged_kwh_model")),
            _num(cmp_.get("schedule_energy_discharged_kwh_flat")),
        ),
        (
            f"V2G offer price [{cur}/MWh]",
            _num(cmp_.get("v2g_offer_price_per_mwh_model"), ".2f"),
            _num(cmp_.get("v2g_offer_price_per_mwh_flat"), ".2f"),
        ),
        (
            "V2G energy the market takes (RTP) [kWh]",
            _num(cmp_.get("v2g_sold_kwh_model")),
            _num(cmp_.get("v2g_sold_kwh_flat")),
        ),
    ]
    used = "the battery models" if s["degradation_cost_source"] == "model" else "the flat placeholder"
    by_chem = ", ".join(
        f"{k.upper()} {v:,.2f}" for k, v in c["cost_median_by_chemistry_per_mwh"].items() if v is not None
    )
    med = c["cost_median_by_chemistry_per_mwh"]
    lfp_low = (med.get("lfp") or 0.0) < 0.5 * (med.get("nmc") or 0.0)
    lfp_note = (
        " LFP's cost is far lower because its model's cycle term, identified on deep cycles (80-100 % DoD), nearly "
        "vanishes at the shallow depths of daily use (its linear depth term cancels near 18 % DoD): an "
        "extrapolation, to be read as a lower bound."
    )
    total = lv["q_loss_mean_pu"]
    cal_share = lv["q_loss_cal_mean_pu"] / total if total > 0 else 0.0
    same_energy = cmp_.get("schedule_energy_discharged_kwh_model") == cmp_.get("schedule_energy_discharged_kwh_flat")
    return (
        "<h2>Battery health</h2>"
        f"<p>The study priced every kWh the fleet discharges with {used} (battery.degradation_cost). The cost is "
        f"the marginal capacity loss of {b.v2g_probe_kwh:g} kWh a day of extra V2G cycling on each EV's own day, "
        f"averaged over {b.years} years (or each battery's life to {b.eol_fade_pu:.0%} loss, if shorter) at "
        f"{b.temp_c:g} &deg;C, valued at {b.replacement_cost_per_kwh:g} {cur} per "
        f"kWh of capacity over the {b.eol_fade_pu:.0%} of capacity a battery may lose (NMC: Schmalstieg et al. "
        "2014; LFP: Gasper et al. 2022 on Naumann et al.'s cells; see docs/battery.md). Median by chemistry "
        f"[{cur}/MWh]: {html.escape(by_chem)}."
        + (lfp_note if lfp_low else "")
        + "</p>"
        + _table(("chemistry", "temperature [°C]", f"cost [{cur}/MWh]", "years averaged (life)"), table_rows)
        + "<p class='muted'>Cost table: each chemistry on the day of its own median-cost V2G EV. Amounts in "
        + f"{cur}.</p><ul class='muted'>"
        + "".join(f"<li>{html.escape(n)}</li>" for n in c["notes"])
        + "</ul>"
        + _figure(
            fig_fade(bh),
            f"Capacity left over {bh.years} years for the {bh.n_evs:,} scheduled EVs, on their uncontrolled days and "
            "on their days under the study's V2G schedule; calendar and cycle parts (means).",
        )
        + _table(("figure", "uncontrolled", "V2G schedule"), fade_rows)
        + (
            f"<p>Calendar ageing is {cal_share:.0%} of the V2G schedule's mean fade at this temperature: it "
            "depends on time and the SoC level, which V2G changes little, so the schedule's extra cycling adds a "
            "small share of the total.</p>"
            if cal_share > 0.5
            else ""
        )
        + (
            f"<p>Under the V2G schedule the calendar loss is lower ({100 * lv['q_loss_cal_mean_pu']:.1f} % "
            f"against {100 * lu['q_loss_cal_mean_pu']:.1f} %): the schedule charges in the cheap hours late "
            "in the plug-in window, so the batteries spend longer at a lower SoC, which offsets much of the extra "
            "cycle loss.</p>"
            if lv["q_loss_cal_mean_pu"] < lu["q_loss_cal_mean_pu"]
            else ""
        )
        + _table(("figure", "battery models", "flat placeholder"), compare_rows)
        + (
            "<p class='muted'>The schedule discharges the same energy both ways: its discharge decisions turn on "
            "price spreads far larger than the difference between the two costs.</p>"
            if same_energy
            else ""
        )
    )
