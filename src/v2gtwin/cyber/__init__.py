"""Cyber-physical side: the OCPP central system (csms) and, later, command-path latency and TLS studies."""
