"""`v2gtwin live`: the closed loop on a running central system (``v2gtwin live --server URL ...``), the replay of a
recorded run as a study (``live replay RUN``) and its HTML report (``live report RUN``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from v2gtwin.cli._common import JsonOpt, ScenarioOpt, _emit, app
from v2gtwin.errors import DataError, V2GTwinError
from v2gtwin.jsonout import dumps_strict

live_app = typer.Typer(
    help="The closed loop on live telemetry: run it against a central system's API, replay and report a run.",
    invoke_without_command=True,
)
app.add_typer(live_app, name="live")


def _read_token(path: Path) -> str:
    """The token in ``path`` (its first line, stripped); a one-line error naming --token-file otherwise."""
    try:
        text = path.read_text().strip().splitlines()
    except OSError as exc:
        raise V2GTwinError(f"--token-file {path}: cannot read ({exc.strerror or exc})") from None
    if not text or not text[0].strip():
        raise V2GTwinError(f"--token-file {path}: empty (put the token from 'v2gtwin csms token create' in it)")
    return text[0].strip()


@live_app.callback()
def live(
    ctx: typer.Context,
    server: Annotated[
        str | None, typer.Option("--server", help="The central system's API, http[s]://HOST:PORT.")
    ] = None,
    token_file: Annotated[
        Path | None, typer.Option("--token-file", help="File holding the API token (first line).")
    ] = None,
    scenario: ScenarioOpt = None,
    interval_s: Annotated[
        float, typer.Option("--interval-s", min=1.0, max=86_400.0, help="Time between cycles [s].")
    ] = 300.0,
    cycles: Annotated[
        int | None, typer.Option("--cycles", min=1, max=10_000_000, help="Cycles to run (default: until Ctrl-C).")
    ] = None,
    record: Annotated[
        Path | None, typer.Option("--record", help="Run folder to record every cycle in (a new folder).")
    ] = None,
    timeout_s: Annotated[
        float, typer.Option("--timeout-s", min=0.1, max=600.0, help="Stations' answer time-out per set-point [s].")
    ] = 10.0,
    cafile: Annotated[
        Path | None, typer.Option("--cafile", help="CA certificate of an https server (the central system's PKI).")
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            "--resume",
            help="A run folder recorded before: rebuild each need's first SoC and the energy stored since from it "
            "(a restarted loop keeps its targets).",
        ),
    ] = None,
    regulation: Annotated[
        bool,
        typer.Option(
            "--regulation",
            help="Between cycles, every 2 s, allocate a regulation signal across the live fleet and send it.",
        ),
    ] = False,
    threads: Annotated[
        int,
        typer.Option(
            "--threads",
            min=1,
            max=1024,
            help="Threads of the model side's numba kernels (default 1: on 2 shared cores one thread solved the "
            "schedule faster than two; capped at the machine's).",
        ),
    ] = 1,
    json_out: JsonOpt = False,
) -> None:
    """Every --interval-s: read who is plugged in (SoC, needs, departures) through the API, re-solve the
    scenario's schedule from now and send each station its next set-point; each cycle is printed (--json: one JSON
    line per cycle), and recorded with --record. Exit code 1 when any cycle failed (its ``error`` is in its line
    and record), 2 for bad input."""
    if ctx.invoked_subcommand is not None:
        return
    if server is None:
        raise V2GTwinError("--server: required (the central system's API, e.g. http://127.0.0.1:8080)")
    import numba

    from v2gtwin.cli._common import load_scenario_with
    from v2gtwin.cyber.api_client import ApiClient
    from v2gtwin.live import run_loop

    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]
    scen = load_scenario_with(scenario, {})
    token = _read_token(token_file) if token_file is not None else None
    client = ApiClient(server, token, timeout_s=max(10.0, timeout_s), cafile=str(cafile) if cafile else None)
    if record is not None and record.exists() and not record.is_dir():
        raise DataError(f"--record {record}: a file, not a folder; choose a new folder")
    if resume is not None:  # a bad --resume folder: one line before anything is sent
        from v2gtwin.live import read_run

        try:
            read_run(resume)
        except DataError as exc:
            raise DataError(f"--resume: {exc}") from None
    client.stations()  # unreachable server or bad token: one line, exit 2, before anything starts

    def show(rec: dict[str, Any]) -> None:
        plan = rec.get("plan") or {}
        acks = rec.get("results") or []
        line = {
            "cycle": rec["cycle"],
            "t_utc": rec["t_utc"],
            "n_evs": plan.get("n_evs"),
            "p_set_total_kw": plan.get("p_set_total_kw"),
            "n_acknowledged": sum(1 for a in acks if a.get("status") == "Accepted"),
            "solve_s": plan.get("solve_s"),
            "cycle_s": rec.get("cycle_s"),
            "error": rec.get("error"),
        }
        if json_out:  # one line per cycle (JSON lines): a stream a script can read as it comes
            sys.stdout.write(dumps_strict(line, indent=None) + "\n")
        else:
            _emit(line, False)
        sys.stdout.flush()

    records = run_loop(
        client,
        scen,
        interval_s=interval_s,
        cycles=cycles,
        record_dir=record,
        server=server,
        timeout_s=timeout_s,
        on_cycle=show,
        regulation=regulation,
        resume=resume,
    )
    failed = [r["cycle"] for r in records if r.get("error")]
    if failed:  # like `study`: the run finished, but not every cycle did its work
        sys.stderr.write(f"live: {len(failed)} of {len(records)} cycles failed (cycles {failed[:10]}); exit 1\n")
        raise typer.Exit(1)


RunArg = Annotated[Path, typer.Argument(help="A run folder recorded with 'v2gtwin live --record'.")]


@live_app.command("replay")
def replay(run: RunArg, json_out: JsonOpt = False) -> None:
    """Plan every recorded cycle again from its recorded inputs (the same models, as a study) and compare the
    set-points with those sent."""
    from v2gtwin.live import replay_run

    res = replay_run(run)
    out: dict[str, Any] = {
        "n_cycles": len(res.records),
        "n_replayed": sum(p is not None for p in res.plans),
        "max_setpoint_diff_kw": res.max_setpoint_diff_kw,
        "cycles": [p.summary() | {"cycle": k} for k, p in enumerate(res.plans) if p is not None],
    }
    if not json_out:
        out["cycles"] = [
            {k: c[k] for k in ("cycle", "n_evs", "p_set_total_kw", "cost_per_horizon", "solve_s")}
            for c in out["cycles"]
        ]
    _emit(out, json_out)


@live_app.command("report")
def report(
    run: RunArg,
    out: Annotated[Path | None, typer.Option("--out", help="Output folder (default: RUN/report).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """The run as an HTML report (planned vs delivered, deviations, latencies) and results.json."""
    from v2gtwin.live import read_regulation, read_run
    from v2gtwin.report.live import write_live_report

    meta, records = read_run(run)
    if not records:
        raise DataError(f"run folder {run}: no cycle recorded")
    paths = write_live_report(meta, records, out if out is not None else run / "report", read_regulation(run))
    _emit({k: str(v) for k, v in paths.items()}, json_out)
