"""`v2gtwin cyber`: the control path's latency and reliability (central system -> charger -> ISO 15118 -> EV),
the Plug & Charge TLS handshake and the ISO 15118 session. Each command lives in its own module
(``cli/cyber_*.py``) and registers on :data:`cyber_app`."""

from __future__ import annotations

import typer

from v2gtwin.cli._common import app

cyber_app = typer.Typer(
    help="The control path: command latency and reliability, TLS handshake time, ISO 15118 sessions.",
    no_args_is_help=True,
)
app.add_typer(cyber_app, name="cyber")
