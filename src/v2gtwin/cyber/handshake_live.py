"""Live TLS handshakes over loopback, shaped by the proxy of :mod:`v2gtwin.cyber.shaping`, and the validation
of the handshake model against them.

- :func:`measure_handshakes`: Python's ``ssl`` client against Python's ``ssl`` server (a thread; its completion
  time is read on the same clock) or ``openssl s_server`` (a process; the client's completion time only);
  median and smallest of several handshakes.
- :func:`measure_s_time`: ``openssl s_time`` (OpenSSL's own client) against the Python server: mean time per
  new connection (TLS 1.2 only: s_time cannot choose the TLS 1.3 key-share group, so it would add a
  HelloRetryRequest round trip the profiles do not have).
- :func:`measure_rig_oneway_s`: what the rig itself adds per flight (a raw TCP echo through the same proxy);
  added to the prediction in the comparison, and reported.
- :func:`run_validation`: predicted beside measured at several round-trip times and rates.
"""

from __future__ import annotations

import itertools
import logging
import queue
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Literal

from v2gtwin.cyber.handshake import calc_handshake_time
from v2gtwin.cyber.handshake_measure import Pki, _check_suite, _contexts, make_pki
from v2gtwin.cyber.handshake_profiles import CURVES, Overhead, TlsProfile, check_link, resolve_profile
from v2gtwin.errors import DataError

__all__ = [
    "measure_handshakes",
    "measure_rig_oneway_s",
    "measure_s_time",
    "openssl_available",
    "run_validation",
]

logger = logging.getLogger(__name__)

Peer = Literal["python", "openssl", "s_time"]


def openssl_available() -> bool:
    """Whether the ``openssl`` command is on the PATH."""
    return shutil.which("openssl") is not None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _python_server(srv: ssl.SSLContext, done_q: queue.Queue[float], accepted_q: queue.Queue[float]) -> Iterator[int]:
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(8)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = lsock.accept()
            except OSError:
                return
            with conn:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                accepted_q.put(time.perf_counter())
                try:
                    with srv.wrap_socket(conn, server_side=True) as tls:
                        done_q.put(time.perf_counter())
                        tls.settimeout(5.0)
                        tls.recv(1)  # until the client closes
                except (OSError, ssl.SSLError):
                    done_q.put(float("nan"))

    th = threading.Thread(target=serve, name="tls-server", daemon=True)
    th.start()
    try:
        yield int(lsock.getsockname()[1])
    finally:
        stop.set()
        lsock.close()
        th.join(timeout=5.0)


@contextmanager
def _openssl_server(prof: TlsProfile, pki: Pki) -> Iterator[int]:
    port = _free_port()
    cmd = [
        "openssl",
        "s_server",
        "-quiet",
        "-accept",
        f"127.0.0.1:{port}",
        "-cert",
        str(pki.path("server", "chain")),
        "-key",
        str(pki.path("server", "key")),
        *(["-cert_chain", str(pki.path("server", "cas"))] if prof.n_chain_server > 1 else []),
        "-groups",
        CURVES[prof.curve].openssl_name,
    ]
    if prof.tls_version == "1.2":
        cmd += ["-tls1_2", "-cipher", prof.suite.openssl_name]
    else:
        cmd += ["-tls1_3", "-ciphersuites", prof.suite.openssl_name]
    if prof.mutual:
        cmd += ["-Verify", "8", "-CAfile", str(pki.path("client", "root"))]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10.0
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                    raise DataError(f"openssl s_server did not start: {' '.join(err.split())[:200]}") from None
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def _echo_server() -> Iterator[int]:
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(4)

    def serve() -> None:
        while True:
            try:
                conn, _ = lsock.accept()
            except OSError:
                return
            with conn:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                while data := conn.recv(65536):
                    conn.sendall(data)

    th = threading.Thread(target=serve, name="echo-server", daemon=True)
    th.start()
    try:
        yield int(lsock.getsockname()[1])
    finally:
        lsock.close()
        th.join(timeout=5.0)


