"""`v2gtwin study`: the whole study on a scenario."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from v2gtwin.cli._common import (
    JsonOpt,
    ScenarioOpt,
    _print_json,
    app,
)

if TYPE_CHECKING:
    from v2gtwin.study_result import StudyResult


class ExportFormat(StrEnum):
    """File format of ``v2gtwin study --export`` (one file per table)."""

    parquet = "parquet"
    csv = "csv"


@app.command()
def study(
    scenario: ScenarioOpt = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for report.html and results.json.")] = Path("out"),
    json_out: JsonOpt = False,
    target: Annotated[
        list[str] | None,
        typer.Option("--target", "-t", help="Run only the steps this step needs (repeatable; default: every step)."),
    ] = None,
    export: Annotated[
        ExportFormat | None,
        typer.Option(
            "--export",
            help="Also write every result table to OUT/tables/NAME.parquet or .csv (docs/tables.md).",
        ),
    ] = None,
) -> None:
    """Run the whole study on a scenario (or, with --target, the steps a result needs) and write one HTML report
    and results.json (also when a step fails: its sections say so, and the exit status is 1, or 2 when the step
    failed on bad input)."""
    from v2gtwin.report import prepare_out_dir, write_report
    from v2gtwin.scenario import load_scenario
    from v2gtwin.study import StudyChain
    from v2gtwin.study_graph import plan_steps

    scen = load_scenario(scenario)
    targets = target or None
    n_steps = len(plan_steps({s.name: s for s in StudyChain.STEP_TABLE}, StudyChain.STEPS, targets))  # checks them
    prepare_out_dir(out)  # a bad --out fails now, not after the study
    show_progress = not json_out and sys.stderr.isatty()
    if show_progress:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), TimeElapsedColumn(), transient=True
        ) as progress:
            task = progress.add_task("study", total=n_steps + 1)

            def on_step(name: str, i: int, n: int) -> None:
                progress.update(task, completed=i, description=name.replace("_", " "))

            chain = StudyChain(scen, on_step=on_step)
            result = chain.run(targets)
            progress.update(task, completed=n_steps, description="report")
            tables = _export(result, out, export)
            paths = write_report(result, out)
    else:
        chain = StudyChain(scen)
        result = chain.run(targets)
        tables = _export(result, out, export)
        paths = write_report(result, out)
    paths = dict(paths) | {f"table_{name}": p for name, p in tables.items()}
    if json_out:
        from v2gtwin.study_summary import summary_json

        # results.json without the per-step series, through the same serializer as results.json.
        _print_json(
            result.to_dict(series=False) | summary_json(result) | {"files": {k: str(v) for k, v in paths.items()}}
        )
    else:
        sys.stdout.write(f"report: {paths['report'].resolve()}\nresults: {paths['results'].resolve()}\n")
        if export is not None:
            sys.stdout.write(f"tables: {(out / 'tables').resolve()} ({len(tables)} {export.value} files)\n")
    if not result.ok:  # both files are written; the exit status says that something failed
        raise typer.Exit(_report_failures(result.failures, result.skipped, chain.errors))


def _report_failures(failures: dict[str, str], skipped: dict[str, str], errors: dict[str, BaseException]) -> int:
    """One stderr line per failed step, with the steps skipped because of it; the exit code: 2 when a step failed
    on bad input (a scenario value or an input file: :func:`v2gtwin.study_graph.is_bad_input`), else 1."""
    from v2gtwin.study_graph import is_bad_input

    for step, why in failures.items():
        # A skipped step's reason ends with the failed step at its root: "... needs feeder, which failed".
        after = [s for s, r in skipped.items() if r.endswith(f"needs {step}, which failed")]
        tail = f" (not run because of it: {', '.join(after)})" if after else ""
        sys.stderr.write(f"error: step {step} failed: {why}{tail}\n")
    return 2 if any(is_bad_input(e) for e in errors.values()) else 1


def _export(result: StudyResult, out: Path, export: ExportFormat | None) -> dict[str, Path]:
    """The result tables written to OUT/tables before the report and results.json, so that a failed export never
    leaves a complete-looking results.json behind (every table is checked before the first file is written)."""
    if export is None:
        return {}
    from v2gtwin.tables.export import write_tables

    return write_tables(result.to_frames(), out / "tables", export.value)
