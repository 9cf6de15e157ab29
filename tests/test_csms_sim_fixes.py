"""Fixes to the station simulator and API found by trying issue 18 as a new user."""

from __future__ import annotations

import json
import math

import pytest

from v2gtwin.cyber.csms.live_state import ev_power_limits_w
from v2gtwin.cyber.csms.simulator import ev_max_current_a


@pytest.mark.parametrize(("p_max_w", "amps"), [(7200.0, 11), (11000.0, 16), (3700.0, 6), (6928.2, 10)])
def test_declared_ac_power_covers_the_draw(p_max_w: float, amps: int) -> None:
    # sqrt(3)*400 V = 692.82 W per amp: 7200/692.82 = 10.39 -> 11 A (7621 W); 11000/692.82 = 15.88 -> 16 A;
    # 3700 W -> 5.34 A, raised to the 6 A minimum; 6928.2 W is 10.0000 A -> exactly 10 A, not 11
    assert ev_max_current_a(p_max_w) == amps
    needs = {
        "requested_energy_transfer": "AC_three_phase",
        "ac_charging_parameters": {"ev_max_current": amps, "ev_max_voltage": 400},
    }
    p_decl, _ = ev_power_limits_w(needs, v2x=False)
    assert p_decl is not None
    assert p_decl >= p_max_w - 1e-6
    assert p_decl == pytest.approx(math.sqrt(3.0) * 400.0 * amps)


def test_cafile_missing_or_junk_is_one_line_naming_the_option(tmp_path) -> None:
    from v2gtwin.cyber.api_client import ApiClient, ApiError

    missing = tmp_path / "nope.pem"
    with pytest.raises(ApiError, match=r"^--cafile .*nope\.pem: no such file$"):
        ApiClient("https://127.0.0.1:1", "t", cafile=str(missing))
    junk = tmp_path / "junk.pem"
    junk.write_bytes(b"\x00\x01 not a certificate\n")
    with pytest.raises(ApiError, match=r"^--cafile .*junk\.pem: not a readable PEM CA certificate"):
        ApiClient("https://127.0.0.1:1", "t", cafile=str(junk))
    with pytest.raises(ApiError, match=r"--cafile .*only used with an https"):
        ApiClient("http://127.0.0.1:1", "t", cafile=str(junk))


def test_null_latency_comes_with_its_reason() -> None:
    from v2gtwin.cli.csms_api import outcome_summary

    # 4 stations, D timed out: nearest rank p50 = rank ceil(0.5*4) = 2 -> 0.02 s; p99 = rank ceil(3.96) = 4 -> D,
    # which did not accept -> null, and the reason says so
    res = {
        "A": {"status": "Accepted", "latency_s": 0.01},
        "B": {"status": "Accepted", "latency_s": 0.02},
        "C": {"status": "Accepted", "latency_s": 0.03},
        "D": {"status": "timeout", "latency_s": None},
    }
    out = outcome_summary(res)
    assert out["latency_p50_s"] == pytest.approx(0.02) and out["latency_p99_s"] is None
    assert out["latency_note"].startswith("latency p99 null: 1 of 4 stations did not accept (timeout 1)")
    res["D"] = {"status": "Accepted", "latency_s": 0.04}
    assert "latency_note" not in outcome_summary(res)


def test_dashboard_renders_null_latency_as_dash_not_zero() -> None:
    """The dashboard's own formatting functions, run in node: null -> '–', 0.0123 s -> '12.3 ms'."""
    import re
    import shutil
    import subprocess
    from pathlib import Path

    from tests.conftest import require_part

    node = shutil.which("node")
    require_part(node is not None, "node (to run the dashboard's script)")
    html = (Path(__file__).parents[1] / "src/v2gtwin/cyber/csms/dashboard.html").read_text()
    fmt = re.search(r"const fmt = .*?;\n", html, re.S)
    ms = re.search(r"const ms = .*?;\n", html, re.S)
    assert fmt and ms, "the dashboard defines fmt and ms"
    js = fmt.group(0) + ms.group(0) + "console.log(JSON.stringify([ms(null), ms(undefined), ms(0.0123), ms(0)]));"
    out = subprocess.run([str(node), "-e", js], capture_output=True, text=True, timeout=30, check=True).stdout
    assert json.loads(out) == ["–", "–", "12.3 ms", "0.0 ms"]
