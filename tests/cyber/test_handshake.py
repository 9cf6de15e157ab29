"""Tests of the TLS handshake model: hand-computed cases, byte counts against real OpenSSL handshakes, the
public-key work against in-memory handshakes (CPU time), and the whole model against live handshakes over
loopback through the shaping proxy (Python's ssl and openssl s_server), within the issue's 20 %."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.cli_helpers import assert_one_line_error, run_cli
from tests.conftest import require_part
from v2gtwin.cyber.handshake import (
    CPU_PRESETS,
    PROFILES,
    REFERENCE_OP_COSTS_S,
    REFERENCE_OVERHEAD,
    Overhead,
    calc_flights,
    calc_handshake_time,
    calc_tls_summary,
    count_operations,
    handshake_breakdown,
    resolve_profile,
)
from v2gtwin.cyber.handshake_live import openssl_available, run_validation
from v2gtwin.cyber.handshake_measure import Pki, make_pki, measure_in_memory, measure_op_costs_s
from v2gtwin.errors import DataError

TOLERANCE = 0.20  # the tolerance for predicted vs measured
ZERO_COSTS = {c: {"keygen": 0.0, "derive": 0.0, "sign": 0.0, "verify": 0.0} for c in REFERENCE_OP_COSTS_S}
NO_OVERHEAD = Overhead(0.0, 0.0, 0.0, "none")


@pytest.fixture(scope="module")
def pki_cache() -> Iterator[dict[tuple[str, int, int], Pki]]:
    """Throw-away PKIs, one per (curve, server chain, client chain)."""
    with tempfile.TemporaryDirectory(prefix="v2gtwin-test-tls-") as tmp:
        cache: dict[tuple[str, int, int], Pki] = {}

        def get(curve: str, n_s: int, n_c: int) -> Pki:
            key = (curve, n_s, n_c)
            if key not in cache:
                folder = Path(tmp) / f"{curve}-{n_s}-{n_c}"
                folder.mkdir()
                cache[key] = make_pki(folder, curve, n_s, max(n_c, 1))
            return cache[key]

        yield get  # type: ignore[misc]


# --------------------------------------------------------------------------------------------- closed forms
def test_network_terms_hand_computed() -> None:
    # No crypto and no stack cost: TLS 1.2 = 4 one-way trips + every on-path byte / rate.
    # iso15118-2 flights (P-256, 3 certificates 396 + 355 + 355): 146, 1362, 166, 282 bytes = 1956 bytes.
    # RTT 0.1 s, 1000 bytes/s: 4 x 0.05 + 1956 / 1000 = 0.2 + 1.956 = 2.156 s.
    r = calc_handshake_time("iso15118-2", 0.1, 1000.0, op_costs_s=ZERO_COSTS, overhead=NO_OVERHEAD)
    assert r.n_round_trips == 2.0
    assert r.t_rtt_s == pytest.approx(0.2)
    assert r.t_transfer_s == pytest.approx(1.956)
    assert r.t_handshake_s == pytest.approx(2.156)
    # TLS 1.3 mutual: 3 one-way trips to the server's completion, 2 to the client's (it is done after sending
    # its Finished): iso15118-20 on P-521 flights 517, 2128, 1806 bytes; tickets (after completion) excluded.
    # Both done: 3 x 0.05 + (517 + 2128 + 1806) / 1000 = 0.15 + 4.451 = 4.601 s;
    # client done: 2 x 0.05 + (517 + 2128) / 1000 = 0.1 + 2.645 = 2.745 s.
    r = calc_handshake_time("iso15118-20", 0.1, 1000.0, op_costs_s=ZERO_COSTS, overhead=NO_OVERHEAD)
    assert r.n_round_trips == 1.5
    assert r.t_handshake_s == pytest.approx(4.601)
    assert r.t_client_done_s == pytest.approx(2.745)
    assert r.t_tcp_connect_s == pytest.approx(0.1)


def test_crypto_terms_hand_computed() -> None:
    # RTT 0, costs keygen 1, derive 2 (the peer-key check costs a derivation: 2), sign 3, verify 4 [s];
    # ISO 15118-2 (RFC 5246/8422, server-authenticated, server sends 3 certificates):
    #   server: keygen + sign (ServerKeyExchange) + derive + check = 1 + 3 + 2 + 2 = 8
    #   client: 3 chain verifications + the SKE signature = 4 verify = 16, keygen + derive + check = 5 -> 21
    # with an EV 10x slower: 210 + 8 = 218 s.
    costs = {"P-256": {"keygen": 1.0, "derive": 2.0, "sign": 3.0, "verify": 4.0}}
    r = calc_handshake_time("iso15118-2", 0.0, None, 10.0, 1.0, op_costs_s=costs, overhead=NO_OVERHEAD)
    assert r.t_crypto_server_s == pytest.approx(8.0)
    assert r.t_crypto_client_s == pytest.approx(210.0)
    assert r.t_handshake_s == pytest.approx(218.0)
    # Stack costs: base per side + 0.5 per certificate checked (client checks 3): client 1 + 1.5, server 2.
    ov = Overhead(1.0, 2.0, 0.5)
    r = calc_handshake_time("iso15118-2", 0.0, None, op_costs_s=ZERO_COSTS, overhead=ov)
    assert r.t_overhead_client_s == pytest.approx(2.5)
    assert r.t_overhead_server_s == pytest.approx(2.0)
    assert r.t_handshake_s == pytest.approx(4.5)


def test_operation_counts_from_the_rfcs() -> None:
    # TLS 1.3 mutual (RFC 8446 4.4): each side generates a key share, derives (+ checks the peer key), signs a
    # CertificateVerify, verifies the peer's n certificates + its CertificateVerify: n + 1 = 4.
    ops = count_operations(resolve_profile("iso15118-20"))
    expected = {"keygen": 1, "derive": 1, "check": 1, "sign": 1, "verify": 4}
    assert ops == {"client": expected, "server": expected}
    # OCPP security profile 2 (TLS 1.2, server certificate signed by the CA directly): the charger verifies
    # 1 certificate + the ServerKeyExchange = 2 and signs nothing.
    ops = count_operations(resolve_profile("ocpp-sp2"))
    assert ops["client"] == {"keygen": 1, "derive": 1, "check": 1, "sign": 0, "verify": 2}
    assert ops["server"] == {"keygen": 1, "derive": 1, "check": 1, "sign": 1, "verify": 0}


def test_breakdown_roles() -> None:
    # OCPP: the charger is the TLS client; ISO 15118: the EV is. A 100x slower charger slows the client side of
    # OCPP and the server side of ISO 15118 by exactly 100x.
    base = handshake_breakdown("ocpp-sp3", 0.0, None)
    slow = handshake_breakdown("ocpp-sp3", 0.0, None, cpu_factor_charger=100.0)
    assert slow["t_crypto_client_s"] == pytest.approx(100 * base["t_crypto_client_s"])
    assert slow["t_crypto_server_s"] == pytest.approx(base["t_crypto_server_s"])
    base = handshake_breakdown("iso15118-2", 0.0, None)
    slow = handshake_breakdown("iso15118-2", 0.0, None, cpu_factor_charger="cortex-m7")
    assert slow["t_crypto_server_s"] == pytest.approx(CPU_PRESETS["cortex-m7"].factor * base["t_crypto_server_s"])
    assert slow["client_role"] == "EV" and slow["server_role"] == "charger"


# --------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"rtt_s": -0.01}, "rtt_s"),
        ({"rtt_s": float("nan")}, "rtt_s"),
        ({"rate_bytes_per_s": 0.0}, "rate_bytes_per_s"),
        ({"rate_bytes_per_s": -5.0}, "rate_bytes_per_s"),
        ({"cpu_factor_client": 0.0}, "cpu_factor_client"),
        ({"cpu_factor_server": "cortex-m0"}, "cpu_factor_server"),
    ],
)
def test_bad_link_or_cpu(kwargs: dict[str, object], field: str) -> None:
    args: dict[str, object] = {"profile": "iso15118-2", "rtt_s": 0.0, "rate_bytes_per_s": None, **kwargs}
    with pytest.raises(DataError, match=field):
        calc_handshake_time(**args)  # type: ignore[arg-type]


def test_bad_profile_suite_curve_chain() -> None:
    with pytest.raises(DataError, match="profile must be one of"):
        resolve_profile("iso15118-3")
    with pytest.raises(DataError, match="cipher_suite must be one of"):
        resolve_profile("iso15118-2", cipher_suite="TLS_RSA_WITH_RC4_128_MD5")
    with pytest.raises(DataError, match="curve must be one of"):
        resolve_profile("iso15118-2", curve="P-192")
    with pytest.raises(DataError, match=r"n_chain_server must be an integer in \[1, 8\]"):
        resolve_profile("iso15118-2", n_chain_server=0)
    with pytest.raises(DataError, match=r"n_chain_client must be an integer in \[1, 8\]"):
        resolve_profile("iso15118-20", n_chain_client=0)


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--rtt-ms", "-1"], "--rtt-ms"),
        (["--rate-bytes-per-s", "0"], "--rate-bytes-per-s"),
        (["--cipher-suite", "TLS_NULL"], "cipher_suite"),
        (["--profile", "nope"], "profile"),
        (["--cpu-ev", "-3"], "--cpu-ev must be a finite number > 0"),
        (["--cpu-ev", "0"], "--cpu-ev must be a finite number > 0"),
        (["--cpu-csms", "abacus"], "--cpu-csms must be a number > 0 or one of"),
        (["--chain-client", "9"], "--chain-client must be an integer in [1, 8] certificates"),
        (["--chain-client", "0"], "--chain-client must be an integer in [1, 8] certificates"),
        (["--chain-server", "0"], "--chain-server must be an integer in [1, 8] certificates"),
    ],
)
def test_cli_bad_input_one_line_exit_2(capsys: pytest.CaptureFixture[str], args: list[str], field: str) -> None:
    code, _out, err = run_cli(capsys, "cyber", "tls", *args)
    assert_one_line_error(code, err)
    assert field in err


def test_cli_json_is_the_summary(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    code, out, _ = run_cli(capsys, "cyber", "tls", "--rtt-ms", "40", "--rate-bytes-per-s", "5000", "--json")
    assert code == 0
    got = json.loads(out)
    want = calc_tls_summary(0.04, 5000.0)
    assert [p["profile"] for p in got["profiles"]] == list(PROFILES)
    assert got["profiles"][0]["t_handshake_s"] == pytest.approx(want["profiles"][0]["t_handshake_s"])
    code, out, _ = run_cli(capsys, "cyber", "tls", "-p", "iso15118-2")
    assert code == 0 and "iso15118-2" in out and "t_handshake ms" in out


# --------------------------------------------------------------------------------------------- against OpenSSL
@pytest.mark.parametrize(
    ("profile", "curve", "n_s", "n_c"),
    [
        ("iso15118-2", "P-256", 3, 0),
        ("iso15118-2", "P-521", 3, 0),
        ("iso15118-2", "P-256", 1, 0),
        ("iso15118-20", "P-521", 3, 3),
        ("iso15118-20", "P-256", 2, 1),
        ("ocpp-sp3", "P-256", 1, 1),
        ("ocpp-sp2", "P-384", 2, 0),
    ],
)
def test_flight_bytes_against_openssl(pki_cache, profile: str, curve: str, n_s: int, n_c: int) -> None:  # type: ignore[no-untyped-def]
    """Bytes of each on-path flight against a real handshake of Python's ssl (OpenSSL 3.0) in memory, within
    2 % + 4 bytes (ECDSA signatures vary by a byte or two, certificates by a byte)."""
    prof = resolve_profile(profile, curve=curve, n_chain_server=n_s, n_chain_client=n_c or None)
    pki = pki_cache(curve, n_s, n_c)
    meas = measure_in_memory(prof, pki, n=1)["flight_bytes"]
    model = [f.n_bytes for f in calc_flights(pki.sized(prof)) if f.on_path and f.n_bytes > 0]
    assert len(meas) >= len(model)
    for got, want in zip(meas, model, strict=False):
        assert abs(got - want) <= 0.02 * got + 4, (meas, model)


def test_op_costs_against_openssl_speed() -> None:
    """cryptography's P-256 costs against `openssl speed` (an independent tool, the system's OpenSSL): within
    a factor of 2 (two OpenSSL builds, a loaded machine)."""
    import re
    import shutil
    import subprocess

    require_part(shutil.which("openssl") is not None, "the openssl command")
    out = subprocess.run(
        ["openssl", "speed", "-seconds", "1", "ecdsap256"], capture_output=True, text=True, check=True
    ).stdout
    m = re.search(r"256 bits ecdsa \(nistp256\)\s+\S+s\s+\S+s\s+([\d.]+)\s+([\d.]+)", out)
    assert m, out
    sign_s, verify_s = 1.0 / float(m.group(1)), 1.0 / float(m.group(2))
    ours = measure_op_costs_s(("P-256",), n=100)["P-256"]
    assert 0.5 < ours["sign"] / sign_s < 2.0
    assert 0.5 < ours["verify"] / verify_s < 2.0


@pytest.mark.parametrize(
    ("profile", "curve", "n_s", "n_c"),
    [
        ("iso15118-20", "P-256", 3, 3),  # TLS 1.3 mutual: out of the calibration (TLS 1.2 P-256 only)
        ("iso15118-20", "P-521", 3, 3),  # another curve: crypto dominates
        ("iso15118-2", "P-521", 3, 0),
        ("ocpp-sp3", "P-256", 2, 2),  # chain lengths not calibrated
    ],
)
def test_compute_against_in_memory_handshakes(pki_cache, profile: str, curve: str, n_s: int, n_c: int) -> None:  # type: ignore[no-untyped-def]
    """The model's work per handshake (crypto + stack, both sides) against real in-memory handshakes, CPU time
    (no network; other processes cannot inflate it), within 20 %. Costs measured now."""
    costs = measure_op_costs_s((curve, "P-256"), n=50)
    from v2gtwin.cyber.handshake_measure import calibrate_overhead

    overhead = calibrate_overhead(costs, n=20)
    prof = resolve_profile(profile, curve=curve, n_chain_server=n_s, n_chain_client=n_c)
    meas = measure_in_memory(prof, pki_cache(curve, n_s, n_c), n=20)
    r = calc_handshake_time(prof, 0.0, op_costs_s=costs, overhead=overhead)
    model = r.t_crypto_client_s + r.t_overhead_client_s + r.t_crypto_server_s + r.t_overhead_server_s
    measured = meas["t_client_s"] + meas["t_server_s"]
    assert abs(model / measured - 1.0) <= TOLERANCE, (model, measured)


# --------------------------------------------------------------------------------------------- live
LIVE_LINKS = ((0.2, None), (0.05, 4000.0))


@pytest.mark.parametrize("profile", ["iso15118-2", "iso15118-20", "ocpp-sp3"])
def test_live_handshakes_python_ssl(profile: str) -> None:
    """Real handshakes (Python's ssl client and server) over loopback through the shaping proxy at an RTT of 0.2 s and
    at 0.05 s with 4,000 bytes/s: median of 5 against the model (reference costs) within 20 %.

    The round-trip time is 200 ms (or the transfer takes >= 0.4 s) because on a loaded 2-core machine
    every wake-up of a side or of the proxy can wait a scheduler slice (observed: +10-20 ms per handshake at
    load 8-10); zero-delay handshakes are compared in CPU time above."""
    rows = run_validation((profile,), LIVE_LINKS, peers=("python",), n=5)
    bad = [
        (r["rtt_s"], r["rate_bytes_per_s"], r["predicted_s"], r["measured_s"])
        for r in rows
        if abs(r["error"]) > TOLERANCE
    ]
    assert not bad, bad


@pytest.mark.parametrize("profile", ["iso15118-2", "ocpp-sp3"])
def test_live_handshakes_openssl_s_server(profile: str) -> None:
    """Python's ssl client against `openssl s_server` (another program, the system's OpenSSL) through the proxy:
    the client's completion time, median of 5, within 20 % of the model."""
    require_part(openssl_available(), "the openssl command")
    rows = run_validation((profile,), ((0.2, None), (0.05, 4000.0)), peers=("openssl",), n=5)
    bad = [
        (r["rtt_s"], r["rate_bytes_per_s"], r["predicted_s"], r["measured_s"])
        for r in rows
        if abs(r["error"]) > TOLERANCE
    ]
    assert not bad, bad


