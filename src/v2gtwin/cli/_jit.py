"""Say so when v2gtwin's numba kernels compile, instead of a silent pause on the first run.

The kernels are ``@njit(cache=True)``: they compile once and numba keeps the machine code in its cache
(``__pycache__`` beside each module, or ``NUMBA_CACHE_DIR``), so later runs load them in milliseconds. A
compilation (the first run, or after an upgrade) takes tens of seconds; :func:`announce_compilation` makes the
CLI write ``compiling kernels (once; cached for later runs)...`` on stderr when the first one starts.

numba is not imported for that: a finder on ``sys.meta_path`` waits for numba's own import (commands that
never use a kernel never load numba) and then registers a listener for numba's ``numba:compile`` event, which
numba fires only on a cache miss (numba.core.event, numba's documented event API).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType
from typing import Any, TextIO

__all__ = ["COMPILING_MESSAGE", "announce_compilation"]

#: What the CLI writes on stderr when the first kernel compiles.
COMPILING_MESSAGE = "compiling kernels (once; cached for later runs)..."

_state = {"installed": False, "said": False}


def _register_listener(stream: TextIO | None) -> None:
    from numba.core import event

    class _Announce(event.Listener):
        def on_start(self, ev: Any) -> None:
            dispatcher = (ev.data or {}).get("dispatcher")
            module = getattr(getattr(dispatcher, "py_func", None), "__module__", "") or ""
            if not _state["said"] and module.startswith("v2gtwin"):
                _state["said"] = True
                out = sys.stderr if stream is None else stream  # the stderr of the moment (tests swap it)
                out.write(COMPILING_MESSAGE + "\n")
                out.flush()

        def on_end(self, ev: Any) -> None:
            pass

    event.register("numba:compile", _Announce())


class _AfterNumbaImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself: when ``numba`` is first imported it wraps numba's loader so that the listener is
    registered as soon as numba has loaded, then leaves ``sys.meta_path``."""

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream

    def find_spec(self, fullname: str, path: Any, target: ModuleType | None = None) -> Any:
        if fullname != "numba":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        loader = getattr(spec, "loader", None)
        if spec is None or not isinstance(loader, importlib.machinery.SourceFileLoader):
            return spec
        stream, exec_module = self.stream, loader.exec_module

        def exec_then_listen(module: ModuleType) -> None:
            exec_module(module)
            _register_listener(stream)

        loader.exec_module = exec_then_listen  # type: ignore[method-assign]
        return spec


def announce_compilation(stream: TextIO | None = None) -> None:
    """Write :data:`COMPILING_MESSAGE` on ``stream`` (default stderr) when the first of v2gtwin's kernels
    starts compiling in this process (not when it loads from numba's cache). Idempotent."""
    if _state["installed"]:
        return
    _state["installed"] = True
    if "numba" in sys.modules:
        _register_listener(stream)
    else:
        sys.meta_path.insert(0, _AfterNumbaImport(stream))
