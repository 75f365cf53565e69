"""Imports of modules that are not installed, refused at once.

scikit-learn's spline features (SplineTransformer, in every served model) look for pandas at every
transform: `sklearn.utils._mask._get_dense_mask` runs `import pandas` once per feature, to compare
with `pandas.NA`, and pandas is not one of leadx's dependencies. Python does not remember a failed
import, so each one searched every entry of sys.path again: 8.8% of the scoring service's CPU
under load (py-spy); a one-lead model call took 1.94–2.07 ms p50 with the search, 1.54–1.58 ms without
(bench/README.md, "Scoring without the search for pandas"). A module named here that is not
installed when leadx.scoring is first imported is refused by the first finder asked, with the same
ModuleNotFoundError; nothing is put in sys.modules (scikit-learn tells a pandas DataFrame by
`sys.modules["pandas"]`), and a probe such as `importlib.util.find_spec` still answers None, as it
would without this."""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType


class RefuseAbsent(importlib.abc.MetaPathFinder):
    """First on sys.meta_path: an import of the named top-level modules (or their submodules) raises
    here; probes, and every other import, go on to the finders after it."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        if fullname.partition(".")[0] in self.names and _an_import_asks():
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


def _an_import_asks() -> bool:
    """Whether the finder was asked by an import (`import x`, importlib.import_module: importlib's
    _find_and_load_unlocked calls _find_spec, which calls the finders) rather than by a probe such
    as importlib.util.find_spec, which must be answered None."""
    try:
        asker = sys._getframe(3)  # this, find_spec, importlib._bootstrap._find_spec, then who asked it
    except ValueError:  # find_spec called by hand, from near the top of the stack
        return False
    return (asker.f_code.co_name == "_find_and_load_unlocked"
            and asker.f_globals.get("__name__") == "importlib._bootstrap")


_REFUSER = RefuseAbsent()


def refuse_absent(*names: str) -> RefuseAbsent:
    """Refuse at once every later import of those of `names` that are not installed now (those
    that are stay importable as before). The one finder, put first on sys.meta_path once."""
    _REFUSER.names.update(name for name in names if importlib.util.find_spec(name) is None)
    if _REFUSER not in sys.meta_path:
        sys.meta_path.insert(0, _REFUSER)
    return _REFUSER
