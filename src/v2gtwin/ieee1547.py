"""IEEE Std 1547-2018 default settings and ranges of allowable settings: the one table that the study's frequency
and cascade simulations take their defaults from and that the compliance audit checks settings against.

The values live in the packaged data file ``data/ieee1547_2018.toml``, each with its sources and a
``corroborated`` flag (true when at least two independent open-source encodings of the standard's tables agree).
The standard's text itself was not consulted: no value is verified against the primary source.
:func:`read_ieee1547` reads it once per process.

References
----------
IEEE Std 1547-2018, *Standard for Interconnection and Interoperability of Distributed Energy Resources with
Associated Electric Power Systems Interfaces*: clause 5.3.3 and Table 8 (volt-var), clause 6.4.1 and Tables 11-13
(voltage trip), clause 6.5.1 (frequency trip), clause 6.5.2.7 (frequency droop). IEEE Std 1547-2003, Table 2
(legacy under-frequency trip). Encodings: pyUL1741SB, NREL PyDSS, EPRI OpenDER, the SunSpec/Sandia SVP
IEEE 1547.1-2020 scripts (full list in the data file's ``[sources]``).
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

from v2gtwin.errors import DataError

__all__ = [
    "FUNCTIONS",
    "Bound",
    "Ieee1547Table",
    "LegacySetting",
    "SettingRange",
    "parse_ieee1547",
    "read_ieee1547",
]

Function = Literal["trip", "volt_var", "freq_droop"]
#: The functions the table covers, with the category family each is keyed by.
FUNCTIONS: dict[str, str] = {"trip": "abnormal", "freq_droop": "abnormal", "volt_var": "normal"}
_CATEGORIES = {"abnormal": ("I", "II", "III"), "normal": ("A", "B")}


@dataclass(frozen=True)
class Bound:
    """One default or range end: a number, or another setting of the same curve plus an offset.

    Attributes
    ----------
    value : the number (None when relative) [unit of the setting].
    ref, offset : the setting it is relative to and the offset added to it (volt-var: ``v2_pu`` - 0.02).
    corroborated : at least two independent (secondary) encodings agree on it; not checked against the standard.
    sources : keys of the data file's ``[sources]``.
    """

    value: float | None
    ref: str | None
    offset: float
    corroborated: bool
    sources: tuple[str, ...]

    def resolve(self, settings: dict[str, float | None]) -> float | None:
        """The bound's number; a relative bound takes its reference from ``settings`` (None when missing)."""
        if self.value is not None:
            return self.value
        base = settings.get(self.ref or "")
        return None if base is None else base + self.offset

    def text(self) -> str:
        """The bound for people: ``59`` or ``v2_pu - 0.02``."""
        if self.value is not None:
            return f"{self.value:g}"
        sign = "+" if self.offset >= 0 else "-"
        return f"{self.ref} {sign} {abs(self.offset):g}"


@dataclass(frozen=True)
class SettingRange:
    """Default and allowed range of one setting for a set of categories, with where it comes from."""

    name: str
    function: str
    categories: tuple[str, ...]
    clause: str
    table: str
    table_corroborated: bool
    default: Bound
    min: Bound
    max: Bound
    note: str

    @property
    def corroborated(self) -> bool:
        """Default and both range ends corroborated by two encodings."""
        return self.default.corroborated and self.min.corroborated and self.max.corroborated

    def citation(self) -> str:
        """``IEEE Std 1547-2018 clause 6.5.1, Table 18 (table number from one source)``."""
        tail = "" if self.table_corroborated else " (table number from one source)"
        return f"IEEE Std 1547-2018 clause {self.clause}, {self.table}{tail}"


@dataclass(frozen=True)
class LegacySetting:
    """The under-frequency trip of legacy (IEEE 1547-2003 era) DER: ``uf_hz`` [Hz] for ``uf_s`` [s]."""

    uf_hz: float
    uf_s: float
    standard: str
    corroborated: bool
    note: str


