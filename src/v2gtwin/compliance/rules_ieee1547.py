"""IEEE Std 1547-2018 / UL 1741 SB rules on the register's inverters.

Every range comes from the package's one IEEE 1547 table (:mod:`v2gtwin.ieee1547`), which the study's
simulations also take their defaults from. A setting outside a range end that two independent sources agree on
fails; outside a range end that only one source gives (``corroborated = false`` in the data), it is a warning and
the finding says the range end has one source. Corroborated means two secondary encodings agree, not checked
against the standard's text (which was not consulted).

References
----------
IEEE Std 1547-2018: clause 4.3 (performance categories), 5.3.3 and Table 8 (volt-var), 6.4.1 and Tables 11-13
(voltage trip), 6.4.2 (voltage ride-through), 6.5.1 (frequency trip), 6.5.2 (frequency ride-through), 6.5.2.7
(frequency droop). IEEE Std 1547.1-2020 (conformance tests); UL 1741, Supplement SB (certification to
IEEE 1547.1-2020).
"""

from __future__ import annotations

import functools

from v2gtwin.compliance.findings import Finding, Rule
from v2gtwin.compliance.register import Inverter, Register
from v2gtwin.ieee1547 import SettingRange, read_ieee1547

__all__ = ["RULES", "TRIP_ELEMENTS", "has_certification"]

#: Trip elements, each a threshold field and a clearing-time field of ``[inverters.trip]``.
TRIP_ELEMENTS: dict[str, tuple[str, str]] = {
    "OV2": ("ov2_pu", "ov2_s"),
    "OV1": ("ov1_pu", "ov1_s"),
    "UV1": ("uv1_pu", "uv1_s"),
    "UV2": ("uv2_pu", "uv2_s"),
    "OF2": ("of2_hz", "of2_s"),
    "OF1": ("of1_hz", "of1_s"),
    "UF1": ("uf1_hz", "uf1_s"),
    "UF2": ("uf2_hz", "uf2_s"),
}

_UNIT = {"_pu": "pu", "_hz": "Hz", "_s": "s", "_pct": "%"}

#: Register fields checked against another setting's range: the slowest droop response against the response range.
_SAME_RANGE_AS = {"t_response_max_s": "t_response_s"}


@functools.cache
def _unit(name: str) -> str:
    for suffix, unit in _UNIT.items():
        if name.endswith(suffix):
            return unit
    return ""


def _norm(cert: str) -> str:
    return "".join(ch for ch in cert.upper() if ch.isalnum() or ch == ".")


def has_certification(inv: Inverter, cert: str) -> bool:
    """Whether the inverter lists ``cert`` (compared without spaces, hyphens and case: 'UL 1741-SB' = 'ul1741sb')."""
    return _norm(cert) in {_norm(c) for c in inv.certifications}


def _check(rng: SettingRange, name: str, value: float, settings: dict[str, float | None]) -> tuple[str, bool] | None:
    """None when ``value`` is inside the range; else (what is wrong, whether the violated end is corroborated)."""
    lo = rng.min.resolve(settings)
    hi = rng.max.resolve(settings)
    unit = _unit(name)
    if lo is not None and value < lo - 1e-9:
        return f"{name} {value:g} {unit} below {_bound_text(rng.min.text(), lo)} {unit}", rng.min.corroborated
    if hi is not None and value > hi + 1e-9:
        return f"{name} {value:g} {unit} above {_bound_text(rng.max.text(), hi)} {unit}", rng.max.corroborated
    return None


def _bound_text(text: str, value: float) -> str:
    return f"{value:g}" if text == f"{value:g}" else f"{text} = {value:g}"


def _range_text(rng: SettingRange, name: str, settings: dict[str, float | None]) -> str:
    lo, hi = rng.min.resolve(settings), rng.max.resolve(settings)
    unit = _unit(name)
    lo_t = "-" if lo is None else f"{lo:g}"
    hi_t = "-" if hi is None else f"{hi:g}"
    flag = "" if rng.min.corroborated and rng.max.corroborated else " (range end from one source)"
    return f"{lo_t} to {hi_t} {unit}{flag}"


