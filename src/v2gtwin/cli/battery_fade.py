"""`v2gtwin battery fade`: capacity fade of the scenario's fleet over years of its daily uncontrolled charging."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Annotated, Any

import typer

from v2gtwin.cli._common import JsonOpt, ScenarioOpt, _emit, load_scenario_with
from v2gtwin.cli.battery import battery_app
from v2gtwin.errors import ScenarioError


@battery_app.command("fade")
def battery_fade(
    scenario: ScenarioOpt = None,
    years: Annotated[
        int | None, typer.Option(min=1, max=30, help="Years of ageing (1-30; default: battery.years).")
    ] = None,
    chemistry: Annotated[
        str | None,
        typer.Option(help="Every EV's ageing model, nmc or lfp (default: battery.lfp_share of the EVs LFP)."),
    ] = None,
    temp_c: Annotated[
        float | None,
        typer.Option(
            "--temp-c", min=0.0, max=60.0, help="Cell temperature, all year (0-60; default: battery.temp_c) [degC]."
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Fleet capacity fade by year (mean and 5/50/95th percentiles over EVs) for the scenario's uncontrolled
    charging, the day repeated for --years.

    Each EV's day is its duty cycle as the study ages it (v2gtwin.battery.cost.calc_daily_duty_soc): the SoC
    simulated while plugged in, and, while away, a linear fall from its departure SoC to its arrival SoC (the
    fleet model does not simulate driving), so the day is a closed cycle whose depth of discharge is counted by
    rainflow.
    """
    from v2gtwin.battery.cost import assign_chemistry, calc_daily_duty_soc
    from v2gtwin.battery.degradation import CHEMISTRIES, calc_extrapolation_note, calc_fade, summarize_fade
    from v2gtwin.fleet import run_uncontrolled
    from v2gtwin.study import build_fleet

    if chemistry is not None and chemistry not in CHEMISTRIES:
        raise ScenarioError(f"--chemistry {chemistry!r} is not known; allowed: {', '.join(CHEMISTRIES)}")
    scen = load_scenario_with(scenario, {})
    if abs(scen.time.n_steps * scen.time.dt_s - 86_400.0) > 1e-6:
        raise ScenarioError(
            "battery fade repeats one day: time.n_steps * time.dt_s must be 86400 s; got "
            f"{scen.time.n_steps} x {scen.time.dt_s:g} s"
        )
    years = scen.battery.years if years is None else years
    temp = scen.battery.temp_c if temp_c is None else temp_c
    with _Steps(show=not json_out and sys.stderr.isatty()) as steps:
        steps.advance("fleet")
        fleet = build_fleet(scen)
        chem = chemistry if chemistry is not None else assign_chemistry(fleet.n, scen.battery.lfp_share, scen.seed)
        steps.advance("uncontrolled charging")
        soc = calc_daily_duty_soc(fleet, run_uncontrolled(fleet).soc_pu)
        steps.advance(f"ageing {fleet.n:,} EVs, {years} year(s)")
        fade = calc_fade(soc, scen.time.dt_h, temp, years, chem, capacity_kwh=fleet.capacity_kwh)
    out: dict[str, Any] = summarize_fade(fade, temp, scen.battery.eol_fade_pu)
    out["operation"] = "uncontrolled charging, the scenario's day repeated"
    out["notes"] = [n for n in (calc_extrapolation_note(temp),) if n]
    _emit(out, json_out)


class _Steps:
    """A three-step progress bar on stderr (rich) when ``show``; nothing otherwise."""

    def __init__(self, show: bool) -> None:
        self._progress: Any = None
        self._task: Any = None
        self._done = 0
        if show:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=Console(stderr=True)
            )

    def __enter__(self) -> _Steps:
        if self._progress is not None:
            self._progress.__enter__()
            self._task = self._progress.add_task("battery fade", total=3)
        return self

    def advance(self, what: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=self._done, description=what)
        self._done += 1

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=3)
            self._progress.__exit__(et, ev, tb)
