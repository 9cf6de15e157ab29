"""The report's account of the network of feeders inside the feeder section: what the page header names, how the
detail feeder's base load was made, its notes, one row per feeder of the network, and where the ratings that the
operating envelopes respect come from. Reads :class:`~v2gtwin.study.StudyResult` only."""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from v2gtwin.study import StudyResult

__all__ = ["base_load_text", "feeder_notes_part", "grid_label", "network_table_part", "ratings_text"]

#: Daily base-load shapes as the report names them (keys of ``grid.profiles.DAILY_SHAPES_PCT``).
PROFILE_LABELS: dict[str, str] = {
    "residential": "BDEW H25 household January working-day",
    "commercial": "BDEW G25 commercial January working-day",
    "mixed": "mean of the BDEW H25 household and G25 commercial January working-day",
    "rts79": "IEEE RTS-79 winter-weekday",
}


def _detail_row(result: StudyResult) -> dict[str, Any] | None:
    """The network summary's row of the feeder the single-feeder studies run on (None without a network)."""
    if result.network is None:
        return None
    s = result.network.summary()
    rows: list[dict[str, Any]] = s["feeders"]
    return next((r for r in rows if r["feeder"] == s["detail_feeder"]), rows[0])


def grid_label(result: StudyResult) -> str:
    """What the page header names: the network (its feeders) or the one feeder."""
    net = result.network
    if net is None:
        return f"feeder: {result.scenario.feeder.name}"
    n = net.network.n_feeders
    return f"network: {n} feeder{'s' if n != 1 else ''}, {net.network.ev_feeder.size:,} EVs"


def base_load_text(result: StudyResult) -> str:
    """How the detail feeder's base load was made: from its own network entry (profile, seeded peak scale and
    shift), from the one [feeder] (RTS-79 shape x peak_load_scale), or from its base_load_csv file."""
    row = _detail_row(result)
    if row is None:
        spec = result.scenario.feeder
        if spec.base_load_csv is not None:  # the user's own total (the feeder step's spread_base_load)
            return (
                f"Base load: the feeder total from {html.escape(str(spec.base_load_csv))}, spread over the buses "
                "by their nominal loads (peak_load_scale and the RTS-79 shape not used)."
            )
        return (
            f"Base load: the feeder's nominal loads x {spec.peak_load_scale:g} x the IEEE RTS-79 winter-weekday "
            "daily shape."
        )
    profile = PROFILE_LABELS.get(str(row["profile"]), str(row["profile"]))
    return (
        f"Base load of {html.escape(str(row['feeder']))}: its nominal loads x {row['peak_scale']:.3f} (peak scale "
        f"with its seeded variation) x the {html.escape(profile)} daily shape, shifted by {row['shift_h']:+.2f} h."
    )


def feeder_notes_part(result: StudyResult) -> str:
    """The feeder section's notes (which feeder of the network, how it was built, its ratings) as a list."""
    notes = () if result.feeder is None else result.feeder.notes
    if not notes:
        return ""
    items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    return f'<p class="muted">Notes on this feeder:</p><ul class="muted">{items}</ul>'


def _ratings_of(row: dict[str, Any]) -> str:
    """A feeder's ratings as its notes give them (every 'ampacity:' note), or that none are set."""
    found = [str(n)[len("ampacity: ") :] for n in row["notes"] if str(n).startswith("ampacity: ")]
    return "; ".join(found) if found else f"{row['n_branch_rated']} branches rated in the data"


def _kw(value: Any) -> str:
    return "-" if value is None else f"{value:,.0f}"


def network_table_part(result: StudyResult) -> str:
    """One row per feeder of the network (empty without a network): buses, EVs, base-load peak, lowest voltage
    with the base load alone and with uncontrolled charging, the lowest over the day of the envelope's total
    import and export, the exact-AC check, and where the ratings come from."""
    if result.network is None:
        return ""
    s = result.network.summary()
    head = (
        "feeder",
        "buses",
        "EVs",
        "base peak [kW]",
        "lowest voltage, base / with EVs [pu]",
        "envelope total, lowest import / export [kW]",
        "exact-AC violations",
        "ratings",
    )
    body = []
    for r in s["feeders"]:
        v = r["v_min_uncontrolled_pu"]
        v_ev = f"{v:.4f}" if v is not None and math.isfinite(v) else "-"  # no solution at any step: collapse
        cells = (
            str(r["feeder"]),
            f"{r['n_bus']:,}",
            f"{r['n_evs']:,}",
            f"{r['p_base_peak_kw']:,.0f}",
            f"{r['v_min_base_pu']:.4f} / {v_ev}",
            f"{_kw(r['p_import_max_total_lowest_kw'])} / {_kw(r['p_export_max_total_lowest_kw'])}",
            f"{r['ac_violations']:,}",
            _ratings_of(r),
        )
        body.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    rule = html.escape(str(s["allocation_rule"]))
    totals_note = (
        " The envelope totals are blank for per_bus_max: its per-bus limits do not hold together."
        if s["allocation_rule"] == "per_bus_max"
        else ""
    )
    return (
        f"<h3>The network: {s['totals']['n_feeders']} feeders</h3>"
        f"<table><tr>{th}</tr>{''.join(body)}</table>"
        f'<p class="muted">The studies above run on {html.escape(str(s["detail_feeder"]))}, the network\'s first '
        f"feeder, with its EVs. Lowest voltages by exact AC power flow over the day; envelopes with the rule "
        f"{rule}, limits [{s['v_min_pu']:g}, {s['v_max_pu']:g}] pu.{totals_note}</p>"
    )


def ratings_text(result: StudyResult) -> str:
    """Where the branch ratings the envelopes respect come from, in one sentence."""
    if result.network is None:
        notes = [n for n in (result.feeder.notes if result.feeder else ()) if n.startswith("ampacity: ")]
        return "Branch ratings: " + ("; ".join(n[len("ampacity: ") :] for n in notes) or "as in the data") + "."
    found = sorted({_ratings_of(r) for r in result.network.summary()["feeders"]})
    return "Branch ratings: " + " | ".join(found) + "."
