"""The compliance audit: every rule of every standard applied to an asset register, the findings, their counts
and a remediation plan (one action per failing asset, grouped by action, with units and optional costs).

``run_audit(register)`` is pure: the register in, an :class:`AuditResult` out; ``AuditResult.to_dict()`` is the
JSON both ``v2gtwin comply --json`` and the study's ``results.json`` print.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from v2gtwin.compliance import rules_ferc2222, rules_ieee1547, rules_metering
from v2gtwin.compliance.findings import ACTIONS, SOURCE_NOTE, STATUSES, Finding, Rule, Status
from v2gtwin.compliance.register import Register
from v2gtwin.compliance.rules_metering import calc_meter_sum
from v2gtwin.errors import ScenarioError

__all__ = ["RULE_FAMILIES", "AuditResult", "RemediationItem", "run_audit"]

#: The rule families (one per standard) and their rules, by id, in the order outputs list them.
RULE_FAMILIES: dict[str, dict[str, Rule]] = {
    "ieee1547": rules_ieee1547.RULES,
    "metering": rules_metering.RULES,
    "ferc2222": rules_ferc2222.RULES,
}


@dataclass(frozen=True)
class RemediationItem:
    """One remediation action on one asset.

    Attributes
    ----------
    action : key of :data:`~v2gtwin.compliance.findings.ACTIONS`.
    asset : the asset acted on.
    rules : ids of the failing rules that call for it.
    units : units acted on (an inverter entry's ``count``) [-].
    cost : units x the register's cost per unit of the action [currency]; None when the register gives no cost.
    """

    action: str
    asset: str
    rules: tuple[str, ...]
    units: int
    cost: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "asset": self.asset,
            "rules": list(self.rules),
            "units": self.units,
            "cost": self.cost,
        }


@dataclass(frozen=True)
class AuditResult:
    """Findings of an audit and the remediation plan.

    Attributes
    ----------
    name, market : the aggregation's name and market.
    currency : currency of every cost.
    findings : every finding, by rule family and rule, then asset.
    remediation : one item per (action, asset).
    meter_sums : the worst-case error of each meter sum (see :func:`~v2gtwin.compliance.rules_metering.calc_meter_sum`).
    families : the rule families run.
    notes : sentences the outputs print under the findings (e.g. why the study's legacy group fails).
    """

    name: str
    market: str
    currency: str
    findings: tuple[Finding, ...]
    remediation: tuple[RemediationItem, ...]
    meter_sums: tuple[dict[str, Any], ...]
    families: tuple[str, ...]
    notes: tuple[str, ...] = field(default=())

    def to_frames(self) -> dict[str, Any]:
        """``compliance_findings`` as a pandas DataFrame: :func:`v2gtwin.tables.other.compliance_frames`."""
        from v2gtwin.tables.other import compliance_frames

        return compliance_frames(self)

    @property
    def counts(self) -> dict[str, int]:
        """Findings per status (fail, warning, not-assessed, pass)."""
        return {s: sum(f.status == s for f in self.findings) for s in STATUSES}

    @property
    def passed(self) -> bool:
        """No finding failed (warnings and not-assessed do not fail the audit)."""
        return not any(f.status == "fail" for f in self.findings)

    @property
    def exit_code(self) -> int:
        """0 when nothing failed, 1 otherwise (``v2gtwin comply``'s exit status)."""
        return 0 if self.passed else 1

    def remediation_summary(self) -> list[dict[str, Any]]:
        """Per action: what it is, how many assets and units, and the total cost (None when the register gives no
        cost for the action; ``to_dict`` then lists it in ``actions_without_cost``, outside ``total_cost``, which
        is None when no action has a cost)."""
        out = []
        for action, text in ACTIONS.items():
            items = [r for r in self.remediation if r.action == action]
            if not items:
                continue
            costs = [r.cost for r in items]
            out.append(
                {
                    "action": action,
                    "description": text,
                    "n_assets": len(items),
                    "units": sum(r.units for r in items),
                    "cost": None if any(c is None for c in costs) else float(sum(c for c in costs if c is not None)),
                }
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready result (``comply --json`` and the ``compliance`` key of results.json)."""
        summary = self.remediation_summary()
        costs = [s["cost"] for s in summary if s["cost"] is not None]
        return {
            "name": self.name,
            "market": self.market,
            "families": list(self.families),
            "passed": self.passed,
            "counts": self.counts,
            "source_note": SOURCE_NOTE,
            "primary_source_checked": False,
            "findings": [f.to_dict() for f in self.findings],
            "remediation": {
                "currency": self.currency,
                "actions": summary,
                "items": [r.to_dict() for r in self.remediation],
                "total_cost": float(sum(costs)) if costs else None,
                "actions_without_cost": [s["action"] for s in summary if s["cost"] is None],
            },
            "meter_sums": list(self.meter_sums),
            "notes": list(self.notes),
        }


def _plan(findings: list[Finding], reg: Register) -> tuple[RemediationItem, ...]:
    costs = reg.remediation_costs
    groups: dict[tuple[str, str], list[Finding]] = {}
    for f in findings:
        if f.status == "fail" and f.action is not None:
            groups.setdefault((f.action, f.asset), []).append(f)
    items = []
    for (action, asset), fs in groups.items():
        units = max(f.units for f in fs)
        per_unit = getattr(costs, action, None)
        items.append(
            RemediationItem(
                action=action,
                asset=asset,
                rules=tuple(dict.fromkeys(f.rule for f in fs)),
                units=units,
                cost=None if per_unit is None else float(per_unit) * units,
            )
        )
    order = list(ACTIONS)
    return tuple(sorted(items, key=lambda r: (order.index(r.action), r.asset)))


def run_audit(register: Register, families: tuple[str, ...] | None = None, notes: tuple[str, ...] = ()) -> AuditResult:
    """Apply every rule of ``families`` (default: all of :data:`RULE_FAMILIES`) to ``register``.

    Raises
    ------
    ScenarioError
        An unknown rule family (the message lists the known ones).
    """
    chosen = tuple(RULE_FAMILIES) if families is None else tuple(dict.fromkeys(families))  # each family once
    unknown = [f for f in chosen if f not in RULE_FAMILIES]
    if unknown:
        raise ScenarioError(f"compliance: unknown rule family '{unknown[0]}'; allowed: {', '.join(RULE_FAMILIES)}")
    findings: list[Finding] = []
    for fam in chosen:
        for rule in RULE_FAMILIES[fam].values():
            findings.extend(rule(register))
    sums = tuple(calc_meter_sum(register, s) for s in register.meter_sums) if "metering" in chosen else ()
    return AuditResult(
        name=register.aggregation.name,
        market=register.aggregation.market,
        currency=register.currency,
        findings=tuple(findings),
        remediation=_plan(findings, register),
        meter_sums=sums,
        families=chosen,
        notes=notes,
    )


def status_of(findings: tuple[Finding, ...], rule: str, asset: str) -> Status | None:
    """The status of ``rule`` on ``asset`` (None when the audit has no such finding)."""
    for f in findings:
        if f.rule == rule and f.asset == asset:
            return f.status
    return None
