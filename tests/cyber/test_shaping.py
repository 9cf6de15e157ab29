"""Tests of the shaping proxy: delay, rate, emulated loss and jitter against closed forms, with raw sockets."""

from __future__ import annotations

import asyncio
import math
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from v2gtwin.cyber.shaping import ShapingProxy, calc_transfer_time_s, main
from v2gtwin.errors import DataError

LOCAL = ("127.0.0.1", 0)


@pytest.fixture
def echo_port() -> Iterator[int]:
    """A raw-socket TCP echo server on loopback (one thread per connection)."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    stop = threading.Event()

    def serve_one(conn: socket.socket) -> None:
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                conn.sendall(data)

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=serve_one, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield port
    stop.set()
    thread.join()
    server.close()


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _recv_exactly(sock: socket.socket, n_bytes: int) -> bytes:
    parts = []
    got = 0
    while got < n_bytes:
        data = sock.recv(min(65536, n_bytes - got))
        assert data, "connection closed early"
        parts.append(data)
        got += len(data)
    return b"".join(parts)


def _round_trips_s(port: int, n: int, size: int = 64) -> np.ndarray:
    """Round-trip times of ``n`` request/response exchanges of ``size`` bytes on one connection [s]."""
    out = np.empty(n)
    with _connect(port) as sock:
        for i in range(n):
            msg = bytes([i % 256]) * size
            t0 = time.perf_counter()
            sock.sendall(msg)
            assert _recv_exactly(sock, size) == msg
            out[i] = time.perf_counter() - t0
    return out


def test_round_trip_is_at_least_twice_the_one_way_delay(echo_port: int) -> None:
    # Closed form: RTT = 2 x delay + loopback/processing (well under 0.1 s here). 2 x 0.1 s = 0.2 s.
    with ShapingProxy(LOCAL, ("127.0.0.1", echo_port), delay_s=0.1) as proxy:
        rtt_s = _round_trips_s(proxy.port, 5)
    assert rtt_s.min() >= 0.2
    assert rtt_s.max() < 0.2 + 0.15  # a delay applied twice per direction would give >= 0.4 s


def test_no_shaping_is_fast(echo_port: int) -> None:
    # The reference for the test above: the proxy alone adds far less than the delays it is asked for.
    with ShapingProxy(LOCAL, ("127.0.0.1", echo_port)) as proxy:
        rtt_s = _round_trips_s(proxy.port, 5)
    assert np.median(rtt_s) < 0.05


@pytest.mark.parametrize("max_queue_segments", [4096, 4])
def test_transfer_time_follows_the_rate(echo_port: int, max_queue_segments: int) -> None:
    # N bytes at r bytes/s take N / r: 200,000 / 1,000,000 = 0.2 s to go up; the echo comes back pipelined
    # through the same-rate return direction, so the last byte returns after 0.2 s plus one segment's
    # serialisation (1460 / 1e6 = 1.5 ms) plus loopback time. The same with a queue of 4 segments (the proxy
    # then stops reading and TCP's flow control holds the sender back).
    n_bytes, rate_bytes_per_s = 200_000, 1_000_000.0
    payload = os.urandom(n_bytes)
    expected_s = calc_transfer_time_s(n_bytes, rate_bytes_per_s)
    assert expected_s == pytest.approx(0.2)
    with (
        ShapingProxy(
            LOCAL, ("127.0.0.1", echo_port), rate_bytes_per_s=rate_bytes_per_s, max_queue_segments=max_queue_segments
        ) as proxy,
        _connect(proxy.port) as sock,
    ):
        received: list[bytes] = []
        reader = threading.Thread(target=lambda: received.append(_recv_exactly(sock, n_bytes)))
        t0 = time.perf_counter()
        reader.start()
        sock.sendall(payload)
        reader.join()
        elapsed_s = time.perf_counter() - t0
    assert received[0] == payload
    assert elapsed_s >= 0.98 * expected_s
    assert elapsed_s < 1.5 * expected_s  # a rate applied per read, or twice, would be far slower or faster


async def _async_round_trip_s(port: int) -> float:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    t0 = time.perf_counter()
    writer.write(b"ping")
    await writer.drain()
    assert await reader.readexactly(4) == b"ping"
    elapsed_s = time.perf_counter() - t0
    writer.close()
    await writer.wait_closed()
    return elapsed_s


def test_async_context_manager(echo_port: int) -> None:
    # 2 x 0.05 s one-way = 0.1 s round trip at least.
    async def scenario() -> float:
        async with ShapingProxy(LOCAL, ("127.0.0.1", echo_port), delay_s=0.05) as proxy:
            return await _async_round_trip_s(proxy.port)

    assert asyncio.run(scenario()) >= 0.1


def test_emulated_loss_rate_matches_the_binomial(echo_port: int) -> None:
    # A round trip has two one-segment transmissions; it is delayed by at least one RTO when either is
    # "lost": P = 1 - (1 - p)^2 = 1 - 0.8^2 = 0.36 for p = 0.2. Without a loss a loopback round trip takes
    # about 1 ms, far below the RTO of 80 ms, so the share of round trips >= RTO estimates P. Binomial
    # standard error with n = 60: sqrt(0.36 x 0.64 / 60) = 0.062; tolerance 0.2 (over 3 sigma).
    p, rto_s, n = 0.2, 0.08, 60
    with ShapingProxy(LOCAL, ("127.0.0.1", echo_port), loss=p, rto_s=rto_s, seed=7) as proxy:
        rtt_s = _round_trips_s(proxy.port, n)
        n_losses = proxy.stats.n_losses
    share_delayed = float(np.mean(rtt_s >= rto_s))
    assert share_delayed == pytest.approx(1 - (1 - p) ** 2, abs=0.2)
    assert n_losses >= int(np.sum(rtt_s >= rto_s))  # every delayed round trip is counted as a loss


def test_jitter_mean_matches_the_exponential(echo_port: int) -> None:
    # One segment each way: extra delay = J_up + J_down, each exponential with mean j = 20 ms, so the mean
    # extra is 2 j = 40 ms with standard deviation sqrt(2) j = 28 ms per round trip; over n = 40 round trips
    # the standard error is 28 / sqrt(40) = 4.5 ms. Tolerance: 4 sigma = 18 ms, plus up to 10 ms of loopback.
    j_s, n = 0.02, 40
    with ShapingProxy(LOCAL, ("127.0.0.1", echo_port), jitter_s=j_s, seed=3) as proxy:
        rtt_s = _round_trips_s(proxy.port, n)
    assert float(np.mean(rtt_s)) == pytest.approx(2 * j_s + 0.005, abs=0.018 + 0.005)


def test_stream_survives_loss_and_jitter_intact(echo_port: int) -> None:
    # TCP delivers bytes in order: emulated loss and jitter may delay segments but never reorder or drop them.
    payload = os.urandom(100_000)
    with (
        ShapingProxy(LOCAL, ("127.0.0.1", echo_port), jitter_s=0.001, loss=0.05, rto_s=0.01, seed=1) as proxy,
        _connect(proxy.port) as sock,
    ):
        received: list[bytes] = []
        reader = threading.Thread(target=lambda: received.append(_recv_exactly(sock, len(payload))))
        reader.start()
        sock.sendall(payload)
        reader.join()
    assert received[0] == payload


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"delay_s": -0.01}, "delay_s"),
        ({"jitter_s": math.nan}, "jitter_s"),
        ({"loss": 1.0}, "loss"),
        ({"loss": -0.1}, "loss"),
        ({"rate_bytes_per_s": 0.0}, "rate_bytes_per_s"),
        ({"rto_s": 0.0}, "rto_s"),
        ({"mss_bytes": 0}, "mss_bytes"),
        ({"max_queue_segments": 0}, "max_queue_segments"),
    ],
)
def test_bad_parameters_are_named(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(DataError, match=field):
        ShapingProxy(LOCAL, ("127.0.0.1", 1), **kwargs)  # type: ignore[arg-type]


def test_cli_bad_input_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--listen", "127.0.0.1:0", "--to", "127.0.0.1:1", "--loss", "1.5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "loss" in err and "[0, 1)" in err
    assert main(["--listen", "127.0.0.1", "--to", "127.0.0.1:1"]) == 2
    assert "--listen" in capsys.readouterr().err
    # The option's own name and unit, not the model's argument (rto_s ... s).
    assert main(["--listen", "127.0.0.1:0", "--to", "127.0.0.1:1", "--rto-ms", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--rto-ms must be a finite number > 0 ms" in err


def test_cli_runs_a_proxy(echo_port: int) -> None:
    # The module run as a program: it prints where it listens, then forwards with the delay (>= 2 x 50 ms).
    cmd = [sys.executable, "-m", "v2gtwin.cyber.shaping", "--listen", "127.0.0.1:0"]
    cmd += ["--to", f"127.0.0.1:{echo_port}", "--delay-ms", "50"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        port = int(line.split()[1].rsplit(":", 1)[1])
        rtt_s = _round_trips_s(port, 3)
        assert rtt_s.min() >= 0.1
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_emulated_losses_per_segment_match_the_geometric_law(echo_port: int) -> None:
    # Each forwarded segment is lost M times before it gets through, P(M = m) = (1 - p) p^m: E[M] = p / (1 - p)
    # = 0.25 for p = 0.2, Var[M] = p / (1 - p)^2 = 0.3125. Over the proxy's n_segments (about 2 x 400) the mean
    # has standard error sqrt(0.3125 / 800) = 0.020; tolerance 4 sigma = 0.08 (half the loss rate, 0.111, is
    # 7 sigma away). A short RTO keeps the run short; the count does not depend on it.
    p, n = 0.2, 400
    with ShapingProxy(LOCAL, ("127.0.0.1", echo_port), loss=p, rto_s=0.002, seed=11) as proxy:
        _round_trips_s(proxy.port, n)
        stats = proxy.stats
    assert stats.n_segments >= n
    se = math.sqrt(p / (1 - p) ** 2 / stats.n_segments)
    assert stats.n_losses / stats.n_segments == pytest.approx(p / (1 - p), abs=4 * se)
