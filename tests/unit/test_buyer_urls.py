"""Where buyer calls may go (leadx.accounts.buyer_urls): every refused range, names resolved for real,
https in production, BUYER_URLS_ALLOW_PRIVATE, and the refusals where a buyer's URLs are set: the
admin API (422 with the rule's code and the field), `leadx buyer create` (exit 1, the reason)."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest
from sqlalchemy import func, select
from starlette.applications import Starlette

from leadx.accounts import accounts
from leadx.accounts.buyer_urls import (
    LINK_LOCAL,
    LOOPBACK,
    METADATA,
    MULTICAST,
    PRIVATE,
    RESERVED,
    UNSPECIFIED,
    URL_ADDRESS_FORBIDDEN,
    URL_NOT_HTTPS,
    BuyerUrlRefused,
    BuyerUrlRules,
    address_kind,
    parse_address,
)
from leadx.cli.main import main
from leadx.platform.config import ConfigError
from leadx.platform.db.engine import create_schema, make_engine, session_factory
from leadx.platform.db.models import Buyer
from services.intake.admin import Admin

PRODUCTION = BuyerUrlRules()
DEVELOPMENT = BuyerUrlRules(allow_private=True)
PUBLIC = "93.184.215.14"


def resolves_to(*addresses: str):
    """A resolver answering as a buyer's DNS would, for names no test machine can resolve."""
    return lambda host, port: list(addresses)


def unresolvable(host: str, port: int) -> list[str]:
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


@pytest.mark.parametrize(("address", "kind"), [
    ("127.0.0.1", LOOPBACK), ("127.255.255.254", LOOPBACK), ("::1", LOOPBACK),
    ("10.0.0.1", PRIVATE), ("172.16.0.1", PRIVATE), ("172.31.255.255", PRIVATE), ("192.168.1.1", PRIVATE),
    ("100.64.0.1", PRIVATE), ("fc00::1", PRIVATE), ("fd12:3456::1", PRIVATE),
    ("169.254.0.1", LINK_LOCAL), ("fe80::1", LINK_LOCAL), ("fe80::1%eth0", LINK_LOCAL),
    ("169.254.169.254", METADATA), ("fd00:ec2::254", METADATA), ("100.100.100.200", METADATA),
    ("192.0.0.192", METADATA),
    ("0.0.0.0", UNSPECIFIED), ("0.1.2.3", UNSPECIFIED), ("::", UNSPECIFIED),
    ("224.0.0.1", MULTICAST), ("239.255.255.250", MULTICAST), ("ff02::1", MULTICAST), ("ff0e::1", MULTICAST),
    ("240.0.0.1", RESERVED), ("255.255.255.255", RESERVED), ("192.0.2.1", RESERVED), ("198.18.0.1", RESERVED),
    ("198.51.100.1", RESERVED), ("203.0.113.1", RESERVED), ("192.0.0.8", RESERVED),
    ("2001:db8::1", RESERVED), ("fec0::1", RESERVED), ("100::1", RESERVED), ("2001::1", RESERVED),
    ("::7f00:1", RESERVED),  # IPv4-compatible, deprecated
    # IPv6 forms that reach an IPv4 address are judged by it.
    ("::ffff:127.0.0.1", LOOPBACK), ("::ffff:10.1.2.3", PRIVATE), ("::ffff:169.254.169.254", METADATA),
    ("::ffff:0.0.0.0", UNSPECIFIED), ("::ffff:224.0.0.1", MULTICAST),
    ("64:ff9b::127.0.0.1", LOOPBACK), ("64:ff9b::a9fe:a9fe", METADATA), ("2002:7f00:1::", LOOPBACK),
    ("2002:c0a8:101::1", PRIVATE),
])
def test_every_address_buyer_calls_may_not_reach_is_named_by_its_kind(address, kind):
    parsed = parse_address(address)
    assert parsed is not None and address_kind(parsed) == kind
    refusal = PRODUCTION.address_refusal(address)
    assert refusal is not None and refusal.kind == kind


@pytest.mark.parametrize("address", [PUBLIC, "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "2a00:1450:4001::200e",
                                     "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"])
def test_public_addresses_are_allowed(address):
    assert PRODUCTION.address_refusal(address) is None
    assert DEVELOPMENT.address_refusal(address) is None


