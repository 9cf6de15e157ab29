"""Measurements behind the TLS handshake model: operation costs, the TLS stack's fixed costs, live handshakes.

- :func:`measure_op_costs_s`: ECDHE key generation, ECDH derivation, ECDSA sign and verify with
  ``cryptography`` (median of repeated calls).
- :func:`calibrate_overhead`: in-memory handshakes (``ssl.MemoryBIO``, no network) of TLS 1.2 P-256 with a
  three-certificate chain, server-authenticated and mutual; each side's CPU time minus its counted operations
  gives the model's per-side base and per-chain fixed costs (:class:`~v2gtwin.cyber.handshake.Overhead`).
- :func:`measure_handshakes`: real handshakes over loopback between Python's ``ssl`` client and either Python's
  ``ssl`` server (a thread; the server's completion time is read on the same clock) or ``openssl s_server``
  (a process; the client's completion time only), through the shaping proxy of :mod:`v2gtwin.cyber.shaping`
  (added one-way delay and rate limit) when the round-trip time or the rate is not zero/unlimited; median of
  several handshakes. The TCP connection is made before the clock starts (the proxy accepts locally and cannot
  delay TCP's own handshake).
- :func:`measure_rig_oneway_s`: what the rig itself adds per flight (a raw TCP echo through the same proxy);
  it is added to the prediction in the comparison, and reported.
- :func:`run_validation`: predicted beside measured at several round-trip times and rates.

Certificates come from a throw-away PKI in a temporary folder: a root, ``n - 1`` sub-CAs and a leaf per side
(the ISO 15118 chain V2G root -> sub-CA 1 -> sub-CA 2 -> leaf for ``n = 3``), made with the certificate
builder of :mod:`v2gtwin.cyber.csms.pki`.
"""

from __future__ import annotations

import logging
import queue
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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from v2gtwin.cyber.csms.pki import _cert
from v2gtwin.cyber.handshake import (
    CURVES,
    OPS,
    Overhead,
    TlsProfile,
    calc_handshake_time,
    count_operations,
    resolve_profile,
)
from v2gtwin.errors import DataError

__all__ = [
    "Pki",
    "calibrate_overhead",
    "make_pki",
    "measure_handshakes",
    "measure_in_memory",
    "measure_op_costs_s",
    "measure_rig_oneway_s",
    "openssl_available",
    "run_validation",
]

logger = logging.getLogger(__name__)

_EC_CURVES: dict[str, tuple[ec.EllipticCurve, hashes.HashAlgorithm]] = {
    "P-256": (ec.SECP256R1(), hashes.SHA256()),
    "P-384": (ec.SECP384R1(), hashes.SHA384()),
    "P-521": (ec.SECP521R1(), hashes.SHA512()),
}


def _median_s(fn: Callable[[], object], n: int) -> float:
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def measure_op_costs_s(curves: tuple[str, ...] = tuple(CURVES), n: int = 200) -> dict[str, dict[str, float]]:
    """Median cost of one public-key operation per curve with ``cryptography`` [s].

    ``keygen``: ``ec.generate_private_key``; ``derive``: ``exchange(ECDH())`` with a peer's public key;
    ``sign`` / ``verify``: ECDSA with the curve's hash (SHA-256/384/512) over 100 bytes.
    """
    if n < 1:
        raise DataError(f"n must be an integer >= 1 (got {n})")
    out: dict[str, dict[str, float]] = {}
    msg = b"v" * 100
    for name in curves:
        if name not in _EC_CURVES:
            raise DataError(f"curve must be one of {', '.join(_EC_CURVES)} (got {name!r})")
        curve, h = _EC_CURVES[name]
        key = ec.generate_private_key(curve)
        peer = ec.generate_private_key(curve).public_key()
        sig = key.sign(msg, ec.ECDSA(h))
        pub = key.public_key()
        algo = ec.ECDSA(h)

        def keygen(c: ec.EllipticCurve = curve) -> object:
            return ec.generate_private_key(c)

        def derive(k: ec.EllipticCurvePrivateKey = key, p: ec.EllipticCurvePublicKey = peer) -> object:
            return k.exchange(ec.ECDH(), p)

        def sign(k: ec.EllipticCurvePrivateKey = key, a: ec.ECDSA = algo) -> object:
            return k.sign(msg, a)

        def verify(p: ec.EllipticCurvePublicKey = pub, s: bytes = sig, a: ec.ECDSA = algo) -> None:
            p.verify(s, msg, a)

        out[name] = {
            "keygen": _median_s(keygen, n),
            "derive": _median_s(derive, n),
            "sign": _median_s(sign, n),
            "verify": _median_s(verify, n),
        }
    return out


