"""`v2gtwin network feeders`: the scenario's network of feeders — each feeder's size, EVs placed on it, base
load, ratings and its day under uncontrolled charging (the ``network`` section of results.json)."""

from __future__ import annotations

import sys

from v2gtwin.cli._common import JsonOpt, ScenarioOpt, _emit, _print_json
from v2gtwin.cli.network import RequireRatingsOpt, load_network_scenario, network_app
from v2gtwin.errors import ScenarioError

#: Columns of the text table, in order (the JSON has every key).
_TABLE = (
    "feeder",
    "source",
    "n_bus",
    "n_evs",
    "profile",
    "p_base_peak_kw",
    "p_ev_peak_kw",
    "v_min_base_pu",
    "v_min_uncontrolled_pu",
    "n_steps_below_v_min",
    "n_branch_rated",
    "branch_loading_max_pu",
)


@network_app.command("feeders")
def network_feeders(
    scenario: ScenarioOpt = None, require_ratings: RequireRatingsOpt = False, json_out: JsonOpt = False
) -> None:
    """The fleet on the scenario's network: per feeder its buses, EVs (placed by load share), base-load peak,
    lowest voltage without and with uncontrolled charging (exact AC), ratings and notes."""
    import pandas as pd

    from v2gtwin.study import StudyChain

    scen = load_network_scenario(scenario, require_ratings)
    if scen.network is None:
        raise ScenarioError(
            f"{scenario or '<default scenario>'}: no [network] section: the whole fleet sits on the one [feeder] "
            "(see 'v2gtwin feeder')"
        )
    section = StudyChain(scen).get("network")  # the study's network step (results.json's network.summary)
    assert section is not None  # the scenario has a [network] section
    out = section.summary()
    if json_out:
        _print_json(out)
        return
    rows = out.pop("feeders")
    _emit(out, False, scen.time)
    table = pd.DataFrame([{k: r.get(k) for k in _TABLE} for r in rows])
    sys.stdout.write("\n" + table.to_string(index=False, na_rep="-", float_format=lambda v: f"{v:,.4g}") + "\n")
    for r in rows:
        for note in r["notes"]:
            sys.stdout.write(f"{r['feeder']}: {note}\n")
