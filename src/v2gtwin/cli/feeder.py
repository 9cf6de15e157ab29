"""`v2gtwin feeder`: power flow, hosting capacity, losses, volt-var."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from v2gtwin.cli._common import (
    JsonOpt,
    ScenarioOpt,
    _emit,
    _print_json,
    app,
    load_scenario_with,
)
from v2gtwin.errors import V2GTwinError

feeder_app = typer.Typer(
    help="Distribution feeder: power flow, hosting capacity, losses, volt-var.", no_args_is_help=True
)
app.add_typer(feeder_app, name="feeder")

LoadScaleOpt = Annotated[
    float,
    typer.Option("--load-scale", min=0.0, max=5.0, help="Multiple of the feeder's nominal loads (1 = as published)."),
]


def _scenario_feeder(scenario: Path | None):  # type: ignore[no-untyped-def]
    from v2gtwin.grid.analysis import build_feeder
    from v2gtwin.scenario import load_scenario

    scen = load_scenario(scenario)
    if scen.network is not None:  # the network's first feeder, as in the study's feeder section
        from v2gtwin.grid.network import build_network_feeder

        return scen, build_network_feeder(
            scen.network.feeders[0], scen.seed, 0, require_ratings=scen.network.require_ratings
        )[0]
    return scen, build_feeder(scen.feeder, scen.seed)


def _peak_load_scale(scen) -> float:  # type: ignore[no-untyped-def]
    """The base-load peak of the study's feeder section: the [feeder]'s, or the network's first feeder's."""
    if scen.network is None:
        return float(scen.feeder.peak_load_scale)
    from v2gtwin.grid.network import build_network_feeder

    return build_network_feeder(scen.network.feeders[0], scen.seed, 0, require_ratings=scen.network.require_ratings)[1]


def _write_notes(notes: tuple[str, ...] | list[str]) -> None:
    """The feeder's notes under a command's text (its --json has them as ``notes``): where its ratings come from,
    how it was built."""
    for note in notes:
        sys.stdout.write(f"note: {note}\n")


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
        # In the source model's bus order (feeder arrays are in topological order).
        "v_pu": {str(feeder.bus_labels[i]): round(float(res.v_pu[0, i]), 8) for i in np.argsort(feeder.bus_index)},
        "notes": list(feeder.notes),
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
    _write_notes(feeder.notes)


@feeder_app.command("hosting")
def feeder_hosting(
    scenario: ScenarioOpt = None,
    load_scale: Annotated[
        float | None,
        typer.Option(
            "--load-scale",
            min=0.0,
            max=5.0,
            help="Multiple of the feeder's nominal loads (default: the scenario's [feeder] peak_load_scale, or "
            "that of the network's first feeder).",
        ),
    ] = None,
    v_min: Annotated[
        float | None,
        typer.Option(
            "--v-min", min=0.5, max=1.0, help="Lowest allowed voltage [pu] (default: the scenario's [feeder] v_min_pu)."
        ),
    ] = None,
    voltvar: Annotated[str, typer.Option(help="Volt-var on the EV inverter: none, A or B.")] = "none",
    direction: Annotated[
        str, typer.Option(help="import (EV charging, bounded by v_min) or export (V2G, bounded by v_max).")
    ] = "import",
    v_max: Annotated[
        float | None,
        typer.Option(
            "--v-max",
            min=1.0,
            max=1.5,
            help="Highest allowed voltage [pu] (default: the scenario's [feeder] v_max_pu).",
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """EV hosting capacity of every bus at nominal loads x --load-scale (exact AC, binding constraint): the
    largest charging (--direction import) or V2G export (--direction export) at each bus alone; the defaults
    are the scenario's, as in the study (its base-load peak and voltage limits)."""
    from v2gtwin.grid.hosting import HOSTING_DIRECTIONS, run_node_hosting

    if voltvar not in ("none", "A", "B"):
        raise V2GTwinError(f"--voltvar: must be none, A or B, got {voltvar!r}")
    if direction not in HOSTING_DIRECTIONS:
        raise V2GTwinError(f"--direction: must be import or export, got {direction!r}")
    scen, feeder = _scenario_feeder(scenario)
    if load_scale is None:
        load_scale = _peak_load_scale(scen)
    if v_min is None:
        v_min = scen.feeder.v_min_pu
    if v_max is None:
        v_max = scen.feeder.v_max_pu
    res = run_node_hosting(
        feeder,
        feeder.p_load_kw * load_scale,
        feeder.q_load_kvar * load_scale,
        v_min_pu=v_min,
        voltvar=None if voltvar == "none" else voltvar,
        s_over_p=scen.feeder.s_over_p,
        direction=direction,  # type: ignore[arg-type]
        v_max_pu=v_max,
    )
    frame = res.to_frame()
    if json_out:
        _print_json(
            {
                "feeder": feeder.name,
                "load_scale": load_scale,
                "v_min_pu": v_min,
                "v_max_pu": v_max,
                "direction": direction,
                "voltvar": voltvar,
                "nodes": frame.to_dict(orient="records"),
                "notes": list(feeder.notes),
            }
        )
        return
    sys.stdout.write(frame.to_string(index=False, float_format=lambda v: f"{v:,.2f}") + "\n")
    _write_notes(feeder.notes)


