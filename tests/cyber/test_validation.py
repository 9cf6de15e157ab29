"""The compiled OCPP validation (jsonschema-rs first) against the reference, the ``ocpp`` package's own
``jsonschema`` Draft 4 validators: the same verdict on frames generated near the boundary of every request and
response schema of OCPP 2.0.1 and 2.1, and the same CALLERROR for a frame the server refuses."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import jsonschema
import ocpp
import ocpp.messages
import pytest

from tests.cyber.helpers import run
from v2gtwin.cyber.csms.validation import CompiledValidator, configure_ocpp_validation, get_validator

SCHEMAS = sorted(
    (version, path)
    for version in ("v201", "v21")
    for path in (Path(ocpp.__file__).parent / version / "schemas").glob("*.json")
)
DATE_TIMES = ["2026-11-26T02:00:00Z", "2026-11-26T02:00:00.123+01:00", "yesterday", ""]
OFF = [None, True, False, 0, -1, 2**40, 1.5, 1.0, "", "x", [], {}, [1], {"a": 1}]


def near(schema: dict[str, Any], root: dict[str, Any], rng: random.Random, p_off: float, depth: int = 0) -> Any:
    """A value that follows ``schema`` (resolving ``#/definitions`` references against ``root``) except where,
    with probability ``p_off`` at each node, it does not: wrong types, missing required or extra properties,
    strings one past ``maxLength``, numbers past their bounds, arrays past their sizes, unknown enum values."""
    if "$ref" in schema:
        schema = root["definitions"][schema["$ref"].rsplit("/", 1)[1]]
    if rng.random() < p_off:
        return rng.choice(OFF)
    kind = schema.get("type")
    if "enum" in schema:
        return rng.choice(schema["enum"]) if rng.random() > p_off else "NotAnEnumValue"
    if kind == "object":
        out: dict[str, Any] = {}
        required = set(schema.get("required", []))
        for name, sub in schema.get("properties", {}).items():
            if name in required:
                if rng.random() > p_off / 2:
                    out[name] = near(sub, root, rng, p_off, depth + 1)
            elif depth < 6 and rng.random() < 0.4:
                out[name] = near(sub, root, rng, p_off, depth + 1)
        if rng.random() < p_off / 2:
            out["unexpectedKey"] = 1
        return out
    if kind == "array":
        lo, hi = schema.get("minItems", 0), schema.get("maxItems", 3)
        n = rng.choice([lo, min(hi, lo + 1), min(hi, 3)])
        if rng.random() < p_off / 2:
            n = rng.choice([max(0, lo - 1), hi + 1])
        return [near(schema.get("items", {}), root, rng, p_off, depth + 1) for _ in range(min(n, 4))]
    if kind == "string":
        if schema.get("format") == "date-time":
            return rng.choice(DATE_TIMES)
        cap = schema.get("maxLength", 20)
        n = rng.choice([0, 1, cap, cap + 1] if rng.random() < p_off else [0, 1, cap])
        return rng.choice("aé😀-") * n
    if kind in ("integer", "number"):
        lo, hi = schema.get("minimum", -1000), schema.get("maximum", 1000)
        value: Any = rng.choice([lo, hi, (lo + hi) // 2, lo - 1, hi + 1] if rng.random() < p_off else [lo, hi])
        if kind == "number" and rng.random() < 0.5:
            value = value + 0.25 if value + 0.25 <= hi else value - 0.25
        if kind == "integer" and rng.random() < p_off:
            value = float(value)  # 1.0 is no integer in Draft 4
        return value
    if kind == "boolean":
        return rng.random() < 0.5
    return rng.choice(OFF)  # no type: anything goes


def test_compiled_validation_agrees_with_the_package_on_every_schema() -> None:
    rng = random.Random(20261126)
    agree = valid = total = 0
    for version, path in SCHEMAS:
        root = json.loads(path.read_text(encoding="utf-8-sig"))
        reference = jsonschema.Draft4Validator(root)  # as ocpp.messages.get_validator builds it
        compiled = CompiledValidator(reference)
        for k in range(12):
            instance = near(root, root, rng, p_off=(0.0, 0.02, 0.1)[k % 3])
            ref_ok = reference.is_valid(instance)
            fast_ok = bool(compiled.fast.is_valid(instance))
            assert not (fast_ok and not ref_ok), f"{version}/{path.name}: compiled accepts {instance!r}"
            assert compiled.is_valid(instance) == ref_ok
            agree += fast_ok == ref_ok
            valid += ref_ok
            total += 1
    # Not vacuous: both verdicts are frequent, and the compiled one is the reference's on every frame here.
    assert total == 12 * len(SCHEMAS) and len(SCHEMAS) > 300
    assert 0.2 < valid / total < 0.85, valid / total
    assert agree == total


def test_the_central_system_validates_compiled_and_leaves_other_charge_points_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Starting a Csms changes nothing process-wide: a plain ``ocpp`` ChargePoint in the same process still
    validates with the package's own validator (looked up through ``ocpp.messages.get_validator``, in a worker
    thread), while the central system's handlers validate compiled (the package's reference is consulted only
    for a frame the compiled validator refuses)."""
    import asyncio
    import threading

    from ocpp.v201 import ChargePoint, call
    from websockets.asyncio.client import connect

    from v2gtwin.cyber.csms import validation
    from v2gtwin.cyber.csms.server import SUBPROTOCOL, Csms
    from v2gtwin.cyber.csms.store import Store

    # As a fresh process has it, with a spy on the package's own lookup.
    looked_up: list[tuple[int, str, bool]] = []

    def spy(message_type_id: int, action: str, ocpp_version: str, parse_float: Any = float) -> Any:
        on_loop = threading.current_thread() is threading.main_thread()
        looked_up.append((int(message_type_id), action, on_loop))
        return validation._reference_get_validator(message_type_id, action, ocpp_version, parse_float=parse_float)

    monkeypatch.setattr(ocpp.messages, "get_validator", spy)
    monkeypatch.setattr(ocpp.messages, "ASYNC_VALIDATION", True)
    referred: list[str] = []
    package_validate = ocpp.messages._validate_payload

    def reference(message: Any, version: str) -> None:
        referred.append(message.action)
        package_validate(message, version)

    monkeypatch.setattr(validation, "_reference_validate_payload", reference)

    async def scenario() -> tuple[Any, Any, Any, str]:
        async with Csms(Store(f"sqlite:///{tmp_path / 'csms.sqlite'}"), port=0) as csms:
            settings = (ocpp.messages.get_validator, ocpp.messages.ASYNC_VALIDATION)
            async with connect(f"ws://127.0.0.1:{csms.port}/CS-V", subprotocols=[SUBPROTOCOL]) as ws:
                cp = ChargePoint("CS-V", ws, response_timeout=5)
                task = asyncio.create_task(cp.start())
                try:
                    hb = await cp.call(call.Heartbeat())
                    await ws.send('[2,"bad-1","Heartbeat",{"extra":1}]')  # additionalProperties: refused
                    await asyncio.sleep(0.2)
                finally:
                    task.cancel()
            answer = await cp._response_queue.get()
            return settings, hb, answer, answer.error_code

    settings, hb, answer, code = run(scenario(), timeout=20)
    assert settings == (spy, True)  # the Csms replaced nothing
    assert hb.current_time
    # The plain ChargePoint: its request and the answer, each through the package's lookup, in a worker thread.
    # The central system: not once through the package for the valid frame (compiled), and the package's
    # reference only for the refused one, on the event loop, with the package's own CALLERROR.
    assert looked_up == [(2, "Heartbeat", False), (3, "Heartbeat", False), (2, "Heartbeat", True)], looked_up
    assert referred == ["Heartbeat"] and code == "FormatViolation" and answer.unique_id == "bad-1"


def test_opting_in_makes_every_charge_point_of_the_process_validate_compiled(monkeypatch: pytest.MonkeyPatch) -> None:
    from v2gtwin.cyber.csms import validation

    monkeypatch.setattr(ocpp.messages, "get_validator", validation._reference_get_validator)
    monkeypatch.setattr(ocpp.messages, "ASYNC_VALIDATION", True)
    configure_ocpp_validation()
    assert (ocpp.messages.get_validator, ocpp.messages.ASYNC_VALIDATION) == (get_validator, False)


def test_a_refused_frame_raises_the_reference_error_and_nan_is_left_to_the_reference() -> None:
    v = get_validator(ocpp.messages.MessageType.Call, "MeterValues", "2.0.1")
    assert isinstance(v, CompiledValidator)
    good = {"evseId": 1, "meterValue": [{"timestamp": "2026-11-26T02:00:00Z", "sampledValue": [{"value": 1.5}]}]}
    v.validate(good)
    with pytest.raises(jsonschema.ValidationError) as err:
        v.validate({"evseId": "one", "meterValue": good["meterValue"]})
    assert err.value.validator == "type"  # what the package maps to TypeConstraintViolation
    # NaN (Python's JSON reader accepts it): the compiled validator refuses, the reference accepts — and holds.
    nan = {"evseId": 1, "meterValue": [{"timestamp": "t", "sampledValue": [{"value": math.nan}]}]}
    assert not v.fast.is_valid(nan) and v.reference.is_valid(nan)
    v.validate(nan)