def measure_rig_oneway_s(rtt_s: float, rate_bytes_per_s: float | None, *, n_bytes: int = 1000, n: int = 5) -> float:
    """The test rig's own latency per one-way traversal [s]: a raw TCP echo of ``n_bytes`` over loopback (through
    a shaping proxy with the same settings when ``rtt_s`` > 0 or a rate is set), median round trip minus the
    link's nominal ``rtt_s + 2 n_bytes / rate``, halved. No TLS is involved: this is what the emulation and the
    host (socket calls, thread wake-ups, the proxy's timer) add to every flight, measured apart from the model.
    """
    from v2gtwin.cyber.shaping import ShapingProxy

    payload = b"e" * n_bytes
    with ExitStack() as stack:
        port = stack.enter_context(_echo_server())
        if rtt_s > 0.0 or rate_bytes_per_s is not None:
            proxy = stack.enter_context(
                ShapingProxy(
                    ("127.0.0.1", 0), ("127.0.0.1", port), delay_s=rtt_s / 2.0, rate_bytes_per_s=rate_bytes_per_s
                )
            )
            port = proxy.port
        with socket.create_connection(("127.0.0.1", port), timeout=30.0) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            rtts = []
            for _ in range(n + 1):
                t0 = time.perf_counter()
                sock.sendall(payload)
                got = 0
                while got < n_bytes:
                    chunk = sock.recv(65536)
                    if not chunk:
                        raise DataError("rig: the echo connection closed early")
                    got += len(chunk)
                rtts.append(time.perf_counter() - t0)
    nominal = rtt_s + (2.0 * n_bytes / rate_bytes_per_s if rate_bytes_per_s else 0.0)
    return max(statistics.median(rtts[1:]) - nominal, 0.0) / 2.0


def measure_handshakes(
    profile: str | TlsProfile,
    rtt_s: float = 0.0,
    rate_bytes_per_s: float | None = None,
    *,
    n: int = 7,
    peer: Literal["python", "openssl"] = "python",
    pki: Pki | None = None,
    settle_s: float = 0.05,
) -> dict[str, Any]:
    """Median times of ``n`` real handshakes over loopback (after one warm-up), shaped when asked.

    Returns a dict with the medians ``t_client_done_s`` (always) and ``t_handshake_s`` (both ends done; None
    with ``peer="openssl"``, whose completion time is not observable here), the smallest of the ``n`` of each
    (``*_min_s``: the handshake least disturbed by other processes -- on a loaded machine every wake-up of a
    side can wait for a scheduler slice), ``n``, ``peer``, ``cipher_suite`` and ``shaped`` (proxy used).

    The clock starts when the TCP connection is set up end to end: with the Python server when it has accepted
    the connection (through the proxy, that is after the proxy's own connection to it), with ``openssl
    s_server`` ``settle_s`` after the client's connect (it cannot say when it accepted). TCP's handshake is not
    timed: through a user-space proxy it would not see the added delay.
    """
    from v2gtwin.cyber.shaping import ShapingProxy

    prof = resolve_profile(profile)
    rtt, rate = check_link(rtt_s, rate_bytes_per_s)
    if n < 1:
        raise DataError(f"n must be an integer >= 1 (got {n})")
    if peer not in ("python", "openssl"):
        raise DataError(f"peer must be 'python' or 'openssl' (got {peer!r})")
    if peer == "openssl" and not openssl_available():
        raise DataError("peer: the openssl command is not on the PATH")
    with ExitStack() as stack:
        if pki is None:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="v2gtwin-tls-")))
            pki = make_pki(tmp, prof.curve, prof.n_chain_server, prof.n_chain_client)
        srv, cli = _contexts(prof, pki)
        done_q: queue.Queue[float] = queue.Queue()
        accepted_q: queue.Queue[float] = queue.Queue()
        if peer == "python":
            port = stack.enter_context(_python_server(srv, done_q, accepted_q))
        else:
            port = stack.enter_context(_openssl_server(prof, pki))
        shaped = rtt > 0.0 or rate is not None
        if shaped:
            proxy = stack.enter_context(
                ShapingProxy(("127.0.0.1", 0), ("127.0.0.1", port), delay_s=rtt / 2.0, rate_bytes_per_s=rate)
            )
            port = proxy.port
        t_client: list[float] = []
        t_both: list[float] = []
        suite = None
        for i in range(n + 1):
            sock = socket.create_connection(("127.0.0.1", port), timeout=30.0)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # The clock starts once the connection is set up end to end (the proxy has connected to the server
            # and the server has accepted): the Python server says so; s_server cannot, so wait settle_s.
            if peer == "python":
                accepted_q.get(timeout=30.0)
            else:
                time.sleep(settle_s)
            t0 = time.perf_counter()
            with cli.wrap_socket(sock, server_hostname="localhost") as tls:
                t1 = time.perf_counter()
                suite = tls.cipher()
                t_srv = done_q.get(timeout=30.0) if peer == "python" else None
            if i == 0:
                continue  # warm-up: first use of the contexts, the proxy's first connection
            t_client.append(t1 - t0)
            if t_srv is not None:
                t_both.append(max(t1, t_srv) - t0)
        _check_suite(prof, suite)
    return {
        "profile": prof.name,
        "peer": peer,
        "rtt_s": rtt,
        "rate_bytes_per_s": rate,
        "n": n,
        "shaped": shaped,
        "cipher_suite": prof.cipher_suite,
        "t_client_done_s": statistics.median(t_client),
        "t_handshake_s": statistics.median(t_both) if t_both else None,
        "t_client_done_min_s": min(t_client),
        "t_handshake_min_s": min(t_both) if t_both else None,
    }


