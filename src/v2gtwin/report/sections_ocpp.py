"""The report's section on the dispatch through the OCPP central system."""

from __future__ import annotations

from v2gtwin.report.figures import fig_cyber, to_png_base64
from v2gtwin.report.html_parts import figure_html, table_html
from v2gtwin.study_result import StudyResult

__all__ = ["ocpp_section"]


def ocpp_section(result: StudyResult) -> str:
    run = result.cyber
    if run is None:
        return ""
    s = run.summary()
    rows = [
        (
            "Simulated stations (V2X on OCPP 2.1 / others on 2.0.1)",
            f"{s['n_stations']} ({s['n_v2x']} / {s['n_stations'] - s['n_v2x']})",
        ),
        ("Charging profiles sent / acknowledged", f"{s['profiles_sent']} / {s['profiles_acknowledged']}"),
        (
            "Fan-out: median over every station / slowest acceptance [ms] (-: none, or half did not accept)",
            " / ".join("-" if v is None else f"{1e3 * v:.1f}" for v in (s["fanout_p50_s"], s["fanout_max_s"])),
        ),
        ("Stations following their set-point", f"{s['followed']} of {s['n_stations']}"),
        ("Meter values committed before acknowledgement", f"{s['meter_values_stored']:,}"),
    ]
    return (
        "<h2>Control path: OCPP central system</h2>"
        + table_html(("quantity", "value"), rows)
        + f'<p class="muted">The fleet\'s first {s["n_stations"]} EVs plugged into simulated stations on loopback '
        "(websockets, the <code>ocpp</code> package); each boots, declares its charging needs and reports, then the "
        "central system pushes one set-point each: half power charging, or half power discharge for V2X EVs "
        "(a demand-response event). Loopback latencies: a lower bound for a real cellular path. "
        "<code>benchmarks/bench_csms.py</code> measures the load case.</p>"
        + figure_html(to_png_base64(fig_cyber(run)), "Dispatch latency distribution; set-points against station power.")
    )
