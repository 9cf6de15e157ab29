"""Battery health: published degradation models vectorised over the fleet, the V2G degradation cost, and their
statistical validation (split-plot designs, lack-of-fit tests)."""
