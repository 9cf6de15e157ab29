"""FERC Order No. 2222 rules on the aggregation: minimum size, no double counting of a resource's service in a
retail programme and the wholesale market, the distribution utility's review, metering and telemetry.

References
----------
FERC Order No. 2222, *Participation of Distributed Energy Resource Aggregations in Markets Operated by Regional
Transmission Organizations and Independent System Operators*, 172 FERC ¶ 61,247 (2020), 85 Fed. Reg. 67094;
18 CFR 35.28(g)(12): minimum size requirement not exceeding 100 kW; restrictions narrowly designed to avoid
counting a resource's services more than once; coordination with the distribution utility (its review of the
resources in the aggregation); metering and telemetry requirements. The sub-paragraph of each requirement was not
verified against the regulation's text: the citation names the section only.
"""

from __future__ import annotations

from v2gtwin.compliance.findings import Finding, Rule, Status
from v2gtwin.compliance.register import Register
from v2gtwin.compliance.rules_metering import settlement_ok

__all__ = ["ORDER_2222_MAX_MIN_SIZE_KW", "RULES"]

#: The largest minimum aggregation size an RTO/ISO may set under Order No. 2222 [kW].
ORDER_2222_MAX_MIN_SIZE_KW = 100.0

_CITE = "FERC Order No. 2222 (172 FERC ¶ 61,247, 2020), 18 CFR 35.28(g)(12)"
_AGG = "aggregation"
_REVIEW_STATUS: dict[str, Status] = {"approved": "pass", "pending": "warning", "not_filed": "fail"}


def _size(reg: Register) -> list[Finding]:
    agg = reg.aggregation
    size = reg.total_size_kw
    rated = reg.rated_size_kw
    if agg.total_size_kw is not None:
        evidence = f"size {size:g} kW (declared; the inverters' ratings sum to {rated:g} kW)"
    else:
        evidence = f"size {size:g} kW (sum of inverter ratings)"
    evidence += f"; market minimum {agg.min_size_kw:g} kW"
    if agg.min_size_kw > ORDER_2222_MAX_MIN_SIZE_KW:
        evidence += f" (above the {ORDER_2222_MAX_MIN_SIZE_KW:g} kW cap of Order No. 2222)"
    cite = _CITE + ": minimum size requirement (at most 100 kW)"
    if size < agg.min_size_kw:
        return [Finding("FERC2222-SIZE", _AGG, "fail", evidence, cite, True, "grow_aggregation")]
    if agg.total_size_kw is not None and agg.total_size_kw > rated + 1e-9:
        evidence += "; the declared size exceeds the inverters in the register: list them all, or correct it"
        return [Finding("FERC2222-SIZE", _AGG, "warning", evidence, cite)]
    return [Finding("FERC2222-SIZE", _AGG, "pass", evidence, cite)]


def _double_counting(reg: Register) -> list[Finding]:
    cite = _CITE + ": no double counting of a resource's services in retail programmes and the wholesale market"
    agg_services = set(reg.aggregation.services)
    counts = {inv.id: inv.count for inv in reg.inverters}
    if reg.retail_enrolments and not agg_services:
        return [
            Finding(
                "FERC2222-DOUBLE",
                _AGG,
                "not-assessed",
                "resources are enrolled in retail programmes but [aggregation] services lists no wholesale service",
                cite,
            )
        ]
    out = []
    for e in reg.retail_enrolments:
        for r in e.resources:
            overlap = sorted(agg_services & set(e.services))
            if overlap:
                out.append(
                    Finding(
                        "FERC2222-DOUBLE",
                        r,
                        "fail",
                        f"enrolled in retail programme '{e.program}' for "
                        f"{', '.join(overlap)}, also offered to the wholesale market",
                        cite,
                        True,
                        "withdraw_retail",
                        counts[r],
                    )
                )
            else:
                out.append(
                    Finding(
                        "FERC2222-DOUBLE",
                        r,
                        "warning",
                        f"enrolled in retail programme '{e.program}' for "
                        f"{', '.join(e.services) or 'unstated services'}, none offered to the wholesale market; "
                        "the RTO/ISO may still restrict it",
                        cite,
                        True,
                        None,
                        counts[r],
                    )
                )
    if not out:
        out.append(Finding("FERC2222-DOUBLE", _AGG, "pass", "no resource enrolled in a retail programme", cite))
    return out


def _review(reg: Register) -> list[Finding]:
    cite = _CITE + ": coordination with the distribution utility (review of the aggregation's resources)"
    status = reg.aggregation.distribution_review
    if status is None:
        return [
            Finding(
                "FERC2222-REVIEW", _AGG, "not-assessed", "distribution utility review not stated in the register", cite
            )
        ]
    result: Status = _REVIEW_STATUS[status]
    return [
        Finding(
            "FERC2222-REVIEW",
            _AGG,
            result,
            f"distribution utility review: {status.replace('_', ' ')}",
            cite,
            True,
            "file_utility_review" if result == "fail" else None,
        )
    ]


def _metering(reg: Register) -> list[Finding]:
    cite = _CITE + ": metering requirements (see the METER-* findings)"
    ok = settlement_ok(reg)
    bad = [i for i, good in ok.items() if not good]
    if not reg.inverters:
        return [Finding("FERC2222-METER", _AGG, "not-assessed", "no inverters in the register", cite)]
    if bad:
        return [
            Finding(
                "FERC2222-METER",
                _AGG,
                "fail",
                f"{len(bad)} of {len(ok)} inverter entries not settled by a compliant meter: {', '.join(bad)}",
                cite,
                True,
                None,
            )
        ]
    return [
        Finding("FERC2222-METER", _AGG, "pass", f"all {len(ok)} inverter entries settled by compliant meters", cite)
    ]


def _telemetry(reg: Register) -> list[Finding]:
    cite = _CITE + ": telemetry requirements"
    t = reg.aggregation.telemetry
    if t is None:
        return [Finding("FERC2222-TELEMETRY", _AGG, "not-assessed", "telemetry not stated in the register", cite)]
    if t:
        return [Finding("FERC2222-TELEMETRY", _AGG, "pass", "real-time telemetry to the market operator", cite)]
    return [
        Finding(
            "FERC2222-TELEMETRY",
            _AGG,
            "fail",
            "no real-time telemetry to the market operator",
            cite,
            True,
            "add_telemetry",
        )
    ]


#: The FERC Order No. 2222 rules, by id.
RULES: dict[str, Rule] = {
    "FERC2222-SIZE": _size,
    "FERC2222-DOUBLE": _double_counting,
    "FERC2222-REVIEW": _review,
    "FERC2222-METER": _metering,
    "FERC2222-TELEMETRY": _telemetry,
}
