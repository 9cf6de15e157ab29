"""A user-space shaping TCP proxy: one-way delay, jitter, emulated loss and a bandwidth limit.

This kernel has no ``netem`` queueing discipline, so added delay, loss and bandwidth limits are emulated by a
proxy between a client and a server: the client connects to the proxy, the proxy connects to the target,
and every byte crossing it in either direction is held back according to the link model below. Usable from
asyncio (``async with ShapingProxy(...) as proxy``), from synchronous code (``with ShapingProxy(...) as
proxy`` runs it on a thread of its own) and from the shell::

    python -m v2gtwin.cyber.shaping --listen 127.0.0.1:9001 --to 127.0.0.1:9000 --delay-ms 50 --loss 0.01

Link model (each direction independently)
-----------------------------------------
Data read from one side is cut into segments of at most ``mss_bytes``. Segment ``k`` of ``n_k`` bytes,
read at ``t_k``, leaves the proxy at

.. math::

    t^{tx}_k = \\max(t_k, t^{tx}_{k-1}) + n_k / r                       \\quad\\text{(serialisation)}

    t^{out}_k = \\max\\big(t^{tx}_k + d + J_k + m_k\\,\\mathrm{RTO}_k,\\; t^{out}_{k-1}\\big)

with ``r`` the rate [bytes/s] (no limit when ``rate_bytes_per_s`` is None), ``d`` the one-way delay, ``J_k`` an
exponentially distributed jitter of mean ``jitter_s`` and ``m_k`` the number of emulated losses of the
segment. The last ``max`` keeps the byte stream in order, as TCP delivers it: jitter delays the segments
behind a late one (head-of-line blocking), it never reorders them.

Loss is *emulated*, not performed: the proxy terminates TCP on both sides, so dropping bytes would corrupt
the stream. Instead, a segment is "lost" with probability ``loss`` per transmission and then held for one
retransmission time-out (RTO) before it is sent again; a retransmission is lost again with the same
probability, and the RTO doubles after each loss (exponential back-off, RFC 6298 §5.5). So ``m_k`` is
geometric, :math:`P(m_k = m) = (1 - p) p^m`, and the extra delay of ``m`` losses is
:math:`\\mathrm{RTO}\\,(2^m - 1)`. The initial RTO defaults to ``2 d + 0.2 s``: with a steady RTT, Linux's
RTO is about the smoothed RTT plus its minimum of 200 ms (``TCP_RTO_MIN``). What this leaves out: fast
retransmit after three duplicate ACKs and the tail-loss probe (RFC 8985) recover bulk transfers sooner than
an RTO; the congestion window's reaction to loss (a slower transfer after a loss) is not modelled. For the
short request/response messages of OCPP, a lost segment usually has no later segment to trigger duplicate
ACKs, so the RTO is the right order of magnitude, and it is what the proxy applies. The proxy's own
loopback hops (client→proxy, proxy→target) add their own small latency, which a measurement includes.

References
----------
.. [1] V. Paxson, M. Allman, J. Chu, M. Sargent, "Computing TCP's Retransmission Timer", RFC 6298, 2011
   (§2 the RTO from SRTT and RTTVAR, §5.5 back-off by doubling).
.. [2] Linux kernel, include/net/tcp.h: ``TCP_RTO_MIN`` = HZ/5 (200 ms).
.. [3] Y. Cheng, N. Cardwell, N. Dukkipati, P. Jha, "The RACK-TLP Loss Detection Algorithm for TCP",
   RFC 8985, 2021 (the tail-loss probe the emulation leaves out).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import sys
import threading
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import numpy as np

from v2gtwin.errors import DataError, V2GTwinError

__all__ = ["LinkStats", "ShapingProxy", "calc_transfer_time_s", "main"]

logger = logging.getLogger(__name__)

LINUX_RTO_MIN_S = 0.2
"""Linux's minimum retransmission time-out ``TCP_RTO_MIN`` (HZ/5) [s]."""

_READ_BYTES = 65536


