"""Benchmark: the figures behind the TLS handshake model, measured on this machine.

Prints one JSON line. Keys:

* ``op_costs_s``: median cost of one ECDHE key generation, ECDH derivation, ECDSA signature and verification per
  curve with ``cryptography`` (:func:`v2gtwin.cyber.handshake_measure.measure_op_costs_s`); the model's
  ``REFERENCE_OP_COSTS_S`` are a copy of one run.
* ``overhead``: the TLS stack's fixed costs (base per side, per certificate checked) calibrated on in-memory
  TLS 1.2 P-256 handshakes, CPU time (:func:`~v2gtwin.cyber.handshake_measure.calibrate_overhead`); the model's
  ``REFERENCE_OVERHEAD`` is a copy of one run.
* ``loopback``: real handshakes over loopback without added delay, Python's ``ssl`` client and server, per
  profile: median and smallest of ``--n`` handshakes (both ends done) and the model's prediction with the
  costs above. Wall time on a shared machine: a loaded machine delays every wake-up of a side, so the median
  can be several times the smallest.
* ``versions``: ``cryptography`` (and its OpenSSL), the OpenSSL of Python's ``ssl``.

Run: ``python benchmarks/bench_tls.py`` (``--n``).
"""

from __future__ import annotations

import argparse
import json
import ssl

import cryptography
from cryptography.hazmat.backends.openssl.backend import backend

from v2gtwin.cyber.handshake import PROFILES, calc_handshake_time
from v2gtwin.cyber.handshake_live import measure_handshakes
from v2gtwin.cyber.handshake_measure import calibrate_overhead, measure_op_costs_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=15, help="handshakes per profile (median and smallest)")
    args = parser.parse_args()
    costs = measure_op_costs_s(n=200)
    overhead = calibrate_overhead(costs, n=60)
    loopback = {}
    for name in PROFILES:
        meas = measure_handshakes(name, 0.0, None, n=args.n, peer="python")
        pred = calc_handshake_time(name, 0.0, op_costs_s=costs, overhead=overhead)
        loopback[name] = {
            "measured_median_s": meas["t_handshake_s"],
            "measured_min_s": meas["t_handshake_min_s"],
            "predicted_s": pred.t_handshake_s,
        }
    out = {
        "op_costs_s": costs,
        "overhead": {
            "base_client_s": overhead.base_client_s,
            "base_server_s": overhead.base_server_s,
            "cert_check_s": overhead.cert_check_s,
            "source": overhead.source,
        },
        "loopback": loopback,
        "versions": {
            "cryptography": cryptography.__version__,
            "cryptography_openssl": backend.openssl_version_text(),
            "ssl_openssl": ssl.OPENSSL_VERSION,
        },
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
