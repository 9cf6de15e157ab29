"""Users' own feeders: MATPOWER case files and OpenDSS scripts read into a radial :class:`~v2gtwin.grid.feeder.Feeder`.

* :func:`read_matpower`: a MATPOWER version-2 case (``.m``), parsed by matpowercaseframes and converted by
  pandapower's ``from_mpc``, then :func:`~v2gtwin.grid.feeder.from_pandapower`. Bus labels are MATPOWER's bus
  numbers, branch labels "branch F-T" with the file's from and to buses, ratings from ``rateA`` [MVA].
* :func:`read_opendss`: an OpenDSS script, compiled and solved by OpenDSS itself (through opendssdirect), then
  walked element by element and reduced to its balanced single-phase (positive-sequence) equivalent. Bus labels
  are OpenDSS's bus names, branch labels OpenDSS's element names ("Line.l12").
* :func:`read_feeder_file`: either of the two, chosen by the file's suffix and a look at its content.
* :func:`check_ratings`: for callers that need thermal limits; one line naming the file and an unrated branch.

Every refusal is a one-line :class:`~v2gtwin.errors.DataError` naming the file and the element.
"""

from __future__ import annotations

import logging
import re
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from v2gtwin.errors import DataError, V2GTwinError
from v2gtwin.grid._feeder_files import (
    DEFAULT_AMPACITY_A,
    SOURCE_IMPEDANCE_PREFIX,
    _one_line,
    _rating_notes,
    _read_text,
    check_ratings,
)
from v2gtwin.grid.feeder import Feeder, from_pandapower
from v2gtwin.grid.opendss_io import read_opendss

__all__ = [
    "DEFAULT_AMPACITY_A",
    "READERS",
    "SOURCE_IMPEDANCE_PREFIX",
    "check_feeder_file",
    "check_ratings",
    "read_feeder_file",
    "read_matpower",
    "read_opendss",
]

logger = logging.getLogger(__name__)

#: Bytes read to recognise a file's format.
_SNIFF_BYTES = 65536

_MATPOWER_SNIFF = re.compile(r"^\s*(function\s+mpc\s*=|mpc\.bus\s*=)", re.MULTILINE)
_OPENDSS_SNIFF = re.compile(r"^\s*new\s+(object\s*=\s*)?circuit\.", re.MULTILINE | re.IGNORECASE)


# --- MATPOWER ---------------------------------------------------------------------------------------------
def _check_matpower_is_data(path: Path, text: str) -> None:
    """Refuse a case file that changes its data with MATPOWER code after defining it.

    Several of MATPOWER's distribution cases (case33bw, case69, ...) give r and x in ohms and loads in kW, then
    convert them with code at the end of the file; a parser of the data alone (matpowercaseframes) would read
    ohms as per unit. Only ``mpc.<field> = <value>`` statements, comments and the function line are data.
    """
    depth = 0
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("%", 1)[0].strip()
        if not line:
            continue
        if depth == 0:
            if re.match(r"^(function\b|end\b|return\b)", line) or re.match(r"^mpc\.[A-Za-z_]\w*\s*=", line):
                pass
            else:
                raise DataError(
                    f"{path.name}: line {lineno}: MATPOWER code changes the case after its data "
                    f"({line[:60]!r}); only data can be read: run the case in MATPOWER and import the file "
                    f"savecase('{path.stem}_data.m', loadcase('{path.stem}')) writes"
                )
        depth += line.count("[") + line.count("{") - line.count("]") - line.count("}")
        depth = max(depth, 0)