def _curve_finding(
    inv: Inverter, rule: str, function: str, category: str | None, settings: dict[str, float | None], what: str
) -> Finding:
    """Check every setting of a curve (volt-var, droop) against its range; one finding for the inverter."""
    table = read_ieee1547()
    problems: list[tuple[str, bool]] = []
    checked: list[str] = []
    cites: list[SettingRange] = []
    assert category is not None
    for name, value in settings.items():
        if value is None:
            continue
        rng = table.lookup(function, _SAME_RANGE_AS.get(name, name), category)
        if rng is None:
            continue
        cites.append(rng)
        bad = _check(rng, name, value, settings)
        if bad is not None:
            problems.append(bad)
        else:
            checked.append(name)
    cite = cites[0].citation() if cites else ""
    corroborated = all(r.corroborated for r in cites)
    if any(v for _, v in problems):
        return Finding(
            rule,
            inv.id,
            "fail",
            f"{what}, category {category}: " + "; ".join(p for p, v in problems if v),
            cite,
            True,
            "reconfigure_inverter",
            inv.count,
        )
    if problems:
        return Finding(
            rule,
            inv.id,
            "warning",
            f"{what}, category {category}: " + "; ".join(p for p, _ in problems) + " (outside a range "
            "end from one source: confirm against the standard)",
            cite,
            False,
            None,
            inv.count,
        )
    return Finding(
        rule,
        inv.id,
        "pass",
        f"{what}, category {category}: {', '.join(checked)} inside their ranges",
        cite,
        corroborated,
        None,
        inv.count,
    )


def _trip_rule(element: str) -> Rule:
    f_name, t_name = TRIP_ELEMENTS[element]
    rule = f"IEEE1547-TRIP-{element}"

    def run(reg: Register) -> list[Finding]:
        table = read_ieee1547()
        # An element whose ranges are the table's same entry for every abnormal category (the frequency trips, OV2)
        # is assessed without a declared category.
        any_cat = all(
            len({id(table.lookup("trip", n, c)) for c in ("I", "II", "III")}) == 1
            and table.lookup("trip", n, "I") is not None
            for n in (f_name, t_name)
        )
        out = []
        for inv in reg.inverters:
            declared = inv.abnormal_category
            cat = declared or ("I" if any_cat else None)
            rng_f = table.lookup("trip", f_name, cat) if cat else None
            clause = "6.4.1" if f_name.endswith("_pu") else "6.5.1"
            cite = rng_f.citation() if rng_f else f"IEEE Std 1547-2018 clause {clause}"
            if cat is None:
                out.append(
                    Finding(
                        rule,
                        inv.id,
                        "not-assessed",
                        "no abnormal operating performance category declared (see IEEE1547-CAT)",
                        cite,
                        True,
                        None,
                        inv.count,
                    )
                )
                continue
            trip = inv.trip
            value_f = getattr(trip, f_name) if trip else None
            value_t = getattr(trip, t_name) if trip else None
            if value_f is None and value_t is None:
                out.append(
                    Finding(rule, inv.id, "not-assessed", f"{element} not reported", cite, True, None, inv.count)
                )
                continue
            settings = {f_name: value_f, t_name: value_t}
            problems: list[tuple[str, bool]] = []
            parts: list[str] = []
            corroborated = True
            for name, value in settings.items():
                rng = table.lookup("trip", name, cat)
                if rng is None or value is None:
                    parts.append(f"{name} not reported")
                    continue
                corroborated = corroborated and rng.corroborated
                bad = _check(rng, name, value, settings)
                if bad is not None:
                    problems.append(bad)
                parts.append(f"{name} {value:g} {_unit(name)} (allowed {_range_text(rng, name, settings)})")
            head = f"category {cat}" if declared else "no category declared; the same range for Categories I-III"
            evidence = f"{head}: " + "; ".join(parts)
            if any(v for _, v in problems):
                out.append(Finding(rule, inv.id, "fail", evidence, cite, True, "reconfigure_inverter", inv.count))
            elif problems:
                out.append(
                    Finding(
                        rule,
                        inv.id,
                        "warning",
                        evidence + " - outside a range end from one source: confirm against the standard",
                        cite,
                        False,
                        None,
                        inv.count,
                    )
                )
            elif value_f is None or value_t is None:
                out.append(Finding(rule, inv.id, "not-assessed", evidence, cite, corroborated, None, inv.count))
            else:
                out.append(Finding(rule, inv.id, "pass", evidence, cite, corroborated, None, inv.count))
        return out

    return run


def _categories(reg: Register) -> list[Finding]:
    out = []
    for inv in reg.inverters:
        missing = [f for f in ("normal_category", "abnormal_category") if getattr(inv, f) is None]
        cite = "IEEE Std 1547-2018 clause 4.3 (normal performance categories A/B, abnormal I/II/III)"
        if missing:
            out.append(
                Finding(
                    "IEEE1547-CAT",
                    inv.id,
                    "fail",
                    f"{' and '.join(missing)} not declared",
                    cite,
                    True,
                    "certify_inverter",
                    inv.count,
                )
            )
        else:
            out.append(
                Finding(
                    "IEEE1547-CAT",
                    inv.id,
                    "pass",
                    f"normal category {inv.normal_category}, abnormal category {inv.abnormal_category}",
                    cite,
                    True,
                    None,
                    inv.count,
                )
            )
    return out


