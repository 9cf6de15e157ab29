"""Tests of the network-namespace helper: a real TCP exchange across the veth pair (IPv4 and IPv6 link-local),
and the shaping proxy's delay across it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.conftest import require_part
from v2gtwin.cyber import netns

ECHO_SERVER = """
import socket, sys
srv = socket.create_server(("::", int(sys.argv[1])), family=socket.AF_INET6, dualstack_ipv6=True)
print("ready", flush=True)
for _ in range(int(sys.argv[2])):
    conn, _ = srv.accept()
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data)
"""

ECHO_CLIENT = """
import socket, sys, time
host, port = sys.argv[1], int(sys.argv[2])
info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
with socket.socket(info[0], socket.SOCK_STREAM) as s:
    s.connect(info[4])
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    best = 1e9
    for _ in range(3):
        t0 = time.perf_counter()
        s.sendall(b"hello")
        assert s.recv(5) == b"hello"
        best = min(best, time.perf_counter() - t0)
print(best)
"""


@pytest.fixture
def pair() -> Iterator[netns.VethPair]:
    require_part(netns.check_netns() is None, f"network namespaces: {netns.check_netns()}")
    with netns.veth_namespaces() as p:
        yield p


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}


def _start_echo(pair: netns.VethPair, port: int, n_conn: int) -> subprocess.Popen[str]:
    proc = netns.popen_in_netns(
        pair.ns_a, [sys.executable, "-c", ECHO_SERVER, str(port), str(n_conn)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def _client_rtt_s(pair: netns.VethPair, host: str, port: int) -> float:
    out = netns.run_in_netns(
        pair.ns_b, [sys.executable, "-c", ECHO_CLIENT, host, str(port)], capture_output=True, text=True, check=True
    )
    return float(out.stdout)


def test_tcp_across_the_pair_ipv4_and_ipv6_link_local(pair: netns.VethPair) -> None:
    # Independent check: the kernel carries a real TCP exchange from ns_b to ns_a over both address families.
    assert pair.ipv6_ll_a.startswith("fe80::") and pair.ipv6_ll_b.startswith("fe80::")
    server = _start_echo(pair, 15118, 2)
    try:
        assert _client_rtt_s(pair, pair.ipv4_a, 15118) < 1.0
        assert _client_rtt_s(pair, f"{pair.ipv6_ll_a}%{pair.if_b}", 15118) < 1.0
    finally:
        server.wait(timeout=30)
    assert pair.ns_a in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


def test_shaping_proxy_across_the_pair(pair: netns.VethPair) -> None:
    # The proxy runs in ns_b and forwards to ns_a over the veth's IPv6 link-local address, adding 40 ms each
    # way: the best of three round trips is at least 2 x 40 ms = 80 ms.
    server = _start_echo(pair, 15119, 1)
    target = f"{pair.ipv6_ll_a}%{pair.if_b}:15119"
    proxy = netns.popen_in_netns(
        pair.ns_b,
        [sys.executable, "-m", "v2gtwin.cyber.shaping", "--listen", "127.0.0.1:0", "--to", target, "--delay-ms", "40"],
        stdout=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        assert proxy.stdout is not None
        port = int(proxy.stdout.readline().split()[1].rsplit(":", 1)[1])
        assert _client_rtt_s(pair, "127.0.0.1", port) >= 0.08
    finally:
        proxy.terminate()
        proxy.wait(timeout=30)
        server.wait(timeout=30)


def test_pair_is_removed() -> None:
    require_part(netns.check_netns() is None, f"network namespaces: {netns.check_netns()}")
    with netns.veth_namespaces() as p:
        names = (p.ns_a, p.ns_b)
    time.sleep(0.05)
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not any(n in listed.split() for n in names)


def test_unavailable_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netns.shutil, "which", lambda _name: None)
    with pytest.raises(netns.NetnsUnavailableError, match="`ip`"):
        netns.create_veth_pair()


def test_thread_in_a_namespace(pair: netns.VethPair) -> None:
    # An address of ns_a can be bound only inside ns_a (the kernel refuses it elsewhere: EADDRNOTAVAIL), and
    # only the helper's own thread moves: the caller's namespace is the same before and after.
    import socket

    before = os.readlink("/proc/thread-self/ns/net")

    def bind() -> str:
        with socket.socket() as s:
            s.bind((pair.ipv4_a, 0))
        return os.readlink("/proc/thread-self/ns/net")

    inside = netns.run_in_netns_thread(pair.ns_a, bind)
    assert inside != before
    assert os.readlink("/proc/thread-self/ns/net") == before
    with pytest.raises(OSError), socket.socket() as s:
        s.bind((pair.ipv4_a, 0))
