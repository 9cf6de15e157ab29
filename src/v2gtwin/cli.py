"""Command-line interface (typer). Every command has ``--json``; bad input gives one line and exit code 2.

``run()`` is the console entry point; ``main(argv)`` returns the exit code (used by the tests).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError

from v2gtwin import __version__
from v2gtwin.errors import V2GTwinError

logger = logging.getLogger(__name__)

app = typer.Typer(
    name="v2gtwin",
    help="Digital twin of a V2G / demand-response aggregator and the grid it serves.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
scenario_app = typer.Typer(help="Show, validate and describe scenario files.", no_args_is_help=True)
fleet_app = typer.Typer(help="The EV fleet: summary, real-session comparison.", no_args_is_help=True)
feeder_app = typer.Typer(
    help="Distribution feeder: power flow, hosting capacity, losses, volt-var.", no_args_is_help=True
)
app.add_typer(scenario_app, name="scenario")
app.add_typer(fleet_app, name="fleet")
app.add_typer(feeder_app, name="feeder")
frequency_app = typer.Typer(
    help="Bulk-grid services: droop, dynamics, AGC / regulation, reserve, demand response, cascade.",
    no_args_is_help=True,
)
app.add_typer(frequency_app, name="frequency")
market_app = typer.Typer(help="Markets: TOU vs RTP welfare, Stackelberg aggregator pricing.", no_args_is_help=True)
app.add_typer(market_app, name="market")
csms_app = typer.Typer(help="The OCPP 2.0.1 central system (work in progress: serve).", no_args_is_help=True)
app.add_typer(csms_app, name="csms")

ScenarioOpt = Annotated[
    Path | None,
    typer.Option("--scenario", "-s", help="Scenario TOML file (default: the built-in default scenario)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=1, default=float) + "\n")


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logging.")] = False,
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if version:
        sys.stdout.write(f"v2gtwin {__version__}\n")
        raise typer.Exit(0)
    if ctx.invoked_subcommand is None:
        sys.stdout.write(ctx.get_help() + "\n")
        raise typer.Exit(0)
    if debug:
        logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s: %(message)s")


# --- study ------------------------------------------------------------------------------------------------
@app.command()
def study(
    scenario: ScenarioOpt = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for report.html and results.json.")] = Path("out"),
    json_out: JsonOpt = False,
) -> None:
    """Run the whole study on a scenario and write one HTML report and results.json."""
    from v2gtwin.report import write_report
    from v2gtwin.scenario import load_scenario
    from v2gtwin.study import StudyChain

    scen = load_scenario(scenario)
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
    if json_out:
        _print_json(result.to_dict(series=False) | {"files": {k: str(v) for k, v in paths.items()}})
    else:
        sys.stdout.write(f"report: {paths['report'].resolve()}\nresults: {paths['results'].resolve()}\n")


# --- scenario ---------------------------------------------------------------------------------------------
@scenario_app.command("show")
def scenario_show(scenario: ScenarioOpt = None, json_out: JsonOpt = False) -> None:
    """Print a scenario (default: the built-in one) as TOML, or as JSON with --json."""
    from v2gtwin.scenario import load_scenario, scenario_to_toml

    scen = load_scenario(scenario)
    if json_out:
        _print_json(scen.model_dump(mode="json"))
    else:
        sys.stdout.write(scenario_to_toml(scen))


@scenario_app.command("validate")
def scenario_validate(
    file: Annotated[Path, typer.Argument(help="Scenario TOML file.")], json_out: JsonOpt = False
) -> None:
    """Check a scenario file; prints 'ok' or one line naming the bad field (exit code 2)."""
    from v2gtwin.scenario import load_scenario

    scen = load_scenario(file)
    if json_out:
        _print_json({"file": str(file), "valid": True, "name": scen.name})
    else:
        sys.stdout.write(f"{file}: ok ({scen.fleet.n_evs} EVs, {scen.time.n_steps} steps)\n")


@scenario_app.command("schema")
def scenario_schema_cmd(json_out: JsonOpt = False) -> None:
    """Print the JSON schema of scenario files (always JSON)."""
    from v2gtwin.scenario import scenario_schema

    _print_json(scenario_schema())


# --- fleet ------------------------------------------------------------------------------------------------
@fleet_app.command("summary")
def fleet_summary(scenario: ScenarioOpt = None, json_out: JsonOpt = False) -> None:
    """Build the scenario's fleet, run uncontrolled charging and print summary statistics."""
    from v2gtwin.fleet import calc_envelope, run_uncontrolled, summarize_fleet
    from v2gtwin.scenario import load_scenario
    from v2gtwin.study import build_fleet

    scen = load_scenario(scenario)
    fleet = build_fleet(scen)
    summary = summarize_fleet(fleet, run_uncontrolled(fleet)) | {
        "n_infeasible": float(calc_envelope(fleet).n_infeasible)
    }
    if json_out:
        _print_json(summary)
    else:
        width = max(len(k) for k in summary)
        for key, value in summary.items():
            sys.stdout.write(f"{key:<{width}}  {value:,.3f}\n")


