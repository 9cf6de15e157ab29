"""Running a planned sweep (:mod:`v2gtwin.sweep`) on dask.distributed, resumably, into one Parquet table.

- The cluster: a ``LocalCluster`` of worker processes by default (one thread each; numba's and BLAS's threads
  split the cores among the workers), or an existing scheduler at ``tcp://HOST:PORT``.
- One task per distinct scenario (:func:`v2gtwin.sweep.run_case`); the task returns a small row dict, and the
  client stores it at once in ``OUT/rows/<scenario_id>-<target>.json`` (written to a temporary name and renamed,
  so a row file is always whole). A rerun skips the scenarios whose row is stored ("ok" or "failed", written by
  this v2gtwin version) and says how many; "lost" rows (worker died, task cancelled) run again. A task that
  raised is "failed" with its error, like a scenario whose study failed.
- The table ``OUT/sweep.parquet`` (pyarrow): one row per grid point, gathered from the row files, written to a
  temporary name and renamed, so an earlier table is only ever replaced by a complete one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from v2gtwin import __version__
from v2gtwin.errors import ClusterError, ScenarioError
from v2gtwin.jsonout import dumps_strict
from v2gtwin.sweep import STATUS_FAILED, STATUS_LOST, STATUS_OK, SweepPlan, run_case

__all__ = ["TABLE_NAME", "SweepOutcome", "check_sweep_dir", "open_client", "read_done_rows", "run_sweep"]

logger = logging.getLogger(__name__)

TABLE_NAME = "sweep.parquet"
ROWS_DIR = "rows"

#: Scheduler addresses the sweep accepts: a protocol dask.distributed speaks, a host and a port.
_ADDRESS = re.compile(r"^(tcp|tls|ucx|ws|wss)://[^\s/:]+:\d{1,5}$")


@dataclass(frozen=True)
class SweepOutcome:
    """What a sweep did.

    Attributes
    ----------
    table : the gathered table, one row per grid point (the columns are described in docs/sweep.md).
    table_path : where it was written (``OUT/sweep.parquet``).
    cluster : the cluster it ran on, in words (workers, processes, threads).
    n_cases : grid points [-]. n_unique : distinct scenarios among them [-].
    n_done_before : distinct scenarios whose row a previous run had stored (skipped) [-].
    n_run : distinct scenarios run now [-].
    counts : grid points by status ("ok", "failed", "lost") [-].
    """

    table: pd.DataFrame
    table_path: Path
    cluster: str
    n_cases: int
    n_unique: int
    n_done_before: int
    n_run: int
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Every scenario ran every step asked for."""
        return self.counts.get(STATUS_OK, 0) == self.n_cases

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary (``v2gtwin sweep --json``): counts, paths and the failed rows' errors."""
        failed = self.table[self.table["status"] != STATUS_OK]
        return {
            "table": str(self.table_path),
            "cluster": self.cluster,
            "n_cases": self.n_cases,
            "n_unique": self.n_unique,
            "n_done_before": self.n_done_before,
            "n_run": self.n_run,
            "n_ok": self.counts.get(STATUS_OK, 0),
            "n_failed": self.counts.get(STATUS_FAILED, 0),
            "n_lost": self.counts.get(STATUS_LOST, 0),
            "failures": [
                {"scenario_id": r.scenario_id, "status": r.status, "error": r.error}
                for r in failed.itertuples(index=False)
            ],
        }


# --- the cluster -------------------------------------------------------------------------------------------
def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def check_scheduler_address(address: str) -> str:
    """``address`` if it is ``PROTOCOL://HOST:PORT`` (tcp, tls, ucx, ws, wss); else a :class:`ScenarioError`."""
    if not _ADDRESS.match(address) or not 0 < int(address.rsplit(":", 1)[1]) < 65536:
        raise ScenarioError(f"--scheduler {address!r}: expected tcp://HOST:PORT (a dask.distributed scheduler)")
    return address


