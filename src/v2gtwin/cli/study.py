"""`v2gtwin study`: the whole study on a scenario."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from v2gtwin.cli._common import (
    JsonOpt,
    ScenarioOpt,
    _print_json,
    app,
)


class ExportFormat(StrEnum):
    """File format of ``v2gtwin study --export`` (one file per table)."""

    parquet = "parquet"
    csv = "csv"


@app.command()
def study(
    scenario: ScenarioOpt = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for report.html and results.json.")] = Path("out"),
    json_out: JsonOpt = False,
    export: Annotated[
        ExportFormat | None,
        typer.Option(
            "--export",
            help="Also write every result table to OUT/tables/NAME.parquet or .csv (docs/tables.md).",
        ),
    ] = None,
) -> None:
    """Run the whole study on a scenario and write one HTML report and results.json."""
    from v2gtwin.report import prepare_out_dir, write_report
    from v2gtwin.scenario import load_scenario
    from v2gtwin.study import StudyChain

    scen = load_scenario(scenario)
    prepare_out_dir(out)  # a bad --out fails now, not after the study
    show_progress = not json_out and sys.stderr.isatty()
    if show_progress:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), TimeElapsedColumn(), transient=True
        ) as progress:
            task = progress.add_task("study", total=len(StudyChain.STEPS) + 1)

            def on_step(name: str, i: int, n: int) -> None:
                progress.update(task, completed=i, description=name.replace("_", " "))

            result = StudyChain(scen, on_step=on_step).run()
            progress.update(task, completed=len(StudyChain.STEPS), description="report")
            paths = write_report(result, out)
    else:
        result = StudyChain(scen).run()
        paths = write_report(result, out)
    if export is not None:
        from v2gtwin.tables.export import write_tables

        tables = write_tables(result.to_frames(), out / "tables", export.value)
        paths = dict(paths) | {f"table_{name}": p for name, p in tables.items()}
    if json_out:
        # results.json without the per-step series, through the same serializer as results.json.
        _print_json(result.to_dict(series=False) | {"files": {k: str(v) for k, v in paths.items()}})
    else:
        sys.stdout.write(f"report: {paths['report'].resolve()}\nresults: {paths['results'].resolve()}\n")
        if export is not None:
            sys.stdout.write(f"tables: {(out / 'tables').resolve()} ({len(tables)} {export.value} files)\n")
