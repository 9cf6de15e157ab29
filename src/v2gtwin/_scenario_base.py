"""The base of every scenario input model: frozen, unknown keys are errors, defaults validated."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["_Model"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)