def read_matpower(path: Path, *, default_ampacity_a: float | None = None) -> Feeder:
    """Read a radial MATPOWER (version 2) case file into a :class:`Feeder`.

    Parameters
    ----------
    path : the ``.m`` file: data statements only (``mpc.bus = [...]`` ...); one reference bus (the source).
    default_ampacity_a : rating given to branches whose ``rateA`` is 0 (MATPOWER's "no limit") [A]; without it
        they stay unrated (inf) and the feeder's notes say how many.

    Returns
    -------
    Feeder named after the file; buses labelled by MATPOWER's bus numbers, branches "branch F-T" (the file's
    from and to buses); ratings ``I = rateA / (sqrt(3) baseKV)`` [A] (pandapower's conversion).

    Raises
    ------
    DataError
        Naming the file and the element: not a version-2 case, code that changes the data, a meshed network
        (the loop), a bus without a path to the source, transformers, PV buses, shunts, line charging.

    References
    ----------
    R. D. Zimmerman, C. E. Murillo-Sanchez, R. J. Thomas, "MATPOWER: steady-state operations, planning and
    analysis tools for power systems research and education", IEEE Trans. Power Systems 26(1), 2011 (the case
    format: MATPOWER User's Manual, Appendix B, "Data File Format").
    """
    path = Path(path)
    text = _read_text(path)
    if not re.search(r"^\s*mpc\.bus\s*=", text, re.MULTILINE) or not re.search(
        r"^\s*mpc\.branch\s*=", text, re.MULTILINE
    ):
        raise DataError(f"{path.name}: not a MATPOWER case (.m) or OpenDSS script (.dss): no mpc.bus / mpc.branch")
    version = re.search(r"^\s*mpc\.version\s*=\s*'(\w+)'", text, re.MULTILINE)
    if version is None or version.group(1) != "2":
        found = "none" if version is None else repr(version.group(1))
        raise DataError(f"{path.name}: mpc.version: only MATPOWER case format version '2' is read, found {found}")
    _check_matpower_is_data(path, text)
    from pandapower.converter.matpower import from_mpc

    try:
        with warnings.catch_warnings(), tempfile.TemporaryDirectory() as tmp:
            warnings.simplefilter("ignore", FutureWarning)  # pandas' warning inside pandapower's converter
            src = path
            if path.suffix.lower() != ".m":  # the parser reads '.m' files only: a copy under that name
                src = Path(tmp) / f"{path.stem}.m"
                src.write_text(text)
            net = from_mpc(str(src), f_hz=50)
    except Exception as exc:  # the parser's own errors are not ours: one line naming the file
        raise DataError(f"{path.name}: MATPOWER case could not be parsed: {_one_line(exc)}") from exc
    # pandapower's converter numbers buses from 0 (MATPOWER's number - 1); the file's numbers are the labels.
    number = {b: str(int(b) + 1) for b in net.bus.index}
    net.bus["name"] = [number[b] for b in net.bus.index]
    net.line["name"] = [
        f"branch {number[f]}-{number[t]}" for f, t in zip(net.line.from_bus, net.line.to_bus, strict=True)
    ]
    if len(net.trafo[net.trafo.in_service]):
        tr = net.trafo[net.trafo.in_service].iloc[0]
        raise DataError(
            f"{path.name}: branch {number[tr.hv_bus]}-{number[tr.lv_bus]}: transformers (tap ratio or two "
            f"voltage levels) are not supported; a feeder has one voltage level"
        )
    try:
        feeder = from_pandapower(net, name=path.name)
    except DataError as exc:
        raise DataError(f"{path.name}: {exc}") from exc
    rated = np.isfinite(feeder.ampacity_a)
    conductor = np.arange(feeder.n_bus) > 0
    amp, notes = _rating_notes(path.name, feeder.ampacity_a, rated, conductor, default_ampacity_a, "MATPOWER rateA")
    return Feeder(**{**feeder.__dict__, "ampacity_a": amp, "notes": (*feeder.notes, *notes)})


# --- dispatch ---------------------------------------------------------------------------------------------
#: Readers by format (a registry, not if/elif).
READERS: dict[str, Callable[..., Feeder]] = {"matpower": read_matpower, "opendss": read_opendss}
_SUFFIXES = {".m": "matpower", ".dss": "opendss"}


def check_feeder_file(path: Path) -> str:
    """The format of a feeder file, 'matpower' or 'opendss': by suffix when it is '.m' or '.dss', else by its
    content; a one-line DataError naming the file when it is neither."""
    path = Path(path)
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is not None:
        return fmt
    head = _read_text(path)[:_SNIFF_BYTES]
    if _MATPOWER_SNIFF.search(head):
        return "matpower"
    if _OPENDSS_SNIFF.search(head):
        return "opendss"
    raise DataError(
        f"{path.name}: not a MATPOWER case (.m) or OpenDSS script (.dss): no 'function mpc' / 'mpc.bus' and no "
        f"'New Circuit.' found"
    )


def read_feeder_file(path: Path, *, default_ampacity_a: float | None = None) -> Feeder:
    """Read a MATPOWER case or an OpenDSS script into a radial :class:`Feeder` (see :func:`read_matpower`,
    :func:`read_opendss`); the format from the suffix ('.m', '.dss') or, for other names, the content.

    Raises
    ------
    DataError
        One line naming the file (and the element): not one of the two formats, or what cannot be reduced.
    """
    path = Path(path)
    fmt = check_feeder_file(path)
    try:
        return READERS[fmt](path, default_ampacity_a=default_ampacity_a)
    except V2GTwinError:
        raise
    except Exception as exc:  # a reader's dependency failing on odd input: still one line naming the file
        raise DataError(f"{path.name}: could not be read as {fmt}: {_one_line(exc)}") from exc
