"""People of the test portal, made with the domain code `leadx user create` uses, and the login
a browser (or httpx) goes through."""

from __future__ import annotations

import re
import uuid

import httpx

from leadx.accounts import people
from tests.integration.harness import Exchange

PASSWORD = "a long test password"  # a test value, not a secret
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def create_person(exchange: Exchange, kind: str, account_id: str, role: str = "owner") -> str:
    """A new person of the account; its email (made up, at example.com)."""
    email = f"{kind}-{uuid.uuid4().hex[:10]}@example.com"
    with exchange.sql() as session:
        people.create_person(session, email, PASSWORD, kind, account_id, role)
    return email


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


def log_in(client: httpx.Client, email: str, password: str = PASSWORD) -> httpx.Response:
    token = csrf_of(client.get("/login").text)
    return client.post("/login", data={"csrf_token": token, "email": email, "password": password})



def sell_returnable(exchange: Exchange, buyer: str, price_cents: int) -> str:
    """Four leads sold to `buyer`, the last one's id: a return of one of four purchases stays within
    the return rate cap (25% by default, docs/ledger.md#returns), which a buyer of one lead is over."""
    leads = exchange.sell_many(buyer, price_cents + 1, 3) + [exchange.sell(buyer, price_cents)]
    exchange.recorded_sales(leads)
    return leads[-1]
