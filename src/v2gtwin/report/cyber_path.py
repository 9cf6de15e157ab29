"""The report's command-path section: the landing-time CDF against the services' deadlines, the segments with
their sources, and the regulation score with and without the path's delay. Reads the study result only."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure

from v2gtwin.report.cyber_segments import cyber_segments_html
from v2gtwin.report.figure_layout import place_legend
from v2gtwin.report.figures import to_png_base64

if TYPE_CHECKING:
    from v2gtwin.cyber.path_analysis import PathAnalysis
    from v2gtwin.study import StudyResult

__all__ = ["cyber_path_section", "fig_path_cdf"]


def fig_path_cdf(res: PathAnalysis) -> Figure:
    """P(landed by t) on a log time axis, convolution and Monte Carlo, with each service's deadline."""
    fig = Figure(figsize=(8.0, 3.6), layout="constrained")
    ax = fig.add_subplot()
    t, cdf = res.cdf_points(400)
    keep = t > 0
    t_hi = float(t[-1])
    for s in res.services:
        t_hi = max(t_hi, (s.deadline_s or 0.0) * 1.5)
    # Past the grid's end P(landed) stays at its last value (the rest of the mass is named in the table).
    ax.plot(np.append(t[keep], t_hi), np.append(cdf[keep], cdf[-1]), color="tab:blue", lw=1.6, label="convolution")
    mc = np.sort(res.samples_s)
    if mc.size:
        idx = np.unique(np.linspace(0, mc.size - 1, 300).round().astype(int))
        ax.plot(mc[idx], (idx + 1) / res.n_samples, ls=":", color="k", lw=1.2, label="Monte Carlo")
    colours = ("tab:red", "tab:orange", "tab:green", "tab:purple")
    for s, c in zip([s for s in res.services if s.deadline_s is not None], colours, strict=False):
        ax.axvline(s.deadline_s or 0.0, color=c, ls="--", lw=1, label=f"{s.name} ({s.deadline_s:g} s)")
    ax.axhline(1.0 - res.deadline_miss_max, color="grey", lw=0.8, ls="-.", label="1 - deadline_miss_max")
    ax.set_xscale("log")
    first = t[keep & (cdf > 1e-4)]
    ax.set_xlim(max(float(first[0]) / 3.0 if first.size else 1e-3, 1e-4), t_hi)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("time after the central system sends the command [s]")
    ax.set_ylabel("P(command landed)")
    ax.set_title(f"Command path '{res.path.name}': landing time with retries", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    place_legend(ax, fontsize=7)
    return fig


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "flagged" if v else "ok"
    return f"{v:.3g}"


def _scores(result: StudyResult) -> str:
    if result.services is None:
        return ""
    ag = result.services.agc
    if ag.regulation_without_delay is None:
        return ""
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{ag.regulation_without_delay[k].score.composite:.3f}</td>"
        f"<td>{r.score.composite:.3f}</td></tr>"
        for k, r in ag.regulation.items()
    )
    return (
        f"<p>The fleet's regulation response and its AGC request arrive after the path's delay (mean "
        f"{ag.delay_mean_s:.3g} s, each EV's command its own draw). PJM performance score:</p>"
        "<table><tr><th>allocation</th><th>without delay</th><th>with the path's delay</th></tr>"
        f"{rows}</table>"
    )


def cyber_path_section(result: StudyResult) -> str:
    """The HTML section (empty when the study did not run the cyber_path step)."""
    res = result.cyber_path
    if res is None:
        return ""
    s = res.summary()
    q = s["quantiles_s"]
    mcq = s["monte_carlo"]["quantiles_s"]
    key = (
        "<table><tr><th>quantity</th><th>convolution</th><th>Monte Carlo</th></tr>"
        f"<tr><td>P(one attempt gets through) = product of segments</td><td>{s['p_success_attempt']:.6f}</td>"
        "<td></td></tr>"
        f"<tr><td>P(command lands, {s['retry_max_attempts']} attempts, {s['retry_timeout_s']:g} s timeout)</td>"
        f"<td>{s['p_land']:.9f}</td><td>{s['monte_carlo']['p_land']:.6f}</td></tr>"
        f"<tr><td>mean landing time of landed commands [s]</td><td>{s['mean_given_landed_s']:.4g}</td>"
        f"<td>{_fmt(s['monte_carlo']['mean_given_landed_s'])}</td></tr>"
        + "".join(f"<tr><td>{k} [s]</td><td>{_fmt(q[k])}</td><td>{_fmt(mcq[k])}</td></tr>" for k in q)
        + "</table>"
    )
    services = "".join(
        f"<tr><td>{html.escape(r['service'])}</td><td>{_fmt(r['deadline_s'])}</td><td>{_fmt(r['p_miss'])}</td>"
        f"<td>{_fmt(r['p_miss_mc'])}</td><td>{'no path needed' if not r['needs_path'] else _fmt(r['flagged'])}</td>"
        f"<td>{html.escape(r['basis'])}</td></tr>"
        for r in s["services"]
    )
    segs = "".join(
        f"<tr><td>{html.escape(g['name'])}</td><td>{g['fixed_s']:g}</td><td>{g['random_mean_s']:g} "
        f"({html.escape(g['random_dist'])})</td><td>{g['processing_s']:g}</td><td>{g['p_success']:g}</td>"
        f"<td>{html.escape(g['source'])}</td></tr>"
        for g in s["segments"]
    )
    flagged = ", ".join(s["flagged"]) or "none"
    return (
        "<h2>Command path: latency and reliability against service deadlines</h2>"
        "<p>A command crosses the serial path central system &rarr; link &rarr; charger &rarr; ISO 15118 &rarr; "
        "EV; its latency is the sum of the segments' latencies (distribution by convolution on a grid and, "
        "independently, by Monte Carlo) and one attempt gets through with the product of the segments' "
        "probabilities. A command without acknowledgement is sent again after the timeout; P(miss) is the "
        "probability that no attempt has landed by the service's deadline. The ISO 15118 hop dominates the "
        "latency because the charger cannot push a new limit to the EV: it waits for the EV's next request. "
        f"Services flagged (miss probability above {s['deadline_miss_max']:g}): "
        f"<b>{html.escape(flagged)}</b>.</p>"
        + key
        + "<table><tr><th>service</th><th>deadline [s]</th><th>P(miss)</th><th>P(miss) MC</th><th>verdict</th>"
        f"<th>basis</th></tr>{services}</table>"
        + _scores(result)
        + "<table><tr><th>segment</th><th>fixed [s]</th><th>random mean [s]</th><th>processing [s]</th>"
        f"<th>p_success</th><th>source</th></tr>{segs}</table>"
        + '<figure><img alt="command path landing-time CDF" src="data:image/png;base64,'
        + to_png_base64(fig_path_cdf(res))
        + "\"><figcaption>P(command landed by t) against the services' deadlines.</figcaption></figure>"
        + cyber_segments_html(s)
    )