def test_the_development_setting_allows_loopback_and_private_addresses_only():
    for address in ("127.0.0.1", "::1", "::ffff:127.0.0.1", "10.0.0.1", "192.168.1.1", "fd12::1", "100.64.0.1"):
        assert DEVELOPMENT.address_refusal(address) is None, address
    for address in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "fe80::1", "0.0.0.0", "::",
                    "224.0.0.1", "240.0.0.1", "2001:db8::1"):
        assert DEVELOPMENT.address_refusal(address) is not None, address


def check(rules: BuyerUrlRules, url: str, **kwargs) -> BuyerUrlRefused:
    with pytest.raises(BuyerUrlRefused) as refused:
        rules.check(url, "post_url", **kwargs)
    assert refused.value.field == "post_url"
    return refused.value


def test_a_name_is_judged_by_every_address_it_resolves_to():
    # `localhost` resolved for real, by the system's resolver.
    refused = check(PRODUCTION, "https://localhost:6379/")
    assert refused.code == URL_ADDRESS_FORBIDDEN
    assert "localhost resolves to 127.0.0.1, a loopback address" in str(refused) or "::1" in str(refused)
    assert "BUYER_URLS_ALLOW_PRIVATE=true" in str(refused)  # the way out, for a developer
    DEVELOPMENT.check("http://localhost:8080/post", "post_url")

    PRODUCTION.check("https://buyer.example/post", "post_url", resolve=resolves_to(PUBLIC))
    # One refused address among public ones is enough: a connection may go to any of them.
    refused = check(PRODUCTION, "https://buyer.example/post", resolve=resolves_to(PUBLIC, "10.0.0.7"))
    assert "buyer.example resolves to 10.0.0.7, a private address" in str(refused)
    refused = check(DEVELOPMENT, "https://meta.example/", resolve=resolves_to("169.254.169.254"))
    assert "a cloud metadata service's address" in str(refused) and "ALLOW_PRIVATE" not in str(refused)


def test_a_name_that_does_not_resolve_yet_is_let_through_to_be_checked_at_each_call():
    PRODUCTION.check("https://not-yet.example/post", "post_url", resolve=unresolvable)


@pytest.mark.parametrize(("url", "refused_as"), [
    ("https://127.0.0.1:6379/", "127.0.0.1 is a loopback address"),
    ("https://[::1]/post", "::1 is a loopback address"),
    ("https://[::ffff:169.254.169.254]/latest", "a cloud metadata service's address"),
    ("https://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata service's address"),
    ("https://[fe80::1%25eth0]/", "a link-local address"),
    ("https://2130706433/", "2130706433 is not a canonical IP address"),  # 127.0.0.1 in decimal
    ("https://0x7f.1/", None),  # a name to resolve: the system resolver does not take hex
])
def test_an_address_in_the_url_is_judged_as_written(url, refused_as):
    if refused_as is None:
        PRODUCTION.check(url, "post_url", resolve=unresolvable)
        return
    refused = check(PRODUCTION, url, resolve=resolves_to(PUBLIC))
    assert refused.code == URL_ADDRESS_FORBIDDEN and refused_as in str(refused)


def test_production_takes_https_only_and_the_development_setting_http_too():
    refused = check(PRODUCTION, "http://buyer.example/post", resolve=resolves_to(PUBLIC))
    assert refused.code == URL_NOT_HTTPS and "must be an https URL" in str(refused)
    DEVELOPMENT.check("http://buyer.example/post", "post_url", resolve=resolves_to(PUBLIC))
    PRODUCTION.check("HTTPS://buyer.example/post", "post_url", resolve=resolves_to(PUBLIC))
    for malformed in ("ftp://buyer.example/", "https:///path", "https://buyer.example:99999/", "buyer.example/post"):
        assert check(DEVELOPMENT, malformed).code == "FIELD_INVALID"


def test_the_setting_is_read_from_the_environment(monkeypatch):
    monkeypatch.delenv("BUYER_URLS_ALLOW_PRIVATE", raising=False)
    assert BuyerUrlRules.from_env() == PRODUCTION
    monkeypatch.setenv("BUYER_URLS_ALLOW_PRIVATE", "true")
    assert BuyerUrlRules.from_env() == DEVELOPMENT
    monkeypatch.setenv("BUYER_URLS_ALLOW_PRIVATE", "maybe")
    with pytest.raises(ConfigError, match="BUYER_URLS_ALLOW_PRIVATE must be true or false"):
        BuyerUrlRules.from_env()


