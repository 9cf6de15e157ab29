"""Fixes to the station simulator and API found by trying issue 18 as a new user."""

from __future__ import annotations

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
