"""A throwaway PostgreSQL server on this machine, for the tests and the load benchmark of the central system.

``initdb`` makes a cluster in a fresh temporary folder and ``pg_ctl`` starts it, listening on 127.0.0.1 at a free
port and on a unix socket in the same folder, with ``fsync`` and ``synchronous_commit`` on (a commit returns
only once its write-ahead log record is flushed to disk: the durability the central system's acknowledgements
rely on). PostgreSQL refuses to run as root, so under root both run as an unprivileged system user (``nobody``
by default) through ``runuser``, the folder handed to that user. :meth:`LocalPostgres.stop` stops the server
and removes the folder. Access is ``trust`` (no password) and only local: a test server, not a deployment.

It lives in the package (not in ``tests/``) so that the tests and ``benchmarks/bench_csms.py --db postgresql``
start the server the same way, from one piece of code.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from v2gtwin.errors import V2GTwinError

__all__ = ["LocalPostgres", "find_pg_bin", "start_local_postgres"]

SUPERUSER = "postgres"  # the cluster's superuser name (initdb -U), whatever the operating-system user


def find_pg_bin(name: str) -> str | None:
    """The path of PostgreSQL's server program ``name`` (initdb, pg_ctl): on PATH, else in Debian's
    /usr/lib/postgresql/<version>/bin (newest version); None when absent."""
    found = shutil.which(name)
    if found:
        return found
    candidates = glob.glob(f"/usr/lib/postgresql/*/bin/{name}")
    candidates.sort(key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LocalPostgres:
    """A running throwaway server: its folder (data in ``root/data``, socket and log in ``root``), TCP port and
    the operating-system user it runs as (None: this process's user)."""

    root: Path
    port: int
    os_user: str | None
    pg_ctl: str

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of ``database`` on this server, over TCP on 127.0.0.1 (driver psycopg 3)."""
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database (a unique name starting with ``prefix``); returns its SQLAlchemy URL."""
        import psycopg

        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname=postgres") as conn:
            conn.autocommit = True
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def create_schema(self, prefix: str = "s") -> str:
        """A new empty schema (a unique name starting with ``prefix``) in the ``postgres`` database; returns the
        SQLAlchemy URL whose connections work in it (``search_path`` set to it) — milliseconds, where a new
        database copies its template (about 0.5 s)."""
        import psycopg

        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname=postgres") as conn:
            conn.execute(f'CREATE SCHEMA "{name}"')
        return f"{self.url()}?options=-csearch_path%3D{name}"

    def stop(self) -> None:
        """Stop the server and remove its folder (immediate shutdown: no final checkpoint, the data is
        thrown away)."""
        try:
            if (self.data_dir / "postmaster.pid").exists():
                _run_as(self.os_user, [self.pg_ctl, "stop", "-D", str(self.data_dir), "-m", "immediate", "-w"], 60)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _runuser() -> str | None:
    """util-linux's runuser (on PATH, else in /usr/sbin or /sbin: root's PATH may lack them)."""
    found = [p for p in ("/usr/sbin/runuser", "/sbin/runuser") if Path(p).exists()]
    return shutil.which("runuser") or (found[0] if found else None)


def _run_as(os_user: str | None, cmd: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    full = [_runuser() or "runuser", "-u", os_user, "--", *cmd] if os_user else cmd
    return subprocess.run(full, capture_output=True, text=True, timeout=timeout_s, check=False)


def start_local_postgres(os_user: str = "nobody", timeout_s: float = 120.0) -> LocalPostgres:
    """Make and start a throwaway PostgreSQL server (see the module's docstring).

    Parameters
    ----------
    os_user : the unprivileged user to run as when this process is root (ignored otherwise).
    timeout_s : limit for initdb and for the server's start, each [s].

    Raises
    ------
    V2GTwinError : initdb or pg_ctl is not installed, ``runuser`` is missing under root, or the server did not
        start (the message carries the end of its log).
    """
    initdb, pg_ctl = find_pg_bin("initdb"), find_pg_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        raise V2GTwinError("PostgreSQL's initdb/pg_ctl not found (Debian: apt-get install postgresql)")
    user: str | None = None
    if os.geteuid() == 0:
        if _runuser() is None:
            raise V2GTwinError("running as root without runuser: cannot start PostgreSQL as an unprivileged user")
        user = os_user
    root = Path(tempfile.mkdtemp(prefix="v2gtwin-pg-"))
    if user is not None:
        pw = pwd.getpwnam(user)
        os.chown(root, pw.pw_uid, pw.pw_gid)
    data = root / "data"
    # initdb --no-sync: the new cluster's files are not flushed at creation (a throwaway cluster; the server
    # itself runs with fsync on).
    made = _run_as(
        user,
        [initdb, "-D", str(data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"],
        timeout_s,
    )
    if made.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise V2GTwinError(f"initdb failed: {(made.stderr or made.stdout).strip().splitlines()[-1:]}")
    # The defaults, written out (in the configuration file, not on the command line, so that ALTER SYSTEM can
    # still change them for a test).
    with (data / "postgresql.conf").open("a") as conf:
        conf.write("\nfsync = on\nsynchronous_commit = on\nfull_page_writes = on\nmax_connections = 200\n")
    server = LocalPostgres(root=root, port=0, os_user=user, pg_ctl=pg_ctl)
    for _ in range(3):  # a free port may be taken by another process before the server binds it
        server.port = _free_port()
        opts = f"-p {server.port} -k {root} -c listen_addresses=127.0.0.1"
        started = _run_as(
            user,
            [pg_ctl, "start", "-D", str(data), "-w", "-t", str(int(timeout_s)), "-o", opts, "-l", str(root / "log")],
            timeout_s + 10,
        )
        if started.returncode == 0:
            return server
    log = (root / "log").read_text(errors="replace").strip().splitlines()[-3:] if (root / "log").exists() else []
    server.stop()
    raise V2GTwinError(f"PostgreSQL did not start: {' | '.join(log) or started.stderr.strip()}")
