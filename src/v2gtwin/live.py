"""The closed loop in operation: every ``interval_s`` read the live state from a running central system's HTTP API,
plan with the study's models (:func:`v2gtwin.live_plan.plan_cycle`) and send the next set-points through the same
API; every cycle is recorded as one JSON line so that a run can be replayed (:func:`replay_run`) and reported.

The central system stays free of the numeric stack; this module is where the two meet. The client is anything with
the methods of :class:`v2gtwin.cyber.api_client.ApiClient` that the loop calls (:class:`LiveClient`).

Run folder: ``run.json`` (scenario as TOML, server, interval, start time) and ``cycles.jsonl``, one record per
cycle, each appended with one ``write`` on a file opened for appending and flushed to disk (``fsync``) before the
next cycle, so a crash leaves whole records only (a torn last line, if the disk lies, is named when read).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from v2gtwin.errors import DataError, V2GTwinError
from v2gtwin.jsonout import dumps_strict
from v2gtwin.live_plan import CyclePlan, NetworkSlots, calc_network_slots, plan_cycle
from v2gtwin.live_state import NeedBook, NeedEntry, parse_utc, read_live_state, update_need_book
from v2gtwin.scenario import Scenario, parse_scenario, scenario_to_toml

__all__ = [
    "CYCLES_FILE",
    "REGULATION_FILE",
    "RUN_FILE",
    "LiveClient",
    "ReplayResult",
    "read_regulation",
    "read_run",
    "rebuild_need_book",
    "regulate",
    "replay_run",
    "run_cycle",
    "run_loop",
    "summarize_regulation",
    "summarize_run",
]

logger = logging.getLogger(__name__)

RUN_FILE = "run.json"
CYCLES_FILE = "cycles.jsonl"
REGULATION_FILE = "regulation.jsonl"


class LiveClient(Protocol):
    """What the loop asks of the central system's API (:class:`v2gtwin.cyber.api_client.ApiClient`)."""

    def stations(self) -> list[dict[str, Any]]: ...

    def charging_needs(self) -> list[dict[str, Any]]: ...

    def post_setpoints(
        self, setpoints: list[Mapping[str, Any]], timeout_s: float = 10.0, duration_s: int | None = None
    ) -> list[dict[str, Any]]: ...


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def append_record(path: Path, record: Mapping[str, Any]) -> None:
    """Append one record as a JSON line: one ``write`` of the whole line to a file opened with ``O_APPEND``, then
    ``fsync`` (strict JSON: a non-finite number is an error, nothing is written)."""
    line = (dumps_strict(record, indent=None) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def run_cycle(
    client: LiveClient,
    scenario: Scenario,
    book: NeedBook,
    *,
    cycle: int,
    t_utc: dt.datetime,
    slots: NetworkSlots | None = None,
    timeout_s: float = 10.0,
    duration_s: int | None = None,
) -> tuple[dict[str, Any], NeedBook, CyclePlan | None]:
    """One cycle: read, plan, send. Returns (the cycle's record, the need book after it, the plan or None).

    An error inside the cycle (the API, the data, the solver, or a malformed answer: a missing key, a value of the
    wrong type) is recorded in ``error`` and the book is kept, so the loop goes on; the record says how far the
    cycle got (``stage``).
    """
    t0 = time.perf_counter()
    rec: dict[str, Any] = {"cycle": cycle, "t_utc": _iso(t_utc), "stage": "read", "error": None}
    plan: CyclePlan | None = None
    try:
        stations = client.stations()
        needs = client.charging_needs()
        rec["read_s"] = time.perf_counter() - t0
        rec["inputs"] = {"stations": stations, "needs": needs}
        rec["stage"] = "plan"
        state = read_live_state({"stations": stations}, {"needs": needs}, t_utc)
        book = update_need_book(book, state, scenario.fleet.eta_charge, scenario.fleet.eta_discharge)
        plan = plan_cycle(scenario, state, book, slots)
        rec["plan"] = plan.summary()
        setpoints: list[Mapping[str, Any]] = [
            {"station_id": sid, "evse_id": int(e), "p_kw": round(float(p), 3)}
            for sid, e, p in zip(state.station_id, state.evse_id, plan.p_set_kw, strict=True)
        ]
        rec["setpoints"] = setpoints
        rec["p_planned_kw"] = [round(float(p), 3) for p in plan.p_planned_kw]
        rec["stage"] = "send"
        t_send = time.perf_counter()
        results = client.post_setpoints(setpoints, timeout_s=timeout_s, duration_s=duration_s) if setpoints else []
        rec["send_s"] = time.perf_counter() - t_send
        rec["acked_utc"] = _iso(_utc_now())  # the wall clock when every answer was in (readings after it count)
        rec["results"] = results
        rec["stage"] = "done"
    except V2GTwinError as exc:
        rec["error"] = str(exc)
        logger.warning("live cycle %d (%s): %s", cycle, rec["stage"], exc)
    except (ArithmeticError, LookupError, TypeError, ValueError) as exc:  # a malformed answer, said as what it was
        rec["error"] = f"{type(exc).__name__}: {exc}"
        logger.exception("live cycle %d (%s)", cycle, rec["stage"])
    rec["cycle_s"] = time.perf_counter() - t0
    return rec, book, plan


def run_loop(
    client: LiveClient,
    scenario: Scenario,
    *,
    interval_s: float = 300.0,
    cycles: int | None = None,
    record_dir: str | Path | None = None,
    server: str = "",
    timeout_s: float = 10.0,
    clock: Callable[[], dt.datetime] = _utc_now,
    wait: Callable[[float], None] = time.sleep,
    on_cycle: Callable[[dict[str, Any]], None] | None = None,
    regulation: bool = False,
    resume: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Run the loop for ``cycles`` cycles (None: until interrupted), one every ``interval_s`` of ``clock``.

    ``clock`` gives the time each cycle describes and ``wait(seconds)`` waits until the next one (the real clock
    and ``time.sleep`` by default; a test passes a simulated clock and a ``wait`` that advances its simulation:
    the time scaling). ``record_dir``: the run folder (created; ``run.json`` written once, one line per cycle
    appended to ``cycles.jsonl``). Returns the records (without their bulky inputs when recording to disk).

    ``regulation``: between cycles, every 2 s, a regulation signal allocated across the live fleet around the
    cycle's set-points and sent (:func:`regulate`; one line per tick in ``regulation.jsonl``).

    ``resume``: a run folder recorded before (the same EVs, a loop restarted): the need book is rebuilt from its
    cycles (:func:`rebuild_need_book`), so each need keeps its first SoC and the energy stored since, and the
    target does not move; its path is kept in ``run.json`` (``resumed_from``). Without it the loop starts with an
    empty book: every need present is taken as new, its full request still to deliver from the SoC now.
    """
    if not (math.isfinite(interval_s) and interval_s > 0):
        raise DataError(f"interval_s = {interval_s}: must be a finite number of seconds > 0")
    if cycles is not None and cycles < 1:
        raise DataError(f"cycles = {cycles}: must be >= 1")
    slots = calc_network_slots(scenario)
    book: NeedBook = {}
    if resume is not None:
        try:
            book = rebuild_need_book(read_run(resume)[1], scenario)
        except DataError as exc:
            raise DataError(f"--resume: {exc}") from None
    path: Path | None = None
    if record_dir is not None:
        run = Path(record_dir)
        if run.exists() and not run.is_dir():
            raise DataError(f"--record {run}: a file, not a folder; choose a new folder")
        try:
            run.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataError(
                f"--record {run}: cannot create the folder ({exc.strerror or type(exc).__name__})"
            ) from None
        path = run / CYCLES_FILE
        if path.exists() and path.stat().st_size:
            raise DataError(f"--record {run}: already holds a run ({CYCLES_FILE}); choose a new folder")
        meta = {
            "server": server,
            "interval_s": interval_s,
            "started_utc": _iso(clock()),
            "scenario_toml": scenario_to_toml(scenario),
            "resumed_from": None if resume is None else str(Path(resume).resolve()),
        }
        tmp = run / (RUN_FILE + ".tmp")
        tmp.write_text(dumps_strict(meta) + "\n")
        tmp.replace(run / RUN_FILE)
    out: list[dict[str, Any]] = []
    k = 0
    while cycles is None or k < cycles:
        t_start = time.perf_counter()
        # Each set-point holds for two intervals, then the station falls back to its default: a loop that stops
        # (or loses the server) leaves no EV discharging on the last set-point.
        rec, book, plan = run_cycle(
            client,
            scenario,
            book,
            cycle=k,
            t_utc=clock(),
            slots=slots,
            timeout_s=timeout_s,
            duration_s=max(1, round(2.0 * interval_s)),
        )
        if path is not None:
            append_record(path, rec)
            rec = {key: v for key, v in rec.items() if key != "inputs"}
        out.append(rec)
        if on_cycle is not None:
            on_cycle(rec)
        k += 1
        if cycles is None or k < cycles:
            if regulation and plan is not None and plan.fleet.n and rec["error"] is None:
                reg_path = None if path is None else path.with_name(REGULATION_FILE)
                for tick in regulate(client, scenario, plan, rec, interval_s, t_start, wait, timeout_s):
                    if reg_path is not None:
                        append_record(reg_path, tick)
            wait(max(0.0, interval_s - (time.perf_counter() - t_start)))
    return out


def regulate(
    client: LiveClient,
    scenario: Scenario,
    plan: CyclePlan,
    rec: Mapping[str, Any],
    interval_s: float,
    t_start: float,
    wait: Callable[[float], None],
    timeout_s: float = 10.0,
) -> Iterator[dict[str, Any]]:
    """The regulation ticks of one cycle (:mod:`v2gtwin.live_regulation`): every 2 s after the cycle started
    (``t_start``, a ``time.perf_counter`` value), until the interval's last 2 s, the signal's share of the fleet's
    capacity allocated around the cycle's set-points, clipped to the stations' limits (counted) and sent. Yields one
    record per tick; an error inside a tick (the API, the allocation, a malformed answer) is recorded in its
    ``error`` and the ticks go on; an error before the first tick is one record with ``tick`` None."""
    from v2gtwin.live_regulation import (
        TICK_S,
        calc_regulation_capacity_kw,
        calc_regulation_setpoints,
        live_signal,
    )

    n_ticks = max(int(interval_s // TICK_S) - 1, 0)
    cycle = int(rec["cycle"])
    try:
        signal = live_signal(scenario.seed, cycle, n_ticks)
        cap = calc_regulation_capacity_kw(plan.fleet, plan.p_set_kw)
        lo, hi = -plan.fleet.p_discharge_max_kw, plan.fleet.p_charge_max_kw
    except _TICK_ERRORS as exc:  # nothing to allocate this cycle: one record says why
        yield _failed_tick(cycle, None, exc)
        return
    for j in range(n_ticks):
        wait(max(0.0, t_start + (j + 1) * TICK_S - time.perf_counter()))
        try:
            tick = calc_regulation_setpoints(plan.fleet, plan.p_set_kw, float(signal[j]), cap)
            p = np.clip(tick.p_set_kw, lo, hi)
            row: dict[str, Any] = {
                "cycle": cycle,
                "tick": j,
                "signal_pu": float(signal[j]),
                "capacity_kw": cap,
                "target_kw": tick.target_kw,
                "allocated_kw": tick.allocated_kw,
                "n_clipped_station": int((np.abs(p - tick.p_set_kw) > 1e-9).sum()),
                "error": None,
            }
            sps: list[Mapping[str, Any]] = [
                {"station_id": sp["station_id"], "evse_id": sp["evse_id"], "p_kw": round(float(x), 3)}
                for sp, x in zip(rec["setpoints"], p, strict=True)
            ]
            res = client.post_setpoints(sps, timeout_s=timeout_s)
            acc = [r for r in res if r.get("status") == "Accepted"]
            lat = [float(r["latency_s"]) for r in acc if r.get("latency_s") is not None]
            row |= {"n_acknowledged": len(acc), "latency_max_s": max(lat) if lat else None}
        except _TICK_ERRORS as exc:
            row = _failed_tick(cycle, j, exc)
        yield row


#: What a regulation tick records and goes on after (the API, the data, the allocation, a malformed answer).
_TICK_ERRORS = (V2GTwinError, ArithmeticError, LookupError, TypeError, ValueError)


def _failed_tick(cycle: int, tick: int | None, exc: Exception) -> dict[str, Any]:
    """The record of a tick that failed (``tick`` None: the cycle's regulation failed before its first tick)."""
    msg = str(exc) if isinstance(exc, V2GTwinError) else f"{type(exc).__name__}: {exc}"
    logger.warning("live regulation, cycle %d tick %s: %s", cycle, tick, msg)
    return {"cycle": cycle, "tick": tick, "signal_pu": None, "capacity_kw": None, "target_kw": None} | {
        "allocated_kw": None,
        "n_clipped_station": 0,
        "error": msg,
    }


def read_run(run_dir: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The run folder's ``run.json`` and its cycle records, in order.

    Raises
    ------
    DataError
        A missing folder or file, or a line that is not a JSON record (naming the file and line).
    """
    run = Path(run_dir)
    meta_path, cyc_path = run / RUN_FILE, run / CYCLES_FILE
    for p in (meta_path, cyc_path):
        if not p.is_file():
            raise DataError(f"run folder {run}: {p.name} missing (not a recorded live run)")
    try:
        meta = json.loads(meta_path.read_text())
    except ValueError:  # UnicodeDecodeError is one
        raise DataError(f"{meta_path}: not JSON") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("scenario_toml"), str):
        raise DataError(f"{meta_path}: not a live run's run.json (no scenario_toml)")
    records: list[dict[str, Any]] = []
    for n, line in enumerate(_read_lines(cyc_path), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError:
            raise DataError(f"{cyc_path} line {n}: not a whole JSON record (a torn write?)") from None
        if not isinstance(records[-1], dict):
            raise DataError(f"{cyc_path} line {n}: not a JSON object (not a cycle record)")
    return meta, records


def _read_lines(path: Path) -> list[str]:
    """The lines of a JSON-lines file; bytes that are not UTF-8 (not a record file) are one line naming it."""
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise DataError(f"{path}: not text (UTF-8 JSON lines expected)") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or type(exc).__name__})") from None


def rebuild_need_book(records: Sequence[Mapping[str, Any]], scenario: Scenario) -> dict[str, NeedEntry]:
    """The need book at the end of a recorded run: :func:`~v2gtwin.live_state.update_need_book` over the recorded
    inputs of its cycles, in order (cycles without inputs skipped; a cycle whose inputs no longer read is an
    error naming it)."""
    book: dict[str, NeedEntry] = {}
    for rec in records:
        inputs = rec.get("inputs")
        if not inputs:
            continue
        try:
            t = parse_utc(rec["t_utc"], "t_utc")
            state = read_live_state({"stations": inputs["stations"]}, {"needs": inputs["needs"]}, t)
        except (V2GTwinError, LookupError, TypeError) as exc:
            raise DataError(f"recorded cycle {rec.get('cycle')}: its inputs do not read ({exc})") from None
        book = update_need_book(book, state, scenario.fleet.eta_charge, scenario.fleet.eta_discharge)
    return book


@dataclass(frozen=True)
class ReplayResult:
    """A recorded run planned again from its recorded inputs.

    Attributes
    ----------
    scenario : the run's scenario. records : the recorded cycles. plans : per cycle, the plan made again from
    its inputs (None for a cycle that failed before planning). max_setpoint_diff_kw : the largest difference
    between a replayed set-point and the recorded one over the run (0 up to the solver's tolerance) [kW].
    """

    scenario: Scenario
    records: list[dict[str, Any]]
    plans: list[CyclePlan | None]
    max_setpoint_diff_kw: float


def replay_run(run_dir: str | Path) -> ReplayResult:
    """Plan every recorded cycle again from its recorded inputs (the need book rebuilt in order, starting from the
    run it resumed, ``resumed_from``, when it did), as a study."""
    meta, records = read_run(run_dir)
    import tomllib

    try:
        doc = tomllib.loads(meta["scenario_toml"])
    except tomllib.TOMLDecodeError as exc:
        raise DataError(f"{run_dir}/{RUN_FILE}: scenario_toml is not TOML ({exc})") from None
    scenario = parse_scenario(doc, f"{run_dir}/{RUN_FILE}")
    slots = calc_network_slots(scenario)
    prior = meta.get("resumed_from")
    book: NeedBook = rebuild_need_book(read_run(prior)[1], scenario) if prior else {}
    plans: list[CyclePlan | None] = []
    diff = 0.0
    for rec in records:
        inputs = rec.get("inputs")
        if inputs is None:
            plans.append(None)
            continue
        state = read_live_state(
            {"stations": inputs["stations"]}, {"needs": inputs["needs"]}, parse_utc(rec["t_utc"], "t_utc")
        )
        book = update_need_book(book, state, scenario.fleet.eta_charge, scenario.fleet.eta_discharge)
        try:
            plan = plan_cycle(scenario, state, book, slots)
        except V2GTwinError:
            plans.append(None)
            continue
        plans.append(plan)
        sent = rec.get("setpoints")
        if sent:
            p = np.asarray([s["p_kw"] for s in sent], dtype=float)
            diff = max(diff, float(np.max(np.abs(np.round(plan.p_set_kw, 3) - p))))
    return ReplayResult(scenario=scenario, records=records, plans=plans, max_setpoint_diff_kw=diff)


def read_regulation(run_dir: str | Path) -> list[dict[str, Any]]:
    """The run's regulation ticks (``regulation.jsonl``; empty when the run had none), in order."""
    path = Path(run_dir) / REGULATION_FILE
    if not path.is_file():
        return []
    out: list[dict[str, Any]] = []
    for n, line in enumerate(_read_lines(path), start=1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except ValueError:
                raise DataError(f"{path} line {n}: not a whole JSON record (a torn write?)") from None
    return out


def summarize_regulation(ticks: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The regulation ticks in figures (JSON-ready): ticks sent and failed, the band's range [kW], the share of the
    requested injection the allocation found room for (sum |allocated| / sum |target|), the slowest acknowledgement
    [s]."""
    ok = [t for t in ticks if t.get("error") is None]
    alloc = [t for t in ticks if t.get("target_kw") is not None and t.get("allocated_kw") is not None]
    target = sum(abs(float(t["target_kw"])) for t in alloc)
    lat = [float(t["latency_max_s"]) for t in ok if t.get("latency_max_s") is not None]
    caps = [float(t["capacity_kw"]) for t in ticks if t.get("capacity_kw") is not None]
    return {
        "n_ticks": len(ticks),
        "n_ticks_failed": len(ticks) - len(ok),
        "capacity_min_kw": min(caps) if caps else None,
        "capacity_max_kw": max(caps) if caps else None,
        "allocated_share": sum(abs(float(t["allocated_kw"])) for t in alloc) / target if target > 0 else None,
        "latency_max_s": max(lat) if lat else None,
    }


#: Time granted to a reading's timestamp before the acknowledgement: OCPP timestamps are often whole seconds [s].
TIMESTAMP_RESOLUTION_S = 1.0


def _delivered_after_ack(
    sent: Mapping[str, float], rec: Mapping[str, Any], nxt: Mapping[str, Any], settle_s: float
) -> tuple[list[str], dict[str, float], str | None]:
    """The stations of ``sent`` whose reading in ``nxt`` was taken after ``rec``'s acknowledgement + ``settle_s``
    (with their power [kW]), and a note when some or all were not."""
    acked = rec.get("acked_utc")
    if acked is None:
        return [], {}, "no acknowledgement time recorded: delivered not counted"
    t_ok = parse_utc(acked, "acked_utc") + dt.timedelta(seconds=settle_s - TIMESTAMP_RESOLUTION_S)
    p_now: dict[str, float] = {}
    n_early = 0
    for st in nxt["inputs"]["stations"]:
        sid = st.get("station_id")
        for e in st.get("evses") or []:
            if sid not in sent or e.get("p_kw") is None:
                continue
            at = e.get("measured_at")
            if at is None or parse_utc(at, "measured_at") < t_ok:
                n_early += 1
                continue
            p_now[sid] = float(e["p_kw"])
    common = [sid for sid in sent if sid in p_now]
    note = None
    if n_early:
        note = (
            f"{n_early} station(s) had no reading after the set-point was acknowledged (+{settle_s:g} s): not counted"
        )
    return common, p_now, note


def summarize_run(records: Sequence[Mapping[str, Any]], interval_s: float, settle_s: float = 0.0) -> dict[str, Any]:
    """Planned against delivered, cycle by cycle, and the acknowledgements' latencies (JSON-ready).

    Planned: the set-points sent in cycle ``k`` held for ``interval_s`` [kWh]. Delivered: the stations' reported
    power at cycle ``k + 1`` (``p_kw`` of their EVSEs, the meter's latest reading) over the same time [kWh], for
    the stations that had a set-point in cycle ``k`` and whose reading was taken (``measured_at``) after the
    set-points were acknowledged (``acked_utc``) plus ``settle_s`` [s] (less :data:`TIMESTAMP_RESOLUTION_S` for
    timestamps in whole seconds): a reading from before is the power before the set-point, not the station's
    answer to it, and is left out, said in the cycle's ``delivered_note`` (``e_delivered_kwh`` None when no
    station counts). Deviation: delivered - planned [kWh]. ``overran``: the cycle took longer than the interval
    (``cycle_s > interval_s``; the next cycle then starts late).
    """
    h = interval_s / 3600.0
    rows: list[dict[str, Any]] = []
    lat: list[float] = []
    n_failed = 0
    for k, rec in enumerate(records):
        sent = {s["station_id"]: float(s["p_kw"]) for s in rec.get("setpoints") or []}
        res = rec.get("results") or []
        acc = [r for r in res if r.get("status") == "Accepted"]
        lat += [float(r["latency_s"]) for r in acc if r.get("latency_s") is not None]
        n_failed += len(res) - len(acc)
        cycle_s = rec.get("cycle_s")
        row: dict[str, Any] = {
            "cycle": rec.get("cycle", k),
            "t_utc": rec.get("t_utc"),
            "n_evs": (rec.get("plan") or {}).get("n_evs", 0),
            "p_set_total_kw": sum(sent.values()),
            "e_planned_kwh": sum(sent.values()) * h,
            "e_delivered_kwh": None,
            "e_deviation_kwh": None,
            "delivered_note": None,
            "n_acknowledged": len(acc),
            "solve_s": (rec.get("plan") or {}).get("solve_s"),
            "cycle_s": cycle_s,
            "overran": cycle_s is not None and float(cycle_s) > interval_s,
            "error": rec.get("error"),
        }
        nxt = records[k + 1] if k + 1 < len(records) else None
        if sent and nxt is not None and nxt.get("inputs"):
            common, p_now, note = _delivered_after_ack(sent, rec, nxt, settle_s)
            row["delivered_note"] = note
            if common:
                planned = sum(sent[s] for s in common) * h
                delivered = sum(p_now[s] for s in common) * h
                row |= {
                    "e_planned_kwh": planned,
                    "e_delivered_kwh": delivered,
                    "e_deviation_kwh": delivered - planned,
                }
        elif sent and nxt is None:
            row["delivered_note"] = "last cycle: no later reading"
        rows.append(row)
    lat_a = np.sort(np.asarray(lat, dtype=float))

    def pct(q: float) -> float | None:
        return float(np.quantile(lat_a, q)) if lat_a.size else None

    dev = [abs(r["e_deviation_kwh"]) for r in rows if r["e_deviation_kwh"] is not None]
    return {
        "n_cycles": len(records),
        "n_cycles_failed": sum(1 for r in records if r.get("error")),
        "n_cycles_overran": sum(1 for r in rows if r["overran"]),
        "settle_s": settle_s,
        "interval_s": interval_s,
        "latency_p50_s": pct(0.5),
        "latency_p99_s": pct(0.99),
        "latency_max_s": pct(1.0),
        "n_acknowledged": int(lat_a.size),
        "n_not_acknowledged": n_failed,
        "e_deviation_max_kwh": max(dev) if dev else None,
        "cycles": rows,
    }
