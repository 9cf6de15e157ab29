"""Run a real ISO 15118 session here: the ``iso15118`` package's SECC and EVCC in two network namespaces.

The package (PyPI ``iso15118`` 0.31.2, the open EVCC/SECC stack of SwitchEV/EcoG) pins pydantic 1.10 and
cryptography 44, which conflict with v2gtwin's pins, so it lives in its own virtual environment
(``.venv-iso15118``, made by ``make iso15118-venv``) and runs as two processes of
:mod:`v2gtwin.cyber.iso15118_runner`; v2gtwin never imports it. Its EXI codec is Java (py4j), so ``java`` must
be on the PATH. It talks over IPv6 link-local addresses (SDP is UDP multicast to ``ff02::1``), which two network
namespaces joined by a veth pair give (root needed). TLS sessions use a test PKI that the package's own
``create_certs.sh`` makes with ``openssl`` in a temporary directory.

There is no PLC modem on the link: the veth pair adds microseconds where HomePlug Green PHY adds milliseconds,
so the measured segment is the stack's processing plus a near-zero link.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from v2gtwin.cyber.iso15118_result import Iso15118Result, build_iso15118_result
from v2gtwin.cyber.iso15118_session import (
    PROTOCOLS,
    SessionMeasurement,
    calc_message_timings,
    check_protocol,
)
from v2gtwin.errors import DataError, V2GTwinError

__all__ = [
    "ISO15118_VERSION",
    "Iso15118RunError",
    "check_iso15118_available",
    "find_iso15118_python",
    "run_iso15118",
    "run_session",
    "veth_link",
]

#: The version of the ``iso15118`` package the Makefile installs and this module was measured with.
ISO15118_VERSION = "0.31.2"

_RUNNER = Path(__file__).with_name("iso15118_runner.py")


class Iso15118RunError(V2GTwinError, RuntimeError):
    """A real ISO 15118 session could not be run or did not complete; the message quotes the blocker."""


def find_iso15118_python() -> Path:
    """The Python of the ``iso15118`` environment: ``$V2GTWIN_ISO15118_PYTHON``, else
    ``<repository>/.venv-iso15118/bin/python`` (made by ``make iso15118-venv``)."""
    env = os.environ.get("V2GTWIN_ISO15118_PYTHON")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / ".venv-iso15118" / "bin" / "python"


def check_iso15118_available() -> str | None:
    """None when a real session can run here, else the blocker in one sentence."""
    if os.name != "posix" or os.geteuid() != 0:
        return "network namespaces need root (run as root, or use the documented figures)"
    for tool, why in (("ip", "iproute2"), ("java", "the EXI codec (Java 17)"), ("openssl", "the TLS test PKI")):
        if shutil.which(tool) is None:
            return f"`{tool}` not found ({why}); `make iso15118-venv` installs it on Debian"
    py = find_iso15118_python()
    if not py.exists():
        return (
            f"no iso15118 environment at {py}; run `make iso15118-venv`, or set V2GTWIN_ISO15118_PYTHON to the "
            "python of an environment with iso15118 installed"
        )
    probe = subprocess.run(
        [str(py), "-c", "import iso15118, aiofile, py4j; print(iso15118.__file__)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        return f"the iso15118 environment at {py} cannot import the stack: {last}"
    return None


def _sh(*args: str) -> None:
    out = subprocess.run(list(args), capture_output=True, text=True, check=False, timeout=30)
    if out.returncode != 0:
        raise Iso15118RunError(f"`{' '.join(args)}` failed: {out.stderr.strip()}")


@dataclass(frozen=True)
class VethLink:
    """Two network namespaces joined by a veth pair (``secc_ns``/``secc_if`` and ``evcc_ns``/``evcc_if``)."""

    secc_ns: str
    secc_if: str
    evcc_ns: str
    evcc_if: str

    def link_local(self, ns: str, iface: str) -> str:
        """The interface's IPv6 link-local address (without scope)."""
        out = subprocess.run(
            ["ip", "-n", ns, "-6", "-o", "addr", "show", "dev", iface, "scope", "link"],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        ).stdout
        for word in out.split():
            if word.startswith("fe80::"):
                return word.split("/")[0]
        raise Iso15118RunError(f"{iface} in {ns} has no IPv6 link-local address: {out.strip()!r}")