@dataclass(frozen=True)
class Ieee1547Table:
    """Every setting range of the data file, and the legacy setting."""

    settings: tuple[SettingRange, ...]
    legacy: LegacySetting
    sources: dict[str, str]

    @functools.cached_property
    def _index(self) -> dict[tuple[str, str, str], SettingRange]:
        return {(s.function, s.name, c): s for s in self.settings for c in s.categories}

    def lookup(self, function: str, name: str, category: str) -> SettingRange | None:
        """The range of setting ``name`` of ``function`` for ``category`` (None when the table has none)."""
        return self._index.get((function, name, category))

    def names(self, function: str) -> tuple[str, ...]:
        """Names of the settings of ``function``, in file order, each once."""
        return tuple(dict.fromkeys(s.name for s in self.settings if s.function == function))

    def defaults(self, function: str, category: str) -> dict[str, float]:
        """Default value of every setting of ``function`` for ``category``."""
        out: dict[str, float] = {}
        for name in self.names(function):
            s = self.lookup(function, name, category)
            if s is not None and s.default.value is not None:
                out[name] = s.default.value
        return out


def _bound(raw: Any, where: str) -> Bound:
    if not isinstance(raw, dict):
        raise DataError(f"{where}: expected a table with value or ref/offset")
    value = raw.get("value")
    ref = raw.get("ref")
    if (value is None) == (ref is None):
        raise DataError(f"{where}: give exactly one of value and ref")
    return Bound(
        value=None if value is None else float(value),
        ref=ref,
        offset=float(raw.get("offset", 0.0)),
        corroborated=bool(raw["corroborated"]),
        sources=tuple(raw.get("sources", ())),
    )


def parse_ieee1547(data: dict[str, Any]) -> Ieee1547Table:
    """Build the table from the data file's parsed TOML (checks categories, functions and source keys).

    Raises
    ------
    DataError
        A malformed entry, named by its setting and categories.
    """
    sources = dict(data.get("sources", {}))
    settings = []
    for raw in data.get("setting", []):
        where = f"ieee1547_2018.toml: setting {raw.get('name')} {raw.get('categories')}"
        function = raw.get("function")
        if function not in FUNCTIONS:
            raise DataError(f"{where}: function must be one of {', '.join(FUNCTIONS)}")
        cats = tuple(raw.get("categories", ()))
        if not cats or any(c not in _CATEGORIES[FUNCTIONS[function]] for c in cats):
            raise DataError(f"{where}: categories must be among {', '.join(_CATEGORIES[FUNCTIONS[function]])}")
        bounds = {k: _bound(raw.get(k), f"{where}: {k}") for k in ("default", "min", "max")}
        for k, b in bounds.items():
            unknown = [s for s in b.sources if s not in sources]
            if unknown:
                raise DataError(f"{where}: {k}: unknown source {unknown[0]!r}")
        settings.append(
            SettingRange(
                name=str(raw["name"]),
                function=function,
                categories=cats,
                clause=str(raw["clause"]),
                table=str(raw["table"]),
                table_corroborated=bool(raw["table_corroborated"]),
                default=bounds["default"],
                min=bounds["min"],
                max=bounds["max"],
                note=str(raw.get("note", "")),
            )
        )
    seen: set[tuple[str, str, str]] = set()
    for s in settings:
        for c in s.categories:
            key = (s.function, s.name, c)
            if key in seen:
                raise DataError(f"ieee1547_2018.toml: setting {s.name} of {s.function} given twice for {c}")
            seen.add(key)
    lg = data["legacy"]
    legacy = LegacySetting(
        uf_hz=float(lg["uf_hz"]),
        uf_s=float(lg["uf_s"]),
        standard=str(lg["standard"]),
        corroborated=bool(lg["corroborated"]),
        note=str(lg.get("note", "")),
    )
    return Ieee1547Table(tuple(settings), legacy, sources)


@functools.cache
def read_ieee1547() -> Ieee1547Table:
    """Read the packaged IEEE 1547-2018 table (``v2gtwin/data/ieee1547_2018.toml``), once per process."""
    text = resources.files("v2gtwin").joinpath("data/ieee1547_2018.toml").read_text(encoding="utf-8")
    return parse_ieee1547(tomllib.loads(text))
