"""How OCPP frames are validated: the ``ocpp`` package's own JSON schemas, checked on the event loop by a
compiled validator, with the package's validator as the reference.

The ``ocpp`` package validates every frame against the OCPP JSON schemas with ``jsonschema`` (pure Python): about
150 us for one MeterValues (3 sampled values) and 19 us for a SetChargingProfile answer, measured here — the
largest CPU cost of the central system while it ingests meter values (py-spy: half of the event loop's time at
5,000 stations). jsonschema-rs (a Rust implementation of JSON Schema; Draft 4, as the package uses) checks the
same schemas in 0.2-0.7 us. So every validator the package asks for becomes a pair:

* the compiled validator decides first; a frame it accepts is valid;
* a frame it refuses goes to the package's ``jsonschema`` validator, which raises the very error the package
  maps to its CALLERROR (TypeConstraintViolation, FormatViolation, ...). Should the two ever disagree (the
  compiled one refuses NaN, which Python's JSON reader lets through), the reference's verdict holds.

Strictness is therefore the package's, provided the compiled validator never accepts what the reference
refuses: ``tests/cyber/test_validation.py`` checks that on frames generated near the boundary of every schema of
both versions (valid and invalid ones, a few thousand). Formats (``date-time``) are not checked, as in the
package. This is process-wide: :func:`configure_ocpp_validation` replaces the package's module function
``ocpp.messages.get_validator``, which its ``_validate_payload`` looks up at every frame (pinned ocpp 2.1.0; the
tests check that the replacement is the one in use), and also turns off the package's hand-off of each
validation to a worker thread (a thread gains nothing under the GIL, and cost two hand-offs per message:
16,000 executor submissions for 8,000 messages).
"""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import ocpp.messages

__all__ = ["CompiledValidator", "configure_ocpp_validation", "get_validator"]

_reference_get_validator = ocpp.messages.get_validator


class CompiledValidator:
    """The compiled validator first, the package's ``jsonschema`` validator (``reference``) when it refuses."""

    __slots__ = ("fast", "reference", "schema")

    def __init__(self, reference: Any) -> None:
        self.reference = reference
        self.schema = reference.schema
        self.fast = jsonschema_rs.Draft4Validator(reference.schema, validate_formats=False)

    def validate(self, instance: Any) -> None:
        """Return if valid; else raise the reference's ``jsonschema.ValidationError``."""
        if not self.fast.is_valid(instance):
            self.reference.validate(instance)

    def is_valid(self, instance: Any) -> bool:
        return bool(self.fast.is_valid(instance)) or bool(self.reference.is_valid(instance))


_compiled: dict[tuple[int, str, str], CompiledValidator] = {}


def get_validator(message_type_id: int, action: str, ocpp_version: str, parse_float: Any = float) -> Any:
    """Drop-in for ``ocpp.messages.get_validator`` (same arguments): the compiled pair, cached. The package's
    decimal parsing (``parse_float``, for three OCPP 1.6 messages) keeps the package's own validator."""
    if parse_float is not float:
        return _reference_get_validator(message_type_id, action, ocpp_version, parse_float=parse_float)
    key = (message_type_id, action, ocpp_version)
    validator = _compiled.get(key)
    if validator is None:
        validator = _compiled[key] = CompiledValidator(_reference_get_validator(message_type_id, action, ocpp_version))
    return validator


def configure_ocpp_validation() -> None:
    """Validate on the event loop, compiled first (see the module's docstring). Idempotent; process-wide."""
    ocpp.messages.ASYNC_VALIDATION = False
    ocpp.messages.get_validator = get_validator
