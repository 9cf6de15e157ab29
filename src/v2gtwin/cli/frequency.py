"""`v2gtwin frequency`: droop, dynamics, AGC, reserve, demand response, cascade."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from v2gtwin.cli._common import (
    JsonOpt,
    ScenarioOpt,
    _emit,
    _fleet_baseline,
    app,
)

frequency_app = typer.Typer(
    help="Bulk-grid services: droop, dynamics, AGC / regulation, reserve, demand response, cascade.",
    no_args_is_help=True,
)
app.add_typer(frequency_app, name="frequency")

StepOpt = Annotated[
    float | None, typer.Option("--step-mw", min=-1e5, max=1e5, help="Load step [MW] (default: the scenario's).")
]


# Every command prints the dict of one v2gtwin.grid.bulk.summarize_* function: the same dict (same keys)
# as the study's results.json services.summary[<command name>].


@frequency_app.command("droop")
def frequency_droop(scenario: ScenarioOpt = None, step_mw: StepOpt = None, json_out: JsonOpt = False) -> None:
    """Settled frequency after a load step with the fleet on IEEE 1547 droop (closed form, saturation)."""
    from v2gtwin.grid.bulk import run_frequency_analysis, summarize_droop

    changes = {"frequency": {"step_mw": step_mw}} if step_mw is not None else {}
    scen, fleet, base = _fleet_baseline(scenario, changes)
    fa = run_frequency_analysis(fleet, base, scen.frequency, scen.time, scen.seed)
    _emit(summarize_droop(fa, scen.frequency.step_mw), json_out)


@frequency_app.command("dynamics")
def frequency_dynamics(scenario: ScenarioOpt = None, step_mw: StepOpt = None, json_out: JsonOpt = False) -> None:
    """Frequency trajectory after a load step: nadir (absolute and deviation), RoCoF (negative when the
    frequency falls), settling, with and without the fleet."""
    from v2gtwin.grid.bulk import run_frequency_analysis, summarize_dynamics

    changes = {"frequency": {"step_mw": step_mw}} if step_mw is not None else {}
    scen, fleet, base = _fleet_baseline(scenario, changes)
    fa = run_frequency_analysis(fleet, base, scen.frequency, scen.time, scen.seed)
    _emit(summarize_dynamics(fa, scen.frequency.step_mw), json_out)


@frequency_app.command("agc")
def frequency_agc(
    scenario: ScenarioOpt = None,
    signal: Annotated[
        Path | None,
        typer.Option("--signal", help="Regulation signal CSV 't_s,signal_pu' (default: synthetic RegD-like)."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Two-area AGC with and without the fleet, and the fleet following a regulation signal (PJM score); the
    fleet's response is delayed by the scenario's command path ([cyber], as in the study)."""
    from v2gtwin.cyber.path_study import run_path_study
    from v2gtwin.grid.agc import read_regulation_signal
    from v2gtwin.grid.bulk import run_agc_analysis, summarize_agc
    from v2gtwin.study_network import place_on_network

    scen, fleet, base = _fleet_baseline(scenario)
    fleet, limits = place_on_network(scen, fleet)
    sig = read_regulation_signal(signal) if signal is not None else None
    # The study's cyber_path step, the same seeded draws (its OCPP measurement is shown beside the path, never in
    # it: not needed here).
    delays = run_path_study(scen, ocpp_exchanges=0).samples_s
    ag = run_agc_analysis(fleet, base, scen.frequency, scen.time, scen.seed, signal=sig, limits=limits, delay_s=delays)
    _emit(summarize_agc(ag), json_out)


@frequency_app.command("reserve")
def frequency_reserve(scenario: ScenarioOpt = None, json_out: JsonOpt = False) -> None:
    """Contingency reserve the fleet can deliver within the lead time and sustain, over the day."""
    from v2gtwin.grid.bulk import run_reserve_analysis, summarize_reserve
    from v2gtwin.study_network import place_on_network

    scen, fleet, base = _fleet_baseline(scenario)
    fleet, limits = place_on_network(scen, fleet)
    out = summarize_reserve(run_reserve_analysis(fleet, base, scen.frequency, limits))
    _emit(out | _path_verdict(scen, "contingency reserve"), json_out)


@frequency_app.command("dr")
def frequency_dr(scenario: ScenarioOpt = None, json_out: JsonOpt = False) -> None:
    """The scenario's demand-response event: reduction, rebound, targets met."""
    from v2gtwin.grid.bulk import run_reserve_dr_analysis, summarize_dr
    from v2gtwin.study_network import place_on_network

    scen, fleet, base = _fleet_baseline(scenario)
    fleet, limits = place_on_network(scen, fleet)
    _, d = run_reserve_dr_analysis(fleet, base, scen.frequency, scen.time, limits)
    _emit(summarize_dr(d) | _path_verdict(scen, "demand response"), json_out)


def _path_verdict(scen: Any, service: str) -> dict[str, Any]:
    """As the study: the command path's verdict on ``service`` (marked not sold when it misses too often)."""
    from v2gtwin.cyber.path_study import run_path_study

    v = run_path_study(scen).verdict(service)
    if v is None:
        return {}
    return {"path": v | ({} if v["deliverable"] else {"note": "not deliverable over this path: not sold"})}


@frequency_app.command("cascade")
def frequency_cascade(scenario: ScenarioOpt = None, json_out: JsonOpt = False) -> None:
    """Under-frequency cascade with UFLS: every DER tripping at once, the fleet ramping down while legacy DERs
    trip at once, every DER ramping, randomised delays; and the fleet's share of the ramp's nadir gain."""
    from v2gtwin.grid.bulk import run_cascade_analysis, summarize_cascade

    scen, fleet, base = _fleet_baseline(scenario)
    res = run_cascade_analysis(fleet, base, scen.frequency, scen.time, scen.seed)
    _emit(summarize_cascade(res), json_out)
