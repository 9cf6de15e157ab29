"""`v2gtwin cyber tls`: the Plug & Charge TLS handshake time (round trips, transfer, cryptography per side) and,
with ``--measure``, real handshakes over loopback (Python's ssl and ``openssl s_server``) beside the model."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from v2gtwin.cli._common import JsonOpt, _print_json, format_number
from v2gtwin.cli.cyber import cyber_app


def _factor(text: str) -> float | str:
    """A processor factor from the command line: a number, or a preset's name (checked by the model)."""
    try:
        return float(text)
    except ValueError:
        return text


def _row(cells: list[str], widths: list[int]) -> str:
    return "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True)))


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join(_row(r, widths) for r in [header, *rows]) + "\n"


def _ms(value: float | None) -> str:
    return "-" if value is None else format_number(value * 1e3)


def _text(out: dict[str, Any]) -> str:
    rate = out["rate_bytes_per_s"]
    lines = [
        f"link: RTT {format_number(out['rtt_s'] * 1e3)} ms, rate "
        + ("unlimited" if rate is None else f"{format_number(rate)} bytes/s"),
        f"operation costs: {out['profiles'][0]['op_costs_source']}; stack overhead: {out['overhead']['source']}",
        "",
    ]
    header = [
        "profile",
        "TLS",
        "suite",
        "curve",
        "client/server",
        "RTTs",
        "t_rtt ms",
        "bytes c->s/s->c",
        "t_transfer ms",
        "crypto client ms",
        "crypto server ms",
        "overhead c/s ms",
        "t_handshake ms",
        "client done ms",
    ]
    rows = []
    for p in out["profiles"]:
        rows.append(
            [
                p["profile"],
                p["tls_version"] + (" mutual" if p["mutual"] else ""),
                p["cipher_suite"].removeprefix("TLS_"),
                p["curve"],
                f"{p['client_role']}/{p['server_role']}",
                format_number(p["n_round_trips"]),
                _ms(p["t_rtt_s"]),
                f"{p['bytes_client_to_server']:,}/{p['bytes_server_to_client']:,}",
                _ms(p["t_transfer_s"]),
                _ms(p["t_crypto_client_s"]),
                _ms(p["t_crypto_server_s"]),
                f"{_ms(p['t_overhead_client_s'])}/{_ms(p['t_overhead_server_s'])}",
                _ms(p["t_handshake_s"]),
                _ms(p["t_client_done_s"]),
            ]
        )
    text = "\n".join(lines) + _table(header, rows)
    if "validation" in out:
        vh = ["profile", "peer", "RTT ms", "rate bytes/s", "compared", "predicted ms", "median ms", "min ms", "error"]
        vr = [
            [
                r["profile"],
                r["peer"],
                format_number(r["rtt_s"] * 1e3),
                "unlimited" if r["rate_bytes_per_s"] is None else format_number(r["rate_bytes_per_s"]),
                r["compared"],
                _ms(r["predicted_s"]),
                _ms(r["measured_s"]),
                _ms(r["measured_min_s"]),
                f"{r['error'] * 100:+.1f} %",
            ]
            for r in out["validation"]
        ]
        text += "\nmeasured (median of n handshakes; error = predicted / median - 1):\n" + _table(vh, vr)
    return text


@contextmanager
def _progress_bar(total: int, show: bool) -> Iterator[Callable[[str], None]]:
    """A rich progress bar on stderr (a terminal only) over the measured points; yields ``step(description)``,
    called before each point."""
    if not (show and sys.stderr.isatty()):
        yield lambda _msg: None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TimeElapsedColumn(), transient=True) as progress:
        task = progress.add_task("handshakes", total=total)
        done = [-1]

        def step(msg: str) -> None:
            done[0] += 1
            progress.update(task, completed=done[0], description=msg)

        yield step


