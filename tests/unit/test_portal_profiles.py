"""The Buy Profiles pages over HTTP on SQLite and a real Redis (the login throttle): a buyer's owner
creates a profile from the weekly grid, a mistake is said beside its field and saves nothing, the
profile is changed, paused, resumed and deleted; a read-only person reads the list only; another
buyer's profile, a seller and a form without its token are refused."""

from __future__ import annotations

import re

import httpx
import pytest

from leadx.accounts import accounts, buyer_settings, people
from leadx.platform.db.engine import session_factory
from leadx.platform.db.models import AuctionOffer, Lead
from tests.unit.portal_deps import Scenario, csrf, run_scenario

SECRET = b"p" * 32
PASSWORD = "a long test password"


@pytest.fixture
def portal(sqlite_engine, redis_url, unique_prefix):
    engine = sqlite_engine
    sessions = session_factory(engine)
    with sessions() as session:
        buyer = accounts.create_buyer(session, "Acme", "", "", kind="autobid", time_zone="America/Chicago")
        other = accounts.create_buyer(session, "Other", "", "", kind="autobid")
        seller = accounts.create_seller(session, "Seller")
        people.create_person(session, "owner@example.com", PASSWORD, "buyer", buyer.id, "owner")
        people.create_person(session, "reader@example.com", PASSWORD, "buyer", buyer.id, "read-only")
        people.create_person(session, "seller@example.com", PASSWORD, "seller", seller.id, "owner")
        theirs = buyer_settings.save_profile(session, other.id, None, {"name": "theirs", "price": 100})
    def run(scenario: Scenario, email: str) -> None:
        run_scenario(engine, redis_url, unique_prefix, SECRET, scenario, email, PASSWORD)

    run.buyer_id, run.theirs, run.sessions = buyer.id, theirs, sessions  # type: ignore[attr-defined]
    yield run


def error_of(html: str, field: str) -> str:
    match = re.search(rf'<span class="error" id="{re.escape(field)}-error" role="alert">([^<]*)</span>', html)
    return match.group(1) if match else ""


def test_an_owner_creates_changes_pauses_resumes_and_deletes_a_profile(portal):
    async def scenario(client: httpx.AsyncClient) -> None:
        page = await client.get("/profiles")
        assert page.status_code == 200 and '<a href="/profiles" aria-current="page">Profiles</a>' in page.text
        assert "No profile yet" in page.text and "theirs" not in page.text
        new = await client.get("/profiles/new")
        assert new.status_code == 200 and "hours in America/Chicago" in new.text
        assert new.text.count('type="checkbox" name="h-') == 168

        # A mistake: said beside its field, the values typed kept, nothing saved.
        fields = {"csrf_token": csrf(new.text), "name": "weekday mornings", "schedule": "hours",
                  "h-mon-08": "1", "h-mon-09": "1", "h-tue-08": "1", "price_kind": "fixed", "price": "31.25",
                  "leads_per_day": "40", "c0-states": "TX, QQ"}
        refused = await client.post("/profiles/new", data=fields)
        assert refused.status_code == 400 and error_of(refused.text, "c0-states").startswith("QQ: not a US state code")
        assert 'value="weekday mornings"' in refused.text and 'name="h-mon-09" value="1"' in refused.text
        assert "Nothing was saved: 1 field to correct" in refused.text
        with portal.sessions() as session:
            assert buyer_settings.current_profiles(session, portal.buyer_id) == []

        saved = await client.post("/profiles/new", data={**fields, "c0-states": "TX, ok"})
        assert (saved.status_code, saved.headers["location"]) == (303, "/profiles?done=saved")
        with portal.sessions() as session:
            (row,) = buyer_settings.current_profiles(session, portal.buyer_id)
        assert row.spec == {"name": "weekday mornings", "windows": [{"from": "mon 08:00", "to": "mon 10:00"},
                                                                    {"from": "tue 08:00", "to": "tue 09:00"}],
                            "price": 3125, "caps": {"leads_per_day": 40}, "criteria": [{"states": ["TX", "OK"]}]}
        listed = await client.get("/profiles?done=saved")
        assert "The profile is saved" in listed.text
        assert "mon 08:00 to mon 10:00; tue 08:00 to tue 09:00" in listed.text and "$31.25" in listed.text

        # Changed: the form shows what is stored; the id stays.
        edit = await client.get(f"/profiles/{row.id}")
        assert 'id="h-mon-09" aria-label="Mon 09:00 to 10:00" checked' in edit.text
        assert 'value="31.25"' in edit.text and 'value="TX, OK"' in edit.text
        changed = await client.post(f"/profiles/{row.id}", data={**fields, "csrf_token": csrf(edit.text),
                                                                 "price": "40", "c0-states": "TX"})
        assert changed.status_code == 303
        with portal.sessions() as session:
            (again,) = buyer_settings.current_profiles(session, portal.buyer_id)
        assert again.id == row.id and again.spec["price"] == 4000

        token = csrf((await client.get("/profiles")).text)
        assert (await client.post(f"/profiles/{row.id}/pause", data={"csrf_token": token, "action": "pause"})
                ).headers["location"] == "/profiles?done=paused"
        paused = await client.get("/profiles")
        assert 'class="paused"' in paused.text and ">Resume</button>" in paused.text
        # Saving a paused profile keeps it paused.
        edit = await client.get(f"/profiles/{row.id}")
        await client.post(f"/profiles/{row.id}", data={**fields, "csrf_token": csrf(edit.text), "c0-states": "TX"})
        with portal.sessions() as session:
            assert buyer_settings.current_profiles(session, portal.buyer_id)[0].spec["active"] is False
        await client.post(f"/profiles/{row.id}/pause", data={"csrf_token": token, "action": "resume"})
        with portal.sessions() as session:
            assert "active" not in buyer_settings.current_profiles(session, portal.buyer_id)[0].spec

        assert (await client.post(f"/profiles/{row.id}/pause", data={"csrf_token": token, "action": "stop"})
                ).status_code == 400
        assert (await client.post(f"/profiles/{row.id}/delete", data={"action": "x"})).status_code == 403  # no token
        deleted = await client.post(f"/profiles/{row.id}/delete", data={"csrf_token": token})
        assert deleted.headers["location"] == "/profiles?done=deleted"
        assert "No profile yet" in (await client.get("/profiles")).text
        assert (await client.get(f"/profiles/{row.id}")).status_code == 404

        # Another buyer's profile is not found, to read or to change.
        assert (await client.get(f"/profiles/{portal.theirs}")).status_code == 404
        assert (await client.post(f"/profiles/{portal.theirs}/delete", data={"csrf_token": token})).status_code == 404

    portal(scenario, "owner@example.com")


