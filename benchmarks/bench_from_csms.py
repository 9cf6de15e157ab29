"""Benchmark: ``comply --from-csms`` on a central system's store of N stations, and the inventory's cost at
connection time.

Prints one JSON line. Keys:

* ``stations``: N, the store's stations (OCPP 2.1, each with a device model and the six DER controls the
  simulated stations report: four must-trip curves, volt-var, frequency droop); one in ten is non-compliant
  (the legacy 59.3 Hz under-frequency trip). A register (one site, normal Category B and abnormal Category III,
  listed to UL 1741 SB, a placeholder rating the store replaces) lists them, so that a compliant station passes
  every IEEE 1547 rule.
* ``read_s``: wall time of :func:`v2gtwin.compliance.from_csms.register_from_csms` (read the store, map, merge,
  validate), median of ``--repeats``; ``audit_s``: the IEEE 1547 audit of that register
  (:func:`v2gtwin.compliance.audit.run_audit`, family ``ieee1547``); ``failing_stations``: stations with any
  failing IEEE 1547 finding (N / 10 expected: no rule is left out).
* ``connect_s_inventory`` / ``connect_s_plain``: with ``--connect K`` (default 50), K simulated stations connect,
  boot and plug in to a central system on loopback with and without ``inventory_on_boot``: the time until every
  station is in and, with the inventory, every report is stored; after one discarded warm-up run of each, the
  median of ``--repeats`` runs of each, the two alternating (plain first on even runs, inventory first on odd).

The store is written directly (the rows the central system would write), in a temporary folder.
Run: ``python benchmarks/bench_from_csms.py`` (``--stations``, ``--repeats``, ``--connect``). Wall times on a
shared machine: indicative.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from v2gtwin.compliance.audit import run_audit
from v2gtwin.compliance.from_csms import register_from_csms
from v2gtwin.compliance.register import parse_register
from v2gtwin.cyber.csms.inventory import der_control_rows, report_rows
from v2gtwin.cyber.csms.server import Csms
from v2gtwin.cyber.csms.sim_report import SimSettings, der_control_lists, device_model_report
from v2gtwin.cyber.csms.simulator import SimEV, run_fleet
from v2gtwin.cyber.csms.store import Store


def _snake(obj: object) -> object:
    """Wire-format keys to the snake_case the ``ocpp`` package hands the handlers (as it does)."""
    from ocpp.charge_point import camel_to_snake_case

    return camel_to_snake_case(obj)


def build_store(url: str, n: int) -> None:
    store = Store(url)
    ops = []
    for k in range(n):
        sid = f"CS-{k:05d}"
        settings = dataclasses.replace(SimSettings(), uf2_hz=59.3) if k % 10 == 0 else SimSettings()
        ops.append(Store.op_upsert_station(sid, settings.vendor, settings.model, firmware=settings.firmware))
        ops.append(Store.op_reported_variables(sid, report_rows(_snake(device_model_report(settings, 11000.0, 0.0)))))  # type: ignore[arg-type]
        lists = {"curve": [], "freq_droop": []} | {
            {"freqDroop": "freq_droop"}.get(key, key): _snake(v) for key, v in der_control_lists(settings).items()
        }
        ops.append(Store.op_der_controls(sid, der_control_rows(lists)))
    store.apply(ops)
    store.engine.dispose()


async def connect_time(k: int, inventory: bool, db: str) -> float:
    async with Csms(Store(db), port=0, inventory_on_boot=inventory) as csms:
        t0 = time.perf_counter()
        evs = [SimEV(v2x=True)] * k
        task = asyncio.create_task(run_fleet(f"ws://127.0.0.1:{csms.port}", k, evs=evs, hold_s=3600.0))
        while not (len(csms.booted) == k and (not inventory or all(csms.inventory_complete(s) for s in csms.booted))):
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - t0
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return elapsed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stations", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--connect", type=int, default=50)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'csms.sqlite'}"
        build_store(url, args.stations)
        register = parse_register(
            {
                "sites": [{"id": "S1"}],
                "inverters": [
                    {
                        "id": f"CS-{k:05d}",
                        "site": "S1",
                        "rating_kw": 1.0,
                        "normal_category": "B",
                        "abnormal_category": "III",
                        "certifications": ["UL 1741 SB"],
                    }
                    for k in range(args.stations)
                ],
            }
        )
        reads, audits = [], []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            got = register_from_csms(url, register)
            reads.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            audit = run_audit(got.register, families=("ieee1547",))
            audits.append(time.perf_counter() - t0)
        failing = {f.asset for f in audit.findings if f.status == "fail"}
        out = {
            "stations": args.stations,
            "read_s": round(statistics.median(reads), 4),
            "audit_s": round(statistics.median(audits), 4),
            "failing_stations": len(failing),
        }
        if args.connect:
            times: dict[bool, list[float]] = {False: [], True: []}
            for run in range(args.repeats + 1):  # run 0: warm-up (imports, first connections), discarded
                order = (False, True) if run % 2 == 0 else (True, False)
                for inventory in order:
                    db = f"sqlite:///{tmp}/connect-{run}-{int(inventory)}.sqlite"
                    elapsed = asyncio.run(connect_time(args.connect, inventory, db))
                    if run > 0:
                        times[inventory].append(elapsed)
            out["connect_s_plain"] = round(statistics.median(times[False]), 3)
            out["connect_s_inventory"] = round(statistics.median(times[True]), 3)
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