@contextlib.contextmanager
def open_client(
    scheduler: str | None = None, n_workers: int | None = None, connect_timeout_s: float = 5.0
) -> Iterator[tuple[Any, str]]:
    """A dask.distributed client and the cluster it talks to, in words; the cluster is closed on exit when it
    was started here.

    Parameters
    ----------
    scheduler : address of a running scheduler (``tcp://HOST:PORT``); None: start a LocalCluster.
    n_workers : worker processes of the LocalCluster (default: the usable cores), one thread each [-].
    connect_timeout_s : how long to try to reach ``scheduler`` [s].

    Raises
    ------
    ClusterError
        The scheduler cannot be reached within ``connect_timeout_s``.
    """
    from distributed import Client, LocalCluster

    if scheduler is not None:
        address = check_scheduler_address(scheduler)
        try:
            client = Client(address, timeout=f"{connect_timeout_s}s", set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ClusterError(
                f"--scheduler {address}: cannot reach the scheduler within {connect_timeout_s:g} s "
                f"({type(exc).__name__}: {' '.join(str(exc).split())})"
            ) from None
        try:
            n = len(client.scheduler_info(n_workers=-1).get("workers", {}))
            yield client, f"scheduler {address} with {n} workers"
        finally:
            client.close()
        return
    cores = _usable_cores()
    n = n_workers or cores
    threads = max(1, cores // n)  # numba's and BLAS's threads in each worker process
    env = {k: str(threads) for k in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    cluster = LocalCluster(
        n_workers=n,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",  # any free port: never clashes with another cluster's 8787
        silence_logs=logging.ERROR,
        env=env,
    )
    try:
        client = Client(cluster, set_as_default=False)
        try:
            yield (
                client,
                (
                    f"LocalCluster: {n} worker processes x 1 task thread, {threads} numba thread(s) each, "
                    f"on {cores} cores"
                ),
            )
        finally:
            client.close()
    finally:
        cluster.close()


# --- the row store -----------------------------------------------------------------------------------------
def _row_path(out_dir: Path, scenario_id: str, target: str | None) -> Path:
    return out_dir / ROWS_DIR / f"{scenario_id}-{(target or 'study').replace(',', '+')}.json"


def _write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Write through ``write(tmp)`` to a temporary file beside ``path``, then rename it onto ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_row(path: Path) -> dict[str, Any] | None:
    """A stored row, or None when it is missing, unreadable or written by another v2gtwin version."""
    try:
        row = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(row, dict) or row.get("v2gtwin_version") != __version__:
        return None
    return row


def _store_row(path: Path, row: dict[str, Any]) -> None:
    text = dumps_strict(row)
    _write_atomic(path, lambda p: p.write_text(text + "\n", encoding="utf-8"))


def check_sweep_dir(out_dir: Path) -> Path:
    """``out_dir`` if it is a folder, or can be made one, that this process may write in (nothing is created);
    else a one-line :class:`ScenarioError`."""
    probe = out_dir
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe == out_dir and not out_dir.is_dir():
        raise ScenarioError(f"--out {out_dir}: exists and is not a folder")
    if probe != out_dir and not probe.is_dir():
        raise ScenarioError(f"--out {out_dir}: {probe} is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ScenarioError(f"--out {out_dir}: {probe} is not writable")
    rows = out_dir / ROWS_DIR
    if rows.exists() and not rows.is_dir():
        raise ScenarioError(f"--out {out_dir}: {rows} exists and is not a folder")
    return out_dir


def prepare_sweep_dir(out_dir: Path) -> Path:
    """Create ``OUT`` and ``OUT/rows``; a path that cannot be a folder is a one-line :class:`ScenarioError`."""
    check_sweep_dir(out_dir)
    try:
        (out_dir / ROWS_DIR).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ScenarioError(f"--out {out_dir}: cannot create the sweep folder ({exc.strerror or exc})") from None
    return out_dir


# --- the sweep ---------------------------------------------------------------------------------------------
def read_done_rows(plan: SweepPlan, out_dir: Path, retry_failed: bool = False) -> dict[str, dict[str, Any]]:
    """The rows of ``plan`` an earlier run stored in ``out_dir`` and a rerun skips, by scenario id: "ok" and
    "failed" rows (not "failed" ones with ``retry_failed``) written by this v2gtwin version."""
    rows: dict[str, dict[str, Any]] = {}
    for sid in {c.scenario_id for c in plan.cases}:
        row = _read_row(_row_path(out_dir, sid, plan.target))
        if row is None or row.get("status") == STATUS_LOST or (retry_failed and row.get("status") == STATUS_FAILED):
            continue
        rows[sid] = row
    return rows


def run_sweep(
    plan: SweepPlan,
    out_dir: Path,
    client: Any,
    *,
    cluster: str = "",
    retry_failed: bool = False,
    on_progress: Callable[[int, int, int], None] | None = None,
) -> SweepOutcome:
    """Run ``plan`` on ``client``'s cluster and write ``OUT/sweep.parquet``.

    Parameters
    ----------
    plan : the validated sweep (:func:`v2gtwin.sweep.plan_sweep`).
    out_dir : the sweep's folder (``rows/`` and ``sweep.parquet``; made here).
    client : a ``distributed.Client`` (:func:`open_client`); None when every scenario is stored already
        (:func:`read_done_rows`): the table is then gathered without a cluster.
    cluster : the cluster in words, for the outcome.
    retry_failed : run the scenarios whose stored row failed again (they are skipped by default: a seeded
        study fails the same way twice).
    on_progress : called as ``on_progress(done, total, n_failed)`` after each finished scenario (a progress
        bar hooks in here), and once with ``done = 0`` before the first.
    """
    prepare_sweep_dir(out_dir)
    rows = read_done_rows(plan, out_dir, retry_failed)
    n_done_before = len(rows)
    todo = list({c.scenario_id: c for c in plan.cases if c.scenario_id not in rows}.values())
    if todo and client is None:
        raise ValueError(f"{len(todo)} scenarios to run and no client")
    total, done, n_failed = len(todo), 0, 0
    if on_progress is not None:
        on_progress(0, total, 0)
    slug = (plan.target or "study").replace(",", "+")
    futures: dict[Any, Any] = {}
    if todo:
        from distributed import as_completed

        submitted = client.map(
            run_case,
            [c.scenario.model_dump(mode="json") for c in todo],
            [plan.target] * len(todo),
            key=[f"v2gtwin-sweep-{c.scenario_id}-{slug}" for c in todo],
            pure=False,
        )
        futures = dict(zip(submitted, todo, strict=True))
    try:
        for fut in as_completed(list(futures), loop=client.loop) if futures else ():
            case = futures.pop(fut)
            row = fut.result() if fut.status == "finished" else _unfinished_row(fut)
            fut.release()
            row = {"scenario_id": case.scenario_id, "target": plan.target or "study"} | row
            row["v2gtwin_version"] = __version__
            _store_row(_row_path(out_dir, case.scenario_id, plan.target), row)
            rows[case.scenario_id] = row
            done += 1
            n_failed += row["status"] != STATUS_OK
            if on_progress is not None:
                on_progress(done, total, n_failed)
    finally:
        if futures:  # interrupted: what is stored stays stored; the rest is cancelled
            client.cancel(list(futures))
    table = build_table(plan, rows)
    path = out_dir / TABLE_NAME
    _write_atomic(path, lambda p: table.to_parquet(p, engine="pyarrow", index=False))
    counts = {s: int((table["status"] == s).sum()) for s in (STATUS_OK, STATUS_FAILED, STATUS_LOST)}
    return SweepOutcome(
        table=table,
        table_path=path,
        cluster=cluster,
        n_cases=len(plan.cases),
        n_unique=plan.n_unique,
        n_done_before=n_done_before,
        n_run=total,
        counts=counts,
    )


def _unfinished_row(fut: Any) -> dict[str, Any]:
    """The row of a task that did not return one: "lost" when its worker died (``KilledWorker``) or the task
    was cancelled (a rerun runs it again); "failed" when the task itself raised (an error outside the study
    that :func:`v2gtwin.sweep.run_case` did not catch: it would fail the same way again)."""
    from distributed.scheduler import KilledWorker

    exc = fut.exception() if fut.status == "error" else None
    status = STATUS_FAILED if exc is not None and not isinstance(exc, KilledWorker) else STATUS_LOST
    return {
        "status": status,
        "error": f"{type(exc).__name__}: {' '.join(str(exc).split())}" if exc else f"task {fut.status}",
        "steps_failed": "",
        "time_s": None,
        "worker": None,
    }


#: The table's leading columns (then the swept keys, then the key indicators).
LEAD_COLUMNS = ("case", "scenario_id")
RUN_COLUMNS = ("status", "error", "steps_failed", "target", "time_s", "worker", "v2gtwin_version")


def build_table(plan: SweepPlan, rows: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per grid point: ``case`` (grid position), ``scenario_id``, the swept keys, the run's columns
    (:data:`RUN_COLUMNS`), then the key indicators in the order the rows give them."""
    records = []
    for c in plan.cases:
        row = rows[c.scenario_id]
        rec = {"case": c.index, "scenario_id": c.scenario_id} | c.params
        rec |= {k: row.get(k) for k in RUN_COLUMNS}
        rec |= {k: v for k, v in row.items() if k not in rec}
        records.append(rec)
    table = pd.DataFrame.from_records(records)
    for col in table.columns:  # a count stays an integer column (nullable: a failed scenario has none)
        if str(col).startswith("n_") and not str(col).endswith("_passed") and pd.api.types.is_numeric_dtype(table[col]):
            table[col] = table[col].astype("Int64")
    return table