# --- where URLs are set ----------------------------------------------------------------------


@pytest.fixture
def sessions(sqlite_url):
    engine = make_engine(sqlite_url)
    create_schema(engine)
    yield session_factory(engine)
    engine.dispose()


def buyers_named(sessions, name: str) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(Buyer).where(Buyer.name == name))


def test_a_buyer_with_a_refused_url_is_not_created(sessions):
    with sessions() as session, pytest.raises(BuyerUrlRefused) as refused:
        accounts.create_buyer(session, "Internal", f"https://{PUBLIC}/ping", "http://127.0.0.1:6379/",
                              urls=PRODUCTION)
    assert (refused.value.code, refused.value.field) == (URL_NOT_HTTPS, "post_url")
    assert buyers_named(sessions, "Internal") == 0
    with sessions() as session:
        accounts.create_buyer(session, "Local", "http://127.0.0.1:9/ping", "http://127.0.0.1:9/post", urls=DEVELOPMENT)
    assert buyers_named(sessions, "Local") == 1


ADMIN_KEY = "admin-key-for-tests"


def admin_create(sessions, rules: BuyerUrlRules, body: dict) -> httpx.Response:
    async def ask() -> httpx.Response:
        app = Starlette(routes=Admin(sessions, ADMIN_KEY, rules).routes())
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://intake") as client:
            return await client.post("/v1/admin/buyers", json=body, headers={"Authorization": f"Bearer {ADMIN_KEY}"})

    return asyncio.run(ask())


@pytest.mark.parametrize(("body", "code", "field", "said"), [
    ({"ping_url": "http://169.254.169.254/latest/meta-data/"}, URL_NOT_HTTPS, "ping_url", "https"),
    ({"ping_url": "https://169.254.169.254/latest/meta-data/"}, URL_ADDRESS_FORBIDDEN, "ping_url",
     "169.254.169.254 is a cloud metadata service's address"),
    ({"ping_url": "https://[::ffff:169.254.169.254]/"}, URL_ADDRESS_FORBIDDEN, "ping_url", "metadata"),
    ({"ping_url": f"https://{PUBLIC}/ping", "post_url": "https://127.0.0.1:6379/"}, URL_ADDRESS_FORBIDDEN,
     "post_url", "127.0.0.1 is a loopback address"),
    ({"ping_url": "https://localhost/ping"}, URL_ADDRESS_FORBIDDEN, "ping_url", "localhost resolves to"),
    ({"ping_url": "https://10.1.2.3/ping"}, URL_ADDRESS_FORBIDDEN, "ping_url", "a private address"),
])
def test_the_admin_api_refuses_a_buyer_url_with_the_rule_and_the_field(sessions, body, code, field, said):
    response = admin_create(sessions, PRODUCTION, {"name": "Sneaky", **body})
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert (error["code"], error["field"]) == (code, field) and said in error["message"]
    assert buyers_named(sessions, "Sneaky") == 0


def test_the_admin_api_with_the_development_setting_takes_local_buyers_but_not_metadata(sessions):
    created = admin_create(sessions, DEVELOPMENT, {"name": "Local", "ping_url": "http://127.0.0.1:9000/ping",
                                                   "post_url": "http://localhost:9000/post"})
    assert created.status_code == 201, created.text
    refused = admin_create(sessions, DEVELOPMENT, {"name": "Meta", "ping_url": "http://169.254.169.254/"})
    assert refused.status_code == 422 and refused.json()["errors"][0]["code"] == URL_ADDRESS_FORBIDDEN


def test_leadx_buyer_create_refuses_a_url_with_the_reason(sqlite_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("BUYER_URLS_ALLOW_PRIVATE", "false")
    with pytest.raises(SystemExit) as exited:
        main(["buyer", "create", "Loopback", "--ping-url", "https://localhost:6379/", "--json"])
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert "leadx: ping_url https://localhost:6379/ is refused: localhost resolves to" in err
    assert "a loopback address" in err
    with pytest.raises(SystemExit):
        main(["buyer", "create", "Clear", "--ping-url", "http://buyer.example/ping"])
    assert "must be an https URL" in capsys.readouterr().err
