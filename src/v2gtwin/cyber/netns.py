"""Two Linux network namespaces joined by a veth pair, for measurements over a real (virtual) link.

Each namespace gets one end of the pair, an IPv4 address and the IPv6 link-local address the kernel gives an
interface that comes up (ISO 15118's SDP and the EVCC/SECC need one); the loopback interface of each namespace
is brought up too. Commands run inside a namespace with ``ip netns exec``. Needs root and iproute2's ``ip``;
:func:`check_netns` says why not when either is missing, and creating a pair then raises
:class:`NetnsUnavailableError` with that reason.

Duplicate address detection is switched off on both ends (``accept_dad=0``) before they come up, so the
link-local addresses are usable at once: on a point-to-point veth with a fresh random MAC address a
duplicate cannot occur. The kernel here has no ``netem`` queueing discipline, so delay and loss on the link
come from :class:`v2gtwin.cyber.shaping.ShapingProxy`, not from ``tc``.

Example::

    with veth_namespaces() as pair:
        server = popen_in_netns(pair.ns_a, ["python", "-m", "http.server", "8000", "--bind", "::"])
        run_in_netns(pair.ns_b, ["curl", f"http://[{pair.ipv6_ll_a}%{pair.if_b}]:8000/"])
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from v2gtwin.errors import V2GTwinError

__all__ = [
    "NetnsUnavailableError",
    "VethPair",
    "check_netns",
    "create_veth_pair",
    "destroy_veth_pair",
    "enter_netns",
    "popen_in_netns",
    "run_in_netns",
    "run_in_netns_thread",
    "veth_namespaces",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")
_COUNTER = itertools.count()
_LL_RE = re.compile(r"inet6 (fe80::[0-9a-f:]+)/64 scope link(?P<flags>[^\n]*)")


class NetnsUnavailableError(V2GTwinError, RuntimeError):
    """Network namespaces cannot be used here (not root, no ``ip``, or the kernel refused); says which."""


@dataclass(frozen=True)
class VethPair:
    """Two namespaces joined by a veth pair.

    Attributes
    ----------
    ns_a, ns_b : str
        Namespace names.
    if_a, if_b : str
        The veth ends, in ``ns_a`` and ``ns_b``.
    ipv4_a, ipv4_b : str
        IPv4 addresses of the ends (without prefix length).
    ipv6_ll_a, ipv6_ll_b : str
        IPv6 link-local addresses of the ends (without the zone: add ``%`` and the *local* end's interface).
    """

    ns_a: str
    ns_b: str
    if_a: str
    if_b: str
    ipv4_a: str
    ipv4_b: str
    ipv6_ll_a: str
    ipv6_ll_b: str


def check_netns() -> str | None:
    """Why two namespaces with a veth pair cannot be created here, or None when they can (root and ``ip``)."""
    if shutil.which("ip") is None:
        return "iproute2's `ip` command is not on PATH"
    if os.name != "posix" or os.geteuid() != 0:
        return "network namespaces need root (run as root, or in a container with CAP_NET_ADMIN)"
    return None


def _ip(args: Sequence[str], ns: str | None = None) -> str:
    cmd = ["ip", *(["-n", ns] if ns else []), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise NetnsUnavailableError(f"`{' '.join(cmd)}` failed: {proc.stderr.strip() or proc.returncode}")
    return proc.stdout


def _link_local(ns: str, dev: str, timeout_s: float) -> str:
    """The IPv6 link-local address of ``dev`` in ``ns`` once it is no longer tentative."""
    deadline = time.monotonic() + timeout_s
    while True:
        out = _ip(["-6", "addr", "show", "dev", dev, "scope", "link"], ns)
        match = _LL_RE.search(out)
        if match and "tentative" not in match.group("flags"):
            return match.group(1)
        if time.monotonic() > deadline:
            raise NetnsUnavailableError(f"{dev} in {ns}: no usable IPv6 link-local address after {timeout_s} s")
        time.sleep(0.02)


def create_veth_pair(
    prefix: str = "v2gtw", ipv4_a: str = "10.231.0.1", ipv4_b: str = "10.231.0.2", timeout_s: float = 5.0
) -> VethPair:
    """Create namespaces ``<prefix><pid>_<k>a`` and ``...b`` joined by a veth pair, both ends up.

    Parameters
    ----------
    prefix : str
        Start of the namespace and interface names (the process id and a counter make them unique).
    ipv4_a, ipv4_b : str
        IPv4 addresses of the two ends (a /24 between them).
    timeout_s : float
        How long to wait for the link-local addresses [s].

    Raises
    ------
    NetnsUnavailableError
        Not root, no ``ip``, or a step failed (what was created is removed again).
    """
    reason = check_netns()
    if reason:
        raise NetnsUnavailableError(reason)
    tag = f"{os.getpid() % 100000}{next(_COUNTER)}"
    ns_a, ns_b = f"{prefix}{tag}a", f"{prefix}{tag}b"
    if_a, if_b = f"ve{tag}a"[:15], f"ve{tag}b"[:15]
    created: list[str] = []
    try:
        for ns in (ns_a, ns_b):
            _ip(["netns", "add", ns])
            created.append(ns)
        _ip(["link", "add", if_a, "netns", ns_a, "type", "veth", "peer", "name", if_b, "netns", ns_b])
        for ns, dev, addr in ((ns_a, if_a, ipv4_a), (ns_b, if_b, ipv4_b)):
            subprocess.run(
                ["ip", "netns", "exec", ns, "sysctl", "-q", "-w", f"net.ipv6.conf.{dev}.accept_dad=0"],
                capture_output=True,
                check=False,
            )
            _ip(["link", "set", "lo", "up"], ns)
            _ip(["addr", "add", f"{addr}/24", "dev", dev], ns)
            _ip(["link", "set", dev, "up"], ns)
        pair = VethPair(
            ns_a,
            ns_b,
            if_a,
            if_b,
            ipv4_a,
            ipv4_b,
            _link_local(ns_a, if_a, timeout_s),
            _link_local(ns_b, if_b, timeout_s),
        )
    except BaseException:
        for ns in created:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        raise
    logger.debug("created %s", pair)
    return pair


def destroy_veth_pair(pair: VethPair) -> None:
    """Delete both namespaces (the veth pair goes with them)."""
    for ns in (pair.ns_a, pair.ns_b):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


@contextmanager
def veth_namespaces(prefix: str = "v2gtw", **kwargs: Any) -> Iterator[VethPair]:
    """``with veth_namespaces() as pair:`` creates a pair (see :func:`create_veth_pair`), deletes it after."""
    pair = create_veth_pair(prefix, **kwargs)
    try:
        yield pair
    finally:
        destroy_veth_pair(pair)


_CLONE_NEWNET = 0x40000000  # from <sched.h>


def enter_netns(ns: str) -> None:
    """Move the *calling thread* into namespace ``ns`` (setns(2) on ``/var/run/netns/<ns>``).

    Only the calling thread moves (its later sockets live in ``ns``); use it at the start of a thread of
    its own (:func:`run_in_netns_thread`), never on the main thread.
    """
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/var/run/netns/{ns}", os.O_RDONLY)
    try:
        if libc.setns(fd, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise NetnsUnavailableError(f"setns into {ns}: {os.strerror(err)}")
    finally:
        os.close(fd)


def run_in_netns_thread(ns: str, fn: Callable[[], T]) -> T:
    """Run ``fn()`` on a fresh thread inside namespace ``ns`` and return its result (or raise its error)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            enter_netns(ns)
            box["value"] = fn()
        except BaseException as err:  # handed back to the caller's thread
            box["error"] = err

    thread = threading.Thread(target=target, name=f"netns-{ns}", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return cast(T, box["value"])


def run_in_netns(ns: str, argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """Run ``argv`` inside namespace ``ns`` to completion (``subprocess.run`` keyword arguments pass through)."""
    return subprocess.run(["ip", "netns", "exec", ns, *argv], **kwargs)


def popen_in_netns(ns: str, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """Start ``argv`` inside namespace ``ns`` and return the process (``subprocess.Popen`` keyword arguments)."""
    return subprocess.Popen(["ip", "netns", "exec", ns, *argv], **kwargs)
