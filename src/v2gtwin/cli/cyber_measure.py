"""`v2gtwin cyber path --measure`: the measured central system -> charger segment (real OCPP round trips through
the shaping proxy), its table of predicted against measured round trips, and how the CLI shows them."""

from __future__ import annotations

import math
import sys
from typing import Any

from v2gtwin.cli._common import format_number
from v2gtwin.errors import DataError

#: Largest one-way delay ``--measure-delay-ms`` accepts [ms]: 10 s, beyond any command path's deadline here
#: (the measurement waits several round trips per point, so a larger delay would only make it hang).
MEASURE_DELAY_MAX_MS = 10_000.0


def check_measure_options(measure: bool, delay_ms: float | None, loss: float | None, netns: bool) -> None:
    """The ``--measure-*`` options: valid always, and an error when given without ``--measure`` (never
    silently ignored)."""
    if delay_ms is not None and not (math.isfinite(delay_ms) and 0.0 <= delay_ms <= MEASURE_DELAY_MAX_MS):
        raise DataError(f"--measure-delay-ms must be a number in [0, {MEASURE_DELAY_MAX_MS:g}] ms (got {delay_ms})")
    if loss is not None and not (math.isfinite(loss) and 0.0 <= loss < 0.25):
        raise DataError(f"--measure-loss must be in [0, 0.25) (got {loss})")
    if not measure:
        given = [
            name
            for name, v in (("--measure-delay-ms", delay_ms), ("--measure-loss", loss), ("--measure-netns", netns))
            if v not in (None, False)
        ]
        if given:
            raise DataError(f"{', '.join(given)}: only with --measure (add --measure or leave them out)")


def measure_segment(
    delay_ms: float, loss: float, show_progress: bool, *, netns: bool = False
) -> tuple[Any, dict[str, Any]]:
    """Measure and fit the OCPP segment; return it (at ``delay_ms`` one-way [ms], ``loss`` [-]) and the JSON
    of ``measured_segment``. A progress bar on stderr when ``show_progress``; ``netns``: across a veth pair
    between two network namespaces instead of loopback."""
    from v2gtwin.cyber.ocpp_segment import DEFAULT_POINTS, measure_ocpp_segment

    check_measure_options(True, delay_ms, loss, netns)
    at = (delay_ms / 1e3, loss)
    if show_progress:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        ) as progress:
            task = progress.add_task("OCPP round trips", total=len(DEFAULT_POINTS))
            seg, table = measure_ocpp_segment(
                at=at, progress=lambda i, _n: progress.update(task, completed=i), netns=netns
            )
    else:
        seg, table = measure_ocpp_segment(at=at, netns=netns)
    out = {
        "at_delay_s": at[0],
        "at_loss": at[1],
        "link": "netns veth pair" if netns else "loopback",
        "segment": {
            "name": seg.name,
            "fixed_s": seg.fixed_s,
            "random_mean_s": seg.random_mean_s,
            "random_dist": seg.random_dist,
            "random_cv": seg.random_cv,
            "processing_s": seg.processing_s,
            "p_success": seg.p_success,
            "source": seg.source,
        },
        "table": table,
    }
    return seg, out


def write_measure_table(measured: dict[str, Any]) -> None:
    """The predicted-against-measured table as text on stdout (times in ms)."""
    ms = lambda v: "-" if v is None else format_number(1e3 * float(v))  # noqa: E731
    rows = [["delay [ms]", "loss", "in fit", "n", "losses", "mean meas/pred [ms]", "p50 [ms]", "p95 [ms]"]]
    for r in measured["table"]:
        rows.append(
            [
                format_number(1e3 * r["delay_s"]),
                f"{r['loss']:g}",
                "yes" if r["used_in_fit"] else "no",
                str(r["n_answered"]),
                str(r["n_losses_emulated"]),
                f"{ms(r['measured_mean_s'])} / {ms(r['predicted_mean_s'])}",
                f"{ms(r['measured_p50_s'])} / {ms(r['predicted_p50_s'])}",
                f"{ms(r['measured_p95_s'])} / {ms(r['predicted_p95_s'])}",
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    sys.stdout.write("measured OCPP segment (round trips through the shaping proxy; loss emulated as RTO holds):\n")
    for r in rows:
        sys.stdout.write("  " + "  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) + "\n")
