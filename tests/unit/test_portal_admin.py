"""Administration over HTTP (the portal's app in this process, SQLite and a real Redis for the login
throttle): an operator creates a seller and a buyer and sees each key once, rotates a key, sets a
fee, adds and ends a contract, switches a buyer off and on, invites a person whose link sets a
password once; nobody but an operator reaches these pages."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy import select

from leadx.accounts import accounts, people
from leadx.platform.db.engine import session_factory
from leadx.platform.db.models import Buyer, Contract, Person, Seller
from tests.unit.portal_deps import Scenario, csrf, run_scenario
from tests.unit.portal_deps import log_in as portal_log_in

SECRET = b"a" * 32
PASSWORD = "a long test password"


@pytest.fixture
def portal(sqlite_engine, redis_url, unique_prefix):
    engine = sqlite_engine
    sessions = session_factory(engine)
    with sessions() as session:
        people.create_person(session, "ops@example.com", PASSWORD, "operator", "", "operator")
        seller = accounts.create_seller(session, "Seller of buyers")
        people.create_person(session, "seller@example.com", PASSWORD, "seller", seller.id, "owner")

    def run(scenario: Scenario, email: str = "ops@example.com") -> None:
        run_scenario(engine, redis_url, unique_prefix, SECRET, scenario, email, PASSWORD)

    run.sessions = sessions  # type: ignore[attr-defined]
    yield run


async def log_in(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await portal_log_in(client, email, password)


def shown_once(page: httpx.Response) -> str:
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    return re.search(r'<output class="secret" id="secret">([^<]+)</output>', page.text).group(1)


def error_of(html: str, field_id: str) -> str:
    match = re.search(rf'id="{re.escape(field_id)}-error" role="alert">([^<]*)<', html)
    return match.group(1) if match else ""


def test_an_operator_creates_accounts_rotates_a_key_and_sets_fees_and_contracts(portal):
    async def scenario(client: httpx.AsyncClient) -> None:
        page = await client.get("/admin")
        assert page.status_code == 200 and '<a href="/admin" aria-current="page">Administration</a>' in page.text
        token = csrf(page.text)
        refused = await client.post("/admin/accounts", data={"csrf_token": token, "kind": "buyer", "name": "",
                                                             "buyer_kind": "wholesale"})
        assert refused.status_code == 400 and error_of(refused.text, "buyer-name").startswith("give the account")
        wholesale = await client.post("/admin/accounts", data={"csrf_token": token, "kind": "buyer", "name": "W",
                                                               "buyer_kind": "wholesale"})
        assert wholesale.status_code == 400 and "ping URL" in error_of(wholesale.text, "buyer-buyer_kind")
        long_url = await client.post("/admin/accounts", data={
            "csrf_token": token, "kind": "buyer", "name": "L", "buyer_kind": "wholesale",
            "ping_url": "https://buyer.example/" + "p" * 2000, "post_url": "https://[::1"})
        assert long_url.status_code == 400 and "at most 2000" in error_of(long_url.text, "buyer-ping_url")
        assert error_of(long_url.text, "buyer-post_url").startswith("this is not a URL")
        key = shown_once(await client.post("/admin/accounts", data={
            "csrf_token": token, "kind": "buyer", "name": "Dealer", "buyer_kind": "autobid"}))
        seller_key = shown_once(await client.post("/admin/accounts", data={
            "csrf_token": token, "kind": "seller", "name": "New seller"}))
        with portal.sessions() as session:
            buyer_id = accounts.buyer_for_key(session, key)
            seller_id = accounts.seller_for_key(session, seller_key)
            assert buyer_id and seller_id and session.get(Buyer, buyer_id).kind == "autobid"
            assert key not in str(session.get(Buyer, buyer_id).api_key_hash)  # stored as its hash only
        listed = await client.get("/admin")
        assert f'id="account-{buyer_id}"' in listed.text and "Dealer" in listed.text

        rotated = shown_once(await client.post(f"/admin/accounts/{buyer_id}/rotate-key", data={"csrf_token": token}))
        with portal.sessions() as session:
            assert accounts.buyer_for_key(session, key) is None and accounts.buyer_for_key(session, rotated) == buyer_id

        bad_fee = await client.post(f"/admin/accounts/{seller_id}/fee",
                                    data={"csrf_token": token, "fee_percent": "150"})
        assert bad_fee.status_code == 400 and error_of(bad_fee.text, "fee_percent").startswith("a percent from 0")
        assert (await client.post(f"/admin/accounts/{seller_id}/fee", data={"csrf_token": token, "fee_percent": "7.5"})
                ).headers["location"] == f"/admin/accounts/{seller_id}?done=fee"
        no_buyer = await client.post(f"/admin/accounts/{seller_id}/contracts", data={
            "csrf_token": token, "buyer_id": "b_nobody0000", "price": "25"})
        assert no_buyer.status_code == 400 and "no buyer b_nobody0000" in error_of(no_buyer.text, "buyer_id")
        await client.post(f"/admin/accounts/{seller_id}/contracts", data={"csrf_token": token, "buyer_id": buyer_id,
                                                                           "price": "31.25"})
        account = await client.get(f"/admin/accounts/{seller_id}?done=contract")
        assert "The contract is saved." in account.text and f'id="contract-{buyer_id}"' in account.text
        assert "$31.25" in account.text
        with portal.sessions() as session:
            assert session.get(Seller, seller_id).fee_percent == 7.5
            assert accounts.contract_price(session, seller_id, buyer_id) == 3125
        await client.post(f"/admin/accounts/{seller_id}/contracts/{buyer_id}/end", data={"csrf_token": token})
        await client.post(f"/admin/accounts/{buyer_id}/active", data={"csrf_token": token, "active": "no"})
        with portal.sessions() as session:
            assert session.get(Contract, (seller_id, buyer_id)).active is False
            assert session.get(Buyer, buyer_id).active is False
        assert (await client.post(f"/admin/accounts/{buyer_id}/active", data={"csrf_token": token})).status_code == 400
        # The wrong kind of account is said as such, a missing contract too.
        assert (await client.post(f"/admin/accounts/{buyer_id}/fee", data={"csrf_token": token, "fee_percent": "5"})
                ).status_code == 400
        assert (await client.post(f"/admin/accounts/{seller_id}/active", data={"csrf_token": token, "active": "no"})
                ).status_code == 400
        ended_twice = await client.post(f"/admin/accounts/{seller_id}/contracts/b_nobody0000/end",
                                        data={"csrf_token": token})
        assert ended_twice.status_code == 404 and "There is no such contract." in ended_twice.text
        assert (await client.get("/admin/accounts/b_nobody0000")).status_code == 404
        assert (await client.post(f"/admin/accounts/{buyer_id}/rotate-key", data={})).status_code == 403  # no token

    portal(scenario)


def test_an_invited_person_sets_a_password_once_then_logs_in_and_a_new_link_replaces_a_password(portal):
    links: list[str] = []

    async def operator(client: httpx.AsyncClient) -> None:
        with portal.sessions() as session:
            seller_id = session.scalar(select(Seller.id))
        token = csrf((await client.get(f"/admin/accounts/{seller_id}")).text)
        bad = await client.post("/admin/people", data={"csrf_token": token, "account_id": seller_id,
                                                       "email": "not an email", "role": "member"})
        assert bad.status_code == 400 and error_of(bad.text, "email")
        link = shown_once(await client.post("/admin/people", data={
            "csrf_token": token, "account_id": seller_id, "email": "Ann@Example.com", "role": "member"}))
        assert link.startswith("https://portal.test/password/")
        links.append(link)
        account = await client.get(f"/admin/accounts/{seller_id}")
        assert "ann@example.com" in account.text and "member" in account.text

    async def invited(client: httpx.AsyncClient) -> None:
        path = links[0].removeprefix("https://portal.test")
        page = await client.get(path)
        assert page.status_code == 200 and "For ann@example.com" in page.text
        token = csrf(page.text)
        differ = await client.post(path, data={"csrf_token": token, "password": PASSWORD, "password_again": "x"})
        assert differ.status_code == 400 and error_of(differ.text, "password_again") == "the two passwords differ"
        short = await client.post(path, data={"csrf_token": token, "password": "short", "password_again": "short"})
        assert short.status_code == 400 and error_of(short.text, "password")
        chosen = await client.post(path, data={"csrf_token": token, "password": "ann's own long password",
                                               "password_again": "ann's own long password"})
        assert chosen.headers["location"] == "/login?password=set"
        assert "Your password is set" in (await client.get("/login?password=set")).text
        assert (await log_in(client, "ann@example.com", "ann's own long password")).headers["location"] == "/seller"
        # Used once: the link no longer works, to read or to post.
        assert (await client.get(path)).status_code == 404
        client.cookies.clear()
        token = csrf((await client.get("/login")).text)
        assert (await client.post(path, data={"csrf_token": token, "password": PASSWORD,
                                              "password_again": PASSWORD})).status_code == 404

    async def reset(client: httpx.AsyncClient) -> None:
        with portal.sessions() as session:
            ann = session.scalar(select(Person).where(Person.email == "ann@example.com"))
        page = await client.get("/admin")
        links.append(shown_once(await client.post(f"/admin/people/{ann.id}/password-link",
                                                  data={"csrf_token": csrf(page.text)})))
        operator_link = shown_once(await client.post("/admin/people", data={"csrf_token": csrf(page.text),
                                                                            "email": "ops2@example.com"}))
        assert operator_link.startswith("https://portal.test/password/")
        with portal.sessions() as session:
            assert session.scalar(select(Person.kind).where(Person.email == "ops2@example.com")) == "operator"

    async def new_password(client: httpx.AsyncClient) -> None:
        # Until the new link is used, the old password still works.
        assert (await log_in(client, "ann@example.com", "ann's own long password")).status_code == 303
        path = links[1].removeprefix("https://portal.test")
        token = csrf((await client.get(path)).text)
        await client.post(path, data={"csrf_token": token, "password": PASSWORD, "password_again": PASSWORD})
        assert (await client.get("/seller")).headers["location"] == "/login?ended=1"  # its sessions ended
        assert (await log_in(client, "ann@example.com", PASSWORD)).headers["location"] == "/seller"
        assert (await client.get("/password/u_x.99999999999.forged")).status_code == 404

    portal(operator)
    portal(invited, email="")
    portal(reset)
    portal(new_password, email="")


def test_nobody_but_an_operator_reaches_administration(portal):
    async def seller(client: httpx.AsyncClient) -> None:
        assert (await client.get("/admin")).status_code == 404
        assert (await client.post("/admin/accounts", data={"csrf_token": "x", "kind": "seller", "name": "x"})
                ).status_code == 404
        assert (await client.get("/admin/accounts/s_0000000000")).status_code == 404

    async def nobody(client: httpx.AsyncClient) -> None:
        assert (await client.get("/admin")).headers["location"] == "/login"

    portal(seller, email="seller@example.com")
    portal(nobody, email="")
