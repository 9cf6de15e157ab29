"""Metering rules for wholesale participation: every settlement meter (a meter that ``covers`` inverters, or a
member of a meter sum that covers inverters) must be dedicated, directional, revenue-grade, of the required
ANSI C12.20 class or better and record intervals no longer than the market's settlement interval; every inverter
must be behind such a meter; and an energy taken as a sum of meters must stay within the required class's error
limit in the worst case (:mod:`v2gtwin.compliance.meters`). A sum settles an inverter only when its bound is within
the limit and every meter in it passes every METER-* check: a sum cannot stand in for a certified meter.

References
----------
ANSI C12.20-2015, accuracy classes 0.1, 0.2 and 0.5 (error limit in % of reading). FERC Order No. 2222
(172 FERC ¶ 61,247, 2020), 18 CFR 35.28(g)(12): metering and telemetry requirements of distributed energy
resource aggregations. The required class (0.2 by default) and the settlement interval (5 min by default) are
the market's own: the register's ``[aggregation]`` sets them.
"""

from __future__ import annotations

import math

from v2gtwin.compliance.findings import Finding, Rule, Status
from v2gtwin.compliance.meters import calc_sum_error_bound_pct
from v2gtwin.compliance.register import Meter, MeterSum, Register

__all__ = ["RULES", "calc_meter_sum", "class_pct", "settlement_ok"]

_C1220 = "ANSI C12.20-2015 accuracy classes; the market's revenue metering rules"
_FERC = "FERC Order No. 2222, 18 CFR 35.28(g)(12): metering and telemetry requirements"


def class_pct(accuracy_class: str) -> float | None:
    """The error limit of an accuracy class [% of reading]; None for 'none' (no declared accuracy)."""
    return None if accuracy_class == "none" else float(accuracy_class)


def _settlement_meters(reg: Register) -> list[Meter]:
    """Meters that settle inverters: those that cover some, and the members of meter sums that cover some."""
    in_sums = {mid for s in reg.meter_sums if s.covers for mid in s.meters}
    return [m for m in reg.meters if m.covers or m.id in in_sums]


def _class_ok(m: Meter, required: str) -> bool:
    c = class_pct(m.accuracy_class)
    return c is not None and c <= float(required) + 1e-12


def _interval_ok(m: Meter, settlement_min: float) -> bool:
    return m.interval_min <= settlement_min + 1e-9


def _whole_intervals(settlement_min: float, interval_min: float) -> bool:
    """Whether the settlement interval is a whole number of meter intervals (to a relative 1e-9: 5 / 0.1 = 50
    although the float ``5 % 0.1`` is 0.0999...)."""
    ratio = settlement_min / interval_min
    return abs(ratio - round(ratio)) <= 1e-9 * max(ratio, 1.0)


def _meter_checks(reg: Register) -> dict[str, dict[str, bool]]:
    """Per settlement meter, whether each metering requirement holds."""
    agg = reg.aggregation
    return {
        m.id: {
            "METER-CLASS": _class_ok(m, agg.required_accuracy_class),
            "METER-REVENUE": m.revenue_grade,
            "METER-DEDICATED": m.dedicated,
            "METER-DIRECTIONAL": m.directional,
            "METER-INTERVAL": _interval_ok(m, agg.settlement_interval_min),
        }
        for m in _settlement_meters(reg)
    }


