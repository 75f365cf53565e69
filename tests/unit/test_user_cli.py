"""`leadx user create|reset-password`: people made with the domain's rules, the password read from
stdin or the environment and never shown, each mistake said with its field."""

from __future__ import annotations

import io
import sys

import pytest

from leadx.accounts import accounts, people
from leadx.cli.main import main
from leadx.platform.db.engine import create_schema, make_engine, session_factory

PASSWORD = "a long test password"


@pytest.fixture
def database(sqlite_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("LEADX_ENV", "off")
    monkeypatch.delenv("LEADX_USER_PASSWORD", raising=False)
    engine = make_engine(sqlite_url)
    create_schema(engine)
    sessions = session_factory(engine)
    with sessions() as session:
        buyer = accounts.create_buyer(session, "Acme", "https://acme.example/ping", "https://acme.example/post")
    yield sessions, buyer.id
    engine.dispose()


def run(monkeypatch, argv: list[str], stdin: str = "") -> int:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    return main(argv)


def test_create_and_reset_a_person(database, monkeypatch, capsys):
    sessions, buyer_id = database
    assert run(monkeypatch, ["user", "create", "--email", "Ann@Example.com", "--account", buyer_id, "--role",
                             "owner", "--password-stdin"], PASSWORD + "\n") == 0
    out = capsys.readouterr().out
    assert f"buyer {buyer_id}, role owner" in out and PASSWORD not in out
    with sessions() as session:
        person = people.authenticate(session, "ann@example.com", PASSWORD)
        assert (person.kind, person.account_id, person.role) == ("buyer", buyer_id, "owner")
    monkeypatch.setenv("LEADX_USER_PASSWORD", "another long password")
    assert run(monkeypatch, ["user", "reset-password", "--email", "ann@example.com"]) == 0
    assert "sessions have ended" in capsys.readouterr().out
    with sessions() as session:
        assert people.authenticate(session, "ann@example.com", "another long password") is not None
    monkeypatch.delenv("LEADX_USER_PASSWORD")
    assert run(monkeypatch, ["user", "create", "--email", "ops@example.com", "--operator", "--password-stdin"],
               PASSWORD + "\n") == 0
    assert "an operator" in capsys.readouterr().out


@pytest.mark.parametrize("argv, stdin, message", [
    (["--email", "ann", "--account", "ACCOUNT"], PASSWORD, "leadx: email: this is not an email address"),
    (["--email", "ann@example.com", "--account", "b_nobody"], PASSWORD, "leadx: no buyer or seller b_nobody"),
    (["--email", "ann@example.com", "--account", "ACCOUNT"], "short", "leadx: password: a password has at least 12"),
    (["--email", "ann@example.com"], PASSWORD, "leadx: give --account ID"),
    (["--email", "ann@example.com", "--account", "ACCOUNT", "--operator"], PASSWORD, "not both"),
])
def test_mistakes_are_said_and_nothing_is_saved(database, monkeypatch, capsys, argv, stdin, message):
    sessions, buyer_id = database
    argv = [buyer_id if arg == "ACCOUNT" else arg for arg in argv]
    assert run(monkeypatch, ["user", "create", *argv, "--password-stdin"], stdin + "\n") != 0
    assert message in capsys.readouterr().err
    with sessions() as session:
        assert people.person_by_email(session, "ann@example.com") is None


def test_without_a_terminal_the_password_must_come_from_stdin_or_the_environment(database, monkeypatch, capsys):
    _, buyer_id = database
    assert run(monkeypatch, ["user", "create", "--email", "ann@example.com", "--account", buyer_id]) == 1
    assert "--password-stdin" in capsys.readouterr().err
