"""Operating envelopes against closed forms, the existing hosting bisection, a brute-force bisection on the exact
power flow and pandapower's Newton-Raphson power flow."""

from __future__ import annotations

import math

import numpy as np
import pandapower as pp
import pytest

from v2gtwin.errors import DataError
from v2gtwin.grid.envelopes import ALLOCATION_RULES, calc_operating_envelope
from v2gtwin.grid.feeder import Feeder, ieee33, run_powerflow, synthetic_feeder, to_pandapower
from v2gtwin.grid.hosting import run_node_hosting


def two_bus(r: float = 0.02, x: float = 0.01, p0_kw: float = 100.0, ampacity_a: float = math.inf) -> Feeder:
    # 1 kV base and 1 MVA: impedances in ohm equal pu.
    return Feeder(
        "two",
        np.array([-1, 0]),
        np.array([0, r]),
        np.array([0, x]),
        1.0,
        np.array([0.0, p0_kw]),
        np.zeros(2),
        np.array([math.inf, ampacity_a]),
    )


def load_at(v: float, r: float, x: float) -> float:
    """Unity-pf load P [pu] at the end of one branch from a 1 pu source that gives voltage v:
    V^4 - (V0^2 - 2 r P) V^2 + (r^2 + x^2) P^2 = 0, the root on the upper (normal) branch of the PV curve."""
    a, b, c = r * r + x * x, 2 * r * v**2, v**4 - v**2
    return (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)


def ieee33_day(
    n_steps: int = 4, scales: tuple[float, ...] = (0.2, 0.35, 0.5, 0.55)
) -> tuple[Feeder, np.ndarray, np.ndarray]:
    f = ieee33()
    s = np.array(scales[:n_steps])[:, None]
    return f, s * f.p_load_kw, s * f.q_load_kvar


def ev_weights(n_bus: int, seed: int = 3) -> np.ndarray:
    w = np.bincount(np.random.default_rng(seed).integers(1, n_bus, 300), minlength=n_bus).astype(float)
    w[5] = 0.0  # a bus without EVs
    return w


def test_two_bus_closed_form_import_and_export() -> None:
    r, x, p0 = 0.02, 0.01, 100.0
    env = calc_operating_envelope(two_bus(r, x, p0), [[0.0, p0]], [[0.0, 0.0]], rule="per_bus_max", tol_kw=1e-4)
    # Import: total load at v = 0.95 minus the base load. Export: total load at v = 1.05 is negative (an
    # injection); the EVs feed it plus the base load: 2,640.6 kW - ... (the quadratic's upper root).
    p_import_kw = load_at(0.95, r, x) * 1000 - p0
    p_export_kw = -load_at(1.05, r, x) * 1000 + p0
    assert env.p_import_max_kw[0, 1] == pytest.approx(p_import_kw, abs=2e-4)
    assert env.p_export_max_kw[0, 1] == pytest.approx(p_export_kw, abs=2e-4)
    assert env.p_import_max_kw[0, 1] <= p_import_kw + 1e-9  # never above the exact limit
    assert env.binding_import[0, 1] == "v_min at bus 1"
    assert env.binding_export[0, 1] == "v_max at bus 1"
    # The source bus takes nothing, and the linear first estimate is close but not exact.
    assert env.p_import_max_kw[0, 0] == 0.0 and env.binding_import[0, 0] == "none"
    assert 0.8 < env.p_import_estimate_kw[0, 1] / p_import_kw < 1.2
    assert env.p_import_estimate_kw[0, 1] != pytest.approx(p_import_kw, rel=1e-4)


def test_two_bus_thermal_limit_binds_on_the_branch() -> None:
    # 1 kV: i_base = 1000 / sqrt(3) = 577.35 A. A 100 A rating binds long before the voltage: at the limit
    # |I| = P / (sqrt(3) V) so P_total = sqrt(3) * 1 kV * 100 A * V with V from the voltage drop of that load.
    r, x, p0 = 0.02, 0.01, 20.0
    env = calc_operating_envelope(two_bus(r, x, p0, ampacity_a=100.0), [[0.0, p0]], [[0.0, 0.0]], rule="per_bus_max")
    p_total_pu = env.p_import_max_kw[0, 1] / 1000 + p0 / 1000
    v = run_powerflow(two_bus(r, x, p0), [0.0, p_total_pu * 1000], [0.0, 0.0]).v_pu[0, 1]
    i_a = p_total_pu * 1000 / (math.sqrt(3) * 1.0 * v)
    assert i_a == pytest.approx(100.0, abs=0.01)
    assert env.binding_import[0, 1] == "ampacity of branch 1"