@feeder_app.command("losses")
def feeder_losses(
    scenario: ScenarioOpt = None,
    load_scale: LoadScaleOpt = 1.0,
    json_out: JsonOpt = False,
) -> None:
    """Loss sensitivity dP_loss/dP of every bus at nominal loads x --load-scale, and the scenario's day
    charged four ways (uniform, random, lowest-sensitivity first, least losses)."""
    import numpy as np

    from v2gtwin.grid.losses import calc_loss_sensitivity
    from v2gtwin.study import StudyChain

    scen, feeder = _scenario_feeder(scenario)
    sens = calc_loss_sensitivity(feeder, feeder.p_load_kw * load_scale, feeder.q_load_kvar * load_scale)
    dispatch = StudyChain(scen).get("losses")  # the study's losses step (results.json's feeder.dispatch)
    out = {
        "feeder": feeder.name,
        "load_scale": load_scale,
        "p_loss_kw": sens.p_loss_kw,
        "sensitivity_kw_per_kw": {str(feeder.bus_labels[i]): float(sens.s_p[i]) for i in np.argsort(feeder.bus_index)},
        "dispatch": dispatch.to_dict(),
        "notes": list(feeder.notes),
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
    _write_notes(feeder.notes)


@feeder_app.command("voltvar")
def feeder_voltvar(
    scenario: ScenarioOpt = None,
    curve: Annotated[
        str | None,
        typer.Option(help="IEEE 1547-2018 default curve: A or B (default: the scenario's [feeder] voltvar_curve)."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """The scenario's day on the feeder with and without volt-var on the EV inverters."""
    from v2gtwin.study import StudyChain

    if curve is not None and curve not in ("A", "B"):
        raise V2GTwinError(f"--curve: must be A or B, got {curve!r}")
    scen = load_scenario_with(scenario, {"feeder": {"voltvar_curve": curve}} if curve is not None else {})
    if scen.feeder.voltvar_curve == "none":
        raise V2GTwinError("[feeder] voltvar_curve: the scenario has 'none'; pass --curve A or --curve B")
    chain = StudyChain(scen)
    chain.get("feeder")  # the study's feeder step and what it needs
    ts = chain.feeder_ts
    assert ts is not None
    out = {
        "curve": scen.feeder.voltvar_curve,
        "priority": scen.feeder.voltvar_priority,
        "v_min_without_pu": float(ts.v_min_fleet_pu.min()),
        "v_min_with_pu": float(ts.v_min_voltvar_pu.min()),
        "v_min_limit_pu": scen.feeder.v_min_pu,
        "n_steps_below_limit_without": int((ts.v_min_fleet_pu < scen.feeder.v_min_pu).sum()),
        "n_steps_below_limit_with": int((ts.v_min_voltvar_pu < scen.feeder.v_min_pu).sum()),
        "q_injected_max_kvar": float(ts.q_voltvar_kvar.max()),
        "iterations": ts.voltvar_iterations,
        "notes": list(chain.feeder_notes),
    }
    if json_out:
        _print_json(out)
        return
    notes = out.pop("notes")
    _emit(out, False)
    _write_notes(notes)
