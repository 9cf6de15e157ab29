"""`v2gtwin scenario`: show, validate and describe scenario files."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from v2gtwin.cli._common import (
    JsonOpt,
    ScenarioOpt,
    _print_json,
    app,
)

scenario_app = typer.Typer(help="Show, validate and describe scenario files.", no_args_is_help=True)
app.add_typer(scenario_app, name="scenario")


@scenario_app.command("show")
def scenario_show(scenario: ScenarioOpt = None, json_out: JsonOpt = False) -> None:
    """Print a scenario (default: the built-in one) as TOML, or as JSON with --json."""
    from v2gtwin.scenario import load_scenario, scenario_to_toml

    scen = load_scenario(scenario)
    if json_out:
        _print_json(scen.model_dump(mode="json"))
    else:
        sys.stdout.write(scenario_to_toml(scen))


@scenario_app.command("validate")
def scenario_validate(
    file: Annotated[Path, typer.Argument(help="Scenario TOML file.")], json_out: JsonOpt = False
) -> None:
    """Check a scenario file; prints 'ok' or one line naming the bad field (exit code 2)."""
    from v2gtwin.scenario import load_scenario

    scen = load_scenario(file)
    if json_out:
        _print_json({"file": str(file), "valid": True, "name": scen.name})
    else:
        if scen.fleet.source == "csv" and scen.fleet.sessions_csv is not None:  # fleet.n_evs is not used
            import numpy as np

            from v2gtwin.data_in import read_sessions_csv

            fleet = read_sessions_csv(
                scen.fleet.sessions_csv, scen.fleet, scen.time, scen.feeder.n_bus, np.random.default_rng(0)
            )
            evs = f"{fleet.n} sessions from {scen.fleet.sessions_csv}"
        elif scen.fleet.source == "acn":
            evs = f"ACN-Data sessions ({scen.fleet.acn_site}, {scen.fleet.acn_date})"
        else:
            evs = f"{scen.fleet.n_evs} EVs"
        sys.stdout.write(f"{file}: ok ({evs}, {scen.time.n_steps} steps)\n")


@scenario_app.command("schema")
def scenario_schema_cmd(json_out: JsonOpt = False) -> None:
    """Print the JSON schema of scenario files (always JSON)."""
    from v2gtwin.scenario import scenario_schema

    _print_json(scenario_schema())