# ----------------------------------------------------------------------------------------------- PKI
@dataclass(frozen=True)
class Pki:
    """Files of a throw-away PKI: per side a root (trust anchor), a chain file (leaf first) and the leaf key."""

    folder: Path
    curve: str

    def path(self, side: str, what: Literal["root", "chain", "cas", "key"]) -> Path:
        """``<side>-root.pem``, ``<side>-chain.pem`` (leaf first), ``<side>-cas.pem`` (sub-CAs only; empty for a
        chain of one) or ``<side>.key``."""
        return self.folder / (f"{side}.key" if what == "key" else f"{side}-{what}.pem")

    def cert_bytes(self, side: str) -> tuple[int, ...]:
        """DER sizes of the side's chain, leaf first [bytes]."""
        certs = x509.load_pem_x509_certificates(self.path(side, "chain").read_bytes())
        return tuple(len(c.public_bytes(serialization.Encoding.DER)) for c in certs)

    def sized(self, prof: TlsProfile) -> TlsProfile:
        """``prof`` with this PKI's certificate sizes (the model then counts the bytes actually sent)."""
        client = self.cert_bytes("client")[: prof.n_chain_client] if prof.mutual else ()
        return replace(prof, server_cert_bytes=self.cert_bytes("server"), client_cert_bytes=client)


