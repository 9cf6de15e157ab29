"""Plug & Charge TLS handshake time: round trips, bytes on the link and cryptographic work on each side.

The handshake is a chain of *flights* (the messages one side sends before it waits for the other). Each flight
starts when its sender has processed the previous one and crosses the link in one one-way delay plus its
serialisation time, so the time from the first byte of the ClientHello until both ends have completed is

.. math::

    t_{hs} = \\sum_{k \\in \\text{path}} \\Big(\\frac{\\mathrm{RTT}}{2} + \\frac{B_k}{r}\\Big)
           + \\sum_{s \\in \\{c, s\\}} f_s \\Big(\\sum_{o} n_{s,o}\\, c_o + t^{base}_s + n^{cert}_s t^{cert}\\Big)

with :math:`B_k` the bytes of flight k [bytes], :math:`r` the link rate [bytes/s], :math:`n_{s,o}` the number of
operations o (ECDHE key generation, ECDH derivation, ECDSA signature, ECDSA verification) on side s,
:math:`c_o` their cost on this machine [s] (measured with ``cryptography``:
:func:`v2gtwin.cyber.handshake_measure.measure_op_costs_s`), :math:`f_s` the side's processor factor (time on
that processor / time here) and two named fixed costs of the TLS stack (not cryptography): a base per side
:math:`t^{base}_s` and :math:`t^{cert}` per certificate of the peer's chain checked (X.509 decoding, path
building, key decoding; :math:`n^{cert}_s` certificates). TLS 1.2 (RFC 5246) needs four flights (2 RTT)
and the client finishes last; TLS 1.3 (RFC 8446) needs three (1.5 RTT) until the server has checked the
client's Finished (the client itself is done after 1 RTT). A TCP connection set-up adds one RTT before
(``t_tcp_connect_s``, reported apart).

Operations per side (``n`` = certificates a side sends, leaf and sub-CAs; the root is in the peer's trust
store and its self-signature is not checked, OpenSSL's default):

======================  ========================================  ================================
step                    TLS 1.2 ECDHE-ECDSA                       TLS 1.3
======================  ========================================  ================================
client, flight 1        -                                         keygen (key share)
server, flight 2        keygen, sign (ServerKeyExchange)          keygen, derive + check, sign
client, flight 3        n_s + 1 verify, keygen, derive + check    derive + check, n_s + 1 verify
                        (+ sign if mutual)                        (+ sign if mutual)
server, flight 4 / end  derive + check                            (n_c + 1 verify if mutual)
                        (+ n_c + 1 verify if mutual)
======================  ========================================  ================================

Every derivation comes with a *check* of the peer's ECDHE public key: OpenSSL's ``EVP_PKEY_derive_set_peer``
validates the peer key (``EVP_PKEY_public_check``), which for a prime curve includes multiplying the point by
the group order [8]_ -- one more variable-base scalar multiplication, costed as a derivation. (Without it the
P-521 server side of TLS 1.2 came out 25 % slower than predicted in CPU time; with it, 3 %.)

Byte counts follow the message structures of RFC 5246 §7.4 / RFC 8446 §4 with the certificates' DER sizes,
the key share (uncompressed point, SEC 1 §2.3.3) and the DER ECDSA signature; the extension blocks of the
hellos and the session ticket are those of OpenSSL 3.0 (named constants below, measured with ``ssl.MemoryBIO``;
another TLS stack sends a few tens of bytes more or less).

What is left out: session resumption (a resumed handshake has no certificate and no signature), a
HelloRetryRequest (the client here offers the server's group at once), OCSP stapling, Ed448/X448 and RSA
certificates, TCP slow start (every flight fits in the initial window of 10 segments, RFC 6928) and losses.

References
----------
.. [1] T. Dierks, E. Rescorla, "The Transport Layer Security (TLS) Protocol Version 1.2", RFC 5246, 2008.
.. [2] E. Rescorla, "The Transport Layer Security (TLS) Protocol Version 1.3", RFC 8446, 2018.
.. [3] Y. Nir, S. Josefsson, M. Pegourie-Gonnard, "Elliptic Curve Cryptography (ECC) Cipher Suites for TLS
   1.2 and Earlier", RFC 8422, 2018 (ServerKeyExchange and ClientKeyExchange for ECDHE-ECDSA).
.. [4] ISO 15118-2:2014, clause 7.7.4 (TLS 1.2, TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256 on secp256r1, only the
   SECC authenticated) and the V2G PKI (V2G root -> CPO sub-CA 1 -> sub-CA 2 -> SECC leaf).
.. [5] ISO 15118-20:2022: TLS 1.3 with mutual authentication, TLS_AES_256_GCM_SHA384 (and
   TLS_CHACHA20_POLY1305_SHA256); its message schema (V2G_CI_CommonMessages.xsd, ``ecdhCurveType`` =
   SECP521 | X448) puts its PKI on secp521r1 or X448/Ed448; the secp521r1 branch is modelled.
.. [6] Open Charge Alliance, OCPP 2.0.1 Part 2, "Security" (security profiles 2 and 3: TLS 1.2 or above,
   server-authenticated / mutual; TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 among the required suites).
.. [7] D. Eastlake, "Transport Layer Security (TLS) Extensions: Extension Definitions", RFC 6066, and
   A. Langley, "A Transport Layer Security (TLS) ClientHello Padding Extension", RFC 7685, 2015.
.. [8] OpenSSL 3.0 manual, EVP_PKEY_derive(3) (``EVP_PKEY_derive_set_peer`` validates the peer key) and
   EVP_PKEY_check(3) (the public-key check of an EC key).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from v2gtwin.cyber.handshake_profiles import (
    CIPHER_SUITES,
    CPU_PRESETS,
    CURVES,
    OPS,
    PROFILES,
    REFERENCE_OP_COSTS_S,
    REFERENCE_OVERHEAD,
    CpuPreset,
    Curve,
    Overhead,
    Suite,
    TlsProfile,
    check_link,
    cpu_factor,
    names_of,
    resolve_profile,
)
from v2gtwin.errors import DataError

__all__ = [
    "CIPHER_SUITES",
    "CPU_PRESETS",
    "CURVES",
    "PROFILES",
    "REFERENCE_OP_COSTS_S",
    "REFERENCE_OVERHEAD",
    "CpuPreset",
    "Curve",
    "Flight",
    "HandshakeResult",
    "Overhead",
    "Suite",
    "TlsProfile",
    "calc_flights",
    "calc_handshake_time",
    "calc_tls_summary",
    "count_operations",
    "handshake_breakdown",
    "resolve_profile",
]


# ----------------------------------------------------------------------------------------------- structure
#: OpenSSL 3.0's fixed parts (record and handshake headers, extension blocks), measured with ssl.MemoryBIO on
#: handshakes whose certificates, key shares and signatures were summed apart [bytes].
CLIENT_HELLO_12_BYTES = 146  # record + ClientHello offering one TLS 1.2 suite (+ SCSV), OpenSSL's extensions
CLIENT_HELLO_13_FIXED_BYTES = 193  # record + TLS 1.3 ClientHello without its key share
SERVER_FLIGHT_12_FIXED_BYTES = 111  # ServerHello, Certificate/SKE/ServerHelloDone headers, 3 records
CERT_REQUEST_12_BYTES = 54  # CertificateRequest (signature algorithms, no CA names)
SERVER_FLIGHT_13_FIXED_BYTES = 202  # ServerHello, CCS, EE, Certificate/CertificateVerify headers, records
CERT_REQUEST_13_BYTES = 67  # CertificateRequest in its own protected record
TICKET_BYTES = 176  # OpenSSL's stateless ticket, server-authenticated; + peer leaf certificate + 4 if mutual
RECORD_13_OVERHEAD_BYTES = 22  # TLS 1.3 protected record: header 5 + content type 1 + AEAD tag 16
CCS_BYTES = 6  # ChangeCipherSpec record


@dataclass(frozen=True)
class Flight:
    """One flight: who sends it, its bytes, the work before it and whether it is on the completion path."""

    sender: Literal["client", "server"]
    n_bytes: int
    ops: dict[str, int]
    n_cert_checks: int
    on_path: bool = True


def _client_hello_bytes(n_bytes: int) -> int:
    """RFC 7685 padding as OpenSSL applies it: a ClientHello of 256-511 bytes (without the record header) is
    padded to 512."""
    hs = n_bytes - 5
    return 517 if 256 <= hs < 512 else n_bytes


def _certs_bytes(curve: Curve, n: int, per_entry: int, given: tuple[int, ...] = ()) -> int:
    if given:
        return sum(given) + n * per_entry
    leaf, ca = curve.cert_bytes
    return leaf + (n - 1) * ca + n * per_entry


def calc_flights(prof: TlsProfile) -> list[Flight]:
    """The flights of a full handshake of ``prof`` with their bytes and the operations before each.

    The last element with ``sender="server"`` and ``n_bytes`` of a TLS 1.3 ticket is after completion
    (``on_path=False``); the work of the final receiver is a flight of zero bytes.
    """
    c = CURVES[prof.curve]
    s = prof.suite
    m = prof.mutual
    leaf_bytes = prof.client_cert_bytes[0] if prof.client_cert_bytes else c.cert_bytes[0]
    ticket = (TICKET_BYTES + (leaf_bytes + 4 if m else 0)) if prof.session_ticket else 0
    if s.tls_version == "1.2":
        f2 = (
            SERVER_FLIGHT_12_FIXED_BYTES
            + _certs_bytes(c, prof.n_chain_server, 3, prof.server_cert_bytes)
            + c.key_share_bytes
        )
        f2 += c.sig_bytes + (CERT_REQUEST_12_BYTES if m else 0)
        f3 = 10 + c.key_share_bytes + CCS_BYTES + s.finished_record_bytes
        if m:
            f3 += 7 + _certs_bytes(c, prof.n_chain_client, 3, prof.client_cert_bytes) + 8 + c.sig_bytes
        f4 = (15 + ticket if ticket else 0) + CCS_BYTES + s.finished_record_bytes
        return [
            Flight("client", CLIENT_HELLO_12_BYTES, {}, 0),
            Flight("server", f2, {"keygen": 1, "sign": 1}, 0),
            Flight(
                "client",
                f3,
                {"keygen": 1, "derive": 1, "check": 1, "verify": prof.n_chain_server + 1, "sign": int(m)},
                prof.n_chain_server,
            ),
            Flight(
                "server",
                f4,
                {"derive": 1, "check": 1, "verify": (prof.n_chain_client + 1) if m else 0},
                prof.n_chain_client if m else 0,
            ),
            Flight("client", 0, {}, 0),
        ]
    fin = 4 + s.finished_record_bytes + RECORD_13_OVERHEAD_BYTES
    f1 = _client_hello_bytes(CLIENT_HELLO_13_FIXED_BYTES + c.key_share_bytes)
    f2 = (
        SERVER_FLIGHT_13_FIXED_BYTES
        + _certs_bytes(c, prof.n_chain_server, 5, prof.server_cert_bytes)
        + c.key_share_bytes
    )
    f2 += 8 + c.sig_bytes + fin - RECORD_13_OVERHEAD_BYTES + (CERT_REQUEST_13_BYTES if m else 0)
    f3 = CCS_BYTES + fin
    if m:
        f3 += (
            2 * RECORD_13_OVERHEAD_BYTES
            + 8
            + _certs_bytes(c, prof.n_chain_client, 5, prof.client_cert_bytes)
            + 8
            + c.sig_bytes
        )
    tickets = 2 * (ticket + RECORD_13_OVERHEAD_BYTES + 15) if ticket else 0  # OpenSSL sends two
    return [
        Flight("client", f1, {"keygen": 1}, 0),
        Flight("server", f2, {"keygen": 1, "derive": 1, "check": 1, "sign": 1}, 0),
        Flight(
            "client",
            f3,
            {"derive": 1, "check": 1, "verify": prof.n_chain_server + 1, "sign": int(m)},
            prof.n_chain_server,
        ),
        Flight("server", 0, {"verify": (prof.n_chain_client + 1) if m else 0}, prof.n_chain_client if m else 0),
        Flight("server", tickets, {}, 0, on_path=False),
    ]


def count_operations(prof: TlsProfile) -> dict[str, dict[str, int]]:
    """Public-key operations per side of one full handshake: ``{"client": {op: n}, "server": {op: n}}``."""
    out: dict[str, dict[str, int]] = {"client": dict.fromkeys(OPS, 0), "server": dict.fromkeys(OPS, 0)}
    for fl in calc_flights(prof):
        for op, n in fl.ops.items():
            out[fl.sender][op] += n
    return out


# ----------------------------------------------------------------------------------------------- timing
@dataclass(frozen=True)
class HandshakeResult:
    """Predicted time of one full handshake and its parts (see the module notes).

    Attributes
    ----------
    t_handshake_s : float
        From the first byte of the ClientHello until both ends have completed [s].
    t_client_done_s : float
        Until the client has completed [s] (TLS 1.3: half a round trip before the server).
    t_rtt_s, t_transfer_s : float
        One-way delays on the completion path (``n_round_trips`` x RTT); serialisation of its bytes [s].
    t_crypto_client_s, t_crypto_server_s : float
        Public-key operations per side, scaled by the side's processor factor [s].
    t_overhead_client_s, t_overhead_server_s : float
        The TLS stack's fixed costs per side, scaled likewise [s].
    t_tcp_connect_s : float
        TCP's three-way handshake before it, one RTT [s] (not in ``t_handshake_s``).
    """

    profile: TlsProfile
    rtt_s: float
    rate_bytes_per_s: float | None
    cpu_factor_client: float
    cpu_factor_server: float
    n_round_trips: float
    t_rtt_s: float
    t_transfer_s: float
    t_crypto_client_s: float
    t_crypto_server_s: float
    t_overhead_client_s: float
    t_overhead_server_s: float
    t_handshake_s: float
    t_client_done_s: float
    t_tcp_connect_s: float
    bytes_client_to_server: int
    bytes_server_to_client: int
    ops: dict[str, dict[str, int]] = field(default_factory=dict)
    op_costs_source: str = ""
    overhead_source: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: the keys of ``v2gtwin cyber tls --json`` and of the study's handshake breakdown."""
        p = self.profile
        return {
            "profile": p.name,
            "tls_version": p.tls_version,
            "cipher_suite": p.cipher_suite,
            "curve": p.curve,
            "mutual": p.mutual,
            "n_chain_server": p.n_chain_server,
            "n_chain_client": p.n_chain_client if p.mutual else 0,
            "client_role": p.client_role,
            "server_role": p.server_role,
            "rtt_s": self.rtt_s,
            "rate_bytes_per_s": self.rate_bytes_per_s,
            "cpu_factor_client": self.cpu_factor_client,
            "cpu_factor_server": self.cpu_factor_server,
            "n_round_trips": self.n_round_trips,
            "bytes_client_to_server": self.bytes_client_to_server,
            "bytes_server_to_client": self.bytes_server_to_client,
            "ops_client": dict(self.ops.get("client", {})),
            "ops_server": dict(self.ops.get("server", {})),
            "t_rtt_s": self.t_rtt_s,
            "t_transfer_s": self.t_transfer_s,
            "t_crypto_client_s": self.t_crypto_client_s,
            "t_crypto_server_s": self.t_crypto_server_s,
            "t_overhead_client_s": self.t_overhead_client_s,
            "t_overhead_server_s": self.t_overhead_server_s,
            "t_handshake_s": self.t_handshake_s,
            "t_client_done_s": self.t_client_done_s,
            "t_tcp_connect_s": self.t_tcp_connect_s,
            "op_costs_source": self.op_costs_source,
            "overhead_source": self.overhead_source,
        }


