"""The report's cyber segments: the TLS handshake breakdown on the path's links, the measured OCPP segment beside
its model, and the ISO 15118 segment (measured or the documented default). Reads the study result only
(:meth:`v2gtwin.cyber.path_study.PathStudy.summary`)."""

from __future__ import annotations

import html
from typing import Any

from matplotlib.figure import Figure

from v2gtwin.report.figures import to_png_base64

__all__ = ["cyber_segments_html", "fig_handshakes"]


def _ms(v: Any) -> str:
    return "-" if v is None else f"{1e3 * float(v):.3g}"


def fig_handshakes(hs: dict[str, Any]) -> Figure:
    """Stacked bars per handshake: round trips, transfer, client and server processing [ms]."""
    fig = Figure(figsize=(9.0, 2.6), layout="constrained")
    ax = fig.add_subplot()
    rows = hs["profiles"]
    names = [r["profile"] for r in rows]
    parts = (
        ("round trips", lambda r: r["t_rtt_s"], "tab:blue"),
        ("transfer", lambda r: r["t_transfer_s"], "tab:cyan"),
        ("client (EV / charger) processing", lambda r: r["t_crypto_client_s"] + r["t_overhead_client_s"], "tab:red"),
        (
            "server (charger / CSMS) processing",
            lambda r: r["t_crypto_server_s"] + r["t_overhead_server_s"],
            "tab:orange",
        ),
    )
    left = [0.0] * len(rows)
    for label, get, colour in parts:
        w = [1e3 * get(r) for r in rows]
        ax.barh(names, w, left=left, color=colour, label=label)
        left = [a + b for a, b in zip(left, w, strict=True)]
    ax.set_xlabel("time [ms] (stacked; the sum is the serial handshake time)")
    ax.set_title("TLS handshake time on the path's links", fontsize=10)
    ax.invert_yaxis()
    ax.grid(alpha=0.3, axis="x")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def _handshakes(hs: dict[str, Any]) -> str:
    links = "; ".join(
        f"{html.escape(lk['for'])} on <i>{html.escape(lk['link'])}</i>: RTT {_ms(lk['rtt_s'])} ms "
        f"({html.escape(lk['rule'])})"
        for lk in hs["links"]
    )
    cpu = "; ".join(
        f"{role}: {html.escape(str(c['preset'] or 'number'))} = {c['factor']:g}x ({html.escape(c['source'])})"
        for role, c in hs["cpu"].items()
    )
    rows = "".join(
        f"<tr><td>{html.escape(r['profile'])}</td><td>TLS {r['tls_version']}, {html.escape(r['curve'])}"
        f"{', mutual' if r['mutual'] else ''}</td><td>{r['client_role']} / {r['server_role']}</td>"
        f"<td>{_ms(r['rtt_s'])}</td><td>{r['n_round_trips']:g}</td><td>{_ms(r['t_rtt_s'])}</td>"
        f"<td>{_ms(r['t_transfer_s'])}</td><td>{_ms(r['t_crypto_client_s'])} + {_ms(r['t_overhead_client_s'])}</td>"
        f"<td>{_ms(r['t_crypto_server_s'])} + {_ms(r['t_overhead_server_s'])}</td>"
        f"<td><b>{_ms(r['t_handshake_s'])}</b></td></tr>"
        for r in hs["profiles"]
    )
    return (
        "<h3>TLS handshake time on the path's links</h3>"
        "<p>The handshake model of <code>v2gtwin cyber tls</code> (round trips x RTT + bytes / rate + each "
        "side's public-key operations and TLS stack work x its processor factor), on the links of this path, "
        f"no rate limit. Links: {links}. Processors: {cpu}. {html.escape(hs['dominant'])}</p>"
        "<table><tr><th>handshake</th><th>TLS</th><th>client / server</th><th>RTT [ms]</th><th>round trips</th>"
        "<th>round trips [ms]</th><th>transfer [ms]</th><th>client crypto + stack [ms]</th>"
        f"<th>server crypto + stack [ms]</th><th>total [ms]</th></tr>{rows}</table>"
        + '<figure><img alt="TLS handshake breakdown" src="data:image/png;base64,'
        + to_png_base64(fig_handshakes(hs))
        + '"><figcaption>Handshake time by part (processor presets marked unverified in the text are '
        "assumptions).</figcaption></figure>"
    )