def measure_s_time(
    profile: str | TlsProfile,
    rtt_s: float = 0.0,
    rate_bytes_per_s: float | None = None,
    *,
    seconds: int = 3,
    pki: Pki | None = None,
) -> dict[str, Any]:
    """Time per new connection of ``openssl s_time -new`` (OpenSSL's client) against the Python server,
    through the shaping proxy when asked. A connection is TCP's set-up to the
    proxy (local), the handshake until the client is done, and the close; TLS 1.2 profiles only, and a client
    chain of one certificate at most (s_time sends no intermediates).

    s_time reports whole seconds only, so the time per connection is taken from the server's side: the median
    interval between two accepts (the client's full cycle: connect, handshake until it is done, close).
    Returns the keys of :func:`measure_handshakes` with ``peer="s_time"``: ``t_client_done_s`` that median,
    ``t_client_done_min_s`` the smallest interval, ``n`` the intervals.
    """
    from v2gtwin.cyber.shaping import ShapingProxy

    prof = resolve_profile(profile)
    rtt, rate = check_link(rtt_s, rate_bytes_per_s)
    if prof.tls_version != "1.2" or (prof.mutual and prof.n_chain_client > 1):
        raise DataError(
            f"peer s_time: profile {prof.name} must be TLS 1.2 with a client chain of 1 (s_time cannot choose "
            "the TLS 1.3 group nor send intermediates)"
        )
    if not openssl_available():
        raise DataError("peer: the openssl command is not on the PATH")
    with ExitStack() as stack:
        if pki is None:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="v2gtwin-tls-")))
            pki = make_pki(tmp, prof.curve, prof.n_chain_server, prof.n_chain_client)
        srv, _cli = _contexts(prof, pki)
        accepted_q: queue.Queue[float] = queue.Queue()
        port = stack.enter_context(_python_server(srv, queue.Queue(), accepted_q))
        if rtt > 0.0 or rate is not None:
            proxy = stack.enter_context(
                ShapingProxy(("127.0.0.1", 0), ("127.0.0.1", port), delay_s=rtt / 2.0, rate_bytes_per_s=rate)
            )
            port = proxy.port
        cmd = [
            "openssl",
            "s_time",
            "-connect",
            f"127.0.0.1:{port}",
            "-new",
            "-time",
            str(int(seconds)),
            "-tls1_2",
            "-cipher",
            prof.suite.openssl_name,
            "-CAfile",
            str(pki.path("server", "root")),
            "-verify",
            "8",
        ]
        if prof.mutual:
            cmd += ["-cert", str(pki.path("client", "chain")), "-key", str(pki.path("client", "key"))]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60 + 2 * seconds)
    m = re.search(r"(\d+) connections in ([\d.]+) real seconds", proc.stdout)
    accepts = sorted(accepted_q.queue)
    if proc.returncode != 0 or m is None or len(accepts) < 3:
        tail = " ".join((proc.stderr or proc.stdout).split())[-200:]
        raise DataError(f"openssl s_time failed or made under 3 connections (exit {proc.returncode}): {tail}")
    # s_time reports whole seconds only; the server's accept times give each connection's cycle exactly
    # (first one skipped: s_time's start-up).
    cycles = [b - a for a, b in itertools.pairwise(accepts[1:])]
    per_s = statistics.median(cycles)
    return {
        "profile": prof.name,
        "peer": "s_time",
        "rtt_s": rtt,
        "rate_bytes_per_s": rate,
        "n": len(cycles),
        "shaped": rtt > 0.0 or rate is not None,
        "cipher_suite": prof.cipher_suite,
        "t_client_done_s": per_s,
        "t_handshake_s": None,
        "t_client_done_min_s": min(cycles),
        "t_handshake_min_s": None,
    }