def _check_nonneg(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0.0:
        raise DataError(f"{name} must be a finite number >= 0 (got {value})")
    return value


def _check_positive(name: str, value_ms: float) -> float:
    """A command-line time that must be > 0, named by its option and unit [ms]."""
    value_ms = float(value_ms)
    if not math.isfinite(value_ms) or value_ms <= 0.0:
        raise DataError(f"{name} must be a finite number > 0 ms (got {value_ms:g})")
    return value_ms


def calc_transfer_time_s(n_bytes: float, rate_bytes_per_s: float | None, delay_s: float = 0.0) -> float:
    """Time for ``n_bytes`` sent at once to cross one direction of the shaped link, without jitter or loss.

    Parameters
    ----------
    n_bytes : float
        Bytes sent in one burst [bytes].
    rate_bytes_per_s : float or None
        Rate limit [bytes/s]; None for no limit.
    delay_s : float
        One-way delay [s].

    Returns
    -------
    float
        ``delay_s + n_bytes / rate_bytes_per_s`` [s] (``delay_s`` without a rate limit).
    """
    serial_s = 0.0 if rate_bytes_per_s is None else float(n_bytes) / float(rate_bytes_per_s)
    return float(delay_s) + serial_s


@dataclass
class LinkStats:
    """Counters of one proxy, summed over its connections and both directions.

    Attributes
    ----------
    n_connections : int
        Connections accepted [-].
    n_bytes : int
        Bytes forwarded [bytes].
    n_segments : int
        Segments forwarded (each at most ``mss_bytes``) [-].
    n_losses : int
        Emulated losses, i.e. transmissions held for an RTO [-].
    loss_delay_s : float
        Total time added by emulated losses [s].
    """

    n_connections: int = 0
    n_bytes: int = 0
    n_segments: int = 0
    n_losses: int = 0
    loss_delay_s: float = 0.0

    def to_dict(self) -> dict[str, float]:
        """The counters as a JSON-ready dict."""
        return {
            "n_connections": self.n_connections,
            "n_bytes": self.n_bytes,
            "n_segments": self.n_segments,
            "n_losses": self.n_losses,
            "loss_delay_s": self.loss_delay_s,
        }


@dataclass
class _Direction:
    """Timing state of one direction of one connection (monotonic clock)."""

    tx_free_t: float = 0.0
    last_out_t: float = 0.0
    queue: asyncio.Queue[tuple[float, bytes] | None] = field(default_factory=asyncio.Queue)

    @classmethod
    def bounded(cls, max_segments: int) -> _Direction:
        """A direction whose queue holds at most ``max_segments`` segments (then reading pauses)."""
        return cls(queue=asyncio.Queue(maxsize=max_segments))


class ShapingProxy:
    """A TCP proxy adding one-way delay, jitter, emulated loss and a rate limit in both directions.

    Parameters
    ----------
    listen : tuple of (str, int)
        Address to listen on; port 0 picks a free port (read it from ``proxy.port``).
    target : tuple of (str, int)
        Address every accepted connection is forwarded to.
    delay_s : float
        One-way delay added in each direction [s], >= 0.
    jitter_s : float
        Mean of an exponentially distributed extra delay per segment [s], >= 0 (in order: no reordering).
    loss : float
        Probability that a transmission of a segment is lost, in [0, 1); emulated as a hold of one RTO
        (doubling on each repeated loss), see the module notes.
    rate_bytes_per_s : float or None
        Rate limit of each direction [bytes/s], > 0; None for no limit.
    rto_s : float or None
        Initial retransmission time-out of the loss emulation [s], > 0; default ``2 * delay_s + 0.2``.
    mss_bytes : int
        Largest segment [bytes], >= 1 (the unit of loss and jitter).
    max_queue_segments : int
        Segments held per direction at most, >= 1; when full the proxy stops reading that side, so the
        sender's own TCP flow control holds it back (about 6 MB at the default 4096 x 1460 bytes).
    seed : int
        Seed of the jitter and loss draws.

    Examples
    --------
    >>> async def demo():  # doctest: +SKIP
    ...     async with ShapingProxy(("127.0.0.1", 0), ("127.0.0.1", 9000), delay_s=0.05) as proxy:
    ...         reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    """

    def __init__(
        self,
        listen: tuple[str, int],
        target: tuple[str, int],
        *,
        delay_s: float = 0.0,
        jitter_s: float = 0.0,
        loss: float = 0.0,
        rate_bytes_per_s: float | None = None,
        rto_s: float | None = None,
        mss_bytes: int = 1460,
        max_queue_segments: int = 4096,
        seed: int = 0,
    ) -> None:
        self.listen = (str(listen[0]), int(listen[1]))
        self.target = (str(target[0]), int(target[1]))
        self.delay_s = _check_nonneg("delay_s", delay_s)
        self.jitter_s = _check_nonneg("jitter_s", jitter_s)
        loss = float(loss)
        if not (0.0 <= loss < 1.0):
            raise DataError(f"loss must be a probability in [0, 1) (got {loss})")
        self.loss = loss
        if rate_bytes_per_s is not None:
            rate_bytes_per_s = float(rate_bytes_per_s)
            if not math.isfinite(rate_bytes_per_s) or rate_bytes_per_s <= 0.0:
                raise DataError(
                    f"rate_bytes_per_s must be a finite number > 0 bytes/s, or None (got {rate_bytes_per_s})"
                )
        self.rate_bytes_per_s = rate_bytes_per_s
        if rto_s is None:
            rto_s = 2.0 * self.delay_s + LINUX_RTO_MIN_S
        rto_s = float(rto_s)
        if not math.isfinite(rto_s) or rto_s <= 0.0:
            raise DataError(f"rto_s must be a finite number > 0 s (got {rto_s})")
        self.rto_s = rto_s
        if int(mss_bytes) < 1:
            raise DataError(f"mss_bytes must be an integer >= 1 (got {mss_bytes})")
        self.mss_bytes = int(mss_bytes)
        if int(max_queue_segments) < 1:
            raise DataError(f"max_queue_segments must be an integer >= 1 (got {max_queue_segments})")
        self.max_queue_segments = int(max_queue_segments)
        self.stats = LinkStats()
        self._rng = np.random.default_rng(seed)
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._port = 0
        self._thread: threading.Thread | None = None
        self._thread_loop: asyncio.AbstractEventLoop | None = None

    @property
    def port(self) -> int:
        """The port the proxy listens on (the real one when ``listen`` asked for port 0)."""
        if not self._port:
            raise DataError("port: the proxy is not running (use it as a context manager)")
        return self._port

    @property
    def host(self) -> str:
        """The host the proxy listens on."""
        return self.listen[0]

    # ---------------------------------------------------------------- asyncio interface
    async def start(self) -> None:
        """Start listening (called by ``async with``)."""
        self._server = await asyncio.start_server(self._on_client, self.listen[0], self.listen[1])
        self._port = int(self._server.sockets[0].getsockname()[1])
        logger.debug("shaping proxy on %s:%d -> %s:%d", self.listen[0], self._port, *self.target)

    async def stop(self) -> None:
        """Stop listening and close every connection (called at the end of ``async with``)."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> ShapingProxy:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # ---------------------------------------------------------------- thread interface
    def __enter__(self) -> ShapingProxy:
        loop = asyncio.new_event_loop()
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as err:  # handed to the caller's thread below
                failure.append(err)
                started.set()
                loop.close()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(self.stop())
            loop.close()

        self._thread_loop = loop
        self._thread = threading.Thread(target=run, name="shaping-proxy", daemon=True)
        self._thread.start()
        started.wait()
        if failure:
            self._thread.join()
            raise failure[0]
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._thread_loop is not None and self._thread is not None:
            self._thread_loop.call_soon_threadsafe(self._thread_loop.stop)
            self._thread.join()
        self._thread = None
        self._thread_loop = None

    # ---------------------------------------------------------------- forwarding
    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _on_client(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        self.stats.n_connections += 1
        self._writers.add(c_writer)
        try:
            t_reader, t_writer = await asyncio.open_connection(*self.target)
        except OSError as err:
            logger.warning("shaping proxy: cannot reach %s:%d (%s)", *self.target, err)
            c_writer.close()
            self._writers.discard(c_writer)
            return
        self._writers.add(t_writer)
        up = self._spawn(self._pipe(c_reader, t_writer))
        down = self._spawn(self._pipe(t_reader, c_writer))
        await asyncio.gather(up, down, return_exceptions=True)
        for writer in (c_writer, t_writer):
            writer.close()
            self._writers.discard(writer)

    def _release_time(self, state: _Direction, t_in: float, n_bytes: int) -> float:
        """Departure time of one segment (module notes), updating the direction's state and counters."""
        serial_s = 0.0 if self.rate_bytes_per_s is None else n_bytes / self.rate_bytes_per_s
        t_tx = max(t_in, state.tx_free_t) + serial_s
        state.tx_free_t = t_tx
        extra_s = float(self._rng.exponential(self.jitter_s)) if self.jitter_s > 0.0 else 0.0
        if self.loss > 0.0:
            # m ~ geometric: losses before the first transmission that gets through; RTO doubles each time.
            n_lost = int(self._rng.geometric(1.0 - self.loss)) - 1
            if n_lost:
                hold_s = self.rto_s * (2.0**n_lost - 1.0)
                extra_s += hold_s
                self.stats.n_losses += n_lost
                self.stats.loss_delay_s += hold_s
        t_out = max(t_tx + self.delay_s + extra_s, state.last_out_t)
        state.last_out_t = t_out
        self.stats.n_segments += 1
        self.stats.n_bytes += n_bytes
        return t_out

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state = _Direction.bounded(self.max_queue_segments)
        sender = self._spawn(self._send(state, writer))
        try:
            while True:
                data = await reader.read(_READ_BYTES)
                t_in = time.monotonic()
                if not data:
                    break
                for start in range(0, len(data), self.mss_bytes):
                    chunk = data[start : start + self.mss_bytes]
                    await state.queue.put((self._release_time(state, t_in, len(chunk)), chunk))
        except (ConnectionError, OSError):
            pass
        finally:
            try:
                state.queue.put_nowait(None)
            except asyncio.QueueFull:  # cancelled while full: nothing more will be sent
                sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)

    async def _send(self, state: _Direction, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                item = await state.queue.get()
                if item is None:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                t_out, chunk = item
                wait_s = t_out - time.monotonic()
                if wait_s > 0.0:
                    await asyncio.sleep(wait_s)
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, OSError):
            return


