"""The fleet model in the simulated stations: EV parameters carried over, the study's dispatch run, and the
`csms simulate` command drawing its EVs from the scenario's fleet."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from v2gtwin.cyber.csms.server import Csms
from v2gtwin.cyber.csms.store import Store
from v2gtwin.cyber.fleet_link import fleet_to_sim_evs, run_dispatch_demo
from v2gtwin.fleet import synthesize_fleet
from v2gtwin.scenario import DEFAULT_SCENARIO, FleetSpec

from ..fleets import one_ev


def test_ev_parameters_carry_over() -> None:
    f = one_ev(
        dt_s=900.0,
        capacity_kwh=75.0,
        soc0_pu=0.3,
        p_charge_max_kw=11.0,
        p_discharge_max_kw=0.0,
        arrival_step=4,
        departure_step=36,
        eta_charge=0.92,
    )
    (ev,) = fleet_to_sim_evs(f)
    assert (ev.capacity_kwh, ev.soc0_pu, ev.p_max_w, ev.v2x, ev.efficiency) == (75.0, 0.3, 11000.0, False, 0.92)
    assert ev.departure_h == pytest.approx(8.0)  # 32 steps of 15 min
    (ev2,) = fleet_to_sim_evs(one_ev(p_discharge_max_kw=7.2))
    assert ev2.v2x


def test_study_dispatch_run_on_a_mixed_fleet() -> None:
    f = synthesize_fleet(FleetSpec(n_evs=100, v2g_share=0.5), DEFAULT_SCENARIO.time, 33, np.random.default_rng(3))
    run = run_dispatch_demo(f, 24, seed=1)
    s = run.summary()
    evs = fleet_to_sim_evs(f, 24)
    assert s["profiles_sent"] == s["profiles_acknowledged"] == s["followed"] == 24
    assert 0 < s["n_v2x"] < 24 and s["n_v2x"] == sum(ev.v2x for ev in evs)
    # V2X EVs discharge at 40-50 % of their power, the others charge at 40-50 %.
    for (sid, sp), ev in zip(run.set_points_w.items(), evs, strict=True):
        assert (sp < 0) == ev.v2x and 0.4 * ev.p_max_w <= abs(sp) <= 0.5 * ev.p_max_w + 1e-9
        assert run.power_after_w[sid] == pytest.approx(round(sp, 1))
    assert s["meter_values_stored"] == 24 * 3


def test_simulate_command_draws_evs_from_the_fleet_model(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'csms.sqlite'}")

    async def scenario():  # type: ignore[no-untyped-def]
        async with Csms(store, port=0) as csms:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "v2gtwin.cli",
                "csms",
                "simulate",
                "--url",
                f"ws://127.0.0.1:{csms.port}",
                "--stations",
                "6",
                "--reports",
                "2",
                "--interval",
                "0",
                "--hold",
                "1.5",
                "--json",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            while len(csms.stations) < 6:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)
            res = await csms.dispatch(dict.fromkeys(list(csms.stations), 2000.0))
            out, err = await proc.communicate()
            return proc.returncode, out, err, res

    code, out, err, res = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert code == 0, err.decode()
    data = json.loads(out)
    assert data["stations"] == 6 and data["profiles_received"] == 6 and data["v2x_stations"] == 6
    assert all(r["status"] == "Accepted" for r in res.values())
    ev = store.evse("SIM-00000", 1)
    assert ev is not None and ev.v2x and ev.energy_amount_wh is not None


def test_summary_median_counts_the_stations_that_did_not_accept() -> None:
    """Four stations: accepted at 0.1 s and 0.3 s, one timed out, one not connected. The median (nearest rank 2
    of 4) is 0.3 s, not the 0.2 s of the two that answered; with a third station lost it is undefined (null)."""
    from v2gtwin.cyber.fleet_link import CyberRun

    def outcome(status: str, t: float | None) -> dict[str, object]:
        return {"status": status, "settled_s": t, "latency_s": t, "attempts": 1}

    runs = {
        "two lost": {"A": outcome("Accepted", 0.3), "B": outcome("Accepted", 0.1), "C": outcome("timeout", 10.0)}
        | {"D": outcome("not connected", 0.0)},
        "three lost": {"A": outcome("Accepted", 0.3), "B": outcome("Rejected", 0.1), "C": outcome("timeout", 10.0)}
        | {"D": outcome("not connected", 0.0)},
    }
    summaries = {}
    for name, out in runs.items():
        settled = [float(r["settled_s"]) for r in out.values() if r["status"] == "Accepted"]  # type: ignore[arg-type]
        run = CyberRun(4, 0, dict.fromkeys(out, 1000.0), out, settled, 4, len(settled), 0, dict.fromkeys(out, 1000.0))
        summaries[name] = run.summary()
    assert summaries["two lost"]["fanout_p50_s"] == 0.3 and summaries["two lost"]["fanout_max_s"] == 0.3
    assert summaries["three lost"]["fanout_p50_s"] is None