def test_per_bus_max_equals_node_hosting_bisection() -> None:
    # One step, the others held at base load: the per-bus envelope is the node hosting capacity of the
    # existing bisection (hosting.run_node_hosting), import and the new export side.
    f, p, q = ieee33_day(1, (0.5,))
    env = calc_operating_envelope(f, p, q, rule="per_bus_max", tol_kw=0.01)
    imp = run_node_hosting(f, p[0], q[0], tol_kw=0.01)
    exp = run_node_hosting(f, p[0], q[0], tol_kw=0.01, direction="export")
    assert exp.direction == "export" and imp.direction == "import"
    # Both are within 0.01 kW below the exact limit.
    np.testing.assert_allclose(env.p_import_max_kw[0, 1:], imp.p_host_kw, atol=0.02)
    np.testing.assert_allclose(env.p_export_max_kw[0, 1:], exp.p_host_kw, atol=0.02)
    assert not env.simultaneous
    # Applied at every bus at once the per-bus bounds are far from feasible: the exact check says so.
    assert env.ac_violations > 0


def test_per_bus_max_violations_count_what_pandapower_finds() -> None:
    # Every branch rated 65 A (the first line carries about 50 A and 60 A at 25 % and 30 % of Baran & Wu's load):
    # each bus alone binds on a line. Applied at every bus at once, import and export separately, the per-bus
    # bounds break voltages and ratings; ac_violations must be pandapower's (Newton-Raphson) count of bus-steps
    # outside [0.95, 1.05] pu plus line-steps above 65 A, over both cases.
    amp_a = 65.0
    f = ieee33(ampacity_a=amp_a)
    s = np.array([0.25, 0.3])[:, None]
    p, q = s * f.p_load_kw, s * f.q_load_kvar
    env = calc_operating_envelope(f, p, q, rule="per_bus_max")
    assert env.base_violation_steps == 0
    assert any(str(b).startswith("ampacity of line ") for b in env.binding_import[:, 1:].ravel())
    counts = {"import_v": 0, "export_v": 0, "import_i": 0, "export_i": 0}
    for t in range(2):
        for case, sign, p_env in (("import", 1.0, env.p_import_max_kw[t]), ("export", -1.0, env.p_export_max_kw[t])):
            net = to_pandapower(f, p[t] + sign * p_env, q[t])
            pp.runpp(net, tolerance_mva=1e-9, max_iteration=50)
            v = net.res_bus.vm_pu.to_numpy()[1:]
            i_a = net.res_line.i_ka.to_numpy() * 1000.0
            # No value within 1e-6 of a limit: the count does not hinge on either solver's last digits.
            assert np.abs(v - 0.95).min() > 1e-6 and np.abs(v - 1.05).min() > 1e-6
            assert np.abs(i_a / amp_a - 1.0).min() > 1e-6
            counts[f"{case}_v"] += int(((v < 0.95) | (v > 1.05)).sum())
            counts[f"{case}_i"] += int((i_a > amp_a).sum())
    # Both cases and both kinds of limit contribute (measured with pandapower: 192 in all, 6 of them voltages
    # less than 1e-2 pu outside the limits, so a loose check tolerance would miss them).
    assert min(counts.values()) > 0, counts
    assert env.ac_violations == sum(counts.values()), counts


def test_export_hosting_closed_form_two_bus() -> None:
    r, x = 0.02, 0.01
    res = run_node_hosting(two_bus(r, x, 0.0), direction="export", v_max_pu=1.05, tol_kw=1e-4)
    assert res.p_host_kw[0] == pytest.approx(-load_at(1.05, r, x) * 1000, abs=2e-4)
    assert res.binding[0] == "voltage at bus 1"
    # LinDistFlow first estimate: (v_max^2 - 1) / (2 r).
    assert res.p_estimate_kw[0] == pytest.approx((1.05**2 - 1) / (2 * r) * 1000, rel=1e-12)