@cyber_app.command("tls")
def tls(
    profile: Annotated[
        list[str] | None,
        typer.Option("--profile", "-p", help="iso15118-2, iso15118-20, ocpp-sp2, ocpp-sp3 (repeat; default all)."),
    ] = None,
    rtt_ms: Annotated[float, typer.Option("--rtt-ms", help="Round-trip time of the link [ms], >= 0.")] = 0.0,
    rate_bytes_per_s: Annotated[
        float | None,
        typer.Option("--rate-bytes-per-s", help="Link rate per direction [bytes/s], > 0 (default: no limit)."),
    ] = None,
    cpu_ev: Annotated[
        str, typer.Option("--cpu-ev", help="EV processor: factor (time there / here) or a preset.")
    ] = "1",
    cpu_charger: Annotated[str, typer.Option("--cpu-charger", help="Charger processor: factor or preset.")] = "1",
    cpu_csms: Annotated[str, typer.Option("--cpu-csms", help="Central system processor: factor or preset.")] = "1",
    cipher_suite: Annotated[
        str | None, typer.Option("--cipher-suite", help="IANA name, e.g. TLS_AES_256_GCM_SHA384 (all profiles).")
    ] = None,
    curve: Annotated[str | None, typer.Option("--curve", help="P-256, P-384 or P-521 (all profiles).")] = None,
    chain_server: Annotated[
        int | None, typer.Option("--chain-server", help="Certificates the server sends (leaf + sub-CAs).")
    ] = None,
    chain_client: Annotated[
        int | None, typer.Option("--chain-client", help="Certificates the client sends when mutual.")
    ] = None,
    measure: Annotated[
        bool,
        typer.Option(
            "--measure",
            help="Measure operation costs and the stack's overhead now, run real handshakes over loopback "
            "(shaped by a proxy when the RTT or rate is set) and print them beside the prediction.",
        ),
    ] = False,
    n: Annotated[int, typer.Option("--n", help="Handshakes per measured point (median), >= 1.")] = 7,
    json_out: JsonOpt = False,
) -> None:
    """Plug & Charge TLS handshake time: round trips x RTT + bytes / rate + public-key operations per side x
    their cost on that side's processor + the TLS stack's fixed costs (docs/cyber.md, "TLS handshake")."""
    from v2gtwin.cyber.handshake import PROFILES, calc_tls_summary
    from v2gtwin.errors import DataError

    if n < 1:
        raise DataError(f"--n must be an integer >= 1 (got {n})")
    if not math.isfinite(rtt_ms) or rtt_ms < 0:
        raise DataError(f"--rtt-ms must be a finite number >= 0 ms (got {rtt_ms})")
    if rate_bytes_per_s is not None and (not math.isfinite(rate_bytes_per_s) or rate_bytes_per_s <= 0):
        raise DataError(
            f"--rate-bytes-per-s must be a finite number > 0 bytes/s, or left out for no limit (got {rate_bytes_per_s})"
        )
    from v2gtwin.cyber.handshake_profiles import cpu_factor

    for opt, text in (("--cpu-ev", cpu_ev), ("--cpu-charger", cpu_charger), ("--cpu-csms", cpu_csms)):
        cpu_factor(_factor(text), opt)  # errors name the option, not the model's argument
    for opt, count in (("--chain-server", chain_server), ("--chain-client", chain_client)):
        if count is not None and not 1 <= count <= 8:
            raise DataError(f"{opt} must be an integer in [1, 8] certificates (got {count})")
    names = tuple(profile) if profile else tuple(PROFILES)
    kwargs: dict[str, Any] = {
        "profiles": names,
        "cpu_factor_ev": _factor(cpu_ev),
        "cpu_factor_charger": _factor(cpu_charger),
        "cpu_factor_csms": _factor(cpu_csms),
        "cipher_suite": cipher_suite,
        "curve": curve,
        "n_chain_server": chain_server,
        "n_chain_client": chain_client,
    }
    rtt_s = rtt_ms / 1e3
    out = calc_tls_summary(rtt_s, rate_bytes_per_s, **kwargs)  # checks every input before anything is measured
    if measure:
        from v2gtwin.cyber import handshake_live as live
        from v2gtwin.cyber import handshake_measure as hm
        from v2gtwin.cyber.handshake import resolve_profile

        if not json_out and sys.stderr.isatty():
            sys.stderr.write("measuring operation costs and the TLS stack's overhead ...\n")
        costs = hm.measure_op_costs_s()
        overhead = hm.calibrate_overhead(costs)
        out = calc_tls_summary(
            rtt_s, rate_bytes_per_s, **kwargs, op_costs_s=costs, overhead=overhead, op_costs_source="measured now"
        )
        has_openssl = live.openssl_available()
        plan = []
        for name in names:
            prof = resolve_profile(
                name, cipher_suite=cipher_suite, curve=curve, n_chain_server=chain_server, n_chain_client=chain_client
            )
            peers: tuple[Any, ...] = ("python",)
            if has_openssl:
                s_time_ok = prof.tls_version == "1.2" and (not prof.mutual or prof.n_chain_client == 1)
                peers = ("python", "openssl", "s_time") if s_time_ok else ("python", "openssl")
            plan.append((prof, peers))
        rows: list[dict[str, Any]] = []
        with _progress_bar(sum(len(peers) for _, peers in plan), show=not json_out) as step:
            for prof, peers in plan:
                rows += live.run_validation(
                    (prof,),
                    ((rtt_s, rate_bytes_per_s),),
                    peers=peers,
                    n=n,
                    op_costs_s=costs,
                    overhead=overhead,
                    progress=step,
                )
        out["validation"] = rows
        if not has_openssl:
            out["validation_note"] = "openssl command not found: only Python's ssl was measured"
    if json_out:
        _print_json(out)
        return
    sys.stdout.write(_text(out))