def _certification(reg: Register) -> list[Finding]:
    out = []
    cite = "UL 1741 Supplement SB (certification to IEEE Std 1547.1-2020, the conformance tests of IEEE 1547-2018)"
    for inv in reg.inverters:
        listed = ", ".join(inv.certifications) or "none"
        if has_certification(inv, "UL 1741 SB"):
            out.append(
                Finding("UL1741SB-CERT", inv.id, "pass", f"certifications: {listed}", cite, True, None, inv.count)
            )
        elif has_certification(inv, "IEEE 1547.1-2020"):
            out.append(
                Finding(
                    "UL1741SB-CERT",
                    inv.id,
                    "warning",
                    f"certifications: {listed}; IEEE 1547.1-2020 conformance claimed without a UL 1741 SB listing",
                    cite,
                    True,
                    None,
                    inv.count,
                )
            )
        else:
            why = (
                "; UL 1741 SA tests to IEEE 1547.1-2005 and utility source requirements, not IEEE 1547-2018"
                if has_certification(inv, "UL 1741 SA")
                else ""
            )
            out.append(
                Finding(
                    "UL1741SB-CERT",
                    inv.id,
                    "fail",
                    f"certifications: {listed}; no UL 1741 SB{why}",
                    cite,
                    True,
                    "certify_inverter",
                    inv.count,
                )
            )
    return out


def _ride_through(reg: Register) -> list[Finding]:
    out = []
    cite = (
        "IEEE Std 1547-2018 clauses 6.4.2 (voltage) and 6.5.2 (frequency ride-through), tested by IEEE 1547.1-2020 "
        "(breakpoint tables not encoded)"
    )
    for inv in reg.inverters:
        if inv.abnormal_category is None:
            out.append(
                Finding(
                    "IEEE1547-RT",
                    inv.id,
                    "not-assessed",
                    "no abnormal operating performance category declared",
                    cite,
                    False,
                    None,
                    inv.count,
                )
            )
        elif has_certification(inv, "UL 1741 SB"):
            out.append(
                Finding(
                    "IEEE1547-RT",
                    inv.id,
                    "pass",
                    f"category {inv.abnormal_category} ride-through type-tested under the UL 1741 SB listing",
                    cite,
                    False,
                    None,
                    inv.count,
                )
            )
        else:
            out.append(
                Finding(
                    "IEEE1547-RT",
                    inv.id,
                    "warning",
                    f"category {inv.abnormal_category} declared but its "
                    "ride-through is not demonstrated by a UL 1741 SB listing",
                    cite,
                    False,
                    None,
                    inv.count,
                )
            )
    return out


def _volt_var(reg: Register) -> list[Finding]:
    out = []
    cite = "IEEE Std 1547-2018 clause 5.3.3, Table 8"
    for inv in reg.inverters:
        vv = inv.volt_var
        if inv.normal_category is None:
            out.append(
                Finding(
                    "IEEE1547-VV",
                    inv.id,
                    "not-assessed",
                    "no normal operating performance category declared",
                    cite,
                    True,
                    None,
                    inv.count,
                )
            )
        elif vv is None:
            out.append(
                Finding(
                    "IEEE1547-VV", inv.id, "not-assessed", "volt-var settings not reported", cite, True, None, inv.count
                )
            )
        elif not vv.enabled:
            out.append(
                Finding(
                    "IEEE1547-VV",
                    inv.id,
                    "not-assessed",
                    "volt-var disabled (the utility selects the reactive power mode, clause 5.3.1)",
                    cite,
                    True,
                    None,
                    inv.count,
                )
            )
        else:
            settings = vv.model_dump(exclude={"enabled"})
            out.append(_curve_finding(inv, "IEEE1547-VV", "volt_var", inv.normal_category, settings, "volt-var"))
    return out


def _freq_droop(reg: Register) -> list[Finding]:
    out = []
    cite = "IEEE Std 1547-2018 clause 6.5.2.7"
    for inv in reg.inverters:
        fd = inv.freq_droop
        if inv.abnormal_category is None:
            out.append(
                Finding(
                    "IEEE1547-FD",
                    inv.id,
                    "not-assessed",
                    "no abnormal operating performance category declared",
                    cite,
                    True,
                    None,
                    inv.count,
                )
            )
        elif fd is None:
            out.append(
                Finding(
                    "IEEE1547-FD",
                    inv.id,
                    "not-assessed",
                    "frequency droop settings not reported",
                    cite,
                    True,
                    None,
                    inv.count,
                )
            )
        else:
            out.append(
                _curve_finding(
                    inv, "IEEE1547-FD", "freq_droop", inv.abnormal_category, fd.model_dump(), "frequency droop"
                )
            )
    return out


#: The IEEE 1547-2018 / UL 1741 SB rules, by id.
RULES: dict[str, Rule] = {
    "IEEE1547-CAT": _categories,
    "UL1741SB-CERT": _certification,
    **{f"IEEE1547-TRIP-{e}": _trip_rule(e) for e in TRIP_ELEMENTS},
    "IEEE1547-RT": _ride_through,
    "IEEE1547-VV": _volt_var,
    "IEEE1547-FD": _freq_droop,
}