def brute_force_alpha(f: Feeder, p: np.ndarray, q: np.ndarray, w: np.ndarray, sign: float) -> float:
    """Plain bisection (60 halvings) on the exact power flow of one step: the largest alpha with every voltage
    in [0.95, 1.05] pu."""

    def ok(a: float) -> bool:
        pf = run_powerflow(f, p + sign * a * w, q, on_nonconvergence="nan")
        v = pf.v_pu[0, 1:]
        return bool(np.all(v >= 0.95) and np.all(v <= 1.05))

    lo, hi = 0.0, 1.0
    while ok(hi):
        lo, hi = hi, hi * 2
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return lo


@pytest.mark.parametrize("rule", ["equal_per_ev", "proportional_to_rating"])
def test_simultaneous_alpha_matches_brute_force_bisection(rule: str) -> None:
    f, p, q = ieee33_day()
    w = ev_weights(f.n_bus)
    if rule == "proportional_to_rating":
        w = w * np.random.default_rng(4).choice([7.4, 11.0], f.n_bus)  # charger kW at each bus
    env = calc_operating_envelope(f, p, q, rule=rule, weight_bus=w, tol_kw=1e-3)
    assert env.simultaneous and env.ac_violations == 0 and env.rule == rule
    assert env.alpha_import is not None and env.alpha_export is not None
    for t in range(p.shape[0]):
        a_imp = brute_force_alpha(f, p[t], q[t], w, 1.0)
        a_exp = brute_force_alpha(f, p[t], q[t], w, -1.0)
        # tol_kw = 1e-3 kW on the largest bus: alpha within 1e-3 / max(w) below the exact value.
        assert a_imp - 1e-3 / w.max() - 1e-9 <= env.alpha_import[t] <= a_imp + 1e-9
        assert a_exp - 1e-3 / w.max() - 1e-9 <= env.alpha_export[t] <= a_exp + 1e-9
        np.testing.assert_allclose(env.p_import_max_kw[t], env.alpha_import[t] * w, rtol=1e-12)
    # A bus without EVs (weight 0) gets nothing, and nothing binds it.
    assert np.all(env.p_import_max_kw[:, 5] == 0) and set(env.binding_import[:, 5]) == {"none"}


def test_envelope_passes_pandapower_and_is_the_largest() -> None:
    # pandapower's Newton-Raphson (an independent solver) on the envelope applied at all buses at once: within
    # limits; 1 % more at every bus violates.
    f, p, q = ieee33_day(2, (0.3, 0.55))  # Baran & Wu's loads x 0.55: lowest voltage just above 0.95 pu
    w = ev_weights(f.n_bus)
    env = calc_operating_envelope(f, p, q, rule="equal_per_ev", weight_bus=w)
    for t in range(2):
        for sign, p_env, check_ok, check_bad in (
            (1.0, env.p_import_max_kw[t], lambda v: v.min() >= 0.95 - 1e-8, lambda v: v.min() < 0.95),
            (-1.0, env.p_export_max_kw[t], lambda v: v.max() <= 1.05 + 1e-8, lambda v: v.max() > 1.05),
        ):
            for extra, check in ((1.0, check_ok), (1.01, check_bad)):
                net = to_pandapower(f, p[t] + sign * extra * p_env, q[t])
                pp.runpp(net, tolerance_mva=1e-11)
                assert check(net.res_bus.vm_pu.to_numpy()), (t, sign, extra)


def test_thermal_limited_envelope_on_ieee33_binds_on_a_line() -> None:
    # 100 A on every branch: the first line (60 A at 30 % load: 1.31 MVA / (sqrt(3) 12.66 kV)) reaches it before
    # any voltage limit (without ratings the import stops at v_min with about 1.2 MW more).
    f = ieee33(ampacity_a=100.0)
    p, q = 0.3 * f.p_load_kw[None, :], 0.3 * f.q_load_kvar[None, :]
    w = ev_weights(f.n_bus)
    env = calc_operating_envelope(f, p, q, rule="equal_per_ev", weight_bus=w)
    label = str(env.binding_import[0, 1])
    assert label.startswith("ampacity of line "), label
    # to_pandapower creates one line per feeder bus k >= 1 in feeder order: the branch feeding bus k is line k - 1.
    line = f.branch_label.index(label.removeprefix("ampacity of ")) - 1
    for extra, ok in ((1.0, True), (1.01, False)):
        net = to_pandapower(f, p[0] + extra * env.p_import_max_kw[0], q[0])
        pp.runpp(net, tolerance_mva=1e-11)
        i_a = net.res_line.i_ka.to_numpy() * 1000
        assert bool(i_a.max() <= 100.0 + 1e-6) is ok, (extra, i_a.max())
        if ok:  # the binding line is the one at its rating
            assert i_a[line] == pytest.approx(100.0, abs=0.01)
    assert env.ac_violations == 0
    assert str(env.binding_export[0, 1]).startswith("ampacity of line ")  # reverse flow on the same line


