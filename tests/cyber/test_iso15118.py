"""The ISO 15118 segment: closed forms and hand-computed cases for the pure parts, and real sessions of the open
``iso15118`` stack (SECC and EVCC in two network namespaces) for the measurement and the model check."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from tests.cli_helpers import assert_one_line_error, run_cli
from tests.conftest import require_part
from v2gtwin.cyber import iso15118_live
from v2gtwin.cyber.iso15118_session import (
    SessionMeasurement,
    calc_message_timings,
    calc_residual_wait,
    calc_session_time_s,
    documented_segment,
    measured_segment,
    predict_from_sessions_s,
    predict_session_time_s,
)
from v2gtwin.errors import DataError

# ---------------------------------------------------------------- pure parts


def test_residual_wait_constant_period_is_uniform() -> None:
    # A constant period T gives a wait R ~ U(0, T): mean T/2, coefficient of variation 1/sqrt(3).
    mean, cv = calc_residual_wait(np.full(7, 0.4))
    assert mean == pytest.approx(0.2, rel=1e-12)
    assert cv == pytest.approx(1 / math.sqrt(3), rel=1e-12)


def test_residual_wait_two_periods_hand_computed() -> None:
    # T in {1, 3} s equally often: E[T] = 2, E[T^2] = 5, E[T^3] = 14.
    # E[R] = 5 / 4 = 1.25; E[R^2] = 14 / 6 = 2.3333; var = 2.3333 - 1.5625 = 0.77083; cv = 0.87797 / 1.25 = 0.70238.
    mean, cv = calc_residual_wait(np.array([1.0, 3.0, 1.0, 3.0]))
    assert mean == pytest.approx(1.25, rel=1e-12)
    assert cv == pytest.approx(0.70238, rel=1e-4)


def test_residual_wait_against_monte_carlo() -> None:
    # A renewal process of gamma periods, observed at uniform random instants: the wait to the next arrival.
    rng = np.random.default_rng(7)
    periods = rng.gamma(shape=2.0, scale=0.15, size=200_000)
    arrivals = np.cumsum(periods)
    t = rng.uniform(0, arrivals[-2], size=200_000)
    wait = arrivals[np.searchsorted(arrivals, t)] - t
    mean, cv = calc_residual_wait(periods)
    assert mean == pytest.approx(wait.mean(), rel=0.01)
    assert cv == pytest.approx(wait.std() / wait.mean(), rel=0.02)


def test_residual_wait_rejects_bad_periods() -> None:
    with pytest.raises(DataError, match="period_s"):
        calc_residual_wait(np.array([0.2, -0.1]))
    with pytest.raises(DataError, match="period_s"):
        calc_residual_wait(np.array([]))


def test_session_time_hand_computed() -> None:
    # 0.15 s set-up + 19 x (0.2 EV + 0.001 RTT + 0.3 SECC) = 0.15 + 19 x 0.501 = 9.669 s.
    assert calc_session_time_s(19, 0.001, 0.3, 0.2, 0.15) == pytest.approx(9.669, rel=1e-12)
    out = calc_session_time_s(np.array([1, 2]), 0.1, 0.2, 0.3)
    np.testing.assert_allclose(out, [0.6, 1.2])


def test_session_time_rejects_negative_and_non_finite() -> None:
    with pytest.raises(DataError, match="rtt_s"):
        calc_session_time_s(3, -0.001, 0.3, 0.2)
    with pytest.raises(DataError, match="secc_processing_s"):
        calc_session_time_s(3, 0.001, math.nan, 0.2)


def _ev(t_ms: float, kind: str, **kw: object) -> dict[str, object]:
    return {"t_ns": round(t_ms * 1e6), "kind": kind, **kw}


def _pair_events() -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """Two exchanges with round times [ms]: SDP at 0, reply 2; connect 3 -> 4 with the TLS context made from 3.1 to
    3.6; SessionSetup sent 10, read by the
    SECC 11, answered 41, read by the EV 43, decoded 45; ChargingStatus sent 60, read 61.5, answered 81.5, read 82,
    decoded 83; end 84."""
    evcc = [
        _ev(0, "sdp_tx"),
        _ev(2, "sdp_rx", n_bytes=28),
        _ev(3, "connect_start", tls=True),
        _ev(3.1, "ssl_context_start"),
        _ev(3.6, "ssl_context_done"),
        _ev(4, "connected", tls_version="TLSv1.2", cipher="ECDHE-ECDSA-AES128-SHA256"),
        _ev(10, "tx", name="SessionSetupReq", n_bytes=22),
        _ev(43, "rx", n_bytes=39),
        _ev(45, "dec", name="SessionSetupRes"),
        _ev(60, "tx", name="ChargingStatusReq", n_bytes=21),
        _ev(82, "rx", n_bytes=40),
        _ev(83, "dec", name="ChargingStatusRes"),
        _ev(84, "end"),
    ]
    secc = [
        _ev(11, "rx", n_bytes=22),
        _ev(41, "tx", name="SessionSetupRes", n_bytes=39),
        _ev(61.5, "rx", n_bytes=21),
        _ev(81.5, "tx", name="ChargingStatusRes", n_bytes=40),
    ]
    return evcc, secc


def test_message_timings_hand_computed() -> None:
    evcc, secc = _pair_events()
    msgs, phases = calc_message_timings(evcc, secc)
    assert [m.name for m in msgs] == ["SessionSetupReq", "ChargingStatusReq"]
    a, b = msgs
    # SessionSetup: EV busy 10 - 4 = 6 ms, forward 1, SECC 30, back 2, round trip 33, decode 2.
    assert (a.ev_before_s, a.forward_s, a.secc_processing_s, a.back_s, a.round_trip_s, a.ev_decode_s) == pytest.approx(
        (0.006, 0.001, 0.030, 0.002, 0.033, 0.002), abs=1e-9
    )
    # ChargingStatus: EV busy 60 - 43 = 17 ms, forward 1.5, SECC 20, back 0.5, round trip 22.
    assert (b.ev_before_s, b.forward_s, b.secc_processing_s, b.back_s, b.round_trip_s) == pytest.approx(
        (0.017, 0.0015, 0.020, 0.0005, 0.022), abs=1e-9
    )
    # Connection 4 - 3 = 1 ms, of which 0.5 ms TLS context set-up: 0.5 ms TCP + handshake.
    assert phases == pytest.approx({"sdp_s": 0.002, "tls_context_s": 0.0005, "connect_s": 0.0005, "total_s": 0.084})


def test_message_timings_reject_mismatched_records() -> None:
    evcc, secc = _pair_events()
    secc[0]["n_bytes"] = 23
    with pytest.raises(DataError, match="sizes differ"):
        calc_message_timings(evcc, secc)
    evcc, secc = _pair_events()
    with pytest.raises(DataError, match="do not pair"):
        calc_message_timings(evcc, secc[:2])
    evcc, secc = _pair_events()
    with pytest.raises(DataError, match="'end'"):
        calc_message_timings(evcc[:-1], secc)


def test_message_timings_of_a_session_that_ended_early() -> None:
    # The EV's second request (sent at 60 ms) is read by the SECC but never answered in time; the stack gives up
    # at 600 ms: one answered pair, total 600 ms.
    evcc, secc = _pair_events()
    evcc = [e for e in evcc if e["kind"] != "end" and e["t_ns"] < 80_000_000] + [_ev(600, "failed")]
    secc = secc[:3]
    msgs, phases = calc_message_timings(evcc, secc, complete=False)
    assert [m.name for m in msgs] == ["SessionSetupReq"]
    assert msgs[0].round_trip_s == pytest.approx(0.033, abs=1e-9)
    assert phases["total_s"] == pytest.approx(0.6)
    with pytest.raises(DataError, match="'end'"):
        calc_message_timings(evcc, secc)


def test_segment_counts_an_unanswered_request_as_a_failure() -> None:
    # Two sessions of 3 answered loop requests; the second ended early with one request unanswered:
    # p_success = 6 answered / 7 attempted.
    done = _session([0.2, 0.4])
    early = SessionMeasurement(**{**done.__dict__, "failure": "TimeoutError", "info": {}})
    seg = measured_segment([done, early], "measured: test")
    assert seg.p_success == pytest.approx(6 / 7, rel=1e-12)


def test_summary_of_a_session_without_answers_is_strict_json() -> None:
    # A session that ended before its first answer: no means (None), never NaN.
    from v2gtwin.jsonout import dumps_strict

    s = SessionMeasurement("-20", True, "TLSv1.3", "TLS_AES_256_GCM_SHA384", 0.02, 0.01, 0.6, (), 1e-5, failure="x")
    out = json.loads(dumps_strict(s.summary()))
    assert out["mean_round_trip_s"] is None and out["completed"] is False and out["predicted_total_s"] is None


def _session(periods_s: list[float], back_s: float = 0.001) -> SessionMeasurement:
    """A synthetic -2 session whose charge-loop requests leave at the given intervals."""
    from v2gtwin.cyber.iso15118_session import MessageTiming

    t = np.concatenate([[0.0], np.cumsum(periods_s)])
    msgs = tuple(
        MessageTiming(
            "ChargingStatusReq", "ChargingStatusRes", 21, 40, float(ti), 0.05, 0.001, 0.02, back_s, 0.022, 0.003
        )
        for ti in t
    )
    return SessionMeasurement("-2", False, "-", "-", 0.1, 0.01, float(t[-1]) + 0.1, msgs, 1e-5)


def test_measured_segment_hand_computed() -> None:
    # Periods {0.2, 0.4}: E[T] = 0.3, E[T^2] = 0.1, wait mean = 0.1 / 0.6 = 0.16667 s.
    # Processing = SECC 0.02 + EV decode 0.003 = 0.023 s; fixed = the back transit 0.001 s; 3 of 3 exchanges ok.
    seg = measured_segment([_session([0.2, 0.4])], "measured: test")
    assert seg.random_mean_s == pytest.approx(0.1 / 0.6, rel=1e-12)
    assert seg.processing_s == pytest.approx(0.023, rel=1e-12)
    assert seg.fixed_s == pytest.approx(0.001)
    assert seg.p_success == 1.0 and seg.random_dist == "gamma"
    assert seg.source == "measured: test"


def test_model_prediction_hand_computed() -> None:
    # 3 messages, each EV 0.05 + probe RTT 1e-5 + SECC 0.02 = 0.07001 s; set-up 0.1 + 0.01 = 0.11 s -> 0.32003 s.
    assert predict_session_time_s(_session([0.2, 0.4])) == pytest.approx(0.32003, rel=1e-12)
    # With a loop of 10 instead (all 3 messages are loop requests): 0.11 + 10 x 0.07001 = 0.8101 s.
    assert predict_session_time_s(_session([0.2, 0.4]), n_loop=10) == pytest.approx(0.8101, rel=1e-12)


def test_model_scales_only_the_charge_loop() -> None:
    from v2gtwin.cyber.iso15118_session import MessageTiming

    setup = MessageTiming("SessionSetupReq", "SessionSetupRes", 22, 39, 0.0, 0.3, 0.0, 0.5, 0.0, 0.5, 0.0)
    loop = MessageTiming("ChargingStatusReq", "ChargingStatusRes", 21, 40, 1.0, 0.1, 0.0, 0.2, 0.0, 0.2, 0.0)
    cal = SessionMeasurement("-2", False, "-", "-", 0.1, 0.01, 1.5, (setup, loop, loop), 1e-5)
    # Own counts: 0.11 + (0.3 + 1e-5 + 0.5) + 2 x (0.1 + 1e-5 + 0.2) = 0.11 + 0.80001 + 0.60002 = 1.51003 s.
    assert predict_session_time_s(cal) == pytest.approx(1.51003, rel=1e-12)
    # A loop of 5: 0.11 + 0.80001 + 5 x 0.30001 = 2.41006 s (the set-up message still counts once).
    assert predict_session_time_s(cal, n_loop=5) == pytest.approx(2.41006, rel=1e-12)


def test_documented_segment_is_the_standard_timeout() -> None:
    # ISO 15118-2:2014 Table 109: ChargingStatusReq 2 s; ISO 15118-20 AC charge loop 0.5 s.
    s2, s20 = documented_segment("-2"), documented_segment("-20")
    assert (s2.fixed_s, s20.fixed_s) == (2.0, 0.5)
    assert s2.source.startswith("documented (not measured)") and "Table 109" in s2.source
    with pytest.raises(DataError, match="protocol"):
        documented_segment("-3")


def test_measure_falls_back_to_documented_figures_naming_the_blocker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(iso15118_live, "check_iso15118_available", lambda: "`java` not found")
    res = iso15118_live.run_iso15118(measure=True)
    out = res.summary()
    assert out["mode"] == "documented" and out["measurement_blocker"] == "`java` not found"
    assert out["segment"]["source"].startswith("documented (not measured)")


# ---------------------------------------------------------------- CLI


def test_cli_documented_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "cyber", "iso15118", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["mode"] == "documented" and data["sessions"] == []
    assert data["segments"]["ISO 15118-20"]["fixed_s"] == 0.5


def test_cli_text_documented(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "cyber", "iso15118")
    assert code == 0, err
    assert "documented (not measured)" in out and "ChargingStatusReq" in out


def test_cli_text_of_measured_sessions(capsys: pytest.CaptureFixture[str]) -> None:
    # The text layout of a measured result (wiring only: the numbers are the synthetic session's).
    from v2gtwin.cli.cyber_iso15118 import _text
    from v2gtwin.cyber.iso15118_result import build_iso15118_result

    done = _session([0.2, 0.4])
    early = SessionMeasurement(**{**done.__dict__, "failure": "TimeoutError: AC_CHARGE_LOOP_REQ", "info": {}})
    _text(build_iso15118_result([done, early], ["-2"], None, "measured: test").summary())
    out = capsys.readouterr().out
    assert out.count("model check, in-sample") == 1  # the session that ended early has no model check
    assert "model check, held-out: needs two sessions of a kind (--repeat 2)" in out
    assert "ended early (a measured failure): TimeoutError" in out
    assert out.count("ChargingStatusReq") == 6


@pytest.mark.parametrize(
    ("args", "field"),
    [(["--protocol", "3"], "--protocol"), (["--tls", "maybe"], "--tls"), (["--loop", "1"], "--loop")],
)
def test_cli_bad_input(capsys: pytest.CaptureFixture[str], args: list[str], field: str) -> None:
    code, _out, err = run_cli(capsys, "cyber", "iso15118", *args)
    assert_one_line_error(code, err)
    assert field in err


# ---------------------------------------------------------------- real sessions


def _require_stack() -> None:
    blocker = iso15118_live.check_iso15118_available()
    require_part(blocker is None, f"real ISO 15118 sessions cannot run here: {blocker}")


#: ISO 15118-2 sec. 8.8 (message sequence, AC with external identification): the requests in order.
_ISO2_AC_EIM = [
    "SupportedAppProtocolReq",
    "SessionSetupReq",
    "ServiceDiscoveryReq",
    "PaymentServiceSelectionReq",
    "AuthorizationReq",
    "ChargeParameterDiscoveryReq",
    "PowerDeliveryReq",
]


def test_prediction_from_other_sessions_uses_medians_hand_computed() -> None:
    from v2gtwin.cyber.iso15118_session import MessageTiming, predict_from_sessions_s

    def loop(ev_s: float) -> MessageTiming:
        return MessageTiming("ChargingStatusReq", "ChargingStatusRes", 21, 40, 1.0, ev_s, 0.0, 0.2, 0.0, 0.2, 0.0)

    setup = MessageTiming("SessionSetupReq", "SessionSetupRes", 22, 39, 0.0, 0.3, 0.0, 0.5, 0.0, 0.5, 0.0)
    # Two calibration sessions; the loop's EV times pooled: {0.1, 0.1, 0.1, 5.0} -> median 0.1 (the mean, 1.325,
    # would carry the one slow exchange into every predicted one). Set-ups 0.11 and 0.31 s -> median 0.21 s;
    # probe RTTs 1e-5 and 3e-5 -> median 2e-5 s. A loop of 6:
    # 0.21 + (0.3 + 2e-5 + 0.5) + 6 x (0.1 + 2e-5 + 0.2) = 0.21 + 0.80002 + 1.80012 = 2.81014 s.
    a = SessionMeasurement("-2", False, "-", "-", 0.1, 0.01, 1.5, (setup, loop(0.1), loop(0.1)), 1e-5)
    b = SessionMeasurement("-2", False, "-", "-", 0.3, 0.01, 6.5, (setup, loop(0.1), loop(5.0)), 3e-5)
    assert predict_from_sessions_s([a, b], 6) == pytest.approx(2.81014, rel=1e-12)
    other = SessionMeasurement("-20", False, "-", "-", 0.3, 0.01, 6.5, (setup,), 3e-5)
    with pytest.raises(DataError, match="one kind"):
        predict_from_sessions_s([a, other], 6)


def test_model_check_rows_are_labelled_and_held_out_needs_two_sessions() -> None:
    from v2gtwin.cyber.iso15118_result import build_iso15118_result

    one = build_iso15118_result([_session([0.2, 0.4])], ("-2",), None, "measured: test")
    assert one.model_check()[0]["check"].startswith("in-sample")
    assert one.held_out_check() == []
    # Two sessions: each predicted from the other alone. Session B ([0.2, 0.4, 0.3]: 4 loop messages) from A
    # (3 messages, each 0.05 + 1e-5 + 0.02 = 0.07001 s; set-up 0.11 s): 0.11 + 4 x 0.07001 = 0.39004 s.
    two = build_iso15118_result([_session([0.2, 0.4]), _session([0.2, 0.4, 0.3])], ("-2",), None, "measured: t")
    rows = two.held_out_check()
    assert [r["n_calibration_sessions"] for r in rows] == [1, 1]
    assert rows[1]["predicted_total_s"] == pytest.approx(0.39004, rel=1e-12)
    assert rows[1]["check"].startswith("held-out")


@pytest.mark.slow
@pytest.mark.timeout(900)  # three sessions of ~5-15 s each on a loaded machine, each allowed 120 s
def test_real_iso15118_2_session_and_model() -> None:
    """Three 10-cycle ISO 15118-2 sessions, each predicted from the other two (held out, same loop length): the
    median of the three relative errors within 25 %. Not from shorter sessions: the per-message processing of
    this Python + Java stack falls through a session (loop exchanges about 0.25 s early, 0.12 s late on a quiet
    machine), so a 10-cycle session predicted from 3-cycle ones came out 40 % high in a CI run (see docs/cyber.md).
    """
    _require_stack()
    long = [iso15118_live.run_session("-2", tls=False, charge_loop_cycles=10) for _ in range(3)]
    for m in long:
        names = [x.name for x in m.messages]
        # The simulated EV ends its loop after the asked cycles or at a full battery (its SoC steps with
        # truncation), so the loop's length is checked against the order of the standard, not an exact count.
        n_loop = len(m.loop())
        assert n_loop >= 10
        assert names == [*_ISO2_AC_EIM, *["ChargingStatusReq"] * n_loop, "PowerDeliveryReq", "SessionStopReq"]
        assert all(x.res_bytes > 8 and x.round_trip_s > 0 for x in m.messages)
        # The probe's round trip across the veth pair is real and small (tens of microseconds here).
        assert 0 < m.rtt_probe_s < 0.01
    errors = []
    for i, m in enumerate(long):
        pred = predict_from_sessions_s([r for j, r in enumerate(long) if j != i], len(m.loop()))
        errors.append(pred / m.total_s - 1.0)
    assert abs(float(np.median(errors))) < 0.25, (errors, [m.total_s for m in long])
    seg = measured_segment(long, "measured: test")
    assert 0 < seg.random_mean_s < 2.0  # the wait is about half a loop, far inside the 2 s timeout (Table 109)


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("tls", [False, True], ids=["no-tls", "tls"])
def test_real_iso15118_20_sessions_and_model(tls: bool) -> None:
    """ISO 15118-20 AC, without and with TLS 1.3: three sessions of one kind, each predicted from the other two
    (held out: medians per message type of sessions of the same kind and loop length); the median of the three
    relative errors within 25 %; all must complete. (One session against one other is not enough: on a loaded
    machine two sessions of this Python + Java stack differed by a third in a full run.)"""
    _require_stack()
    runs = [iso15118_live.run_session("-20", tls=tls, charge_loop_cycles=3) for _ in range(3)]
    for m in runs:
        assert m.completed, m.failure
        assert m.messages[-1].name == "SessionStopReq"
        if tls:
            assert (m.tls_version, m.cipher) == ("TLSv1.3", "TLS_AES_256_GCM_SHA384")
    errors = []
    for i, m in enumerate(runs):
        pred = predict_from_sessions_s([r for j, r in enumerate(runs) if j != i], len(m.loop()))
        errors.append(pred / m.total_s - 1.0)
    assert abs(float(np.median(errors))) < 0.25, (errors, [r.total_s for r in runs])


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_real_iso15118_2_tls_session() -> None:
    # ISO 15118-2: TLS 1.2, TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256 (OpenSSL name below). (-20 with TLS 1.3 is
    # in the -20 model check above, which requires the sessions to complete.)
    _require_stack()
    m = iso15118_live.run_session("-2", tls=True, charge_loop_cycles=3)
    assert (m.tls_version, m.cipher) == ("TLSv1.2", "ECDHE-ECDSA-AES128-SHA256")
    assert m.connect_s > 0 and m.tls_context_s > 0 and m.total_s > m.connect_s
    assert m.completed, m.failure
    assert m.messages[-1].name == "SessionStopReq"


def test_missing_environment_blocker_names_the_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # With root and the tools present but no environment, the blocker names where it looked and the override.
    import shutil

    missing = f"{tmp_path}/nowhere/bin/python"
    monkeypatch.setattr(iso15118_live.os, "geteuid", lambda: 0)
    monkeypatch.setattr(shutil, "which", lambda tool: f"/usr/bin/{tool}")
    monkeypatch.setenv("V2GTWIN_ISO15118_PYTHON", missing)
    blocker = iso15118_live.check_iso15118_available()
    assert blocker is not None and missing in blocker and "V2GTWIN_ISO15118_PYTHON" in blocker
