"""The central system's TLS server context for OCPP security profiles 2 and 3 (OCPP 2.0.1 Part 2, Security):
TLS 1.2 or above, no compression, the ECDSA server chain and the RSA one beside it when the PKI has it (both its
certificate and its key, or neither), and for profile 3 the CA that signs the station certificates."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

from v2gtwin.errors import DataError

__all__ = ["server_ssl_context"]


def _load(load: Callable[..., Any], field: str, *paths: str) -> None:
    """Load TLS material with ``load`` (an SSLContext method); a missing or unreadable file, or one that is not
    a matching PEM certificate / key, is a :class:`DataError` naming the field and the file."""
    for path in paths:
        if not Path(path).is_file():
            raise DataError(f"{field}: {path} does not exist (create a PKI with 'v2gtwin csms pki')")
    try:
        load(*paths)
    except (OSError, ssl.SSLError) as exc:  # ssl.SSLError: not PEM, or key and certificate do not match
        reason = getattr(exc, "reason", None) or exc.strerror or exc.__class__.__name__
        raise DataError(f"{field}: cannot load {', '.join(paths)} ({reason})") from None


def server_ssl_context(
    security_profile: int, certfile: str | None, keyfile: str | None, cafile: str | None
) -> ssl.SSLContext | None:
    """The server's SSLContext (None below profile 2).

    Raises
    ------
    DataError
        When a file is missing, unreadable or not a matching PEM certificate and key (or CA for profile 3); when
        ``<certfile stem>-rsa.pem`` or ``-rsa.key`` is there without the other.
    """
    if security_profile < 2:
        return None
    if not (certfile and keyfile):
        raise DataError("certfile, keyfile: security profiles 2 and 3 need the server certificate and key")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_COMPRESSION
    _load(ctx.load_cert_chain, "certfile, keyfile", certfile, keyfile)
    # The RSA server chain beside the ECDSA one when the PKI has it (csms pki makes both): OpenSSL keeps one
    # chain per key type and presents the one the station's signature algorithms accept. A certificate without
    # its key (or the reverse) is an error, not a server that silently offers the ECDSA chain alone.
    rsa_cert = Path(certfile).with_name(Path(certfile).stem + "-rsa.pem")
    rsa_key = rsa_cert.with_suffix(".key")
    if rsa_cert.is_file() or rsa_key.is_file():
        _load(ctx.load_cert_chain, "certfile, keyfile (RSA)", str(rsa_cert), str(rsa_key))
    if security_profile == 3:
        if not cafile:
            raise DataError("cafile: security profile 3 needs the CA that signs the station certificates")
        ctx.verify_mode = ssl.CERT_REQUIRED
        _load(ctx.load_verify_locations, "cafile", cafile)
    return ctx
