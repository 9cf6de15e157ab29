"""Start-up of the CLI: `--help` loads none of the heavy stacks, and the first kernel compilation is announced.

Each check runs in a fresh interpreter (a subprocess), as a user's shell would start it: the modules one
command imports are what ``sys.modules`` holds when it has finished.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from v2gtwin.cli._jit import COMPILING_MESSAGE

SRC = str(Path(__file__).resolve().parents[1] / "src")

# What a command imports only when it needs it (the reference builders, optimisers, central system, report).
HEAVY = ("pandapower", "cvxpy", "highspy", "matplotlib", "sqlalchemy", "websockets", "ocpp", "statsmodels", "dask")


def _run(code: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), **(env_extra or {})}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=240)


_LOADED = """
import json, sys
from v2gtwin.cli import main
code = main({argv!r})
heavy = {heavy!r}
print(json.dumps({{"code": code, "loaded": sorted(m for m in heavy if m in sys.modules)}}))
"""


@pytest.mark.parametrize("argv", [["--help"], ["feeder", "--help"], ["study", "--help"]])
def test_help_imports_no_heavy_stack(argv: list[str]) -> None:
    # The reference: sys.modules of the finished process. pandapower (about 2 s to import) and cvxpy load only
    # in the commands that solve with them; --help needs neither, nor numba (the kernels).
    proc = _run(_LOADED.format(argv=argv, heavy=(*HEAVY, "numba")))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"code": 0, "loaded": []}


_FEEDER = """
import json, sys
import v2gtwin.cli.feeder
from v2gtwin.grid.analysis import build_feeder
from v2gtwin.scenario import DEFAULT_SCENARIO
feeder = build_feeder(DEFAULT_SCENARIO.feeder, DEFAULT_SCENARIO.seed)
print(json.dumps({"n_bus": feeder.n_bus, "pandapower": "pandapower" in sys.modules}))
"""


def test_feeder_is_built_without_pandapower() -> None:
    # The 33-bus case is read from its packaged table (tests/grid/test_feeder.py checks it equals pandapower's
    # case33bw), so the feeder commands and the study build it without importing pandapower (about 2 s).
    proc = _run(_FEEDER)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"n_bus": 33, "pandapower": False}


def test_study_module_does_not_import_the_path_analysis() -> None:
    # The reference: sys.modules of a fresh interpreter. The study needs only the service names of the command
    # path (cyber.service_names); the path analysis (scipy.signal, about 0.7 s) loads when its step runs.
    proc = _run(
        "import json, sys; import v2gtwin.study; print(json.dumps(sorted(m for m in "
        "('scipy.signal', 'v2gtwin.cyber.path_analysis') if m in sys.modules)))"
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


_COMPILE = """
import numpy as np
from v2gtwin.cli._jit import announce_compilation
announce_compilation()
from v2gtwin.battery.states import calc_power_state_unit
print(float(calc_power_state_unit(1.0, 0.5, 4)[-1]))
"""


@pytest.mark.slow  # two fresh interpreters importing numba: about 6-16 s on 2 busy cores
def test_first_compilation_is_announced_once(tmp_path: Path) -> None:
    # A fresh numba cache (NUMBA_CACHE_DIR): the first process compiles the kernel and says so on stderr; the
    # second loads it from the cache and says nothing. Reference for the kernel's value: y = x^0.5 stepped
    # 4 times by dx = 1 with the slope rule gives 1, 1.5, 1.8333, 2.1061 (u_{j+1} = u_j + 0.5/u_j).
    env = {"NUMBA_CACHE_DIR": str(tmp_path)}
    first, second = _run(_COMPILE, env), _run(_COMPILE, env)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert float(first.stdout) == pytest.approx(2.1060606, abs=1e-6)
    assert first.stderr.count(COMPILING_MESSAGE) == 1
    assert COMPILING_MESSAGE not in second.stderr
    assert any(tmp_path.rglob("*.nbi"))  # the index numba wrote, which the second process read
