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


@frequency_app.command("droop")
def frequency_droop(scenario: ScenarioOpt = None, step_mw: StepOpt = None, json_out: JsonOpt = False) -> None:
    """Settled frequency after a load step with the fleet on IEEE 1547 droop (closed form, saturation)."""
    from v2gtwin.grid.bulk import run_frequency_analysis

    changes = {"frequency": {"step_mw": step_mw}} if step_mw is not None else {}
    scen, fleet, base = _fleet_baseline(scenario, changes)
    fa = run_frequency_analysis(fleet, base, scen.frequency, scen.time, scen.seed)
    _emit(
        {
            "step_mw": scen.frequency.step_mw,
            "n_evs": fa.n_evs,
            "df_ss_hz": fa.steady.df_hz,
            "df_ss_without_fleet_hz": fa.steady_without_df_hz,
            "k_fleet_kw_per_hz": fa.steady.k_fleet_kw_per_hz,
            "fleet_response_kw": fa.steady.fleet_response_kw,
            "n_saturated": int(fa.steady.saturated.sum()),
        },
        json_out,
    )


@frequency_app.command("dynamics")
def frequency_dynamics(scenario: ScenarioOpt = None, step_mw: StepOpt = None, json_out: JsonOpt = False) -> None:
    """Frequency trajectory after a load step: nadir, RoCoF, settling, with and without the fleet."""
    from v2gtwin.grid.bulk import run_frequency_analysis

    changes = {"frequency": {"step_mw": step_mw}} if step_mw is not None else {}
    scen, fleet, base = _fleet_baseline(scenario, changes)
    fa = run_frequency_analysis(fleet, base, scen.frequency, scen.time, scen.seed)
    out = {
        "step_mw": scen.frequency.step_mw,
        "n_evs": fa.n_evs,
        "nadir_hz": fa.dynamics.nadir_hz,
        "nadir_t_s": fa.dynamics.nadir_t_s,
        "rocof_hz_per_s": fa.dynamics.rocof_hz_per_s,
        "settling_df_hz": fa.dynamics.settling_df_hz,
        "nadir_without_fleet_hz": fa.dynamics_without.nadir_hz,
        "settling_without_fleet_df_hz": fa.dynamics_without.settling_df_hz,
    }
    if json_out:
        out["t_s"] = fa.dynamics.t_s[::10].tolist()
        out["df_hz"] = fa.dynamics.df_hz[::10].tolist()
    _emit(out, json_out)


@frequency_app.command("agc")
def frequency_agc(
    scenario: ScenarioOpt = None,
    signal: Annotated[
        Path | None,
        typer.Option("--signal", help="Regulation signal CSV 't_s,signal_pu' (default: synthetic RegD-like)."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Two-area AGC with and without the fleet, and the fleet following a regulation signal (PJM score)."""
    from v2gtwin.grid.agc import read_regulation_signal
    from v2gtwin.grid.bulk import run_agc_analysis

    scen, fleet, base = _fleet_baseline(scenario)
    sig = read_regulation_signal(signal) if signal is not None else None
    ag = run_agc_analysis(fleet, base, scen.frequency, scen.time, scen.seed, signal=sig)
    _emit(
        {
            "restore_s": ag.agc.restore_s,
            "restore_without_fleet_s": ag.agc_without.restore_s,
            "fleet_range_kw": ag.fleet_range_kw,
            **{
                f"regulation_{k}": {
                    "capacity_kw": r.capacity_kw,
                    "score": r.score.composite,
                    "accuracy": r.score.accuracy,
                    "delay": r.score.delay,
                    "precision": r.score.precision,
                    "throughput_kwh": r.throughput_kwh,
                }
                for k, r in ag.regulation.items()
            },
        },
        json_out,
    )


@frequency_app.command("reserve")
def frequency_reserve(scenario: ScenarioOpt = None, json_out: JsonOpt = False) -> None:
    """Contingency reserve the fleet can deliver within the lead time and sustain, over the day."""
    from v2gtwin.grid.services import run_reserve

    scen, fleet, base = _fleet_baseline(scenario)
    f = scen.frequency
    r = run_reserve(fleet, base, lead_s=f.reserve_lead_min * 60, duration_s=f.reserve_duration_min * 60)
    out: dict[str, Any] = {
        "lead_s": r.lead_s,
        "duration_s": r.duration_s,
        "max_kw": float(r.reserve_kw.max()),
        "mean_kw": float(r.reserve_kw.mean()),
    }
    if json_out:
        out["reserve_kw"] = r.reserve_kw.tolist()
    _emit(out, json_out)


@frequency_app.command("dr")
def frequency_dr(scenario: ScenarioOpt = None, json_out: JsonOpt = False) -> None:
    """The scenario's demand-response event: reduction, rebound, targets met."""
    from v2gtwin.grid.bulk import run_reserve_dr_analysis

    scen, fleet, base = _fleet_baseline(scenario)
    _, d = run_reserve_dr_analysis(fleet, base, scen.frequency, scen.time)
    _emit(
        {
            "reduction_mean_kw": d.reduction_mean_kw,
            "peak_reduction_kw": d.peak_reduction_kw,
            "rebound_peak_kw": d.rebound_peak_kw,
            "rebound_baseline_kw": d.rebound_baseline_kw,
            "energy_shifted_kwh": d.energy_shifted_kwh,
            "n_unmet": d.n_unmet,
            "n_unmet_baseline": d.n_unmet_baseline,
        },
        json_out,
    )


@frequency_app.command("cascade")
def frequency_cascade(scenario: ScenarioOpt = None, json_out: JsonOpt = False) -> None:
    """Under-frequency cascade: simultaneous trips vs staggered ramp-down vs randomised delays, with UFLS."""
    from v2gtwin.grid.bulk import run_cascade_analysis

    scen, fleet, base = _fleet_baseline(scenario)
    res = run_cascade_analysis(fleet, base, scen.frequency, scen.time, scen.seed)
    _emit(
        {
            m: {
                "nadir_hz": c.nadir_hz,
                "nadir_t_s": c.nadir_t_s,
                "ufls_stages": [k + 1 for k in c.stages_acted],
                "load_shed_kw": c.load_shed_kw,
                "der_lost_kw": c.der_lost_kw,
                "tripped_kw": c.tripped_by_group,
            }
            for m, c in res.items()
        },
        json_out,
    )
