"""The scoring package refuses imports of pandas at once (leadx/scoring/absent_imports.py): scikit-
learn's spline features try it at every transform, and it is not installed."""

from __future__ import annotations

import importlib
import importlib.abc
import sys
import time

import numpy as np
import pytest

import leadx.scoring  # noqa: F401 - its import puts the refuser in place
from leadx.scoring.absent_imports import RefuseAbsent, refuse_absent
from leadx.scoring.registry import load_prior


class Asked(importlib.abc.MetaPathFinder):
    """Counts the imports of a name that reach it, and finds nothing."""

    def __init__(self, name: str) -> None:
        self.name, self.count = name, 0

    def find_spec(self, fullname, path=None, target=None):
        if fullname.partition(".")[0] == self.name:
            self.count += 1
        return None


@pytest.fixture
def behind(monkeypatch):
    """A counting finder placed right after the refuser (where the path finders would be asked)."""
    def place(name: str) -> Asked:
        asked = Asked(name)
        at = sys.meta_path.index(refuse_absent()) + 1
        monkeypatch.setattr(sys, "meta_path", [*sys.meta_path[:at], asked, *sys.meta_path[at:]])
        return asked
    return place


def test_pandas_absent_is_refused_at_once_and_never_put_in_sys_modules(behind):
    assert "pandas" in refuse_absent().names, "pandas is installed here (requirements.lock has none)"
    asked = behind("pandas")
    for name in ("pandas", "pandas.core"):  # a submodule's import fails at its parent, as without the refuser
        with pytest.raises(ModuleNotFoundError) as refused:
            importlib.import_module(name)
        assert refused.value.name == "pandas" and str(refused.value) == "No module named 'pandas'"
    with pytest.raises(ModuleNotFoundError, match="No module named 'pandas'"):
        import pandas  # noqa: F401 - the statement scikit-learn runs
    assert asked.count == 0 and "pandas" not in sys.modules
    # A probe is not an import: it is answered None, by the finders after the refuser.
    assert importlib.util.find_spec("pandas") is None and asked.count == 1


def test_a_model_call_searches_for_pandas_nowhere_and_scores_as_without_the_refuser(behind, monkeypatch):
    bundle = load_prior()
    leads = [{"vertical": "auto_loan", "zip": "10001", "state": "NY", "income": 52000, "age": 41,
              "credit_score": 690, "loan_amount": 18000}] * 3
    now = int(time.time() * 1000)
    asked = behind("pandas")
    refused = bundle.score(leads, [now] * 3, [now] * 3)
    assert asked.count == 0  # scikit-learn tried, the refuser answered
    monkeypatch.setattr(sys, "meta_path", [finder for finder in sys.meta_path if not isinstance(finder, RefuseAbsent)])
    searched = bundle.score(leads, [now] * 3, [now] * 3)
    assert asked.count > 0  # without it, each transform searches again
    assert refused == searched
    assert not np.isnan([score.probability for score in refused]).any()


def test_only_modules_not_installed_are_refused_and_the_refuser_is_placed_once(monkeypatch):
    refuser = refuse_absent()
    monkeypatch.setattr(refuser, "names", set(refuser.names))
    assert refuse_absent("json", "leadx_no_such_module") is refuser
    assert refuse_absent("leadx_no_such_module") is refuser
    assert sum(finder is refuser for finder in sys.meta_path) == 1
    assert "json" not in refuser.names and importlib.import_module("json").dumps([]) == "[]"
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("leadx_no_such_module")
    assert "pandas" in refuser.names  # named by the package itself, at its import
