"""Another revision's services, run beside this checkout's (bench/checkouts.py, leadx.dev.stack's
`code_dir`): the benches compare two commits in one run this way, so a service started in a
checkout must import that checkout's code. The tests' warm launcher has this checkout's leadx
imported: such a start is never its fork, but a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from leadx.dev import warm_start
from leadx.dev.stack import LocalStack, ManagedProcess
from leadx.platform.db.engine import make_engine
from leadx.platform.db.schema import head_revision, schema_state
from tests.conftest import poll_until

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def checkouts(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import checkouts as module

    return module


def worktrees() -> str:
    return subprocess.run(["git", "-C", str(ROOT), "worktree", "list"], check=True, capture_output=True,
                          text=True).stdout


def test_a_checkout_is_the_revision_s_tree_and_is_gone_afterwards(checkouts):
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], check=True, capture_output=True,
                          text=True).stdout.strip()
    with checkouts.checkout("HEAD") as (directory, commit):
        assert commit == head
        assert (directory / "leadx" / "__init__.py").exists() and (directory / "services" / "__init__.py").exists()
        assert str(directory) in worktrees()
    assert not directory.exists() and str(directory) not in worktrees()
    with pytest.raises(ValueError, match="names no commit"):
        checkouts.commit_of("no-such-revision")


def test_a_service_started_in_a_checkout_imports_that_checkout_s_code(checkouts, tmp_path, warm):
    assert warm is not None
    with checkouts.checkout("HEAD") as (directory, _):
        # A module of that checkout only, that says where leadx and services came from.
        (directory / "where_from.py").write_text(
            "import leadx, services\nprint(leadx.__file__)\nprint(services.__file__)\n")
        process = ManagedProcess("where", [sys.executable, "-m", "where_from"], {**os.environ, "PYTHONUNBUFFERED": "1"},
                                 tmp_path / "where.log", cwd=directory)
        process.start()
        assert not isinstance(process.process, warm_start.ForkedProcess)  # not a fork, though the launcher is on
        poll_until(lambda: process.process is not None and process.process.poll() is not None, timeout_s=30,
                   message="the probe's exit")
        lines = process.log_path.read_text().split()
        assert process.exit_code() == 0, lines
        assert lines == [str(directory / "leadx" / "__init__.py"), str(directory / "services" / "__init__.py")]


def test_a_stack_on_a_checkout_starts_its_services_there_on_its_schema(checkouts, tmp_path):
    """The database is brought to that checkout's schema by that checkout's `leadx db upgrade`; its
    services start in its directory."""
    url = f"sqlite:///{tmp_path / 'leadx.db'}"
    with checkouts.checkout("HEAD") as (directory, _):
        stack = LocalStack(tmp_path / "run", database_url=url, code_dir=directory)
        stack.upgrade_database()
        stack.add_service("ledger")
        assert stack.services["ledger"].cwd == directory
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            assert schema_state(connection).revision == head_revision()  # HEAD's schema is this checkout's
    finally:
        engine.dispose()
