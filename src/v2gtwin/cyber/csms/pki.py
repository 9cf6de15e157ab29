"""A small PKI for the central system's security profiles 2 and 3 (OCPP 2.0.1 Part 2, Security):
a CA, an ECDSA P-256 server certificate (and an RSA-2048 one for the TLS_RSA cipher suites the specification
lists), and one client certificate per station whose common name is the station id. Built with the
`cryptography` package."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["init_pki"]

_Key = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def _write(folder: Path, name: str, key: _Key, cert: x509.Certificate) -> None:
    (folder / f"{name}.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    (folder / f"{name}.key").chmod(0o600)
    (folder / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _cert(
    subject_cn: str,
    key: _Key,
    issuer: x509.Name,
    issuer_key: _Key,
    *,
    ca: bool,
    server: bool,
    alt_names: tuple[str, ...] = (),
    days: int = 825,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    b = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, subject_cn),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "v2gtwin"),
                ]
            )
        )
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        b = b.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if alt_names:
        names: list[x509.GeneralName] = []
        for n in alt_names:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(n)))
            except ValueError:
                names.append(x509.DNSName(n))
        b = b.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def init_pki(
    folder: str | Path, station_ids: list[str], hostnames: tuple[str, ...] = ("localhost", "127.0.0.1")
) -> Path:
    """Create ``ca``, ``server`` (ECDSA P-256), ``server-rsa`` (RSA 2048) and ``stations/<id>`` key/cert pairs
    (PEM) in ``folder``. Existing files are not overwritten: an error names the first one found."""
    out = Path(folder)
    (out / "stations").mkdir(parents=True, exist_ok=True)
    for name in ("ca.pem", "server.pem", "server-rsa.pem", *(f"stations/{s}.pem" for s in station_ids)):
        if (out / name).exists():
            raise FileExistsError(f"{out / name} exists; refusing to overwrite a PKI")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "v2gtwin CSMS CA"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "v2gtwin"),
        ]
    )
    ca_cert = _cert("v2gtwin CSMS CA", ca_key, ca_name, ca_key, ca=True, server=False, days=3650)
    ca_name = ca_cert.subject  # leaves name the CA exactly as its certificate does
    _write(out, "ca", ca_key, ca_cert)
    srv_key = ec.generate_private_key(ec.SECP256R1())
    _write(
        out,
        "server",
        srv_key,
        _cert(hostnames[0], srv_key, ca_name, ca_key, ca=False, server=True, alt_names=hostnames),
    )
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write(
        out,
        "server-rsa",
        rsa_key,
        _cert(hostnames[0], rsa_key, ca_name, ca_key, ca=False, server=True, alt_names=hostnames),
    )
    for sid in station_ids:
        k = ec.generate_private_key(ec.SECP256R1())
        _write(out / "stations", sid, k, _cert(sid, k, ca_name, ca_key, ca=False, server=False))
    return out