@contextlib.contextmanager
def veth_link(tag: str = "") -> Iterator[VethLink]:
    """Create two namespaces and a veth pair between them (duplicate-address detection off, so the link-local
    addresses are usable at once); delete them on exit."""
    uid = f"{os.getpid() % 100000}{tag}"
    link = VethLink(f"v2gt-secc-{uid}", f"v2s{uid}"[:15], f"v2gt-evcc-{uid}", f"v2e{uid}"[:15])
    created: list[str] = []
    try:
        for ns in (link.secc_ns, link.evcc_ns):
            _sh("ip", "netns", "add", ns)
            created.append(ns)
        _sh("ip", "link", "add", link.secc_if, "type", "veth", "peer", "name", link.evcc_if)
        for ns, iface in ((link.secc_ns, link.secc_if), (link.evcc_ns, link.evcc_if)):
            _sh("ip", "link", "set", iface, "netns", ns)
            _sh("ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{iface}.accept_dad=0")
            _sh("ip", "-n", ns, "link", "set", "lo", "up")
            _sh("ip", "-n", ns, "link", "set", iface, "up")
        for ns, iface in ((link.secc_ns, link.secc_if), (link.evcc_ns, link.evcc_if)):
            for _ in range(50):
                with contextlib.suppress(Iso15118RunError):
                    link.link_local(ns, iface)
                    break
                time.sleep(0.1)
            link.link_local(ns, iface)
        yield link
    finally:
        for ns in created:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False, timeout=30)


_ECHO_SERVER = """
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.bind(("::", 0)); s.listen(1)
print(s.getsockname()[1], flush=True)
c, _ = s.accept(); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
while True:
    d = c.recv(4096)
    if not d:
        break
    c.sendall(d)
"""

_ECHO_CLIENT = """
import socket, statistics, sys, time
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
c = socket.create_connection((host, port)); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
msg = b"x" * 64; out = []
for _ in range(n):
    t = time.perf_counter(); c.sendall(msg); got = b""
    while len(got) < len(msg):
        got += c.recv(4096)
    out.append(time.perf_counter() - t)
print(statistics.median(out))
"""