def test_a_read_only_person_reads_the_list_and_a_seller_has_no_such_page(portal):
    with portal.sessions() as session:
        buyer_settings.save_profile(session, portal.buyer_id, None, {"name": "mine", "price": 100})

    async def reader(client: httpx.AsyncClient) -> None:
        page = await client.get("/profiles")
        assert page.status_code == 200 and "mine" in page.text
        assert "New profile" not in page.text and "<form method=\"post\" action=\"/profiles/" not in page.text
        assert (await client.get("/profiles/new")).status_code == 403
        token = csrf(page.text)
        assert (await client.post("/profiles/new", data={"csrf_token": token, "name": "x", "price": "1"})
                ).status_code == 403

    async def seller(client: httpx.AsyncClient) -> None:
        assert (await client.get("/profiles")).status_code == 404
        assert (await client.get("/profiles/new")).status_code == 404

    portal(reader, "reader@example.com")
    portal(seller, "seller@example.com")


def test_the_preview_shows_which_offered_leads_the_profile_as_typed_would_bid_on_and_saves_nothing(portal):
    with portal.sessions() as session:
        for lead_id, state, at_ms in (("LEADPRVW01", "TX", 1_000), ("LEADPRVW02", "NY", 2_000)):
            session.add(Lead(id=lead_id, seller_id="s_1", vertical="auto_loan", state=state, status="sold",
                             status_rank=9, fields={"state": state}, submitted_at_ms=0, updated_at_ms=0,
                             probability=0.5, cluster="c1"))
            session.add(AuctionOffer(buyer_id=portal.buyer_id, lead_id=lead_id, offered_at_ms=at_ms))
        session.commit()

    async def scenario(client: httpx.AsyncClient) -> None:
        new = await client.get("/profiles/new")
        assert "No lead" not in new.text and 'id="preview"' not in new.text
        answer = await client.post("/profiles/new", data={
            "csrf_token": csrf(new.text), "name": "texas", "schedule": "always", "price": "20.00", "c0-states": "TX",
            "preview": "1"})
        assert answer.status_code == 200 and 'id="preview"' in answer.text
        assert "would have bid on 1 of them, $20.00 on average" in answer.text
        rows = re.findall(r'<tr data-lead="(\w+)"[^>]*>.*?<td class="bid">([^<]*)</td>', answer.text, re.S)
        assert rows == [("LEADPRVW02", "no bid: no criterion matches"), ("LEADPRVW01", "$20.00")]
        assert 'value="texas"' in answer.text  # the form as typed, to change and preview again or save
        bad = await client.post("/profiles/new", data={"csrf_token": csrf(new.text), "name": "", "preview": "1"})
        assert bad.status_code == 400 and 'id="preview"' not in bad.text
        with portal.sessions() as session:
            assert buyer_settings.current_profiles(session, portal.buyer_id) == []

    portal(scenario, "owner@example.com")