def _write_side(folder: Path, side: str, curve: ec.EllipticCurve, n_chain: int) -> None:
    root_key = ec.generate_private_key(curve)
    root_name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, f"v2gtwin {side} root"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "v2gtwin"),
        ]
    )
    root = _cert(f"v2gtwin {side} root", root_key, root_name, root_key, ca=True, server=False)
    issuer_key: Any = root_key
    issuer_name = root.subject
    cas = []
    for i in range(n_chain - 1):
        k = ec.generate_private_key(curve)
        c = _cert(f"v2gtwin {side} sub-CA {i + 1}", k, issuer_name, issuer_key, ca=True, server=False)
        cas.append(c)
        issuer_key, issuer_name = k, c.subject
    leaf_key = ec.generate_private_key(curve)
    leaf = _cert(
        "localhost", leaf_key, issuer_name, issuer_key, ca=False, server=side == "server", alt_names=("localhost",)
    )
    pem = serialization.Encoding.PEM
    (folder / f"{side}-root.pem").write_bytes(root.public_bytes(pem))
    (folder / f"{side}-chain.pem").write_bytes(b"".join(c.public_bytes(pem) for c in [leaf, *cas[::-1]]))
    (folder / f"{side}-cas.pem").write_bytes(b"".join(c.public_bytes(pem) for c in cas[::-1]))
    (folder / f"{side}.key").write_bytes(
        leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def make_pki(folder: Path, curve: str, n_chain_server: int, n_chain_client: int) -> Pki:
    """A server chain and a client chain of the given lengths (leaf + sub-CAs, root apart) on ``curve``."""
    _write_side(folder, "server", _EC_CURVES[curve][0], n_chain_server)
    _write_side(folder, "client", _EC_CURVES[curve][0], max(n_chain_client, 1))
    return Pki(folder, curve)


def _contexts(prof: TlsProfile, pki: Pki) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """Server and client contexts restricted to the profile's version, suite and group."""
    version = ssl.TLSVersion.TLSv1_2 if prof.tls_version == "1.2" else ssl.TLSVersion.TLSv1_3
    srv = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cli = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    srv.load_cert_chain(pki.path("server", "chain"), pki.path("server", "key"))
    cli.load_verify_locations(pki.path("server", "root"))
    group = CURVES[prof.curve].openssl_name
    for ctx in (srv, cli):
        ctx.minimum_version = ctx.maximum_version = version
        ctx.set_ecdh_curve(group)  # the client's key share is the server's group: no HelloRetryRequest
        if prof.tls_version == "1.2":
            ctx.set_ciphers(prof.suite.openssl_name)
    if prof.tls_version == "1.3":
        # Python has no setter for TLS 1.3 suites; order the server's preference through the client's offer
        # by keeping OpenSSL's default list, and check the negotiated suite after the handshake.
        pass
    if prof.mutual:
        srv.verify_mode = ssl.CERT_REQUIRED
        srv.load_verify_locations(pki.path("client", "root"))
        cli.load_cert_chain(pki.path("client", "chain"), pki.path("client", "key"))
    return srv, cli


def _check_suite(prof: TlsProfile, got: tuple[str, str, int] | None) -> None:
    if got is None or got[0] != prof.suite.openssl_name:
        raise DataError(
            f"cipher_suite: the handshake negotiated {got[0] if got else None}, not {prof.cipher_suite}; this "
            "Python cannot force that TLS 1.3 suite (only OpenSSL's first choice, TLS_AES_256_GCM_SHA384)"
        )


# ----------------------------------------------------------------------------------------------- in memory
def _one_in_memory(srv: ssl.SSLContext, cli: ssl.SSLContext) -> tuple[float, float, list[int], Any]:
    bio = [ssl.MemoryBIO() for _ in range(4)]
    t0 = time.thread_time()
    s = srv.wrap_bio(bio[0], bio[1], server_side=True)
    t1 = time.thread_time()
    c = cli.wrap_bio(bio[2], bio[3], server_hostname="localhost")
    t_side = {"c": time.thread_time() - t1, "s": t1 - t0}  # creating the connection objects counts too
    done = {"c": False, "s": False}
    flights: list[int] = []
    turn = "c"
    for _ in range(20):
        if done["c"] and done["s"]:
            break
        obj, out_bio, in_bio = (c, bio[3], bio[0]) if turn == "c" else (s, bio[1], bio[2])
        t0 = time.thread_time()
        try:
            obj.do_handshake()
            done[turn] = True
        except ssl.SSLWantReadError:
            pass
        t_side[turn] += time.thread_time() - t0
        data = out_bio.read()
        if data:
            flights.append(len(data))
            in_bio.write(data)
        turn = "s" if turn == "c" else "c"
    return t_side["c"], t_side["s"], flights, c.cipher()


def measure_in_memory(prof: TlsProfile, pki: Pki, n: int = 30) -> dict[str, Any]:
    """Median CPU time per side of in-memory handshakes (no network) and the bytes of each flight.

    CPU time of the thread (``time.thread_time``), not wall time: other processes on a loaded machine take
    the processor away from a handshake, not work out of it."""
    srv, cli = _contexts(prof, pki)
    runs = [_one_in_memory(srv, cli) for _ in range(n)]
    _check_suite(prof, runs[-1][3])
    return {
        "t_client_s": statistics.median(r[0] for r in runs),
        "t_server_s": statistics.median(r[1] for r in runs),
        "flight_bytes": runs[-1][2],
    }


def calibrate_overhead(op_costs_s: dict[str, dict[str, float]], n: int = 40) -> Overhead:
    """The TLS stack's fixed costs on this machine from in-memory TLS 1.2 P-256 handshakes.

    Two cases, run interleaved so that a change of load hits both: (A) server-authenticated with a
    3-certificate chain, (B) mutual with 1-certificate chains. Each side's median CPU time minus its counted
    operations (costs ``op_costs_s``) gives four equations in three unknowns, solved by least squares::

        server A = base_server                  client A = base_client + 3 cert_check
        server B = base_server + 1 cert_check   client B = base_client + 1 cert_check

    A negative result is set to 0 and said so in the source string. Only these two cases are calibration data:
    TLS 1.3, P-384/P-521, other chain lengths, and every round-trip time and rate are out of sample.
    """
    import numpy as np

    costs = {**op_costs_s["P-256"]}
    costs.setdefault("check", costs["derive"])
    base = resolve_profile("iso15118-2")
    cases = {
        "A": resolve_profile(replace(base, mutual=False, n_chain_server=3, n_chain_client=0)),
        "B": resolve_profile(
            replace(
                base,
                cipher_suite="TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                mutual=True,
                n_chain_server=1,
                n_chain_client=1,
            )
        ),
    }
    times: dict[str, list[tuple[float, float]]] = {"A": [], "B": []}
    with tempfile.TemporaryDirectory(prefix="v2gtwin-tls-") as tmp:
        ctx = {}
        for tag, prof in cases.items():
            folder = Path(tmp) / tag
            folder.mkdir()
            pki = make_pki(folder, "P-256", prof.n_chain_server, max(prof.n_chain_client, 1))
            ctx[tag] = _contexts(prof, pki)
        for _ in range(n):
            for tag in cases:
                t_c, t_s, _flights, _suite = _one_in_memory(*ctx[tag])
                times[tag].append((t_c, t_s))
    rows, rhs = [], []
    for tag, prof in cases.items():
        ops = count_operations(prof)
        work = {side: sum(ops[side][o] * costs[o] for o in OPS) for side in ("client", "server")}
        t_c = statistics.median(t[0] for t in times[tag])
        t_s = statistics.median(t[1] for t in times[tag])
        n_cli = prof.n_chain_server  # certificates the client checks
        n_srv = prof.n_chain_client if prof.mutual else 0
        rows += [[1.0, 0.0, n_cli], [0.0, 1.0, n_srv]]
        rhs += [t_c - work["client"], t_s - work["server"]]
    sol = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)[0]
    names = ("base_client", "base_server", "cert_check")
    clipped = [name for name, v in zip(names, sol, strict=True) if v < 0]
    note = f"; {', '.join(clipped)} came out negative and was set to 0" if clipped else ""
    return Overhead(
        base_client_s=max(float(sol[0]), 0.0),
        base_server_s=max(float(sol[1]), 0.0),
        cert_check_s=max(float(sol[2]), 0.0),
        source=f"calibrated now on in-memory TLS 1.2 P-256 handshakes (median of {n}){note}",
    )


