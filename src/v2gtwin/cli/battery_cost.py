"""`v2gtwin battery cost`: the V2G degradation cost — what a kWh discharged costs each EV's battery (the battery
models' marginal capacity loss valued at the replacement cost) — by chemistry and temperature, and over the
scenario's fleet; the cost the study's schedules, V2G offer and regulation bid use."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from v2gtwin.cli._common import JsonOpt, ScenarioOpt, _emit, _fleet_baseline
from v2gtwin.cli.battery import battery_app

TempOpt = Annotated[
    float | None,
    typer.Option("--temp-c", min=0.0, max=60.0, help="Battery temperature (0-60; default: battery.temp_c) [degC]."),
]
YearsOpt = Annotated[
    int | None,
    typer.Option("--years", min=1, max=30, help="Years of the average (1-30; default: battery.years)."),
]
FlatOpt = Annotated[
    bool, typer.Option("--flat", help="Show the flat placeholder markets.degradation_per_mwh instead of the models.")
]


@battery_app.command("cost")
def battery_cost(
    scenario: ScenarioOpt = None,
    temp_c: TempOpt = None,
    years: YearsOpt = None,
    flat: FlatOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """V2G degradation cost per MWh discharged: by chemistry and temperature on the fleet's median V2G day, and
    its spread over the scenario's fleet (the cost the study prices discharge at)."""
    from v2gtwin.battery.cost import degradation_cost_per_mwh

    changes: dict[str, object] = {"degradation_cost": "flat" if flat else "model"}
    if temp_c is not None:
        changes["temp_c"] = temp_c
    if years is not None:
        changes["years"] = years
    scen, fleet, unc = _fleet_baseline(scenario, {"battery": changes})
    out = degradation_cost_per_mwh(scen, fleet, unc.soc_pu).summary() | {"currency": scen.currency}
    if json_out:
        _emit(out, True)
        return
    table = out.pop("table")
    _emit(out, False)
    if table:
        sys.stdout.write(f"\n{'chemistry':<10} {'temp_c':>7} {'cost_per_mwh':>13} {'life_years':>10}\n")
        for r in table:
            sys.stdout.write(
                f"{r['chemistry']:<10} {r['temp_c']:>7g} {r['cost_per_mwh']:>13,.2f} {r['life_years']:>10}\n"
            )