def measure_rtt_s(link: VethLink, n_probes: int = 50) -> float:
    """Median round trip of a 64-byte TCP message between the namespaces, apart from any session [s]."""
    if n_probes < 1:
        raise DataError(f"n_probes = {n_probes} must be >= 1")
    server = subprocess.Popen(
        ["ip", "netns", "exec", link.secc_ns, sys.executable, "-c", _ECHO_SERVER],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = server.stdout.readline().strip()
        host = f"{link.link_local(link.secc_ns, link.secc_if)}%{link.evcc_if}"
        out = subprocess.run(
            ["ip", "netns", "exec", link.evcc_ns, sys.executable, "-c", _ECHO_CLIENT, host, port, str(n_probes)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if out.returncode != 0:
            raise Iso15118RunError(f"RTT probe failed: {out.stderr.strip().splitlines()[-1:]}")
        return float(out.stdout.strip())
    finally:
        server.kill()
        server.wait(timeout=10)


def _make_pki(py: Path, work: Path) -> Path:
    """A test PKI made by the package's own ``create_certs.sh`` (ISO 15118-2 layout, which it also reads for
    -20), in ``work``; returns the PKI directory."""
    pkg = subprocess.run(
        [str(py), "-c", "import iso15118, os; print(os.path.dirname(iso15118.__file__))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    pki = work / "pki"
    shutil.copytree(Path(pkg) / "shared" / "pki", pki)
    out = subprocess.run(
        ["bash", "create_certs.sh", "-v", "iso-2"], cwd=pki, capture_output=True, text=True, timeout=120, check=False
    )
    if out.returncode != 0 or not (pki / "iso15118_2" / "certs" / "seccLeafCert.pem").exists():
        raise Iso15118RunError(f"create_certs.sh failed: {(out.stderr.strip().splitlines() or ['?'])[-1]}")
    return pki


def _read_events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:  # a line still being written (the writer flushes whole lines)
            break
    return out


def _tail(path: Path, n: int = 3) -> str:
    if not path.exists():
        return "(no output)"
    lines = [ln for ln in path.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    return " | ".join(ln[-200:] for ln in lines[-n:])


def _reason(path: Path) -> str:
    """The stack's own account of why a session ended early: its stop reason, else its first error lines."""
    if not path.exists():
        return "(no output)"
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    for ln in lines:
        if "Reason:" in ln:
            return ln[ln.index("Reason:") :].strip()[:300]
    hits = [ln.strip() for ln in lines if any(k in ln for k in ("ERROR", "Error", "Timeout", "timeout"))]
    return " | ".join(h[-240:] for h in hits[:3]) or _tail(path)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """End a process we started and its process group (its Java codec gateway)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def run_session(
    protocol: str,
    tls: bool,
    charge_loop_cycles: int = 10,
    timeout_s: float = 120.0,
    n_rtt_probes: int = 50,
    log: Callable[[str], None] | None = None,
) -> SessionMeasurement:
    """Run one real ISO 15118 session (AC, EIM without TLS; Plug & Charge contract over TLS) and time it.

    Parameters
    ----------
    protocol : {"-2", "-20"}
        ISO 15118-2 (TLS 1.2 when ``tls``) or ISO 15118-20 AC (TLS 1.3, mutual, when ``tls``).
    tls : bool
        Run the session over TLS.
    charge_loop_cycles : int
        ChargingStatus exchanges of an ISO 15118-2 session (the -20 simulator's loop has a fixed length) [-].
    timeout_s : float
        Give up after this long [s].
    n_rtt_probes : int
        Round trips of the separate TCP probe [-].
    log : callable, optional
        Called with a line of progress.

    Returns
    -------
    SessionMeasurement
        A completed session, or one the stack ended early after connecting (``failure`` holds its reason, e.g.
        the EV's message timeout ran out on a loaded machine): that is a measured failure of the segment.

    Raises
    ------
    Iso15118RunError
        The stack is missing or a session failed before it connected; the message quotes the blocker.
    """
    check_protocol(protocol)
    if not 1 <= charge_loop_cycles <= 1000:
        raise DataError(f"charge_loop_cycles = {charge_loop_cycles} is not in [1, 1000]")
    blocker = check_iso15118_available()
    if blocker:
        raise Iso15118RunError(blocker)
    py = find_iso15118_python()
    say = log or (lambda _m: None)
    with tempfile.TemporaryDirectory(prefix="v2gtwin-iso15118-") as tmp, veth_link(f"{protocol[1:]}{int(tls)}") as link:
        work = Path(tmp)
        pki = _make_pki(py, work)  # also without TLS: the -20 EV authorises with its contract (Plug & Charge)
        ev_config = work / "ev.json"
        ev_config.write_text(
            json.dumps(
                {
                    "supportedProtocols": [PROTOCOLS[protocol]],
                    "supportedEnergyServices": ["AC"],
                    "isCertInstallNeeded": False,
                    "useTls": tls,
                    "chargeLoopCycle": charge_loop_cycles,
                }
            )
        )
        env_common = {
            **os.environ,
            "PKI_PATH": f"{pki}/",
            "ENABLE_TLS_1_3": "True" if (tls and protocol == "-20") else "False",
            "LOG_LEVEL": "INFO",
        }
        procs: list[subprocess.Popen[bytes]] = []
        try:
            secc_ev, secc_log = work / "secc.jsonl", work / "secc.log"
            with open(secc_log, "wb") as out:
                procs.append(
                    subprocess.Popen(
                        ["ip", "netns", "exec", link.secc_ns, str(py), str(_RUNNER), "secc", str(secc_ev)],
                        env={**env_common, "NETWORK_INTERFACE": link.secc_if},
                        cwd=work,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
            say("SECC starting (Java EXI codec)")
            deadline = time.monotonic() + 60
            while not any(e["kind"] == "listening" for e in _read_events(secc_ev)):
                if procs[0].poll() is not None or time.monotonic() > deadline:
                    raise Iso15118RunError(f"the SECC did not start: {_tail(secc_log)}")
                time.sleep(0.1)
            rtt_s = measure_rtt_s(link, n_rtt_probes)
            say(f"SECC listening; RTT probe {rtt_s * 1e3:.3f} ms; EVCC running ISO 15118{protocol}")
            evcc_ev, evcc_log = work / "evcc.jsonl", work / "evcc.log"
            with open(evcc_log, "wb") as out:
                evcc = subprocess.Popen(
                    ["ip", "netns", "exec", link.evcc_ns, str(py), str(_RUNNER), "evcc", str(evcc_ev), str(ev_config)],
                    env={**env_common, "NETWORK_INTERFACE": link.evcc_if},
                    cwd=work,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                procs.append(evcc)
            try:
                rc = evcc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                rc = None
            ev_events = _read_events(evcc_ev)
            kinds = {e["kind"] for e in ev_events}
            complete = rc == 0 and "end" in kinds
            failure = None if complete else _reason(evcc_log)
            if not complete and not (rc == 5 and "failed" in kinds and "connected" in kinds):
                raise Iso15118RunError(
                    f"the ISO 15118{protocol} session (tls={tls}) did not complete (EVCC exit {rc}): {failure}"
                )
            time.sleep(0.2)  # the SECC's last record (its SessionStopRes) is written before the EVCC reads it
            messages, phases = calc_message_timings(ev_events, _read_events(secc_ev), complete)
            say(f"session {'completed' if complete else 'ended early: ' + str(failure)}")
        finally:
            for p in procs:
                _stop(p)
    connected = next(e for e in ev_events if e["kind"] == "connected")
    return SessionMeasurement(
        protocol=protocol,
        tls=tls,
        tls_version=str(connected.get("tls_version") or "-"),
        cipher=str(connected.get("cipher") or "-"),
        sdp_s=phases["sdp_s"],
        connect_s=phases["connect_s"],
        tls_context_s=phases["tls_context_s"],
        total_s=phases["total_s"],
        messages=messages,
        rtt_probe_s=rtt_s,
        failure=failure,
        info={
            "attempted": sum(1 for e in ev_events if e["kind"] == "tx"),
            "load_avg_1min": os.getloadavg()[0],
            "iso15118": ISO15118_VERSION,
            "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        },
    )


def run_iso15118(
    measure: bool,
    protocols: tuple[str, ...] = ("-2", "-20"),
    tls_modes: tuple[bool, ...] = (False, True),
    charge_loop_cycles: int = 10,
    command: str = "v2gtwin cyber iso15118 --measure",
    on_session: Callable[[str, int, int], None] | None = None,
    repeat: int = 1,
) -> Iso15118Result:
    """The ISO 15118 segment: measured from real sessions (``measure``), else from the documented timeouts.

    When ``measure`` is asked but the stack cannot run here, the result falls back to the documented figures and
    names the blocker (``Iso15118Result.blocker``); a session that starts but does not complete is an error.

    Parameters
    ----------
    measure : bool
        Run real sessions (root, ``make iso15118-venv``).
    protocols : tuple of str
        ``"-2"`` and/or ``"-20"``.
    tls_modes : tuple of bool
        Without and/or with TLS.
    charge_loop_cycles : int
        ISO 15118-2 charge-loop exchanges per session [-].
    command : str
        The command named in the measured segment's source.
    on_session : callable, optional
        Called as ``on_session(label, i, n)`` before each session.
    repeat : int
        Sessions per protocol and TLS mode, 1 to 10 (>= 2 gives the held-out model check) [-].
    """
    if not (isinstance(repeat, int) and 1 <= repeat <= 10):
        raise DataError(f"--repeat must be an integer in [1, 10] sessions (got {repeat!r})")
    for p in protocols:
        check_protocol(p)
    sessions: list[SessionMeasurement] = []
    blocker = check_iso15118_available() if measure else None
    if measure and blocker is None:
        runs = [(p, t) for p in protocols for t in tls_modes for _ in range(repeat)]
        for i, (p, t) in enumerate(runs):
            if on_session:
                on_session(f"ISO 15118{p}{' TLS' if t else ''}", i, len(runs))
            sessions.append(run_session(p, t, charge_loop_cycles))
        if on_session:
            on_session("done", len(runs), len(runs))
    date = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d")
    source = f"measured: {command}, {date} (iso15118 {ISO15118_VERSION} over a veth pair, no PLC modem)"
    return build_iso15118_result(sessions, protocols, blocker, source)
