"""Shared pieces of the command-line interface: the typer app, common options, JSON output, scenario loading."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from v2gtwin import __version__

app = typer.Typer(
    name="v2gtwin",
    help="Digital twin of a V2G / demand-response aggregator and the grid it serves.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

ScenarioOpt = Annotated[
    Path | None,
    typer.Option("--scenario", "-s", help="Scenario TOML file (default: the built-in default scenario)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=1, default=float) + "\n")


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logging.")] = False,
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if version:
        sys.stdout.write(f"v2gtwin {__version__}\n")
        raise typer.Exit(0)
    if ctx.invoked_subcommand is None:
        sys.stdout.write(ctx.get_help() + "\n")
        raise typer.Exit(0)
    if debug:
        logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s: %(message)s")


def _fleet_baseline(scenario: Path | None, changes: dict[str, dict[str, Any]] | None = None):  # type: ignore[no-untyped-def]
    from v2gtwin.fleet import run_uncontrolled
    from v2gtwin.study import build_fleet

    scen = load_scenario_with(scenario, changes or {})
    fleet = build_fleet(scen)
    return scen, fleet, run_uncontrolled(fleet)


def _emit(out: dict[str, Any], json_out: bool) -> None:
    if json_out:
        _print_json(out)
        return
    for k, v in out.items():
        if isinstance(v, dict):
            sys.stdout.write(f"{k}:\n")
            for k2, v2 in v.items():
                sys.stdout.write(f"  {k2:<30} {v2}\n")
        else:
            sys.stdout.write(f"{k:<32} {v}\n")


def load_scenario_with(path: Path | None, changes: dict[str, dict[str, Any]]):  # type: ignore[no-untyped-def]
    """Load a scenario and apply section overrides (validated like the file)."""
    from v2gtwin.scenario import load_scenario, parse_scenario

    scen = load_scenario(path)
    if not changes:
        return scen
    data = scen.model_dump(mode="json", exclude_none=True)
    for section, values in changes.items():
        data.setdefault(section, {}).update(values)
    return parse_scenario(data, str(path) if path else "<default scenario>")