def run_validation(
    profiles: tuple[str | TlsProfile, ...] = ("iso15118-2", "iso15118-20", "ocpp-sp3"),
    links: tuple[tuple[float, float | None], ...] = ((0.0, None), (0.05, None), (0.15, None), (0.05, 8_000.0)),
    *,
    peers: tuple[Peer, ...] = ("python", "openssl"),
    n: int = 7,
    op_costs_s: dict[str, dict[str, float]] | None = None,
    overhead: Overhead | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Predicted beside measured for every profile, link (RTT [s], rate [bytes/s] or None) and peer.

    Measured on this machine, so the prediction uses processor factors 1. Each row: the measurement's keys,
    ``t_model_s`` (the model's ``t_handshake_s``; with the openssl peer its ``t_client_done_s``),
    ``t_rig_oneway_s`` (:func:`measure_rig_oneway_s`, the rig's own latency per flight, measured right after),
    ``predicted_s`` = ``t_model_s`` + flights on the path x ``t_rig_oneway_s``,
    ``measured_s`` (median) and ``measured_min_s`` (smallest), ``error`` = predicted / median - 1 and
    ``error_min`` = predicted / smallest - 1.
    """
    rows = []
    for item in profiles:
        prof = resolve_profile(item)
        with tempfile.TemporaryDirectory(prefix="v2gtwin-tls-") as tmp:
            pki = make_pki(Path(tmp), prof.curve, prof.n_chain_server, prof.n_chain_client)
            for rtt, rate in links:
                for peer in peers:
                    if progress is not None:
                        progress(f"{prof.name} rtt {rtt * 1e3:g} ms rate {rate or 'unlimited'} {peer}")
                    if peer == "s_time":
                        meas = measure_s_time(prof, rtt, rate, pki=pki)
                    else:
                        meas = measure_handshakes(prof, rtt, rate, n=n, peer=peer, pki=pki)
                    rig_s = measure_rig_oneway_s(rtt, rate)
                    pred = calc_handshake_time(pki.sized(prof), rtt, rate, op_costs_s=op_costs_s, overhead=overhead)
                    if meas["t_handshake_s"] is not None:
                        model_s, key, what = pred.t_handshake_s, "t_handshake", "both ends done"
                        n_oneway = 2.0 * pred.n_round_trips
                    else:
                        model_s, key, what = pred.t_client_done_s, "t_client_done", "client done"
                        n_oneway = 2.0 * pred.n_round_trips - (1.0 if prof.tls_version == "1.3" else 0.0)
                    predicted = model_s + n_oneway * rig_s
                    rows.append(
                        {
                            **meas,
                            "compared": what,
                            "t_model_s": model_s,
                            "t_rig_oneway_s": rig_s,
                            "predicted_s": predicted,
                            "measured_s": meas[f"{key}_s"],
                            "measured_min_s": meas[f"{key}_min_s"],
                            "error": predicted / meas[f"{key}_s"] - 1.0,
                            "error_min": predicted / meas[f"{key}_min_s"] - 1.0,
                        }
                    )
    return rows
