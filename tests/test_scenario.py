"""Tests of v2gtwin.scenario: defaults, TOML round trip, one-line errors naming field, value and range."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from v2gtwin.errors import ScenarioError
from v2gtwin.scenario import (
    DEFAULT_SCENARIO,
    FleetSpec,
    TimeGrid,
    load_scenario,
    parse_scenario,
    scenario_schema,
    scenario_to_toml,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_default_scenario_round_trips_through_toml(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(scenario_to_toml(DEFAULT_SCENARIO))
    assert load_scenario(path) == DEFAULT_SCENARIO
    assert load_scenario(None) is DEFAULT_SCENARIO


def test_examples_validate_and_default_example_is_the_builtin_default() -> None:
    assert load_scenario(EXAMPLES / "default.toml") == DEFAULT_SCENARIO
    big = load_scenario(EXAMPLES / "fleet_100k.toml")
    assert big.fleet.n_evs == 100_000


def test_out_of_range_value_names_file_field_value_and_range(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[fleet]\nsoc_min_pu = 1.5\n")
    with pytest.raises(ScenarioError) as exc:
        load_scenario(path)
    msg = str(exc.value)
    assert str(path) in msg and "fleet.soc_min_pu" in msg and "1.5" in msg and "<= 1.0" in msg
    assert "\n" not in msg


def test_unknown_key_lists_allowed_keys() -> None:
    with pytest.raises(ScenarioError, match=r"time\.dt: unknown key 'dt'; allowed keys: dt_s, n_steps"):
        parse_scenario({"time": {"dt": 60}}, "x.toml")
    with pytest.raises(ScenarioError, match=r"unknown key 'fleeet'"):
        parse_scenario({"fleeet": {}}, "x.toml")


def test_cross_field_rules() -> None:
    with pytest.raises(ScenarioError, match="soc_min_pu <= soc_target_pu"):
        parse_scenario({"fleet": {"soc_min_pu": 0.9, "soc_target_pu": 0.5}})
    with pytest.raises(ScenarioError, match="same length"):
        parse_scenario({"fleet": {"battery_capacity_kwh": [50.0], "battery_share": [0.5, 0.5]}})
    with pytest.raises(ScenarioError, match="sum to 1"):
        parse_scenario({"fleet": {"battery_capacity_kwh": [50.0, 60.0], "battery_share": [0.5, 0.6]}})


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[time\n", "not valid TOML"),
        ("time = 3\n", "time"),
        ("[time]\nn_steps = 'many'\n", "time.n_steps"),
        ("[time]\ndt_s = 0\n", "allowed range: > 0.0"),
    ],
)
def test_malformed_files(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ScenarioError, match=fragment):
        load_scenario(path)


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="no such scenario file"):
        load_scenario(tmp_path / "nope.toml")
    with pytest.raises(ScenarioError, match="is a directory"):
        load_scenario(tmp_path)
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(binary)


def test_models_are_frozen() -> None:
    with pytest.raises(Exception, match="frozen"):
        DEFAULT_SCENARIO.fleet.n_evs = 5  # type: ignore[misc]


def test_schema_describes_units_and_forbids_extra_keys() -> None:
    schema = scenario_schema()
    fleet = schema["$defs"]["FleetSpec"]
    assert fleet["additionalProperties"] is False
    assert "[kWh]" in fleet["properties"]["battery_capacity_kwh"]["description"]


toml_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
keys = st.sampled_from(["name", "seed", "time", "fleet", "feeder", "dt_s", "n_evs", "bogus"])
fleet_keys = st.sampled_from([*FleetSpec.model_fields, "x"])


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        keys,
        toml_values | st.dictionaries(fleet_keys, toml_values, max_size=4),
        max_size=4,
    )
)
def test_any_input_is_a_scenario_or_a_one_line_scenario_error(data: dict) -> None:
    try:
        parse_scenario(data, "fuzz.toml")
    except ScenarioError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("fuzz.toml: ")


def test_schema_is_valid_toml_free_json() -> None:
    # The default renders to TOML that tomllib reads back (no None values leak into the file).
    tomllib.loads(scenario_to_toml(DEFAULT_SCENARIO))


def test_clock_to_step_is_exact_and_refuses_times_outside_the_horizon() -> None:
    # Hand-computed: noon start, 15-min steps, 96 steps (noon to noon). 18:00 is 6 h in = step 24;
    # 02:00 the next morning is 14 h in = step 56; 11:59 is 23 h 59 min in = step 95.
    t = TimeGrid(dt_s=900.0, n_steps=96, start_hour=12.0)
    assert t.step_at(18.0) == 24
    assert t.step_at(2.0) == 56
    assert t.step_at(11.0 + 59 / 60) == 95
    assert t.clock_label(56) == "02:00 +1d"
    # A 6-hour horizon from noon does not contain 20:00 (never clamped to the last step).
    short = TimeGrid(dt_s=900.0, n_steps=24, start_hour=12.0)
    with pytest.raises(ScenarioError, match=r"markets\.v2g_offer_hour = 20 h lies outside the horizon"):
        short.step_at(20.0, "markets.v2g_offer_hour")
    for bad in (24.0, -1.0, float("nan")):
        with pytest.raises(ScenarioError, match=r"must be a clock time in \[0, 24\)"):
            t.step_at(bad, "x")


def test_consequential_error_on_a_container_is_not_counted() -> None:
    # One bad feeder entry: pydantic also reports the feeders list as too short once the entry is dropped; that
    # is the cause's consequence, so the line has no "(+1 more)". Two independent bad keys still say "+1 more".
    from v2gtwin.errors import ScenarioError
    from v2gtwin.scenario import parse_scenario

    with pytest.raises(ScenarioError) as one:
        parse_scenario({"network": {"feeders": [{"source": "synthetic", "n_bus": 1}]}}, "s.toml")
    assert "network.feeders.0.n_bus" in str(one.value) and "more)" not in str(one.value)
    with pytest.raises(ScenarioError) as two:
        parse_scenario({"seed": -1, "fleet": {"n_evs": -5}}, "s.toml")
    assert str(two.value).endswith("(+1 more)")
