"""OCPP 2.0.1 / 2.1 central system (CSMS) of the aggregator: the server (:mod:`.server`), its durable store
(:mod:`.store`), scoped compiled validation (:mod:`.validation`), payload builders and readers (:mod:`.payloads`),
TLS and PKI for security profiles 2 and 3 (:mod:`.tls`, :mod:`.pki`), dispatch outcome summaries
(:mod:`.outcomes`) and simulated stations (:mod:`.simulator`); the HTTP API and live dashboard served in the
same event loop (:mod:`.api`, :mod:`.api_server`, :mod:`.api_queries`, :mod:`.tokens`, :mod:`.live_state`; see
docs/operation.md). Kept free of the numeric stack (no numpy, no pandas). See docs/csms.md.
"""
