"""`v2gtwin fleet`: fleet summary and the comparison with real ACN-Data sessions."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from v2gtwin.cli._common import (
    JsonOpt,
    ScenarioOpt,
    _emit,
    _print_json,
    app,
)
from v2gtwin.errors import V2GTwinError

fleet_app = typer.Typer(help="The EV fleet: summary, real-session comparison.", no_args_is_help=True)
app.add_typer(fleet_app, name="fleet")


@fleet_app.command("summary")
def fleet_summary(scenario: ScenarioOpt = None, json_out: JsonOpt = False) -> None:
    """Build the scenario's fleet, run uncontrolled charging and print summary statistics.

    The output is the fleet section of results.json without the per-step series (same keys).
    """
    from v2gtwin.fleet import calc_envelope, run_uncontrolled
    from v2gtwin.scenario import load_scenario
    from v2gtwin.study import build_fleet, build_fleet_section

    scen = load_scenario(scenario)
    fleet = build_fleet(scen)
    section = build_fleet_section(scen, fleet, calc_envelope(fleet), run_uncontrolled(fleet))
    _emit(section.to_dict(series=False), json_out, scen.time)


@fleet_app.command("compare-acn")
def fleet_compare_acn(
    site: Annotated[str, typer.Option(help="ACN-Data site: caltech, jpl or both.")] = "both",
    seed: Annotated[int, typer.Option(min=0, help="Seed of the synthetic draws.")] = 20261125,
    plot: Annotated[Path | None, typer.Option(help="Also write histograms to this PNG file.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Compare the synthetic workplace sessions with real ACN-Data sessions, out of sample (fitted on 2019,
    compared on 2020-2021) and in sample (needs v2gtwin[acn]). The --plot histograms are in sample."""
    import numpy as np

    from v2gtwin.acn import acn_samples, compare_acn, read_acn_sessions

    if plot is not None and not plot.parent.is_dir():
        raise V2GTwinError(f"--plot {plot}: folder {plot.parent} does not exist")
    sessions = read_acn_sessions(site)
    cmp = compare_acn(sessions, np.random.default_rng(seed))
    if plot is not None:
        from v2gtwin.report.figures import fig_acn_comparison

        try:
            fig_acn_comparison(*acn_samples(sessions, np.random.default_rng(seed))).savefig(
                plot, dpi=110, bbox_inches="tight"
            )
        except (OSError, ValueError) as exc:
            raise V2GTwinError(f"--plot {plot}: cannot write the figure ({exc})") from None
    if json_out:
        _print_json(cmp)
        return
    oos, ins = cmp["out_of_sample"], cmp["in_sample"]
    sys.stdout.write(
        f"out of sample: fitted on {oos['n_fit']} morning sessions ({oos['fit_period']}), compared with "
        f"{oos['n_real']} ({oos['test_period']}); synthetic: {oos['n_synthetic']}\n"
    )
    _write_comparison(oos)
    sys.stdout.write(
        f"in sample (the package's constants, fitted on all {ins['n_real']} morning sessions, {ins['period']}; "
        "for reference only):\n"
    )
    _write_comparison(ins)


def _write_comparison(cmp: dict[str, Any]) -> None:
    sys.stdout.write(f"{'quantity':<16} {'':<10} {'mean':>8} {'sd':>8} {'p10':>8} {'p50':>8} {'p90':>8}  KS\n")
    for name in ("arrival_clock_h", "duration_h", "energy_kwh"):
        for which in ("real", "synthetic"):
            s = cmp[name][which]
            ks = f"  {cmp[name]['ks_distance']:.3f}" if which == "real" else ""
            sys.stdout.write(
                f"{name if which == 'real' else '':<16} {which:<10} {s['mean']:8.2f} {s['sd']:8.2f} "
                f"{s['p10']:8.2f} {s['p50']:8.2f} {s['p90']:8.2f}{ks}\n"
            )
