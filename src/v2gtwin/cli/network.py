"""`v2gtwin network`: the fleet on real networks — importing feeders from MATPOWER / OpenDSS files, dynamic
operating envelopes per bus and step."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from v2gtwin.cli._common import JsonOpt, ScenarioOpt, _emit, _print_json, app
from v2gtwin.errors import V2GTwinError

network_app = typer.Typer(
    help="The fleet on real networks: feeders from files, dynamic operating envelopes.", no_args_is_help=True
)
app.add_typer(network_app, name="network")

RequireRatingsOpt = Annotated[
    bool,
    typer.Option(
        "--require-ratings",
        help="Every branch must have a thermal rating in its data (or the feeder's ampacity_a): a branch without "
        "one is an error naming the file and the branch, instead of the 400 A default.",
    ),
]


def load_network_scenario(scenario: Path | None, require_ratings: bool):  # type: ignore[no-untyped-def]
    """The scenario, with ``[network] require_ratings = true`` when ``--require-ratings`` is given (which needs a
    ``[network]`` section: the one ``[feeder]`` has no ratings to require)."""
    from v2gtwin.cli._common import load_scenario_with
    from v2gtwin.errors import ScenarioError
    from v2gtwin.scenario import load_scenario

    scen = load_scenario(scenario)
    if not require_ratings:
        return scen
    if scen.network is None:
        raise ScenarioError(
            f"--require-ratings: {scenario or '<default scenario>'} has no [network] section (the one [feeder] is "
            "the published, unrated case)"
        )
    return load_scenario_with(scenario, {"network": {"require_ratings": True}})


def _scenario_envelopes(scen, rule: str, v_min_pu: float, v_max_pu: float):  # type: ignore[no-untyped-def]
    """The operating envelope of every feeder of the scenario (the network's feeders, or its one [feeder]), the
    fleet on it giving the weights: EVs per bus (``equal_per_ev``, and shown for ``per_bus_max``) or charger kW
    per bus (``proportional_to_rating``)."""
    import numpy as np

    from v2gtwin.grid.envelopes import calc_operating_envelope
    from v2gtwin.study import StudyChain, build_fleet

    if scen.network is not None:  # the EVs placed on the network as in the study's network step
        from v2gtwin.grid.network import build_network
        from v2gtwin.grid.network_analysis import run_network_envelopes

        whole = build_fleet(scen)
        net = build_network(scen.network, whole, scen.time, scen.seed)
        return list(run_network_envelopes(net, net.place(whole), rule, v_min_pu, v_max_pu))
    chain = StudyChain(scen)
    feeder, fleet = chain.get("feeder"), chain.feeder_fleet
    assert fleet is not None and chain.base_load_ is not None
    p_base_kw, q_base_kvar = chain.base_load_
    weights = fleet.p_charge_max_kw if rule == "proportional_to_rating" else None
    weight_bus = np.bincount(fleet.bus, weights=weights, minlength=feeder.n_bus).astype(float)
    env = calc_operating_envelope(
        feeder, p_base_kw, q_base_kvar, rule=rule, weight_bus=weight_bus, v_min_pu=v_min_pu, v_max_pu=v_max_pu
    )
    return [env]


@network_app.command("envelope")
def network_envelope(
    scenario: ScenarioOpt = None,
    rule: Annotated[
        str | None,
        typer.Option(
            "--rule",
            help="Allocation among buses: equal_per_ev, proportional_to_rating or per_bus_max (optimistic) "
            "(default: the scenario's [network] allocation_rule, or equal_per_ev).",
        ),
    ] = None,
    v_min: Annotated[
        float | None,
        typer.Option(
            "--v-min", help="Lowest allowed voltage [pu] (default: the scenario's [network], else [feeder], v_min_pu)."
        ),
    ] = None,
    v_max: Annotated[
        float | None,
        typer.Option(
            "--v-max", help="Highest allowed voltage [pu] (default: the scenario's [network], else [feeder], v_max_pu)."
        ),
    ] = None,
    csv: Annotated[
        Path | None,
        typer.Option("--csv", help="Write the tidy table (one row per step and bus) to this CSV file."),
    ] = None,
    require_ratings: RequireRatingsOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Dynamic operating envelope: per bus and step, the largest EV import and export that keep every voltage
    within [v_min, v_max] and every branch within its rating, given the base load (exact AC, verified)."""
    import numpy as np
    import pandas as pd

    from v2gtwin.grid.envelopes import ALLOCATION_RULES

    if rule is not None and rule not in ALLOCATION_RULES:
        raise V2GTwinError(f"--rule: must be one of {', '.join(ALLOCATION_RULES)}, got {rule!r}")
    scen = load_network_scenario(scenario, require_ratings)
    limits = scen.feeder if scen.network is None else scen.network  # the network's limits when it has one
    if rule is None:
        rule = "equal_per_ev" if scen.network is None else scen.network.allocation_rule
    v_min_pu = limits.v_min_pu if v_min is None else v_min
    v_max_pu = limits.v_max_pu if v_max is None else v_max
    if not 0.0 < v_min_pu < v_max_pu < 1.5:
        raise V2GTwinError(f"--v-min, --v-max: need 0 < v_min < v_max < 1.5 pu, got {v_min_pu}, {v_max_pu}")
    time = scen.time
    envelopes = _scenario_envelopes(scen, rule, v_min_pu, v_max_pu)
    if csv is not None:
        frame = pd.concat([env.to_frame(time).assign(feeder=env.feeder_name) for env in envelopes])
        try:
            frame.to_csv(csv, index=False)
        except OSError as exc:
            raise V2GTwinError(f"--csv {csv}: cannot write ({exc.strerror or exc})") from None
    summaries = [env.to_dict(time, per_bus_steps=json_out) for env in envelopes]
    out = {"rule": rule, "n_steps": time.n_steps, "dt_s": time.dt_s, "feeders": summaries}
    if json_out:
        _print_json(out)
        return
    for env, summary in zip(envelopes, summaries, strict=True):
        head = {
            k: summary[k] for k in ("feeder", "rule", "simultaneous", "weight", "v_min_pu", "v_max_pu", "ac_violations")
        }
        head["base_violation_steps"] = summary["base_violation_steps"]
        _emit(head, False, time)
        for note in summary["notes"]:
            sys.stdout.write(f"note: {note}\n")
        table = env.bus_summary()
        table.insert(4, "import_clock", [time.clock_label(int(t)) for t in table.p_import_max_lowest_step])
        table.insert(8, "export_clock", [time.clock_label(int(t)) for t in table.p_export_max_lowest_step])
        table = table.drop(columns=["p_import_max_lowest_step", "p_export_max_lowest_step"]).iloc[1:]
        order = pd.to_numeric(table.bus, errors="coerce")
        if order.notna().all():  # numbered buses (Baran & Wu's 1-33, MATPOWER bus numbers): in their order
            table = table.iloc[np.argsort(order.to_numpy(), kind="stable")]
        sys.stdout.write(
            "lowest limit of the day per bus [kW]:\n"
            + table.to_string(index=False, float_format=lambda v: f"{v:,.2f}")
            + "\n"
        )
    if csv is not None:
        sys.stdout.write(f"wrote {csv}\n")


@network_app.command("import")
def network_import(
    file: Annotated[Path, typer.Argument(help="MATPOWER case (.m) or OpenDSS script (.dss).")],
    default_ampacity_a: Annotated[
        float | None,
        typer.Option(
            "--default-ampacity-a",
            min=1e-9,
            help="Rating [A] for branches the file gives none (default: none, those branches have no limit).",
        ),
    ] = None,
    require_ratings: RequireRatingsOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Read a MATPOWER / OpenDSS feeder, reduce it to a radial single-phase equivalent and solve its base case:
    the reduced feeder's summary (buses, branches, voltage, load, where the ratings came from, notes) and its
    exact power flow (lowest voltage and where, losses, highest loading; with --json every bus's voltage); or
    one line saying what it cannot take."""
    import numpy as np

    from v2gtwin.errors import ConvergenceError
    from v2gtwin.grid.feeder import run_powerflow
    from v2gtwin.grid.network_io import SOURCE_IMPEDANCE_PREFIX, check_feeder_file, check_ratings, read_feeder_file

    fmt = check_feeder_file(file)
    feeder = read_feeder_file(file, default_ampacity_a=default_ampacity_a)
    if require_ratings:
        check_ratings(feeder, hint="give one in the file, or --default-ampacity-a")
    try:
        res = run_powerflow(feeder, feeder.p_load_kw, feeder.q_load_kvar)
    except ConvergenceError as exc:
        raise ConvergenceError(
            f"{file.name}: its base case (the file's loads) has no power-flow solution: {exc}"
        ) from None
    pf = res.summary(feeder)
    conductor = np.array(
        [i > 0 and not feeder.branch_label[i].startswith(SOURCE_IMPEDANCE_PREFIX) for i in range(feeder.n_bus)]
    )
    out: dict[str, Any] = {
        "file": file.name,
        "format": fmt,
        "n_bus": feeder.n_bus,
        "n_branch": feeder.n_bus - 1,
        "v_base_kv": feeder.v_base_kv,
        "v_source_pu": feeder.v_source_pu,
        "source_bus": str(feeder.bus_labels[0]),
        "p_load_total_kw": float(feeder.p_load_kw.sum()),
        "q_load_total_kvar": float(feeder.q_load_kvar.sum()),
        "n_branch_rated": int((conductor & np.isfinite(feeder.ampacity_a)).sum()),
        "n_branch_unrated": int((conductor & ~np.isfinite(feeder.ampacity_a)).sum()),
        "default_ampacity_a": default_ampacity_a,
        "notes": list(feeder.notes),
        "powerflow": {
            "v_min_pu": pf["v_min_pu"],
            "v_min_bus": pf["v_min_bus"],
            "losses_kw": pf["losses_kw"],
            "p_source_kw": float(res.p_source_kw[0]),
            "q_source_kvar": float(res.q_source_kvar[0]),
            "branch_loading_max_pu": pf["branch_loading_max_pu"],
            "branch_loading_max": pf["branch_loading_max"],
            "iterations": pf["iterations_max"],
        },
    }
    if json_out:
        # Every bus's voltage by its label, in the file's bus order (feeder arrays are in topological order).
        out["powerflow"]["v_pu"] = {
            str(feeder.bus_labels[i]): float(res.v_pu[0, i]) for i in np.argsort(feeder.bus_index, kind="stable")
        }
        _print_json(out)
        return
    notes = out.pop("notes")
    _emit(out, False)
    for note in notes:
        sys.stdout.write(f"note: {note}\n")
