"""`v2gtwin resilience`: the scenario's critical facility through its upstream outage, with and without the V2G
fleet plugged in nearby, and the fleet-size sweep."""

from __future__ import annotations

import sys

from v2gtwin.cli._common import JsonOpt, ScenarioOpt, _emit, _print_json, app, format_number


def run_scenario_resilience(scen):  # type: ignore[no-untyped-def]
    """The resilience analysis of a scenario: the study's own step and the steps it needs, asked of the study's
    graph (so that the command prints what the study reports)."""
    from v2gtwin.study import StudyChain

    return StudyChain(scen).get("resilience")


def _row(cells: list[str], widths: list[int]) -> str:
    return "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True)))


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join(_row(r, widths) for r in [header, *rows]) + "\n"


@app.command("resilience")
def resilience(scenario: ScenarioOpt = None, json_out: JsonOpt = False) -> None:
    """Critical facility through an upstream outage: recovery time T_r and loss of resilience M_D (Bruneau et al.
    2003) with and without the V2G fleet nearby, and as a function of fleet size."""
    from v2gtwin.scenario import load_scenario

    scen = load_scenario(scenario)
    out = run_scenario_resilience(scen).summary()
    if json_out:
        _print_json(out)
        return
    head = {
        k: out[k]
        for k in (
            "facility_bus",
            "critical_peak_kw",
            "outage_start_clock",
            "outage_duration_h",
            "gen_kw",
            "gen_start_delay_s",
            "acceptable_level",
            "n_evs_nearby",
            "n_v2g_at_start",
            "cap_source",
            "v2g_cap_kw",
        )
    }
    _emit(head, False, scen.time)
    cases = [("with V2G", out["with_v2g"]), ("without V2G", out["without_v2g"])]
    rows = [
        [
            name,
            str(c["n_evs"]),
            format_number(c["t_r_s"]),
            c["recovered_by"],
            format_number(c["m_d_h"]),
            format_number(c["q_min"]),
            format_number(c["energy_v2g_kwh"]),
            format_number(c["energy_unserved_kwh"]),
        ]
        for name, c in cases
    ]
    sys.stdout.write(
        _table(
            ["case", "EVs", "T_r [s]", "recovered by", "M_D [h]", "lowest Q", "V2G [kWh]", "unserved [kWh]"],
            rows,
        )
    )
    sw = out["sweep"]
    srows = [
        [str(n), format_number(t), by, format_number(below), format_number(md), format_number(e)]
        for n, t, by, below, md, e in zip(
            sw["n_evs"],
            sw["t_r_s"],
            sw["recovered_by"],
            sw["t_below_level_s"],
            sw["m_d_h"],
            sw["energy_v2g_kwh"],
            strict=True,
        )
    ]
    sys.stdout.write(
        "fleet-size sweep:\n"
        + _table(["EVs", "T_r [s]", "recovered by", "below level [s]", "M_D [h]", "V2G [kWh]"], srows)
    )
    n_min = out["n_evs_min_holding"]
    sys.stdout.write(
        "smallest swept fleet that reaches the level and holds it to the end of the outage: "
        + ("none" if n_min is None else f"{n_min} EVs")
        + f" (level {out['acceptable_level']:g})\n"
    )
    for note in out["notes"]:
        sys.stdout.write(f"note: {note}\n")