def calc_handshake_time(
    profile: str | TlsProfile,
    rtt_s: float,
    rate_bytes_per_s: float | None = None,
    cpu_factor_client: float | str = 1.0,
    cpu_factor_server: float | str = 1.0,
    *,
    op_costs_s: dict[str, dict[str, float]] | None = None,
    overhead: Overhead | None = None,
    op_costs_source: str = "",
) -> HandshakeResult:
    """Predict one full TLS handshake's time and its breakdown (equation in the module notes).

    Parameters
    ----------
    profile : str or TlsProfile
        A key of :data:`PROFILES` or a profile (see :func:`resolve_profile` for changes).
    rtt_s : float
        Round-trip time of the link [s], >= 0.
    rate_bytes_per_s : float or None
        Link rate in each direction [bytes/s], > 0; None for no limit.
    cpu_factor_client, cpu_factor_server : float or str
        Time on the side's processor / time on this machine [-], > 0, or a key of :data:`CPU_PRESETS`.
    op_costs_s : dict, optional
        ``{curve: {op: cost_s}}``; default :data:`REFERENCE_OP_COSTS_S`.
    overhead : Overhead, optional
        Default :data:`REFERENCE_OVERHEAD`.
    op_costs_source : str
        Where ``op_costs_s`` came from (reported).

    Returns
    -------
    HandshakeResult
    """
    prof = resolve_profile(profile)
    rtt, rate = check_link(rtt_s, rate_bytes_per_s)
    fc = cpu_factor(cpu_factor_client, "cpu_factor_client")
    fs = cpu_factor(cpu_factor_server, "cpu_factor_server")
    costs_all = REFERENCE_OP_COSTS_S if op_costs_s is None else op_costs_s
    if prof.curve not in costs_all:
        raise DataError(f"op_costs_s has no entry for curve {prof.curve} (has {names_of(costs_all)})")
    costs = dict(costs_all[prof.curve])
    costs.setdefault("check", costs["derive"])  # the peer-key check is one variable-base multiplication too
    ov = REFERENCE_OVERHEAD if overhead is None else overhead
    factor = {"client": fc, "server": fs}
    base = {"client": ov.base_client_s, "server": ov.base_server_s}
    flights = calc_flights(prof)
    n_steps = {side: sum(1 for f in flights if f.sender == side and f.on_path) for side in ("client", "server")}
    crypto = {"client": 0.0, "server": 0.0}
    over = {"client": 0.0, "server": 0.0}
    t = 0.0
    t_done = {"client": 0.0, "server": 0.0}
    n_oneway = 0
    t_transfer = 0.0
    sent = {"client": 0, "server": 0}
    for i, fl in enumerate(flights):
        sent[fl.sender] += fl.n_bytes
        if not fl.on_path:
            continue
        if i > 0 and flights[i - 1].n_bytes > 0:  # this flight's work waits for the previous one's arrival
            t += rtt / 2.0 + (flights[i - 1].n_bytes / rate if rate else 0.0)
            n_oneway += 1
            t_transfer += flights[i - 1].n_bytes / rate if rate else 0.0
        c_s = factor[fl.sender] * sum(n * costs[op] for op, n in fl.ops.items())
        o_s = factor[fl.sender] * (base[fl.sender] / n_steps[fl.sender] + fl.n_cert_checks * ov.cert_check_s)
        crypto[fl.sender] += c_s
        over[fl.sender] += o_s
        t += c_s + o_s
        t_done[fl.sender] = t
    ops = count_operations(prof)
    return HandshakeResult(
        profile=prof,
        rtt_s=rtt,
        rate_bytes_per_s=rate,
        cpu_factor_client=fc,
        cpu_factor_server=fs,
        n_round_trips=n_oneway / 2.0,
        t_rtt_s=n_oneway * rtt / 2.0,
        t_transfer_s=t_transfer,
        t_crypto_client_s=crypto["client"],
        t_crypto_server_s=crypto["server"],
        t_overhead_client_s=over["client"],
        t_overhead_server_s=over["server"],
        t_handshake_s=max(t_done.values()),
        t_client_done_s=t_done["client"],
        t_tcp_connect_s=rtt,
        bytes_client_to_server=sent["client"],
        bytes_server_to_client=sent["server"],
        ops=ops,
        op_costs_source=op_costs_source or ("reference" if op_costs_s is None else "given"),
        overhead_source=ov.source,
    )


