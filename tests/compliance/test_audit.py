"""The audit's remediation plan and JSON, checked by hand on a register with known failures."""

from __future__ import annotations

import json

import pytest

from tests.compliance.registers import base
from v2gtwin.compliance.audit import run_audit
from v2gtwin.compliance.register import parse_register
from v2gtwin.errors import ScenarioError
from v2gtwin.jsonout import dumps_strict


def _failing() -> dict:  # type: ignore[type-arg]
    d = base()
    inv = d["inverters"][0]
    inv["trip"]["uf1_hz"] = 59.3  # IEEE1547-TRIP-UF1 fails
    inv["freq_droop"]["k_uf_pu"] = 0.01  # IEEE1547-FD fails: the same action on the same asset
    inv["certifications"] = []  # UL1741SB-CERT fails
    d["meters"][0]["accuracy_class"] = "0.5"  # METER-CLASS fails
    d["meters"][0]["interval_min"] = 15  # METER-INTERVAL fails: the same meter
    d["aggregation"]["distribution_review"] = "not_filed"
    d["remediation_costs"] = {"replace_meter": 1500.0, "certify_inverter": 400.0, "reconfigure_inverter": 25.0}
    return d


def test_plan_groups_by_action_and_asset_with_units_and_costs() -> None:
    result = run_audit(parse_register(_failing()))
    items = {(r.action, r.asset): r for r in result.remediation}
    assert set(items) == {
        ("replace_meter", "M-1"),
        ("certify_inverter", "INV-1"),
        ("reconfigure_inverter", "INV-1"),
        ("file_utility_review", "aggregation"),
    }
    assert items[("reconfigure_inverter", "INV-1")].rules == ("IEEE1547-TRIP-UF1", "IEEE1547-FD")
    assert items[("replace_meter", "M-1")].rules == ("METER-CLASS", "METER-INTERVAL")
    # 20 inverters x 400 = 8,000; x 25 = 500; one meter 1,500; the review has no cost in the register.
    assert items[("certify_inverter", "INV-1")].cost == 8000.0
    assert items[("reconfigure_inverter", "INV-1")].cost == 500.0
    assert items[("replace_meter", "M-1")].cost == 1500.0
    assert items[("file_utility_review", "aggregation")].cost is None
    d = result.to_dict()
    rem = d["remediation"]
    assert rem["currency"] == "EUR"
    assert rem["total_cost"] == 8000.0 + 500.0 + 1500.0
    assert rem["actions_without_cost"] == ["file_utility_review"]
    assert {a["action"]: a["units"] for a in rem["actions"]} == {
        "replace_meter": 1,
        "certify_inverter": 20,
        "reconfigure_inverter": 20,
        "file_utility_review": 1,
    }
    assert result.exit_code == 1 and d["passed"] is False
    assert d["counts"]["fail"] == sum(f["status"] == "fail" for f in d["findings"])


def test_json_is_strict_even_for_an_unbounded_meter_sum() -> None:
    d = base()
    d["meters"] += [
        {
            "id": f"S{i}",
            "site": "S1",
            "accuracy_class": "1.0",
            "dedicated": True,
            "directional": True,
            "interval_min": 1,
            "revenue_grade": False,
            "e_kwh": e,
        }
        for i, e in enumerate((10.0, -10.0))
    ]
    d["meter_sums"] = [{"id": "SUM", "meters": ["S0", "S1"]}]
    result = run_audit(parse_register(d))
    out = json.loads(dumps_strict(result.to_dict()))
    (s,) = out["meter_sums"]
    assert s["unbounded"] is True and s["bound_pct"] is None
    # The unbounded sum fails and calls for a dedicated meter.
    assert {(r.action, r.asset) for r in result.remediation} == {("install_meter", "SUM")}


def test_families_and_unknown_family() -> None:
    result = run_audit(parse_register(_failing()), ("metering",))
    assert {f.rule.split("-")[0] for f in result.findings} == {"METER"}
    with pytest.raises(ScenarioError, match="unknown rule family 'iec61850'; allowed: ieee1547, metering, ferc2222"):
        run_audit(parse_register(base()), ("iec61850",))


def test_a_single_source_bound_is_marked_not_corroborated() -> None:
    # uv1_s = 21 s for Category III sits on the 21 s lower end that only pyUL1741SB gives (PyDSS: 2-21 s), so the
    # base register's UV1 finding rests on one source; UF2 (every value from two encodings or more) does not.
    result = run_audit(parse_register(base()))
    f = {x.rule: x for x in result.findings if x.asset == "INV-1"}
    assert f["IEEE1547-TRIP-UV1"].status == "pass" and f["IEEE1547-TRIP-UV1"].corroborated is False
    assert f["IEEE1547-TRIP-UV1"].to_dict()["corroborated"] is False
    assert f["IEEE1547-TRIP-UF2"].corroborated is True
    d = result.to_dict()
    # No value was checked against the standards' texts: the JSON says so once.
    assert d["primary_source_checked"] is False and "No reference value was checked" in d["source_note"]


def test_a_repeated_family_runs_once() -> None:
    once = run_audit(parse_register(_failing()), ("metering",))
    twice = run_audit(parse_register(_failing()), ("metering", "metering"))
    assert twice.findings == once.findings and twice.families == ("metering",)


def test_total_cost_is_null_without_any_cost() -> None:
    d = _failing()
    d["remediation_costs"] = {}
    rem = run_audit(parse_register(d)).to_dict()["remediation"]
    assert rem["total_cost"] is None
    assert set(rem["actions_without_cost"]) == {
        "replace_meter",
        "certify_inverter",
        "reconfigure_inverter",
        "file_utility_review",
    }


def test_a_sum_member_failing_a_check_is_remedied_by_the_sums_meter() -> None:
    # M-1 covers nothing; two non-revenue class 0.2 meters summed stand in for INV-1: the members fail
    # METER-REVENUE, and the plan installs one meter for the sum instead of replacing each member.
    d = base()
    d["meters"][0]["covers"] = []
    d["meters"] += [
        {
            "id": f"S{i}",
            "site": "S1",
            "accuracy_class": "0.2",
            "dedicated": True,
            "directional": True,
            "interval_min": 5,
            "revenue_grade": False,
            "e_kwh": e,
        }
        for i, e in enumerate((30.0, 20.0))
    ]
    d["meter_sums"] = [{"id": "SUM", "meters": ["S0", "S1"], "covers": ["INV-1"]}]
    result = run_audit(parse_register(d))
    fails = {(f.rule, f.asset) for f in result.findings if f.status == "fail"}
    assert {("METER-REVENUE", "S0"), ("METER-REVENUE", "S1"), ("METER-SUM", "SUM")} <= fails
    assert ("METER-COVERAGE", "INV-1") in fails
    assert {(r.action, r.asset) for r in result.remediation} == {("install_meter", "SUM")}  # one meter, said once
