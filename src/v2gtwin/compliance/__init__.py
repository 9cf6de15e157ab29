"""Regulatory compliance of an aggregator's assets: IEEE 1547-2018 / UL 1741 SB interconnection, ANSI C12.20
revenue metering and FERC Order 2222 aggregation rules, each finding tied to its clause."""
