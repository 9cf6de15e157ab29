"""One finding of the compliance audit (a rule applied to an asset) and the remediation actions a failing finding
calls for. Shared by the rule modules (``rules_*.py``) and :mod:`v2gtwin.compliance.audit`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from v2gtwin.compliance.register import Register

__all__ = ["ACTIONS", "SOURCE_NOTE", "STATUSES", "Finding", "Rule", "Status"]

#: What the findings' reference values rest on, said once in every output (text, HTML, JSON ``source_note``).
SOURCE_NOTE = (
    "No reference value was checked against the standards' own texts (IEEE 1547-2018, IEEE 1547.1-2020, "
    "UL 1741 SB, ANSI C12.20, FERC Order No. 2222 were not consulted): the IEEE 1547 values come from open-source "
    "encodings of its tables; 'corroborated' means two of them agree, '*' that one rests on a single source."
)

Status = Literal["pass", "fail", "warning", "not-assessed"]
#: Every status, in the order outputs list them.
STATUSES: tuple[Status, ...] = ("fail", "warning", "not-assessed", "pass")

#: Remediation actions (keys of the register's ``[remediation_costs]``) and what each means.
ACTIONS: dict[str, str] = {
    "replace_meter": "replace the meter with a dedicated, directional, revenue-grade ANSI C12.20 interval meter "
    "of the required class",
    "install_meter": "install a dedicated revenue-grade meter (a sum of other meters cannot stand in for it)",
    "certify_inverter": "certify the inverter to UL 1741 SB (IEEE 1547.1-2020) and declare its categories",
    "reconfigure_inverter": "reconfigure the inverter's settings into the IEEE 1547-2018 ranges",
    "file_utility_review": "file the aggregation for the distribution utility's review",
    "withdraw_retail": "withdraw the resource from the retail programme (or the overlapping wholesale service)",
    "add_telemetry": "put real-time telemetry to the market operator in place",
    "grow_aggregation": "add resources until the aggregation reaches the market's minimum size",
}


@dataclass(frozen=True)
class Finding:
    """A rule applied to one asset.

    Attributes
    ----------
    rule : rule id, e.g. ``IEEE1547-TRIP-UF2``.
    asset : id of the asset (inverter, meter, meter sum) or ``aggregation``.
    status : pass, fail, warning or not-assessed.
    evidence : the value found and the allowed range, in words.
    citation : the clause or table the rule comes from.
    corroborated : every reference value used is given alike by two independent secondary sources (open-source
        encodings of the standard's tables); False when one rests on a single source. Not a check against the
        standard's own text: no finding is primary-verified (see :data:`SOURCE_NOTE`).
    action : remediation action (a key of :data:`ACTIONS`) when the finding fails, else None.
    units : identical units the finding covers (an inverter entry's ``count``; 1 otherwise) [-].
    """

    rule: str
    asset: str
    status: Status
    evidence: str
    citation: str
    corroborated: bool = True
    action: str | None = None
    units: int = 1

    def to_dict(self) -> dict[str, object]:
        """The finding as a JSON-ready dict (the keys of ``findings`` in ``comply --json``)."""
        return {
            "rule": self.rule,
            "asset": self.asset,
            "status": self.status,
            "evidence": self.evidence,
            "citation": self.citation,
            "corroborated": self.corroborated,
            "action": self.action,
            "units": self.units,
        }


#: A rule: the register (with the audit's options applied) -> its findings.
Rule = Callable[[Register], list[Finding]]
