"""OCPP 2.0.1 security profiles against real TLS and HTTP Basic clients on loopback."""

from __future__ import annotations

import asyncio
import base64
import ssl
import warnings
from pathlib import Path

import pytest
import websockets
from websockets.asyncio.client import connect

from v2gtwin.cyber.csms.pki import init_pki
from v2gtwin.cyber.csms.server import SUBPROTOCOL, Csms
from v2gtwin.cyber.csms.store import Store
from v2gtwin.cyber.csms.tls import server_ssl_context
from v2gtwin.errors import DataError

from .helpers import run

PASSWORD = "correct-horse-battery-staple"


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def attempt(url: str, **kw) -> str:  # type: ignore[no-untyped-def]
    """'open' when the handshake succeeds and the connection stays up, else what refused it."""
    try:
        async with connect(url, subprotocols=[SUBPROTOCOL], open_timeout=5, **kw) as ws:
            try:
                await asyncio.wait_for(ws.recv(), timeout=0.5)
            except TimeoutError:
                return "open"
            return "open"
    except websockets.exceptions.InvalidStatus as exc:
        return f"http {exc.response.status_code}"
    except websockets.exceptions.ConnectionClosed as exc:
        return f"closed {exc.rcvd.code if exc.rcvd else None}"
    except websockets.exceptions.InvalidMessage:  # TLS 1.3: the server drops an unauthenticated client late
        return "tls dropped"
    except (ssl.SSLError, ConnectionError, OSError) as exc:
        return f"tls {type(exc).__name__}"


def test_profile_1_http_basic(db_url: str) -> None:
    store = Store(db_url)
    store.set_password("CS-1", PASSWORD)
    with pytest.raises(ValueError, match="16 characters"):
        store.set_password("CS-2", "short")

    async def scenario():  # type: ignore[no-untyped-def]
        async with Csms(store, port=0, security_profile=1) as csms:
            base = f"ws://127.0.0.1:{csms.port}"
            return [
                await attempt(f"{base}/CS-1", additional_headers=basic("CS-1", PASSWORD)),
                await attempt(f"{base}/CS-1", additional_headers=basic("CS-1", PASSWORD + "x")),
                await attempt(f"{base}/CS-1"),
                await attempt(f"{base}/CS-1", additional_headers=basic("CS-9", PASSWORD)),  # other station's name
                await attempt(f"{base}/CS-3", additional_headers=basic("CS-3", PASSWORD)),  # unknown station
            ]

    assert run(scenario()) == ["open", "http 401", "http 401", "http 401", "http 401"]


