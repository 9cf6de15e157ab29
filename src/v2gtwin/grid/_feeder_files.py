"""Pieces shared by the readers of feeder files (:mod:`v2gtwin.grid.network_io`,
:mod:`v2gtwin.grid.opendss_io`): reading text, one-line messages, where ratings came from."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import numpy.typing as npt

from v2gtwin.errors import DataError
from v2gtwin.grid.feeder import Feeder

FloatArray = npt.NDArray[np.float64]

#: Branch labels starting with this are a source's Thevenin impedance (OpenDSS Vsource), not a conductor: they
#: carry no thermal rating and :func:`check_ratings` does not ask for one.
SOURCE_IMPEDANCE_PREFIX = "Vsource."

#: Rating given to a network feeder's branches whose data has none, unless the scenario sets ``ampacity_a`` [A]:
#: the default NormAmps of OpenDSS's Line object (OpenDSS documentation, Line object properties: "NormAmps:
#: Normal rated current", default 400 A; ``tests/grid/test_network_io.py`` reads it from OpenDSS itself).
DEFAULT_AMPACITY_A = 400.0
#: Where :data:`DEFAULT_AMPACITY_A` comes from, as the feeders' notes say it.
DEFAULT_AMPACITY_SOURCE = "OpenDSS's default Line NormAmps"
#: Start of the note of a branch set left without a rating (replaced when a default fills them).
_NO_RATING_NOTE = "ampacity: no rating for "


def _read_text(path: Path) -> str:
    if path.is_dir():
        raise DataError(f"{path.name}: a directory, not a MATPOWER case (.m) or OpenDSS script (.dss) ({path})")
    if not path.is_file():
        raise DataError(f"{path.name}: no such file ({path})")
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        try:
            return raw.decode("latin-1") if b"\x00" not in raw else _not_text(path)
        except UnicodeDecodeError:
            return _not_text(path)


def _one_line(exc: BaseException, max_chars: int = 300) -> str:
    """A dependency's (often multi-line) error message as one line."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= max_chars else text[: max_chars - 3] + "..."


def _not_text(path: Path) -> str:
    raise DataError(f"{path.name}: not a MATPOWER case (.m) or OpenDSS script (.dss): not a text file")


def _rating_notes(
    name: str,
    ampacity_a: FloatArray,
    rated: npt.NDArray[np.bool_],
    conductor: npt.NDArray[np.bool_],
    default_ampacity_a: float | None,
    source: str,
) -> tuple[FloatArray, list[str]]:
    """Fill unrated conductors with the default (when given) and say where every rating came from."""
    if default_ampacity_a is not None and not (default_ampacity_a > 0 and math.isfinite(default_ampacity_a)):
        raise DataError(f"default_ampacity_a: must be a finite value > 0 A, got {default_ampacity_a}")
    amp = np.array(ampacity_a, dtype=float)
    missing = conductor & ~rated
    notes = []
    n_rated = int((conductor & rated).sum())
    if n_rated:
        notes.append(f"ampacity: from {source} for {n_rated} branches")
    if missing.any() and default_ampacity_a is not None:
        amp[missing] = default_ampacity_a
        notes.append(
            f"ampacity: default of {default_ampacity_a:g} A for {int(missing.sum())} branches without a rating "
            f"in {name}"
        )
    elif missing.any():
        amp[missing] = np.inf
        notes.append(f"{_NO_RATING_NOTE}{int(missing.sum())} branches in {name} (no thermal limit on them)")
    return amp, notes


def _conductors(feeder: Feeder) -> npt.NDArray[np.bool_]:
    """Branches that need a thermal rating: all but the source bus's (none) and a source impedance."""
    labels = feeder.branch_label
    return np.array([i > 0 and not labels[i].startswith(SOURCE_IMPEDANCE_PREFIX) for i in range(feeder.n_bus)])


def check_ratings(
    feeder: Feeder, hint: str = "give a default ampacity (default_ampacity_a / --default-ampacity-a)"
) -> None:
    """Raise a one-line DataError naming the feeder (its file) and the first branch without a thermal rating.

    For callers that need thermal limits (operating envelopes with branch limits, network schedules). A source
    impedance (branch label starting with :data:`SOURCE_IMPEDANCE_PREFIX`) needs none. ``hint`` ends the
    message: how the caller's user gives a rating.
    """
    labels = feeder.branch_label
    missing = _conductors(feeder) & ~np.isfinite(feeder.ampacity_a)
    if missing.any():
        i = int(np.argmax(missing))
        what = labels[i] or f"branch to bus {feeder.bus_labels[i]}"
        raise DataError(f"{feeder.name}: {what}: no thermal rating ({int(missing.sum())} branches without one); {hint}")


def apply_default_rating(feeder: Feeder, ampacity_a: float, source: str) -> Feeder:
    """The feeder with ``ampacity_a`` [A] on every branch its data leaves unrated (a source impedance excepted),
    and a note naming how many, the value and ``source`` (where the value comes from); unchanged when every
    branch is rated. A reader's "no rating" note is replaced by it."""
    if not (ampacity_a > 0 and math.isfinite(ampacity_a)):
        raise DataError(f"ampacity_a: must be a finite value > 0 A, got {ampacity_a}")
    missing = _conductors(feeder) & ~np.isfinite(feeder.ampacity_a)
    if not missing.any():
        return feeder
    amp = np.array(feeder.ampacity_a, dtype=float)
    amp[missing] = ampacity_a
    n, n_all = int(missing.sum()), int(_conductors(feeder).sum())
    some = "every branch" if n == n_all else f"{n} of its {n_all} branches"
    note = f"ampacity: no rating in {feeder.name}'s data for {some}: {source}, {ampacity_a:g} A, on them"
    notes = tuple(x for x in feeder.notes if not x.startswith(_NO_RATING_NOTE))
    return Feeder(**{**feeder.__dict__, "ampacity_a": amp, "notes": (*notes, note)})
