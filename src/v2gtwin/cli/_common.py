"""Shared pieces of the command-line interface: the typer app, common options, JSON output, scenario loading."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from v2gtwin import __version__
from v2gtwin.jsonout import dumps_strict, to_jsonable

if TYPE_CHECKING:
    from v2gtwin.scenario import TimeGrid

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
    """Print ``obj`` as strict JSON (the serializer of results.json: :func:`v2gtwin.jsonout.dumps_strict`)."""
    sys.stdout.write(dumps_strict(obj) + "\n")


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


#: Decimals printed for a value whose key ends in a unit suffix, whatever its size: 4 significant digits would
#: print a 59.8103 Hz nadir as 59.81 and hide the 3 mHz a fleet changes (absolute frequencies and deviations).
DECIMALS_BY_SUFFIX: dict[str, int] = {"_hz": 4}


def format_number(value: float, key: str = "") -> str:
    """A float for people: about 4 significant digits, thousands separated from 1,000 up, no exponent between
    0.001 and 10^15; a float holding an integer value prints as one (``3.0`` -> ``3``). A key ending in a
    suffix of :data:`DECIMALS_BY_SUFFIX` (``*_hz``) prints with that many decimals instead (``59.8103``)."""
    for suffix, decimals in DECIMALS_BY_SUFFIX.items():
        if key.endswith(suffix):
            return f"{value:,.{decimals}f}"
    if value == 0:
        return "0"
    a = abs(value)
    if a >= 1e15 or a < 1e-3:
        return f"{value:.3e}"
    if a >= 1000 or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:.4g}"


def format_value(key: str, value: Any, time: TimeGrid | None = None) -> str:
    """One output value as text: integers as integers (a key ending in ``_step`` as ``42 (22:30)`` when the time
    grid is known), floats by :func:`format_number`, a missing value (None) as ``-``, lists comma-separated
    (an empty list as ``-``: none)."""
    value = to_jsonable(value, key, key)
    if value is None:
        return "-"
    if isinstance(value, (bool, str)):
        return str(value)
    if isinstance(value, int):
        if key.endswith("_step") and time is not None and 0 <= value <= time.n_steps:
            return f"{value} ({time.clock_label(value)})"
        return f"{value:,}"
    if isinstance(value, float):
        if key.endswith("_step") and value.is_integer():
            return format_value(key, int(value), time)
        return format_number(value, key)
    if isinstance(value, list):
        if not value:
            return "-"
        return ", ".join(format_value(key, v, time) for v in value)
    return str(value)


def _emit_text(out: dict[str, Any], time: TimeGrid | None, indent: int) -> None:
    pad = " " * indent
    width = max(32 - indent, max((len(str(k)) for k in out), default=0) + 1)
    for k, v in out.items():
        if isinstance(v, dict):
            sys.stdout.write(f"{pad}{k}:\n")
            _emit_text(v, time, indent + 2)
        else:
            sys.stdout.write(f"{pad}{k:<{width}} {format_value(str(k), v, time)}\n")


def _emit(out: dict[str, Any], json_out: bool, time: TimeGrid | None = None) -> None:
    """Print a command's result: strict JSON with ``--json`` (step indices as integers), else aligned text
    with clock times next to step indices (when ``time`` is given) and numbers rounded for reading."""
    if json_out:
        _print_json(out)
        return
    to_jsonable(out)  # the same check as --json: a non-finite value is an error in text too
    _emit_text(out, time, 0)


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
