"""OCPP 2.0.1 central system (CSMS) of the aggregator. Kept free of the numeric stack (no numpy, no pandas).

Work in progress (issue 6): server, durable store and station client for boot, heartbeat, status and meter
values. Security profiles, dispatch, the simulator fleet and the benchmark are still to come.
"""
