"""`v2gtwin network`: the fleet on real networks — importing feeders from MATPOWER / OpenDSS files, dynamic
operating envelopes per bus and step."""

from __future__ import annotations

import typer

from v2gtwin.cli._common import app

network_app = typer.Typer(
    help="The fleet on real networks: feeders from files, dynamic operating envelopes.", no_args_is_help=True
)
app.add_typer(network_app, name="network")
