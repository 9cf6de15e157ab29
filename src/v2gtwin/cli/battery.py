"""`v2gtwin battery`: battery health in the twin — capacity fade of the fleet and the V2G degradation cost. Each
command lives in its own module (``cli/battery_*.py``) and registers on :data:`battery_app`."""

from __future__ import annotations

import typer

from v2gtwin.cli._common import app

battery_app = typer.Typer(
    help="Battery health: capacity fade of the fleet, V2G degradation cost.", no_args_is_help=True
)
app.add_typer(battery_app, name="battery")
