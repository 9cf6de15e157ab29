"""Measurements behind the TLS handshake model: operation costs, the certificates, in-memory handshakes and
the calibration of the TLS stack's fixed costs (live handshakes: :mod:`v2gtwin.cyber.handshake_live`).

- :func:`measure_op_costs_s`: ECDHE key generation, ECDH derivation, ECDSA sign and verify with
  ``cryptography`` (median of repeated calls).
- :func:`make_pki`: a throw-away PKI per side, a root, ``n - 1`` sub-CAs and a leaf (the ISO 15118 chain
  V2G root -> sub-CA 1 -> sub-CA 2 -> leaf for ``n = 3``), made with the certificate builder of
  :mod:`v2gtwin.cyber.csms.pki`.
- :func:`measure_in_memory`: handshakes through ``ssl.MemoryBIO`` (no network), CPU time per side and bytes
  per flight.
- :func:`calibrate_overhead`: the model's per-side base and per-certificate fixed costs
  (:class:`~v2gtwin.cyber.handshake_profiles.Overhead`) from in-memory TLS 1.2 P-256 handshakes.
"""

from __future__ import annotations

import logging
import ssl
import statistics
import tempfile
import time
from collections.abc import Callable
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
    count_operations,
    resolve_profile,
)
from v2gtwin.errors import DataError

__all__ = [
    "Pki",
    "calibrate_overhead",
    "make_pki",
    "measure_in_memory",
    "measure_op_costs_s",
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
