"""`v2gtwin network`: the fleet on real networks — importing feeders from MATPOWER / OpenDSS files, dynamic
operating envelopes per bus and step."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from v2gtwin.cli._common import JsonOpt, _emit, _print_json, app

network_app = typer.Typer(
    help="The fleet on real networks: feeders from files, dynamic operating envelopes.", no_args_is_help=True
)
app.add_typer(network_app, name="network")


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
    json_out: JsonOpt = False,
) -> None:
    """Read a MATPOWER / OpenDSS feeder, reduce it to a radial single-phase equivalent and solve its base case:
    the reduced feeder's summary (buses, branches, voltage, load, where the ratings came from, notes) and its
    exact power flow (lowest voltage and where, losses, highest loading; with --json every bus's voltage); or
    one line saying what it cannot take."""
    import numpy as np

    from v2gtwin.grid.feeder import run_powerflow
    from v2gtwin.grid.network_io import SOURCE_IMPEDANCE_PREFIX, check_feeder_file, read_feeder_file

    fmt = check_feeder_file(file)
    feeder = read_feeder_file(file, default_ampacity_a=default_ampacity_a)
    res = run_powerflow(feeder, feeder.p_load_kw, feeder.q_load_kvar)
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
