"""How OCPP frames are validated: the ``ocpp`` package's own JSON schemas, checked on the event loop by a
compiled validator, with the package's validator as the reference.

The ``ocpp`` package validates every frame against the OCPP JSON schemas with ``jsonschema`` (pure Python): about
150 us for one MeterValues (3 sampled values) and 19 us for a SetChargingProfile answer, measured here — the
largest CPU cost of the central system while it ingests meter values (py-spy: half of the event loop's time at
5,000 stations). jsonschema-rs (a Rust implementation of JSON Schema; Draft 4, as the package uses) checks the
same schemas in 0.2-0.7 us. So every validator becomes a pair:

* the compiled validator decides first; a frame it accepts is valid;
* a frame it refuses goes to the package's own ``_validate_payload`` (its ``jsonschema`` validators), which
  raises the very error the package maps to its CALLERROR (TypeConstraintViolation, FormatViolation, ...).
  Should the two ever disagree (the compiled one refuses NaN, which Python's JSON reader lets through), the
  reference's verdict holds.

Strictness is therefore the package's, provided the compiled validator never accepts what the reference
refuses: ``tests/cyber/test_validation.py`` checks that on frames generated near the boundary of every schema of
both versions (valid and invalid ones, a few thousand). Formats (``date-time``) are not checked, as in the
package.

Scope: the compiled validation applies to the classes that mix in :class:`CompiledValidation` (the central
system's station handlers), and to nothing else in the process: a plain ``ocpp`` ChargePoint beside them keeps
the package's validator (a test checks it). Those classes validate the frames they receive and their answers on
the event loop, not in a worker thread as the package does by default (a thread gains nothing under the GIL, and
cost two hand-offs per message: 16,000 executor submissions for 8,000 messages). The calls they send themselves
through ``ChargePoint.call`` keep the package's path.

:func:`configure_ocpp_validation` is the explicit, process-wide opt-in for a process that belongs to simulated
stations alone (the load benchmark's simulator, ``v2gtwin csms simulate``): it replaces the package's module
function ``ocpp.messages.get_validator`` (looked up at every frame by ``_validate_payload``, pinned ocpp 2.1.0)
and turns off the hand-off to a worker thread. The central system never calls it.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import jsonschema_rs
import ocpp.messages
from ocpp.charge_point import remove_nones, serialize_as_dict, snake_to_camel_case
from ocpp.messages import Call, CallResult

__all__ = ["CompiledValidation", "CompiledValidator", "configure_ocpp_validation", "get_validator", "validate"]

_reference_get_validator = ocpp.messages.get_validator
_reference_validate_payload = ocpp.messages._validate_payload


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
    """Same arguments as ``ocpp.messages.get_validator``: the compiled pair, cached. The package's decimal parsing
    (``parse_float``, for three OCPP 1.6 messages) keeps the package's own validator."""
    if parse_float is not float:
        return _reference_get_validator(message_type_id, action, ocpp_version, parse_float=parse_float)
    key = (message_type_id, action, ocpp_version)
    validator = _compiled.get(key)
    if validator is None:
        validator = _compiled[key] = CompiledValidator(_reference_get_validator(message_type_id, action, ocpp_version))
    return validator


def validate(message: Call | CallResult, ocpp_version: str) -> None:
    """Validate one message (a CALL or a CALLRESULT with its ``action``): compiled first; a refused one goes to the
    package's own ``_validate_payload``, which raises the package's OCPP error (or passes: its verdict holds)."""
    try:
        fast = get_validator(message.message_type_id, message.action, ocpp_version).fast
    except OSError:  # no schema for this action: the package's own error (NotImplemented)
        fast = None
    if fast is None or not fast.is_valid(message.payload):
        _reference_validate_payload(message, ocpp_version)


class CompiledValidation:
    """Mix-in for an ``ocpp`` ChargePoint subclass (put it first among the bases): the requests it receives and its
    answers to them are validated with :func:`validate` on the event loop, instead of by the package (whose
    per-route validation is switched off for this instance only). Routes declared with
    ``@on(..., skip_schema_validation=True)`` stay unvalidated."""

    _ocpp_version: str
    route_map: dict[str, dict[str, Any]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for action, handlers in list(self.route_map.items()):
            if handlers.get("_skip_schema_validation", False) or "_on_action" not in handlers:
                continue
            self.route_map[action] = {
                **handlers,
                "_on_action": self._answer_validated(action, handlers["_on_action"]),
                "_skip_schema_validation": True,
                "_compiled_validation": True,
            }

    def _answer_validated(self, action: str, handler: Callable[..., Any]) -> Callable[..., Any]:
        version = self._ocpp_version

        @functools.wraps(handler)
        async def answer(**kwargs: Any) -> Any:
            response = handler(**kwargs)
            if inspect.isawaitable(response):  # the package allows plain functions as handlers
                response = await response
            payload = snake_to_camel_case(remove_nones(serialize_as_dict(response)))
            validate(CallResult(unique_id="", action=action, payload=payload), version)
            return response

        return answer

    async def _handle_call(self, msg: Call) -> Any:
        handlers = self.route_map.get(msg.action)
        if handlers is not None and handlers.get("_compiled_validation", False):
            validate(msg, self._ocpp_version)
        return await super()._handle_call(msg)  # type: ignore[misc]


def configure_ocpp_validation() -> None:
    """Explicit, process-wide opt-in (see the module's docstring): every ``ocpp`` ChargePoint of this process
    validates compiled and on the event loop. For processes that run simulated stations alone. Idempotent."""
    ocpp.messages.ASYNC_VALIDATION = False
    ocpp.messages.get_validator = get_validator