def test_base_load_outside_limits_gives_zero_and_says_so() -> None:
    # Baran & Wu's full load sits at 0.913 pu: no room to charge at that step.
    f = ieee33()
    p = np.vstack([0.5 * f.p_load_kw, f.p_load_kw])
    q = np.vstack([0.5 * f.q_load_kvar, f.q_load_kvar])
    env = calc_operating_envelope(f, p, q, weight_bus=ev_weights(f.n_bus))
    assert env.base_violation_steps == 1 and env.ac_violations == 0
    assert np.all(env.p_import_max_kw[1] == 0) and np.all(env.p_export_max_kw[1] == 0)
    assert env.binding_import[1, 1] == "base load: v_min at bus 18"
    assert env.p_import_max_kw[0, 1] > 0


def test_to_frame_and_to_dict() -> None:
    f, p, q = ieee33_day(2)
    env = calc_operating_envelope(f, p, q, rule="per_bus_max")
    frame = env.to_frame()
    assert len(frame) == 2 * f.n_bus
    assert list(frame.columns) == [
        "step",
        "bus",
        "p_import_max_kw",
        "p_export_max_kw",
        "binding_import",
        "binding_export",
        "rule",
        "simultaneous",
    ]
    assert set(frame.rule) == {"per_bus_max"} and not frame.simultaneous.any()
    row = frame[(frame.step == 1) & (frame.bus == "18")].iloc[0]
    assert row.p_import_max_kw == env.p_import_max_kw[1, list(f.bus_labels).index("18")]
    d = env.to_dict()
    assert d["rule"] == "per_bus_max" and d["simultaneous"] is False
    assert d["p_import_max_total_kw"] is None  # a sum of per-bus optimistic bounds is no feeder limit
    assert any("NOT feasible for all buses at once" in n for n in d["notes"])
    # Per bus and step on request (the command's --json): the same numbers as the arrays.
    assert "p_import_max_kw" not in d
    full = env.to_dict(per_bus_steps=True)
    assert full["p_export_max_kw"]["18"].tolist() == env.p_export_max_kw[:, list(f.bus_labels).index("18")].tolist()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"v_min_pu": 1.05, "v_max_pu": 1.05}, "v_min_pu, v_max_pu"),
        ({"v_min_pu": 1.06}, "v_min_pu, v_max_pu"),
        ({"weight_bus": -np.ones(33)}, "weight_bus[0]"),
        ({"weight_bus": np.ones(5)}, "weight_bus: expected shape (33,)"),
        ({"weight_bus": np.r_[0.0, -1.0, np.ones(31)]}, "weight_bus[1] (bus 2): must be finite and >= 0"),
        ({"weight_bus": np.r_[2.0, np.ones(32)]}, "weight_bus[0] (the source bus 1): must be 0"),
        ({"rule": "greedy"}, "rule: must be one of equal_per_ev"),
        ({"tol_kw": 0.0}, "tol_kw"),
    ],
)
def test_bad_input_is_one_line_data_error(kwargs: dict, message: str) -> None:
    f, p, q = ieee33_day(1)
    with pytest.raises(DataError) as exc:
        calc_operating_envelope(f, p, q, **kwargs)
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_base_load_of_wrong_shape_is_a_data_error() -> None:
    f, p, q = ieee33_day(1)
    with pytest.raises(DataError, match=r"p_base_kw, q_base_kvar: expected shape \(n_steps, 33\)"):
        calc_operating_envelope(f, p[:, :5], q[:, :5])
    with pytest.raises(DataError, match="p_base_kw"):
        calc_operating_envelope(f, p[0], q[0])
    with pytest.raises(DataError, match="finite"):
        calc_operating_envelope(f, p * np.nan, q)


