"""The study with the fleet on a network (hand-built envelopes): services sold within it, the report's envelope
heat map and the table "unconstrained / network-secure / difference". Wiring, plus one closed form."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.cli_helpers import run_cli
from tests.report.figure_checks import figure_problems, record_figures
from v2gtwin.grid.secure import build_network_limits
from v2gtwin.report import write_report
from v2gtwin.scenario import parse_scenario
from v2gtwin.study import StudyChain, StudyResult

SMALL = parse_scenario({"fleet": {"n_evs": 300}, "time": {"n_steps": 48, "dt_s": 1800}, "cyber": {"n_stations": 0}})
IMPORT_KW, EXPORT_KW = 20.0, 5.0


@dataclass(frozen=True)
class Env:
    """The fields of the operating-envelope contract (grid/envelopes.OperatingEnvelope) the study reads."""

    feeder_name: str
    bus_labels: np.ndarray
    rule: str
    v_min_pu: float
    v_max_pu: float
    p_import_max_kw: np.ndarray
    p_export_max_kw: np.ndarray
    ac_violations: int = 0


class NetworkChain(StudyChain):
    """The study with the fleet on two hand-built feeders (3 and 4 buses), flat envelopes of 20 kW import and
    5 kW export at every bus: EV i on feeder i % 2, bus i % (its bus count)."""

    def build_fleet(self) -> None:
        super().build_fleet()
        n = self._fleet().n
        n_steps = self.scenario.time.n_steps
        envs = tuple(
            Env(
                name,
                np.array([f"{name}-{b}" for b in range(nb)]),
                "equal_per_ev",
                0.95,
                1.05,
                np.full((n_steps, nb), IMPORT_KW),
                np.full((n_steps, nb), EXPORT_KW),
            )
            for name, nb in (("north", 3), ("south", 4))
        )
        ev_feeder = np.arange(n) % 2
        ev_bus = np.where(ev_feeder == 0, np.arange(n) % 3, np.arange(n) % 4)
        self.envelopes_ = envs
        self.network_limits_ = build_network_limits(envs, ev_feeder, ev_bus)


@pytest.fixture(scope="module")
def result() -> StudyResult:
    return NetworkChain(SMALL).run()


def test_v2g_offer_within_the_export_envelope(result: StudyResult) -> None:
    m = result.markets.summary()["market"]
    chain = NetworkChain(SMALL)
    chain.build_fleet()
    fleet, limits = chain._fleet(), chain.network_limits_
    assert limits is not None
    tg, spec = SMALL.time, SMALL.markets
    step = tg.step_at(spec.v2g_offer_hour, "v2g_offer_hour")
    plugged = (fleet.arrival_step <= step) & (step < fleet.departure_step)
    # Closed form: sum over the 7 buses of min(v2g_share x discharge power plugged at the bus, 5 kW).
    per_bus = np.bincount(limits.ev_node, spec.v2g_share * fleet.p_discharge_max_kw * plugged, minlength=7)
    assert m["v2g_offer_secure_kw"] == pytest.approx(np.minimum(per_bus, EXPORT_KW).sum())
    assert m["v2g_offer_network_gap_kw"] == pytest.approx(m["v2g_offer_kw"] - m["v2g_offer_secure_kw"])


def test_every_service_has_its_secure_figure_in_json_and_report(
    result: StudyResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    figures = record_figures(monkeypatch)
    paths = write_report(result, tmp_path / "out")
    assert [p for fig in figures for p in figure_problems(fig, result.scenario.currency)] == []
    data = json.loads(paths["results"].read_text())
    rows = data["services"]["network_secure"]
    keys = {r["key"] for r in rows}
    for k in (
        "services.reserve.max_kw",
        "services.agc.capacity_kw",
        "services.dr.reduction_mean_kw",
        "markets.market.v2g_offer_kw",
        "markets.bid.bid_kw",
    ):
        assert k in keys
    for r in rows:
        assert r["network_gap"] == pytest.approx(r["unconstrained"] - r["secure"])
    # Reserve is never above what stopping charging plus the export limit allows: the secure series is at most
    # the unconstrained one.
    assert np.all(np.array(data["services"]["reserve_secure_kw"]) <= np.array(data["services"]["reserve_kw"]) + 1e-9)
    # The series written is the secure one the summary's figures come from (the export limit binds here).
    rs = data["services"]["summary"]["reserve"]
    series = np.array(data["services"]["reserve_secure_kw"])
    assert series.max() == pytest.approx(rs["max_secure_kw"]) and series.mean() == pytest.approx(rs["mean_secure_kw"])
    assert rs["mean_secure_kw"] < rs["mean_kw"]
    html = paths["report"].read_text()
    assert "Services within the network" in html and "Dynamic operating envelopes" in html
    assert "<th>unconstrained</th><th>network-secure</th><th>difference</th>" in html
    assert "equal_per_ev" in html
    # One more figure than the study without a network (the envelope heat map); no cyber run here: 17 + 1.
    # 22 + the command path's CDF + the battery section's fade + the TLS handshake breakdown
    assert len(re.findall(r'src="data:image/png;base64,', html)) == 25


def test_without_a_network_nothing_is_added() -> None:
    res = StudyChain(SMALL).run()
    d = res.to_dict(series=False)
    assert "network_secure" not in d["services"]
    assert "max_secure_kw" not in d["services"]["summary"]["reserve"]


NET_TOML = (
    "seed = 7\n[fleet]\nn_evs = 200\n[time]\nn_steps = 24\ndt_s = 3600\n[cyber]\nn_stations = 0\n"
    '[[network.feeders]]\nsource = "ieee33"\n'
)


def test_the_network_step_sells_services_within_the_envelopes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Wiring through the scenario's [network]: the study and `frequency reserve` / `market compare` print the
    # same network-secure keys and values (one dict per command, as without a network).
    scen = tmp_path / "net.toml"
    scen.write_text(NET_TOML)
    code, out, err = run_cli(capsys, "study", "-s", str(scen), "--out", str(tmp_path / "o"), "--json")
    assert code == 0, err
    data = json.loads(out)
    assert {r["key"] for r in data["services"]["network_secure"]} >= {
        "services.reserve.max_kw",
        "services.agc.fleet_range_kw",
        "services.dr.rebound_peak_kw",
        "markets.market.v2g_offer_kw",
        "markets.bid.bid_kw",
        "markets.network_schedule.cost_unconstrained_per_horizon",
        "markets.network_schedule.ac_violations_unconstrained",
    }
    # The network-constrained schedule, checked by exact AC: no violations left.
    assert data["markets"]["summary"]["network_schedule"]["ac_violations"] == 0
    code, out, err = run_cli(capsys, "frequency", "reserve", "-s", str(scen), "--json")
    assert code == 0, err
    assert json.loads(out) == data["services"]["summary"]["reserve"]
    code, out, err = run_cli(capsys, "market", "compare", "-s", str(scen), "--json")
    assert code == 0, err
    market = json.loads(out)
    assert market["v2g_offer_secure_kw"] == data["markets"]["summary"]["market"]["v2g_offer_secure_kw"]
    html = (tmp_path / "o" / "report.html").read_text()
    assert "Services within the network" in html and "Dynamic operating envelopes" in html


def test_network_secure_false_leaves_services_unconstrained(tmp_path: Path) -> None:
    scen = parse_scenario(
        {
            "fleet": {"n_evs": 50},
            "time": {"n_steps": 24, "dt_s": 3600},
            "network": {"network_secure": False, "feeders": [{"source": "ieee33"}]},
        }
    )
    chain = StudyChain(scen)
    for step in ("build_fleet", "envelope", "uncontrolled", "network"):
        getattr(chain, step)()
    assert chain.network_limits_ is None and len(chain.envelopes_) == 1  # envelopes shown, not imposed
    chain.reserve()
    assert chain.reserve_ is not None and chain.reserve_[0].reserve_secure_kw is None


def test_report_names_the_network_its_feeders_base_load_and_ratings() -> None:
    # Wiring of the feeder section on a network: the header names the network, the base-load sentence is the
    # detail feeder's own (its profile, seeded peak scale and shift, not the single feeder's RTS-79 shape), the
    # section's notes are shown, one table row per feeder, and where each feeder's ratings come from.
    from v2gtwin.grid.network import build_network_feeder
    from v2gtwin.report import render_html

    scen = parse_scenario(
        {
            "seed": 5,
            "fleet": {"n_evs": 120},
            "time": {"n_steps": 24, "dt_s": 3600},
            "cyber": {"n_stations": 0},
            "network": {
                "feeders": [
                    {"source": "ieee33", "profile": "commercial"},
                    {"source": "synthetic", "n_bus": 20, "total_load_kw": 1500.0, "ampacity_a": 300.0},
                ]
            },
        }
    )
    assert scen.network is not None
    res = StudyChain(scen).run()
    page = render_html(res)
    assert "network: 2 feeders, 120 EVs" in page and "feeder: ieee33</p>" not in page
    _, scale, shift = build_network_feeder(scen.network.feeders[0], scen.seed, 0)
    assert (
        f"Base load of ieee33: its nominal loads x {scale:.3f} (peak scale with its seeded variation) x the BDEW G25 "
        f"commercial January working-day daily shape, shifted by {shift:+.2f} h." in page
    )
    assert "RTS-79" not in page.split("<h2>Feeder")[1].split("<h2>")[0]
    assert "feeder 1 of the network&#x27;s 2 (ieee33)" in page  # the section's notes, escaped
    assert "<h3>The network: 2 feeders</h3>" in page
    table = page.split("<h3>The network: 2 feeders</h3>")[1].split("</table>")[0]
    n_evs = res.network.network.n_evs_per_feeder() if res.network is not None else None
    assert n_evs is not None and table.count("<tr>") == 3  # header and one row per feeder
    assert f"<td>ieee33</td><td>33</td><td>{n_evs[0]}</td>" in table
    assert "OpenDSS&#x27;s default Line NormAmps, 400 A" in table and "the scenario&#x27;s ampacity_a, 300 A" in table
    assert "Branch ratings: " in page.split("Dynamic operating envelopes")[1]


def test_schedule_sold_within_the_network_and_the_battery_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Wiring: the schedule the study sells is the network-secure one under the import cap (its peak at most the
    # cap); the fleet-wide schedule's exact-AC count is beside it; `schedule --json` prints the same figures as
    # results.json; the network-secure battery is in results.json and the report; bids and the main tables show
    # the secure value first with the unconstrained one beside it.
    scen = tmp_path / "net.toml"
    scen.write_text(NET_TOML)
    figures = record_figures(monkeypatch)
    code, out, err = run_cli(capsys, "study", "-s", str(scen), "--out", str(tmp_path / "o"), "--json")
    assert code == 0, err
    data = json.loads(out)
    # The network-secure battery's and schedule's figures too: no data under a legend, clock time, currency.
    assert figures and [p for fig in figures for p in figure_problems(fig, data["scenario"]["currency"])] == []
    ns = data["markets"]["summary"]["network_schedule"]
    assert ns["p_peak_kw"] <= ns["import_cap_kw"] * (1 + 1e-6)
    assert ns["import_cap_kw"] == pytest.approx(data["markets"]["summary"]["schedule"]["import_cap_kw"])
    assert "pro rata" in ns["import_cap_rule"]
    assert isinstance(ns["fleet_wide_ac_violations"], int)
    code, out, err = run_cli(capsys, "schedule", "-s", str(scen), "--json")
    assert code == 0, err
    cli = json.loads(out)["network_schedule"]
    for key in ("cost_network_secure_per_horizon", "ac_violations", "fleet_wide_ac_violations", "import_cap_kw"):
        assert cli[key] == pytest.approx(ns[key])
    assert max(cli["p_total_kw"]) == pytest.approx(ns["p_peak_kw"])
    nb = data["network_battery"]["summary"]
    f = nb["fleet"]
    assert len(nb["feeders"]) == 1  # the one IEEE 33-bus feeder
    assert f["outer"]["p_max_peak_kw"] >= f["inner"]["p_max_peak_kw"] >= f["network_secure"]["p_max_peak_kw"]
    assert f["gaps"]["inner_minus_network_secure"]["p_max_peak_kw"] == pytest.approx(
        f["inner"]["p_max_peak_kw"] - f["network_secure"]["p_max_peak_kw"]
    )
    html = (tmp_path / "o" / "report.html").read_text()
    assert "The network-secure virtual battery" in html
    assert "Schedule sold: network-secure" in html
    bid = data["markets"]["summary"]["bid"]
    assert f"{bid['bid_secure_kw']:,.0f} (unconstrained {bid['bid_kw']:,.0f})" in html
    ag = data["services"]["summary"]["agc"]
    assert f"{ag['capacity_secure_kw']:,.0f} (unconstrained {ag['capacity_kw']:,.0f})" in html


def test_secure_table_formats_counts_and_signs() -> None:
    from v2gtwin.report.network_services import fmt_secure

    assert fmt_secure(88.0, "count") == "88"
    assert fmt_secure(-0.01, "per_horizon") == "0.0"  # no "-0.0"
    assert fmt_secure(-1234.56, "kw") == "-1,234.6"


def test_network_secure_false_says_the_services_ignore_the_envelopes(tmp_path: Path) -> None:
    scen = parse_scenario(
        {
            "fleet": {"n_evs": 50},
            "time": {"n_steps": 24, "dt_s": 3600},
            "cyber": {"n_stations": 0},
            "network": {"network_secure": False, "feeders": [{"source": "ieee33"}]},
        }
    )
    res = StudyChain(scen).run()
    assert res.network_battery is None and res.markets.network_schedule is None
    html = write_report(res, tmp_path / "o")["report"].read_text()
    assert html.count("network_secure = false:") == 2  # services and markets sections
