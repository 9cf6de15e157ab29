"""The `v2gtwin csms` commands' error contract (one line on stderr, exit code 2, no traceback) and exit codes:
set-point files with non-finite values or repeated stations, unusable databases, missing or bad TLS keys, a
central system that goes away under `csms simulate`, and a dispatch that no station accepted."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli_helpers import assert_one_line_error, run_cli


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("A,1000\nB,nan\n", "line 3: limit_w 'nan' is not a finite number of W"),
        ("A,inf\n", "line 2: limit_w 'inf' is not a finite number of W"),
        ("A,-Infinity\n", "line 2: limit_w '-Infinity' is not a finite number of W"),
        ("A,1000\nB,2000\nA,3000\n", "line 4: station_id 'A' already given on line 2"),
        ("bad id!,1000\n", "line 2: station_id 'bad id!'"),
        ("", "no set-points after the header"),
    ],
)
def test_dispatch_refuses_bad_set_point_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, expected: str
) -> None:
    csv = tmp_path / "sp.csv"
    csv.write_text("station_id,limit_w\n" + body)
    db = f"sqlite:///{tmp_path / 'db.sqlite'}"
    code, out, err = run_cli(capsys, "csms", "dispatch", str(csv), "--wait", "0", "--port", "0", "--db", db)
    assert_one_line_error(code, err)
    assert expected in err and out == ""
    assert not (tmp_path / "db.sqlite").exists()  # refused before anything was opened or served


@pytest.mark.parametrize("db", ["junk", "nosuchdriver://x", "sqlite:////nonexistent-dir/x/db.sqlite"])
def test_unusable_database_is_one_line_in_every_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], db: str
) -> None:
    code, _, err = run_cli(capsys, "csms", "password", "CS-1", "--password", "x" * 20, "--db", db)
    assert_one_line_error(code, err)
    assert f"--db {db}: cannot open the database" in err
    csv = tmp_path / "sp.csv"
    csv.write_text("station_id,limit_w\nA,1000\n")
    code, _, err = run_cli(capsys, "csms", "dispatch", str(csv), "--wait", "0", "--port", "0", "--db", db)
    assert_one_line_error(code, err)
    assert f"--db {db}" in err
    code, _, err = run_cli(capsys, "csms", "serve", "--port", "0", "--db", db)
    assert_one_line_error(code, err)
    assert f"--db {db}" in err


def test_missing_or_bad_server_key_is_named_not_reported_as_a_port_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from v2gtwin.cyber.csms.pki import init_pki

    pki = init_pki(tmp_path / "pki", ["CS-1"])
    db = f"sqlite:///{tmp_path / 'db.sqlite'}"
    serve = ["csms", "serve", "--port", "0", "--db", db, "--pki", str(pki)]
    (pki / "server.key").unlink()
    code, _, err = run_cli(capsys, *serve, "--profile", "2")
    assert_one_line_error(code, err)
    assert "server.key does not exist" in err and "listen" not in err
    (pki / "server.key").write_text("-----BEGIN PRIVATE KEY-----\njunk\n-----END PRIVATE KEY-----\n")
    code, _, err = run_cli(capsys, *serve, "--profile", "2")
    assert_one_line_error(code, err)
    assert "certfile, keyfile: cannot load" in err and "listen" not in err
    # A key of another pair: the certificate and the key do not match.
    other = init_pki(tmp_path / "other", [])
    (pki / "server.key").write_bytes((other / "server.key").read_bytes())
    code, _, err = run_cli(capsys, *serve, "--profile", "3")
    assert_one_line_error(code, err)
    assert "cannot load" in err and "listen" not in err
    code, _, err = run_cli(capsys, "csms", "serve", "--port", "0", "--db", db, "--profile", "2")
    assert_one_line_error(code, err)
    assert "--pki: profile 2 needs the PKI folder made by 'v2gtwin csms pki FOLDER" in err
    code, _, err = run_cli(capsys, "csms", "serve", "--port", "0", "--db", db, "--profile", "3", "--pki", "nowhere")
    assert_one_line_error(code, err)
    assert "--pki nowhere: not a folder; profile 3 needs" in err


@pytest.mark.parametrize("profile", ["2", "3"])
@pytest.mark.parametrize("missing", ["server-rsa.key", "server-rsa.pem"])
def test_rsa_certificate_without_its_key_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], profile: str, missing: str
) -> None:
    """Half of the RSA chain (its certificate without its key, or the reverse) used to start a server offering
    the ECDSA chain alone, silently: now one line naming the missing file, before anything listens."""
    from v2gtwin.cyber.csms.pki import init_pki

    pki = init_pki(tmp_path / "pki", ["CS-1"])
    (pki / missing).unlink()
    db = f"sqlite:///{tmp_path / 'db.sqlite'}"
    code, _, err = run_cli(capsys, "csms", "serve", "--port", "0", "--db", db, "--pki", str(pki), "--profile", profile)
    assert_one_line_error(code, err)
    assert f"certfile, keyfile (RSA): {pki / missing} does not exist" in err and "listen" not in err


@pytest.mark.parametrize(
    "timing",
    [
        ["--reports", "0", "--hold", "30", "--reconnects", "1"],  # lost while holding
        # Lost while reporting: the stations back off for 2-5 s (three reconnections), the reports sent meanwhile
        # fail; these used to be logged as warnings, three more lines on stderr before the error.
        ["--reports", "20", "--interval", "0.5", "--reconnects", "3"],
    ],
)
def test_simulate_when_the_central_system_goes_away_is_one_line(tmp_path: Path, timing: list[str]) -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "v2gtwin.cli", "csms", "serve", "--port", str(port), "--db", f"sqlite:///{tmp_path}/d"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        server.stderr.readline()  # it listens
        url = f"ws://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "v2gtwin.cli", "csms", "simulate", "--url", url, "--stations", "3"]
        cmd += timing
        sim = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # until the three stations have booted (the server's database says)
            from v2gtwin.cyber.csms.store import Store

            if len(Store(f"sqlite:///{tmp_path}/d").booted_station_ids()) == 3:
                break
            time.sleep(0.1)
        os.kill(server.pid, signal.SIGKILL)
        out, err = sim.communicate(timeout=60)
    finally:
        server.kill()
        server.communicate()
    assert sim.returncode == 2, err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert "the central system went away: all 3 stations failed" in err
    assert "Traceback" not in err and "never retrieved" not in err and out == ""


def test_dispatch_exits_1_when_no_station_accepted(tmp_path: Path) -> None:
    """No station connects within --wait: every outcome is 'not connected', the JSON says so, exit code 1."""
    csv = tmp_path / "sp.csv"
    csv.write_text("station_id,limit_w\nA,1000\nB,2000\n")
    cmd = [sys.executable, "-m", "v2gtwin.cli", "csms", "dispatch", str(csv), "--port", str(free_port())]
    cmd += ["--db", f"sqlite:///{tmp_path / 'db.sqlite'}", "--wait", "0.2", "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    data = json.loads(proc.stdout)
    assert proc.returncode == 1, proc.stderr
    assert data["accepted"] == 0 and data["outcomes"] == {"not connected": 2}
    assert data["latency_p50_s"] is None and data["latency_p99_s"] is None
    assert proc.stderr.startswith("error: no station accepted") and "Traceback" not in proc.stderr


def test_help_names_only_commands_that_exist(capsys: pytest.CaptureFixture[str]) -> None:
    """`csms --help` does not call the central system work in progress, and every `v2gtwin csms <command>`
    that a help text mentions is one of the csms commands."""
    import re

    code, top, _ = run_cli(capsys, "csms", "--help")
    assert code == 0 and "work in progress" not in top.lower()
    commands = set(re.findall(r"^\s{2}(\w+)\s{2,}", top.split("Commands:")[1], flags=re.M))
    assert commands == {"serve", "simulate", "dispatch", "pki", "password", "token"}
    mentioned: set[str] = set()
    for command in sorted(commands):
        code, text, _ = run_cli(capsys, "csms", command, "--help")
        assert code == 0
        mentioned |= set(re.findall(r"v2gtwin csms (\w+)(?: (\w+))?", " ".join(text.split())))
    # A command, then at most an argument placeholder (FOLDER), never a sub-command such as 'pki init'.
    assert mentioned and all(first in commands and (not second or second.isupper()) for first, second in mentioned)


def test_dispatch_waits_for_the_boot_not_only_the_connection(tmp_path: Path) -> None:
    """A station that connects at once but sends its BootNotification 0.5 s later is still sent its set-point:
    `csms dispatch` waits (within --wait) until the boot is accepted, since a central system sends nothing to a
    station before that (OCPP 2.0.1 Part 2, B01). A dispatch that started on the connection alone
    would report 'not booted' and exit 1."""
    import asyncio

    from ocpp.routing import on
    from ocpp.v201 import ChargePoint, call, call_result
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    class Station(ChargePoint):  # type: ignore[misc]
        limits_w: list[float]

        @on("SetChargingProfile")  # type: ignore[untyped-decorator,unused-ignore]
        async def on_profile(self, evse_id: int, charging_profile: dict, **_: object) -> object:  # type: ignore[type-arg]
            self.limits_w.append(charging_profile["charging_schedule"][0]["charging_schedule_period"][0]["limit"])
            return call_result.SetChargingProfile(status="Accepted")

    port = free_port()
    csv = tmp_path / "sp.csv"
    csv.write_text("station_id,limit_w\nLATE-1,3700\n")
    cmd = [sys.executable, "-m", "v2gtwin.cli", "csms", "dispatch", str(csv), "--port", str(port)]
    cmd += ["--db", f"sqlite:///{tmp_path / 'db.sqlite'}", "--wait", "5", "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    async def station() -> list[float]:
        for _ in range(600):  # until the central system listens (30 s: a cold start imports a lot)
            try:
                ws = await connect(f"ws://127.0.0.1:{port}/LATE-1", subprotocols=["ocpp2.0.1"])
                break
            except OSError:
                await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"csms dispatch never listened on port {port}")
        async with ws:
            cp = Station("LATE-1", ws)
            cp.limits_w = []
            task = asyncio.create_task(cp.start())
            await asyncio.sleep(0.5)  # connected, not yet booted
            boot = call.BootNotification(charging_station={"model": "T", "vendor_name": "v"}, reason="PowerUp")
            try:
                assert (await cp.call(boot)).status == "Accepted"
            except ConnectionClosed:  # the dispatch did not wait for the boot: its outcome says why below
                return cp.limits_w
            while proc.poll() is None:  # connected until the dispatch is over (its answer sent)
                await asyncio.sleep(0.05)
            task.cancel()
            return cp.limits_w

    try:
        limits_w = asyncio.run(asyncio.wait_for(station(), 90))
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, (err, out, limits_w)
    data = json.loads(out)
    assert data["outcomes"] == {"Accepted": 1} and data["per_station"]["LATE-1"]["attempts"] == 1
    assert limits_w == [3700.0]