@pytest.mark.parametrize("profile", ["iso15118-2", "ocpp-sp3"])
def test_live_handshakes_openssl_s_time(profile: str) -> None:
    """OpenSSL's own client (`openssl s_time -new`) against the Python server through the proxy: the median
    cycle per connection (connect, handshake until the client is done, close; from the server's accept times)
    within 20 % of the model's client completion time."""
    require_part(openssl_available(), "the openssl command")
    rows = run_validation((profile,), ((0.2, None), (0.05, 4000.0)), peers=("s_time",), n=5)
    bad = [
        (r["rtt_s"], r["rate_bytes_per_s"], r["predicted_s"], r["measured_s"])
        for r in rows
        if abs(r["error"]) > TOLERANCE
    ]
    assert not bad, bad


def test_reference_overhead_is_what_the_calibration_gives() -> None:
    """The shipped stack costs are of the size the calibration finds here (the same machine class): within a
    factor of 3 each (they are wall-clock figures of a shared machine)."""
    from v2gtwin.cyber.handshake_measure import calibrate_overhead

    ov = calibrate_overhead(measure_op_costs_s(("P-256",), n=50), n=20)
    for name in ("base_client_s", "base_server_s", "cert_check_s"):
        ref, now = getattr(REFERENCE_OVERHEAD, name), getattr(ov, name)
        assert ref / 3 < now < 3 * ref, (name, ref, now)