def _parse_address(text: str, flag: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise DataError(f"{flag} must be HOST:PORT with a port in [0, 65535] (got {text!r})")
    return host.strip("[]"), int(port)


async def _serve_forever(proxy: ShapingProxy) -> None:
    async with proxy:
        print(
            f"shaping {proxy.host}:{proxy.port} -> {proxy.target[0]}:{proxy.target[1]}: "
            f"delay {proxy.delay_s * 1e3:g} ms, jitter {proxy.jitter_s * 1e3:g} ms, loss {proxy.loss:g} "
            f"(emulated as RTO {proxy.rto_s * 1e3:g} ms holds), rate "
            f"{'unlimited' if proxy.rate_bytes_per_s is None else f'{proxy.rate_bytes_per_s:g} bytes/s'}",
            flush=True,
        )
        await asyncio.Event().wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: run a shaping proxy until interrupted. Bad input: one line on stderr, exit code 2."""
    parser = argparse.ArgumentParser(
        prog="python -m v2gtwin.cyber.shaping",
        description="User-space TCP proxy adding one-way delay, jitter, emulated loss and a rate limit.",
    )
    parser.add_argument("--listen", required=True, help="HOST:PORT to listen on (port 0: any free port)")
    parser.add_argument("--to", required=True, help="HOST:PORT to forward to")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="one-way delay per direction [ms]")
    parser.add_argument("--jitter-ms", type=float, default=0.0, help="mean exponential jitter [ms]")
    parser.add_argument("--loss", type=float, default=0.0, help="loss probability per transmission [0, 1)")
    parser.add_argument("--rate-bytes-per-s", type=float, default=None, help="rate limit per direction [bytes/s]")
    parser.add_argument("--rto-ms", type=float, default=None, help="initial RTO [ms] (default 2 x delay + 200)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the jitter and loss draws")
    args = parser.parse_args(argv)
    try:
        proxy = ShapingProxy(
            _parse_address(args.listen, "--listen"),
            _parse_address(args.to, "--to"),
            delay_s=_check_nonneg("--delay-ms", args.delay_ms) / 1e3,
            jitter_s=_check_nonneg("--jitter-ms", args.jitter_ms) / 1e3,
            loss=args.loss,
            rate_bytes_per_s=args.rate_bytes_per_s,
            rto_s=None if args.rto_ms is None else _check_positive("--rto-ms", args.rto_ms) / 1e3,
            seed=args.seed,
        )
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve_forever(proxy))
    except V2GTwinError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"error: --listen {args.listen}: {err.strerror or err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
