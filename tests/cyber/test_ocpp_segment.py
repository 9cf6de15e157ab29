"""Tests of the measured OCPP segment: the fit on hand-made data, the loss hold's moments against their series,
and the model's prediction against real round trips (central system <-> simulated station through the proxy)
at a delay and a loss rate the fit did not use."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tests.cli_helpers import assert_one_line_error, run_cli
from tests.conftest import require_part
from v2gtwin.cyber.netns import check_netns
from v2gtwin.cyber.ocpp_segment import (
    LINUX_RTO_MIN_S,
    OcppPoint,
    calc_hold_moments,
    calc_round_trip_quantiles_s,
    fit_ocpp_segment,
    measure_ocpp_segment,
    run_ocpp_round_trips,
)
from v2gtwin.cyber.path import Segment
from v2gtwin.errors import DataError


def _point(delay_s: float, rtt_s: list[float], loss: float = 0.0) -> OcppPoint:
    return OcppPoint(delay_s, loss, 0.2 + 2 * delay_s, tuple(rtt_s), len(rtt_s), 0)


def test_fit_recovers_a_hand_made_line() -> None:
    # Round trips 2 d + 1 ms exactly, plus 0 or 2 ms of random part in equal shares at each delay: the 5th
    # percentile is the line (slope 2 -> k_delay 1, intercept 1 ms); the random part has mean 1 ms and
    # variance 1 ms^2 (values 0 and 2 ms, half each). The held-out delay 0.05 s must not enter the fit.
    pts = [_point(d, [2 * d + 0.001] * 10 + [2 * d + 0.003] * 10) for d in (0.0, 0.02, 0.1)]
    pts.append(_point(0.05, [9.0] * 20))  # held out: absurd values that would wreck the fit if used
    fit = fit_ocpp_segment(pts, holdout_delays_s=(0.05,))
    assert fit.k_delay == pytest.approx(1.0, abs=1e-9)
    assert fit.overhead_s == pytest.approx(0.001, abs=1e-9)
    assert fit.random_mean_s == pytest.approx(0.001, abs=1e-9)
    assert fit.random_var_s2 == pytest.approx(1e-6, rel=1e-6)
    assert fit.fitted_delays_s == (0.0, 0.02, 0.1)
    seg = fit.segment(0.05)
    # One traversal: fixed 1 x 0.05 s, processing 1 ms / 2, random mean 1 ms / 2, variance 1 ms^2 / 2 ->
    # cv = sqrt(0.5e-6) / 0.5e-3 = sqrt(2).
    assert (seg.fixed_s, seg.processing_s, seg.random_mean_s) == pytest.approx((0.05, 0.0005, 0.0005))
    assert seg.random_cv == pytest.approx(math.sqrt(2))
    assert isinstance(seg, Segment) and seg.hop == "csms->charger"


def test_fit_needs_two_delays() -> None:
    with pytest.raises(DataError, match="two delays"):
        fit_ocpp_segment([_point(0.02, [0.04, 0.05])])


@pytest.mark.parametrize("p", [0.01, 0.05, 0.2])
def test_hold_moments_match_the_series(p: float) -> None:
    # Independent reference: sum over m of P(M = m) (1 - p) p^m times RTO (2^m - 1) and its square, truncated
    # where the terms vanish (p^m 4^m < 1e-30 of the first for p < 1/4).
    rto_s = 0.3
    m = np.arange(0, 400)
    pm = (1 - p) * p**m
    hold = rto_s * (2.0**m - 1)
    mean_ref = float(np.sum(pm * hold))
    var_ref = float(np.sum(pm * hold**2)) - mean_ref**2
    mean_s, var_s2 = calc_hold_moments(p, rto_s)
    assert mean_s == pytest.approx(mean_ref, rel=1e-9)
    assert var_s2 == pytest.approx(var_ref, rel=1e-6)


def test_round_trip_of_a_deterministic_segment() -> None:
    # No random part: a round trip is exactly 2 x (fixed + processing) = 2 x (0.05 + 0.001) = 0.102 s.
    seg = Segment("csms->charger (test)", 0.05, 0.0, "none", 0.0, 0.001, 1.0, "hand-made")
    out = calc_round_trip_quantiles_s(seg)
    assert out["mean_s"] == pytest.approx(0.102)
    assert out["p50_s"] == pytest.approx(0.102, abs=1e-4)


def test_bad_points_are_named() -> None:
    with pytest.raises(DataError, match="loss"):
        run_ocpp_round_trips([(0.0, 0.3)])
    with pytest.raises(DataError, match="delay_s"):
        run_ocpp_round_trips([(-0.01, 0.0)])
    with pytest.raises(DataError, match="n_exchanges"):
        run_ocpp_round_trips([(0.0, 0.0)], n_exchanges=0)


def test_prediction_at_a_held_out_delay_matches_real_round_trips() -> None:
    # Real OCPP round trips at 0, 20 and 80 ms one-way fit the model; at 50 ms (not in the fit) the predicted
    # median round trip must be within 10 % + 5 ms of the measured one (the measured median is about
    # 2 x 50 ms = 100 ms plus well under a millisecond of processing on an idle machine; 5 ms leaves room for
    # a loaded one). A proxy or model that got the delay wrong by a factor would miss by 50 ms or more.
    seg, table = measure_ocpp_segment(
        [(0.0, 0.0), (0.02, 0.0), (0.08, 0.0), (0.05, 0.0)], at=(0.05, 0.0), holdout_delays_s=(0.05,), n_exchanges=12
    )
    held = [r for r in table if r["delay_s"] == 0.05]
    assert len(held) == 1 and not held[0]["used_in_fit"]
    assert held[0]["n_answered"] == 12
    assert held[0]["measured_p50_s"] >= 0.1  # the proxy adds 50 ms each way
    assert held[0]["predicted_p50_s"] == pytest.approx(held[0]["measured_p50_s"], rel=0.1, abs=0.005)
    assert seg.source.startswith("measured: ")
    assert seg.p_success == 1.0  # TCP turns loss into delay: every attempt was answered within 30 s


def test_predicted_mean_under_loss_matches_real_round_trips() -> None:
    # Loss p = 0.2 per transmission with an initial RTO of 10 ms, no added delay. Prediction: the loss-free
    # round trip plus two holds of mean RTO p / (1 - 2 p) = 10 ms x 0.2 / 0.6 = 3.33 ms each. Variance of a
    # hold (closed form checked above against its series) = RTO^2 x 2.222 -> sd 14.9 ms; round trip sd
    # sqrt(2) x 14.9 = 21.1 ms; over 300 round trips the standard error is 1.22 ms. Tolerance: 4 standard
    # errors = 4.9 ms. No loss modelled would predict 6.7 ms less; holds of one RTO without back-off
    # (mean RTO p / (1 - p) = 2.5 ms each) 1.7 ms less, within the tolerance: this checks the level, not
    # the back-off.
    _, table = measure_ocpp_segment(
        [(0.0, 0.0), (0.01, 0.0), (0.0, 0.2)], at=(0.0, 0.2), holdout_delays_s=(), n_exchanges=20,
        n_exchanges_lossy=300, rto_s=0.01,
    )  # fmt: skip
    row = next(r for r in table if r["loss"] == 0.2)
    assert not row["used_in_fit"] and row["n_losses_emulated"] > 0
    hold_mean_s, hold_var_s2 = calc_hold_moments(0.2, 0.01)
    assert hold_mean_s == pytest.approx(0.01 * 0.2 / 0.6)
    se_s = math.sqrt(2 * hold_var_s2 / 300)
    assert se_s == pytest.approx(0.00122, abs=5e-5)
    assert row["predicted_mean_s"] == pytest.approx(row["measured_mean_s"], abs=4 * se_s)


def test_prediction_across_a_veth_pair() -> None:
    # The central system in one network namespace, proxy and station in another: the round trips cross the
    # kernel's veth pair. Fit on 0 and 60 ms one-way; at 30 ms (held out) the predicted median round trip is
    # within 10 % + 5 ms of the measured one (about 2 x 30 = 60 ms), as on loopback.
    require_part(check_netns() is None, f"network namespaces: {check_netns()}")
    seg, table = measure_ocpp_segment(
        [(0.0, 0.0), (0.06, 0.0), (0.03, 0.0)], at=(0.03, 0.0), holdout_delays_s=(0.03,), n_exchanges=10, netns=True
    )
    held = next(r for r in table if r["delay_s"] == 0.03)
    assert held["measured_p50_s"] >= 0.06
    assert held["predicted_p50_s"] == pytest.approx(held["measured_p50_s"], rel=0.1, abs=0.005)
    assert "veth pair" in seg.source


def test_cli_measure_bad_input_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "cyber", "path", "--measure", "--measure-loss", "0.3")
    assert_one_line_error(code, err)
    assert "--measure-loss" in err and "[0, 0.25)" in err
    code, _, err = run_cli(capsys, "cyber", "path", "--measure", "--measure-delay-ms", "-1")
    assert_one_line_error(code, err)
    assert "--measure-delay-ms" in err
    # No upper bound used to let 1e9 ms hang the measurement: capped at 10 s, named with its unit.
    code, _, err = run_cli(capsys, "cyber", "path", "--measure", "--measure-delay-ms", "1e9")
    assert_one_line_error(code, err)
    assert "--measure-delay-ms" in err and "[0, 10000] ms" in err
    # The --measure-* options are never silently ignored: without --measure they are an error, and checked.
    for extra in (["--measure-delay-ms", "20"], ["--measure-loss", "0.05"], ["--measure-netns"]):
        code, _, err = run_cli(capsys, "cyber", "path", *extra)
        assert_one_line_error(code, err)
        assert extra[0] in err and "only with --measure" in err
    code, _, err = run_cli(capsys, "cyber", "path", "--measure-loss", "0.3")
    assert_one_line_error(code, err)
    assert "--measure-loss" in err and "[0, 0.25)" in err


def test_cli_measure_wiring(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    # Wiring only (the measurement itself is tested above): a hand-made measured segment must take the place
    # of the default csms->charger link, and the table must reach --json.
    from v2gtwin.cyber import ocpp_segment

    seg = Segment("csms->charger (OCPP over TCP, test)", 0.05, 0.0, "none", 0.0, 0.001, 1.0, "measured: test")
    table = [{"delay_s": 0.05, "loss": 0.0, "used_in_fit": False}]
    seen: dict[str, object] = {}

    def fake(**kw: object) -> tuple[Segment, list[dict[str, object]]]:
        seen.update(kw)
        return seg, table

    monkeypatch.setattr(ocpp_segment, "measure_ocpp_segment", fake)
    code, out, err = run_cli(capsys, "cyber", "path", "--measure", "--measure-delay-ms", "50", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert seen["at"] == (0.05, 0.01)
    names = [s["name"] for s in doc["segments"]]
    assert seg.name in names and not any("(LTE)" in n for n in names)
    assert doc["measured_segment"]["table"] == table
    assert doc["measured_segment"]["segment"]["source"] == "measured: test"
    # The header names the path for what it is: the variant with its link replaced by the measured segment.
    assert doc["path"] == "LTE with its link replaced by the measured OCPP segment"


def test_fit_keeps_the_scatter_of_each_delay() -> None:
    # Round trips 2 d + 1 ms plus 0 or 2 x(d) in equal shares, x = 1, 3, 11 ms at d = 0, 0.02, 0.1 s: the 5th
    # percentile is still the line 2 d + 1 ms, and the random part at d has mean x(d) and variance x(d)^2 per
    # round trip. Pooled over the delays (the old fit) the mean would be 5 ms everywhere, 5 x too much at d = 0.
    xs = {0.0: 0.001, 0.02: 0.003, 0.1: 0.011}
    pts = [_point(d, [2 * d + 0.001] * 10 + [2 * d + 0.001 + 2 * x] * 10) for d, x in xs.items()]
    fit = fit_ocpp_segment(pts)
    for d, x in xs.items():
        seg = fit.segment(d)
        # One traversal: mean x / 2, variance x^2 / 2 -> cv = sqrt(x^2 / 2) / (x / 2) = sqrt(2).
        assert seg.random_mean_s == pytest.approx(x / 2, rel=1e-9)
        assert seg.random_cv == pytest.approx(math.sqrt(2), rel=1e-9)
    # Between fitted delays, linear in the delay: at 0.06 s the mean is (3 + 11) / 2 = 7 ms per round trip and
    # the variance (9 + 121) / 2 = 65 ms^2.
    m, v = fit.scatter_at(0.06)
    assert (m, v) == pytest.approx((0.007, 65e-6), rel=1e-9)


def _real_tcp_round_trips_s(loss: float, n: int) -> np.ndarray:
    """Small request/response round trips over real TCP across a veth pair whose receiving end drops each
    arriving TCP segment with probability ``loss`` (iptables' statistic match): real kernel retransmissions."""
    import socket
    import threading
    import time

    from v2gtwin.cyber.netns import run_in_netns, run_in_netns_thread, veth_namespaces

    with veth_namespaces("v2gloss") as pair:
        rule = ["iptables", "-A", "INPUT", "-i", pair.if_b, "-p", "tcp", "-m", "statistic", "--mode", "random"]
        done = run_in_netns(pair.ns_b, [*rule, "--probability", str(loss), "-j", "DROP"], capture_output=True)
        assert done.returncode == 0, done.stderr
        ready = threading.Event()

        def server() -> None:
            with socket.socket() as s:
                s.bind((pair.ipv4_b, 9099))
                s.listen(1)
                ready.set()
                c, _ = s.accept()
                c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                while data := c.recv(64):
                    c.sendall(data)
                c.close()

        threading.Thread(target=run_in_netns_thread, args=(pair.ns_b, server), daemon=True).start()
        assert ready.wait(10)

        def client() -> np.ndarray:
            out = []
            with socket.create_connection((pair.ipv4_b, 9099), timeout=30) as c:
                c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                for _ in range(n):
                    t0 = time.perf_counter()
                    c.sendall(b"x" * 32)
                    got = 0
                    while got < 32:
                        got += len(c.recv(64))
                    out.append(time.perf_counter() - t0)
            return np.asarray(out)

        return run_in_netns_thread(pair.ns_a, client)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_hold_law_against_real_tcp_loss() -> None:
    # An independent reference for the loss rows (the proxy emulates loss with the very law the model uses):
    # real TCP across a veth pair, 10 % of the segments towards the server dropped by iptables. Only the
    # request direction is lossy, so a round trip is delayed when its request is lost: P = p = 0.1, binomial
    # standard error sqrt(0.09 / 300) = 0.017 (tolerance 4 sigma = 0.07). A lost segment waits one RTO, at
    # least Linux's 200 ms minimum. The model's mean extra per lossy traversal, RTO p / (1 - 2 p) = 25 ms at
    # RTO 0.2 s (calc_hold_moments), has standard deviation sqrt(0.0094) = 97 ms per round trip: over 300 the
    # standard error is 5.6 ms; tolerance 4 sigma = 22 ms, plus 5 ms for the RTO's own margin above 200 ms.
    import shutil

    from v2gtwin.cyber.netns import check_netns

    blocker = check_netns() or (None if shutil.which("iptables") else "`iptables` not found (Debian's iptables)")
    require_part(blocker is None, f"real TCP loss across network namespaces: {blocker}")
    p, n = 0.1, 300
    rtt_s = _real_tcp_round_trips_s(p, n)
    base_s = float(np.median(rtt_s))
    delayed = rtt_s > 0.1
    assert float(delayed.mean()) == pytest.approx(p, abs=4 * math.sqrt(p * (1 - p) / n))
    assert float(np.min(rtt_s[delayed])) >= LINUX_RTO_MIN_S
    hold_mean_s, hold_var_s2 = calc_hold_moments(p, LINUX_RTO_MIN_S)
    tol_s = 4 * math.sqrt(hold_var_s2 / n) + 0.005
    assert float(rtt_s.mean()) - base_s == pytest.approx(hold_mean_s, abs=tol_s)
