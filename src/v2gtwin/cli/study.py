"""`v2gtwin study`: the whole study on a scenario."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from v2gtwin.cli._common import (
    JsonOpt,
    ScenarioOpt,
    _print_json,
    app,
)


@app.command()
def study(
    scenario: ScenarioOpt = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for report.html and results.json.")] = Path("out"),
    json_out: JsonOpt = False,
) -> None:
    """Run the whole study on a scenario and write one HTML report and results.json (also when a step fails:
    its sections say so, and the exit status is 1)."""
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
                progress.update(task, completed=i, total=n + 1, description=name.replace("_", " "))

            result = StudyChain(scen, on_step=on_step).run()
            progress.update(task, completed=len(StudyChain.STEPS), description="report")
            paths = write_report(result, out)
    else:
        result = StudyChain(scen).run()
        paths = write_report(result, out)
    if json_out:
        # results.json without the per-step series, through the same serializer as results.json.
        _print_json(result.to_dict(series=False) | {"files": {k: str(v) for k, v in paths.items()}})
    else:
        sys.stdout.write(f"report: {paths['report'].resolve()}\nresults: {paths['results'].resolve()}\n")
    if not result.ok:  # both files are written; the exit status says that something failed
        for step, why in result.failures.items():
            sys.stderr.write(f"error: step {step} failed: {why}\n")
        if result.skipped:
            sys.stderr.write(f"skipped (needs a failed step): {', '.join(result.skipped)}\n")
        raise typer.Exit(1)
