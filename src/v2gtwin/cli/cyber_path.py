"""`v2gtwin cyber path`: the command path's latency distribution, reliability and retries against the grid
services' deadlines (the study's ``cyber_path`` step)."""

from __future__ import annotations

import dataclasses
import sys
from typing import Annotated, Any

import typer

from v2gtwin.cli._common import JsonOpt, ScenarioOpt, _emit, _print_json, format_number, load_scenario_with
from v2gtwin.cli.cyber import cyber_app


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "YES" if v else "no"
    return format_number(float(v))


@cyber_app.command("path")
def path(
    scenario: ScenarioOpt = None,
    json_out: JsonOpt = False,
    variant: Annotated[
        str | None, typer.Option("--path", help="Default path: lte, nbiot or wired (scenario: cyber.path).")
    ] = None,
    retry_timeout_s: Annotated[
        float | None, typer.Option("--retry-timeout-s", help="Wait for an acknowledgement before a retry [s].")
    ] = None,
    retry_max_attempts: Annotated[
        int | None, typer.Option("--retry-max-attempts", help="Attempts at most, the first included [-].")
    ] = None,
    deadline_miss_max: Annotated[
        float | None, typer.Option("--deadline-miss-max", help="Flag a service missed more often than this [-].")
    ] = None,
    measure: Annotated[
        bool,
        typer.Option(
            "--measure",
            help="Measure the csms->charger segment (real OCPP round trips through a shaping proxy, ~45 s) "
            "and use it in place of the default link.",
        ),
    ] = False,
    measure_delay_ms: Annotated[
        float | None,
        typer.Option(
            "--measure-delay-ms", help="With --measure: one-way link delay of the segment, in [0, 10000] ms (50)."
        ),
    ] = None,
    measure_loss: Annotated[
        float | None,
        typer.Option("--measure-loss", help="With --measure: loss per transmission, in [0, 0.25) [-] (0.01)."),
    ] = None,
    measure_netns: Annotated[
        bool,
        typer.Option("--measure-netns", help="With --measure: across a veth pair between two network namespaces."),
    ] = False,
) -> None:
    """Command path central system -> link -> charger -> ISO 15118 -> EV: latency (convolution and Monte
    Carlo), reliability, retries, and the probability of missing each service's deadline."""
    from v2gtwin.cli.cyber_measure import check_measure_options
    from v2gtwin.cyber.path_study import run_path_study

    check_measure_options(measure, measure_delay_ms, measure_loss, measure_netns)
    given = {
        "path": variant,
        "retry_timeout_s": retry_timeout_s,
        "retry_max_attempts": retry_max_attempts,
        "deadline_miss_max": deadline_miss_max,
    }
    changes = {k: v for k, v in given.items() if v is not None}
    scen = load_scenario_with(scenario, {"cyber": changes} if changes else {})
    measured: dict[str, Any] | None = None
    if measure:  # the measured segment replaces the default link (see cli/cyber_measure.py)
        from v2gtwin.cli.cyber_measure import measure_segment
        from v2gtwin.cyber.path_defaults import build_default_path

        show = not json_out and sys.stderr.isatty()
        delay_ms = 50.0 if measure_delay_ms is None else measure_delay_ms
        seg, measured = measure_segment(
            delay_ms, 0.01 if measure_loss is None else measure_loss, show, netns=measure_netns
        )
        from v2gtwin.cyber.path_study import drop_csms_for_measured_link

        default = build_default_path(scen.cyber.path, scen.cyber.iso15118_loop)
        measured_path, dropped = drop_csms_for_measured_link(default, seg)
        # Named for what it is: the variant's link is the measured OCPP segment, not the variant's own.
        label = f"{default.name} with its link replaced by the measured OCPP segment"
        out = run_path_study(scen, dataclasses.replace(measured_path, name=label)).summary()
        measured["csms_segment"] = dropped
        out["measured_segment"] = measured
    else:
        out = run_path_study(scen).summary()
    if json_out:
        _print_json(out)
        return
    head = {k: out[k] for k in ("path", "p_success_attempt", "mean_attempt_s", "retry_timeout_s")}
    head |= {k: out[k] for k in ("retry_max_attempts", "p_land", "mean_given_landed_s")}
    head |= {f"{k}_s": v for k, v in out["quantiles_s"].items()}
    head |= {"mass_beyond_grid": out["mass_beyond_grid"], "deadline_miss_max": out["deadline_miss_max"]}
    _emit(head, False)
    sys.stdout.write("segments:\n")
    for s in out["segments"]:
        sys.stdout.write(f"  {s['name']}: mean {format_number(s['mean_s'])} s, p_success {s['p_success']:g}\n")
        sys.stdout.write(f"    source: {s['source']}\n")
    rows = [["service", "deadline [s]", "P(miss)", "P(miss) MC", "flagged"]]
    rows += [
        [r["service"], _fmt(r["deadline_s"]), _fmt(r["p_miss"]), _fmt(r["p_miss_mc"]), _fmt(r["flagged"])]
        for r in out["services"]
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        sys.stdout.write(
            "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        )
        sys.stdout.write("\n")
    hs = out["handshakes"]
    sys.stdout.write("TLS handshakes on the path's links [ms] (round trips + transfer + client + server):\n")
    for h in hs["profiles"]:
        c = 1e3 * (h["t_crypto_client_s"] + h["t_overhead_client_s"])
        sv = 1e3 * (h["t_crypto_server_s"] + h["t_overhead_server_s"])
        sys.stdout.write(
            f"  {h['profile']}: RTT {format_number(1e3 * h['rtt_s'])}, {h['n_round_trips']:g} round trips "
            f"{format_number(1e3 * h['t_rtt_s'])} + {format_number(1e3 * h['t_transfer_s'])} + "
            f"{h['client_role']} {format_number(c)} + {h['server_role']} {format_number(sv)} = "
            f"{format_number(1e3 * h['t_handshake_s'])}\n"
        )
    sys.stdout.write(f"  {hs['dominant']}\n")
    oc = out["ocpp_measurement"]
    if "skipped" in oc:
        sys.stdout.write(f"OCPP measurement: skipped ({oc['skipped']})\n")
    else:
        sys.stdout.write(f"OCPP measurement ({oc['took_s']:.1f} s, {oc['n_exchanges_per_delay']} per delay):\n")
        for r in oc["table"]:
            sys.stdout.write(
                f"  {format_number(1e3 * r['delay_s'])} ms one-way{'' if r['used_in_fit'] else ' (held out)'}: "
                f"mean measured {_fmt(1e3 * r['measured_mean_s'])} / predicted {_fmt(1e3 * r['predicted_mean_s'])} ms\n"
            )
    sys.stdout.write(f"ISO 15118 segment: {out['iso15118_segment']['note']}\n")
    for note in out["path_notes"]:
        sys.stdout.write(f"note: {note}\n")
    for r in out["services"]:
        if not r["needs_path"]:
            sys.stdout.write(f"{r['service']}: needs no command path ({r['basis']})\n")
    if measured is not None:
        from v2gtwin.cli.cyber_measure import write_measure_table

        write_measure_table(measured)
        sys.stdout.write(f"{measured['csms_segment']}\n")