def test_export_hosting_bad_direction() -> None:
    with pytest.raises(DataError, match="direction: must be one of import, export"):
        run_node_hosting(two_bus(), direction="both")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="v_max_pu"):
        run_node_hosting(two_bus(), v_min_pu=0.95, v_max_pu=0.9)


def test_rules_registry_names_the_contract_rules() -> None:
    assert set(ALLOCATION_RULES) == {"equal_per_ev", "proportional_to_rating", "per_bus_max"}
    assert [r.simultaneous for r in ALLOCATION_RULES.values()] == [True, True, False]


def check_synthetic(seed: int, rule: str) -> set[str]:
    """Seeded random feeder, some branches rated: at every step the envelope applied at all buses at once is
    within limits by the exact power flow, and 1 % more is not. Returns the kinds of binding limits met."""
    rng = np.random.default_rng(seed)
    f = synthetic_feeder(int(rng.integers(20, 60)), rng, total_load_kw=2000.0)
    s = rng.uniform(0.2, 0.9, 8)[:, None]
    p, q = s * f.p_load_kw, s * f.q_load_kvar
    # A fifth of the branches rated 1.1-6 x their highest base-load current: the base is feasible, and a rating
    # binds before the voltage on some feeders and steps, a voltage on others.
    i_base_a = run_powerflow(f, p, q).i_branch_a.max(axis=0)
    amp = np.where(rng.random(f.n_bus) < 0.2, i_base_a * rng.uniform(1.1, 6.0, f.n_bus), np.inf)
    amp[0] = np.inf
    f = Feeder(**{**f.__dict__, "ampacity_a": amp})
    w = rng.integers(0, 6, f.n_bus).astype(float)
    w[0] = 0.0
    env = calc_operating_envelope(f, p, q, rule=rule, weight_bus=w)
    assert env.ac_violations == 0

    def n_bad(p_kw: np.ndarray) -> np.ndarray:
        pf = run_powerflow(f, p_kw, q, on_nonconvergence="nan")
        v, load = pf.v_pu[:, 1:], pf.i_branch_a[:, 1:] / amp[1:]
        return np.sum(~((v >= 0.95 - 1e-9) & (v <= 1.05 + 1e-9)), axis=1) + np.sum(~(load <= 1 + 1e-9), axis=1)

    assert env.base_violation_steps == 0  # every step's base load is within limits here
    assert np.all(n_bad(p + env.p_import_max_kw) == 0) and np.all(n_bad(p - env.p_export_max_kw) == 0)
    assert np.all(n_bad(p + 1.01 * env.p_import_max_kw) > 0)
    assert np.all(n_bad(p - 1.01 * env.p_export_max_kw) > 0)
    kinds = {
        str(b).split(" ")[0] for b in np.concatenate([env.binding_import[:, 1:], env.binding_export[:, 1:]]).ravel()
    }
    assert kinds <= {"v_min", "v_max", "ampacity", "none"}
    return kinds


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("rule", ["equal_per_ev", "proportional_to_rating"])
def test_envelope_is_feasible_and_largest_at_every_step_on_synthetic_feeders(seed: int, rule: str) -> None:
    check_synthetic(seed, rule)


def test_synthetic_cases_exercise_voltage_and_thermal_limits() -> None:
    kinds = set().union(*(check_synthetic(seed, "equal_per_ev") for seed in range(4)))
    assert {"v_min", "v_max", "ampacity"} <= kinds, kinds


def test_feeder_without_evs_gets_zero_and_no_warning() -> None:
    # A feeder with no EV on it (every weight 0): nothing to share, so 0 kW at every bus and step in both
    # directions (by definition of the simultaneous rules: limit = alpha_t x weight), and no numpy warning.
    import warnings

    f, p, q = ieee33_day(2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env = calc_operating_envelope(f, p, q, rule="equal_per_ev", weight_bus=np.zeros(f.n_bus))
    assert np.all(env.p_import_max_kw == 0.0) and np.all(env.p_export_max_kw == 0.0)
    assert env.ac_violations == 0
