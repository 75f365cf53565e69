"""`make screenshots`' people: its own, on the demo's buyer, seller and AutoBid buyer accounts, a new password each
run, so that the logins `make run` printed keep working (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from leadx.accounts import accounts, people
from leadx.dev.demo.exchange import DEMO_AUTOBID_BUYER, create_demo_people
from leadx.dev.tools.portal_screenshots import logins_on_demo_accounts


def test_the_tool_logs_in_as_its_own_people_on_the_demo_accounts_and_leaves_the_demos_logins_alone(
        sessions, database_url):
    with sessions() as session:
        seller = accounts.create_seller(session, "demo").id
        buyer = accounts.create_buyer(session, "demo buyer", "", "", kind="autobid").id
        demo_logins = create_demo_people(session, seller, buyer)

    assert logins_on_demo_accounts(database_url).autobid is None  # no demo AutoBid buyer here
    with sessions() as session:
        autobid = accounts.create_buyer(session, DEMO_AUTOBID_BUYER, "", "", kind="autobid").id
    first = logins_on_demo_accounts(database_url)
    again = logins_on_demo_accounts(database_url)  # a second run: the same people, new passwords

    def listed(logins) -> list:
        return [logins.buyer, logins.seller, logins.autobid, logins.operator]
    with sessions() as session:
        for login, account in zip(listed(again), (buyer, seller, autobid, None), strict=True):
            person = people.authenticate(session, login.email, login.password)
            assert person is not None and person.account_id == account
            assert person.role == (people.OPERATOR if account is None else people.MEMBER)
        assert [login.email for login in listed(first)] == [login.email for login in listed(again)]
        assert all(people.authenticate(session, login.email, login.password) is None for login in listed(first))
        for _, email, password in demo_logins:
            assert people.authenticate(session, email, password) is not None


def test_a_database_without_the_demos_people_is_said_without_its_url(sessions, database_url):
    with pytest.raises(RuntimeError, match="DATABASE_URL's database") as raised:
        logins_on_demo_accounts(database_url)
    assert database_url not in str(raised.value)
