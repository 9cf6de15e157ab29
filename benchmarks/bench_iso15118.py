"""Benchmark: real ISO 15118 sessions of the open ``iso15118`` stack (SECC and EVCC in two network namespaces).

Runs ``--repeat`` sessions per protocol (ISO 15118-2, ISO 15118-20 AC) and TLS mode (off, on) with ``--loop``
charge-loop exchanges, and prints one JSON line: per kind, of its first session ``total_s``, ``n_messages``, the
mean ``round_trip_s`` (request sent -> response read at the EV), ``secc_processing_s`` and ``ev_before_s`` per
message, ``connect_s`` (TCP and TLS handshake) and ``tls_context_s``; the model's held-out ``error_pct`` (each
session predicted from the other sessions of its kind alone: their mean, each in ``error_pct_each``); and the
machine's ``load_avg_1min`` (the figures are the stack's processing on a shared machine, not a link's). Needs
root and ``make iso15118-venv``; prints ``{"skipped": "<blocker>"}`` otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from v2gtwin.cyber.iso15118_live import check_iso15118_available, run_session
from v2gtwin.cyber.iso15118_session import predict_from_sessions_s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loop", type=int, default=10, help="ISO 15118-2 charge-loop exchanges per session")
    parser.add_argument("--repeat", type=int, default=2, help="sessions per kind (>= 2 for the held-out error)")
    args = parser.parse_args()
    blocker = check_iso15118_available()
    if blocker:
        sys.stdout.write(json.dumps({"bench": "iso15118", "skipped": blocker}) + "\n")
        return 0
    out: dict[str, object] = {"bench": "iso15118", "loop": args.loop}
    for protocol in ("-2", "-20"):
        for tls in (False, True):
            runs = [run_session(protocol, tls, args.loop) for _ in range(max(args.repeat, 1))]
            m = runs[0]
            s = m.summary()
            done = [r for r in runs if r.completed]
            errs = [
                100 * (predict_from_sessions_s([o for o in done if o is not r], len(r.loop())) - r.total_s) / r.total_s
                for r in done
                if len(done) >= 2
            ]
            out[f"iso15118{protocol}{'_tls' if tls else ''}"] = {
                "total_s": round(m.total_s, 4),
                "n_messages": m.n_messages,
                "completed": m.completed,
                "mean_round_trip_s": s["mean_round_trip_s"],
                "mean_secc_processing_s": s["mean_secc_processing_s"],
                "mean_ev_before_s": s["mean_ev_before_s"],
                "connect_s": round(m.connect_s, 5),
                "tls_context_s": round(m.tls_context_s, 5),
                "n_sessions": len(runs),
                "n_completed": len(done),
                "error_pct": round(sum(errs) / len(errs), 2) if errs else None,
                "error_pct_each": [round(e, 2) for e in errs],
            }
    out["load_avg_1min"] = round(os.getloadavg()[0], 2)
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
