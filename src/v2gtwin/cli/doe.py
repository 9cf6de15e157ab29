"""`v2gtwin doe`: design of cell-ageing experiments in temperature chambers (split-plot run sheets), their
analysis (split-plot ANOVA, lack of fit of fade models) and the twin validation study (acceptance and power of
the lack-of-fit test over repeated simulated experiments)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from v2gtwin.cli._common import JsonOpt, _emit, _print_json, app, format_value
from v2gtwin.errors import ScenarioError

doe_app = typer.Typer(
    help="Design and analysis of battery validation experiments (split-plot designs, lack-of-fit tests).",
    no_args_is_help=True,
)
app.add_typer(doe_app, name="doe")

TempsOpt = Annotated[str, typer.Option("--temperatures-c", help="Chamber temperatures [°C], comma-separated.")]
DodOpt = Annotated[str, typer.Option("--dod", help="Depths of discharge [pu of capacity], comma-separated.")]
CrateOpt = Annotated[str, typer.Option("--c-rate", help="C-rates [1/h], comma-separated.")]
ChambersOpt = Annotated[
    int, typer.Option("--chambers", min=1, max=1000, help="Temperature chambers that run at the same time (1-1000).")
]
RepsOpt = Annotated[int, typer.Option("--replicates", min=2, max=100, help="Chamber-runs per temperature (2-100).")]
SeedOpt = Annotated[
    int,
    typer.Option("--seed", min=0, max=2**63 - 1, help="Seed of the randomisation (and of a simulated response), >= 0."),
]


def _levels(option: str, text: str) -> list[float]:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise ScenarioError(f"{option}: give comma-separated numbers, e.g. 25,35,45")
    try:
        return [float(p) for p in parts]
    except ValueError as exc:
        raise ScenarioError(f"{option}: {text!r} is not a comma-separated list of numbers") from exc


@doe_app.command("design")
def doe_design(
    temperatures_c: TempsOpt = "25,35,45",
    dod: DodOpt = "0.2,0.5,0.8",
    c_rate: CrateOpt = "0.5,1",
    chambers: ChambersOpt = 2,
    replicates: RepsOpt = 2,
    seed: SeedOpt = 1,
    cells_per_chamber: Annotated[
        int | None,
        typer.Option(
            "--cells-per-chamber",
            min=1,
            max=100_000,
            help="Cells one chamber holds (1-100000; checked against the design).",
        ),
    ] = None,
    max_rounds: Annotated[
        int | None,
        typer.Option(
            "--max-rounds", min=1, max=100_000, help="Rounds of chamber-runs the campaign may take (checked)."
        ),
    ] = None,
    simulate_noise: Annotated[
        float | None,
        typer.Option(
            "--simulate-noise",
            help="Fill q_loss_pct with a simulated experiment (Wang et al. 2011 law) with this relative noise [-].",
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the run sheet to this CSV file.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """A randomised split-plot run sheet: chamber temperature on whole plots (chamber-runs, in rounds of
    --chambers), every DoD x C-rate combination on the cells inside each chamber-run."""
    import numpy as np

    from v2gtwin.battery.doe import build_split_plot_design
    from v2gtwin.battery.twin_validation import simulate_experiment

    design = build_split_plot_design(
        _levels("--temperatures-c", temperatures_c),
        _levels("--dod", dod),
        _levels("--c-rate", c_rate),
        chambers,
        replicates,
        seed,
        cells_per_chamber=cells_per_chamber,
        max_rounds=max_rounds,
    )
    q = None
    notes: list[str] = []
    if simulate_noise is not None:
        # The response's own stream: the same seed with a fixed offset, so the design does not shift with it.
        q = simulate_experiment(design, simulate_noise, np.random.default_rng([seed, 1]))
        notes.append(
            f"q_loss_pct simulated: Wang et al. (2011) cycle-fade law, 500 cycles, relative noise {simulate_noise:g}"
        )
    text = design.to_csv(q)
    if out is not None:
        try:
            out.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise ScenarioError(f"--out: cannot write {str(out)!r}: {exc.strerror or exc}") from exc
    head: dict[str, Any] = {**design.summary(), "out": str(out) if out is not None else None, "notes": notes}
    if json_out:
        rows = design.rows()
        if q is not None:
            for row, value in zip(rows, q, strict=True):
                row["q_loss_pct"] = float(value)
        _print_json({**head, "runs": rows})
        return
    _emit(head, False)
    if out is None:
        sys.stdout.write("\n" + text)


def _print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    cells = [[format_value(c, r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    sys.stdout.write("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip() + "\n")
    for row in cells:
        sys.stdout.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() + "\n")


@doe_app.command("analyze")
def doe_analyze(
    file: Annotated[Path, typer.Argument(help="Run sheet with results (CSV, as `doe design` writes it).")],
    response: Annotated[str, typer.Option("--response", help="Column of the measured response.")] = "q_loss_pct",
    block: Annotated[
        str | None, typer.Option("--block", help="Column of blocks the whole plots were grouped in (optional).")
    ] = None,
    alpha: Annotated[float, typer.Option("--alpha", help="Level of the tests (0 < alpha < 1).")] = 0.05,
    json_out: JsonOpt = False,
) -> None:
    """Split-plot ANOVA (temperature against the whole-plot error, DoD, C-rate and interactions against the
    subplot error) and the lack-of-fit test of the Arrhenius and the linear-temperature fade models."""
    from v2gtwin.battery.doe import read_run_sheet
    from v2gtwin.battery.twin_validation import run_experiment_analysis

    columns = read_run_sheet(file, response)
    if block is not None and block not in columns:
        raise ScenarioError(f"--block: column {block!r} is not in {file.name!r}")
    result = run_experiment_analysis(columns, response, block=block, alpha=alpha).summary()
    out = {"file": str(file), **result}
    if json_out:
        _print_json(out)
        return
    head = {k: v for k, v in out.items() if k not in ("anova", "lack_of_fit", "notes")}
    _emit(head, False)
    sys.stdout.write("\nsplit-plot ANOVA of " + response + ":\n")
    _print_table(out["anova"]["rows"], ["source", "df", "ss", "ms", "f", "p", "error"])
    sys.stdout.write(f"\nlack of fit of ln({response}):\n")
    lof_rows = [{"model": name, **fit} for name, fit in out["lack_of_fit"].items()]
    _print_table(
        lof_rows, ["model", "df_lack_of_fit", "df_pure_error", "ss_lack_of_fit", "ss_pure_error", "f", "p", "rejected"]
    )
    for note in out["notes"]:
        sys.stdout.write(f"note: {note}\n")


@doe_app.command("validate")
def doe_validate(
    temperatures_c: TempsOpt = "25,35,45",
    dod: DodOpt = "0.2,0.5,0.8",
    c_rate: CrateOpt = "0.5,1",
    chambers: ChambersOpt = 2,
    replicates: RepsOpt = 2,
    seed: SeedOpt = 1,
    experiments: Annotated[int, typer.Option("--experiments", help="Simulated experiments (1 to 100,000).")] = 1000,
    noise: Annotated[float, typer.Option("--noise", help="Relative measurement noise sigma [-], (0, 1].")] = 0.03,
    alpha: Annotated[float, typer.Option("--alpha", help="Level of the lack-of-fit test (0 < alpha < 1).")] = 0.05,
    json_out: JsonOpt = False,
) -> None:
    """Twin validation: simulate the design's experiment many times (Wang et al. 2011 law + noise) and report
    how often the lack-of-fit test accepts the right (Arrhenius) model and rejects the linear-temperature one."""
    import numpy as np

    from v2gtwin.battery.doe import build_split_plot_design
    from v2gtwin.battery.twin_validation import run_twin_validation

    if not 1 <= experiments <= 100_000:
        raise ScenarioError(f"--experiments: must be in [1, 100000], got {experiments}")
    design = build_split_plot_design(
        _levels("--temperatures-c", temperatures_c),
        _levels("--dod", dod),
        _levels("--c-rate", c_rate),
        chambers,
        replicates,
        seed,
    )
    result = run_twin_validation(design, experiments, np.random.default_rng([seed, 2]), noise_rel=noise, alpha=alpha)
    out = {"temp_c": design.summary()["temp_c"], **result.summary()}
    _emit(out, json_out)