def calc_meter_sum(reg: Register, s: MeterSum) -> dict[str, object]:
    """The worst-case error bound of a meter sum and what it rests on (JSON-ready: an unbounded error is None
    with ``unbounded`` true).

    Returns
    -------
    dict
        ``id``, ``meters``, ``class_pct`` [%], ``e_import_kwh`` and ``e_export_kwh`` per meter [kWh], ``net_kwh``
        [kWh], ``bound_pct`` [% of the net energy] (None when not assessable or unbounded), ``unbounded``,
        ``limit_pct`` (the required class) [%], ``assessable`` and, when not assessable, ``reason``.
    """
    by_id = {m.id: m for m in reg.meters}
    meters = [by_id[i] for i in s.meters]
    classes = [class_pct(m.accuracy_class) for m in meters]
    flows = [m.e_import_export_kwh for m in meters]
    limit = float(reg.aggregation.required_accuracy_class)
    out: dict[str, object] = {
        "id": s.id,
        "meters": list(s.meters),
        "class_pct": classes,
        "e_import_kwh": [None if f is None else f[0] for f in flows],
        "e_export_kwh": [None if f is None else f[1] for f in flows],
        "limit_pct": limit,
    }
    not_assessed = {**out, "net_kwh": None, "bound_pct": None, "unbounded": False, "assessable": False}
    missing = [m.id for m, c, f in zip(meters, classes, flows, strict=True) if c is None or f is None]
    if missing:
        return {
            **not_assessed,
            "reason": f"no accuracy class or energy (e_kwh or e_import_kwh/e_export_kwh) for {', '.join(missing)}",
        }
    c_arr = [float(c) for c in classes if c is not None]
    imp = [f[0] for f in flows if f is not None]
    exp = [f[1] for f in flows if f is not None]
    bound = calc_sum_error_bound_pct(c_arr, imp, exp)
    if math.isnan(bound):
        return {**not_assessed, "reason": "no meter in the sum registered any energy: the relative error is undefined"}
    unbounded = math.isinf(bound)
    return {
        **out,
        "net_kwh": sum(imp) - sum(exp),
        "bound_pct": None if unbounded else bound,
        "unbounded": unbounded,
        "assessable": True,
    }


def _sum_members_failing(reg: Register, s: MeterSum, checks: dict[str, dict[str, bool]]) -> list[str]:
    """``meter (RULE, RULE)`` for each member of the sum that fails a METER-* check."""
    return [
        f"{mid} ({', '.join(r for r, ok in checks[mid].items() if not ok)})"
        for mid in s.meters
        if mid in checks and not all(checks[mid].values())
    ]


def _sum_settles(reg: Register, s: MeterSum, checks: dict[str, dict[str, bool]]) -> bool:
    r = calc_meter_sum(reg, s)
    bound = r["bound_pct"]
    within = isinstance(bound, float) and bound <= float(reg.aggregation.required_accuracy_class) + 1e-12
    return within and not _sum_members_failing(reg, s, checks)


def settlement_ok(reg: Register) -> dict[str, bool]:
    """Per inverter, whether its energy is settled by a compliant meter (every check passes) or by a meter sum
    whose worst-case error stays within the required class and whose every meter passes every check."""
    checks = _meter_checks(reg)
    ok = {inv.id: False for inv in reg.inverters}
    for m in reg.meters:
        if m.covers and all(checks[m.id].values()):
            for c in m.covers:
                ok[c] = True
    for s in reg.meter_sums:
        if _sum_settles(reg, s, checks):
            for c in s.covers:
                ok[c] = True
    return ok


def _meter_rule(rule: str) -> Rule:
    def run(reg: Register) -> list[Finding]:
        agg = reg.aggregation
        checks = _meter_checks(reg)
        sums_of: dict[str, list[str]] = {}
        for s in reg.meter_sums:
            if s.covers:
                for mid in s.meters:
                    sums_of.setdefault(mid, []).append(f"meter sum {s.id}")
        out = []
        for m in _settlement_meters(reg):
            ok = checks[m.id][rule]
            evidence = {
                "METER-CLASS": f"class {m.accuracy_class} (required {agg.required_accuracy_class} or better)",
                "METER-REVENUE": "revenue-grade" if m.revenue_grade else "not revenue-grade",
                "METER-DEDICATED": "dedicated to the resources" if m.dedicated else "shared with other load",
                "METER-DIRECTIONAL": "registers import and export separately"
                if m.directional
                else "does not register import and export separately (V2G export is netted)",
                "METER-INTERVAL": f"interval {m.interval_min:g} min (settlement interval "
                f"{agg.settlement_interval_min:g} min)",
            }[rule]
            cite = _C1220 if rule == "METER-CLASS" else _FERC
            status: Status = "pass" if ok else "fail"
            if rule == "METER-INTERVAL" and ok and not _whole_intervals(agg.settlement_interval_min, m.interval_min):
                status = "warning"
                evidence += "; the settlement interval is not a whole number of meter intervals"
            # A meter that only feeds a sum is remedied by the sum's install_meter (METER-SUM), not by replacing it.
            action = None if ok or not m.covers else "replace_meter"
            if not m.covers:
                evidence += f" (summed in {', '.join(sums_of.get(m.id, []))})"
            out.append(Finding(rule, m.id, status, evidence, cite, True, action))
        return out

    return run