def handshake_breakdown(
    profile: str,
    rtt_s: float,
    rate_bytes_per_s: float | None,
    cpu_factor_ev: float | str = 1.0,
    cpu_factor_charger: float | str = 1.0,
    cpu_factor_csms: float | str = 1.0,
) -> dict[str, Any]:
    """The handshake-time breakdown of a profile for the study's cyber section (the ``cyber tls --json`` dict).

    The EV is the TLS client of ISO 15118 and the charger its server; in OCPP the charger is the client and
    the central system (``cpu_factor_csms``) the server.

    Parameters
    ----------
    profile : str
        A key of :data:`PROFILES`.
    rtt_s : float
        Round-trip time [s], >= 0.
    rate_bytes_per_s : float or None
        Link rate [bytes/s], > 0; None for no limit.
    cpu_factor_ev, cpu_factor_charger, cpu_factor_csms : float or str
        Processor factors [-] (time there / time here) or keys of :data:`CPU_PRESETS`.

    Returns
    -------
    dict
        :meth:`HandshakeResult.to_dict`.
    """
    prof = resolve_profile(profile)
    by_role = {"EV": cpu_factor_ev, "charger": cpu_factor_charger, "CSMS": cpu_factor_csms}
    res = calc_handshake_time(prof, rtt_s, rate_bytes_per_s, by_role[prof.client_role], by_role[prof.server_role])
    return res.to_dict()


