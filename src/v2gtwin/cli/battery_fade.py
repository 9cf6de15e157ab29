"""`v2gtwin battery fade`: capacity fade of the scenario's fleet over years of its daily uncontrolled charging."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from v2gtwin.cli._common import JsonOpt, ScenarioOpt, _emit, load_scenario_with
from v2gtwin.cli.battery import battery_app
from v2gtwin.errors import ScenarioError


@battery_app.command("fade")
def battery_fade(
    scenario: ScenarioOpt = None,
    years: Annotated[int, typer.Option(min=1, max=50, help="Years of ageing (1-50).")] = 10,
    chemistry: Annotated[str, typer.Option(help="Cell chemistry's ageing model: nmc or lfp.")] = "nmc",
    temp_c: Annotated[
        float, typer.Option("--temp-c", min=-40.0, max=80.0, help="Cell temperature, all year [degC] (-40 to 80).")
    ] = 25.0,
    json_out: JsonOpt = False,
) -> None:
    """Fleet capacity fade by year (mean and 5/50/95th percentiles over EVs) for the scenario's uncontrolled
    charging, the day repeated for --years.

    The fleet model charges each EV from arrival to its target; the drive that brings the SoC back to the
    arrival value is placed at the end of the day (the fleet model does not simulate driving), so the day is a
    closed cycle whose depth of discharge is counted by rainflow.
    """
    from v2gtwin.battery.degradation import CHEMISTRIES, calc_fade, summarize_fade
    from v2gtwin.fleet import run_uncontrolled
    from v2gtwin.study import build_fleet

    if chemistry not in CHEMISTRIES:
        raise ScenarioError(f"--chemistry {chemistry!r} is not known; allowed: {', '.join(CHEMISTRIES)}")
    scen = load_scenario_with(scenario, {})
    if abs(scen.time.n_steps * scen.time.dt_s - 86_400.0) > 1e-6:
        raise ScenarioError(
            "battery fade repeats one day: time.n_steps * time.dt_s must be 86400 s; got "
            f"{scen.time.n_steps} x {scen.time.dt_s:g} s"
        )
    fleet = build_fleet(scen)
    soc = run_uncontrolled(fleet).soc_pu[: scen.time.n_steps].T
    fade = calc_fade(soc, scen.time.dt_h, temp_c, years, chemistry, capacity_kwh=fleet.capacity_kwh)
    out: dict[str, Any] = summarize_fade(fade, temp_c)
    out["operation"] = "uncontrolled charging, the scenario's day repeated"
    _emit(out, json_out)