# ----------------------------------------------------------------------------------------------- live
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


def measure_rig_oneway_s(rtt_s: float, rate_bps: float | None, *, n_bytes: int = 1000, n: int = 5) -> float:
    """The test rig's own latency per one-way traversal [s]: a raw TCP echo of ``n_bytes`` over loopback (through
    a shaping proxy with the same settings when ``rtt_s`` > 0 or a rate is set), median round trip minus the
    link's nominal ``rtt_s + 2 n_bytes / rate``, halved. No TLS is involved: this is what the emulation and the
    host (socket calls, thread wake-ups, the proxy's timer) add to every flight, measured apart from the model.
    """
    from v2gtwin.cyber.shaping import ShapingProxy

    payload = b"e" * n_bytes
    with ExitStack() as stack:
        port = stack.enter_context(_echo_server())
        if rtt_s > 0.0 or rate_bps is not None:
            proxy = stack.enter_context(
                ShapingProxy(("127.0.0.1", 0), ("127.0.0.1", port), delay_s=rtt_s / 2.0, rate_bps=rate_bps)
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
    nominal = rtt_s + (2.0 * n_bytes / rate_bps if rate_bps else 0.0)
    return max(statistics.median(rtts[1:]) - nominal, 0.0) / 2.0


def measure_handshakes(
    profile: str | TlsProfile,
    rtt_s: float = 0.0,
    rate_bps: float | None = None,
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
    from v2gtwin.cyber.handshake import _check_link  # same checks and messages as the model
    from v2gtwin.cyber.shaping import ShapingProxy

    prof = resolve_profile(profile)
    rtt, rate = _check_link(rtt_s, rate_bps)
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
                ShapingProxy(("127.0.0.1", 0), ("127.0.0.1", port), delay_s=rtt / 2.0, rate_bps=rate)
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
        "rate_bps": rate,
        "n": n,
        "shaped": shaped,
        "cipher_suite": prof.cipher_suite,
        "t_client_done_s": statistics.median(t_client),
        "t_handshake_s": statistics.median(t_both) if t_both else None,
        "t_client_done_min_s": min(t_client),
        "t_handshake_min_s": min(t_both) if t_both else None,
    }


def run_validation(
    profiles: tuple[str | TlsProfile, ...] = ("iso15118-2", "iso15118-20", "ocpp-sp3"),
    links: tuple[tuple[float, float | None], ...] = ((0.0, None), (0.05, None), (0.15, None), (0.05, 8_000.0)),
    *,
    peers: tuple[Literal["python", "openssl"], ...] = ("python", "openssl"),
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
