"""Benchmark: rendering the study report (every figure drawn, legends placed, PNGs encoded) for one study.

Prints one JSON line: {"n_evs", "n_figures", "render_s" (median of ``--repeats`` timed ``render_html`` calls
after one warm-up call), "render_runs_s", "study_s" (the study run once before, not part of the figure)}.
The default is the built-in scenario's fleet; ``--n-evs`` makes a smaller or larger one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from v2gtwin.report import render_html
from v2gtwin.scenario import DEFAULT_SCENARIO
from v2gtwin.study import StudyChain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-evs", type=int, default=DEFAULT_SCENARIO.fleet.n_evs)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    scenario = DEFAULT_SCENARIO.model_validate(
        DEFAULT_SCENARIO.model_dump() | {"fleet": DEFAULT_SCENARIO.fleet.model_dump() | {"n_evs": args.n_evs}}
    )
    t0 = time.perf_counter()
    result = StudyChain(scenario).run()
    study_s = time.perf_counter() - t0
    page = render_html(result)  # warm-up: fonts, imports
    runs = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        render_html(result)
        runs.append(time.perf_counter() - t)
    print(
        json.dumps(
            {
                "n_evs": args.n_evs,
                "n_figures": page.count('src="data:image/png;base64,'),
                "render_s": round(statistics.median(runs), 3),
                "render_runs_s": [round(r, 3) for r in runs],
                "study_s": round(study_s, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
