"""The TLS handshake model's inputs: curves, cipher suites, profiles (ISO 15118-2/-20, OCPP security profiles 2
and 3), the operation costs and stack costs measured on this machine, and processor presets.

Sources of each profile and preset are in their ``source`` fields and in docs/cyber.md (TLS handshake); the
model itself is :mod:`v2gtwin.cyber.handshake`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Literal

from v2gtwin.errors import DataError

__all__ = [
    "CIPHER_SUITES",
    "CPU_PRESETS",
    "CURVES",
    "OPS",
    "PROFILES",
    "REFERENCE_OP_COSTS_S",
    "REFERENCE_OVERHEAD",
    "CpuPreset",
    "Curve",
    "Overhead",
    "Suite",
    "TlsProfile",
    "check_link",
    "cpu_factor",
    "names_of",
    "resolve_profile",
]

Op = Literal["keygen", "derive", "check", "sign", "verify"]
OPS: tuple[Op, ...] = ("keygen", "derive", "check", "sign", "verify")


@dataclass(frozen=True)
class Curve:
    """An elliptic curve used for ECDHE and ECDSA.

    Attributes
    ----------
    name : str
        ``P-256``, ``P-384`` or ``P-521``.
    openssl_name : str
        The name OpenSSL's group list knows it by.
    key_share_bytes : int
        Uncompressed public point, 1 + 2 x field size [bytes] (SEC 1 §2.3.3).
    sig_bytes : int
        Mean size of a DER ECDSA signature, SEQUENCE of two INTEGERs [bytes] (the INTEGERs carry a leading
        zero byte half of the time).
    cert_bytes : tuple of int
        DER sizes of a leaf and of a CA certificate of v2gtwin's test PKI on this curve [bytes] (measured;
        real V2G certificates carry a few more extensions).
    """

    name: str
    openssl_name: str
    key_share_bytes: int
    sig_bytes: int
    cert_bytes: tuple[int, int]


CURVES: dict[str, Curve] = {
    "P-256": Curve("P-256", "prime256v1", 65, 71, (396, 355)),
    "P-384": Curve("P-384", "secp384r1", 97, 103, (465, 424)),
    "P-521": Curve("P-521", "secp521r1", 133, 138, (531, 491)),
}


@dataclass(frozen=True)
class Suite:
    """A cipher suite, with what the byte count needs of it.

    Attributes
    ----------
    name : str
        IANA name.
    tls_version : str
        ``"1.2"`` or ``"1.3"``.
    openssl_name : str
        OpenSSL's name (TLS 1.2 cipher list or TLS 1.3 ciphersuites).
    finished_record_bytes : int
        TLS 1.2: the encrypted Finished record [bytes] (CBC-HMAC-SHA256: 5 + IV 16 + 16 + MAC 32 padded to 64;
        GCM: 5 + nonce 8 + 16 + tag 16). TLS 1.3: the hash length [bytes] (Finished = 4 + hash length).
    """

    name: str
    tls_version: Literal["1.2", "1.3"]
    openssl_name: str
    finished_record_bytes: int


CIPHER_SUITES: dict[str, Suite] = {
    s.name: s
    for s in (
        Suite("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", "1.2", "ECDHE-ECDSA-AES128-SHA256", 85),
        Suite("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "1.2", "ECDHE-ECDSA-AES128-GCM-SHA256", 45),
        Suite("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "1.2", "ECDHE-ECDSA-AES256-GCM-SHA384", 45),
        Suite("TLS_AES_256_GCM_SHA384", "1.3", "TLS_AES_256_GCM_SHA384", 48),
        Suite("TLS_AES_128_GCM_SHA256", "1.3", "TLS_AES_128_GCM_SHA256", 32),
        Suite("TLS_CHACHA20_POLY1305_SHA256", "1.3", "TLS_CHACHA20_POLY1305_SHA256", 32),
    )
}


@dataclass(frozen=True)
class TlsProfile:
    """One use of TLS: version and suite, curve, who authenticates, certificate chain lengths, roles.

    Attributes
    ----------
    name : str
        Registry key.
    cipher_suite : str
        Key of :data:`CIPHER_SUITES`; fixes the TLS version.
    curve : str
        Key of :data:`CURVES` for the ECDHE group and the certificates' keys.
    mutual : bool
        The client authenticates too (its Certificate and CertificateVerify).
    n_chain_server, n_chain_client : int
        Certificates each side sends (leaf and sub-CAs, root excluded) [-]; the client's counts only if mutual.
    client_role, server_role : str
        Who the TLS client and server are (``EV``, ``charger``, ``CSMS``).
    session_ticket : bool
        The server sends a session ticket (OpenSSL's default).
    server_cert_bytes, client_cert_bytes : tuple of int
        DER sizes of the certificates each side sends, leaf first [bytes]; empty: the curve's typical sizes
        (:attr:`Curve.cert_bytes`). Their length must match the chain length.
    source : str
        Where the profile's settings come from.
    """

    name: str
    cipher_suite: str
    curve: str
    mutual: bool
    n_chain_server: int
    n_chain_client: int
    client_role: str
    server_role: str
    session_ticket: bool = True
    source: str = ""
    server_cert_bytes: tuple[int, ...] = ()
    client_cert_bytes: tuple[int, ...] = ()

    @property
    def suite(self) -> Suite:
        """The cipher suite's record."""
        return CIPHER_SUITES[self.cipher_suite]

    @property
    def tls_version(self) -> str:
        """``"1.2"`` or ``"1.3"``."""
        return self.suite.tls_version


PROFILES: dict[str, TlsProfile] = {
    p.name: p
    for p in (
        TlsProfile(
            "iso15118-2",
            "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
            "P-256",
            mutual=False,
            n_chain_server=3,
            n_chain_client=0,
            client_role="EV",
            server_role="charger",
            source="ISO 15118-2:2014 cl. 7.7.4; chain V2G root -> CPO sub-CA 1 -> sub-CA 2 -> SECC leaf",
        ),
        TlsProfile(
            "iso15118-20",
            "TLS_AES_256_GCM_SHA384",
            "P-521",
            mutual=True,
            n_chain_server=3,
            n_chain_client=3,
            client_role="EV",
            server_role="charger",
            source="ISO 15118-20:2022 (TLS 1.3, mutual; secp521r1 PKI); EV chain OEM root -> 2 sub-CAs -> vehicle",
        ),
        TlsProfile(
            "ocpp-sp2",
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            "P-256",
            mutual=False,
            n_chain_server=1,
            n_chain_client=0,
            client_role="charger",
            server_role="CSMS",
            source="OCPP 2.0.1 Part 2 security profile 2 (TLS 1.2, server certificate); v2gtwin csms PKI (CA -> leaf)",
        ),
        TlsProfile(
            "ocpp-sp3",
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            "P-256",
            mutual=True,
            n_chain_server=1,
            n_chain_client=1,
            client_role="charger",
            server_role="CSMS",
            source="OCPP 2.0.1 Part 2 security profile 3 (TLS 1.2, mutual); v2gtwin csms PKI (CA -> leaf)",
        ),
    )
}


def names_of(d: dict[str, Any]) -> str:
    return ", ".join(sorted(d))


def resolve_profile(
    profile: str | TlsProfile,
    *,
    cipher_suite: str | None = None,
    curve: str | None = None,
    n_chain_server: int | None = None,
    n_chain_client: int | None = None,
) -> TlsProfile:
    """A profile from the registry (or as given), with optional changes; unknown names are one-line errors.

    A cipher suite of the other TLS version than the profile's is accepted (the handshake follows the suite);
    chain lengths must be integers in [1, 8] (a client chain in [0, 8], 0 only when not mutual).
    """
    if isinstance(profile, str):
        if profile not in PROFILES:
            raise DataError(f"profile must be one of {names_of(PROFILES)} (got {profile!r})")
        prof = PROFILES[profile]
    else:
        prof = profile
    changes: dict[str, Any] = {}
    if cipher_suite is not None:
        if cipher_suite not in CIPHER_SUITES:
            raise DataError(f"cipher_suite must be one of {names_of(CIPHER_SUITES)} (got {cipher_suite!r})")
        changes["cipher_suite"] = cipher_suite
    if curve is not None:
        if curve not in CURVES:
            raise DataError(f"curve must be one of {names_of(CURVES)} (got {curve!r})")
        changes["curve"] = curve
    if n_chain_server is not None:
        changes["n_chain_server"] = n_chain_server
    if n_chain_client is not None:
        changes["n_chain_client"] = n_chain_client
    prof = replace(prof, **changes) if changes else prof
    for side, sizes, n in (
        ("server", prof.server_cert_bytes, prof.n_chain_server),
        ("client", prof.client_cert_bytes, prof.n_chain_client),
    ):
        if sizes and (len(sizes) != n or any(int(b) < 100 or int(b) > 16384 for b in sizes)):
            raise DataError(
                f"{side}_cert_bytes must hold {n} sizes (n_chain_{side}) in [100, 16384] bytes (got {sizes})"
            )
    if prof.cipher_suite not in CIPHER_SUITES:
        raise DataError(f"cipher_suite must be one of {names_of(CIPHER_SUITES)} (got {prof.cipher_suite!r})")
    if prof.curve not in CURVES:
        raise DataError(f"curve must be one of {names_of(CURVES)} (got {prof.curve!r})")
    if not (isinstance(prof.n_chain_server, int) and 1 <= prof.n_chain_server <= 8):
        raise DataError(f"n_chain_server must be an integer in [1, 8] (got {prof.n_chain_server!r})")
    lo = 1 if prof.mutual else 0
    if not (isinstance(prof.n_chain_client, int) and lo <= prof.n_chain_client <= 8):
        raise DataError(
            f"n_chain_client must be an integer in [{lo}, 8] for profile {prof.name} (got {prof.n_chain_client!r})"
        )
    return prof


# ----------------------------------------------------------------------------------------------- costs
#: Cost of one operation on this machine [s], per curve: median of 200 calls of ``cryptography`` 50.0.2 (its
#: bundled OpenSSL 4.0.3), measured 2026-11-27 on the project's 2-core build machine with
#: ``python benchmarks/bench_tls.py`` (keygen = ``ec.generate_private_key``, derive = ``exchange(ECDH())``,
#: sign / verify = ECDSA with the curve's hash over 100 bytes). ``--measure`` measures them again.
REFERENCE_OP_COSTS_S: dict[str, dict[str, float]] = {
    "P-256": {"keygen": 11.8e-6, "derive": 46.7e-6, "sign": 21.3e-6, "verify": 61.2e-6},
    "P-384": {"keygen": 149.7e-6, "derive": 344.2e-6, "sign": 207.6e-6, "verify": 473.7e-6},
    "P-521": {"keygen": 129.2e-6, "derive": 277.9e-6, "sign": 245.6e-6, "verify": 473.6e-6},
}


@dataclass(frozen=True)
class Overhead:
    """Fixed costs of the TLS stack beyond the public-key operations, on this machine [s].

    Attributes
    ----------
    base_client_s, base_server_s : float
        Per handshake and side: messages, transcript hashes, key schedule, record protection [s].
    cert_check_s : float
        Per certificate of the peer's chain a side checks: X.509 decoding, path building, key decoding [s]
        (the signature verifications themselves are counted as operations).
    source : str
        How the figures were obtained.
    """

    base_client_s: float
    base_server_s: float
    cert_check_s: float
    source: str = ""


#: Calibrated on this machine (see :func:`v2gtwin.cyber.handshake_measure.calibrate_overhead`): in-memory
#: handshakes (``ssl.MemoryBIO``, no network, Python's ssl on OpenSSL 3.0.19) of TLS 1.2 P-256,
#: server-authenticated with a 3-certificate chain and mutual with 1-certificate chains; each side's CPU time
#: minus its counted operations, least squares. Only these two cases are used: TLS 1.3, P-521, other chain
#: lengths and every round-trip time and rate in the validation are out of sample.
REFERENCE_OVERHEAD = Overhead(
    base_client_s=0.186e-3,
    base_server_s=0.282e-3,
    cert_check_s=0.177e-3,
    source="calibrated 2026-11-27 on in-memory TLS 1.2 P-256 handshakes, CPU time (python benchmarks/bench_tls.py)",
)


@dataclass(frozen=True)
class CpuPreset:
    """A processor class: its time for the same work relative to this machine, and where that comes from."""

    name: str
    factor: float
    source: str


CPU_PRESETS: dict[str, CpuPreset] = {
    p.name: p
    for p in (
        CpuPreset("host", 1.0, "this machine (the costs' reference)"),
        CpuPreset(
            "cortex-a53",
            8.0,
            "assumption: a 1.2 GHz Cortex-A53 running OpenSSL takes about 8x the time of a current x86 core for "
            "P-256 (unverified; measure your board with `openssl speed ecdsap256`)",
        ),
        CpuPreset(
            "cortex-a7",
            20.0,
            "assumption: a 0.5-1 GHz Cortex-A7 (typical ISO 15118 communication controller) at about 20x "
            "(unverified; measure your board with `openssl speed ecdsap256`)",
        ),
        CpuPreset(
            "cortex-m7",
            1100.0,
            "SEGGER emSecure-ECDSA: P-256 signature verification 67.45 ms on a Cortex-M7 at 216 MHz "
            "(segger.com, emSecure-ECDSA performance table) / 61.2 us here (P-256 verify)",
        ),
        CpuPreset(
            "cortex-m4",
            2100.0,
            "assumption: the Cortex-M7 figure scaled to a 168 MHz Cortex-M4 by clock (216/168) and an assumed "
            "1.5x fewer instructions per clock (unverified)",
        ),
    )
}


def cpu_factor(value: float | str, name: str) -> float:
    if isinstance(value, str):
        if value not in CPU_PRESETS:
            raise DataError(f"{name} must be a number > 0 or one of {names_of(CPU_PRESETS)} (got {value!r})")
        return CPU_PRESETS[value].factor
    v = float(value)
    if not math.isfinite(v) or v <= 0.0:
        raise DataError(f"{name} must be a finite number > 0 (got {value})")
    return v


def check_link(rtt_s: float, rate_bytes_per_s: float | None) -> tuple[float, float | None]:
    rtt = float(rtt_s)
    if not math.isfinite(rtt) or rtt < 0.0:
        raise DataError(f"rtt_s must be a finite number >= 0 s (got {rtt_s})")
    if rate_bytes_per_s is None:
        return rtt, None
    rate = float(rate_bytes_per_s)
    if not math.isfinite(rate) or rate <= 0.0:
        raise DataError(
            f"rate_bytes_per_s must be a finite number > 0 bytes/s, or None for no limit (got {rate_bytes_per_s})"
        )
    return rtt, rate
