"""Benchmark: the measured OCPP segment (``v2gtwin cyber path --measure``'s measurement) and the shaping proxy.

Measures SetChargingProfile round trips between the central system and one simulated station through the
shaping proxy at the default (one-way delay, loss) points, fits the segment and prints one JSON line:
``wall_s`` (the whole measurement), ``proxy_overhead_p50_s`` (median round trip at zero added delay, i.e. the
central system, the station and the proxy's two loopback hops), ``held_out_p50_error_s`` (predicted minus
measured median at the delay the fit did not use), ``rows`` (the table, times in seconds) and ``segment``.
Figures are noisy on a shared machine.
"""

from __future__ import annotations

import json
import time

from v2gtwin.cyber.ocpp_segment import measure_ocpp_segment


def main() -> None:
    t0 = time.perf_counter()
    seg, table = measure_ocpp_segment()
    wall_s = time.perf_counter() - t0
    zero = next(r for r in table if r["delay_s"] == 0.0 and r["loss"] == 0.0)
    held = [r for r in table if r["loss"] == 0.0 and not r["used_in_fit"]]
    print(
        json.dumps(
            {
                "wall_s": round(wall_s, 2),
                "proxy_overhead_p50_s": zero["measured_p50_s"],
                "held_out_p50_error_s": [r["predicted_p50_s"] - r["measured_p50_s"] for r in held],
                "rows": table,
                "segment": {k: getattr(seg, k) for k in ("fixed_s", "random_mean_s", "random_cv", "processing_s")},
            }
        )
    )


if __name__ == "__main__":
    main()
