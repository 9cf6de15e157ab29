"""The API's commands: `csms token create/list/revoke`, `csms dispatch --server` through a running server's API,
and `csms serve --api-port` end to end (a real process answering over loopback)."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.cli_helpers import assert_one_line_error, run_cli
from tests.cyber.api_helpers import LiveSystem, http
from v2gtwin.cyber.csms.simulator import SimEV
from v2gtwin.cyber.csms.store import Store
from v2gtwin.cyber.csms.tokens import ApiToken


def test_token_create_list_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'csms.sqlite'}"
    code, out, _ = run_cli(capsys, "csms", "token", "create", "loop", "--db", db)
    token = out.strip()
    assert code == 0 and re.fullmatch(r"v2gt_[A-Za-z0-9_-]{43}", token)  # 32 bytes in URL-safe base64: 43
    with Store(db).engine.connect() as conn:
        stored = conn.execute(select(ApiToken.name, ApiToken.token_sha256)).all()
    # Only the SHA-256 of the token is stored (computed here with hashlib).
    assert [tuple(r) for r in stored] == [("loop", hashlib.sha256(token.encode()).hexdigest())]
    code, out, _ = run_cli(capsys, "csms", "token", "list", "--db", db, "--json")
    listed = json.loads(out)["tokens"]
    assert code == 0 and listed[0]["name"] == "loop" and listed[0]["revoked_at"] is None
    assert token not in out and stored[0][1] not in out
    code, out, _ = run_cli(capsys, "csms", "token", "revoke", str(listed[0]["id"]), "--db", db)
    assert code == 0
    code, out, _ = run_cli(capsys, "csms", "token", "list", "--db", db, "--json")
    assert json.loads(out)["tokens"][0]["revoked_at"] is not None
    code, _, err = run_cli(capsys, "csms", "token", "revoke", str(listed[0]["id"]), "--db", db)
    assert_one_line_error(code, err)
    assert "no active token" in err
    code, _, err = run_cli(capsys, "csms", "token", "create", "x" * 65, "--db", db)
    assert_one_line_error(code, err)


def test_dispatch_through_a_running_servers_api(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / "sp.csv"
    csv.write_text("station_id,limit_w\nSIM-0,4000\nSIM-1,-2500\nSIM-9,1000\n")
    token_file = tmp_path / "token"
    with LiveSystem(tmp_path, [SimEV(), SimEV(v2x=True)]) as sys_:
        token_file.write_text(sys_.token + "\n")
        code, out, err = run_cli(
            capsys, "csms", "dispatch", str(csv), "--server", sys_.url, "--token-file", str(token_file), "--json"
        )
        limits = {sid: s.limit_w for sid, s in sys_.registry.items()}
        token_file.write_text("wrong\n")
        bad = run_cli(capsys, "csms", "dispatch", str(csv), "--server", sys_.url, "--token-file", str(token_file))
    data = json.loads(out)
    assert code == 0, err
    assert data["stations"] == 3 and data["accepted"] == 2
    assert data["outcomes"] == {"Accepted": 2, "not connected": 1}
    assert data["per_station"]["SIM-9"]["status"] == "not connected"
    assert limits == {"SIM-0": 4000.0, "SIM-1": -2500.0}  # the simulated stations' own state
    assert_one_line_error(bad[0], bad[2])
    assert "--server" in bad[2] and "401" in bad[2]
    code, _, err = run_cli(capsys, "csms", "dispatch", str(csv), "--server", "http://127.0.0.1:9", "--json")
    assert_one_line_error(code, err)
    token_file.write_text("")
    code, _, err = run_cli(
        capsys, "csms", "dispatch", str(csv), "--server", "http://x:1", "--token-file", str(token_file)
    )
    assert_one_line_error(code, err)
    assert "--token-file" in err


def test_serve_with_api_port_answers_with_tokens(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A real `csms serve --api-port 0` process: it prints the API's address; a token made by the CLI reads
    the (empty) station list, no token gets 401."""
    db = f"sqlite:///{tmp_path / 'csms.sqlite'}"
    _, out, _ = run_cli(capsys, "csms", "token", "create", "e2e", "--db", db)
    token = out.strip()
    cmd = [sys.executable, "-m", "v2gtwin.cli", "csms", "serve", "--port", "0", "--api-port", "0", "--db", db]
    proc = subprocess.Popen([*cmd, "--status-every", "0", "--alarm-stale-s", "5"], stderr=subprocess.PIPE, text=True)
    try:
        url = None
        deadline = time.monotonic() + 60
        assert proc.stderr is not None
        while url is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            m = re.search(r"HTTP API and dashboard at (http://127\.0\.0\.1:\d+)/", line)
            url = m.group(1) if m else None
            if not line and proc.poll() is not None:
                break
        assert url is not None, "no API address printed"
        ok = http("GET", url + "/api/v1/stations", token)
        denied = http("GET", url + "/api/v1/stations")
        dash = json.loads(http("GET", url + "/api/v1/dashboard", token)[1])
    finally:
        proc.terminate()
        proc.wait(30)
    assert ok == (200, b'{"stations":[]}')
    assert denied == (401, b"")
    assert dash["alarm_settings"] == {"stale_after_s": 5.0, "settle_s": 30.0, "tolerance_kw": 0.5}
    assert dash["stations_connected"] == 0 and dash["alarms"] == []


def test_serve_with_a_busy_api_port_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        db = f"sqlite:///{tmp_path / 'csms.sqlite'}"
        code, _, err = run_cli(capsys, "csms", "serve", "--port", "0", "--api-port", str(port), "--db", db)
    assert_one_line_error(code, err)
    assert f"--api-port {port}: cannot listen on 127.0.0.1" in err
