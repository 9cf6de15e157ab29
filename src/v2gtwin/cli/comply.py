"""`v2gtwin comply REGISTER`: the compliance audit of an asset register (IEEE 1547-2018 / UL 1741 SB, ANSI C12.20
metering, FERC Order No. 2222): the findings table and the remediation plan.

Exit status: 0 when no rule fails, 1 when any rule fails (warnings and not-assessed findings do not fail the
audit), 2 on bad input (one line naming the asset and field) - so the command can gate a CI job.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from v2gtwin.cli._common import JsonOpt, _print_json, app, format_number
from v2gtwin.errors import V2GTwinError

if TYPE_CHECKING:
    from v2gtwin.compliance.audit import AuditResult

__all__ = ["comply", "print_audit", "print_sources"]

_STATUS_LABEL = {"fail": "FAIL", "warning": "WARN", "not-assessed": "N/A", "pass": "pass"}


def print_sources(field_sources: dict[str, dict[str, str]]) -> None:
    """Per inverter of a register built with --from-csms, which fields came from the central system."""
    sys.stdout.write("\nfield sources (--from-csms):\n")
    for inv, fields in field_sources.items():
        by: dict[str, list[str]] = {}
        for name, src in fields.items():
            by.setdefault(src, []).append(name)
        parts = [
            f"{src} {len(names)} ({', '.join(names[:6])}{', ...' if len(names) > 6 else ''})"
            for src, names in by.items()
        ]
        sys.stdout.write(f"  {inv}: {'; '.join(parts)}\n")


def print_audit(result: AuditResult) -> None:
    """The audit as text: counts, the findings table (failures first), the remediation plan and the notes."""
    from v2gtwin.compliance.findings import SOURCE_NOTE, STATUSES

    d = result.to_dict()
    w = sys.stdout.write
    title = " - ".join(x for x in (result.name, result.market) if x) or "asset register"
    w(f"Compliance audit: {title}\n")
    w("findings: " + ", ".join(f"{d['counts'][s]} {s}" for s in STATUSES) + "\n\n")
    rows = sorted(result.findings, key=lambda f: STATUSES.index(f.status))
    rule_w = max((len(f.rule) for f in rows), default=4)
    asset_w = max((len(f.asset) for f in rows), default=5)
    w(f"{'status':<6}  {'rule':<{rule_w}}  {'asset':<{asset_w}}  evidence  [citation]\n")
    for f in rows:
        star = "" if f.corroborated else " *"
        head = f"{_STATUS_LABEL[f.status]:<6}  {f.rule:<{rule_w}}  {f.asset:<{asset_w}}"
        w(f"{head}  {f.evidence}  [{f.citation}]{star}\n")
    if any(not f.corroborated for f in rows):
        w("* rests on a value only one (secondary) source gives: confirm against the standard\n")
    w(f"{SOURCE_NOTE}\n")
    rem = d["remediation"]
    w(f"\nremediation plan ({rem['currency']}):\n")
    if not rem["actions"]:
        w("  nothing to remediate\n")
    for a in rem["actions"]:
        cost = "-" if a["cost"] is None else format_number(a["cost"])
        assets = ", ".join(i["asset"] for i in rem["items"] if i["action"] == a["action"])
        w(f"  {a['action']:<22} {a['n_assets']} asset(s), {a['units']} unit(s), cost {cost}: {assets}\n")
        w(f"  {'':<22} {a['description']}\n")
    if rem["actions"]:
        missing = rem["actions_without_cost"]
        tail = f" (no cost given for {', '.join(missing)})" if missing else ""
        if rem["total_cost"] is None:
            w("  total cost: no costs given\n")
        else:
            w(f"  total cost {format_number(rem['total_cost'])} {rem['currency']}{tail}\n")
    for note in result.notes:
        w(f"\nnote: {note}\n")
    w(f"\nresult: {'PASS' if result.passed else 'FAIL'} (exit status {result.exit_code})\n")


@app.command("comply")
def comply(
    register: Annotated[
        Path | None, typer.Argument(help="Asset register TOML file (inverters and meters may be CSV).")
    ] = None,
    market_interval_min: Annotated[
        float | None,
        typer.Option("--market-interval-min", help="Market settlement interval [min] (default: the register's, 5)."),
    ] = None,
    min_size_kw: Annotated[
        float | None,
        typer.Option("--min-size-kw", help="Market's minimum aggregation size [kW] (default: the register's, 100)."),
    ] = None,
    required_class: Annotated[
        str | None,
        typer.Option("--required-class", help="ANSI C12.20 class required of settlement meters: 0.1, 0.2 or 0.5."),
    ] = None,
    family: Annotated[
        list[str] | None,
        typer.Option("--family", help="Rule family to run: ieee1547, metering, ferc2222 (repeat; default: all)."),
    ] = None,
    from_csms: Annotated[
        str | None,
        typer.Option(
            "--from-csms",
            metavar="DB_URL",
            help="Build the chargers from the central system's store at this SQLAlchemy URL (what the stations "
            "reported: BootNotification, device model, OCPP 2.1 DER controls); REGISTER gives the rest.",
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Audit an asset register against IEEE 1547-2018 / UL 1741 SB, ANSI C12.20 metering and FERC Order No. 2222:
    findings (rule, asset, status, evidence, citation) and a remediation plan. Exit status 1 when any rule fails,
    2 on bad input. With --from-csms, the chargers come from what the central system's stations reported (the
    register file, optional then, gives the rest; every field says its source)."""
    from v2gtwin.compliance.audit import run_audit
    from v2gtwin.compliance.register import load_register, with_aggregation

    deployed = None
    if from_csms is not None:
        from v2gtwin.compliance.from_csms import register_from_csms

        deployed = register_from_csms(from_csms, register)
        reg = deployed.register
    elif register is None:
        raise V2GTwinError("REGISTER: give an asset register file, or --from-csms DB_URL (or both)")
    else:
        reg = load_register(register)
    reg = with_aggregation(
        reg,
        "command line",
        settlement_interval_min=market_interval_min,
        min_size_kw=min_size_kw,
        required_accuracy_class=required_class,
    )
    result = run_audit(reg, tuple(family) if family else None, notes=deployed.notes if deployed else ())
    if json_out:
        _print_json(result.to_dict() | ({"from_csms": deployed.to_dict()} if deployed else {}))
    else:
        print_audit(result)
        if deployed is not None:
            print_sources(deployed.field_sources)
    if not result.passed:
        raise typer.Exit(1)