def test_reference_op_costs_are_what_the_machine_measures() -> None:
    """Every shipped operation cost (REFERENCE_OP_COSTS_S, all curves) is within a factor of 3 of the cost
    measured now with ``cryptography`` (wall-clock figures of a shared machine), and the P-256 ones within a
    factor of 2 of the figures the issue quotes for this machine class: key agreement about 54 us, ECDSA sign
    about 30 us, verify about 74 us."""
    now = measure_op_costs_s(n=50)
    bad = [
        (curve, op, ref, now[curve][op])
        for curve, ops in REFERENCE_OP_COSTS_S.items()
        for op, ref in ops.items()
        if not ref / 3 < now[curve][op] < 3 * ref
    ]
    assert not bad, bad
    quoted_s = {"derive": 54e-6, "sign": 30e-6, "verify": 74e-6}
    for op, q in quoted_s.items():
        assert q / 2 < REFERENCE_OP_COSTS_S["P-256"][op] < 2 * q, (op, REFERENCE_OP_COSTS_S["P-256"][op], q)


def test_profile_changes_keep_registry() -> None:
    prof = resolve_profile(replace(PROFILES["iso15118-2"], mutual=True, n_chain_client=2))
    assert prof.mutual and prof.n_chain_client == 2
    assert not PROFILES["iso15118-2"].mutual


def test_cli_measure_wiring(capsys: pytest.CaptureFixture[str]) -> None:
    """`cyber tls --measure --json`: the breakdown with costs measured now and one validation row per peer
    (wiring only; the numbers are checked above)."""
    import json

    code, out, _ = run_cli(capsys, "cyber", "tls", "--measure", "-p", "ocpp-sp2", "--n", "1", "--json")
    assert code == 0
    got = json.loads(out)
    assert got["profiles"][0]["op_costs_source"] == "measured now"
    peers = {r["peer"] for r in got["validation"]}
    assert peers == ({"python", "openssl", "s_time"} if openssl_available() else {"python"})
    for r in got["validation"]:
        assert r["profile"] == "ocpp-sp2" and r["measured_s"] > 0 and r["predicted_s"] > 0
