"""The names of the grid services the study sells over the command path (rows of the services table the
path's verdict gates), in a module of their own so that importing them costs nothing (the path analysis
pulls in scipy.signal)."""

from __future__ import annotations

__all__ = ["SERVICE_DR", "SERVICE_REGULATION", "SERVICE_RESERVE"]

SERVICE_REGULATION = "AGC / regulation"
SERVICE_RESERVE = "contingency reserve"
SERVICE_DR = "demand response"