def _coverage(reg: Register) -> list[Finding]:
    checks = _meter_checks(reg)
    meters: dict[str, list[str]] = {inv.id: [] for inv in reg.inverters}
    sums: dict[str, list[tuple[str, bool]]] = {inv.id: [] for inv in reg.inverters}
    for m in reg.meters:
        for c in m.covers:
            meters[c].append(f"meter {m.id}")
    for s in reg.meter_sums:
        settles = _sum_settles(reg, s, checks)
        for c in s.covers:
            sums[c].append((s.id, settles))
    out = []
    for inv in reg.inverters:
        by = meters[inv.id] + [f"meter sum {sid}" for sid, good in sums[inv.id] if good]
        if by:
            out.append(
                Finding("METER-COVERAGE", inv.id, "pass", "settled by " + ", ".join(by), _FERC, True, None, inv.count)
            )
        elif sums[inv.id]:
            names = ", ".join(sid for sid, _ in sums[inv.id])
            out.append(
                Finding(
                    "METER-COVERAGE",
                    inv.id,
                    "fail",
                    f"covered only by meter sum {names}, which cannot settle it (see METER-SUM, whose remedy "
                    "installs the meter)",
                    _FERC,
                    True,
                    None,
                    inv.count,
                )
            )
        else:
            out.append(
                Finding("METER-COVERAGE", inv.id, "fail", "no meter covers it", _FERC, True, "install_meter", inv.count)
            )
    return out


def _sums(reg: Register) -> list[Finding]:
    cite = (
        "ANSI C12.20-2015 class limit; worst-case error of a sum: sum(c_i (import_i + export_i)) / |net| "
        "(triangle inequality)"
    )
    checks = _meter_checks(reg)
    out = []
    for s in reg.meter_sums:
        r = calc_meter_sum(reg, s)
        limit = r["limit_pct"]
        if not r["assessable"]:
            out.append(Finding("METER-SUM", s.id, "not-assessed", str(r["reason"]), cite))
            continue
        by_id = {m.id: m for m in reg.meters}
        terms = " + ".join(
            f"{class_pct(by_id[i].accuracy_class):g} % x {sum(by_id[i].e_import_export_kwh or (0.0, 0.0)):g} kWh"
            for i in s.meters
        )
        net = r["net_kwh"]
        bad_members = _sum_members_failing(reg, s, checks) if s.covers else []
        members = f"; meters failing a METER-* check: {'; '.join(bad_members)}" if bad_members else ""
        if r["unbounded"]:
            out.append(
                Finding(
                    "METER-SUM",
                    s.id,
                    "fail",
                    f"({terms}) / |{net:g} kWh|: net energy zero, error unbounded (limit {limit:g} %){members}",
                    cite,
                    True,
                    "install_meter",
                )
            )
            continue
        bound = r["bound_pct"]
        assert isinstance(bound, float) and isinstance(limit, float)
        ok = bound <= limit + 1e-12 and not bad_members
        out.append(
            Finding(
                "METER-SUM",
                s.id,
                "pass" if ok else "fail",
                f"worst-case error ({terms}) / |{net:g} kWh| = {bound:.3g} % of the summed energy (limit {limit:g} %)"
                + members,
                cite,
                True,
                None if ok else "install_meter",
            )
        )
    return out


#: The metering rules, by id.
RULES: dict[str, Rule] = {
    **{r: _meter_rule(r) for r in ("METER-CLASS", "METER-REVENUE", "METER-DEDICATED", "METER-DIRECTIONAL")},
    "METER-INTERVAL": _meter_rule("METER-INTERVAL"),
    "METER-COVERAGE": _coverage,
    "METER-SUM": _sums,
}
