"""Fixtures of the central-system tests: a real PostgreSQL server for the store's tests on both databases.

``pg_server`` (one per test process, session scope) is a throwaway server started by
:func:`v2gtwin.cyber.csms.pg_local.start_local_postgres` (initdb in a temporary folder as an unprivileged user,
127.0.0.1 on a free port, fsync on), stopped and removed at the end; when PostgreSQL is not installed or does not
start, the tests that need it skip with the reason (fail under CI=true: the Makefile installs it).
``db_url`` gives each test a fresh empty database: an SQLite file, or a new schema on that server (the store's
tables are created in it, as in an empty database; a schema takes milliseconds where a database takes ~0.5 s).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_part
from v2gtwin.cyber.csms.pg_local import LocalPostgres, start_local_postgres
from v2gtwin.errors import V2GTwinError


@pytest.fixture(scope="session")
def pg_server() -> Iterator[LocalPostgres]:
    try:
        server = start_local_postgres()
    except V2GTwinError as exc:
        require_part(False, f"PostgreSQL server not available: {exc}")
        raise
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh empty database's SQLAlchemy URL, on each of the two databases the store supports."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'csms.sqlite'}"
    server: LocalPostgres = request.getfixturevalue("pg_server")
    return server.create_schema()
