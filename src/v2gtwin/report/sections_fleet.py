"""The report's fleet section."""

from __future__ import annotations

import html

from v2gtwin.report.figures import Clock, fig_arrivals, fig_energy_envelope, fig_power_envelope, fig_soc, to_png_base64
from v2gtwin.report.html_parts import figure_html
from v2gtwin.report.surprises import delivered_vs_needed, why_html
from v2gtwin.study_result import StudyResult

__all__ = ["fleet_section"]

_SUMMARY_ROWS = (
    ("n_evs", "EVs", "{:,.0f}"),
    ("share_home", "share charging at home", "{:.1%}"),
    ("share_v2g", "share V2G-capable", "{:.1%}"),
    ("capacity_total_kwh", "battery capacity, total [kWh]", "{:,.0f}"),
    ("p_charge_total_kw", "charging power, total [kW]", "{:,.0f}"),
    ("p_discharge_total_kw", "discharging power, total [kW]", "{:,.0f}"),
    ("dwell_mean_h", "mean time plugged in [h]", "{:.2f}"),
    ("energy_need_total_kwh", "energy needed to reach targets [kWh]", "{:,.0f}"),
    ("energy_delivered_kwh", "energy delivered, uncontrolled [kWh]", "{:,.0f}"),
    ("energy_unmet_kwh", "energy unmet at departure, uncontrolled [kWh]", "{:,.1f}"),
    ("n_unmet", "EVs leaving below target, uncontrolled", "{:,.0f}"),
    ("n_infeasible", "EVs whose target is out of reach at full power", "{:,.0f}"),
    ("p_peak_kw", "peak of uncontrolled charging [kW]", "{:,.0f}"),
)


def fleet_section(result: StudyResult) -> str:
    f = result.fleet
    clock = Clock.of(result.scenario.time)
    assert f is not None  # render_html calls it only then
    rows = "".join(
        f"<tr><td>{html.escape(label)}</td><td>{fmt.format(f.summary[key])}</td></tr>"
        for key, label, fmt in _SUMMARY_ROWS
        if key in f.summary
    )
    peak_clock = result.scenario.time.clock_label(int(f.summary.get("p_peak_step", 0))) if f.clock_h.size else "-"
    return (
        "<h2>Fleet</h2>"
        f"<table><tr><th>quantity</th><th>value</th></tr>{rows}</table>"
        f'<p class="muted">Uncontrolled charging peaks at {peak_clock} local time. The envelope is the '
        "sum of each plugged-in EV's power box and energy band (an outer approximation of the fleet's "
        "flexibility); the energy band's lower edge is the least stored energy from which every EV can still "
        "reach its target by departure.</p>"
        + figure_html(to_png_base64(fig_arrivals(f, clock)), "Arrivals and departures per step, and EVs plugged in.")
        + figure_html(
            to_png_base64(fig_power_envelope(f, clock)),
            "Uncontrolled aggregate charging against the feasible aggregate power range.",
        )
        + figure_html(
            to_png_base64(fig_energy_envelope(f, clock)),
            "Stored energy of the plugged-in EVs, uncontrolled, against the virtual battery's energy band.",
        )
        + figure_html(to_png_base64(fig_soc(f)), "SoC at arrival and at departure under uncontrolled charging.")
        + why_html(delivered_vs_needed(result))
    )
