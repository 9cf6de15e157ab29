"""Command-line interface (typer), one module per area; bad input gives one line and exit code 2.

``run()`` is the console entry point; ``main(argv)`` returns the exit code (used by the tests).
"""

from __future__ import annotations

import sys

import typer
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError

from v2gtwin.cli import (  # noqa: F401  (register commands)
    battery,
    battery_cost,
    battery_fade,
    comply,
    csms,
    csms_api,
    cyber,
    cyber_iso15118,
    cyber_path,
    cyber_tls,
    doe,
    feeder,
    fleet,
    frequency,
    live,
    market,
    network,
    network_feeders,
    protection,
    resilience,
    scenario,
    study,
    sweep,
)
from v2gtwin.cli._common import app
from v2gtwin.cli._jit import announce_compilation
from v2gtwin.errors import StepFailedError, V2GTwinError

__all__ = ["app", "main", "run"]


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def main(argv: list[str] | None = None) -> int:
    """Run the CLI on ``argv`` and return the exit code; errors become one line on stderr (exit code 2; 1 when a
    study step's computation failed)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    announce_compilation()  # "compiling kernels (once...)" on stderr instead of a silent first-run pause
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=args, prog_name="v2gtwin", standalone_mode=False)
    except StepFailedError as exc:  # the computation failed, not the input
        if debug:
            raise
        sys.stderr.write(f"error: {_one_line(str(exc))}\n")
        return 1
    except V2GTwinError as exc:
        if debug:
            raise
        sys.stderr.write(f"error: {_one_line(str(exc))}\n")
        return 2
    except NoArgsIsHelpError as exc:
        sys.stdout.write(exc.format_message().rstrip() + "\n")
        return 0
    except UsageError as exc:
        if debug:
            raise
        sys.stderr.write(f"error: {_one_line(exc.format_message())} (see 'v2gtwin --help')\n")
        return 2
    except ClickException as exc:
        if debug:
            raise
        sys.stderr.write(f"error: {_one_line(exc.format_message())}\n")
        return 2
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        sys.stderr.write("aborted\n")
        return 130
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except MemoryError:
        sys.stderr.write("error: out of memory; reduce fleet.n_evs or time.n_steps\n")
        return 2
    if rv == 130:  # typer turns Ctrl-C into Exit(130) without a word
        sys.stderr.write("interrupted\n")
    return int(rv) if isinstance(rv, int) else 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