@fleet_app.command("compare-acn")
def fleet_compare_acn(
    site: Annotated[str, typer.Option(help="ACN-Data site: caltech, jpl or both.")] = "both",
    seed: Annotated[int, typer.Option(min=0, help="Seed of the synthetic draws.")] = 20261125,
    plot: Annotated[Path | None, typer.Option(help="Also write histograms to this PNG file.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Compare the synthetic workplace sessions with real ACN-Data sessions (needs v2gtwin[acn])."""
    import numpy as np

    from v2gtwin.acn import acn_samples, compare_acn, read_acn_sessions

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
    sys.stdout.write(
        f"real morning sessions: {cmp['n_real']} of {cmp['n_real_all']}; synthetic: {cmp['n_synthetic']}\n"
    )
    sys.stdout.write(f"{'quantity':<16} {'':<10} {'mean':>8} {'sd':>8} {'p10':>8} {'p50':>8} {'p90':>8}  KS\n")
    for name in ("arrival_clock_h", "duration_h", "energy_kwh"):
        for which in ("real", "synthetic"):
            s = cmp[name][which]
            ks = f"  {cmp[name]['ks_distance']:.3f}" if which == "real" else ""
            sys.stdout.write(
                f"{name if which == 'real' else '':<16} {which:<10} {s['mean']:8.2f} {s['sd']:8.2f} "
                f"{s['p10']:8.2f} {s['p50']:8.2f} {s['p90']:8.2f}{ks}\n"
            )


# --- feeder -----------------------------------------------------------------------------------------------
LoadScaleOpt = Annotated[
    float,
    typer.Option("--load-scale", min=0.0, max=5.0, help="Multiple of the feeder's nominal loads (1 = as published)."),
]


def _scenario_feeder(scenario: Path | None):  # type: ignore[no-untyped-def]
    from v2gtwin.grid.analysis import build_feeder
    from v2gtwin.scenario import load_scenario

    scen = load_scenario(scenario)
    return scen, build_feeder(scen.feeder, scen.seed)


@feeder_app.command("powerflow")
def feeder_powerflow(
    scenario: ScenarioOpt = None,
    method: Annotated[str, typer.Option(help="exact (backward/forward sweep) or lindistflow.")] = "exact",
    load_scale: LoadScaleOpt = 1.0,
    json_out: JsonOpt = False,
) -> None:
    """Solve the feeder at its nominal loads x --load-scale; prints losses and the lowest voltage."""
    import numpy as np

    from v2gtwin.grid.feeder import run_powerflow

    if method not in ("exact", "lindistflow"):
        raise V2GTwinError(f"--method: must be exact or lindistflow, got {method!r}")
    _, feeder = _scenario_feeder(scenario)
    res = run_powerflow(
        feeder,
        feeder.p_load_kw * load_scale,
        feeder.q_load_kvar * load_scale,
        method=method,  # type: ignore[arg-type]
    )
    out = res.summary(feeder) | {
        "load_scale": load_scale,
        "v_pu": dict(zip(map(str, feeder.bus_label.tolist()), np.round(res.v_pu[0], 8).tolist(), strict=True)),
    }
    if json_out:
        _print_json(out)
        return
    sys.stdout.write(
        f"feeder {feeder.name} ({feeder.n_bus} buses), {method}, load x {load_scale:g}\n"
        f"losses     {out['losses_kw']:.3f} kW\n"
        f"v_min      {out['v_min_pu']:.5f} pu at bus {out['v_min_bus']}\n"
        f"source     {res.p_source_kw[0]:.3f} kW, {res.q_source_kvar[0]:.3f} kvar\n"
    )


@feeder_app.command("hosting")
def feeder_hosting(
    scenario: ScenarioOpt = None,
    load_scale: LoadScaleOpt = 0.5,
    v_min: Annotated[float, typer.Option("--v-min", min=0.5, max=1.0, help="Lowest allowed voltage [pu].")] = 0.95,
    voltvar: Annotated[str, typer.Option(help="Volt-var on the EV inverter: none, A or B.")] = "none",
    json_out: JsonOpt = False,
) -> None:
    """EV hosting capacity of every bus at nominal loads x --load-scale (exact AC, binding constraint)."""
    from v2gtwin.grid.hosting import run_node_hosting

    if voltvar not in ("none", "A", "B"):
        raise V2GTwinError(f"--voltvar: must be none, A or B, got {voltvar!r}")
    scen, feeder = _scenario_feeder(scenario)
    res = run_node_hosting(
        feeder,
        feeder.p_load_kw * load_scale,
        feeder.q_load_kvar * load_scale,
        v_min_pu=v_min,
        voltvar=None if voltvar == "none" else voltvar,
        s_over_p=scen.feeder.s_over_p,
    )
    frame = res.to_frame()
    if json_out:
        _print_json(
            {
                "feeder": feeder.name,
                "load_scale": load_scale,
                "v_min_pu": v_min,
                "voltvar": voltvar,
                "nodes": frame.to_dict(orient="records"),
            }
        )
        return
    sys.stdout.write(frame.to_string(index=False, float_format=lambda v: f"{v:,.2f}") + "\n")


@feeder_app.command("losses")
def feeder_losses(
    scenario: ScenarioOpt = None,
    load_scale: LoadScaleOpt = 1.0,
    json_out: JsonOpt = False,
) -> None:
    """Loss sensitivity dP_loss/dP of every bus at nominal loads x --load-scale, and the scenario's day
    charged four ways (uniform, random, lowest-sensitivity first, least losses)."""
    from v2gtwin.grid.losses import calc_loss_sensitivity
    from v2gtwin.study import StudyChain

    scen, feeder = _scenario_feeder(scenario)
    sens = calc_loss_sensitivity(feeder, feeder.p_load_kw * load_scale, feeder.q_load_kvar * load_scale)
    chain = StudyChain(scen)
    for step in ("build_fleet", "envelope", "uncontrolled", "feeder", "losses"):
        getattr(chain, step)()
    assert chain.dispatch_ is not None
    out = {
        "feeder": feeder.name,
        "load_scale": load_scale,
        "p_loss_kw": sens.p_loss_kw,
        "sensitivity_kw_per_kw": dict(zip(map(str, feeder.bus_label.tolist()), sens.s_p.tolist(), strict=True)),
        "dispatch": chain.dispatch_.to_dict(),
    }
    if json_out:
        _print_json(out)
        return
    sys.stdout.write(f"losses at load x {load_scale:g}: {sens.p_loss_kw:.3f} kW\nbus  dP_loss/dP [kW/kW]\n")
    for b, v in out["sensitivity_kw_per_kw"].items():
        sys.stdout.write(f"{b:>3}  {v:.5f}\n")
    sys.stdout.write("\npolicy         losses [kWh]  due to EVs [kWh]\n")
    for pol, d in out["dispatch"].items():
        sys.stdout.write(f"{pol:<14} {d['losses_kwh']:12.2f}  {d['losses_due_to_evs_kwh']:16.2f}\n")


@feeder_app.command("voltvar")
def feeder_voltvar(
    scenario: ScenarioOpt = None,
    curve: Annotated[str, typer.Option(help="IEEE 1547-2018 default curve: A or B.")] = "B",
    json_out: JsonOpt = False,
) -> None:
    """The scenario's day on the feeder with and without volt-var on the EV inverters."""
    from v2gtwin.study import StudyChain

    if curve not in ("A", "B"):
        raise V2GTwinError(f"--curve: must be A or B, got {curve!r}")
    scen = load_scenario_with(scenario, {"feeder": {"voltvar_curve": curve}})
    chain = StudyChain(scen)
    for step in ("build_fleet", "envelope", "uncontrolled", "feeder"):
        getattr(chain, step)()
    ts = chain.feeder_ts
    assert ts is not None
    out = {
        "curve": curve,
        "priority": scen.feeder.voltvar_priority,
        "v_min_without_pu": float(ts.v_min_fleet_pu.min()),
        "v_min_with_pu": float(ts.v_min_voltvar_pu.min()),
        "steps_below_limit_without": int((ts.v_min_fleet_pu < scen.feeder.v_min_pu).sum()),
        "steps_below_limit_with": int((ts.v_min_voltvar_pu < scen.feeder.v_min_pu).sum()),
        "q_injected_max_kvar": float(ts.q_voltvar_kvar.max()),
        "iterations": ts.voltvar_iterations,
    }
    if json_out:
        _print_json(out)
        return
    for k, v in out.items():
        sys.stdout.write(f"{k:<28} {v}\n")


# --- frequency --------------------------------------------------------------------------------------------
StepOpt = Annotated[
    float | None, typer.Option("--step-mw", min=-1e5, max=1e5, help="Load step [MW] (default: the scenario's).")
]


def _fleet_baseline(scenario: Path | None, changes: dict[str, dict[str, Any]] | None = None):  # type: ignore[no-untyped-def]
    from v2gtwin.fleet import run_uncontrolled
    from v2gtwin.study import build_fleet

    scen = load_scenario_with(scenario, changes or {})
    fleet = build_fleet(scen)
    return scen, fleet, run_uncontrolled(fleet)


def _emit(out: dict[str, Any], json_out: bool) -> None:
    if json_out:
        _print_json(out)
        return
    for k, v in out.items():
        if isinstance(v, dict):
            sys.stdout.write(f"{k}:\n")
            for k2, v2 in v.items():
                sys.stdout.write(f"  {k2:<30} {v2}\n")
        else:
            sys.stdout.write(f"{k:<32} {v}\n")


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


# --- markets and schedules -------------------------------------------------------------------------------
@market_app.command("compare")
def market_compare(scenario: ScenarioOpt = None, json_out: JsonOpt = False) -> None:
    """TOU against RTP on the scenario's day: surpluses, welfare and the deadweight loss of TOU."""
    from v2gtwin.markets.analysis import run_market_analysis

    scen, fleet, base = _fleet_baseline(scenario)
    m = run_market_analysis(fleet, base, scen.markets, scen.time)
    out = {"rtp": m["rtp"].to_dict(), "tou": m["tou"].to_dict(), "deadweight_loss": m["deadweight_loss"]}
    if not json_out:
        for k in ("rtp", "tou"):
            out[k] = {kk: vv for kk, vv in out[k].items() if not isinstance(vv, list)}
    _emit(out, json_out)


@market_app.command("stackelberg")
def market_stackelberg(scenario: ScenarioOpt = None, json_out: JsonOpt = False) -> None:
    """The aggregator's profit-maximising charging price for the scenario's EVs (exact breakpoint search)."""
    from v2gtwin.markets.analysis import run_stackelberg_analysis

    scen, fleet, _ = _fleet_baseline(scenario)
    r = run_stackelberg_analysis(fleet, scen.markets, scen.seed)
    _emit(
        {
            "price_per_kwh": r.price,
            "profit": r.profit,
            "energy_kwh": r.total,
            "cap_binding": r.cap_binding,
            "n_followers": int(r.x.size),
        },
        json_out,
    )


@app.command("bid")
def bid(
    scenario: ScenarioOpt = None,
    price: Annotated[float | None, typer.Option("--price", min=0.0, help="Payment per MW delivered.")] = None,
    penalty: Annotated[float | None, typer.Option("--penalty", min=0.0, help="Penalty per MW short.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Newsvendor regulation bid b* = F^-1(p/(p+lambda)) on the fleet's simulated availability."""
    from v2gtwin.markets.analysis import run_bid_analysis

    changes: dict[str, Any] = {}
    if price is not None:
        changes["reg_price_per_mw"] = price
    if penalty is not None:
        changes["reg_penalty_per_mw"] = penalty
    scen = load_scenario_with(scenario, {"markets": changes} if changes else {})
    b = run_bid_analysis(scen)
    _emit(
        {
            "bid_kw": b.empirical.bid_kw,
            "bid_normal_fit_kw": b.normal.bid_kw,
            "fractile": b.empirical.fractile,
            "expected_profit": b.empirical.expected_profit,
            "availability_mean_kw": float(b.samples_kw.mean()),
            "availability_sd_kw": float(b.samples_kw.std(ddof=1)),
            "n_days": int(b.samples_kw.size),
        },
        json_out,
    )


@app.command("schedule")
def schedule(
    scenario: ScenarioOpt = None,
    robust: Annotated[bool, typer.Option("--robust", help="Also the robust SOCP for each radius Omega.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Day-ahead cost-optimal schedule of every EV (an LP; markets.schedule_solver) and the virtual-battery version."""
    from v2gtwin.markets.analysis import run_robust_analysis, run_schedule_analysis

    scen, fleet, base = _fleet_baseline(scenario)
    sc = run_schedule_analysis(fleet, base, scen.markets, scen.time, scen.seed)
    out: dict[str, Any] = sc.summary()
    if robust:
        # The site is the feeder with the EVs charging on it, as in the study.
        from v2gtwin.study import StudyChain

        chain = StudyChain(scen)
        for step in ("build_fleet", "envelope", "uncontrolled", "feeder"):
            getattr(chain, step)()
        assert chain.feeder_fleet is not None and chain.base_load_ is not None
        site_load = chain.base_load_[0].sum(axis=1)
        out["robust"] = run_robust_analysis(chain.feeder_fleet, site_load, scen.markets, scen.time, scen.seed).summary()
    if json_out:
        out["p_total_kw"] = sc.individual.p_total_kw.tolist()
    _emit(out, json_out)


# --- central system ---------------------------------------------------------------------------------------
@csms_app.command("serve")
def csms_serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port (0: any free port).")] = 9000,
    db: Annotated[str, typer.Option(help="SQLAlchemy database URL.")] = "sqlite:///csms.sqlite",
    profile: Annotated[
        int, typer.Option(min=0, max=3, help="Security profile: 0 none (development), 1 Basic, 2 TLS + Basic, 3 mTLS.")
    ] = 0,
    pki: Annotated[Path | None, typer.Option(help="PKI folder from 'csms pki init' (profiles 2 and 3).")] = None,
    max_frame_kib: Annotated[
        int, typer.Option(min=1, max=16_384, help="Largest accepted frame [KiB]; larger ones close the connection.")
    ] = 64,
    status_every: Annotated[
        float,
        typer.Option(min=0.0, max=86_400.0, help="Seconds between status lines on stderr (0: none)."),
    ] = 60.0,
) -> None:
    """Run the OCPP 2.0.1 / 2.1 central system until interrupted (stations connect at
    ws[s]://HOST:PORT/<station_id>). Prints the address it listens on (the actual port with --port 0), then a
    status line every --status-every seconds: stations connected, meter values committed and their rate."""
    import asyncio

    from sqlalchemy.exc import ArgumentError, OperationalError

    from v2gtwin.cyber.csms.server import Csms
    from v2gtwin.cyber.csms.store import Store

    try:
        store = Store(db)
    except (ArgumentError, OperationalError) as exc:
        raise V2GTwinError(f"--db {db}: cannot open the database ({exc.__class__.__name__})") from None
    certfile = keyfile = cafile = None
    if profile >= 2:
        if pki is None or not (pki / "server.pem").is_file():
            raise V2GTwinError(f"--pki: profile {profile} needs a PKI folder with server.pem (run 'csms pki')")
        certfile, keyfile, cafile = str(pki / "server.pem"), str(pki / "server.key"), str(pki / "ca.pem")
    csms = Csms(
        store,
        host=host,
        port=port,
        max_message_bytes=max_frame_kib * 1024,
        security_profile=profile,
        certfile=certfile,
        keyfile=keyfile,
        cafile=cafile,
    )
    scheme = "wss" if profile >= 2 else "ws"

    async def serve() -> None:
        async with csms:
            sys.stderr.write(
                f"csms: {scheme}://{host}:{csms.port}/<station_id> (ocpp2.1 / ocpp2.0.1, security profile "
                f"{profile}), db {db}\n"
            )
            sys.stderr.flush()
            if status_every <= 0:
                await asyncio.Future()
            loop = asyncio.get_running_loop()
            t_last, n_last = loop.time(), csms.committed_values
            while True:
                await asyncio.sleep(status_every)
                now, n = loop.time(), csms.committed_values
                sys.stderr.write(
                    f"csms: {len(csms.stations)} stations connected, {n} meter values committed "
                    f"({(n - n_last) / (now - t_last):.0f}/s over the last {now - t_last:.3g} s)\n"
                )
                sys.stderr.flush()
                t_last, n_last = now, n

    try:
        asyncio.run(serve())
    except OSError as exc:
        raise V2GTwinError(f"--port {port}: cannot listen on {host} ({exc.strerror})") from None


@csms_app.command("simulate")
def csms_simulate(
    url: Annotated[str, typer.Option(help="Central system URL (ws://HOST:PORT).")] = "ws://127.0.0.1:9000",
    stations: Annotated[int, typer.Option(min=1, max=100_000, help="Simulated stations.")] = 10,
    reports: Annotated[int, typer.Option(min=0, max=100_000, help="MeterValues each station sends.")] = 3,
    interval: Annotated[float, typer.Option(min=0.0, max=3600.0, help="Seconds between reports.")] = 1.0,
    hold: Annotated[float, typer.Option(min=0.0, max=86_400.0, help="Seconds to stay connected afterwards.")] = 0.0,
    reconnects: Annotated[
        int, typer.Option(min=0, max=100, help="Reconnection attempts per station (exponential back-off).")
    ] = 3,
    scenario: ScenarioOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Run simulated stations (security profile 0 servers), each with an EV drawn from the scenario's fleet
    model: they boot, declare their charging needs (V2X EVs on OCPP 2.1), report, and obey charging profiles."""
    import asyncio

    import numpy as np
    from websockets.exceptions import WebSocketException

    from v2gtwin.cyber.csms.simulator import run_fleet
    from v2gtwin.cyber.fleet_link import fleet_to_sim_evs
    from v2gtwin.fleet import synthesize_fleet
    from v2gtwin.scenario import load_scenario

    if not url.startswith(("ws://", "wss://")):
        raise V2GTwinError(f"--url {url!r}: must start with ws:// or wss://")
    scen = load_scenario(scenario)
    spec = scen.fleet.model_copy(update={"n_evs": stations, "source": "synthetic"})
    ev_fleet = synthesize_fleet(spec, scen.time, 33, np.random.default_rng([scen.seed, 71]))
    evs = fleet_to_sim_evs(ev_fleet)
    try:
        fleet = asyncio.run(
            run_fleet(
                url,
                stations,
                evs=evs,
                reports=reports,
                interval_s=interval,
                hold_s=hold,
                max_attempts=reconnects + 1,
                freeze_gc=stations >= 1000,  # this process is the simulator's alone
            )
        )
    except (OSError, WebSocketException, TimeoutError) as exc:
        raise V2GTwinError(f"--url {url}: cannot connect ({getattr(exc, 'strerror', None) or exc})") from None
    _emit(
        {
            "stations": len(fleet),
            "v2x_stations": sum(s.ev.v2x for s in fleet),
            "reports_each": reports,
            "profiles_received": sum(len(s.profiles) for s in fleet),
            "soc_mean_pu": sum(s.soc_pu for s in fleet) / max(len(fleet), 1),
        },
        json_out,
    )


@csms_app.command("dispatch")
def csms_dispatch(
    csv_file: Annotated[Path, typer.Argument(help="CSV 'station_id,limit_w' of set-points.")],
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port to serve on.")] = 9000,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    db: Annotated[str, typer.Option(help="SQLAlchemy database URL.")] = "sqlite:///csms.sqlite",
    wait: Annotated[float, typer.Option(min=0.0, max=3600.0, help="Seconds to wait for the stations.")] = 30.0,
    timeout: Annotated[float, typer.Option(min=0.1, max=600.0, help="Per-call timeout [s].")] = 10.0,
    json_out: JsonOpt = False,
) -> None:
    """Serve, wait until the CSV's stations are connected (or --wait passes), push their set-points as charging
    profiles concurrently, and report each station's outcome and the latency distribution."""
    import asyncio
    import csv
    import statistics

    from v2gtwin.cyber.csms.server import Csms
    from v2gtwin.cyber.csms.store import Store

    limits: dict[str, float] = {}
    try:
        with csv_file.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError) as exc:
        raise V2GTwinError(f"{csv_file}: cannot read ({exc})") from None
    if not rows or [c.strip() for c in rows[0][:2]] != ["station_id", "limit_w"]:
        raise V2GTwinError(f"{csv_file}: the first line must be the header 'station_id,limit_w'")
    for i, row in enumerate(rows[1:], start=2):
        try:
            limits[row[0].strip()] = float(row[1])
        except (ValueError, IndexError):
            raise V2GTwinError(f"{csv_file}, line {i}: expected 'station_id,limit_w', got {row!r}") from None

    from sqlalchemy.exc import ArgumentError, OperationalError

    try:
        store = Store(db)
    except (ArgumentError, OperationalError) as exc:
        raise V2GTwinError(f"--db {db}: cannot open the database ({exc.__class__.__name__})") from None

    async def go() -> dict[str, dict[str, Any]]:
        async with Csms(store, host=host, port=port) as csms:
            deadline = asyncio.get_running_loop().time() + wait
            while not set(limits) <= set(csms.stations) and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.1)
            return await csms.dispatch(limits, timeout_s=timeout)

    try:
        result = asyncio.run(go())
    except OSError as exc:
        raise V2GTwinError(f"--port {port}: cannot listen on {host} ({exc.strerror})") from None
    lat = sorted(r["latency_s"] for r in result.values() if r["latency_s"] is not None)
    out: dict[str, Any] = {
        "stations": len(result),
        "accepted": sum(r["status"] == "Accepted" for r in result.values()),
        "latency_p50_s": statistics.median(lat) if lat else None,
        "latency_p99_s": lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat else None,
    }
    if json_out:
        out["per_station"] = result
    _emit(out, json_out)


@csms_app.command("pki")
def csms_pki(
    folder: Annotated[Path, typer.Argument(help="Folder for the CA, server and station keys and certificates.")],
    station: Annotated[list[str], typer.Option("--station", help="Station id (repeat for several).")],
    json_out: JsonOpt = False,
) -> None:
    """Create a CA, the server certificates (ECDSA P-256 and RSA 2048) and one certificate per station."""
    from v2gtwin.cyber.csms.pki import init_pki
    from v2gtwin.cyber.csms.server import STATION_ID

    bad = [s for s in station if not STATION_ID.match(s)]
    if bad:
        raise V2GTwinError(f"--station {bad[0]!r}: allowed characters A-Z a-z 0-9 . _ : -, 1 to 48 of them")
    try:
        out = init_pki(folder, station)
    except (FileExistsError, OSError) as exc:
        raise V2GTwinError(f"{folder}: {exc}") from None
    _emit({"folder": str(out), "stations": station}, json_out)


@csms_app.command("password")
def csms_password(
    station_id: Annotated[str, typer.Argument(help="Station id.")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, help="At least 16 characters.")],
    db: Annotated[str, typer.Option(help="SQLAlchemy database URL.")] = "sqlite:///csms.sqlite",
) -> None:
    """Provision a station's HTTP Basic password (security profiles 1 and 2)."""
    from v2gtwin.cyber.csms.store import Store

    try:
        Store(db).set_password(station_id, password)
    except ValueError as exc:
        raise V2GTwinError(f"--password: {exc}") from None
    sys.stdout.write(f"{station_id}: password set\n")


def load_scenario_with(path: Path | None, changes: dict[str, dict[str, Any]]):  # type: ignore[no-untyped-def]
    """Load a scenario and apply section overrides (validated like the file)."""
    from v2gtwin.scenario import load_scenario, parse_scenario

    scen = load_scenario(path)
    if not changes:
        return scen
    data = scen.model_dump(mode="json", exclude_none=True)
    for section, values in changes.items():
        data.setdefault(section, {}).update(values)
    return parse_scenario(data, str(path) if path else "<default scenario>")


# --- entry points -----------------------------------------------------------------------------------------
def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def main(argv: list[str] | None = None) -> int:
    """Run the CLI on ``argv`` and return the exit code; errors become one line on stderr (exit code 2)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=args, prog_name="v2gtwin", standalone_mode=False)
    except V2GTwinError as exc:
        if debug:
            raise
        sys.stderr.write(f"error: {_one_line(str(exc))}\n")
        return 2
    except NoArgsIsHelpError as exc:
        sys.stdout.write(exc.format_message().rstrip() + "\n")
        return 0
    except UsageError as exc:
        if debug:
            raise
        sys.stderr.write(f"error: {_one_line(exc.format_message())} (see 'v2gtwin --help')\n")
        return 2
    except ClickException as exc:
        if debug:
            raise
        sys.stderr.write(f"error: {_one_line(exc.format_message())}\n")
        return 2
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        sys.stderr.write("aborted\n")
        return 130
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except MemoryError:
        sys.stderr.write("error: out of memory; reduce fleet.n_evs or time.n_steps\n")
        return 2
    if rv == 130:  # typer turns Ctrl-C into Exit(130) without a word
        sys.stderr.write("interrupted\n")
    return int(rv) if isinstance(rv, int) else 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
