"""`v2gtwin sweep`: the study over a grid of scenario values on dask.distributed (docs/sweep.md)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from v2gtwin.cli._common import JsonOpt, _emit, app
from v2gtwin.errors import ScenarioError

#: Failed scenarios listed in the text output (all are in the table and in --json).
MAX_FAILURES_SHOWN = 20


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[int, int, int], None]]:
    """A progress callback: a rich bar on a terminal's stderr; elsewhere a line on stderr at every tenth."""
    if enabled and sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(
            TextColumn("[bold]sweep"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[failed]} failed"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        ) as bar:
            task = bar.add_task("sweep", total=None, failed=0)

            def update(done: int, total: int, n_failed: int) -> None:
                bar.update(task, completed=done, total=total, failed=n_failed)

            yield update
        return
    last = [-1]

    def lines(done: int, total: int, n_failed: int) -> None:
        tenth = done * 10 // total if total else 10
        if enabled and done and (tenth > last[0] or done == total):
            last[0] = tenth
            sys.stderr.write(f"sweep: {done}/{total} scenarios done, {n_failed} failed\n")

    yield lines


@app.command()
def sweep(
    scenario: Annotated[Path, typer.Argument(help="Scenario TOML file the sweep starts from.")],
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            help="KEY=V1,V2,... a scenario key and its values (e.g. fleet.n_evs=1000,10000); repeat for a grid.",
        ),
    ] = None,
    target: Annotated[
        list[str] | None,
        typer.Option(
            "--target",
            "-t",
            help="Compute only this study step and what it needs (repeatable, or comma-separated: "
            "envelope,uncontrolled fills the fleet section); default: the whole study.",
        ),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for rows/ and sweep.parquet.")] = Path("sweep"),
    scheduler: Annotated[
        str | None, typer.Option("--scheduler", help="A running dask scheduler, tcp://HOST:PORT (default: local).")
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, help="Worker processes of the local cluster (default: cores).")
    ] = None,
    connect_timeout_s: Annotated[
        float, typer.Option("--connect-timeout-s", min=0.1, max=600.0, help="How long to try --scheduler [s].")
    ] = 5.0,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Run scenarios whose stored row failed again.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Run the study over every combination of the --param values; one row per scenario in OUT/sweep.parquet.

    Every scenario is validated before any work. A scenario that fails is a row with its error; a rerun skips
    the scenarios already done. Exit code 1 when a scenario failed.
    """
    from v2gtwin.scenario import load_scenario
    from v2gtwin.sweep import parse_param, plan_sweep

    if scheduler is not None and workers is not None:
        raise ScenarioError("--workers: sets the local cluster's size; it cannot be used with --scheduler")
    params = [parse_param(p) for p in param or []]
    base = load_scenario(scenario)
    plan = plan_sweep(base, params, target=",".join(target) if target else None, source=str(scenario))

    from v2gtwin.sweep_run import check_sweep_dir, open_client, read_done_rows, run_sweep

    check_sweep_dir(out)  # a bad --out fails before the cluster starts; nothing is written before it does
    if len(read_done_rows(plan, out, retry_failed)) == plan.n_unique:  # all stored: no cluster needed
        outcome = run_sweep(plan, out, None, cluster="none (every scenario was done)", retry_failed=retry_failed)
    else:
        with open_client(scheduler, workers, connect_timeout_s) as (client, cluster):
            if not json_out:
                sys.stderr.write(f"sweep: {len(plan.cases)} scenarios on {cluster}\n")
            with _progress(not json_out) as on_progress:
                outcome = run_sweep(
                    plan, out, client, cluster=cluster, retry_failed=retry_failed, on_progress=on_progress
                )
    summary = outcome.summary()
    if json_out:
        _emit(summary, True)
    else:
        _emit({k: v for k, v in summary.items() if k != "failures"}, False)
        failures = summary["failures"]
        for f in failures[:MAX_FAILURES_SHOWN]:
            sys.stdout.write(f"{f['status']} {f['scenario_id']}: {f['error']}\n")
        if len(failures) > MAX_FAILURES_SHOWN:
            sys.stdout.write(f"... and {len(failures) - MAX_FAILURES_SHOWN} more: see the table's error column\n")
    if not outcome.ok:
        raise typer.Exit(1)