def test_profiles_2_and_3_tls(tmp_path: Path) -> None:
    pki = init_pki(tmp_path / "pki", ["CS-1", "CS-2"])
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    store.set_password("CS-1", PASSWORD)
    certs = dict(certfile=str(pki / "server.pem"), keyfile=str(pki / "server.key"), cafile=str(pki / "ca.pem"))

    def client_ctx(station: str | None = None, max_tls: ssl.TLSVersion | None = None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
        if station:
            ctx.load_cert_chain(str(pki / "stations" / f"{station}.pem"), str(pki / "stations" / f"{station}.key"))
        if max_tls is not None:
            with warnings.catch_warnings():  # TLS 1.1 is deprecated: that is the point of the test
                warnings.simplefilter("ignore", DeprecationWarning)
                ctx.minimum_version = ssl.TLSVersion.TLSv1
                ctx.maximum_version = max_tls
        return ctx

    async def scenario():  # type: ignore[no-untyped-def]
        out = {}
        csms2 = Csms(store, port=0, security_profile=2, **certs)
        await csms2.start()
        try:
            url = f"wss://localhost:{csms2.port}/CS-1"
            out["p2 ok"] = await attempt(url, ssl=client_ctx(), additional_headers=basic("CS-1", PASSWORD))
            out["p2 bad password"] = await attempt(url, ssl=client_ctx(), additional_headers=basic("CS-1", "x" * 20))
            out["p2 tls 1.1"] = await attempt(
                url, ssl=client_ctx(max_tls=ssl.TLSVersion.TLSv1_1), additional_headers=basic("CS-1", PASSWORD)
            )
        finally:
            await csms2.stop()
        csms3 = Csms(store, port=0, security_profile=3, **certs)
        await csms3.start()
        try:
            base = f"wss://localhost:{csms3.port}"
            out["p3 ok"] = await attempt(f"{base}/CS-1", ssl=client_ctx("CS-1"))
            out["p3 no client cert"] = await attempt(f"{base}/CS-1", ssl=client_ctx())
            out["p3 other station's cert"] = await attempt(f"{base}/CS-1", ssl=client_ctx("CS-2"))
        finally:
            await csms3.stop()
        return out

    out = run(scenario())
    assert out["p2 ok"] == "open" and out["p2 bad password"] == "http 401"
    assert out["p2 tls 1.1"].startswith("tls")
    assert out["p3 ok"] == "open"
    assert out["p3 no client cert"].startswith(("tls", "closed"))
    assert out["p3 other station's cert"] == "closed 1008"


def test_pki_refuses_to_overwrite(tmp_path: Path) -> None:
    init_pki(tmp_path, ["CS-1"])
    with pytest.raises(FileExistsError, match=r"ca\.pem"):
        init_pki(tmp_path, ["CS-1"])


def test_tls_serves_the_rsa_and_the_ecdsa_server_chain(tmp_path: Path) -> None:
    """A station limited to RSA cipher suites (TLS 1.2) gets the RSA-2048 certificate, one limited to ECDSA
    suites the P-256 one: both chains that `csms pki` makes are served."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    pki = tmp_path / "pki"
    init_pki(pki, ["CS-1"])
    store = Store(f"sqlite:///{tmp_path / 'csms.sqlite'}")
    store.set_password("CS-1", PASSWORD)
    certs = {"certfile": str(pki / "server.pem"), "keyfile": str(pki / "server.key"), "cafile": str(pki / "ca.pem")}

    async def peer_key(port: int, ciphers: str):  # type: ignore[no-untyped-def]
        ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers(ciphers)
        _, writer = await asyncio.open_connection("localhost", port, ssl=ctx)
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        writer.close()
        return x509.load_der_x509_certificate(der).public_key()

    async def scenario():  # type: ignore[no-untyped-def]
        async with Csms(store, port=0, security_profile=2, **certs) as csms:
            return (
                await peer_key(csms.port, "ECDHE-RSA-AES128-GCM-SHA256"),
                await peer_key(csms.port, "ECDHE-ECDSA-AES128-GCM-SHA256"),
            )

    rsa_key, ec_key = run(scenario())
    assert isinstance(rsa_key, rsa.RSAPublicKey) and rsa_key.key_size == 2048
    assert isinstance(ec_key, ec.EllipticCurvePublicKey) and ec_key.curve.name == "secp256r1"


@pytest.mark.parametrize("profile", [2, 3])
@pytest.mark.parametrize("missing", ["server-rsa.key", "server-rsa.pem"])
def test_half_an_rsa_chain_is_an_error_naming_the_missing_file(tmp_path: Path, profile: int, missing: str) -> None:
    """The RSA certificate without its key (or the reverse) used to give a context with the ECDSA chain alone,
    without a word; the complete PKI still loads (the reference case)."""
    pki = init_pki(tmp_path / "pki", ["CS-1"])
    files = (str(pki / "server.pem"), str(pki / "server.key"), str(pki / "ca.pem"))
    assert isinstance(server_ssl_context(profile, *files), ssl.SSLContext)
    (pki / missing).unlink()
    with pytest.raises(DataError, match=f"certfile, keyfile \\(RSA\\): .*{missing} does not exist"):
        server_ssl_context(profile, *files)