def calc_tls_summary(
    rtt_s: float,
    rate_bytes_per_s: float | None,
    *,
    profiles: tuple[str, ...] = tuple(PROFILES),
    cpu_factor_ev: float | str = 1.0,
    cpu_factor_charger: float | str = 1.0,
    cpu_factor_csms: float | str = 1.0,
    cipher_suite: str | None = None,
    curve: str | None = None,
    n_chain_server: int | None = None,
    n_chain_client: int | None = None,
    op_costs_s: dict[str, dict[str, float]] | None = None,
    overhead: Overhead | None = None,
    op_costs_source: str = "",
) -> dict[str, Any]:
    """The breakdown of several profiles on one link: the dict of ``v2gtwin cyber tls --json``.

    Returns ``{"rtt_s", "rate_bytes_per_s", "op_costs_s", "overhead", "profiles": [HandshakeResult.to_dict(), ...]}``;
    the changes (suite, curve, chain lengths) apply to every profile listed.
    """
    rtt, rate = check_link(rtt_s, rate_bytes_per_s)
    if not profiles:
        raise DataError(f"profiles must name at least one of {names_of(PROFILES)}")
    by_role = {
        "EV": cpu_factor(cpu_factor_ev, "cpu_factor_ev"),
        "charger": cpu_factor(cpu_factor_charger, "cpu_factor_charger"),
        "CSMS": cpu_factor(cpu_factor_csms, "cpu_factor_csms"),
    }
    ov = REFERENCE_OVERHEAD if overhead is None else overhead
    rows = []
    for name in profiles:
        prof = resolve_profile(
            name,
            cipher_suite=cipher_suite,
            curve=curve,
            n_chain_server=n_chain_server,
            n_chain_client=n_chain_client,
        )
        res = calc_handshake_time(
            prof,
            rtt,
            rate,
            by_role[prof.client_role],
            by_role[prof.server_role],
            op_costs_s=op_costs_s,
            overhead=ov,
            op_costs_source=op_costs_source,
        )
        rows.append(res.to_dict())
    return {
        "rtt_s": rtt,
        "rate_bytes_per_s": rate,
        "op_costs_s": REFERENCE_OP_COSTS_S if op_costs_s is None else op_costs_s,
        "overhead": {
            "base_client_s": ov.base_client_s,
            "base_server_s": ov.base_server_s,
            "cert_check_s": ov.cert_check_s,
            "source": ov.source,
        },
        "profiles": rows,
    }