def _ocpp(oc: dict[str, Any]) -> str:
    if "skipped" in oc:
        return f"<h3>Measured OCPP segment</h3><p>Not measured: {html.escape(oc['skipped'])}.</p>"
    fit = oc["fit"]
    rows = "".join(
        f"<tr><td>{_ms(r['delay_s'])}</td><td>{'fit' if r['used_in_fit'] else '<b>held out</b>'}</td>"
        f"<td>{r['n_answered']} / {r['n_exchanges']}</td><td>{_ms(r['measured_mean_s'])}</td>"
        f"<td>{_ms(r['predicted_mean_s'])}</td><td>{_ms(r['measured_p50_s'])}</td><td>{_ms(r['predicted_p50_s'])}</td></tr>"
        for r in oc["table"]
    )
    return (
        "<h3>Measured OCPP segment beside the model</h3>"
        f"<p>Real SetChargingProfile round trips between the central system and a simulated station "
        f"({html.escape(oc['link'])}), {oc['n_exchanges_per_delay']} per delay; the measurement took "
        f"{oc['took_s']:.1f} s. The segment is fitted at the delays marked <i>fit</i> (delay factor "
        f"{fit['k_delay']:.3f}, round trip at zero delay {_ms(fit['overhead_s'])} ms) and predicts the held-out "
        f"delay. The measured central system (half a zero-delay round trip: {_ms(oc['csms_measured_s'])} ms) "
        f"replaces the default path's assumed <code>csms</code> segment ({_ms(oc['csms_assumed_s'])} ms); the "
        "link stays the default's, since the measurement's link is loopback.</p>"
        "<table><tr><th>one-way delay [ms]</th><th>role</th><th>answered</th><th>mean measured [ms]</th>"
        f"<th>mean predicted [ms]</th><th>p50 measured [ms]</th><th>p50 predicted [ms]</th></tr>{rows}</table>"
    )


def _iso(iso: dict[str, Any]) -> str:
    def row(label: str, g: dict[str, Any]) -> str:
        return (
            f"<tr><td>{label}</td><td>{html.escape(g['name'])}</td><td>{_ms(g['fixed_s'])}</td>"
            f"<td>{_ms(g['random_mean_s'])} ({html.escape(g['random_dist'])}, cv {g['random_cv']:.2g})</td>"
            f"<td>{_ms(g['processing_s'])}</td><td>{_ms(g['mean_s'])}</td><td>{g['p_success']:g}</td>"
            f"<td>{html.escape(g['source'])}</td></tr>"
        )

    rows = row("used in the path", iso["segment"])
    if iso["mode"] == "measured":
        rows += row("documented default", iso["default_segment"])
    return (
        "<h3>ISO 15118 segment</h3>"
        f"<p>{html.escape(iso['note'][0].upper() + iso['note'][1:])}.</p>"
        "<table><tr><th></th><th>segment</th><th>fixed [ms]</th><th>random mean [ms]</th><th>processing [ms]</th>"
        f"<th>mean [ms]</th><th>p_success</th><th>source</th></tr>{rows}</table>"
    )


def cyber_segments_html(summary: dict[str, Any]) -> str:
    """The three sub-sections from :meth:`PathStudy.summary` (empty when the keys are absent)."""
    if "handshakes" not in summary:
        return ""
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in summary.get("path_notes", []))
    return (
        (f"<p>What the study changed in the default path:</p><ul>{notes}</ul>" if notes else "")
        + _iso(summary["iso15118_segment"])
        + _ocpp(summary["ocpp_measurement"])
        + _handshakes(summary["handshakes"])
    )
