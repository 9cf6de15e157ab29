"""`v2gtwin cyber iso15118`: the ISO 15118 segment of the command path (charger -> EV), from real sessions of the
open ``iso15118`` stack run here (``--measure``) or from the standard's documented timeouts."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from v2gtwin.cli._common import JsonOpt, _emit, format_value
from v2gtwin.cli.cyber import cyber_app
from v2gtwin.errors import DataError

#: ``--protocol`` values -> the protocols measured.
_PROTOCOL_CHOICES: dict[str, tuple[str, ...]] = {"2": ("-2",), "20": ("-20",), "all": ("-2", "-20")}
#: ``--tls`` values -> the TLS modes measured.
_TLS_CHOICES: dict[str, tuple[bool, ...]] = {"off": (False,), "on": (True,), "both": (False, True)}


def _pick(option: str, value: str, choices: dict[str, Any]) -> Any:
    if value not in choices:
        raise DataError(f"{option} = {value!r} is not one of {', '.join(choices)}")
    return choices[value]


def _text(summary: dict[str, Any]) -> None:
    """Aligned text: the segment and model check through :func:`_emit`, then one line per message."""
    head = {
        k: v
        for k, v in summary.items()
        if k not in ("segment", "sessions", "model_check", "model_check_held_out", "documented_timeouts_s")
    }
    _emit(head, False)
    for kind, rows in (("in-sample", summary["model_check"]), ("held-out", summary["model_check_held_out"])):
        for row in rows:
            sys.stdout.write(
                f"model check, {kind}: {row['session']:<18} measured {row['measured_total_s']:.3f} s, predicted "
                f"{row['predicted_total_s']:.3f} s ({row['error_pct']:+.1f} %)\n"
            )
    if summary["sessions"] and not summary["model_check_held_out"]:
        sys.stdout.write("model check, held-out: needs two sessions of a kind (--repeat 2)\n")
    for s in summary["sessions"]:
        sys.stdout.write(
            f"\n{s['protocol']} {'TLS ' + s['tls_version'] + ' ' + s['cipher'] if s['tls'] else '(no TLS)'}: "
            f"{s['n_messages']} messages in {s['total_s']:.3f} s (SDP {1e3 * s['sdp_s']:.1f} ms, TLS context "
            f"{1e3 * s['tls_context_s']:.1f} ms, connect {1e3 * s['connect_s']:.1f} ms, RTT probe "
            f"{1e3 * s['rtt_probe_s']:.3f} ms, load average {format_value('load', s['load_avg_1min'])})\n"
        )
        if not s["completed"]:
            sys.stdout.write(f"  ended early (a measured failure): {s['failure']}\n")
        sys.stdout.write(f"  {'message':<32}{'bytes':>7}{'EV [ms]':>9}{'SECC [ms]':>11}{'round trip [ms]':>17}\n")
        for m in s["messages"]:
            sys.stdout.write(
                f"  {m['name']:<32}{m['req_bytes']:>7}{m['ev_before_ms']:>9.1f}{m['secc_processing_ms']:>11.1f}"
                f"{m['round_trip_ms']:>17.1f}\n"
            )
    if not summary["sessions"]:
        sys.stdout.write("documented timeouts [s] (ISO 15118-2 Table 109; ISO 15118-20):\n")
        _emit(summary["documented_timeouts_s"], False)


@cyber_app.command("iso15118")
def cyber_iso15118(
    measure: Annotated[
        bool,
        typer.Option(
            "--measure",
            help="Run real sessions of the iso15118 stack (SECC and EVCC in two network namespaces; root and "
            "`make iso15118-venv` needed). Without it, or when it cannot run, the documented timeouts are used.",
        ),
    ] = False,
    protocol: Annotated[str, typer.Option("--protocol", help="ISO 15118 part to measure: 2, 20 or all.")] = "all",
    tls: Annotated[str, typer.Option("--tls", help="Sessions without TLS (off), with TLS (on) or both.")] = "both",
    loop: Annotated[int, typer.Option("--loop", help="ISO 15118-2 charge-loop exchanges per session, 2 to 1000.")] = 10,
    repeat: Annotated[
        int,
        typer.Option(
            "--repeat",
            help="Sessions per protocol and TLS mode, 1 to 10; 2 or more add the held-out model check (each "
            "session predicted from the others of its kind).",
        ),
    ] = 1,
    json_out: JsonOpt = False,
) -> None:
    """The charger -> EV segment of the command path: ISO 15118-2 and -20 sessions measured message by message
    (with and without TLS), the session-time model checked against them, and the segment for the path model."""
    from v2gtwin.cyber.iso15118_live import run_iso15118

    protocols = _pick("--protocol", protocol, _PROTOCOL_CHOICES)
    tls_modes = _pick("--tls", tls, _TLS_CHOICES)
    if not 2 <= loop <= 1000:
        raise DataError(f"--loop = {loop} is not in [2, 1000] (charge-loop exchanges per session)")
    if not 1 <= repeat <= 10:
        raise DataError(f"--repeat = {repeat} is not in [1, 10] (sessions per protocol and TLS mode)")
    show = measure and not json_out and sys.stderr.isatty()
    if show:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), TimeElapsedColumn(), transient=True
        ) as progress:
            task = progress.add_task("ISO 15118", total=len(protocols) * len(tls_modes) * repeat)

            def on_session(label: str, i: int, n: int) -> None:
                progress.update(task, completed=i, description=label)

            result = run_iso15118(True, protocols, tls_modes, loop, on_session=on_session, repeat=repeat)
    else:
        result = run_iso15118(measure, protocols, tls_modes, loop, repeat=repeat)
    summary = result.summary()
    if json_out:
        _emit(summary, True)
    else:
        _text(summary)
